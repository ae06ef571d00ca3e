"""Integration tests: loopback servers, moto, subprocesses."""
