"""`infra/scripts/deploy.sh`: its refusals and the DeployRevision it passes to `sam deploy`.

The script parses parameters with SAM CLI's own parser, so it runs with .venv-sam's Python;
`sam` itself is a stand-in that records its arguments. `make sam-checks` creates .venv-sam and
runs this file with REQUIRE_SAM_VENV=1, where a missing .venv-sam is a failure, not a skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "infra/scripts/deploy.sh"
SAM_PYTHON = ROOT / ".venv-sam/bin/python"
BASH = shutil.which("bash") or "/bin/bash"

if not SAM_PYTHON.exists():
    if os.environ.get("REQUIRE_SAM_VENV") == "1":
        pytest.fail(f"{SAM_PYTHON} is missing: `make sam-checks` creates it", pytrace=False)
    pytest.skip(
        "needs .venv-sam (SAM CLI's parameter parser); `make sam-checks` creates it and runs this",
        allow_module_level=True,
    )

FAKE_SAM = textwrap.dedent(
    """\
    #!/usr/bin/env bash
    printf '%s\\n' "$*" >> "$FAKE_SAM_LOG"
    """
)
GOOD = [
    "JwtIssuer=https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123",
    "JwtAudience=4f1u8ckq2b0a9r6d7e3c5tq2mn",
    "PlaidEnv=sandbox",
    'PlaidClientName=\\"Acme Money\\"',
    "CorsOrigins=https://app.acme.test",
]


def config(tmp_path: Path, overrides: list[str]) -> Path:
    lines = ",\n".join(f'    "{item}"' for item in overrides)
    path = tmp_path / "samconfig.toml"
    path.write_text(
        'version = 0.1\n[dev.deploy.parameters]\nstack_name = "s"\n'
        f"parameter_overrides = [\n{lines}\n]\n"
    )
    return path


def deploy(tmp_path: Path, *args: str, overrides: list[str] | None = None) -> Any:
    tmp_path = Path(tempfile.mkdtemp(dir=tmp_path))  # each run its own config and sam log
    fake = tmp_path / "sam"
    fake.write_text(FAKE_SAM)
    fake.chmod(0o755)
    log = tmp_path / "sam.log"
    env = {
        **os.environ,
        "SAM": str(fake),
        "SAM_PYTHON": str(SAM_PYTHON),
        "FAKE_SAM_LOG": str(log),
        "DEPLOY_CONFIG": str(config(tmp_path, GOOD if overrides is None else overrides)),
    }
    proc: Any = subprocess.run(  # noqa: S603 - our own script
        [BASH, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    proc.sam_calls = log.read_text().splitlines() if log.exists() else []
    return proc


def revision(proc: Any) -> str:
    [deploy_call] = [call for call in proc.sam_calls if call.startswith("deploy ")]
    found = re.search(r"DeployRevision=([0-9a-f]{16})\b", deploy_call)
    assert found, deploy_call
    return found.group(1)


def test_help_and_no_arguments_answer_with_usage(tmp_path: Path) -> None:
    helped = deploy(tmp_path, "--help")
    bare = deploy(tmp_path)

    assert helped.returncode == 0 and "infra/scripts/deploy.sh dev" in helped.stdout
    assert bare.returncode == 2 and "name the environment to deploy" in bare.stderr
    assert bare.sam_calls == helped.sam_calls == []


def test_an_unknown_environment_is_named(tmp_path: Path) -> None:
    proc = deploy(tmp_path, "staging")

    assert proc.returncode != 0
    assert "no environment 'staging'" in proc.stderr and "dev" in proc.stderr
    assert proc.sam_calls == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("JwtIssuer", "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_EXAMPLE"),
        ("JwtAudience", "REPLACE_WITH_APP_CLIENT_ID"),
        ("PlaidClientName", '\\"Example App\\"'),
        ("CorsOrigins", "https://app.example.com"),
        ("PlaidAndroidPackageName", "com.example.linktoken"),
    ],
)
def test_example_values_are_refused_before_anything_is_built(
    tmp_path: Path, name: str, value: str
) -> None:
    overrides = [item for item in GOOD if not item.startswith(name + "=")] + [f"{name}={value}"]
    proc = deploy(tmp_path, "dev", overrides=overrides)

    assert proc.returncode != 0
    assert "replace the example values" in proc.stderr and name in proc.stderr
    assert proc.sam_calls == []


def test_the_shipped_prod_configuration_is_refused_until_edited(tmp_path: Path) -> None:
    env = {**os.environ, "SAM": str(tmp_path / "sam"), "SAM_PYTHON": str(SAM_PYTHON)}
    (tmp_path / "sam").write_text(FAKE_SAM)
    (tmp_path / "sam").chmod(0o755)
    env["FAKE_SAM_LOG"] = str(tmp_path / "sam.log")
    proc = subprocess.run(  # noqa: S603 - our own script
        [BASH, str(SCRIPT), "prod"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    for name in ("JwtIssuer", "JwtAudience", "PlaidClientName", "CorsOrigins"):
        assert name in proc.stderr
    assert not (tmp_path / "sam.log").exists()


def test_deploy_revision_follows_the_parameter_values(tmp_path: Path) -> None:
    first = deploy(tmp_path, "dev")
    again = deploy(tmp_path, "dev")
    changed = deploy(tmp_path, "dev", overrides=[*GOOD[:2], "PlaidEnv=production", *GOOD[3:]])

    assert first.returncode == 0, first.stderr
    assert [call.split()[0] for call in first.sam_calls] == ["build", "deploy"]
    assert revision(first) == revision(again)  # same inputs: no new version
    assert revision(changed) != revision(first)  # a parameter alone publishes a new version
    assert 'PlaidEnv="production"' in changed.sam_calls[-1]
