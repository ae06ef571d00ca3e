"""X-Ray: what a sampled invocation sends to the daemon, and that other invocations send nothing.

The real handler runs with tracing on and the daemon address pointing at a UDP sink on
loopback (infra/doubles/loopback.py); Secrets Manager is moto, Plaid the loopback stand-in.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest

from infra.doubles.lambda_runtime import LambdaContext
from infra.doubles.loopback import XRaySink
from infra.doubles.plaid_standin import plaid_error
from linktoken import observability as obs
from linktoken.container import build_container
from linktoken.plaid_client import PlaidClient, RetryPolicy
from linktoken.xray import Tracer, daemon_address, parse_trace_header, tracing_enabled
from tests.conftest import ROOT, SECRET, make_event

ROOT_ID = "1-67891233-abcdef012345678912345678"
PARENT_ID = "53995c3f42cd8ad8"


def header(sampled: str) -> str:
    return f"Root={ROOT_ID};Parent={PARENT_ID};Sampled={sampled}"


@pytest.fixture
def sink() -> Iterator[XRaySink]:
    with XRaySink() as started:
        yield started


def documents(sink: XRaySink, expected: int, wait: float = 30.0) -> list[dict[str, Any]]:
    """The JSON documents the sink received, once `expected` have arrived (or `wait` passed)."""
    deadline = time.monotonic() + wait
    while len(sink.datagrams) < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # and nothing more than expected
    docs = []
    for datagram in sink.datagrams:
        head, _, body = datagram.partition(b"\n")
        assert json.loads(head) == {"format": "json", "version": 1}
        docs.append(json.loads(body))
    return docs


@pytest.fixture
def traced_invoke(
    aws: Any,
    service_env: dict[str, str],
    sink: XRaySink,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[str | None], dict[str, Any]]:
    """The real handler, traced as in Lambda: spans wired as app.py wires them, tracing on,
    the daemon on loopback, the next invocation a cold start. Call with the `Sampled` flag of
    the invocation's trace header, or None for no header."""
    import app

    container = build_container(service_env, span=obs.trace_span, aws_span=obs.aws_span)
    assert container.service is not None, container.config_error
    container.service.plaid = PlaidClient(
        container.service.config.base_url, RetryPolicy(), span=obs.trace_span, sleep=lambda _s: None
    )
    monkeypatch.setattr(app, "CONTAINER", container)
    monkeypatch.setattr(obs.tracer, "enabled", True)
    monkeypatch.setattr(obs.tracer, "daemon", daemon_address(sink.address))
    monkeypatch.setattr(obs.tracer, "_cold_start", True)

    def call(sampled: str | None) -> dict[str, Any]:
        if sampled is None:
            monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
        else:
            monkeypatch.setenv("_X_AMZN_TRACE_ID", header(sampled))
        response: dict[str, Any] = app.lambda_handler(make_event({}), LambdaContext())
        return response

    return call


