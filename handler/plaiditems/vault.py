"""Access tokens sealed with KMS, bound to their Item and owner.

The encryption context `{"item_id", "owner"}` is part of what KMS authenticates: a sealed
token copied into another record, or a table copied into another account's, decrypts to
nothing. The IAM policies of the functions require exactly these two keys, so no code path can
encrypt or decrypt without naming the Item and its owner.
"""

import base64

from linktoken.aws_clients import JsonCall
from linktoken.aws_json import AwsServiceError
from linktoken.problems import Problem
from linktoken.xray import Span, no_span
from plaiditems.aws_calls import aws_call, storage_problem


class TokenVault:
    """Seals (exchange only) and opens (update mode, remove) access tokens."""

    def __init__(self, client: JsonCall, key_id: str, span: Span = no_span) -> None:
        self._client = client
        self._key_id = key_id
        self._span = span

    def seal(self, access_token: str, item_id: str, owner: str) -> str:
        """The token's ciphertext (base64), or `Problem`."""
        params = {
            "KeyId": self._key_id,
            "Plaintext": base64.b64encode(access_token.encode()).decode(),
            "EncryptionContext": {"item_id": item_id, "owner": owner},
        }
        try:
            answer = aws_call(self._client, self._span, "kms", "Encrypt", params)
        except AwsServiceError as exc:
            raise storage_problem("kms", "Encrypt", exc) from None
        return str(answer["CiphertextBlob"])

    def close(self) -> None:
        """Drop the client's connections (SnapStart after-restore)."""
        self._client.close()

    def open(self, sealed: str, item_id: str, owner: str) -> str:
        """The access token, or `Problem`: INTERNAL_ERROR when the ciphertext does not open
        under this Item's context (a record copied or altered), else the call's problem."""
        params = {
            "KeyId": self._key_id,
            "CiphertextBlob": sealed,
            "EncryptionContext": {"item_id": item_id, "owner": owner},
        }
        try:
            answer = aws_call(self._client, self._span, "kms", "Decrypt", params)
        except AwsServiceError as exc:
            if exc.code in {"InvalidCiphertextException", "IncorrectKeyException"}:
                raise Problem(
                    "INTERNAL_ERROR",
                    cause=f"kms Decrypt: {exc.code}: the Item's sealed access token does not "
                    "open under its own item_id and owner (a record copied or altered)",
                ) from None
            raise storage_problem("kms", "Decrypt", exc) from None
        return base64.b64decode(answer["Plaintext"]).decode()
