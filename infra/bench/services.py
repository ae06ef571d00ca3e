"""The benchmark's loopback world: Secrets Manager (moto, server mode), Plaid (the stand-in,
over TLS with a CA made for the run) and an X-Ray daemon sink. Nothing leaves 127.0.0.1.

Counting, so "one secret read per container" and "one connection per container" are measured
rather than assumed:
- secret reads: a WSGI middleware in front of moto's own server app counts every request whose
  `X-Amz-Target` is `secretsmanager.GetSecretValue`, i.e. every read that reached the server;
- Plaid connections and requests: the stand-in's own counters (TCP accepts, HTTP requests);
- traces: UDP datagrams received on the X-Ray daemon address (proof that tracing is active).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra/local"))

from plaid_standin import PlaidStandIn  # noqa: E402

CLIENT_ID = "bench-client-id"
SECRET = "bench-plaid-secret"  # noqa: S105 - the stand-in's fake key, not a credential
SECRET_ID = "plaid-link-token/bench"  # noqa: S105 - a secret's name
GET_SECRET_TARGET = "secretsmanager.GetSecretValue"  # noqa: S105 - an API name


# --- TLS -------------------------------------------------------------------------------------


def make_ca_and_server_cert(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a 127.0.0.1/localhost server certificate it signed.

    Returns (ca.pem, server.pem, server-key.pem). Regenerated per run: nothing long-lived.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench loopback CA (not Plaid)")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.DNSName("localhost"),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = directory / "ca.pem"
    cert_pem = directory / "server.pem"
    key_pem = directory / "server-key.pem"
    ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_pem, cert_pem, key_pem


def server_tls_context(cert_pem: Path, key_pem: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_pem, key_pem)
    return context


# --- Secrets Manager (moto server mode) --------------------------------------------------------


class CountingMotoServer:
    """moto's own server app (as `ThreadedMotoServer` runs it) behind a counting middleware."""

    def __init__(self) -> None:
        self.secret_reads = 0
        self.requests = 0
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def _count(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        def middleware(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            with self._lock:
                self.requests += 1
                if environ.get("HTTP_X_AMZ_TARGET") == GET_SECRET_TARGET:
                    self.secret_reads += 1
            return app(environ, start_response)

        return middleware

    def __enter__(self) -> CountingMotoServer:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):  # type: ignore[misc]
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            "127.0.0.1", 0, self._count(app), threaded=True, request_handler=QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def create_secret(self, secret_id: str, secret_string: str) -> None:
        import botocore.session

        client = botocore.session.get_session().create_client(
            "secretsmanager",
            region_name="us-east-1",
            endpoint_url=self.endpoint,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",  # noqa: S106 - moto's fake credentials
        )
        client.create_secret(Name=secret_id, SecretString=secret_string)
        with self._lock:
            self.secret_reads = 0
            self.requests = 0


# --- X-Ray daemon sink ------------------------------------------------------------------------


class XRaySink:
    """Receives (and counts) the UDP segments the X-Ray SDK sends to its daemon address."""

    def __init__(self) -> None:
        self.datagrams = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()
        return f"{host}:{port}"

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self.datagrams += 1

    def __enter__(self) -> XRaySink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(1)
        self.sock.close()


class World:
    """Everything the variants talk to, started together for one benchmark run."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ca_pem, cert_pem, key_pem = make_ca_and_server_cert(workdir / "tls")
        self.moto = CountingMotoServer()
        self.plaid = PlaidStandIn(
            client_id=CLIENT_ID, secret=SECRET, tls=server_tls_context(cert_pem, key_pem)
        )
        self.xray = XRaySink()

    def __enter__(self) -> World:
        self.moto.__enter__()
        self.plaid.__enter__()
        self.xray.__enter__()
        self.moto.create_secret(SECRET_ID, json.dumps({"client_id": CLIENT_ID, "secret": SECRET}))
        return self

    def __exit__(self, *exc: object) -> None:
        self.xray.__exit__()
        self.plaid.__exit__()
        self.moto.__exit__()

    def counters(self) -> dict[str, int]:
        return {
            "plaid_connections": self.plaid.connections,
            "plaid_requests": len(self.plaid.requests),
            "secret_reads": self.moto.secret_reads,
            "xray_datagrams": self.xray.datagrams,
        }
