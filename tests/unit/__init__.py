"""Pure unit tests: no server, no process, no browser (`make test-unit`)."""
