"""`make serve`: API Gateway's HTTP API, JWT authorizer, CORS and Lambda workers, played locally."""
