"""template.yaml and handler/Makefile agree: `sam build` builds the function with its Makefile,
for the runtime and architecture the template declares (read from `make` itself).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from infra.gateway.cfn_template import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
FUNCTION = RESOURCES["LinkTokenFunction"]["Properties"]


def make_variable(name: str) -> str:
    """A variable of handler/Makefile, as make itself expands it."""
    out = subprocess.run(  # noqa: S603 - fixed argv
        ["make", "--no-print-directory", "-s", "-f", "handler/Makefile", f"print-{name}"],  # noqa: S607
        cwd=ROOT, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return out.stdout.strip()


def test_function_is_built_by_its_makefile_for_its_runtime_and_architecture() -> None:
    # `sam build` runs handler/Makefile's build-<logical id> target instead of SAM's python
    # builder: that is what ships precompiled bytecode and pruned botocore data.
    assert RESOURCES["LinkTokenFunction"]["Metadata"] == {"BuildMethod": "makefile"}
    makefile = ROOT / FUNCTION["CodeUri"] / "Makefile"
    assert re.search(r"^build-LinkTokenFunction:", makefile.read_text(), re.MULTILINE)
    # The Makefile installs wheels for the template's runtime and architecture.
    assert FUNCTION["Runtime"] == f"python{make_variable('LAMBDA_PYTHON')}"
    platforms = make_variable("WHEEL_PLATFORMS").split()
    assert FUNCTION["Architectures"] == ["arm64"]
    assert platforms, "an empty WHEEL_PLATFORMS would ship this machine's wheels"
    assert all(p.startswith("manylinux") and p.endswith("_aarch64") for p in platforms)

    # What the handler does after a restore is tested in test_observability.py.
