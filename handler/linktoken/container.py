"""What one Lambda container builds once: validated configuration and the service objects.

A configuration error is kept, not raised: every request then answers 500 MISCONFIGURED with
a log line naming the problem, instead of the container failing its init over and over.
"""

from collections.abc import Mapping

from linktoken.config import Config, ConfigError, load_config
from linktoken.plaid_client import PlaidClient
from linktoken.secret_store import SecretStore
from linktoken.service import ItemOpener, LinkTokenService
from linktoken.xray import Span, no_span


class Container:
    """Either a ready `service` or the `config_error` that prevents one."""

    # A plain class, not a dataclass: a dataclass costs ~0.5 ms of the cold start's imports.
    __slots__ = ("config_error", "service")

    def __init__(self, service: LinkTokenService | None, config_error: str | None = None) -> None:
        self.service = service
        self.config_error = config_error

    @property
    def config(self) -> Config | None:
        return self.service.config if self.service else None

    def reset(self) -> None:
        """Forget what must not outlive a snapshot (SnapStart after-restore hook)."""
        if self.service is not None:
            self.service.reset()


def build_container(
    environ: Mapping[str, str], span: Span = no_span, aws_span: Span = no_span
) -> Container:
    """Validate the environment and build the service, or keep the reason it cannot be built.
    `span` traces the Plaid call, `aws_span` the Secrets Manager call."""
    try:
        config = load_config(environ)
    except ConfigError as exc:
        return Container(service=None, config_error=str(exc))
    secrets = SecretStore(config.secret_id, config.secret_ttl_seconds, span=aws_span)
    secrets.prepare()
    plaid = PlaidClient(config.base_url, span=span)
    return Container(
        service=LinkTokenService(config, secrets, plaid, _item_opener(config, aws_span))
    )


def _item_opener(config: Config, aws_span: Span) -> ItemOpener | None:
    """Update mode's access to stored Items when the Items table and key are configured: the
    Items code is imported at the first update-mode request, not at init (a new Item's link
    token never loads it)."""
    if not (config.items_table and config.items_key_id):
        return None
    table, key_id = config.items_table, config.items_key_id

    def open_item(owner: str, item_id: str) -> tuple[str, bool]:
        if not opener:
            from plaiditems.access import item_access  # noqa: PLC0415 - update mode only

            opener.append(item_access(table, key_id, aws_span))
        return opener[0](owner, item_id)

    opener: list[ItemOpener] = []
    return open_item
