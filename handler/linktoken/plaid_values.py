"""Plaid's accepted values for `/link/token/create`, from Plaid's OpenAPI spec (2020-09-14).

Kept as literal sets so validation costs nothing at import and needs no schema file at runtime.
"""

from typing import Final

# Products accepted in `products` by /link/token/create. `balance` is deliberately absent: it is
# always available and Plaid rejects it as an initial Link product.
LINK_PRODUCTS: Final = frozenset(
    {
        "assets", "auth", "beacon", "identity", "identity_match", "investments",
        "investments_auth", "liabilities", "payment_initiation", "identity_verification",
        "transactions", "credit_details", "income", "income_verification", "standing_orders",
        "transfer", "employment", "recurring_transactions", "transactions_refresh", "signal",
        "statements", "processor_payments", "processor_identity", "profile", "cra_base_report",
        "cra_income_insights", "cra_partner_insights", "cra_network_insights",
        "cra_cashflow_insights", "cra_monitoring", "cra_lend_score", "cra_plaid_credit_score",
        "layer", "pay_by_bank", "protect_linked_bank", "protect_transactions",
    }
)  # fmt: skip

COUNTRY_CODES: Final = frozenset(
    {
        "US", "GB", "ES", "NL", "FR", "IE", "CA", "DE", "IT", "PL",
        "DK", "NO", "SE", "EE", "LT", "LV", "PT", "BE", "AT", "FI",
    }
)  # fmt: skip

LANGUAGES: Final = frozenset(
    {"da", "nl", "en", "et", "fr", "de", "hi", "it", "lv", "lt", "no", "pl", "pt", "ro", "es",
     "sv", "vi"}
)  # fmt: skip

PLAID_ENVIRONMENTS: Final = {
    "sandbox": "https://sandbox.plaid.com",
    "production": "https://production.plaid.com",
}

PLATFORMS: Final = frozenset({"web", "ios", "android"})

CLIENT_NAME_MAX: Final = 30
