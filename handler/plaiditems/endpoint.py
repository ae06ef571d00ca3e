"""`POST /items`, `GET /items`, `POST /items/{item_id}/refresh`, `DELETE /items/{item_id}`:
one request in, one response and one
summary log line out, as `linktoken.endpoint` does for `POST /link-token`.

Every outcome is mapped here: a `Problem` becomes its RFC 9457 response, any other exception
INTERNAL_ERROR with the stack trace in the log and none in the body. The log line names the
Item, never its access token.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from linktoken import observability as obs
from linktoken.endpoint import Invocation
from linktoken.http_event import method_of, parse_event, path_parameter, request_id_of, respond
from linktoken.problems import Problem
from plaiditems.container import ItemsContainer
from plaiditems.link_metadata import parse_exchange
from plaiditems.service import ItemsOutcome, ItemsService


@dataclass(frozen=True, slots=True)
class Route:
    """A route's names: its log messages and metrics."""

    done: str
    failed: str
    metric: str
    failed_metric: str


EXCHANGE: Final = Route(
    "item_exchanged", "item_exchange_failed", "ItemExchanged", "ItemExchangeFailed"
)
LIST: Final = Route("items_listed", "items_list_failed", "ItemsListed", "ItemsListFailed")
REMOVE: Final = Route("item_removed", "item_remove_failed", "ItemRemoved", "ItemRemoveFailed")
# The function serves three routes; the refresh is told from a wrongly routed POST by its key.
REFRESH_ROUTE: Final = "POST /items/{item_id}/refresh"
REFRESH: Final = Route(
    "item_refreshed", "item_refresh_failed", "ItemRefreshed", "ItemRefreshFailed"
)
_ORPHAN_METRICS: Final = {
    "removed": "OrphanRemoved",
    "left": "OrphanLeft",
    "unknown": "OrphanUnknown",
}


def handle_exchange(
    event: Any, invocation: Invocation, container: ItemsContainer
) -> dict[str, Any]:
    """`POST /items`; never raises."""

    def run(service: ItemsService) -> ItemsOutcome:
        http = parse_event(event, "POST")
        return service.exchange(http.sub, parse_exchange(http.body), _remaining(invocation))

    return _handle(EXCHANGE, event, invocation, container, run)


def handle_items(event: Any, invocation: Invocation, container: ItemsContainer) -> dict[str, Any]:
    """`GET /items`, `POST /items/{item_id}/refresh` and `DELETE /items/{item_id}`, told apart
    by method; never raises."""
    if method_of(event) == "POST" and _route_of(event) == REFRESH_ROUTE:

        def refresh(service: ItemsService) -> ItemsOutcome:
            sub = parse_event(event, "POST").sub
            item_id = path_parameter(event, "item_id") or ""
            return service.refresh(sub, item_id, _remaining(invocation))

        return _handle(REFRESH, event, invocation, container, refresh)
    if method_of(event) == "DELETE":

        def remove(service: ItemsService) -> ItemsOutcome:
            sub = parse_event(event, "DELETE").sub
            item_id = path_parameter(event, "item_id") or ""
            return service.remove(sub, item_id, _remaining(invocation))

        return _handle(REMOVE, event, invocation, container, remove)

    def list_items(service: ItemsService) -> ItemsOutcome:
        return service.list_items(parse_event(event, "GET").sub)

    return _handle(LIST, event, invocation, container, list_items)


def _route_of(event: Any) -> str | None:
    route = event.get("routeKey") if isinstance(event, dict) else None
    return route if isinstance(route, str) else None


def _remaining(invocation: Invocation) -> Callable[[], float]:
    return lambda: invocation.get_remaining_time_in_millis() / 1000


def _handle(
    route: Route,
    event: Any,
    invocation: Invocation,
    container: ItemsContainer,
    run: Callable[[ItemsService], ItemsOutcome],
) -> dict[str, Any]:
    request_id = request_id_of(event) or invocation.aws_request_id
    try:
        if container.service is None:
            raise Problem("MISCONFIGURED", cause=f"configuration: {container.config_error}")
        outcome = run(container.service)
    except Problem as problem:  # before the service ran: nothing read, Plaid not called
        outcome = ItemsOutcome(problem.status, None, problem, {}, 0)
    except Exception as exc:  # a bug before the service ran
        outcome = ItemsOutcome(500, None, Problem("INTERNAL_ERROR"), {}, 0, bug=exc)
    if "orphan" in outcome.log:
        obs.count(_ORPHAN_METRICS[outcome.log["orphan"]])
    answer = (
        _succeeded(route, outcome, request_id)
        if outcome.problem is None
        else _failed(route, outcome, request_id)
    )
    obs.count("SecretsFetched", outcome.secret_reads)
    return answer


def _succeeded(route: Route, outcome: ItemsOutcome, request_id: str) -> dict[str, Any]:
    obs.count(route.metric)
    fields = {k: v for k, v in outcome.log.items() if v is not None}
    obs.logger.info(route.done, extra={**fields, "status": outcome.status})
    if outcome.body is None:
        return {
            "statusCode": outcome.status,
            "headers": {"Cache-Control": "no-store"},
            "body": "",
            "isBase64Encoded": False,
        }
    return respond(outcome.status, {**outcome.body, "request_id": request_id}, outcome.headers)


def _failed(route: Route, outcome: ItemsOutcome, request_id: str) -> dict[str, Any]:
    problem = outcome.problem or Problem("INTERNAL_ERROR")
    obs.count_failure(problem.code, route.failed_metric)
    if problem.kind.release_regression:
        obs.count_release_regression()
    fields = {
        **outcome.log,
        "error_code": problem.code,
        "status": problem.status,
        "cause": problem.cause or problem.detail,
        **problem.log,
    }
    fields = {k: v for k, v in fields.items() if v is not None}
    if outcome.bug is not None:
        fields["cause"] = "unexpected exception (a bug): see the traceback"
        obs.logger.exception(route.failed, exc_info=outcome.bug, extra=fields)
    elif problem.status >= 500:
        obs.logger.error(route.failed, extra=fields)
    else:
        obs.logger.warning(route.failed, extra=fields)
    headers = {"Retry-After": str(problem.retry_after)} if problem.retry_after else {}
    return respond(problem.status, problem.body(request_id), headers)
