"""`make docs` (or `make web-errors`): `python -m infra.webclient [--check]` writes the error tables
of docs/errors.md and docs/clients.md and examples/web/errors.json."""

import sys

from infra.webclient.web_error_table import main

sys.exit(main(sys.argv[1:]))
