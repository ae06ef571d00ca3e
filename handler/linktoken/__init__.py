"""Plaid Link token service: the domain, free of Lambda and HTTP concerns.

`app.py` (one level up) is the Lambda entry point and only wires these modules together.
"""

__version__ = "0.1.0"
