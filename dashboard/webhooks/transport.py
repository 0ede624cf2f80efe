"""One webhook POST, sent only to a public address: the guard against server-side request forgery.

An endpoint's URL is chosen by whoever manages it, so without a guard anyone allowed to
save one could make Voxboard's own servers POST to what only they can reach: the cloud
metadata service (which hands out credentials), an admin port on loopback, a database
in the private network. Two checks keep deliveries on the public internet:

- `check_url`, when an endpoint is saved and again at every delivery: `http`/`https`
  only (`https` in production), a host, no user name or password in the URL.
- `deliver`, at every attempt: the host is resolved once and *every* address it
  resolves to must be public (`check_address`); one refused address refuses the
  delivery, since the answer is the endpoint owner's to choose. The connection is then
  made to the checked address itself, not to the host name: resolving again would let
  a DNS answer with a short lifetime point elsewhere between the check and the
  connection (DNS rebinding). TLS still verifies the real host name (it is the SNI and
  the name matched against the certificate) and the `Host` header carries it.

Nothing else leaves the check: no redirect is followed (a 3xx is reported as it is;
following it would be a second, unchecked request), no retry (the delivery job owns
retries), no proxy from the environment (urllib3's connections read none). Connecting
may take `CONNECT_TIMEOUT`, everything after it shares `TOTAL_TIMEOUT`, and at most
`EXCERPT_BYTES` of the answer are kept. Resolving is left to the system resolver's own
limits, and a TLS handshake is bounded per read by the connect timeout.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    LocationParseError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util import parse_url

CONNECT_TIMEOUT = 5.0  # seconds to establish the connection
TOTAL_TIMEOUT = 15.0  # seconds for the whole attempt, connecting included
EXCERPT_BYTES = 1024  # of the response body, kept for the delivery log
USER_AGENT = "Voxboard-Webhooks/1"
# Set here, never by the caller: the framing, and what the checks decided.
OWN_HEADERS = ("Host", "Content-Type", "User-Agent", "Content-Length", "Transfer-Encoding")

Resolver = Callable[[str, int], Sequence[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, RFC 6598
_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix, RFC 6052
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated, but still parsed
_UNSPECIFIED_V6, _LOOPBACK_V6 = ipaddress.ip_address("::"), ipaddress.ip_address("::1")
# Named apart so the message says what the address is; every one is also caught below.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean…
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.170.23",  # AWS EKS pod identity
        "fd00:ec2::254",  # AWS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
    )
)
# First match wins: (what the address is, the test).
_REFUSED: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("is a cloud metadata service", lambda ip: ip in _METADATA),
    ("is unspecified", lambda ip: ip.is_unspecified),
    ("is loopback (this machine)", lambda ip: ip.is_loopback),
    ("is link-local", lambda ip: ip.is_link_local),
    ("is a multicast address", lambda ip: ip.is_multicast),
    ("is in carrier-grade NAT space (100.64.0.0/10)", lambda ip: ip in _SHARED),
    (
        "is in a private network",
        lambda ip: any(ip in n for n in _PRIVATE) or getattr(ip, "is_site_local", False),
    ),
    ("is reserved", lambda ip: ip.is_reserved),
    ("is not a public address", lambda ip: not ip.is_global),
)


class UnsafeUrl(ValueError):
    """A URL webhooks are never sent to; the message says why, for the person who set it."""


class UnsafeAddress(UnsafeUrl):
    """The URL's host resolves to an address webhooks are never sent to."""


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What one attempt came to: the answer's status, or why there was none."""

    status_code: int | None
    error: str | None  # a sentence for the delivery log, None when the endpoint answered
    duration_ms: int
    response_excerpt: str  # the first EXCERPT_BYTES of the body, decoded leniently

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class _Target:
    scheme: str
    host: str  # IDNA-encoded, IPv6 without brackets
    port: int
    host_header: str
    path: str  # path and query, percent-encoded


def check_url(url: str, *, require_https: bool) -> None:
    """Raise UnsafeUrl when `url` can be refused without resolving it."""
    _target(url, require_https=require_https)


