"""Service configuration from environment variables, validated once per cold start.

A bad value raises `ConfigError` naming the variable and what is wrong with it (never the
value of anything secret-like); the handler turns that into a 500 MISCONFIGURED per request
rather than crashing the container into an init loop.
"""

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from linktoken.catalog import (
    CLIENT_NAME_MAX,
    COUNTRY_CODES,
    LANGUAGES,
    LINK_PRODUCTS,
    PLAID_ENVIRONMENTS,
)

DEFAULT_SECRET_TTL_SECONDS = 300
_ANDROID_PACKAGE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$")


class ConfigError(ValueError):
    """The environment does not describe a usable service; the message says exactly why."""


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the service needs that does not change between invocations."""

    secret_id: str
    client_name: str
    plaid_env: str
    base_url: str
    products: tuple[str, ...]
    country_codes: tuple[str, ...]
    language: str
    redirect_uri: str | None = None
    android_package_name: str | None = None
    webhook_url: str | None = None
    secret_ttl_seconds: int = DEFAULT_SECRET_TTL_SECONDS


def load_config(environ: Mapping[str, str]) -> Config:
    """Build and validate a `Config` from an environment mapping.

    Example:
        >>> cfg = load_config({"PLAID_SECRET_ID": "plaid", "PLAID_CLIENT_NAME": "Acme"})
        >>> cfg.base_url, cfg.products
        ('https://sandbox.plaid.com', ('transactions',))
    """

    def get(name: str) -> str | None:
        value = environ.get(name, "").strip()
        return value or None

    secret_id = get("PLAID_SECRET_ID")
    if secret_id is None:
        raise ConfigError("PLAID_SECRET_ID is required: the name or ARN of the Plaid secret")

    client_name = get("PLAID_CLIENT_NAME")
    if client_name is None or len(client_name) > CLIENT_NAME_MAX:
        raise ConfigError(
            f"PLAID_CLIENT_NAME must be 1-{CLIENT_NAME_MAX} characters (Link shows it to users; "
            "longer names are replaced by 'This Application')"
        )

    plaid_env = (get("PLAID_ENV") or "sandbox").lower()
    if plaid_env == "development":
        raise ConfigError(
            "PLAID_ENV=development is no longer available: Plaid retired the Development "
            "environment in June 2024; use sandbox or production"
        )
    if plaid_env not in PLAID_ENVIRONMENTS:
        raise ConfigError(
            f"PLAID_ENV must be one of {sorted(PLAID_ENVIRONMENTS)}, not {plaid_env!r}"
        )

    products = _split(get("PLAID_PRODUCTS") or "transactions", str.lower)
    if "balance" in products:
        raise ConfigError(
            "PLAID_PRODUCTS: 'balance' is not a Link product (it is always available)"
        )
    products = _choices("PLAID_PRODUCTS", products, LINK_PRODUCTS)
    country_codes = _choices(
        "PLAID_COUNTRY_CODES", _split(get("PLAID_COUNTRY_CODES") or "US", str.upper), COUNTRY_CODES
    )
    language = (get("PLAID_LANGUAGE") or "en").lower()
    if language not in LANGUAGES:
        raise ConfigError(f"PLAID_LANGUAGE must be one of {sorted(LANGUAGES)}, not {language!r}")

    redirect_uri = get("PLAID_REDIRECT_URI")
    if redirect_uri is not None:
        _check_redirect_uri(redirect_uri, plaid_env)
    android_package_name = get("PLAID_ANDROID_PACKAGE_NAME")
    if android_package_name is not None and not _ANDROID_PACKAGE.match(android_package_name):
        raise ConfigError("PLAID_ANDROID_PACKAGE_NAME must look like com.example.app")
    webhook_url = get("PLAID_WEBHOOK_URL")
    if webhook_url is not None:
        _check_webhook(webhook_url)

    return Config(
        secret_id=secret_id,
        client_name=client_name,
        plaid_env=plaid_env,
        base_url=_base_url(get("PLAID_BASE_URL"), plaid_env),
        products=products,
        country_codes=country_codes,
        language=language,
        redirect_uri=redirect_uri,
        android_package_name=android_package_name,
        webhook_url=webhook_url,
        secret_ttl_seconds=_ttl(get("PLAID_SECRET_TTL_SECONDS")),
    )


def is_loopback_host(host: str) -> bool:
    """True for localhost and any 127.0.0.0/8 or ::1 address literal."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_allowed_plaid_url(url: str) -> bool:
    """Credentials may only travel to https://*.plaid.com or to a loopback address.

    URLs with user info, backslashes, whitespace or control characters are refused outright:
    parsers disagree about where their host ends (urlsplit vs urllib3).
    """
    if any(c in url for c in "@\\") or any(c.isspace() or not c.isprintable() for c in url):
        return False
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and (host == "plaid.com" or host.endswith(".plaid.com")):
        return True
    return parts.scheme in {"http", "https"} and is_loopback_host(host)


def _split(raw: str, normalise: Callable[[str], str]) -> tuple[str, ...]:
    """A comma-separated list: whitespace ignored, normalised, de-duplicated in order."""
    return tuple(dict.fromkeys(normalise(item.strip()) for item in raw.split(",") if item.strip()))


def _choices(name: str, values: tuple[str, ...], allowed: frozenset[str]) -> tuple[str, ...]:
    if not values:
        raise ConfigError(f"{name} must list at least one value")
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ConfigError(f"{name}: {unknown} not accepted by Plaid; allowed: {sorted(allowed)}")
    return values


def _check_redirect_uri(uri: str, plaid_env: str) -> None:
    parts = urlsplit(uri)
    if parts.query or parts.fragment or uri.endswith("?") or "#" in uri:
        raise ConfigError("PLAID_REDIRECT_URI must not contain a query string or fragment")
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname == "localhost":
        if plaid_env == "sandbox":
            return
        raise ConfigError("PLAID_REDIRECT_URI: http://localhost is only accepted in sandbox")
    raise ConfigError("PLAID_REDIRECT_URI must be an https URL (http://localhost in sandbox)")


def _check_webhook(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise ConfigError("PLAID_WEBHOOK_URL must be an absolute http(s) URL")


def _base_url(override: str | None, plaid_env: str) -> str:
    if override is None:
        return PLAID_ENVIRONMENTS[plaid_env]
    if not is_allowed_plaid_url(override):
        raise ConfigError(
            "PLAID_BASE_URL must be https://*.plaid.com or a loopback address: credentials are "
            "never sent anywhere else"
        )
    return override.rstrip("/")


def _ttl(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_SECRET_TTL_SECONDS
    try:
        ttl = int(raw)
    except ValueError:
        raise ConfigError("PLAID_SECRET_TTL_SECONDS must be a whole number of seconds") from None
    if not 0 <= ttl <= 86_400:
        raise ConfigError("PLAID_SECRET_TTL_SECONDS must be between 0 and 86400")
    return ttl
