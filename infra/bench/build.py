"""Build the artifacts the benchmark compares, each in its own directory under `.bench/build/`.

Variants without the build change are built the way SAM's python builder (aws-lambda-builders'
python_pip workflow, what `sam build` ran before handler/Makefile) builds a Python function:
the code directory copied, the dependencies' wheels extracted next to it, and **no bytecode**
(wheels carry none, and Lambda's /var/task is read-only, so nothing can be cached there at run
time). Variants marked `built` get the build change, and get it from handler/Makefile, the
recipe `sam build` runs, so the benchmark measures exactly what ships:

- the product and handler variants: `make build-LinkTokenFunction` itself, with `SRC` pointing
  at the variant's code and `WHEEL_PLATFORMS=` (empty): this machine's wheels, so wrapt and
  charset-normalizer run their C code here instead of their pure-Python fallbacks. That is the
  only difference from `sam build`'s output, which holds aarch64 wheels;
- the baselines: their own pip install, then the Makefile's `prune-and-compile` target (botocore
  and boto3 data pruned to the Makefile's BOTOCORE_KEEP, endpoints.json trimmed to those
  services, `compileall --invalidation-mode unchecked-hash`, one cpython-313 .pyc per .py).

    python -m infra.bench.build             # build what is missing or stale
    python -m infra.bench.build --rebuild   # from scratch
"""

# ruff: noqa: S603

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / ".bench"
BUILD = BENCH / "build"
BASELINES = ROOT / "infra/bench/baselines"
CONSTRAINTS = ROOT / "infra/bench/requirements-baselines.txt"
SAM_BUILD = ROOT / ".aws-sam/build/LinkTokenFunction"
PROPOSED = BENCH / "handler-variant"
MAKEFILE = ROOT / "handler/Makefile"  # the build change: what `sam build` runs


@dataclass(frozen=True)
class Variant:
    """One thing to benchmark: where its code comes from and what it depends on."""

    name: str
    label: str
    handler: str  # module:function
    source: Path  # a directory copied whole, or one .py file
    requirements: tuple[str, ...] = ()  # pip arguments (`-r file` or pinned names)
    built: bool = False  # the build change (handler/Makefile): prune botocore data, precompile
    baseline: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def build_dir(self) -> Path:
        return BUILD / self.name


def product_requirements() -> tuple[str, ...]:
    return ("-r", str(ROOT / "handler/requirements.txt"))


def baseline_requirements(*names: str) -> tuple[str, ...]:
    return (*names, "-c", str(CONSTRAINTS))


BUILD_CHANGE = "precompiled, botocore data pruned"


def variants(include_proposed: bool = True) -> list[Variant]:
    """The product without and with the build change (with it: what `sam build` ships), the
    three baselines, baselines (1) and (3) with the same build change, and the proposed
    handler when it exists."""
    b1 = baseline_requirements("boto3", "requests")
    b3 = baseline_requirements("aws-lambda-powertools[tracer]", "boto3", "requests")
    found = [
        Variant("product", "product without the build change (SAM's python builder, no .pyc)",
                "app:lambda_handler", ROOT / "handler", product_requirements()),
        Variant("blog_post", "baseline 1: blog-post handler", "blog_post:lambda_handler",
                BASELINES / "blog_post.py", b1, baseline=1),
        Variant("plaid_sdk", "baseline 2: plaid-python, quickstart wiring",
                "plaid_sdk:lambda_handler", BASELINES / "plaid_sdk.py",
                baseline_requirements("plaid-python", "boto3"), baseline=2),
        Variant("powertools_by_the_book", "baseline 3: Powertools by the book",
                "powertools_by_the_book:lambda_handler", BASELINES / "powertools_by_the_book.py",
                b3, baseline=3),
        Variant("product_build", f"product as sam build ships it ({BUILD_CHANGE})",
                "app:lambda_handler", ROOT / "handler", product_requirements(), built=True),
        Variant("blog_post_build", "baseline 1 + the same build change",
                "blog_post:lambda_handler", BASELINES / "blog_post.py", b1, baseline=1,
                built=True),
        Variant("powertools_by_the_book_build", "baseline 3 + the same build change",
                "powertools_by_the_book:lambda_handler", BASELINES / "powertools_by_the_book.py",
                b3, baseline=3, built=True),
    ]  # fmt: skip
    if include_proposed and PROPOSED.is_dir():
        found += [
            Variant("proposed_code", "proposed handler patch, without the build change",
                    "app:lambda_handler", PROPOSED, product_requirements()),
            Variant("proposed", "proposed handler patch + build change",
                    "app:lambda_handler", PROPOSED, product_requirements(), built=True),
        ]  # fmt: skip
    # Experiments: any .bench/handler-variant-NAME/ is benchmarked as `try_NAME` (built).
    for extra in sorted(BENCH.glob("handler-variant-*")):
        suffix = extra.name.removeprefix("handler-variant-")
        label_file = extra / ".label"  # optional one-line description (not copied into builds)
        label = label_file.read_text().strip() if label_file.is_file() else f"experiment {suffix}"
        found.append(
            Variant(f"try_{suffix}", f"{label} + build change", "app:lambda_handler",
                    extra, product_requirements(), built=True)
        )  # fmt: skip
    return found


FLOOR = Variant("floor", "floor: raw kept-alive requests.Session().post", "floor:raw_post",
                ROOT / "infra/bench/floor.py", baseline_requirements("requests"))  # fmt: skip


