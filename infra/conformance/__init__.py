"""Runtime-client conformance: the build output run by awslambdaric against a local Runtime API."""