def children(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {sub["name"]: sub for sub in doc.get("subsegments", [])}


def test_a_sampled_cold_invocation_sends_the_handler_secret_and_plaid_subsegments(
    traced_invoke: Callable[[str | None], dict[str, Any]], sink: XRaySink, plaid: Any
) -> None:
    assert traced_invoke("1")["statusCode"] == 200

    [doc] = documents(sink, 1)
    assert doc["type"] == "subsegment"
    assert (doc["trace_id"], doc["parent_id"]) == (ROOT_ID, PARENT_ID)
    assert doc["name"] == "## lambda_handler"
    assert doc["annotations"] == {
        "ColdStart": True,
        "Service": "plaid-link-token",
        "plaid_env": "sandbox",
        "outcome": "OK",
    }
    assert doc["start_time"] <= doc["end_time"]
    subs = children(doc)
    assert set(subs) == {"secretsmanager", "## plaid /link/token/create"}
    secrets = subs["secretsmanager"]
    assert secrets["namespace"] == "aws"
    assert secrets["aws"]["operation"] == "GetSecretValue"
    assert secrets["aws"]["region"] == "us-east-1"
    assert secrets["aws"]["request_id"]
    assert secrets["http"] == {"response": {"status": 200}}
    call = subs["## plaid /link/token/create"]
    assert call["namespace"] == "remote"
    assert call["http"] == {
        "request": {"method": "POST", "url": plaid.base_url + "/link/token/create"},
        "response": {"status": 200},
    }
    assert not {"fault", "error", "throttle"} & set(call)
    assert doc["start_time"] <= secrets["start_time"] <= call["start_time"] <= doc["end_time"]


def test_a_warm_sampled_invocation_is_not_a_cold_start_and_reads_no_secret(
    traced_invoke: Callable[[str | None], dict[str, Any]], sink: XRaySink
) -> None:
    traced_invoke("0")  # the cold start, not sampled: it reads the secret, sends nothing
    traced_invoke("1")

    [doc] = documents(sink, 1)
    assert doc["annotations"]["ColdStart"] is False
    assert set(children(doc)) == {"## plaid /link/token/create"}


@pytest.mark.parametrize("sampled", ["0", None], ids=["unsampled", "untraced"])
def test_unsampled_and_untraced_invocations_send_nothing(
    traced_invoke: Callable[[str | None], dict[str, Any]],
    sink: XRaySink,
    sampled: str | None,
) -> None:
    for _ in range(3):
        assert traced_invoke(sampled)["statusCode"] == 200

    time.sleep(0.2)
    assert sink.datagrams == []
    assert not obs.tracer.recording


def test_a_rejected_plaid_call_is_an_error_subsegment_with_its_status(
    traced_invoke: Callable[[str | None], dict[str, Any]], sink: XRaySink, plaid: Any
) -> None:
    plaid.script(plaid_error(400, "INVALID_INPUT", "INVALID_PRODUCT", "no such product"))

    assert traced_invoke("1")["statusCode"] == 502

    [doc] = documents(sink, 1)
    assert doc["annotations"]["outcome"] == "UPSTREAM_REJECTED"
    call = children(doc)["## plaid /link/token/create"]
    assert call["http"]["response"] == {"status": 400}
    assert call["error"] is True
    assert "no such product" not in json.dumps(doc)  # Plaid's answer is never recorded


def test_traces_never_carry_the_secret(
    traced_invoke: Callable[[str | None], dict[str, Any]], sink: XRaySink
) -> None:
    traced_invoke("1")
    traced_invoke("1")

    assert len(documents(sink, 2)) == 2
    assert all(SECRET.encode() not in datagram for datagram in sink.datagrams)


def test_an_exception_marks_a_fault_with_its_type_and_no_message(sink: XRaySink) -> None:
    environ = {
        "LAMBDA_TASK_ROOT": "/var/task",
        "AWS_XRAY_DAEMON_ADDRESS": sink.address,
        "_X_AMZN_TRACE_ID": header("1"),
    }
    tracer = Tracer("svc", environ)

    @tracer.capture_lambda_handler
    def handler(_event: Any, _context: Any) -> None:
        with tracer.subsegment("## inner", namespace="remote"):
            raise RuntimeError("detail that must stay out of traces")

    with pytest.raises(RuntimeError):
        handler({}, None)

    [doc] = documents(sink, 1)
    inner = children(doc)["## inner"]
    for entity in (doc, inner):
        assert entity["fault"] is True
        assert [e["type"] for e in entity["cause"]["exceptions"]] == ["RuntimeError"]
    assert "must stay out" not in json.dumps(doc)
    assert not tracer.recording  # the next invocation starts clean


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (header("1"), (ROOT_ID, PARENT_ID)),
        (header("0"), None),
        (f"Root={ROOT_ID};Parent={PARENT_ID}", None),  # no decision: not sampled here
        (f"Root={ROOT_ID};Sampled=1", None),  # no parent to attach to
        ("", None),
        (None, None),
        (f"Root={ROOT_ID};Parent={PARENT_ID};Sampled=1;Lineage=a:1", (ROOT_ID, PARENT_ID)),
    ],
)
def test_trace_header(value: str | None, expected: tuple[str, str] | None) -> None:
    assert parse_trace_header(value) == expected


