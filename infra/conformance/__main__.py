"""The runtime-client conformance: `python -m infra.conformance --python PY313 --build-root DIR`."""

import sys

from infra.conformance.ric import main

sys.exit(main())
