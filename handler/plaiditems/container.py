"""What an Items function's container builds once: configuration, the secret store, the Plaid
client, and the table and key clients. A configuration error is kept, not raised (every request
then answers 500 MISCONFIGURED), as `linktoken.container` does."""

from collections.abc import Mapping

from linktoken.aws_clients import DYNAMODB, KMS, json_client
from linktoken.config import ConfigError, load_config
from linktoken.plaid_client import PlaidClient
from linktoken.secret_store import SecretStore
from linktoken.xray import Span, no_span
from plaiditems.service import ItemsService
from plaiditems.store import ItemStore
from plaiditems.vault import TokenVault


class ItemsContainer:
    __slots__ = ("config_error", "service")

    def __init__(self, service: ItemsService | None, config_error: str | None = None) -> None:
        self.service = service
        self.config_error = config_error

    def reset(self) -> None:
        """Forget what must not outlive a snapshot (SnapStart after-restore hook)."""
        if self.service is not None:
            self.service.reset()


def build_items_container(
    environ: Mapping[str, str],
    span: Span = no_span,
    aws_span: Span = no_span,
    required_by: str = "the Items functions",
) -> ItemsContainer:
    """`required_by`: who the configuration error names (the webhook processor builds one too)."""
    try:
        config = load_config(environ)
        if not config.items_table or not config.items_key_id:
            raise ConfigError(f"ITEMS_TABLE and ITEMS_KEY_ID are required by {required_by}")
        store = ItemStore(json_client(DYNAMODB, environ), config.items_table, span=aws_span)
        vault = TokenVault(json_client(KMS, environ), config.items_key_id, span=aws_span)
    except ConfigError as exc:
        return ItemsContainer(service=None, config_error=str(exc))
    except Exception as exc:  # botocore's client for other credentials: no region, ...
        return ItemsContainer(service=None, config_error=f"AWS clients: {type(exc).__name__}")
    secrets = SecretStore(config.secret_id, config.secret_ttl_seconds, span=aws_span)
    secrets.prepare()
    plaid = PlaidClient(config.base_url, span=span)
    return ItemsContainer(ItemsService(config, secrets, plaid, store, vault))
