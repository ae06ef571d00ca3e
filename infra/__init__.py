"""The tools around the handler: local gateway, doubles, doctor, benchmark and checks."""
