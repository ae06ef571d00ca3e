"""`make invoke`, and the embedded local backends (Secrets Manager, Plaid) `make serve` shares."""
