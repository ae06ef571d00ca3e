"""Benchmark fixtures: the handlers the product is compared against. NOT the product.

Each module is a self-contained Lambda handler written the way a common alternative is written;
`infra/bench/build.py` packages each in its own directory with its own dependencies.
"""
