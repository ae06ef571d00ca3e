"""`POST /items`'s body: the two arguments of Link's `onSuccess`, checked before anything is
called.

The SDKs name a few fields differently (web: `institution.institution_id`; iOS, Android and
React Native: `institution.id`), and metadata carries more than the service keeps: unknown
metadata fields are ignored, unknown top-level fields refused.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from linktoken.problems import Problem
from plaiditems.records import Account, Institution

MAX_ACCOUNTS: Final = 100
MAX_TEXT: Final = 200
# Plaid's format: public-<environment>-<identifier>.
_PUBLIC_TOKEN = re.compile(r"^public-([a-z]+)-[A-Za-z0-9-]{1,100}$")
_FIELDS: Final = frozenset({"public_token", "metadata"})


@dataclass(frozen=True, slots=True)
class ExchangeRequest:
    """A public token and what Link said about it. `repr` never shows the token."""

    public_token: str
    token_environment: str
    institution: Institution
    accounts: tuple[Account, ...]
    link_session_id: str | None

    def __repr__(self) -> str:
        return (
            f"ExchangeRequest(institution={self.institution!r}, accounts={len(self.accounts)}, "
            f"token_environment={self.token_environment!r})"
        )


def parse_exchange(body: Mapping[str, Any] | None) -> ExchangeRequest:
    """Validate the decoded JSON body; raise `Problem` INVALID_REQUEST at the first fault.

    Example:
        >>> r = parse_exchange({"public_token": "public-sandbox-1a2b",
        ...     "metadata": {"institution": {"institution_id": "ins_1", "name": "Bank"},
        ...                  "accounts": [{"id": "a1", "name": "Checking", "mask": "0000"}]}})
        >>> r.institution.name, r.accounts[0].mask, r.token_environment
        ('Bank', '0000', 'sandbox')
    """
    if body is None:
        raise _invalid("The body must be Link's onSuccess arguments: public_token and metadata.")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise _invalid(f"Unknown field(s) {unknown[:5]}; accepted: {sorted(_FIELDS)}.")
    token = body.get("public_token")
    match = _PUBLIC_TOKEN.fullmatch(token) if isinstance(token, str) else None
    if match is None or not isinstance(token, str):
        raise _invalid("'public_token' must be the public_token Link gave onSuccess.")
    metadata = body.get("metadata")
    if not isinstance(metadata, Mapping):
        raise _invalid("'metadata' must be the metadata object Link gave onSuccess.")
    return ExchangeRequest(
        public_token=token,
        token_environment=match.group(1),
        institution=_institution(metadata.get("institution")),
        accounts=_accounts(metadata.get("accounts")),
        link_session_id=_optional_text(metadata, "link_session_id"),
    )


def _institution(value: Any) -> Institution:
    if not isinstance(value, Mapping):
        raise _invalid("'metadata.institution' must be an object with institution_id and name.")
    institution_id = value.get("institution_id", value.get("id"))
    name = value.get("name")
    if not _text(institution_id) or not _text(name):
        raise _invalid("'metadata.institution' needs institution_id (or id) and name.")
    return Institution(str(institution_id), str(name))


def _accounts(value: Any) -> tuple[Account, ...]:
    if not isinstance(value, list) or not value or len(value) > MAX_ACCOUNTS:
        raise _invalid(f"'metadata.accounts' must list 1-{MAX_ACCOUNTS} accounts.")
    accounts = []
    for index, account in enumerate(value):
        if not isinstance(account, Mapping) or not _text(account.get("id")):
            raise _invalid(f"'metadata.accounts[{index}]' must be an object with an id.")
        fields = {}
        for name in ("name", "mask", "type", "subtype"):
            item = account.get(name)
            if item is not None and not _text(item):
                raise _invalid(
                    f"'metadata.accounts[{index}].{name}' must be text of 1-{MAX_TEXT} "
                    "characters or null."
                )
            fields[name] = item
        accounts.append(
            Account(
                str(account["id"]),
                str(fields["name"] or ""),
                fields["mask"],
                fields["type"],
                fields["subtype"],
            )
        )
    return tuple(accounts)


def _optional_text(metadata: Mapping[str, Any], name: str) -> str | None:
    value = metadata.get(name)
    if value is None:
        return None
    if not _text(value):
        raise _invalid(f"'metadata.{name}' must be text of 1-{MAX_TEXT} characters.")
    return str(value)


def _text(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_TEXT and value.isprintable()


def _invalid(detail: str) -> Problem:
    return Problem("INVALID_REQUEST", detail)
