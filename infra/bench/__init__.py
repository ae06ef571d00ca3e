"""`make bench` (performance), `make soak` and `make soak-serve` (reliability)."""
