"""The offline audit of the locked runtime dependencies and the template variants checkov scans."""
