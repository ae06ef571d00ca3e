"""Plaid's webhooks: verified at the receiver, queued, and applied to each Item's health.

Only the webhook functions import this package: PyJWT and `cryptography` stay off the
link-token and Items functions' cold path.
"""
