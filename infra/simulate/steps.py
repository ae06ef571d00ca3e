"""The Item's lifecycle, step by step: each step does one thing, then the Item's health is
read back (GET /items) and checked against what that step must leave.

Two steps may see either health: the webhooks are asynchronous, so right after a reset login
the ERROR webhook may or may not have been applied yet, and right after update mode the
LOGIN_REPAIRED one. The step after each waits for (or makes) the state that must follow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from infra.simulate.plaid_side import PlaidSide, Skipped
from infra.simulate.report import Printer
from infra.simulate.service import Service, StepError, problem_code

NO_ITEM: Final = "-"
POLL_S: Final = 0.1


@dataclass
class Item:
    """What the steps learn and pass on."""

    link_token: str = ""
    item_id: str = ""
    removed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[], str]  # does the step; what it did, in words
    allowed: frozenset[str]  # the healths the Item may have after it


class Lifecycle:
    """The seven steps against `service`, with `plaid` playing Plaid."""

    def __init__(self, service: Service, plaid: PlaidSide, webhook_timeout_s: float) -> None:
        self.service = service
        self.plaid = plaid
        self.webhook_timeout_s = webhook_timeout_s
        self.item = Item()

    def steps(self) -> list[Step]:
        either = frozenset({"healthy", "login_required"})
        live = self.plaid.webhooks_arrive
        return [
            Step("create", self.create, frozenset({NO_ITEM})),
            Step("exchange", self.exchange, frozenset({"healthy"})),
            Step("reset login", self.reset_login, either if live else frozenset({"healthy"})),
            Step(
                "webhook", self.webhook if live else self.no_webhook, _only("login_required", live)
            ),
            Step("update mode", self.update_mode, either if live else frozenset({"healthy"})),
            Step("refresh", self.refresh, frozenset({"healthy"})),
            Step("remove", self.remove, frozenset({"gone"})),
        ]

    def run(self, printer: Printer) -> int:
        """Every step in order, one line each; 0 when each gave what it should, else 1 (the
        first failing step is named, the rest are not run, and the Item is removed)."""
        status = self._run(printer)
        if status and self.item.item_id and not self.item.removed:
            self._clean_up(printer)
        return status

    def _clean_up(self, printer: Printer) -> None:
        # A second run against the same service would otherwise meet it as a DUPLICATE_ITEM.
        try:
            removed = self.service.api("DELETE", f"/items/{self.item.item_id}").status == 204
        except OSError:
            removed = False
        printer.line(
            "simulate: removed the Item it made"
            if removed
            else f"simulate: could not remove the Item it made ({self.item.item_id})"
        )

    def _run(self, printer: Printer) -> int:
        for number, step in enumerate(self.steps(), 1):
            try:
                note = step.run()
            except Skipped as skipped:
                note = str(skipped)
            except (StepError, OSError) as failed:
                printer.line(f"{number} {step.name}: FAILED: {failed}")
                printer.line(f"simulate: FAILED at step {number} ({step.name})")
                return 1
            try:
                health = self.service.health(self.item.item_id) if self.item.item_id else NO_ITEM
            except (StepError, OSError) as failed:
                printer.line(f"{number} {step.name}: FAILED reading the health: {failed}")
                printer.line(f"simulate: FAILED at step {number} ({step.name})")
                return 1
            printer.step(number, step.name, health, note)
            if health not in step.allowed:
                wanted = " or ".join(sorted(step.allowed))
                printer.line(
                    f"simulate: FAILED at step {number} ({step.name}): health {health},"
                    f" expected {wanted}"
                )
                return 1
        printer.line("simulate: every step gave what it should")
        return 0

    # ------------------------------------------------------------------------- the steps ---
    def create(self) -> str:
        made = self.service.api("POST", "/link-token", {"platform": "web"})
        if made.status != 200 or not isinstance(made.doc, dict):
            raise StepError(f"POST /link-token answered {made.status}{problem_code(made)}")
        self.item.link_token = str(made.doc["link_token"])
        public_token, metadata = self.plaid.new_item_link(self.service, self.item.link_token)
        self.item.extra = {"public_token": public_token, "metadata": metadata}
        return f"link token {self.item.link_token}; Link completed, a public token for POST /items"

    def exchange(self) -> str:
        created = self.service.api("POST", "/items", self.item.extra)
        self.item.extra = {}  # the public token is spent: not kept
        if created.status != 201 or not isinstance(created.doc, dict):
            raise StepError(f"POST /items answered {created.status}{problem_code(created)}")
        self.item.item_id = str(created.doc["item_id"])
        bank = created.doc.get("institution", {}).get("name")
        accounts = len(created.doc.get("accounts", []))
        return f"POST /items 201: Item {self.item.item_id} at {bank}, {accounts} account(s)"

    def reset_login(self) -> str:
        return self.plaid.reset_login(self.item.item_id)

    def webhook(self) -> str:
        waited = self._wait_for_health("login_required")
        delivered = self.plaid.deliveries(self.item.item_id)
        if waited is None:
            raise StepError(
                f"health is still {self.service.health(self.item.item_id)} after"
                f" {self.webhook_timeout_s:g} s; the stand-in's deliveries: {_said(delivered)}"
            )
        return f"after {waited:.1f} s; {_said(delivered)}"

    def no_webhook(self) -> str:
        self._refresh()
        return (
            "Plaid cannot reach this machine, so no webhook arrives: health refreshed from"
            " /item/get instead (POST /items/{item_id}/refresh)"
        )

    def update_mode(self) -> str:
        made = self.service.api("POST", "/link-token", {"item_id": self.item.item_id})
        if made.status != 200 or not isinstance(made.doc, dict):
            raise StepError(
                f"POST /link-token (item_id) answered {made.status}{problem_code(made)}"
            )
        token = str(made.doc["link_token"])
        try:
            done = self.plaid.update_link(self.service, token)
        except Skipped as skipped:
            raise Skipped(f"update-mode link token {token}; {skipped}") from None
        return f"update-mode link token {token}; {done}"

    def refresh(self) -> str:
        self._refresh()
        return "POST /items/{item_id}/refresh 200: health from Plaid's /item/get"

    def remove(self) -> str:
        removed = self.service.api("DELETE", f"/items/{self.item.item_id}")
        self.item.removed = removed.status == 204
        if removed.status != 204:
            raise StepError(
                f"DELETE /items/{{item_id}} answered {removed.status}{problem_code(removed)}"
            )
        return "DELETE /items/{item_id} 204; GET /items no longer lists it"

    # ----------------------------------------------------------------------------- helpers ---
    def _refresh(self) -> None:
        refreshed = self.service.api("POST", f"/items/{self.item.item_id}/refresh")
        if refreshed.status != 200:
            raise StepError(
                f"POST /items/{{item_id}}/refresh answered {refreshed.status}"
                f"{problem_code(refreshed)}"
            )

    def _wait_for_health(self, wanted: str) -> float | None:
        """Seconds until GET /items showed `wanted`; None if it did not within the timeout."""
        start = time.monotonic()
        while self.service.health(self.item.item_id) != wanted:
            if time.monotonic() - start > self.webhook_timeout_s:
                return None
            time.sleep(POLL_S)
        return time.monotonic() - start


def _only(health: str, webhooks_arrive: bool) -> frozenset[str]:
    return frozenset({health if webhooks_arrive else "healthy"})


def _said(deliveries: list[dict[str, Any]]) -> str:
    """The stand-in's record of the Item's webhooks, in words (a body holds no token)."""
    if not deliveries:
        return "none recorded"
    described = []
    for delivery in deliveries:
        hook = delivery.get("webhook", {})
        code = (hook.get("error") or {}).get("error_code")
        what = f"{hook.get('webhook_type')} {hook.get('webhook_code')}" + (
            f" ({code})" if code else ""
        )
        status = delivery.get("status")
        result = f"{status}" if status is not None else f"no answer ({delivery.get('error')})"
        attempts = delivery.get("attempts")
        described.append(f"{what} -> {delivery.get('url')}: {result}, {attempts} attempt(s)")
    return "; ".join(described)
