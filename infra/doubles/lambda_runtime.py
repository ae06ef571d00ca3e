"""What the Lambda runtime hands a handler, played locally: the context object and the X-Ray
trace header (`_X_AMZN_TRACE_ID`, API Gateway's `x-amzn-trace-id`).

One of each for `make invoke`, `make serve`'s workers, the soaks, the benchmark, the Runtime API
emulator and the tests. Two children that run in a bare interpreter (`-S`: the build output and
the standard library only) keep a copy of their own: `infra/smoke/smoke_build.py`'s and
`infra/bench/child.py`.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass, field

TIMEOUT_MS = 20_000  # the deployed function's timeout (template.yaml)


@dataclass
class LambdaContext:
    """Enough of the Lambda context for the handler and Powertools, with a controllable amount
    of remaining time (counted from when the context is made, as the runtime counts it)."""

    remaining_ms: int = TIMEOUT_MS
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_name: str = "plaid-link-token-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:000000000000:function:plaid-link-token-local"
    )
    _start: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms - int((time.monotonic() - self._start) * 1000)


def trace_header(
    *, epoch_s: int | None = None, parent: bool = True, sampled: bool | None = None
) -> str:
    """A fresh X-Ray trace header: `Root=1-<epoch hex>-<24 hex>`, then `;Parent=<16 hex>` (the
    Lambda runtime's, not API Gateway's) and `;Sampled=0|1` when `sampled` is given."""
    epoch = int(time.time()) if epoch_s is None else epoch_s
    header = f"Root=1-{epoch:08x}-{secrets.token_hex(12)}"
    if parent:
        header += f";Parent={secrets.token_hex(8)}"
    if sampled is not None:
        header += f";Sampled={int(sampled)}"
    return header
