"""What the webhook processor's container builds once: the Items service's pieces (the table,
the key, the Plaid secret and client), since the login pair is confirmed with `/item/get`. A
configuration error is kept, not raised: the processor then fails its batch, which SQS
delivers again (then to its DLQ)."""

from collections.abc import Mapping

from linktoken.xray import Span, no_span
from plaidhooks.processor import WebhookProcessor
from plaiditems.container import build_items_container


class ProcessorContainer:
    __slots__ = ("config_error", "processor")

    def __init__(self, processor: WebhookProcessor | None, config_error: str | None = None) -> None:
        self.processor = processor
        self.config_error = config_error

    def reset(self) -> None:
        if self.processor is not None:
            self.processor.reset()


def build_processor_container(
    environ: Mapping[str, str], span: Span = no_span, aws_span: Span = no_span
) -> ProcessorContainer:
    items = build_items_container(
        environ, span=span, aws_span=aws_span, required_by="the webhook processor"
    )
    service = items.service
    if service is None:
        return ProcessorContainer(None, items.config_error)
    return ProcessorContainer(WebhookProcessor(service.store, service.recheck, service.reset))
