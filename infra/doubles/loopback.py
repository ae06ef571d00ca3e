"""Loopback pieces the tests, the build smoke test and the benchmark share beside the Plaid
stand-in: a throwaway TLS authority for it, a UDP sink playing the X-Ray daemon, and the base
of the loopback doubles' HTTP handlers.

    tls = make_loopback_tls(tmp_dir)          # ca.pem signs a 127.0.0.1/localhost certificate
    with PlaidStandIn(tls=tls.server_context()) as plaid, XRaySink() as xray:
        env = {"REQUESTS_CA_BUNDLE": str(tls.ca_pem), "AWS_XRAY_DAEMON_ADDRESS": xray.address}
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.gateway.local_guard import GuardedHandler


@dataclass(frozen=True)
class LoopbackTls:
    """A CA certificate and the server certificate and key it signed, as PEM files."""

    ca_pem: Path
    cert_pem: Path
    key_pem: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_pem, self.key_pem)
        return context


def make_loopback_tls(directory: Path, ca_name: str = "loopback CA (not Plaid)") -> LoopbackTls:
    """A new CA and a server certificate for 127.0.0.1 and localhost, valid for two days.

    Regenerated per run: nothing long-lived, nothing committed. Needs `cryptography` (a moto
    dependency, so it is in the dev environment).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def builder(subject: str, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
        now = dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(ca_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_usage = {"digital_signature", "key_cert_sign", "crl_sign"}
    usages = (
        "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
        "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
    )  # fmt: skip
    ca_cert = (
        builder(ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(**{u: u in ca_usage for u in usages}), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    loopback = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    cert = (
        builder("127.0.0.1", key)
        .add_extension(x509.SubjectAlternativeName(loopback), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    directory.mkdir(parents=True, exist_ok=True)
    tls = LoopbackTls(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    tls.ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    tls.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tls


class XRaySink:
    """A UDP socket on loopback standing in for the X-Ray daemon; keeps every datagram."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.datagrams: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()
        return f"{host}:{port}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.datagrams.append(self.sock.recv(65536))
            except TimeoutError:
                continue
            except OSError:
                return

    def __enter__(self) -> XRaySink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.3)  # let the last segments arrive
        self._stop.set()
        self._thread.join()
        self.sock.close()


class LoopbackHandler(GuardedHandler):
    """Base for the loopback doubles' request handlers: HTTP/1.1 keep-alive, quiet, and
    answers in one write on a TCP_NODELAY socket (without both, Nagle's algorithm and delayed
    ACKs add ~40 ms to every kept-alive exchange). Requests naming another Host or carrying a
    web page's Origin are refused before dispatch (local_guard.py)."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the output under test is the handler's, not the doubles'

    def answer(self, status: int, payload: bytes, headers: Mapping[str, str]) -> None:
        """Status line, headers (Content-Length added) and body, in one write."""
        lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(payload)}")
        try:
            self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        except OSError:  # the client gave up (a timeout, a huge answer): nothing to answer
            self.close_connection = True
