"""moto's Secrets Manager in server mode on a free loopback port, behind the local guard."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from infra.gateway.local_guard import RequestGuard, WsgiGuard

WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


@contextlib.contextmanager
def moto_server(wrap: Callable[[WsgiApp], WsgiApp] | None = None) -> Iterator[str]:
    """moto in server mode on a free loopback port; yields its endpoint URL.

    `wrap` puts a WSGI middleware between the guard and moto (the benchmark counts the
    secret reads that reach moto with one). Its own thread rather than moto's
    ThreadedMotoServer, to poll for shutdown every 50 ms instead of 500: Ctrl-C has to stop
    everything within a second. Behind the local guard (infra/gateway/local_guard.py): only
    its own Host, no web page's Origin, no CORS, no `/moto-api/` (which would hand any caller
    every seeded secret).
    """
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per call
    app: WsgiApp = DomainDispatcherApplication(create_backend_app)
    guarded = WsgiGuard(wrap(app) if wrap else app, RequestGuard(frozenset()))
    server = make_server("127.0.0.1", 0, guarded, threaded=True, request_handler=MotoRequestHandler)
    guarded.guard = RequestGuard.for_address(server.server_address)  # the port is known now
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
