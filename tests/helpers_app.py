"""Helpers for tests that re-run `app`'s cold start, need a loopback port nobody answers on, or run
`make invoke` as a new user does."""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, never listening) while the block runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@contextmanager
def cold_started_app(env: Mapping[str, str | None]) -> Iterator[ModuleType]:
    """`app` imported again (a new cold start) with `env` applied over the process environment.

    A value of None removes the variable. Afterwards the environment is restored and `app` is
    imported once more, so later tests see the module as the process environment builds it.
    Nothing can reach AWS: Secrets Manager points at a closed loopback port unless `env` says
    otherwise.
    """
    import app

    try:
        with closed_port() as port, pytest.MonkeyPatch.context() as patch:
            patch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{port}")
            for name, value in env.items():
                if value is None:
                    patch.delenv(name, raising=False)
                else:
                    patch.setenv(name, value)
            yield importlib.reload(app)
    finally:
        importlib.reload(app)


def offline_runtime(plaid_port: int) -> Any:
    """A container for requests that must be answered before anything upstream is asked.

    Configured like conftest's `service_env`, but its secret store raises if it is ever read
    (the handler then answers 500 INTERNAL_ERROR, which no such test expects) and Plaid is a
    loopback port nobody answers on. Cheaper than moto plus the stand-in, for 4xx tests.
    """
    from linktoken.container import build_container
    from linktoken.secret_store import SecretStore
    from tests.conftest import SECRET_ID

    container = build_container(
        {
            "PLAID_SECRET_ID": SECRET_ID,
            "PLAID_CLIENT_NAME": "Test App",
            "PLAID_BASE_URL": f"http://127.0.0.1:{plaid_port}",
            "PLAID_PRODUCTS": "transactions,auth",
            "PLAID_ANDROID_PACKAGE_NAME": "com.example.app",
            "PLAID_REDIRECT_URI": "https://app.example.com/oauth",
        }
    )
    assert container.service is not None, container.config_error
    container.service.secrets = SecretStore(SECRET_ID, 300, client_factory=_no_secret_reads)
    return container


def _no_secret_reads() -> Any:
    raise RuntimeError("this request must be answered without reading the secret")


def invoke(event: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """`make invoke` (`python -m infra.invoke`) as a new user runs it: a subprocess without
    the caller's Plaid, AWS and Items settings, `EVENT` and `settings` in its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLAID_", "AWS_", "ITEMS_"))}
    return subprocess.run(
        [sys.executable, "-m", "infra.invoke"],
        env={**env, "EVENT": event, **settings},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
