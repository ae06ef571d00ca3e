"""What plays Plaid for the simulation: make serve's loopback stand-in (which completes Link
sessions, resets logins and sends signed webhooks to the service) or real Plaid Sandbox (which
can do neither of the last two for a laptop: those steps say why and are skipped)."""

from __future__ import annotations

from typing import Any, Final, Protocol

from infra.simulate.service import Service, StepError, problem_code, send

SANDBOX_URL: Final = "https://sandbox.plaid.com"
INSTITUTION: Final = {"institution_id": "ins_109508", "name": "First Platypus Bank"}
LINK_COMPLETE_PATH: Final = "/_standin/link/complete"


class Skipped(Exception):
    """The step cannot be done against this Plaid; the message says why."""


class PlaidSide(Protocol):
    description: str
    webhooks_arrive: bool

    def new_item_link(self, service: Service, link_token: str) -> tuple[str, dict[str, Any]]:
        """What Link's onSuccess gives the app for a new Item: (public_token, metadata)."""
        ...

    def update_link(self, service: Service, link_token: str) -> str:
        """Complete an update-mode Link session; what was done, in words."""
        ...

    def reset_login(self, item_id: str) -> str:
        """/sandbox/item/reset_login for the Item; what was done, in words."""
        ...

    def deliveries(self, item_id: str) -> list[dict[str, Any]]:
        """The webhooks Plaid recorded sending for the Item, oldest first."""
        ...


class StandIn:
    """make serve's Plaid stand-in at `control_base` (its banner's `Plaid stand-in` URL)."""

    description = "the loopback Plaid stand-in (not Plaid)"
    webhooks_arrive = True

    def __init__(self, control_base: str) -> None:
        self.base = control_base.rstrip("/")

    def new_item_link(self, service: Service, link_token: str) -> tuple[str, dict[str, Any]]:
        done = self._complete(service, link_token, "new")
        return str(done["public_token"]), dict(done["metadata"])

    def update_link(self, service: Service, link_token: str) -> str:
        self._complete(service, link_token, "update")
        return "Link (update mode) completed by the stand-in: login repaired"

    def _complete(self, service: Service, link_token: str, mode: str) -> dict[str, Any]:
        # make serve's own route, as the example page's Link stand-in calls it.
        done = service.unauthenticated("POST", LINK_COMPLETE_PATH, {"link_token": link_token})
        if done.status != 200 or not isinstance(done.doc, dict):
            raise StepError(f"POST {LINK_COMPLETE_PATH} answered {done.status}{problem_code(done)}")
        if done.doc.get("mode") != mode:
            raise StepError(f"the Link session was {done.doc.get('mode')!r}, not {mode!r}")
        return done.doc

    def reset_login(self, item_id: str) -> str:
        path = f"/_standin/items/{item_id}/reset_login"
        reply = send("POST", self.base + path, {})
        if reply.status != 204:
            raise StepError(f"the stand-in's {path} answered {reply.status}")
        return "the stand-in put the Item in ITEM_LOGIN_REQUIRED (it sends the ERROR webhook)"

    def deliveries(self, item_id: str) -> list[dict[str, Any]]:
        reply = send("GET", self.base + "/_standin/webhooks")
        if reply.status != 200 or not isinstance(reply.doc, list):
            raise StepError(f"the stand-in's /_standin/webhooks answered {reply.status}")
        return [d for d in reply.doc if d.get("webhook", {}).get("item_id") == item_id]


class Sandbox:
    """Real Plaid Sandbox with the developer's keys (never printed)."""

    description = "Plaid Sandbox (your PLAID_CLIENT_ID/PLAID_SECRET)"
    webhooks_arrive = False

    def __init__(self, client_id: str, secret: str, base_url: str = SANDBOX_URL) -> None:
        self.base = base_url.rstrip("/")
        self._keys = {"plaid-client-id": client_id, "plaid-secret": secret}

    def new_item_link(self, service: Service, link_token: str) -> tuple[str, dict[str, Any]]:
        # Real Link needs a person; Sandbox makes the public token Link would have given.
        body = {
            "institution_id": INSTITUTION["institution_id"],
            "initial_products": ["transactions"],
        }
        reply = send("POST", self.base + "/sandbox/public_token/create", body, self._keys)
        if reply.status != 200 or not isinstance(reply.doc, dict):
            code = reply.doc.get("error_code") if isinstance(reply.doc, dict) else None
            raise StepError(f"Sandbox /sandbox/public_token/create answered {reply.status} {code}")
        # The account ids Link would give are not known without the access token: stand-ins.
        account = {
            "id": "simulated-checking",
            "name": "Plaid Checking",
            "mask": "0000",
            "type": "depository",
            "subtype": "checking",
        }
        metadata = {"institution": INSTITUTION, "accounts": [account]}
        return str(reply.doc["public_token"]), metadata

    def update_link(self, service: Service, link_token: str) -> str:
        raise Skipped("update mode on Sandbox needs a person in Plaid Link: token made, not used")

    def reset_login(self, item_id: str) -> str:
        raise Skipped(
            "skipped: Sandbox's /sandbox/item/reset_login needs the Item's access token, which"
            " the service never gives out"
        )

    def deliveries(self, item_id: str) -> list[dict[str, Any]]:
        return []
