"""The test suite: unit, integration and end-to-end tests with their fixtures and test-only helpers."""
