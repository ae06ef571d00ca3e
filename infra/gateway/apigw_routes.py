"""API Gateway HTTP API route selection, as `make serve` and `make invoke` play it.

A route is a method and a path of the template's HttpApi events (`cfn_template.function_routes`):
`POST /items`, `DELETE /items/{item_id}`. A request is matched as AWS describes it ("Routing API
requests", HTTP API developer guide):

- segments are compared exactly (case-sensitive, no trailing-slash folding: `/items/` is not
  `/items`); a `{name}` segment takes any one non-empty segment, a greedy `{name+}` (last only)
  one or more; a route with more literal segments wins over one with a variable;
- the method must be the route's; `ANY` takes every method no other route of that path names;
- nothing matching is API Gateway's own 404 `{"message":"Not Found"}`, whatever the method:
  an HTTP API has no 405, so `PUT /items` is a 404 like `GET /nowhere`;
- path parameters are percent-decoded ("API Gateway decodes URL-encoded request parameters
  before passing them to your backend integration"); the path is split on its literal `/`
  first, so `/items/a%2Fb` is the item `a/b`, not two segments.

    table = RouteTable(function_routes(load_template()))
    match = table.match("DELETE", "/items/abc")   # RouteMatch(route, {"item_id": "abc"}) | None
    match.route.route_key                          # "DELETE /items/{item_id}"
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from infra.gateway.cfn_template import FunctionRoute

ANY = "ANY"
_VARIABLE = re.compile(r"\{([A-Za-z0-9_.-]+)(\+?)\}")


@dataclass(frozen=True)
class _Segment:
    text: str  # the literal, or the variable's name
    variable: bool = False
    greedy: bool = False


@dataclass(frozen=True)
class RouteMatch:
    """The route a request selected and the path parameters it gave (decoded)."""

    route: FunctionRoute
    path_parameters: dict[str, str]


def _segments(path: str) -> tuple[_Segment, ...]:
    """A route path's segments; ValueError for what API Gateway refuses to create."""
    if not path.startswith("/"):
        raise ValueError(f"route path {path!r} must start with '/' ($default is not played)")
    parts = path[1:].split("/") if path != "/" else []
    segments = []
    for index, part in enumerate(parts):
        variable = _VARIABLE.fullmatch(part)
        if variable is None:
            if not part or "{" in part or "}" in part:
                raise ValueError(f"route path {path!r}: segment {part!r} is not supported")
            segments.append(_Segment(part))
            continue
        greedy = variable.group(2) == "+"
        if greedy and index != len(parts) - 1:
            raise ValueError(f"route path {path!r}: a greedy variable must be the last segment")
        segments.append(_Segment(variable.group(1), variable=True, greedy=greedy))
    return tuple(segments)


def _bind(pattern: tuple[_Segment, ...], parts: list[str]) -> dict[str, str] | None:
    """The path parameters if the request's raw segments fit the pattern, else None."""
    parameters: dict[str, str] = {}
    for index, segment in enumerate(pattern):
        if segment.greedy:
            rest = parts[index:]
            if not rest or any(not part for part in rest):
                return None
            parameters[segment.text] = unquote("/".join(rest))
            return parameters
        if index >= len(parts) or not parts[index]:
            return None
        if segment.variable:
            parameters[segment.text] = unquote(parts[index])
        elif unquote(parts[index]) != segment.text:
            return None
    return parameters if len(parts) == len(pattern) else None


def _specificity(pattern: tuple[_Segment, ...]) -> tuple[int, int]:
    """Sort key, most specific first: more literal segments, then no greedy variable."""
    literals = sum(1 for segment in pattern if not segment.variable)
    greedy = sum(1 for segment in pattern if segment.greedy)
    return (-literals, greedy)


class RouteTable:
    """The template's routes, matched as API Gateway matches them (see the module docstring)."""

    def __init__(self, routes: Sequence[FunctionRoute]) -> None:
        compiled = [(route, _segments(route.path)) for route in routes]
        keys = [route.route_key for route in routes]
        if len(set(keys)) != len(keys):
            raise ValueError(f"a route is declared twice: {sorted(keys)}")
        # Stable: among equally specific routes the template's order decides.
        self._routes = sorted(compiled, key=lambda pair: _specificity(pair[1]))
        self.routes = tuple(routes)

    def match(self, method: str, raw_path: str) -> RouteMatch | None:
        """The route `method raw_path` selects, or None (API Gateway's 404)."""
        if not raw_path.startswith("/"):
            return None
        parts = raw_path[1:].split("/") if raw_path != "/" else []
        fitting = [
            (route, pattern, parameters)
            for route, pattern in self._routes
            if (parameters := _bind(pattern, parts)) is not None
        ]
        # Most specific path first; on each, the method's own route, then its ANY route.
        for _, pattern, _ in fitting:
            same_path = [(r, params) for r, p, params in fitting if p == pattern]
            for wanted in (method, ANY):
                for route, parameters in same_path:
                    if route.method == wanted:
                        return RouteMatch(route, parameters)
        return None

    def functions(self) -> list[str]:
        """The functions behind the routes, each once, in template order."""
        return list(dict.fromkeys(route.function for route in self.routes))

    def route_for_key(self, route_key: str) -> FunctionRoute | None:
        """The route whose routeKey this is ("GET /items"), or None."""
        return next((route for route in self.routes if route.route_key == route_key), None)
