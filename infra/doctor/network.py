"""`--live`: the path to Plaid's host before any request: proxy, DNS, TCP, TLS, and latency.

The CA bundle is the one the service's HTTP session trusts (REQUESTS_CA_BUNDLE or
CURL_CA_BUNDLE, else certifi's), so a verification failure here is one the function would hit.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Mapping
from unittest import mock
from urllib.parse import urlsplit

import certifi

from infra.doctor.findings import Finding
from linktoken.plaid_client import proxies_for
from linktoken.plaid_errors import TLS_UNTRUSTED

GROUP = "network"
TIMEOUT_SECONDS = 5.0


def check_network(base_url: str, environ: Mapping[str, str] = os.environ) -> list[Finding]:
    """Proxy, then DNS, TCP and TLS to the configured Plaid host, each timed."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    findings = [check_proxy(base_url, environ)]
    if findings[0].status == "warn":
        return findings  # the proxy resolves and connects; the Plaid call tests that path

    started = time.perf_counter()
    try:
        address = str(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0])
    except OSError as exc:
        findings.append(
            Finding(
                GROUP,
                "DNS",
                "problem",
                f"Plaid unreachable: {host} does not resolve ({exc})",
                "check DNS and the network route (a VPC function needs a NAT gateway or a "
                "proxy to reach Plaid)",
            )
        )
        return findings
    findings.append(Finding(GROUP, "DNS", "ok", f"{host} -> {address} in {_ms(started)}"))

    started = time.perf_counter()
    try:
        sock = socket.create_connection((address, port), timeout=TIMEOUT_SECONDS)
    except OSError as exc:
        findings.append(
            Finding(
                GROUP,
                "TCP",
                "problem",
                f"Plaid unreachable: no connection to {host}:{port} ({exc})",
                "check egress rules, firewalls and security groups towards Plaid on port "
                f"{port}; Plaid's status: status.plaid.com",
            )
        )
        return findings
    findings.append(Finding(GROUP, "TCP", "ok", f"connected to {host}:{port} in {_ms(started)}"))
    with sock:
        if parts.scheme != "https":
            findings.append(
                Finding(GROUP, "TLS", "skip", f"{base_url} is plain http (a loopback stand-in)")
            )
        else:
            findings.append(_tls(sock, host, environ))
    return findings


_PROXY_VARIABLES = tuple(
    name
    for base in ("https_proxy", "http_proxy", "all_proxy", "no_proxy")
    for name in (base, base.upper())
)


def check_proxy(base_url: str, environ: Mapping[str, str]) -> Finding:
    """The proxy the service's session would use for Plaid, by the service's own rule."""
    with mock.patch.dict(os.environ):  # the rule reads the process environment
        for name in _PROXY_VARIABLES:
            os.environ.pop(name, None)
            if environ.get(name):
                os.environ[name] = environ[name]
        proxies = proxies_for(base_url)
    scheme = urlsplit(base_url).scheme
    proxy = proxies.get(scheme) or proxies.get("all")
    bypass = [name for name in ("NO_PROXY", "no_proxy") if environ.get(name)]
    if not proxy:
        note = f" ({' and '.join(bypass)} covers it)" if bypass else ""
        return Finding(GROUP, "proxy", "ok", "none: Plaid is called directly" + note)
    shown = urlsplit(proxy)
    where = f"{shown.scheme}://{shown.hostname}:{shown.port}" if shown.hostname else "(unparsed)"
    return Finding(
        GROUP,
        "proxy",
        "warn",
        f"Plaid calls go through the proxy {where}; direct DNS/TCP/TLS checks skipped",
        "if the call below fails, check the proxy first (or add Plaid's host to NO_PROXY); a "
        "TLS-inspecting proxy needs its CA in REQUESTS_CA_BUNDLE",
    )


def _tls(sock: socket.socket, host: str, environ: Mapping[str, str]) -> Finding:
    bundle = environ.get("REQUESTS_CA_BUNDLE") or environ.get("CURL_CA_BUNDLE") or certifi.where()
    peer = sock.getpeername()  # before wrapping: a failed handshake leaves sock detached
    started = time.perf_counter()
    try:
        context = ssl.create_default_context(cafile=bundle)
        with context.wrap_socket(sock, server_hostname=host) as tls:
            version = tls.version()
    except ssl.SSLCertVerificationError as exc:
        issuer = _issuer(peer, host)
        return Finding(
            GROUP,
            "TLS",
            "problem",
            f"{host}'s certificate does not verify against {bundle}: {exc.verify_message}; "
            f"it is issued by {issuer!r}",
            TLS_UNTRUSTED.fix,
        )
    except (ssl.SSLError, OSError) as exc:
        return Finding(
            GROUP,
            "TLS",
            "problem",
            f"TLS handshake with {host} failed: {exc}",
            "an intercepting proxy or a middlebox is breaking TLS; Plaid needs TLS 1.2+; "
            + TLS_UNTRUSTED.fix,
        )
    return Finding(GROUP, "TLS", "ok", f"{version} with {host}, verified, in {_ms(started)}")


def _issuer(peer: tuple[str, int], host: str) -> str:
    """Who signed the certificate that did not verify (fetched again without verifying)."""
    from cryptography import x509

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only to read the issuer's name, nothing is sent
    try:
        with (
            socket.create_connection(peer[:2], timeout=TIMEOUT_SECONDS) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except OSError:
        return "unknown"
    if not der:
        return "unknown"
    return x509.load_der_x509_certificate(der).issuer.rfc4514_string()


def _ms(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.0f} ms"
