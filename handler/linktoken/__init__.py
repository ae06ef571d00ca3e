"""Plaid Link token service.

`app.py` (one level up) is the Lambda entry point and only wires these modules together. The
domain (`service`, `plaid_request`, `link_options`, `identity`, `config`) knows nothing of
Lambda; `http_event` is the one module that knows API Gateway's event and response shape, and
`endpoint` the one that maps outcomes to responses, log lines and metrics.
"""

__version__ = "0.1.0"
