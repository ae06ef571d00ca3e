"""template.yaml and handler/Makefile agree: `sam build` builds every function with the
Makefile, one recipe for all, for the runtime and architecture the template declares (read
from `make` itself).
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
FUNCTIONS = {
    name: resource
    for name, resource in RESOURCES.items()
    if resource["Type"] == "AWS::Serverless::Function"
}


def make_variable(name: str) -> str:
    """A variable of handler/Makefile, as make itself expands it."""
    out = subprocess.run(  # noqa: S603 - fixed argv
        ["make", "--no-print-directory", "-s", "-f", "handler/Makefile", f"print-{name}"],  # noqa: S607
        cwd=ROOT, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return out.stdout.strip()


def make_rules() -> dict[str, str]:
    """handler/Makefile's explicit rules as make reads them: target -> its recipe.

    `make -pq` prints make's rule database; -q runs no recipe (the one it is asked about,
    print-FUNCTIONS, has none that would recurse).
    """
    out = subprocess.run(
        ["make", "--no-print-directory", "-pq", "-f", "handler/Makefile", "print-FUNCTIONS"],  # noqa: S607
        cwd=ROOT, check=False, capture_output=True, text=True,
    )  # fmt: skip
    rules: dict[str, str] = {}
    for block in out.stdout.split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith("#")]
        if not lines or not re.fullmatch(r"[A-Za-z0-9_-]+:.*", lines[0]):
            continue
        target = lines[0].split(":", 1)[0]
        rules[target] = "\n".join(line for line in lines[1:] if line.startswith("\t"))
    return rules


def test_function_is_built_by_its_makefile_for_its_runtime_and_architecture() -> None:
    # `sam build` runs handler/Makefile's build-<logical id> target instead of SAM's python
    # builder: that is what ships precompiled bytecode and pruned botocore data.
    assert RESOURCES["LinkTokenFunction"]["Metadata"] == {"BuildMethod": "makefile"}
    makefile = ROOT / FUNCTION["CodeUri"] / "Makefile"
    assert makefile.is_file()
    assert "build-LinkTokenFunction" in make_rules()
    # The Makefile installs wheels for the template's runtime and architecture.
    assert FUNCTION["Runtime"] == f"python{make_variable('LAMBDA_PYTHON')}"
    platforms = make_variable("WHEEL_PLATFORMS").split()
    assert FUNCTION["Architectures"] == ["arm64"]
    assert platforms, "an empty WHEEL_PLATFORMS would ship this machine's wheels"
    assert all(p.startswith("manylinux") and p.endswith("_aarch64") for p in platforms)


def test_every_function_is_built_by_the_one_recipe() -> None:
    """Five functions, one code directory, one build: each has its build-<id> target, and
    the five targets run the very same recipe (not five copies that could drift)."""
    assert set(FUNCTIONS) == {
        "LinkTokenFunction",
        "ItemExchangeFunction",
        "ItemsFunction",
        "WebhookReceiverFunction",
        "WebhookProcessorFunction",
    }
    assert make_variable("FUNCTIONS").split() == list(FUNCTIONS)
    rules = make_rules()
    recipes = set()
    for name, resource in FUNCTIONS.items():
        assert resource["Metadata"] == {"BuildMethod": "makefile"}, name
        props = resource["Properties"]
        assert props["CodeUri"] == FUNCTION["CodeUri"], name
        assert props["Runtime"] == FUNCTION["Runtime"], name
        assert props["Architectures"] == FUNCTION["Architectures"], name
        assert f"build-{name}" in rules, f"handler/Makefile has no build-{name} target"
        recipes.add(rules[f"build-{name}"])
    (recipe,) = recipes
    assert "pip install" in recipe and "prune-and-compile" in recipe
    # In the file itself the recipe is written once.
    text = (ROOT / "handler" / "Makefile").read_text()
    assert len(re.findall(r"-m pip install", text)) == 1


def test_the_build_ships_every_handler_module_and_package() -> None:
    """What the build copies (CODE) is every module and package at the top of handler/: each
    function's Handler module among them."""
    code = set(make_variable("CODE").split())
    handler = ROOT / "handler"
    assert code == {p.name for p in handler.glob("*.py")} | {
        p.parent.name for p in handler.glob("*/__init__.py")
    }
    for name, resource in FUNCTIONS.items():
        module = resource["Properties"]["Handler"].rpartition(".")[0]
        assert f"{module.split('.')[0]}.py" in code or module.split(".")[0] in code, name
