"""requests' transport with every answer read against the attempt's deadline.

requests' read timeout bounds each socket read, so a server sending a byte at a time could hold
a call indefinitely. Here every byte of an answer (status line, headers, chunk lines, body, a
proxy's answer to CONNECT) is read through a reader on which no read waits past the deadline
that `attempt_deadline` set for the call. No thread, no timer: each socket read's timeout is
the smaller of the read timeout and the time left.
"""

import contextvars
import http.client
import io
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import requests.adapters
import urllib3
import urllib3.connection
import urllib3.connectionpool

# The deadline (time.monotonic()) of the attempt whose response is about to be read; set by
# `_exchange` around the POST, so only this client's own calls are bound by it.
_ATTEMPT_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "plaid_attempt_deadline", default=None
)


class _DeadlineReader(io.RawIOBase):
    """A socket's reading end on which no read waits past `deadline`, nor longer than the
    socket's timeout (the read timeout) when the response started. Every byte of the answer
    (status line, headers, chunk lines, body) comes through it."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._io = sock.makefile("rb", buffering=0)  # keeps the socket's reference count
        self._deadline = deadline
        self._read_timeout = sock.gettimeout()

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._io.fileno()

    def readinto(self, buffer: Any) -> int | None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the attempt's deadline passed")  # urllib3: ReadTimeoutError
        if self._read_timeout is None or left < self._read_timeout:
            self._sock.settimeout(left)  # nothing to change while the read timeout is shorter
        return self._io.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            self._io.close()
        super().close()


class _DeadlineSocket:
    """The one thing `http.client.HTTPResponse` asks of its socket: a reading file."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))


class _DeadlineResponse(http.client.HTTPResponse):
    """A response read against the attempt's deadline, when `_exchange` set one."""

    def __init__(
        self, sock: Any, debuglevel: int = 0, method: str | None = None, url: str | None = None
    ) -> None:
        deadline = _ATTEMPT_DEADLINE.get()
        if deadline is not None:
            sock = _DeadlineSocket(sock, deadline)
        super().__init__(sock, debuglevel, method, url)


class _HTTPConnection(urllib3.connection.HTTPConnection):
    response_class = _DeadlineResponse


class _HTTPSConnection(urllib3.connection.HTTPSConnection):
    response_class = _DeadlineResponse  # a proxy's CONNECT answer included


class _HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS: Final = {"http": _HTTPPool, "https": _HTTPSPool}


class DeadlineAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter with connections whose responses are read against the deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, urllib3.ProxyManager):  # an HTTP(S) proxy; SOCKS keeps its own
            manager.pool_classes_by_scheme = _POOLS
        return manager


@contextmanager
def attempt_deadline(deadline: float) -> Iterator[None]:
    """Responses that start being read inside this block end by `deadline` (time.monotonic())."""
    bound = _ATTEMPT_DEADLINE.set(deadline)
    try:
        yield
    finally:
        _ATTEMPT_DEADLINE.reset(bound)
