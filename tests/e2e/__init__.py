"""End to end: browsers, `make serve` and `make invoke` as users run them, the built artifact."""
