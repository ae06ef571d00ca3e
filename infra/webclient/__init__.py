"""The example web client's generated files: `examples/web/errors.json` (`make web-errors`)."""
