"""What botocore, urllib3 and requests may print to the function's log, at any level."""

import logging
from typing import Final

# Lambda's runtime puts its own handler on the root logger at the function's log level, so every
# library logger prints at that level. At DEBUG, botocore and urllib3 print the signed
# GetSecretValue request (Authorization with its signature, the session token: replayable for
# minutes), the canonical request, and the response that carries the Plaid keys. The loggers
# of the libraries that make the service's AWS and Plaid calls therefore pass on, whatever
# the level, only their warnings and errors and the lines below, which are known to carry no
# credential, header or body; every other line, from any of their loggers present or future, is
# dropped.
_GATED_LIBRARIES: Final = ("botocore", "urllib3", "requests")
_GATE_NAME: Final = "linktoken-library-gate"
_KEPT_AS_WRITTEN: Final = frozenset(
    {
        ("botocore.credentials", "Looking for credentials via: %s"),
        ("botocore.credentials", "Found credentials in environment variables."),
        ("botocore.endpoint", "Setting %s timeout as %s"),
        ("botocore.endpoint", "Response received to retry, sleeping for %s seconds"),
        ("botocore.regions", "Endpoint provider result: %s"),
        ("botocore.retries.standard", "Not retrying request."),
        ("botocore.retries.standard", "Retry needed, retrying request after delay of: %s"),
        (
            "botocore.retries.standard",
            "Retry needed but retry quota reached, not retrying request.",
        ),
        ("botocore.retries.standard", "Max attempts of %s reached."),
        ("urllib3.connectionpool", "Starting new HTTP connection (%d): %s:%s"),
        ("urllib3.connectionpool", "Starting new HTTPS connection (%d): %s:%s"),
        ("urllib3.connectionpool", "Resetting dropped connection: %s"),
    }
)
_MAKING_REQUEST: Final = ("botocore.endpoint", "Making request for %s with params: %s")
_URLLIB3_RESPONSE: Final = ("urllib3.connectionpool", '%s://%s:%s "%s %s %s" %s %s')


def _library_line(record: logging.LogRecord) -> logging.LogRecord | None:
    """The record as it may be printed, or None when it may not be printed at all."""
    if record.levelno >= logging.WARNING:
        return record
    if not isinstance(record.msg, str):  # the allow-list is of format strings
        return None
    line = (record.name, record.msg)
    args = record.args if isinstance(record.args, tuple) else ()
    if line in _KEPT_AS_WRITTEN:
        return record
    if line == _MAKING_REQUEST and args:
        # The operation only: the params hold the request's headers and body.
        return _rewritten(record, "Making request for %s", args[:1])
    if line == _URLLIB3_RESPONSE and len(args) == 8:
        # Method, path, status and length; a query string (a presigned URL's signature) is cut.
        path = str(args[4]).split("?", 1)[0]
        return _rewritten(record, record.msg, (*args[:4], path, *args[5:]))
    return None


def _rewritten(record: logging.LogRecord, msg: str, args: tuple[object, ...]) -> logging.LogRecord:
    kept = logging.makeLogRecord(record.__dict__)
    kept.msg, kept.args = msg, args
    return kept


class _LibraryLogGate(logging.Handler):
    """Sits on a library's top logger in place of propagation: passes on to the root logger's
    handlers only what `_library_line` allows. Children's records reach it whatever their own
    level, and a level set later cannot undo it."""

    def __init__(self) -> None:
        super().__init__()
        self.name = _GATE_NAME

    def emit(self, record: logging.LogRecord) -> None:
        try:
            kept = _library_line(record)
        except Exception:  # never raise into the library's call; and handleError would print
            return  # the record's arguments, the very thing this gate keeps out of the log
        if kept is not None:
            logging.getLogger().callHandlers(kept)


def gate_library_logs() -> None:
    """Put the gate on each library's top logger, in place of propagation (once only)."""
    for name in _GATED_LIBRARIES:
        library = logging.getLogger(name)
        for handler in [h for h in library.handlers if h.name == _GATE_NAME]:
            library.removeHandler(handler)  # this module reloaded (tests): one gate only
        library.addHandler(_LibraryLogGate())
        library.propagate = False
