"""Local defaults shared by `make invoke` and `make serve`: the function's configuration, and
stand-ins for what a laptop lacks (an AWS account, Plaid keys), each used only where its own
setting is absent.

- Configuration: infra/env.json (what `sam local invoke --env-vars` uses), then fake AWS
  credentials and a region so botocore can sign requests to a stand-in. Every value gives way
  to a variable already set.
- Secrets Manager: `AWS_ENDPOINT_URL_SECRETS_MANAGER` if set; real AWS if `AWS_PROFILE` and
  `PLAID_SECRET_ID` are both set; otherwise moto in server mode on loopback (one endpoint that
  several processes can share), holding the secret `PLAID_SECRET_ID`, seeded from
  `PLAID_CLIENT_ID`/`PLAID_SECRET` when set, else with the stand-in's own keys.
- Plaid: Plaid Sandbox when `PLAID_CLIENT_ID` and `PLAID_SECRET` are set; `PLAID_BASE_URL` if
  set; otherwise the loopback stand-in, which is NOT Plaid.

    with local_backends(os.environ) as backends:
        print(backends.plaid, backends.secrets)   # what is used, for a banner
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.doubles.moto_server import moto_server
from infra.doubles.standin_control import ScriptablePlaidStandIn

ROOT = Path(__file__).resolve().parents[2]
# Only what makes the function runnable on a laptop; the rest is infra/env.json.
LOCAL_AWS = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
}
LOCAL_ONLY = {"POWERTOOLS_TRACE_DISABLED": "true"}  # no X-Ray daemon on a laptop
STANDIN_KEYS = ("standin-client-id", "standin-secret")  # the stand-in's defaults: fake keys


@dataclass
class Backends:
    """What the local run talks to, described for a person (never a key)."""

    plaid: str
    secrets: str
    standin: ScriptablePlaidStandIn | None = None


def function_environment() -> dict[str, str]:
    """The function's configuration for local runs (infra/env.json)."""
    env: dict[str, str] = json.loads((ROOT / "infra/env.json").read_text())["LinkTokenFunction"]
    return env


def uses_real_aws(environ: MutableMapping[str, str]) -> bool:
    """A real AWS profile and a secret id chosen by the user: read the real secret."""
    return bool(
        environ.get("AWS_PROFILE")
        and environ.get("PLAID_SECRET_ID")
        and not environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER")
    )


def may_hold_real_keys(environ: MutableMapping[str, str]) -> bool:
    """Plaid keys of the developer's own, not the stand-in's fake ones: given directly, or in a
    Secrets Manager the developer chose (real AWS, or an endpoint of theirs)."""
    return bool(
        (environ.get("PLAID_CLIENT_ID") and environ.get("PLAID_SECRET"))
        or uses_real_aws(environ)
        or environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER")
    )


@contextlib.contextmanager
def local_backends(environ: MutableMapping[str, str]) -> Iterator[Backends]:
    """Fill `environ` with local defaults and run the stand-ins its settings leave missing."""
    real_aws = uses_real_aws(environ)
    defaults = {**function_environment(), **LOCAL_ONLY, **({} if real_aws else LOCAL_AWS)}
    for key, value in defaults.items():
        environ.setdefault(key, value)

    with contextlib.ExitStack() as stack:
        keys = environ.get("PLAID_CLIENT_ID"), environ.get("PLAID_SECRET")
        standin = None
        if all(keys):
            client_id, secret = str(keys[0]), str(keys[1])
            plaid = environ.get("PLAID_BASE_URL") or f"Plaid {environ['PLAID_ENV']} with your keys"
        elif environ.get("PLAID_BASE_URL"):
            client_id, secret = STANDIN_KEYS
            plaid = environ["PLAID_BASE_URL"]
        else:
            standin = stack.enter_context(ScriptablePlaidStandIn(*STANDIN_KEYS))
            client_id, secret = standin.client_id, standin.secret
            environ["PLAID_BASE_URL"] = standin.base_url
            plaid = (
                f"a loopback STAND-IN at {standin.base_url}. It is NOT Plaid; its tokens work"
                " nowhere. Set PLAID_CLIENT_ID and PLAID_SECRET to use Plaid Sandbox."
            )

        secret_id = environ["PLAID_SECRET_ID"]
        if environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER"):
            secrets = f"{secret_id!r} at {environ['AWS_ENDPOINT_URL_SECRETS_MANAGER']}"
        elif real_aws:
            secrets = f"{secret_id!r} in AWS (profile {environ['AWS_PROFILE']})"
        else:
            endpoint = stack.enter_context(moto_server())
            environ["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = endpoint
            _create_secret(endpoint, environ, secret_id, client_id, secret)
            seeded = "PLAID_CLIENT_ID/PLAID_SECRET" if all(keys) else "the stand-in's fake keys"
            secrets = f"{secret_id!r} in a moto Secrets Manager at {endpoint} ({seeded})"
        yield Backends(plaid=plaid, secrets=secrets, standin=standin)


def _create_secret(
    endpoint: str, environ: MutableMapping[str, str], secret_id: str, client_id: str, secret: str
) -> None:
    import botocore.session

    client: Any = botocore.session.get_session().create_client(
        "secretsmanager",
        endpoint_url=endpoint,
        region_name=environ["AWS_DEFAULT_REGION"],
        aws_access_key_id=environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environ["AWS_SECRET_ACCESS_KEY"],
    )
    value = json.dumps({"client_id": client_id, "secret": secret})
    try:
        client.create_secret(Name=secret_id, SecretString=value)
    except client.exceptions.ResourceExistsException:
        # moto keeps its state per process: a second local run in one process (tests) finds
        # the secret already there.
        client.put_secret_value(SecretId=secret_id, SecretString=value)
