"""Loopback doubles: the Plaid stand-in and fault doubles, Secrets Manager doubles, loopback TLS."""
