"""The report as text (one line per check, grouped) or as one JSON document (`--json`).

Both pass through `redact`: whatever a line says, no registered secret value is printed.
"""

from __future__ import annotations

import json
from typing import Any

from infra.doctor.findings import Report

REDACTED = "[redacted]"
_WIDTH = 8  # the status column: ok, warn, problem, skip, fix


def text(report: Report, title: str) -> str:
    lines = [f"make doctor: {title}"]
    heading = None
    for finding in report.findings:
        # A stack's report names the function (its logical id) before each of its groups.
        current = f"{finding.function}: {finding.group}" if finding.function else finding.group
        if current != heading:
            heading = current
            lines.append(f"\n{heading}")
        # A detail that starts with its check's name (PLAID_ENV...) needs no label.
        label = "" if finding.detail.startswith(finding.check) else f"{finding.check}: "
        lines.append(f"  {finding.status:<{_WIDTH}} {label}{finding.detail}")
        if finding.fix and finding.status != "ok":
            lines.append(f"  {'fix':<{_WIDTH}} {finding.fix}")
    problems = len(report.problems)
    warnings = sum(f.status == "warn" for f in report.findings)
    lines.append(f"\n{problems} problem(s), {warnings} warning(s)")
    return redact("\n".join(lines), report.sensitive)


def as_json(report: Report, title: str) -> str:
    doc: dict[str, Any] = {
        "title": title,
        "ok": not report.problems,
        "problems": len(report.problems),
        "findings": [finding.as_dict() for finding in report.findings],
        **report.extra,
    }
    return json.dumps(_redact_strings(doc, report.sensitive), indent=2)


def redact(value: str, sensitive: set[str]) -> str:
    # Longest first, so a value containing another is hidden whole.
    for secret in sorted(sensitive, key=len, reverse=True):
        value = value.replace(secret, REDACTED)
    return value


def _redact_strings(value: Any, sensitive: set[str]) -> Any:
    """Redact before encoding: JSON escaping could otherwise hide a secret from `replace`."""
    if isinstance(value, str):
        return redact(value, sensitive)
    if isinstance(value, dict):
        return {k: _redact_strings(v, sensitive) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_strings(v, sensitive) for v in value]
    return value
