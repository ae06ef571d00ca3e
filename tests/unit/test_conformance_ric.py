"""The conformance harness's line checks (infra.conformance.ric.line_faults)."""

import json

from infra.conformance.ric import line_faults

EMF = json.dumps(
    {
        "_aws": {
            "Timestamp": 1796340937315,
            "CloudWatchMetrics": [
                {
                    "Namespace": "PlaidLinkToken",
                    "Dimensions": [["service"]],
                    "Metrics": [{"Name": "SecretsFetched", "Unit": "Count"}],
                }
            ],
        },
        "service": "plaid-link-token",
        "SecretsFetched": [1.0],
    }
)
LOG = json.dumps({"level": "INFO", "message": "link_token_created", "function_request_id": "r1"})


def test_one_invocation_writing_a_line_twice_is_a_fault() -> None:
    assert len(line_faults([LOG, LOG], "ok.json")) == 1
    assert len(line_faults([EMF, EMF], "ok.json")) == 1


def test_two_invocations_in_one_millisecond_may_write_the_same_emf_document() -> None:
    # Seen in CI: two warm invocations failing alike within 1 ms wrote identical EMF bytes.
    assert line_faults([EMF, LOG, EMF], "stdout", one_invocation=False) == []


def test_a_log_line_repeated_across_the_whole_output_is_still_a_fault() -> None:
    faults = line_faults([LOG, EMF, LOG], "stdout", one_invocation=False)
    assert faults == [f"stdout: line written twice: {LOG[:160]!r}"]


def test_not_json_and_incomplete_emf_are_faults() -> None:
    broken = json.loads(EMF)
    del broken["SecretsFetched"]
    faults = line_faults(["plain text", json.dumps(broken)], "stdout", one_invocation=False)
    assert faults == [
        "stdout: not a JSON line: 'plain text'",
        "stdout: EMF declares SecretsFetched but has no value for it",
    ]
