"""handler/Makefile, the recipe `sam build` runs (template.yaml: BuildMethod makefile).

The real build needs PyPI and is `.ci/sam-checks.sh`'s job (it builds, then checks the artifact
and smoke-tests it). These tests are offline: the list of botocore services the artifact keeps
against the clients the handler creates, the `prune-and-compile` target on a small stand-in for
an installed tree, the guards of `build-LinkTokenFunction`, handler/requirements.txt against
uv.lock (hashes included), and the build recipe refusing a wheel whose hash is missing or wrong
(pip pointed at a local wheel folder instead of an index).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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


# ------------------------------------------------------------------- locked, hashed wheels --
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+)")


def _uv() -> str | None:
    """The uv `make` uses: on PATH, else the copy `make` bootstraps into .tools."""
    bootstrapped = ROOT / ".tools" / "bin" / "uv"
    return shutil.which("uv") or (str(bootstrapped) if bootstrapped.is_file() else None)


def _requirements(text: str) -> dict[str, list[str]]:
    """`name==version` of each requirement, with the hashes of its continuation lines."""
    pins: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        pin = _PIN.match(line)
        if pin:
            current = f"{pin[1].lower()}=={pin[2]}"
            pins[current] = []
        elif current and line.strip().startswith("--hash="):
            pins[current].append(line.strip().rstrip(" \\"))
    return pins


@pytest.mark.parametrize(
    ("file", "extra"), [("requirements.txt", []), ("requirements-webhooks.txt", ["webhooks"])]
)
def test_requirements_are_uv_locks_runtime_dependencies_with_hashes(
    tmp_path: Path, file: str, extra: list[str]
) -> None:
    """The files the build installs are exactly what uv.lock pins (every function's, and the
    webhook receiver's with the `webhooks` extra), every wheel with its hashes (handler/Makefile
    installs with --require-hashes; `make requirements` regenerates them)."""
    uv = _uv()
    if uv is None:
        pytest.skip("no uv (make test bootstraps one into .tools)")
    fresh = tmp_path / file
    extras = [arg for name in extra for arg in ("--extra", name)]
    exported = subprocess.run(  # noqa: S603 - fixed argv; --frozen: reads uv.lock, no network
        [uv, "export", "--frozen", "--no-dev", "--no-emit-project", *extras, "--quiet",
         "-o", str(fresh)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    committed = _requirements((ROOT / "handler" / file).read_text())
    locked = _requirements(fresh.read_text())
    assert any(pin.startswith("requests==") for pin in committed), "nothing parsed"
    assert committed == locked, f"handler/{file} drifted from uv.lock: make requirements"
    unhashed = [pin for pin, hashes in committed.items() if not hashes]
    assert not unhashed, f"pinned without a hash: {unhashed}"
    assert all(
        re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", h) for hs in committed.values() for h in hs
    )


def test_only_the_webhook_receiver_ships_the_jwt_library() -> None:
    """PyJWT and cryptography are the `webhooks` extra: in the receiver's requirements, not in
    every function's (so the link token's artifact does not carry 17 MB it never imports)."""
    names = {
        file: {pin.split("==")[0] for pin in _requirements((ROOT / "handler" / file).read_text())}
        for file in ("requirements.txt", "requirements-webhooks.txt")
    }
    extra = names["requirements-webhooks.txt"] - names["requirements.txt"]
    assert extra == {"pyjwt", "cryptography", "cffi", "pycparser"}
    assert names["requirements.txt"] < names["requirements-webhooks.txt"]
    makefile = (ROOT / "handler" / "Makefile").read_text()
    assert (
        "build-WebhookReceiverFunction: REQUIREMENTS = $(HERE)/requirements-webhooks.txt"
        in makefile.splitlines()
    )


def _python313_with_pip() -> str:
    found = subprocess.run(  # noqa: S603 - fixed argv
        [str(ROOT / "infra" / "scripts" / "find-python313.sh")],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    py = found.stdout.strip()
    if found.returncode or not py:
        pytest.skip("no Python 3.13 for the build")
    has_pip = subprocess.run([py, "-m", "pip", "--version"], capture_output=True, check=False)  # noqa: S603
    if has_pip.returncode:
        pytest.skip(f"{py} has no pip")
    return py


def _wheel(directory: Path) -> tuple[Path, str]:
    """A tiny pure-Python wheel, `tinydep` 1.0, and its sha256."""
    files = {
        "tinydep/__init__.py": b"VALUE = 42\n",
        "tinydep-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinydep\nVersion: 1.0\n",
        "tinydep-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("tinydep-1.0.dist-info/RECORD,,")
    wheel = directory / "tinydep-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("tinydep-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return wheel, hashlib.sha256(wheel.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("hash_line", "refusal"),
    [
        ("", "Hashes are required in --require-hashes mode"),
        (" --hash=sha256:" + "0" * 64, "DO NOT MATCH THE HASHES"),
        (None, None),  # the wheel's own hash: installed
    ],
    ids=["missing-hash", "wrong-hash", "right-hash"],
)
def test_the_build_installs_only_wheels_whose_hash_is_pinned(
    tmp_path: Path, hash_line: str | None, refusal: str | None
) -> None:
    """The real build-LinkTokenFunction recipe, offline: pip sees only a local wheel folder."""
    py = _python313_with_pip()
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _, digest = _wheel(wheels)
    requirements = tmp_path / "requirements.txt"
    line = f" --hash=sha256:{digest}" if hash_line is None else hash_line
    requirements.write_text(f"tinydep==1.0{line}\n")
    artifacts = tmp_path / "artifact"
    offline = {
        "PIP_CONFIG_FILE": "/dev/null",  # no index or find-links from the machine's pip.conf
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
        "PIP_NO_CACHE_DIR": "1",
    }
    done = subprocess.run(  # noqa: S603 - fixed argv
        ["make", "--no-print-directory", "-s", "-f", str(MAKEFILE), "build-LinkTokenFunction",  # noqa: S607
         f"ARTIFACTS_DIR={artifacts}", f"REQUIREMENTS={requirements}", f"PY313={py}"],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PIP_")}, **offline},
    )  # fmt: skip
    if refusal is None:
        assert done.returncode == 0, done.stderr
        assert (artifacts / "tinydep" / "__init__.py").read_bytes() == b"VALUE = 42\n"
        assert (artifacts / "app.py").is_file()
    else:
        assert done.returncode != 0, "the build installed a wheel whose hash was not pinned"
        assert refusal in done.stderr
        assert not (artifacts / "tinydep").exists()
