"""The files generated from the service's error table (`examples/web/errors.json`, the tables
of `docs/errors.md` and `docs/clients.md`) are what the generator makes of it today."""

import dataclasses
import json
from pathlib import Path

import pytest

from infra.webclient import web_error_table
from linktoken import plaid_errors
from linktoken.plaid_errors import BY_ERROR_CODE
from linktoken.problems import PROBLEM_TYPES


def test_the_page_table_is_what_the_generator_makes_from_the_service() -> None:
    on_disk = web_error_table.OUTPUT.read_text()
    assert on_disk == web_error_table.render(), (
        "examples/web/errors.json drifted from the service: run make web-errors"
    )


@pytest.mark.parametrize(
    "path",
    [web_error_table.ERRORS_DOC, web_error_table.CLIENTS_DOC],
    ids=["errors.md", "clients.md"],
)
def test_the_docs_tables_are_what_the_generator_makes_from_the_service(path: Path) -> None:
    expected = web_error_table.outputs()[path]
    assert path.read_text() == expected, (
        f"the generated tables of {path} drifted from the service: run make docs"
    )


def test_the_docs_carry_every_generated_table() -> None:
    text = web_error_table.ERRORS_DOC.read_text() + web_error_table.CLIENTS_DOC.read_text()
    for name in (
        "problem-codes",
        "app-should",
        "causes-and-fixes",
        "api-gateway",
        "link-exit",
    ):
        assert f"<!-- generated: {name} " in text
        assert f"<!-- end generated: {name} -->" in text


def test_only_the_text_between_markers_is_replaced() -> None:
    text = (
        "intro\n<!-- generated: app-should (note) -->\nold | rows\n"
        "<!-- end generated: app-should -->\nhand-written\n"
    )

    out = web_error_table.render_doc(text, {"app-should": "| new |\n"})

    assert out == (
        "intro\n<!-- generated: app-should (note) -->\n| new |\n"
        "<!-- end generated: app-should -->\nhand-written\n"
    )
    with pytest.raises(ValueError, match="no generated table 'nothing'"):
        web_error_table.render_doc(
            "<!-- generated: nothing x -->\n<!-- end generated: nothing -->", {}
        )


def test_a_fix_changed_in_the_table_is_the_fix_the_docs_show(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rule = plaid_errors.BY_ERROR_CODE["INVALID_PRODUCT"]
    changed = dataclasses.replace(rule, fix="turn the product on (a changed fix)")
    monkeypatch.setitem(plaid_errors.BY_ERROR_CODE, "INVALID_PRODUCT", changed)

    table = web_error_table.tables()["causes-and-fixes"]

    assert (
        "| `error_code` `INVALID_PRODUCT` | 502 `UPSTREAM_REJECTED` | a requested product is not "
        "enabled for this Plaid client or environment (check PLAID_PRODUCTS against the Plaid "
        "dashboard) | turn the product on (a changed fix) |"
    ) in table.splitlines()


def test_every_problem_code_has_its_status_retryability_and_an_action() -> None:
    table = json.loads(web_error_table.OUTPUT.read_text())
    assert set(table["problems"]) == set(PROBLEM_TYPES)
    for code, kind in PROBLEM_TYPES.items():
        row = table["problems"][code]
        assert (row["status"], row["retryable"], row["title"]) == (
            kind.status,
            kind.retryable,
            kind.title,
        )
        assert row["app_should"].strip()
    assert set(table["plaid_rejections"]) == set(BY_ERROR_CODE)
    assert {"401", "429", "500", "503"} <= set(table["api_gateway"])
    assert "INVALID_LINK_TOKEN" in table["link_exit"]


def test_markdown_table_reads_escaped_pipes_and_stops_at_the_next_heading() -> None:
    text = "## T\n\n| a | b |\n|---|---|\n| `x` | y \\| z |\n\n## Next\n| a | b |\n"
    assert web_error_table.markdown_table(text, "T") == [{"a": "x", "b": "y | z"}]


def test_the_client_notes_table_matches_the_error_contract() -> None:
    rows = web_error_table.markdown_table(
        web_error_table.CLIENTS_DOC.read_text(), "What the app should do with each answer"
    )
    documented = {row["code"]: (int(row["status"]), row["retryable"] == "yes") for row in rows}
    assert documented == {
        code: (kind.status, kind.retryable) for code, kind in PROBLEM_TYPES.items()
    }
