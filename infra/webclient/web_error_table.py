"""Write `examples/web/errors.json`: the web example's copy of the service's error table.

The page is static (no build step), so it cannot import Python; it reads this file instead.
Every row comes from the service's own sources, never typed twice:

- `problems`: codes, statuses, titles and retryability from `handler/linktoken/problems.py`,
  what the app should do from the table "What the app should do" in `docs/errors.md`;
- `api_gateway`: what the app should do with API Gateway's own answers, from the table
  "Answers API Gateway generates itself" in `docs/errors.md`;
- `plaid_rejections`: the operator-facing cause for each Plaid `error_code` the service knows,
  from `handler/linktoken/plaid_errors.py`;
- `link_exit`: the fix for errors Plaid Link reports in `onExit`, from `docs/clients.md`.

    python -m infra.webclient           # rewrite the file (make web-errors)
    python -m infra.webclient --check   # exit 1 if the file is stale

`tests/unit/test_web_error_table.py` fails when the file drifts from these sources.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from linktoken.plaid_errors import BY_ERROR_CODE
from linktoken.problems import PROBLEM_TYPES

ROOT = Path(__file__).resolve().parents[2]

OUTPUT = ROOT / "examples/web/errors.json"
ERRORS_DOC = ROOT / "docs/errors.md"
CLIENTS_DOC = ROOT / "docs/clients.md"

_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def markdown_table(text: str, heading: str) -> list[dict[str, str]]:
    """The first table under `heading`, as rows keyed by the header cells (backticks and
    escaped pipes resolved)."""
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip("# ").strip() == heading)
    except StopIteration:
        raise ValueError(f"no heading {heading!r}") from None
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            cells = [_plain(cell) for cell in _CELL_SPLIT.split(line.strip().strip("|"))]
            if not all(set(cell) <= set("-: ") for cell in cells):
                rows.append(cells)
        elif rows:
            break
    if not rows:
        raise ValueError(f"no table under {heading!r}")
    header, *body = rows
    return [dict(zip(header, row, strict=True)) for row in body]


def _plain(cell: str) -> str:
    return cell.strip().replace("\\|", "|").replace("`", "")


def build() -> dict[str, Any]:
    """The table the page reads, from the service's code and docs."""
    errors_doc = ERRORS_DOC.read_text()
    app_should = {
        row["code"]: row["the app should"]
        for row in markdown_table(errors_doc, "What the app should do")
    }
    if set(app_should) != set(PROBLEM_TYPES):
        raise ValueError(
            "docs/errors.md 'What the app should do' and problems.PROBLEM_TYPES differ: "
            f"{sorted(set(app_should) ^ set(PROBLEM_TYPES))}"
        )
    problems = {
        code: {
            "status": kind.status,
            "title": kind.title,
            "retryable": kind.retryable,
            "app_should": app_should[code],
        }
        for code, kind in PROBLEM_TYPES.items()
    }
    api_gateway = {
        row["status"]: {"app_should": row["the app should"], "produced_by": row["produced by"]}
        for row in markdown_table(errors_doc, "Answers API Gateway generates itself")
    }
    plaid_rejections = {code: rule.cause for code, rule in BY_ERROR_CODE.items()}
    link_exit = {
        row["error_code"]: row["the app should"]
        for row in markdown_table(CLIENTS_DOC.read_text(), "Errors Link reports in onExit")
    }
    return {
        "generated_by": "make web-errors (infra/webclient/web_error_table.py; do not edit by hand)",
        "problems": problems,
        "api_gateway": api_gateway,
        "plaid_rejections": plaid_rejections,
        "link_exit": link_exit,
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run make web-errors", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0
