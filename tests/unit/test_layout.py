"""The repository's import shape: packages import as installed, so no code edits sys.path (but
the one Lambda-emulation helper that must), the tools never import from tests/, and no module
imports another package's private name."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE = ("handler", "infra", "tests")
# make serve's spawn workers start with their parent's sys.path, whatever PYTHONPATH says:
# the one place the function's directory is put first, as Lambda does.
SYS_PATH_EDITS_ALLOWED = {"infra/gateway/lambda_workers.py"}
# An operator's script run by path with any Python 3 that has botocore, not from .venv.
SCRIPTS_OUTSIDE_THE_VENV = {"infra/scripts/user-ref.py"}


def modules() -> list[tuple[str, ast.Module]]:
    found = []
    for folder in CODE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            found.append((name, ast.parse(path.read_text(), name)))
    return found


def package_of(name: str) -> str:
    """`infra/doctor/network.py` -> `infra.doctor`; handler/ holds `linktoken` and `app`."""
    parts = name.removesuffix(".py").split("/")
    if parts[0] == "handler":
        parts = parts[1:]
    return ".".join(parts[:2]) if parts[0] in {"infra", "tests"} else parts[0]


def sys_path_edits(tree: ast.Module) -> list[int]:
    """Lines that change sys.path: `sys.path.insert(...)` and the like, or an assignment."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if ast.unparse(node.func.value) == "sys.path":
                lines.append(node.lineno)
        elif isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(ast.unparse(t).startswith("sys.path") for t in targets):
                lines.append(node.lineno)
    return lines


def test_nothing_edits_sys_path_but_the_lambda_workers() -> None:
    edits = [f"{name}:{line}" for name, tree in modules() for line in sys_path_edits(tree)]
    allowed = SYS_PATH_EDITS_ALLOWED | SCRIPTS_OUTSIDE_THE_VENV
    assert [edit for edit in edits if edit.split(":")[0] not in allowed] == []


def test_the_tools_never_import_from_tests() -> None:
    imports = [
        f"{name}:{node.lineno}"
        for name, tree in modules()
        if not name.startswith("tests/")
        for node in ast.walk(tree)
        if (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "tests")
        or (
            isinstance(node, ast.Import)
            and any(a.name.split(".")[0] == "tests" for a in node.names)
        )
    ]
    assert imports == []


def test_no_private_name_is_imported_from_another_package() -> None:
    first_party = ("linktoken", "app", "infra", "tests")
    crossings = []
    for name, tree in modules():
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            if node.module.split(".")[0] not in first_party:
                continue
            source = (
                ".".join(node.module.split(".")[:2])
                if node.module.startswith(("infra.", "tests."))
                else node.module.split(".")[0]
            )
            for alias in node.names:
                if alias.name.startswith("_") and source != package_of(name):
                    crossings.append(f"{name}:{node.lineno} {node.module}.{alias.name}")
    assert crossings == []


def test_the_handler_imports_from_the_work_tree_not_an_installed_copy() -> None:
    # An installed copy (in site-packages) would shadow handler/: tests would run stale code.
    import app
    import infra
    import linktoken

    assert Path(app.__file__).resolve() == ROOT / "handler" / "app.py"
    assert Path(linktoken.__file__).resolve().parent == ROOT / "handler" / "linktoken"
    assert Path(infra.__file__).resolve().parent == ROOT / "infra"
