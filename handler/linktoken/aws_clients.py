"""A JSON-protocol client for one AWS service (DynamoDB, KMS, SQS), the way `secret_store`
gets its Secrets Manager client: signed here and sent with `requests` when Lambda provides the
credentials (`aws_json`), botocore's client otherwise (a profile, SSO), imported only then.

Callers speak the wire form in both cases: operation names and parameters as the service's
JSON API has them, blobs as base64 text, errors as `AwsServiceError` / `AwsTransportError`.
"""

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from linktoken.aws_credentials import lambda_credentials
from linktoken.aws_json import (
    AwsJsonClient,
    AwsServiceError,
    AwsTransportError,
    ClientMeta,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
    configured_endpoint,
    public_endpoint,
    usable_endpoint,
)


class JsonCall(Protocol):
    """What the Items code needs of a client."""

    meta: ClientMeta

    def call(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """How one service is called: its signing name, JSON target, endpoint variable and host
    prefix, botocore's service name, and the blob fields (base64 on the wire) by operation:
    (input fields, output fields)."""

    signing_name: str
    target_prefix: str
    json_version: str
    endpoint_variable: str
    endpoint_prefix: str
    botocore_name: str
    blobs: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)


DYNAMODB = ServiceSpec("dynamodb", "DynamoDB_20120810", "1.0", "DYNAMODB", "dynamodb", "dynamodb")
# SQS over its JSON protocol (X-Amz-Target AmazonSQS.<Operation>).
SQS = ServiceSpec("sqs", "AmazonSQS", "1.0", "SQS", "sqs", "sqs")
KMS = ServiceSpec(
    "kms",
    "TrentService",
    "1.1",
    "KMS",
    "kms",
    "kms",
    blobs={
        "Encrypt": (("Plaintext",), ("CiphertextBlob",)),
        "Decrypt": (("CiphertextBlob",), ("Plaintext",)),
    },
)


def json_client(spec: ServiceSpec, environ: Mapping[str, str] = os.environ) -> JsonCall:
    """`AwsJsonClient` with Lambda's credentials and a region and endpoint it knows, else a
    botocore client behind the same interface."""
    credentials = lambda_credentials(environ)
    region = environ.get("AWS_DEFAULT_REGION") or environ.get("AWS_REGION")
    botocore_only = any(
        environ.get(name, "").lower() == "true"
        for name in ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT")
    )
    endpoint = None
    if region:
        endpoint = configured_endpoint(spec.endpoint_variable, environ) or public_endpoint(
            spec.endpoint_prefix, region
        )
    if credentials is None or not region or botocore_only or not endpoint:
        return BotocoreCall(spec)
    if not usable_endpoint(endpoint):
        return BotocoreCall(spec)
    return AwsJsonClient(
        spec.signing_name,
        spec.target_prefix,
        spec.json_version,
        region,
        endpoint,
        credentials,
        ca_bundle=environ.get("AWS_CA_BUNDLE") or None,
    )


class BotocoreCall:
    """botocore's client for `spec`, with the same limits as `AwsJsonClient` (1 s connect, 2 s
    read, 2 attempts in standard mode), taking and giving the wire form."""

    def __init__(self, spec: ServiceSpec) -> None:
        import botocore.session  # noqa: PLC0415 - only where Lambda's credentials are absent
        from botocore.config import Config  # noqa: PLC0415

        config = Config(
            connect_timeout=1,
            read_timeout=2,
            retries={"total_max_attempts": 2, "mode": "standard"},
        )
        self._spec = spec
        self._client: Any = botocore.session.get_session().create_client(
            spec.botocore_name, config=config
        )
        self.meta = ClientMeta(self._client.meta.region_name, self._client.meta.endpoint_url)

    def close(self) -> None:
        self._client.close()

    def call(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        import botocore  # noqa: PLC0415 - loaded with the client
        import botocore.exceptions  # noqa: PLC0415

        inputs, outputs = self._spec.blobs.get(operation, ((), ()))
        kwargs = {k: base64.b64decode(v) if k in inputs else v for k, v in params.items()}
        method = getattr(self._client, botocore.xform_name(operation))
        try:
            answer: dict[str, Any] = method(**kwargs)
        except botocore.exceptions.ClientError as exc:
            raise AwsServiceError(dict(exc.response)) from None
        except botocore.exceptions.ConnectTimeoutError:
            raise ConnectTimeoutError("ConnectTimeoutError") from None
        except botocore.exceptions.ReadTimeoutError:
            raise ReadTimeoutError("ReadTimeoutError") from None
        except botocore.exceptions.EndpointConnectionError:
            raise EndpointConnectionError("EndpointConnectionError") from None
        except botocore.exceptions.BotoCoreError as exc:
            raise AwsTransportError(type(exc).__name__) from None
        for name in outputs:
            if isinstance(answer.get(name), bytes):
                answer[name] = base64.b64encode(answer[name]).decode()
        return answer
