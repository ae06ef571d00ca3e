"""`make serve`: `python -m infra.gateway` (infra/gateway/serve.py says what it plays)."""

import os
import sys

from infra.gateway.serve import main

exit_code = main()
# Everything this process started is stopped by now. Skip the interpreter's teardown of
# moto's large module graph (about half a second): Ctrl-C must be done within a second.
sys.stdout.flush()
sys.stderr.flush()
os._exit(exit_code)
