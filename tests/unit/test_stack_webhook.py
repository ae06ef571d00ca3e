"""New Items' link tokens name the stack's own receiver, on the API domain the app called,
unless PLAID_WEBHOOK_URL names another; a request that came to an address (a local run) or
without a domain names none."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from linktoken.config import load_config
from linktoken.http_event import parse_event
from linktoken.link_options import LinkOptions
from linktoken.plaid_request import build_link_token_request, stack_webhook_url

BASE = {
    "PLAID_SECRET_ID": "s",
    "PLAID_CLIENT_NAME": "Acme",
    "PLAID_WEBHOOK_PATH": "/webhooks/plaid",
}
OPTIONS = LinkOptions("web", ("transactions",), "en")


def event(domain: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "requestId": "r1",
        "http": {"method": "POST"},
        "authorizer": {"jwt": {"claims": {"sub": "user-1"}}},
    }
    if domain is not None:
        context["domainName"] = domain
    return {"version": "2.0", "requestContext": context}


def webhook_for(domain: Any, **env: str) -> Any:
    config = load_config({**BASE, **env})
    url = stack_webhook_url(parse_event(event(domain)).domain, config)
    body = build_link_token_request(config, replace(OPTIONS, stack_webhook=url), "u")
    return body.get("webhook")


def test_the_api_domain_the_app_called_names_the_receiver() -> None:
    assert webhook_for("a1b2c3.execute-api.us-east-1.amazonaws.com") == (
        "https://a1b2c3.execute-api.us-east-1.amazonaws.com/webhooks/plaid"
    )
    assert webhook_for("API.Example.com") == "https://api.example.com/webhooks/plaid"


def test_plaid_webhook_url_wins_over_the_stack_receiver() -> None:
    url = webhook_for("api.example.com", PLAID_WEBHOOK_URL="https://hooks.example.org/plaid")
    assert url == "https://hooks.example.org/plaid"


def test_no_domain_an_address_or_no_path_names_no_webhook() -> None:
    for domain in (None, "", "127.0.0.1", "127.0.0.1:3000", "localhost", "evil.com/x", 7):
        assert webhook_for(domain) is None, domain
    config = load_config({"PLAID_SECRET_ID": "s", "PLAID_CLIENT_NAME": "Acme"})
    assert stack_webhook_url("api.example.com", config) is None
