"""What a check found: one line of the report, and the report that collects them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# ok: checked and fine; warn: suspicious, worth a look; problem: will fail requests;
# skip: could not be checked (the line says why).
Status = Literal["ok", "warn", "problem", "skip"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One check: its group and name, the verdict, what was seen, and what to do about it."""

    group: str
    check: str
    status: Status
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "group": self.group,
            "check": self.check,
            "status": self.status,
            "detail": self.detail,
        }
        if self.fix:
            doc["fix"] = self.fix
        return doc


@dataclass(slots=True)
class Report:
    """Findings in the order they were made, and the values no output may contain."""

    findings: list[Finding] = field(default_factory=list)
    sensitive: set[str] = field(default_factory=set)
    extra: dict[str, Any] = field(default_factory=dict)  # structured data for --json

    def add(self, *findings: Finding) -> None:
        self.findings.extend(findings)

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
