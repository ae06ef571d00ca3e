"""`make web-errors`: `python -m infra.webclient [--check]` writes examples/web/errors.json."""

import sys

from infra.webclient.web_error_table import main

sys.exit(main(sys.argv[1:]))
