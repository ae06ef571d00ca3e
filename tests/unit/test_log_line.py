"""The summary line's message is the event name, kept as text: the service's logger does not
try to parse messages as JSON (Powertools' default, an exception per plain-text line)."""

from __future__ import annotations

from typing import Any

from linktoken import observability as obs


def test_a_message_is_logged_as_the_text_it_is(output: Any) -> None:
    obs.logger.info('{"looks": "like json"}')
    obs.logger.info("link_token_created", extra={"status": 200})

    first, second = output.logs()[-2:]
    assert first["message"] == '{"looks": "like json"}'
    assert second["message"] == "link_token_created"
    assert second["status"] == 200
    assert second["level"] == "INFO"
