"""The web example's error table (`examples/web/errors.json`) matches the service's own."""

import json

from infra.webclient import web_error_table
from linktoken.plaid_errors import BY_ERROR_CODE
from linktoken.problems import PROBLEM_TYPES


def test_the_page_table_is_what_the_generator_makes_from_the_service() -> None:
    on_disk = web_error_table.OUTPUT.read_text()
    assert on_disk == web_error_table.render(), (
        "examples/web/errors.json drifted from the service: run make web-errors"
    )


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
