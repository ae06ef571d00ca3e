"""`make bench`: `python -m infra.bench` (infra/bench/run.py says what it measures)."""

import sys

from infra.bench.run import main

sys.exit(main())