# Each would once have reached `sendto` as given: a port past 65535 raised OverflowError out of
# the handler, a name meant a DNS lookup on every sampled invocation.
MALFORMED_DAEMON_ADDRESSES = [
    "127.0.0.1:70000",
    "127.0.0.1:65536",
    "127.0.0.1:-1",
    "127.0.0.1:0",
    "127.0.0.1:x2000",
    "127.0.0.1:\uff12\uff10\uff10\uff10",  # full-width digits: str.isdigit() says yes
    "127.0.0.1:" + "9" * 5000,  # longer than int() will read
    "127.0.0.1",
    "127.0.0.1:",
    ":2000",
    "::1:2000",  # IPv6 without brackets: which colon is the port's?
    "[::1]",
    "[::1]:70000",
    "[not-an-address]:2000",
    "[127.0.0.1]:2000",
    "udp:127.0.0.1:70000 tcp:127.0.0.1:2000",
    "daemon.invalid:2000",  # a name: never resolved
    "localhost:2000",
    "127.0.0.1:2000\x00",
    " ",
]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ("127.0.0.1", 2000)),
        ("169.254.79.129:2000", ("169.254.79.129", 2000)),
        ("tcp:127.0.0.1:2000 udp:127.0.0.2:2001", ("127.0.0.2", 2001)),
        ("udp:127.0.0.2:2001 tcp:127.0.0.1:2000", ("127.0.0.2", 2001)),
        ("nonsense", ("127.0.0.1", 2000)),
        ("[::1]:2000", ("::1", 2000)),
        ("udp:[::1]:2001 tcp:127.0.0.1:2000", ("::1", 2001)),
        # Malformed: the default, never an address the socket cannot take.
        *((bad, ("127.0.0.1", 2000)) for bad in MALFORMED_DAEMON_ADDRESSES),
    ],
)
def test_daemon_address(value: str | None, expected: tuple[str, int]) -> None:
    assert daemon_address(value) == expected


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({}, False),  # outside Lambda: no daemon listens
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, False),
    ],
)
def test_tracing_enabled(environ: dict[str, str], enabled: bool) -> None:
    assert tracing_enabled(environ) is enabled


def test_init_imports_no_x_ray_sdk_and_no_asyncio() -> None:
    # The cold-start cost this module removes: the X-Ray SDK pulls in wrapt and asyncio.
    code = (
        "import sys, app; "
        "print(sorted(m for m in ('aws_xray_sdk', 'asyncio', 'wrapt') if m in sys.modules))"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "LAMBDA_TASK_ROOT": str(ROOT / "handler"),
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PLAID_SECRET_ID": "plaid-link-token/test",
        "PLAID_CLIENT_NAME": "Test App",
        "_X_AMZN_TRACE_ID": header("1"),
    }
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-B", "-c", code],
        cwd=ROOT / "handler",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]"


REAL_SOCKET = socket.socket


class LoopbackOnlySocket:
    """A real UDP socket that sends only to IP literals on loopback: a name would be a DNS
    lookup and any other address the network, neither of which a test may reach. What it
    refused is kept in `refused`, so swallowing the refusal cannot hide it."""

    refused: ClassVar[list[str]] = []

    def __init__(self, family: int = socket.AF_INET, kind: int = socket.SOCK_DGRAM) -> None:
        self._real = REAL_SOCKET(family, kind)

    def sendto(self, data: bytes, address: tuple[Any, ...]) -> int:
        host = address[0]
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except (TypeError, ValueError):
            loopback = False
        if not loopback:
            LoopbackOnlySocket.refused.append(repr(address))
            raise socket.gaierror(socket.EAI_NONAME, "not sent: not a loopback address")
        return self._real.sendto(data, address)

    def close(self) -> None:
        self._real.close()


def answer_of(tracer: Tracer, fails: bool) -> Any:
    """What a traced handler answers: its return value, or the type and text it raised."""

    @tracer.capture_lambda_handler
    def handler(_event: Any, _context: Any) -> dict[str, Any]:
        with tracer.subsegment("## plaid /link/token/create", namespace="remote") as span:
            if span is not None:
                span.put_http_meta("status", 200)
        if fails:
            raise RuntimeError("the handler's own failure")
        return {"statusCode": 200, "body": '{"link_token":"link-sandbox-x"}'}

    try:
        return handler({}, None)
    except Exception as exc:
        return (type(exc).__name__, str(exc))


