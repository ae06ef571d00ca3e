"""The `/link/token/create` request body, exactly as Plaid's 2020-09-14 API defines it.

Credentials are not part of the body: the client sends them as PLAID-CLIENT-ID/PLAID-SECRET
headers, so a body that is ever logged or traced cannot leak them.
"""

from typing import Any

from linktoken.config import Config
from linktoken.link_options import LinkOptions


def build_link_token_request(
    config: Config, options: LinkOptions, client_user_id: str
) -> dict[str, Any]:
    """The JSON body for Plaid.

    Android sessions carry `android_package_name` and never `redirect_uri` (Plaid rejects both
    together); web and iOS sessions carry `redirect_uri` when one is configured (OAuth).

    Example:
        >>> from linktoken.config import load_config
        >>> cfg = load_config({"PLAID_SECRET_ID": "s", "PLAID_CLIENT_NAME": "Acme"})
        >>> build_link_token_request(cfg, LinkOptions("web", ("transactions",), "en"), "u1")
        ... # doctest: +NORMALIZE_WHITESPACE
        {'client_name': 'Acme', 'language': 'en', 'country_codes': ['US'],
         'user': {'client_user_id': 'u1'}, 'products': ['transactions']}
    """
    body: dict[str, Any] = {
        "client_name": config.client_name,
        "language": options.language,
        "country_codes": list(config.country_codes),
        "user": {"client_user_id": client_user_id},
        "products": list(options.products),
    }
    return _with_platform(body, config, options)


def build_update_link_token_request(
    config: Config,
    options: LinkOptions,
    client_user_id: str,
    access_token: str,
    account_selection: bool,
) -> dict[str, Any]:
    """Update mode: the Item's `access_token` and no `products` (Plaid keeps the Item's);
    account selection on when Plaid reported new accounts."""
    body: dict[str, Any] = {
        "client_name": config.client_name,
        "language": options.language,
        "country_codes": list(config.country_codes),
        "user": {"client_user_id": client_user_id},
        "access_token": access_token,
    }
    if account_selection:
        body["update"] = {"account_selection_enabled": True}
    return _with_platform(body, config, options)


def stack_webhook_url(domain: str | None, config: Config) -> str | None:
    """The stack's receiver on the API domain the app called (`https://<domain><path>`): None
    without a domain or without PLAID_WEBHOOK_PATH. A custom domain whose API mapping has a
    base path needs PLAID_WEBHOOK_URL instead."""
    if not domain or not config.webhook_path:
        return None
    return f"https://{domain}{config.webhook_path}"


def _with_platform(body: dict[str, Any], config: Config, options: LinkOptions) -> dict[str, Any]:
    webhook = config.webhook_url or options.stack_webhook
    if webhook:
        body["webhook"] = webhook
    if options.platform == "android":
        body["android_package_name"] = config.android_package_name
    elif config.redirect_uri:
        body["redirect_uri"] = config.redirect_uri
    return body
