"""What the webhook processor's container builds once. A configuration error is kept, not
raised: the processor then fails its batch, which SQS delivers again (then to its DLQ)."""

from collections.abc import Mapping

from linktoken.aws_clients import DYNAMODB, json_client
from linktoken.config import ConfigError, load_config
from linktoken.xray import Span, no_span
from plaidhooks.processor import WebhookProcessor
from plaiditems.store import ItemStore


class ProcessorContainer:
    __slots__ = ("config_error", "processor")

    def __init__(self, processor: WebhookProcessor | None, config_error: str | None = None) -> None:
        self.processor = processor
        self.config_error = config_error

    def reset(self) -> None:
        if self.processor is not None:
            self.processor.reset()


def build_processor_container(
    environ: Mapping[str, str], aws_span: Span = no_span
) -> ProcessorContainer:
    try:
        config = load_config(environ)
        if not config.items_table:
            raise ConfigError("ITEMS_TABLE is required by the webhook processor")
        store = ItemStore(json_client(DYNAMODB, environ), config.items_table, span=aws_span)
    except ConfigError as exc:
        return ProcessorContainer(None, str(exc))
    except Exception as exc:
        return ProcessorContainer(None, f"AWS clients: {type(exc).__name__}")
    return ProcessorContainer(WebhookProcessor(store))
