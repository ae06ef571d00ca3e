"""The lines `make simulate` prints: one per step, `N name  health: H  what happened`, then
the verdict. Nothing secret gets through: link and public tokens are masked as the service's
logs mask them (`mask_token`), an access token never appears, and the JWT and Plaid keys
given to the Printer are replaced wherever they would."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from typing import Final, TextIO

from linktoken.observability import mask_token

# Plaid's token shapes: `link-sandbox-<uuid>`, `public-production-<uuid>`, `access-...`.
_TOKEN: Final = re.compile(r"\b(?:link|public|access)-[a-z]+-[0-9A-Za-z-]{8,}")
NAME_WIDTH: Final = 12
HEALTH_WIDTH: Final = 16


def masked(text: str) -> str:
    """Every Plaid token in `text` masked (an access token entirely)."""

    def one(match: re.Match[str]) -> str:
        token = match.group(0)
        return "<access token>" if token.startswith("access-") else mask_token(token)

    return _TOKEN.sub(one, text)


class Printer:
    """Prints to `out` (stdout), with `secrets` (the JWT, the Plaid secret) never shown."""

    def __init__(self, secrets: Iterable[str] = (), out: TextIO | None = None) -> None:
        self._secrets = [s for s in secrets if s]
        self._out = out or sys.stdout

    def line(self, text: str) -> None:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        print(masked(text), file=self._out, flush=True)

    def step(self, number: int, name: str, health: str, note: str) -> None:
        self.line(f"{number} {name:<{NAME_WIDTH}} health: {health:<{HEALTH_WIDTH}} {note}")
