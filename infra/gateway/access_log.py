"""One access-log line per request in the stage's format (template.yaml AccessLogSettings).

API Gateway fills each `$context.*` variable and writes "-" for one with no value; the format's
own quotes decide whether a value is a JSON string or a number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

_VARIABLE = re.compile(r"\$context\.[A-Za-z.]+")


def render(log_format: str, context: Mapping[str, object]) -> str:
    """The format with every `$context.<name>` replaced by `context[name]` (or "-")."""

    def fill(match: re.Match[str]) -> str:
        value = context.get(match.group(0).removeprefix("$context."))
        text = "-" if value is None or value == "" else str(value)
        return json.dumps(text)[1:-1]  # safe inside the format's quotes

    return _VARIABLE.sub(fill, log_format)


def variables(log_format: str) -> list[str]:
    """The `$context.*` names the format uses."""
    return [name.removeprefix("$context.") for name in _VARIABLE.findall(log_format)]
