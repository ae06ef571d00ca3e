"""The built artifact's smoke test: the handler imported from the build output as Lambda does."""
