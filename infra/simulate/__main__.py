"""`python -m infra.simulate [--url URL --jwt TOKEN [--standin URL]] [--webhook-timeout S]`:
see the package docstring. Exit status 0 when every step gave what it should, 1 otherwise
(the step is named), 2 for unusable arguments."""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from infra.gateway import jwt_local
from infra.gateway.serve_process import serve
from infra.simulate.plaid_side import PlaidSide, Sandbox, StandIn
from infra.simulate.report import Printer
from infra.simulate.service import Service, is_loopback_url
from infra.simulate.steps import Lifecycle

WEBHOOK_TIMEOUT_S: Final = 30.0
SERVE_WORKERS: Final = "2"  # per function: enough for one Item, quicker to start than 4
STANDIN_HEADER: Final = "x-plaid-stand-in"


@dataclass(frozen=True)
class Target:
    service: Service
    plaid: PlaidSide
    secrets: tuple[str, ...]  # never printed


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m infra.simulate",
        description="One Item's lifecycle through the service, with its health after each step.",
    )
    parser.add_argument("--url", help="a service already running on loopback (make serve's URL)")
    parser.add_argument("--jwt", help="the Bearer token for --url (make serve's dev token)")
    parser.add_argument("--standin", help="with --url: the Plaid stand-in's URL (banner)")
    parser.add_argument(
        "--webhook-timeout",
        type=float,
        default=WEBHOOK_TIMEOUT_S,
        help=f"seconds to wait for the webhook's health (default {WEBHOOK_TIMEOUT_S:g})",
    )
    args = parser.parse_args(argv)
    if bool(args.url) != bool(args.jwt):
        parser.error("--url and --jwt go together")
    if args.standin and not args.url:
        parser.error("--standin goes with --url")
    for name in ("url", "standin"):
        value = getattr(args, name)
        if value and not is_loopback_url(value):
            parser.error(f"--{name} must be a loopback http(s) URL: nothing leaves this machine")
    return args


def sandbox_keys() -> tuple[str, str] | None:
    keys = os.environ.get("PLAID_CLIENT_ID"), os.environ.get("PLAID_SECRET")
    return (keys[0], keys[1]) if keys[0] and keys[1] else None


@contextmanager
def started_service(out: Printer) -> Iterator[Target]:
    """make serve on a free loopback port (moto, and the stand-in unless Sandbox keys are
    set), stopped on exit; a JWT for a user of this run only."""
    keys = sandbox_keys()
    env = {"WORKERS": SERVE_WORKERS}
    if keys:
        env |= {"PLAID_CLIENT_ID": keys[0], "PLAID_SECRET": keys[1], "PLAID_ENV": "sandbox"}
    jwt = jwt_local.dev_token(sub=f"simulate-{uuid.uuid4().hex[:12]}")
    out.line("simulate: starting make serve (moto plays AWS) on a free loopback port ...")
    with serve(env) as server:
        plaid: PlaidSide = StandIn(server.standin_url) if server.standin_url else _sandbox(keys)
        out.line(f"simulate: make serve on {server.url}; Plaid: {plaid.description}")
        yield Target(Service(server.url, jwt), plaid, (jwt, *(keys or ())))
    out.line("simulate: make serve stopped")


@contextmanager
def running_service(args: argparse.Namespace, out: Printer) -> Iterator[Target]:
    """The service at --url; the stand-in at --standin, else Sandbox with the keys."""
    service = Service(args.url, args.jwt)
    keys = sandbox_keys()
    if args.standin:
        plaid: PlaidSide = StandIn(args.standin)
    elif STANDIN_HEADER in service.api("GET", "/items").headers:
        raise SystemExit(
            "simulate: that service plays Plaid with the loopback stand-in: pass --standin"
            " <its URL> (make serve's banner line 'Plaid stand-in')"
        )
    else:
        plaid = _sandbox(keys)
    out.line(f"simulate: the service at {service.base_url}; Plaid: {plaid.description}")
    yield Target(service, plaid, (args.jwt, *(keys or ())))


def _sandbox(keys: tuple[str, str] | None) -> PlaidSide:
    if keys is None:
        raise SystemExit("simulate: no Plaid stand-in, and PLAID_CLIENT_ID/PLAID_SECRET unset")
    return Sandbox(*keys)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    keys = sandbox_keys()
    out = Printer(secrets=keys or ())
    target = running_service(args, out) if args.url else started_service(out)
    with target as running:
        printer = Printer(secrets=running.secrets)
        if not running.plaid.webhooks_arrive:
            printer.line(
                "simulate: Plaid cannot reach this machine, so no webhook will arrive: health is"
                " refreshed from /item/get instead"
            )
        return Lifecycle(running.service, running.plaid, args.webhook_timeout).run(printer)


if __name__ == "__main__":
    sys.exit(main())
