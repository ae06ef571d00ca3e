"""Local defaults shared by `make invoke` and `make serve`: the functions' configuration, and
stand-ins for what a laptop lacks (an AWS account, Plaid keys), each used only where its own
setting is absent.

- Configuration: infra/env.json (what `sam local invoke --env-vars` uses), then fake AWS
  credentials and a region so botocore can sign requests to a stand-in. Every value gives way
  to a variable already set.
- Secrets Manager: `AWS_ENDPOINT_URL_SECRETS_MANAGER` if set; real AWS if `AWS_PROFILE` and
  `PLAID_SECRET_ID` are both set; otherwise moto in server mode on loopback (one endpoint that
  several processes can share), holding the secret `PLAID_SECRET_ID`, seeded from
  `PLAID_CLIENT_ID`/`PLAID_SECRET` when set, else with the stand-in's own keys, and with a
  random `user_id_hmac_key` made for this run (never shown).
- DynamoDB and KMS (the Items table and the key that seals access tokens): each at
  `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_KMS` if set (ITEMS_TABLE / ITEMS_KEY_ID name
  what is there); in real AWS (as above) ITEMS_TABLE and ITEMS_KEY_ID must be the user's (the
  stack's ItemsTableName and ItemsKeyArn outputs): infra/env.json's names are a local
  convention, not the stack's, and without them the Items routes answer MISCONFIGURED.
  Otherwise the same moto server plays both: the table (pk/sk, as the stack makes it) named
  ITEMS_TABLE, and a new key whose ARN becomes ITEMS_KEY_ID (an `alias/...` ITEMS_KEY_ID of the
  user's is given to that key instead), both empty at the start of every run.
- SQS (the webhook queue, WEBHOOK_QUEUE_URL): `AWS_ENDPOINT_URL_SQS` if set (WEBHOOK_QUEUE_URL
  names the queue there); in real AWS WEBHOOK_QUEUE_URL must be the stack's (its
  WebhookQueueUrl output), and no local consumer polls it (the stack's own mapping does);
  otherwise moto again: every queue the template's functions are told about, created from its
  AWS::SQS::Queue definition with its dead-letter queue (infra/gateway/local_queues.py), named
  as WEBHOOK_QUEUE_URL's last segment says, empty at every start; WEBHOOK_QUEUE_URL becomes its
  URL. `Backends.queues` are the queues a local poller may consume (make serve's).
- Plaid: Plaid Sandbox when `PLAID_CLIENT_ID` and `PLAID_SECRET` are set; `PLAID_BASE_URL` if
  set; otherwise the loopback stand-in, which is NOT Plaid.

    with local_backends(os.environ) as backends:
        print(backends.plaid, backends.secrets, backends.items)   # what is used, for a banner
        backends.public_token("ins_109508", ["transactions"])     # a Sandbox public token

`LocalSetupError` says what a setting lacks, before anything has started.
"""

from __future__ import annotations

import contextlib
import json
import secrets as random
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.doubles.moto_server import moto_server
from infra.doubles.standin_control import ScriptablePlaidStandIn
from infra.gateway.cfn_template import (
    LINK_TOKEN_FUNCTION,
    load_template,
    queue_url_variables,
    table_definition,
)
from infra.gateway.local_queues import create_queue

ROOT = Path(__file__).resolve().parents[2]
# Only what makes the function runnable on a laptop; the rest is infra/env.json.
LOCAL_AWS = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
}
LOCAL_ONLY = {"POWERTOOLS_TRACE_DISABLED": "true"}  # no X-Ray daemon on a laptop
STANDIN_KEYS = ("standin-client-id", "standin-secret")  # the stand-in's defaults: fake keys
SANDBOX_URL = "https://sandbox.plaid.com"
# Each Items setting and the endpoint variable of the service that holds what it names.
ITEMS_SETTINGS = {
    "ITEMS_TABLE": "AWS_ENDPOINT_URL_DYNAMODB",
    "ITEMS_KEY_ID": "AWS_ENDPOINT_URL_KMS",
}
_STACK_OUTPUTS = {"ITEMS_TABLE": "ItemsTableName", "ITEMS_KEY_ID": "ItemsKeyArn"}
SQS_ENDPOINT = "AWS_ENDPOINT_URL_SQS"
# The queues' URL settings and the stack's outputs that hold them (real AWS).
_QUEUE_OUTPUTS = {"WEBHOOK_QUEUE_URL": "WebhookQueueUrl"}