def traced_environ(address: str) -> dict[str, str]:
    return {
        "LAMBDA_TASK_ROOT": "/var/task",
        "AWS_XRAY_DAEMON_ADDRESS": address,
        "_X_AMZN_TRACE_ID": header("1"),
    }


@pytest.mark.parametrize("address", MALFORMED_DAEMON_ADDRESSES)
@pytest.mark.parametrize("fails", [False, True], ids=["returns", "raises"])
def test_a_malformed_daemon_address_never_changes_an_answer(
    address: str, fails: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "socket", LoopbackOnlySocket)  # the module xray uses
    monkeypatch.setattr(LoopbackOnlySocket, "refused", [])
    untraced = answer_of(Tracer("svc", {"LAMBDA_TASK_ROOT": "/var/task"}), fails)
    tracer = Tracer("svc", traced_environ(address))

    for _ in range(2):  # the first send creates the socket, the second reuses it
        assert answer_of(tracer, fails) == untraced
    assert LoopbackOnlySocket.refused == []  # no name looked up, nothing sent off loopback
    assert not tracer.recording


class BrokenSocket:
    """A socket whose every send raises `error`; counts how many were created."""

    error: BaseException = OSError()
    created = 0

    def __init__(self, *_args: Any) -> None:
        BrokenSocket.created += 1

    def sendto(self, _data: bytes, _address: tuple[Any, ...]) -> int:
        raise BrokenSocket.error

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    "error",
    [
        OSError(111, "Connection refused"),  # the ICMP answer to an earlier datagram
        OverflowError("sendto(): port must be 0-65535."),
        ValueError("embedded null character"),
        TypeError("bad address"),
        RuntimeError("anything else"),
    ],
    ids=lambda error: type(error).__name__,
)
@pytest.mark.parametrize("fails", [False, True], ids=["returns", "raises"])
def test_a_socket_that_raises_on_send_never_changes_an_answer(
    error: BaseException, fails: bool, sink: XRaySink, monkeypatch: pytest.MonkeyPatch
) -> None:
    untraced = answer_of(Tracer("svc", {"LAMBDA_TASK_ROOT": "/var/task"}), fails)
    tracer = Tracer("svc", traced_environ(sink.address))
    monkeypatch.setattr(socket, "socket", BrokenSocket)  # the module xray uses
    monkeypatch.setattr(BrokenSocket, "error", error)
    monkeypatch.setattr(BrokenSocket, "created", 0)

    assert answer_of(tracer, fails) == untraced
    assert answer_of(tracer, fails) == untraced
    assert BrokenSocket.created == 2  # a socket that failed is not kept
    monkeypatch.undo()  # a working socket again: the next sampled invocation is traced
    assert answer_of(tracer, fails) == untraced
    assert len(documents(sink, 1)) == 1


@pytest.mark.parametrize(
    "daemon",
    [daemon_address("127.0.0.1:70000"), ("127.0.0.1", 70000), ("127.0.0.1", -1)],
    ids=["parsed", "port-70000", "port-negative"],
)
def test_the_real_handler_answers_whatever_the_daemon_address(
    traced_invoke: Callable[[str | None], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    daemon: tuple[str, int],
) -> None:
    monkeypatch.setattr(obs.tracer, "daemon", daemon)

    assert traced_invoke("1")["statusCode"] == 200
    assert traced_invoke("1")["statusCode"] == 200


def test_a_daemon_on_an_ipv6_address_gets_the_trace() -> None:
    try:
        daemon = REAL_SOCKET(socket.AF_INET6, socket.SOCK_DGRAM)
        daemon.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with daemon:
        daemon.settimeout(10)
        port = daemon.getsockname()[1]
        tracer = Tracer("svc", traced_environ(f"[::1]:{port}"))

        assert answer_of(tracer, fails=False)["statusCode"] == 200
        head, _, body = daemon.recv(65536).partition(b"\n")
    assert json.loads(head) == {"format": "json", "version": 1}
    assert json.loads(body)["name"] == "## handler"