def python313() -> str:
    override = os.environ.get("BENCH_PYTHON")
    if override:
        return override
    out = subprocess.run(
        [str(ROOT / "infra/scripts/find-python313.sh")], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def _stamp(variant: Variant) -> str:
    """What the build depends on: rebuild when any of it changes."""
    digest = hashlib.sha256()
    digest.update(repr((variant.handler, variant.requirements, variant.built)).encode())
    if variant.built:
        digest.update(MAKEFILE.read_bytes())
    files = [variant.source] if variant.source.is_file() else sorted(variant.source.rglob("*.py"))
    for path in files:
        if "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(variant.source.parent)).encode())
            digest.update(path.read_bytes())
    for arg in variant.requirements:
        path = Path(arg)
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _copy_source(variant: Variant, target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "requirements*.txt", ".*")
    if variant.source.is_file():
        shutil.copy2(variant.source, target / variant.source.name)
        return
    for item in variant.source.iterdir():
        if ignore(str(variant.source), [item.name]):
            continue
        if item.is_dir():
            shutil.copytree(item, target / item.name, ignore=ignore)
        else:
            shutil.copy2(item, target / item.name)


def sam_build_runs_here() -> bool:
    """True when `.aws-sam/build/LinkTokenFunction` exists, was built by handler/Makefile (it
    ships bytecode) and its native extensions load on this machine. The template builds for
    arm64: on x86_64 its aarch64 .so files would be skipped and wrapt/charset-normalizer fall
    back to pure Python, which would skew the run."""
    if not (SAM_BUILD / "app.py").is_file() or not (SAM_BUILD / "__pycache__").is_dir():
        return False
    return all(_elf_runs_here(so) for so in SAM_BUILD.rglob("*.so"))


_ELF_MACHINES = {"x86_64": 0x3E, "aarch64": 0xB7, "arm64": 0xB7}


def _elf_runs_here(path: Path) -> bool:
    header = path.read_bytes()[:20]
    if header[:4] != b"\x7fELF":
        return False
    return int.from_bytes(header[18:20], "little") == _ELF_MACHINES.get(platform.machine())


def build(
    variant: Variant, rebuild: bool = False, quiet: bool = True, use_sam: bool = True
) -> Path:
    """Build (or reuse) one variant's artifact directory."""
    target = variant.build_dir
    stamp_file = BUILD / f"{variant.name}.stamp"
    stamp = _stamp(variant)
    if variant.name == "product_build" and use_sam and sam_build_runs_here():
        return SAM_BUILD  # the real `sam build` output, when one exists for this machine
    fresh = target.is_dir() and stamp_file.is_file() and stamp_file.read_text() == stamp
    if fresh and not rebuild:
        return target
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    if variant.built and variant.source.is_dir():
        # A handler directory: the very recipe `sam build` runs, with this machine's wheels.
        run_makefile(
            "build-LinkTokenFunction", target, quiet, SRC=str(variant.source), WHEEL_PLATFORMS=""
        )
        stamp_file.write_text(stamp)
        return target
    pip = [python313(), "-m", "pip", "install", "--disable-pip-version-check",
           "--no-compile", "--prefer-binary", "--no-warn-script-location",
           "--target", str(target)]  # fmt: skip
    if quiet:
        pip.append("--quiet")
    if variant.requirements == product_requirements():
        pip.append("--require-hashes")  # uv.lock's wheels only, as handler/Makefile installs them
    if variant.requirements:
        env = dict(os.environ, PIP_ROOT_USER_ACTION="ignore")
        done = subprocess.run(
            [*pip, *variant.requirements], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode:
            sys.stderr.write(done.stdout + done.stderr)
            raise SystemExit(f"bench: pip failed for {variant.name}")
    shutil.rmtree(target / "bin", ignore_errors=True)  # sam build ships no console scripts
    _copy_source(variant, target)
    if variant.built:
        run_makefile("prune-and-compile", target, quiet)
    stamp_file.write_text(stamp)
    return target


def run_makefile(make_target: str, artifacts: Path, quiet: bool, **variables: str) -> None:
    """Run one target of handler/Makefile on `artifacts` with the benchmark's Python 3.13."""
    assignments = [f"{k}={v}" for k, v in {"PY313": python313(), **variables}.items()]
    done = subprocess.run(
        ["make", "--no-print-directory", "-s", "-f", str(MAKEFILE), make_target,  # noqa: S607
         f"ARTIFACTS_DIR={artifacts}", *assignments],
        env=dict(os.environ, PIP_ROOT_USER_ACTION="ignore"),
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode or not quiet:
        sys.stderr.write(done.stdout + done.stderr)
    if done.returncode:
        raise SystemExit(f"bench: handler/Makefile {make_target} failed for {artifacts}")


def du(path: Path) -> int:
    """Bytes of file content under `path` (what the zip holds, uncompressed)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def zipped_size(path: Path) -> int:
    """Size of the deployment package, zipped as SAM/CloudFormation package it (deflate)."""
    out = BENCH / "zips" / f"{path.name}.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for file in sorted(path.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(path))
    return out.stat().st_size


def file_count(path: Path) -> int:
    return sum(1 for p in path.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    for variant in variants():
        path = build(variant, rebuild=args.rebuild, quiet=False)
        print(json.dumps({"variant": variant.name, "dir": str(path), "bytes": du(path)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