PublicTokenMaker = Callable[[str, Sequence[str]], str]


class LocalSetupError(Exception):
    """A local run cannot start as configured; the message says what to set."""


@dataclass(frozen=True)
class QueueTarget:
    """A queue a local poller can consume: its URL, the SQS endpoint that holds it, and its
    ARN (None when the SQS is the user's: the poller asks for it)."""

    url: str
    endpoint: str
    arn: str | None = None


@dataclass
class Backends:
    """What the local run talks to, described for a person (never a key)."""

    plaid: str
    secrets: str
    items: str = ""
    standin: ScriptablePlaidStandIn | None = None
    # Settings the Items routes (and update mode) lack; empty when they are complete.
    items_missing: tuple[str, ...] = ()
    # True when the table and the key are moto's, made empty for this run.
    items_local: bool = False
    # `public_token(institution_id, products)`: a fresh Sandbox public token, made through
    # the Plaid in use with the keys this run knows; None where it cannot be (no known keys,
    # or not Sandbox).
    public_token: PublicTokenMaker | None = field(default=None, repr=False, compare=False)
    # The webhook queue, for a person; and the queues a local poller may consume, by the
    # template's logical id (none in real AWS: the stack's own event source mapping does).
    webhooks: str = ""
    queues: dict[str, QueueTarget] = field(default_factory=dict)


def function_environment(function: str = LINK_TOKEN_FUNCTION) -> dict[str, str]:
    """A function's configuration for local runs (infra/env.json)."""
    entries: dict[str, dict[str, str]] = json.loads((ROOT / "infra/env.json").read_text())
    if function not in entries:
        raise LocalSetupError(f"infra/env.json has no entry for {function}")
    return entries[function]


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


def items_missing_in_real_aws(environ: MutableMapping[str, str]) -> tuple[str, ...]:
    """The Items settings a real-AWS run lacks: each one whose service is real AWS (no endpoint
    of the user's) and that the user did not set."""
    if not uses_real_aws(environ):
        return ()
    return tuple(
        name
        for name, endpoint in ITEMS_SETTINGS.items()
        if not environ.get(name) and not environ.get(endpoint)
    )


def missing_items_message(missing: Sequence[str]) -> str:
    """What to set, for a person: the stack's outputs that hold each value."""
    wanted = ", ".join(f"{name} (the stack's {_STACK_OUTPUTS[name]} output)" for name in missing)
    return (
        f"with AWS_PROFILE and PLAID_SECRET_ID (real AWS) the Items routes need {wanted}; "
        "set them, or unset AWS_PROFILE to run everything on moto"
    )


