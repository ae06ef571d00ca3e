"""Service configuration from environment variables, validated once per cold start.

A bad value raises `ConfigError` naming the variable and what is wrong with it (never the
value of anything secret-like); the handler turns that into a 500 MISCONFIGURED per request
rather than crashing the container into an init loop.
"""

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from linktoken.plaid_values import (
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
    items_table: str | None = None
    items_key_id: str | None = None
    webhook_queue_url: str | None = None
    webhook_path: str | None = None


@dataclass(frozen=True, slots=True)
class Setting:
    """One variable's rule: how its raw value (None when unset or blank) becomes a `Config`
    field, given the fields parsed before it (raises `ConfigError` naming the variable), and
    the fix `make doctor` gives when it is wrong (with the SAM template's parameter)."""

    field: str
    variable: str
    parse: Callable[[str | None, Mapping[str, object]], object]
    fix: str


def load_config(environ: Mapping[str, str]) -> Config:
    """Build and validate a `Config` from an environment mapping; raises at the first error.

    Example:
        >>> cfg = load_config({"PLAID_SECRET_ID": "plaid", "PLAID_CLIENT_NAME": "Acme"})
        >>> cfg.base_url, cfg.products
        ('https://sandbox.plaid.com', ('transactions',))
    """
    values, errors = check_environment(environ)
    if errors:
        raise errors[0][1]
    return Config(**values)  # type: ignore[arg-type]  # each rule returns its field's type


def check_environment(
    environ: Mapping[str, str],
) -> tuple[dict[str, object], list[tuple[Setting, ConfigError]]]:
    """Every rule, not just up to the first error: the fields that are valid and, in
    `SETTINGS` order, each variable that is not with the `ConfigError` `load_config` raises.

    A rule that depends on an invalid earlier field (the redirect URI on PLAID_ENV) checks
    what it can without it.
    """
    values: dict[str, object] = {}
    errors: list[tuple[Setting, ConfigError]] = []
    for setting in SETTINGS:
        try:
            values[setting.field] = setting.parse(raw_value(environ, setting.variable), values)
        except ConfigError as exc:
            errors.append((setting, exc))
    return values, errors


def raw_value(environ: Mapping[str, str], name: str) -> str | None:
    """A variable as the rules see it: surrounding whitespace trimmed, blank means unset."""
    value = environ.get(name, "").strip()
    return value or None


def _secret_id(raw: str | None, _values: Mapping[str, object]) -> str:
    if raw is None:
        raise ConfigError("PLAID_SECRET_ID is required: the name or ARN of the Plaid secret")
    return raw


def _client_name(raw: str | None, _values: Mapping[str, object]) -> str:
    if raw is None or len(raw) > CLIENT_NAME_MAX:
        raise ConfigError(
            f"PLAID_CLIENT_NAME must be 1-{CLIENT_NAME_MAX} characters (Link shows it to users; "
            "longer names are replaced by 'This Application')"
        )
    return raw


def _plaid_env(raw: str | None, _values: Mapping[str, object]) -> str:
    plaid_env = (raw or "sandbox").lower()
    if plaid_env == "development":
        raise ConfigError(
            "PLAID_ENV=development is no longer available: Plaid retired the Development "
            "environment in June 2024; use sandbox or production"
        )
    if plaid_env not in PLAID_ENVIRONMENTS:
        raise ConfigError(
            f"PLAID_ENV must be one of {sorted(PLAID_ENVIRONMENTS)}, not {plaid_env!r}"
        )
    return plaid_env


def _products(raw: str | None, _values: Mapping[str, object]) -> tuple[str, ...]:
    products = _split(raw or "transactions", str.lower)
    if "balance" in products:
        raise ConfigError(
            "PLAID_PRODUCTS: 'balance' is not a Link product (it is always available)"
        )
    return _choices("PLAID_PRODUCTS", products, LINK_PRODUCTS)


def _country_codes(raw: str | None, _values: Mapping[str, object]) -> tuple[str, ...]:
    return _choices("PLAID_COUNTRY_CODES", _split(raw or "US", str.upper), COUNTRY_CODES)


def _language(raw: str | None, _values: Mapping[str, object]) -> str:
    language = (raw or "en").lower()
    if language not in LANGUAGES:
        raise ConfigError(f"PLAID_LANGUAGE must be one of {sorted(LANGUAGES)}, not {language!r}")
    return language


def _redirect_uri(raw: str | None, values: Mapping[str, object]) -> str | None:
    if raw is not None:
        _check_redirect_uri(raw, values.get("plaid_env"))
    return raw


def _android_package_name(raw: str | None, _values: Mapping[str, object]) -> str | None:
    if raw is not None and not _ANDROID_PACKAGE.match(raw):
        raise ConfigError("PLAID_ANDROID_PACKAGE_NAME must look like com.example.app")
    return raw


def _webhook_url(raw: str | None, values: Mapping[str, object]) -> str | None:
    if raw is not None:
        _check_webhook(raw, values.get("plaid_env"))
    return raw


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


def _check_redirect_uri(uri: str, plaid_env: object) -> None:
    """`plaid_env` None: unknown (PLAID_ENV itself is invalid), so localhost is not judged."""
    parts = urlsplit(uri)
    if parts.query or parts.fragment or uri.endswith("?") or "#" in uri:
        raise ConfigError("PLAID_REDIRECT_URI must not contain a query string or fragment")
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname == "localhost":
        if plaid_env in {"sandbox", None}:
            return
        raise ConfigError("PLAID_REDIRECT_URI: http://localhost is only accepted in sandbox")
    raise ConfigError("PLAID_REDIRECT_URI must be an https URL (http://localhost in sandbox)")


def _check_webhook(url: str, plaid_env: object) -> None:
    """Plaid posts Item and Link events (public tokens among them) to this URL: in clear text
    only in sandbox, whose data is fake. `plaid_env` None: PLAID_ENV is invalid, not judged."""
    parts = urlsplit(url)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise ConfigError("PLAID_WEBHOOK_URL must be an absolute https URL")
    if parts.scheme == "http" and plaid_env not in {"sandbox", None}:
        raise ConfigError("PLAID_WEBHOOK_URL must be https outside sandbox (http:// is refused)")


def _base_url(override: str | None, values: Mapping[str, object]) -> str:
    if override is None:
        return PLAID_ENVIRONMENTS[str(values.get("plaid_env", "sandbox"))]
    if not is_allowed_plaid_url(override):
        raise ConfigError(
            "PLAID_BASE_URL must be https://*.plaid.com or a loopback address: credentials are "
            "never sent anywhere else"
        )
    return override.rstrip("/")


_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_KMS_KEY = re.compile(
    r"^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key/[0-9a-f-]{36}|alias/[A-Za-z0-9/_-]{1,250})"
    r"|alias/[A-Za-z0-9/_-]{1,250}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
)


def _items_table(raw: str | None, _values: Mapping[str, object]) -> str | None:
    if raw is not None and not _TABLE_NAME.match(raw):
        raise ConfigError("ITEMS_TABLE must be a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)")
    return raw


def _items_key_id(raw: str | None, _values: Mapping[str, object]) -> str | None:
    if raw is not None and not _KMS_KEY.match(raw):
        raise ConfigError("ITEMS_KEY_ID must be a KMS key id, key ARN, alias name or alias ARN")
    return raw


_WEBHOOK_PATH = re.compile(r"^(/[A-Za-z0-9._~-]+){1,8}$")


def _webhook_queue_url(raw: str | None, _values: Mapping[str, object]) -> str | None:
    if raw is None:
        return None
    parts = urlsplit(raw)
    host = (parts.hostname or "").lower()
    https = parts.scheme == "https" and bool(host)
    if "@" in raw or not (https or (parts.scheme == "http" and is_loopback_host(host))):
        raise ConfigError("WEBHOOK_QUEUE_URL must be the queue's https URL (the stack sets it)")
    return raw


def _webhook_path(raw: str | None, _values: Mapping[str, object]) -> str | None:
    if raw is not None and not _WEBHOOK_PATH.match(raw):
        raise ConfigError("PLAID_WEBHOOK_PATH must be an absolute URL path like /webhooks/plaid")
    return raw


def _ttl(raw: str | None, _values: Mapping[str, object]) -> int:
    if raw is None:
        return DEFAULT_SECRET_TTL_SECONDS
    try:
        ttl = int(raw)
    except ValueError:
        raise ConfigError("PLAID_SECRET_TTL_SECONDS must be a whole number of seconds") from None
    if not 0 <= ttl <= 86_400:
        raise ConfigError("PLAID_SECRET_TTL_SECONDS must be between 0 and 86400")
    return ttl


# In the order load_config checks them: its first error is the first failing row.
SETTINGS: Final[tuple[Setting, ...]] = (
    Setting(
        "secret_id",
        "PLAID_SECRET_ID",
        _secret_id,
        "set PLAID_SECRET_ID to the Plaid secret's name or ARN (PlaidSecretId)",
    ),
    Setting(
        "client_name",
        "PLAID_CLIENT_NAME",
        _client_name,
        "set PLAID_CLIENT_NAME to the app's name, 1-30 characters (PlaidClientName)",
    ),
    Setting(
        "plaid_env",
        "PLAID_ENV",
        _plaid_env,
        "set PLAID_ENV to sandbox or production (PlaidEnv)",
    ),
    Setting(
        "products",
        "PLAID_PRODUCTS",
        _products,
        "list Link products only in PLAID_PRODUCTS, comma-separated; leave out balance, it "
        "comes with any product (PlaidProducts)",
    ),
    Setting(
        "country_codes",
        "PLAID_COUNTRY_CODES",
        _country_codes,
        "list ISO country codes Plaid serves in PLAID_COUNTRY_CODES (PlaidCountryCodes)",
    ),
    Setting(
        "language",
        "PLAID_LANGUAGE",
        _language,
        "set PLAID_LANGUAGE to one of Link's languages (PlaidLanguage)",
    ),
    Setting(
        "redirect_uri",
        "PLAID_REDIRECT_URI",
        _redirect_uri,
        "use an https URL without query string or fragment (http://localhost in sandbox only), "
        "registered in the Dashboard's Allowed redirect URIs (PlaidRedirectUri)",
    ),
    Setting(
        "android_package_name",
        "PLAID_ANDROID_PACKAGE_NAME",
        _android_package_name,
        "set the Android app's package name, like com.example.app (PlaidAndroidPackageName)",
    ),
    Setting(
        "webhook_url",
        "PLAID_WEBHOOK_URL",
        _webhook_url,
        "set an absolute https URL, or nothing (PlaidWebhookUrl)",
    ),
    Setting(
        "base_url",
        "PLAID_BASE_URL",
        _base_url,
        "unset PLAID_BASE_URL: it is for tests and local runs against a loopback stand-in",
    ),
    Setting(
        "secret_ttl_seconds",
        "PLAID_SECRET_TTL_SECONDS",
        _ttl,
        "set a whole number of seconds, 0-86400 (PlaidSecretTtlSeconds)",
    ),
    Setting(
        "items_table",
        "ITEMS_TABLE",
        _items_table,
        "set ITEMS_TABLE to the Items table's name (the stack sets it from ItemsTable)",
    ),
    Setting(
        "items_key_id",
        "ITEMS_KEY_ID",
        _items_key_id,
        "set ITEMS_KEY_ID to the access-token key's ARN (the stack sets it from ItemsKey)",
    ),
    Setting(
        "webhook_queue_url",
        "WEBHOOK_QUEUE_URL",
        _webhook_queue_url,
        "set WEBHOOK_QUEUE_URL to the webhook queue's URL (the stack sets it from WebhookQueue)",
    ),
    Setting(
        "webhook_path",
        "PLAID_WEBHOOK_PATH",
        _webhook_path,
        "set PLAID_WEBHOOK_PATH to the receiver's route, /webhooks/plaid (the stack sets it)",
    ),
)
