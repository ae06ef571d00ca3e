"""Fakes for `linktoken.service.LinkTokenService`: a secret store with versions, a Plaid client
that plays scripted outcomes, and the service made of them (no AWS, no sockets)."""

from __future__ import annotations

from typing import Any

from linktoken.config import Config, load_config
from linktoken.link_options import LinkOptions
from linktoken.plaid_client import LinkToken, PlaidCallError
from linktoken.secret_store import PlaidCredentials
from linktoken.service import LinkTokenService, Outcome
from tests.conftest import CLIENT_ID, SECRET

KEYS = PlaidCredentials(CLIENT_ID, SECRET)
WEB = LinkOptions("web", ("transactions",), "en")


class FakeSecrets:
    """Hands out `versions[0]`; each forced refresh moves to the next version (or stays)."""

    def __init__(self, *versions: PlaidCredentials) -> None:
        self.versions = list(versions)
        self.refreshes: list[bool] = []
        self.reads = 0

    def get(self, refresh: bool = False) -> PlaidCredentials:
        self.refreshes.append(refresh)
        self.reads += 1
        if refresh and len(self.versions) > 1:
            self.versions.pop(0)
        return self.versions[0]

    @property
    def cached(self) -> PlaidCredentials | None:
        return self.versions[0] if self.refreshes else None


class FakePlaid:
    """Plays the scripted outcomes in order; records what it was asked."""

    def __init__(self, *outcomes: LinkToken | PlaidCallError) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[dict[str, Any], PlaidCredentials]] = []

    def create_link_token(
        self, body: dict[str, Any], credentials: PlaidCredentials, remaining: Any
    ) -> LinkToken:
        assert remaining() == 12.5  # the service passes the invocation's clock through
        self.calls.append((body, credentials))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, PlaidCallError):
            raise outcome
        return outcome


def token(attempts: int = 1, latency_ms: float = 40.0) -> LinkToken:
    return LinkToken("link-sandbox-abc", "2026-11-25T18:00:00Z", "reqOK", attempts, latency_ms)


def config(**env: str) -> Config:
    return load_config({"PLAID_SECRET_ID": "plaid", "PLAID_CLIENT_NAME": "Acme", **env})


def service(secrets: FakeSecrets, plaid: FakePlaid, cfg: Config | None = None) -> Any:
    # Fakes with the methods the service calls, not the real store and client.
    return LinkTokenService(cfg or config(), secrets, plaid)  # type: ignore[arg-type]


def create(svc: LinkTokenService, sub: str = "user-0001", options: LinkOptions = WEB) -> Outcome:
    return svc.create(sub, options, lambda: 12.5)