def check_address(address: str, *, allow_loopback: bool) -> None:
    """Raise UnsafeAddress unless webhooks may be sent to `address` (an IP, as resolved).

    `allow_loopback` (development and tests) lets 127.0.0.0/8 and ::1 through, and
    nothing else: not even an IPv6 form embedding 127.0.0.1.
    """
    ip = ipaddress.ip_address(address)
    if allow_loopback and any(ip in network for network in _LOOPBACK):
        return
    embedded = _embedded_ipv4(ip)
    for what, refused in _REFUSED:
        if refused(ip if embedded is None else embedded):
            shown = address if embedded is None else f"{address} ({embedded})"
            raise UnsafeAddress(
                f"The endpoint's address {shown} {what}; "
                "webhooks are only sent to public addresses."
            )


def resolve(host: str, port: int) -> list[str]:
    """Return every address the system resolver gives for `host`, in its order."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in found))


def deliver(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    allow_loopback: bool,
    require_https: bool,
    resolver: Resolver | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    total_timeout: float = TOTAL_TIMEOUT,
    ssl_context: ssl.SSLContext | None = None,
) -> DeliveryResult:
    """POST `body` to `url` once, after checking every address its host resolves to.

    `ssl_context` replaces the default (the system's certificate authorities); tests
    pass one trusting their own. Never raises for what the endpoint does; a header the
    transport sets itself (`OWN_HEADERS`) in `headers` is a ValueError.
    """
    own = {name.lower() for name in OWN_HEADERS}
    if clash := sorted(name for name in headers if name.lower() in own):
        raise ValueError(f"the transport sets {', '.join(clash)} itself")
    started = time.monotonic()

    def result(status: int | None, error: str | None, excerpt: str = "") -> DeliveryResult:
        return DeliveryResult(status, error, round((time.monotonic() - started) * 1000), excerpt)

    try:
        target = _target(url, require_https=require_https)
        address = _checked_address(target, resolver or resolve, allow_loopback=allow_loopback)
    except UnsafeUrl as exc:
        return result(None, str(exc))
    sent = {
        **headers,
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    connection = _connection(target, address, min(connect_timeout, total_timeout), ssl_context)
    deadline = _Deadline(total_timeout)
    response = None
    try:
        connection.connect()
        deadline.watch(connection.sock)
        connection.timeout = max(deadline.remaining(), 0.001)
        connection.request("POST", target.path, body=body, headers=sent, preload_content=False)
        response = connection.getresponse()
        excerpt = _decoded(response.read(EXCERPT_BYTES, decode_content=False))
        if deadline.passed():
            return result(response.status, _timed_out(total_timeout), excerpt)
        return result(response.status, None, excerpt)
    except (OSError, http.client.HTTPException, HTTPError) as exc:
        status = response.status if response is not None else None
        if deadline.passed():  # the watchdog cut it short, whatever the error says
            return result(status, _timed_out(total_timeout))
        return result(status, _failure(exc, min(connect_timeout, total_timeout), total_timeout))
    finally:
        deadline.cancel()
        if response is not None:
            response.close()
        connection.close()


def _connection(
    target: _Target, address: str, connect_timeout: float, ssl_context: ssl.SSLContext | None
) -> HTTPConnection:
    """Return an unopened connection to the checked `address`, verifying TLS for the host."""
    if target.scheme == "http":
        return HTTPConnection(address, target.port, timeout=connect_timeout)
    return HTTPSConnection(
        address,
        target.port,
        timeout=connect_timeout,
        server_hostname=target.host,  # SNI and the certificate's name: the host, not the IP
        ssl_context=ssl_context,
    )


def _target(url: str, *, require_https: bool) -> _Target:
    """Parse `url` once, for both the checks and the request, refusing what is unsafe."""
    if any(c.isspace() or not c.isprintable() for c in url):
        raise UnsafeUrl("The URL contains spaces or control characters.")
    try:
        parsed = parse_url(url)
    except LocationParseError:
        raise UnsafeUrl("The URL isn't valid (check the host and the port).") from None
    if parsed.scheme not in ("http", "https"):
        raise UnsafeUrl("The URL must start with https:// (or http:// outside production).")
    if require_https and parsed.scheme != "https":
        raise UnsafeUrl("Webhooks are only sent over HTTPS: the URL must start with https://.")
    if parsed.auth is not None:
        raise UnsafeUrl(
            "The URL must not contain a user name or password; "
            "receivers authenticate deliveries by their signature."
        )
    if not parsed.host:
        raise UnsafeUrl("The URL has no host.")
    if parsed.port == 0:
        raise UnsafeUrl("The URL's port must be between 1 and 65535.")
    default_port = 443 if parsed.scheme == "https" else 80
    return _Target(
        scheme=parsed.scheme,
        host=parsed.host.strip("[]"),
        port=parsed.port or default_port,
        host_header=parsed.netloc,
        path=parsed.request_uri,
    )


def _checked_address(target: _Target, resolver: Resolver, *, allow_loopback: bool) -> str:
    """Return the address to connect to, once every address of the host has been checked."""
    try:
        addresses = [str(ipaddress.ip_address(target.host))]
    except ValueError:  # a name, or an IPv4 spelling only the resolver reads (127.1)
        try:
            addresses = list(resolver(target.host, target.port))
        except (OSError, UnicodeError):  # UnicodeError: a label the resolver can't encode
            addresses = []
    if not addresses:
        raise UnsafeAddress(f"The endpoint's host {target.host} could not be resolved.")
    for address in addresses:
        check_address(address, allow_loopback=allow_loopback)
    return addresses[0]


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address an IPv6 one carries (mapped, compatible, 6to4, NAT64)."""
    if ip.version == 4:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    compatible = ip in _IPV4_COMPATIBLE and ip not in (_UNSPECIFIED_V6, _LOOPBACK_V6)
    if ip in _NAT64 or compatible:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


class _Deadline:
    """The end of an attempt: once it passes, the socket is shut down under whatever reads it.

    A socket timeout bounds each read, not their sum, so without this a receiver sending
    a byte a second would hold a worker for as long as it liked.
    """

    def __init__(self, seconds: float) -> None:
        self._at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return self._at - time.monotonic()

    def passed(self) -> bool:
        return self.remaining() <= 0

    def watch(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._socket = sock

    def cancel(self) -> None:
        """Stop watching; after this returns the socket is the caller's alone to close."""
        self._timer.cancel()
        with self._lock:
            self._socket = None

    def _expire(self) -> None:
        with self._lock:
            if self._socket is None:
                return
            try:
                # The plain socket's shutdown: SSLSocket's own would drop its TLS state
                # under the reading thread instead of letting the read see the end.
                socket.socket.shutdown(self._socket, socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the other side


def _decoded(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _timed_out(total_timeout: float) -> str:
    return f"Timed out after {total_timeout:g} s."


def _failure(exc: BaseException, connect_timeout: float, total_timeout: float) -> str:
    """Say in a sentence why an attempt got no (complete) answer."""
    if isinstance(exc, NewConnectionError):  # before its base class, ConnectTimeoutError
        cause = exc.__cause__
        if isinstance(cause, ConnectionRefusedError):
            return "Connection refused."
        return f"Could not connect: {getattr(cause, 'strerror', None) or cause}."
    if isinstance(exc, ConnectTimeoutError):
        return f"Could not connect within {connect_timeout:g} s."
    if isinstance(exc, TimeoutError | ReadTimeoutError):
        return _timed_out(total_timeout)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"The endpoint's TLS certificate could not be verified: {exc.verify_message}."
    if isinstance(exc, ssl.SSLError):
        return f"The TLS connection failed ({exc.reason or exc})."
    if isinstance(exc, http.client.RemoteDisconnected | ProtocolError | ConnectionError):
        return "The endpoint closed the connection without a complete answer."
    if isinstance(exc, http.client.HTTPException):
        return "The endpoint's answer isn't valid HTTP."
    return f"The connection failed: {getattr(exc, 'strerror', None) or exc}."
