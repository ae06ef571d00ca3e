"""The build smoke test: `python -m infra.smoke --python PY313 --build-root .aws-sam/build`."""

import sys

from infra.smoke.smoke_build import main

sys.exit(main())