@contextlib.contextmanager
def local_backends(
    environ: MutableMapping[str, str], function: str = LINK_TOKEN_FUNCTION
) -> Iterator[Backends]:
    """Fill `environ` with local defaults (`function`'s entry of infra/env.json) and run the
    stand-ins its settings leave missing."""
    real_aws = uses_real_aws(environ)
    missing = items_missing_in_real_aws(environ)
    # infra/env.json's queue URL is no stack's either: real AWS takes the user's only.
    unset_queues = tuple(
        name for name in _QUEUE_OUTPUTS if real_aws and not environ.get(SQS_ENDPOINT)
    )
    sqs_moto = not real_aws and not environ.get(SQS_ENDPOINT)
    dynamodb_moto = not real_aws and not environ.get(ITEMS_SETTINGS["ITEMS_TABLE"])
    kms_moto = not real_aws and not environ.get(ITEMS_SETTINGS["ITEMS_KEY_ID"])
    users_key = environ.get("ITEMS_KEY_ID") or None
    if kms_moto and users_key and not users_key.startswith("alias/"):
        raise LocalSetupError(
            f"ITEMS_KEY_ID={users_key!r} names a key the local KMS (moto) cannot have: give an "
            "alias name (alias/...), set AWS_ENDPOINT_URL_KMS to the KMS that holds the key, "
            "or unset ITEMS_KEY_ID"
        )
    defaults = {**function_environment(function), **LOCAL_ONLY, **({} if real_aws else LOCAL_AWS)}
    for key, value in defaults.items():
        # infra/env.json's table and key names are no stack's: real AWS takes the user's only.
        if key not in missing and key not in unset_queues:
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
        sm_moto = not environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER") and not real_aws
        wanted = sm_moto or dynamodb_moto or kms_moto or sqs_moto
        moto = stack.enter_context(moto_server()) if wanted else ""
        if environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER"):
            secrets = f"{secret_id!r} at {environ['AWS_ENDPOINT_URL_SECRETS_MANAGER']}"
        elif real_aws:
            secrets = f"{secret_id!r} in AWS (profile {environ['AWS_PROFILE']})"
        else:
            environ["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = moto
            _create_secret(moto, environ, secret_id, client_id, secret)
            seeded = "PLAID_CLIENT_ID/PLAID_SECRET" if all(keys) else "the stand-in's fake keys"
            secrets = f"{secret_id!r} in a moto Secrets Manager at {moto} ({seeded})"
        if missing:
            items = "NOT configured: " + missing_items_message(missing)
        else:
            items = _items_backends(
                environ, moto if dynamodb_moto else "", moto if kms_moto else "", users_key
            )
        webhooks, queues = _queue_backends(environ, moto if sqs_moto else "", real_aws)
        # The keys the function will use are known unless they are in a secret of the user's.
        known_keys = all(keys) or sm_moto
        yield Backends(
            plaid=plaid,
            secrets=secrets,
            items=items,
            standin=standin,
            items_missing=missing,
            items_local=dynamodb_moto and kms_moto,
            public_token=_public_token_maker(environ, client_id, secret) if known_keys else None,
            webhooks=webhooks,
            queues=queues,
        )


def _items_backends(
    environ: MutableMapping[str, str], dynamodb_moto: str, kms_moto: str, users_key: str | None
) -> str:
    """Create what moto plays (an empty table, a new key) and point the functions at it;
    describe where the Items live, naming the table and the key (never a key's material)."""
    table = environ["ITEMS_TABLE"]
    if dynamodb_moto:
        environ["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb_moto
        _create_table(_client("dynamodb", dynamodb_moto, environ), table)
        where_table = f"table {table!r} in moto's DynamoDB"
    else:
        where_table = f"table {table!r} at {environ.get('AWS_ENDPOINT_URL_DYNAMODB') or 'AWS'}"
    if kms_moto:
        environ["AWS_ENDPOINT_URL_KMS"] = kms_moto
        arn = _create_key(_client("kms", kms_moto, environ), users_key)
        # As the stack does, the functions get the key's ARN, unless the user named an alias.
        environ["ITEMS_KEY_ID"] = users_key or arn
        where_key = f"key {users_key} ({arn})" if users_key else f"key {arn}"
        where_key += " in moto's KMS"
    else:
        key = environ["ITEMS_KEY_ID"]
        where_key = f"key {key} at {environ.get('AWS_ENDPOINT_URL_KMS') or 'AWS'}"
    moto = dynamodb_moto or kms_moto
    return f"{where_table}, {where_key}" + (f" at {moto} (new, empty)" if moto else "")


def _queue_backends(
    environ: MutableMapping[str, str], sqs_moto: str, real_aws: bool
) -> tuple[str, dict[str, QueueTarget]]:
    """Create the queues moto plays (empty) and point the functions at them; describe where
    the webhook queue is, and the queues a local poller may consume."""
    variables = queue_url_variables(load_template())
    if real_aws and not environ.get(SQS_ENDPOINT):
        unset = [name for name in variables.values() if not environ.get(name)]
        if unset:
            wanted = ", ".join(
                f"{n} (the stack's {_QUEUE_OUTPUTS.get(n, n)} output)" for n in unset
            )
            return f"NOT configured: with real AWS set {wanted}", {}
        where = ", ".join(environ[name] for name in variables.values())
        return f"{where} in AWS (the stack's event source mapping consumes it, not make serve)", {}
    if not sqs_moto:
        endpoint = environ[SQS_ENDPOINT]
        queues = {
            queue: QueueTarget(environ[name], endpoint)
            for queue, name in variables.items()
            if environ.get(name)
        }
        return ", ".join(f"{q.url} at {endpoint}" for q in queues.values()), queues
    environ[SQS_ENDPOINT] = sqs_moto
    client = _client("sqs", sqs_moto, environ)
    template = load_template()
    queues, described = {}, []
    for queue, name in variables.items():
        local_name = (environ.get(name) or queue).rstrip("/").rsplit("/", 1)[-1]
        try:
            created = create_queue(client, template, queue, local_name)
        except client.exceptions.ClientError as exc:
            raise LocalSetupError(
                f"{name}: moto cannot create the queue {local_name!r}: {exc}"
            ) from None
        environ[name] = created.url
        queues[queue] = QueueTarget(created.url, sqs_moto, created.arn)
        described.append(created.describe())
    return f"{'; '.join(described)} in moto's SQS at {sqs_moto} (new, empty)", queues


def _client(service: str, endpoint: str, environ: MutableMapping[str, str]) -> Any:
    import botocore.session

    return botocore.session.get_session().create_client(
        service,
        endpoint_url=endpoint,
        region_name=environ["AWS_DEFAULT_REGION"],
        aws_access_key_id=environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environ["AWS_SECRET_ACCESS_KEY"],
    )


def _create_secret(
    endpoint: str, environ: MutableMapping[str, str], secret_id: str, client_id: str, secret: str
) -> None:
    client = _client("secretsmanager", endpoint, environ)
    # The Items' keyed pseudonym of a user: random per run, like the moto table it keys.
    hmac_key = random.token_hex(32)
    value = json.dumps({"client_id": client_id, "secret": secret, "user_id_hmac_key": hmac_key})
    try:
        client.create_secret(Name=secret_id, SecretString=value)
    except client.exceptions.ResourceExistsException:
        # moto keeps its state per process: a second local run in one process (tests) finds
        # the secret already there.
        client.put_secret_value(SecretId=secret_id, SecretString=value)


def _create_table(client: Any, table: str) -> None:
    """The Items table as the stack makes it (keys pk/sk), empty."""
    spec = {"TableName": table, **table_definition(load_template())}
    try:
        client.create_table(**spec)
    except client.exceptions.ResourceInUseException:  # a second run in one process (tests)
        client.delete_table(TableName=table)
        client.create_table(**spec)


def _create_key(client: Any, alias: str | None) -> str:
    """A new symmetric key (and `alias` for it, if given); its ARN."""
    arn = str(
        client.create_key(Description="make serve / make invoke: seals Items' access tokens")[
            "KeyMetadata"
        ]["Arn"]
    )
    if alias:
        try:
            client.create_alias(AliasName=alias, TargetKeyId=arn)
        except client.exceptions.AlreadyExistsException:  # a second run in one process
            client.update_alias(AliasName=alias, TargetKeyId=arn)
    return arn


def _public_token_maker(
    environ: MutableMapping[str, str], client_id: str, secret: str
) -> PublicTokenMaker | None:
    """`/sandbox/public_token/create` through the Plaid in use (Sandbox only)."""
    if environ.get("PLAID_ENV", "sandbox") != "sandbox":
        return None
    base_url = environ.get("PLAID_BASE_URL") or SANDBOX_URL

    def create(institution_id: str, products: Sequence[str]) -> str:
        import requests

        answer = requests.post(
            base_url.rstrip("/") + "/sandbox/public_token/create",
            json={"institution_id": institution_id, "initial_products": list(products)},
            headers={"PLAID-CLIENT-ID": client_id, "PLAID-SECRET": secret},
            timeout=15,
        )
        try:
            doc = answer.json()
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            doc = {}
        token = doc.get("public_token")
        if answer.status_code != 200 or not isinstance(token, str):
            code = doc.get("error_code") or ""
            raise LocalSetupError(
                f"{base_url}/sandbox/public_token/create answered {answer.status_code} {code}"
            )
        return token

    return create
