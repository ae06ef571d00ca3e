"""API Gateway HTTP API CORS, from the template's CorsConfiguration and the allowed origins.

As deployed (AWS "Configure CORS for HTTP APIs"): with origins configured, API Gateway answers
every preflight (OPTIONS with Origin and Access-Control-Request-Method) itself, before routes
and the authorizer; an allowed origin gets the grant, any other origin a 204 without one. On
other responses it adds Access-Control-Allow-Origin and the exposed headers for an allowed
origin, and ignores CORS headers the function sets. With no origins there is no CORS at all:
a preflight is an ordinary OPTIONS request (no route: 404). `make serve` is stricter: its
request guard (local_guard.py) refuses an Origin that is not allowed before this runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from infra.gateway.apigw_event import HttpResponse, IncomingRequest
from infra.gateway.cfn_template import CorsSettings


def parse_origins(value: str | None) -> tuple[str, ...]:
    """ALLOWED_ORIGINS: comma-separated, as the template's CorsOrigins parameter."""
    return tuple(
        origin.strip().rstrip("/") for origin in (value or "").split(",") if origin.strip()
    )


@dataclass(frozen=True)
class Cors:
    settings: CorsSettings
    origins: tuple[str, ...]
    extra_expose: tuple[str, ...] = ()  # local-only headers a browser must be able to read

    @property
    def enabled(self) -> bool:
        return bool(self.origins)

    def allows(self, origin: str | None) -> bool:
        return origin is not None and (origin in self.origins or "*" in self.origins)

    def preflight(self, request: IncomingRequest) -> HttpResponse | None:
        """API Gateway's own answer to a preflight, or None when this is not one."""
        if not (
            self.enabled
            and request.method == "OPTIONS"
            and request.header("origin")
            and request.header("access-control-request-method")
        ):
            return None
        origin = request.header("origin")
        if not self.allows(origin):
            return HttpResponse(204, [])
        headers = [
            ("access-control-allow-origin", str(origin)),
            ("access-control-allow-methods", ",".join(self.settings.allow_methods)),
            ("access-control-allow-headers", ",".join(self.settings.allow_headers)),
            ("access-control-max-age", str(self.settings.max_age)),
        ]
        if self.settings.allow_credentials:
            headers.append(("access-control-allow-credentials", "true"))
        return HttpResponse(204, headers)

    def apply(self, request: IncomingRequest, response: HttpResponse) -> HttpResponse:
        """The response as API Gateway sends it: the API's CORS headers, not the function's."""
        if not self.enabled:
            return response
        kept = [(k, v) for k, v in response.headers if not k.lower().startswith("access-control-")]
        origin = request.header("origin")
        if self.allows(origin):
            kept.append(("access-control-allow-origin", str(origin)))
            expose: Sequence[str] = (*self.settings.expose_headers, *self.extra_expose)
            if expose:
                kept.append(("access-control-expose-headers", ",".join(expose)))
            if self.settings.allow_credentials:
                kept.append(("access-control-allow-credentials", "true"))
        return HttpResponse(response.status, kept, response.body)
