"""What the webhook receiver's container builds once. A configuration error is kept, not
raised: the receiver then answers 500 MISCONFIGURED, which Plaid retries."""

from collections.abc import Mapping

from linktoken.aws_clients import SQS, json_client
from linktoken.config import ConfigError, load_config
from linktoken.plaid_client import PlaidClient, RetryPolicy
from linktoken.secret_store import SecretStore
from linktoken.xray import Span, no_span
from plaidhooks.queue import WebhookQueue
from plaidhooks.receiver import WebhookReceiver

# Plaid waits 10 s for the answer: a key lookup attempt of at most 1.5 s to connect and 3 s to
# read; a second only when it still fits (the Plaid client's rule).
KEY_LOOKUP_POLICY = RetryPolicy(max_attempts=2, connect_timeout=1.5, read_timeout=3.0)


class ReceiverContainer:
    __slots__ = ("config_error", "receiver")

    def __init__(self, receiver: WebhookReceiver | None, config_error: str | None = None) -> None:
        self.receiver = receiver
        self.config_error = config_error

    def reset(self) -> None:
        if self.receiver is not None:
            self.receiver.reset()


def build_receiver_container(
    environ: Mapping[str, str], span: Span = no_span, aws_span: Span = no_span
) -> ReceiverContainer:
    try:
        config = load_config(environ)
        if not config.webhook_queue_url:
            raise ConfigError("WEBHOOK_QUEUE_URL is required by the webhook receiver")
        queue = WebhookQueue(json_client(SQS, environ), config.webhook_queue_url, span=aws_span)
    except ConfigError as exc:
        return ReceiverContainer(None, str(exc))
    except Exception as exc:  # botocore's client for other credentials: no region, ...
        return ReceiverContainer(None, f"AWS clients: {type(exc).__name__}")
    secrets = SecretStore(config.secret_id, config.secret_ttl_seconds, span=aws_span)
    secrets.prepare()
    plaid = PlaidClient(config.base_url, policy=KEY_LOOKUP_POLICY, span=span)
    return ReceiverContainer(WebhookReceiver(secrets, plaid, queue))
