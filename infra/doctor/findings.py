"""What a check found: one line of the report, and the report that collects them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

# ok: checked and fine; warn: suspicious, worth a look; problem: will fail requests;
# skip: could not be checked (the line says why).
Status = Literal["ok", "warn", "problem", "skip"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One check: its group and name, the verdict, what was seen, and what to do about it;
    `function`, in a report on several functions (a stack's), the one it is about."""

    group: str
    check: str
    status: Status
    detail: str
    fix: str | None = None
    function: str | None = None

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "group": self.group,
            "check": self.check,
            "status": self.status,
            "detail": self.detail,
        }
        if self.fix:
            doc["fix"] = self.fix
        if self.function:
            doc["function"] = self.function
        return doc


@dataclass(slots=True)
class Report:
    """Findings in the order they were made, and the values no output may contain."""

    findings: list[Finding] = field(default_factory=list)
    sensitive: set[str] = field(default_factory=set)
    extra: dict[str, Any] = field(default_factory=dict)  # structured data for --json
    subject: str | None = None  # the function findings are about now (see `about`)

    def add(self, *findings: Finding) -> None:
        self.findings.extend(
            replace(f, function=self.subject) if self.subject and not f.function else f
            for f in findings
        )

    @contextlib.contextmanager
    def about(self, function: str | None) -> Iterator[None]:
        """Findings added within are about `function` (None: the report's one subject)."""
        before, self.subject = self.subject, function
        try:
            yield
        finally:
            self.subject = before

    def hide(self, *values: str | bytes | None) -> None:
        """Never print these (the Plaid secret, the HMAC key), whatever line they end up in."""
        for value in values:
            text = value.decode(errors="replace") if isinstance(value, bytes) else value
            if text:
                self.sensitive.add(text)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "problem"]

    @property
    def exit_code(self) -> int:
        return 1 if self.problems else 0
