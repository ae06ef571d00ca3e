"""handler/Makefile, the recipe `sam build` runs (template.yaml: BuildMethod makefile).

The real build needs PyPI and is `.ci/sam-checks.sh`'s job (it builds, then checks the artifact
and smoke-tests it). These tests are offline and take about a second: the list of botocore
services the artifact keeps against the clients the handler creates, the `prune-and-compile`
target on a small stand-in for an installed tree, and the guards of `build-LinkTokenFunction`.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKEFILE = ROOT / "handler" / "Makefile"
# Kept although the handler creates no such client (the reason is in handler/Makefile):
# botocore's credential providers use sts.
KEPT_FOR_THE_SDKS = {"sts"}

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def make(*args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """Run a target of handler/Makefile (no network: none of these reaches pip)."""
    assignments = [f"{name}={value}" for name, value in variables.items()]
    return subprocess.run(  # noqa: S603 - fixed argv
        ["make", "--no-print-directory", "-s", "-f", str(MAKEFILE), *args, *assignments],  # noqa: S607
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def kept_services() -> set[str]:
    return set(make("print-BOTOCORE_KEEP").stdout.split())


def clients_the_handler_creates() -> set[str]:
    """Service names passed to create_client()/client() anywhere in handler/ (a grep)."""
    call = re.compile(
        r"""\b(?:create_client|client)\(\s*(?:service_name\s*=\s*)?["']([\w-]+)["']"""
    )
    return {
        name
        for path in (ROOT / "handler").rglob("*.py")
        if "__pycache__" not in path.parts
        for name in call.findall(path.read_text())
    }


def test_botocore_keeps_exactly_the_services_the_function_uses() -> None:
    used = clients_the_handler_creates()
    assert "secretsmanager" in used, "the grep no longer finds the Secrets Manager client"
    kept = kept_services()
    assert used <= kept, f"the artifact would lack the model of {sorted(used - kept)}"
    assert kept == used | KEPT_FOR_THE_SDKS, (
        f"kept without a reason: {sorted(kept - used - KEPT_FOR_THE_SDKS)}"
    )


def _installed_tree(root: Path) -> None:
    """A small stand-in for what pip installs: botocore/boto3 data, packages, a dist-info."""
    data = root / "botocore" / "data"
    for service in ("secretsmanager", "sts", "xray", "s3", "ec2"):
        (data / service / "2020-01-01").mkdir(parents=True)
        (data / service / "2020-01-01" / "service-2.json").write_text("{}")
    endpoints = {
        "partitions": [
            {"partition": p, "regions": {"r-1": {}}, "services": {s: {} for s in ("s3", "sts")}}
            for p in ("aws", "aws-cn")
        ],
        "version": 3,
    }
    (data / "endpoints.json").write_text(json.dumps(endpoints, indent=2))
    (data / "_retry.json").write_text("{}")
    for model in ("s3", "ec2"):
        (root / "boto3" / "data" / model / "2006-03-01").mkdir(parents=True)
    (root / "botocore" / "__init__.py").write_text("VERSION = 1\n")
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "sub" / "mod.py").write_text("def f():\n    return 42\n")
    (root / "pkg-1.0.dist-info").mkdir()
    (root / "pkg-1.0.dist-info" / "LICENSE").write_text("licence text")


def test_prune_and_compile_keeps_the_services_and_ships_runtime_bytecode(tmp_path: Path) -> None:
    _installed_tree(tmp_path)
    done = make("prune-and-compile", ARTIFACTS_DIR=str(tmp_path), PY313=sys.executable)
    assert done.returncode == 0, done.stderr

    data = tmp_path / "botocore" / "data"
    assert {p.name for p in data.iterdir() if p.is_dir()} == {"secretsmanager", "sts"}
    assert (data / "_retry.json").is_file(), "top-level data files stay"
    endpoints = json.loads((data / "endpoints.json").read_text())
    for partition in endpoints["partitions"]:
        assert set(partition["services"]) == {"sts"}, "endpoints.json: kept services only"
        assert partition["regions"] == {"r-1": {}}, "partitions and regions are untouched"
    assert not list((tmp_path / "boto3" / "data").iterdir())
    assert (tmp_path / "pkg-1.0.dist-info" / "LICENSE").is_file(), "licences stay"

    sources = sorted(p for p in tmp_path.rglob("*.py") if "__pycache__" not in p.parts)
    assert len(sources) == 3
    for source in sources:
        pyc = Path(importlib.util.cache_from_source(str(source)))
        assert pyc.name.endswith(".cpython-313.pyc"), pyc
        header = pyc.read_bytes()[:16]
        assert header[:4] == importlib.util.MAGIC_NUMBER
        assert int.from_bytes(header[4:8], "little") == 0b01, "unchecked-hash"
        assert header[8:16] == importlib.util.source_hash(source.read_bytes())
    assert "3 cpython-313 .pyc for 3 .py" in done.stdout


def test_prune_and_compile_fails_when_botocore_lacks_a_kept_model(tmp_path: Path) -> None:
    _installed_tree(tmp_path)
    shutil.rmtree(tmp_path / "botocore" / "data" / "sts")
    done = make("prune-and-compile", ARTIFACTS_DIR=str(tmp_path), PY313=sys.executable)
    assert done.returncode != 0
    assert "botocore has no sts model" in done.stderr


def test_the_build_refuses_a_wrong_python_or_artifacts_dir(tmp_path: Path) -> None:
    unset = make("build-LinkTokenFunction", PY313=sys.executable)
    assert unset.returncode != 0
    assert "ARTIFACTS_DIR is not set" in unset.stderr

    not_ours = tmp_path / "not-a-build"
    not_ours.mkdir()
    (not_ours / "keep-me").write_text("")
    refused = make("build-LinkTokenFunction", ARTIFACTS_DIR=str(not_ours), PY313=sys.executable)
    assert refused.returncode != 0
    assert "is not empty" in refused.stderr
    assert (not_ours / "keep-me").is_file(), "a directory that is not a build is never wiped"

    inside = ROOT / "handler" / "build-output"
    nested = make("build-LinkTokenFunction", ARTIFACTS_DIR=str(inside), PY313=sys.executable)
    assert nested.returncode != 0
    assert not inside.exists()

    fake = tmp_path / "python3.12"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    wrong = make("build-LinkTokenFunction", ARTIFACTS_DIR=str(tmp_path / "a"), PY313=str(fake))
    assert wrong.returncode != 0
    assert "need CPython 3.13" in wrong.stderr
