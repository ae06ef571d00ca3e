"""Update mode's way into a stored Item, built on first use: the link-token function loads the
Items code (and its DynamoDB and KMS clients) only when a request names an `item_id`, so the
cold start of a new Item's link token does not change."""

from linktoken.aws_clients import DYNAMODB, KMS, json_client
from linktoken.problems import Problem
from linktoken.xray import Span, no_span
from plaiditems.store import ItemStore
from plaiditems.vault import TokenVault


class ItemAccess:
    """`LinkTokenService.open_item`: the access token of the owner's Item and whether Link
    should offer account selection (Plaid reported new accounts)."""

    def __init__(self, store: ItemStore, vault: TokenVault) -> None:
        self.store = store
        self.vault = vault

    def __call__(self, owner: str, item_id: str) -> tuple[str, bool]:
        record = self.store.get_item(owner, item_id)  # item_id checked by link_options
        if record is None or record.removed or not record.sealed_token:
            raise Problem("ITEM_NOT_FOUND", cause="no such Item for this user (or removed)")
        token = self.vault.open(record.sealed_token, item_id, owner)
        return token, record.health == "new_accounts_available"


def item_access(table: str, key_id: str, span: Span = no_span) -> ItemAccess:
    """The opener with its own table and key clients (the link-token container builds it at
    the first update-mode request)."""
    return ItemAccess(
        ItemStore(json_client(DYNAMODB), table, span=span),
        TokenVault(json_client(KMS), key_id, span=span),
    )
