"""The webhook transport: URLs and addresses it refuses, and real POSTs on loopback."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3.util.connection
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dashboard.webhooks import transport
from dashboard.webhooks.transport import (
    DeliveryResult,
    UnsafeAddress,
    UnsafeUrl,
    check_address,
    check_url,
    deliver,
)
from tests.webhooks.receiver import Receiver, Reply, webhook_receiver

BODY = b'{"type":"generation.succeeded","data":{"id":"gen_1"}}'
SIGNED = {"webhook-id": "msg_1", "webhook-timestamp": "1700000000", "webhook-signature": "v1,x"}
FAST = {"connect_timeout": 0.5, "total_timeout": 1.0}


class StubResolver:
    """Answer every lookup with the given addresses, and remember each lookup."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = list(addresses)
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return self.addresses


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the transport opens any connection (urllib3's only way to one)."""

    def tripwire(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a connection was attempted: {args}")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", tripwire)


# ---------------------------------------------------------------- URLs, when saved


@pytest.mark.parametrize(
    ("url", "require_https", "says"),
    [
        ("ftp://hooks.example.com/in", False, "must start with https://"),
        ("javascript:alert(1)", False, "must start with https://"),
        ("hooks.example.com/in", False, "must start with https://"),
        ("http://hooks.example.com/in", True, "only sent over HTTPS"),
        ("http://127.0.0.1:8000/in", True, "only sent over HTTPS"),
        ("https://user:secret@hooks.example.com/in", False, "user name or password"),
        ("https://token@hooks.example.com/in", False, "user name or password"),
        ("https:///in", False, "no host"),
        ("https://hooks.example.com:0/in", False, "between 1 and 65535"),
        ("https://hooks.example.com:99999/in", False, "isn't valid"),
        ("https://hooks.example.com:port/in", False, "isn't valid"),
        ("https://hooks.example.com/a b", False, "spaces or control characters"),
        ("https://hooks.example.com/\r\nX-Injected: 1", False, "spaces or control characters"),
    ],
)
def test_check_url_refuses(url: str, require_https: bool, says: str) -> None:
    with pytest.raises(UnsafeUrl, match=says):
        check_url(url, require_https=require_https)


@pytest.mark.parametrize(
    ("url", "require_https"),
    [
        ("https://hooks.example.com/in", True),
        ("https://hooks.example.com:8443/in?team=1", True),
        ("https://bücher.example/ü", True),
        ("https://[2606:4700::1111]/in", True),
        ("http://hooks.example.com:8080/in", False),
        # Addresses are judged when resolved, at delivery, where allow_loopback is known.
        ("http://127.0.0.1:5000/in", False),
    ],
)
def test_check_url_accepts(url: str, require_https: bool) -> None:
    check_url(url, require_https=require_https)


# ---------------------------------------------------------------- addresses, when delivering

REFUSED = [
    ("127.0.0.1", "is loopback"),
    ("127.5.6.7", "is loopback"),
    ("::1", "is loopback"),
    ("10.0.0.5", "is in a private network"),
    ("172.16.3.4", "is in a private network"),
    ("192.168.1.1", "is in a private network"),
    ("fd12:3456::1", "is in a private network"),
    ("fec0::1", "is in a private network"),
    ("169.254.1.2", "is link-local"),
    ("fe80::1", "is link-local"),
    ("224.0.0.1", "is a multicast address"),
    ("239.255.255.250", "is a multicast address"),
    ("ff02::1", "is a multicast address"),
    ("0.0.0.0", "is unspecified"),
    ("::", "is unspecified"),
    ("240.0.0.1", "is reserved"),
    ("255.255.255.255", "is reserved"),
    ("100.64.0.1", "is in carrier-grade NAT space"),
    ("100.127.255.254", "is in carrier-grade NAT space"),
    ("169.254.169.254", "is a cloud metadata service"),
    ("169.254.170.2", "is a cloud metadata service"),
    ("fd00:ec2::254", "is a cloud metadata service"),
    ("100.100.100.200", "is a cloud metadata service"),
    ("::ffff:127.0.0.1", "(127.0.0.1) is loopback"),
    ("::ffff:10.0.0.1", "(10.0.0.1) is in a private network"),
    ("::ffff:169.254.169.254", "(169.254.169.254) is a cloud metadata service"),
    ("::10.0.0.1", "(10.0.0.1) is in a private network"),
    ("2002:a00:1::", "(10.0.0.1) is in a private network"),
    ("2002:7f00:1::", "(127.0.0.1) is loopback"),
    ("64:ff9b::a9fe:a9fe", "(169.254.169.254) is a cloud metadata service"),
    ("64:ff9b::7f00:1", "(127.0.0.1) is loopback"),
    ("192.0.2.1", "is not a public address"),
    ("198.18.0.1", "is not a public address"),
    ("2001:db8::1", "is not a public address"),
    ("0.1.2.3", "is not a public address"),
]


@pytest.mark.parametrize(("address", "says"), REFUSED)
@pytest.mark.usefixtures("no_connections")
def test_refused_address_is_never_connected_to(address: str, says: str) -> None:
    resolver = StubResolver(address)
    result = deliver(
        "https://hooks.example.com/in",
        BODY,
        SIGNED,
        allow_loopback=False,
        require_https=True,
        resolver=resolver,
    )
    assert result.status_code is None and not result.ok
    assert result.error is not None
    assert result.error.startswith(f"The endpoint's address {address} ")
    assert says in result.error
    assert result.error.endswith("; webhooks are only sent to public addresses.")
    assert resolver.calls == [("hooks.example.com", 443)]


@pytest.mark.parametrize(("address", "says"), [r for r in REFUSED if "loopback" not in r[1]])
def test_allow_loopback_allows_nothing_else(address: str, says: str) -> None:
    with pytest.raises(UnsafeAddress, match=re.escape(says)):
        check_address(address, allow_loopback=True)


@pytest.mark.parametrize("address", ["::ffff:127.0.0.1", "2002:7f00:1::", "64:ff9b::7f00:1"])
def test_allow_loopback_allows_no_ipv6_form_of_it(address: str) -> None:
    with pytest.raises(UnsafeAddress, match="is loopback"):
        check_address(address, allow_loopback=True)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1"])
def test_allow_loopback_allows_loopback(address: str) -> None:
    check_address(address, allow_loopback=True)


@pytest.mark.parametrize(
    "address",
    [
        "93.184.215.14",
        "8.8.8.8",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",  # mapped, 6to4 and NAT64 forms of a public address
        "2002:808:808::",
        "64:ff9b::808:808",
    ],
)
def test_public_addresses_pass(address: str) -> None:
    check_address(address, allow_loopback=False)


@pytest.mark.usefixtures("no_connections")
def test_one_refused_address_refuses_the_delivery(receiver: Receiver) -> None:
    # The first address is allowed here, and still nothing is sent to it.
    resolver = StubResolver("127.0.0.1", "10.0.0.5")
    result = deliver(
        f"http://hooks.example.com:{receiver.port}/in",
        BODY,
        SIGNED,
        allow_loopback=True,
        require_https=False,
        resolver=resolver,
    )
    assert result.error is not None and "10.0.0.5 is in a private network" in result.error
    assert receiver.requests == []


@pytest.mark.usefixtures("no_connections")
@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/in",
        "http://127.1/in",  # spellings only the resolver reads, resolved to 127.0.0.1
        "http://2130706433/in",
        "http://0x7f.0.0.1/in",
    ],
)
def test_default_resolver_sees_loopback_through_its_spellings(url: str) -> None:
    result = deliver(url, BODY, SIGNED, allow_loopback=False, require_https=False)
    assert result.error is not None and "is loopback" in result.error


def test_default_resolver_returns_every_address_once() -> None:
    found = transport.resolve("localhost", 80)
    assert "127.0.0.1" in found and len(found) == len(set(found))


def unresolvable(host: str, port: int) -> list[str]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.mark.usefixtures("no_connections")
@pytest.mark.parametrize("resolver", [StubResolver(), unresolvable], ids=["empty", "error"])
def test_unresolvable_host(resolver: transport.Resolver) -> None:
    result = deliver(
        "https://nowhere.example/in",
        BODY,
        SIGNED,
        allow_loopback=False,
        require_https=True,
        resolver=resolver,
    )
    assert (result.status_code, result.error) == (
        None,
        "The endpoint's host nowhere.example could not be resolved.",
    )


@pytest.mark.usefixtures("no_connections")
def test_host_name_the_resolver_cannot_encode() -> None:
    result = deliver("https://a..b/in", BODY, SIGNED, allow_loopback=False, require_https=True)
    assert result.error == "The endpoint's host a..b could not be resolved."


@pytest.mark.usefixtures("no_connections")
def test_unsafe_url_is_refused_at_delivery_too() -> None:
    result = deliver(
        "https://user:pw@hooks.example.com/in",
        BODY,
        SIGNED,
        allow_loopback=False,
        require_https=True,
        resolver=StubResolver("93.184.215.14"),
    )
    assert result.status_code is None and "user name or password" in (result.error or "")


def test_headers_the_transport_sets_are_not_the_callers() -> None:
    with pytest.raises(ValueError, match="the transport sets host itself"):
        deliver(
            "https://hooks.example.com/in",
            BODY,
            {"host": "elsewhere.example"},
            allow_loopback=False,
            require_https=True,
        )


@pytest.mark.parametrize(
    ("status", "error", "ok"),
    [(200, None, True), (204, None, True), (299, None, True), (302, None, False)]
    + [(500, None, False), (None, "Connection refused.", False), (200, "Timed out.", False)],
)
def test_result_ok_means_a_complete_2xx(status: int | None, error: str | None, ok: bool) -> None:
    result = DeliveryResult(status, error, 12, "")
    assert result.ok is ok
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.status_code = 201  # type: ignore[misc]


# ---------------------------------------------------------------- real POSTs on loopback


def post(url: str, **options: object) -> DeliveryResult:
    kwargs: dict = {"allow_loopback": True, "require_https": False, **options}
    return deliver(url, BODY, SIGNED, **kwargs)


def test_delivers_exactly_the_body_and_headers(receiver: Receiver) -> None:
    receiver.reply_next(Reply(200, b'{"received":true}'))
    result = post(f"{receiver.url}/hooks/in?team=7")

    assert result == DeliveryResult(200, None, result.duration_ms, '{"received":true}')
    assert result.ok and result.duration_ms >= 0
    [request] = receiver.requests
    assert (request.method, request.path, request.body) == ("POST", "/hooks/in?team=7", BODY)
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "Voxboard-Webhooks/1"
    assert request.headers["content-length"] == str(len(BODY))
    for name, value in SIGNED.items():
        assert request.headers[name] == value


def test_connects_to_the_checked_address_not_the_name(receiver: Receiver) -> None:
    # hooks.example.com is resolved once, by the stub; a second lookup (what a DNS
    # rebinding attack needs) would get a private address and the test would see it.
    resolver = StubResolver("127.0.0.1")
    result = post(f"http://hooks.example.com:{receiver.port}/in", resolver=resolver)
    resolver.addresses = ["10.0.0.5"]

    assert result.ok
    assert resolver.calls == [("hooks.example.com", receiver.port)]
    assert receiver.requests[0].headers["host"] == f"hooks.example.com:{receiver.port}"


def test_loopback_is_refused_unless_allowed(receiver: Receiver) -> None:
    result = post(f"{receiver.url}/in", allow_loopback=False)
    assert result.status_code is None
    assert result.error == (
        "The endpoint's address 127.0.0.1 is loopback (this machine); "
        "webhooks are only sent to public addresses."
    )
    assert receiver.requests == []


def test_require_https_refuses_http_even_on_allowed_loopback(receiver: Receiver) -> None:
    result = post(f"{receiver.url}/in", require_https=True)
    assert result.error is not None and "only sent over HTTPS" in result.error
    assert receiver.requests == []


def test_redirect_is_reported_not_followed(receiver: Receiver) -> None:
    with webhook_receiver() as target:
        receiver.reply_next(Reply(302, b"", {"Location": f"{target.url}/landed"}))
        result = post(f"{receiver.url}/in")
        assert (result.status_code, result.error, result.ok) == (302, None, False)
        assert target.requests == []
    assert len(receiver.requests) == 1


def test_server_error_keeps_a_capped_excerpt(receiver: Receiver) -> None:
    page = "Internal error: é ".encode() * 300  # over the cap, multi-byte characters
    receiver.reply_next(Reply(500, page, {"Content-Type": "text/plain; charset=utf-8"}))
    result = post(f"{receiver.url}/in")
    assert (result.status_code, result.error, result.ok) == (500, None, False)
    assert result.response_excerpt == page[: transport.EXCERPT_BYTES].decode(errors="replace")


def test_huge_body_is_not_read_past_the_cap(receiver: Receiver) -> None:
    receiver.reply_next(Reply(200, b"", filler=1 << 30))
    started = time.monotonic()
    result = post(f"{receiver.url}/in")

    assert result.ok and result.response_excerpt == "x" * transport.EXCERPT_BYTES
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 5
    while not receiver.body_bytes_sent and time.monotonic() < deadline:
        time.sleep(0.01)
    # What the kernel buffered before the close is all the receiver could write.
    assert 0 < receiver.body_bytes_sent[0] < 64 << 20


def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = post(f"http://127.0.0.1:{port}/in")
    assert (result.status_code, result.error) == (None, "Connection refused.")


def test_hanging_receiver_times_out(receiver: Receiver) -> None:
    receiver.reply_next(Reply(hang=True))
    result = post(f"{receiver.url}/in", **FAST)
    assert (result.status_code, result.error) == (None, "Timed out after 1 s.")
    assert 900 <= result.duration_ms < 3000
    assert len(receiver.requests) == 1


def test_slow_drip_body_cannot_outlast_the_total(receiver: Receiver) -> None:
    # Each byte comes well within a read timeout; only the total deadline stops it.
    receiver.reply_next(Reply(200, b"y" * 100, drip=0.1))
    result = post(f"{receiver.url}/in", **FAST)
    assert (result.status_code, result.error, result.ok) == (200, "Timed out after 1 s.", False)
    assert 900 <= result.duration_ms < 3000


def test_default_timeouts() -> None:
    assert (transport.CONNECT_TIMEOUT, transport.TOTAL_TIMEOUT) == (5.0, 15.0)


# ---------------------------------------------------------------- TLS to the pinned address


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Return (server, client) contexts for a throwaway self-signed `localhost` certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    folder: Path = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return server, ssl.create_default_context(cadata=pem.decode())


@pytest.fixture
def tls_receiver(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> Iterator[Receiver]:
    with webhook_receiver(ssl_context=tls[0]) as receiver:
        yield receiver


def test_https_verifies_the_host_name_on_the_pinned_address(
    tls_receiver: Receiver, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    result = post(
        f"https://localhost:{tls_receiver.port}/in",
        require_https=True,
        resolver=StubResolver("127.0.0.1"),
        ssl_context=tls[1],
    )
    assert result.ok, result.error
    [request] = tls_receiver.requests
    assert request.body == BODY and request.headers["host"] == f"localhost:{tls_receiver.port}"


def test_https_refuses_a_certificate_for_another_name(
    tls_receiver: Receiver, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    result = post(
        f"https://hooks.example.com:{tls_receiver.port}/in",
        require_https=True,
        resolver=StubResolver("127.0.0.1"),
        ssl_context=tls[1],
    )
    assert result.status_code is None
    assert result.error is not None
    assert result.error.startswith("The endpoint's TLS certificate could not be verified")
    assert "hooks.example.com" in result.error
    assert tls_receiver.requests == []


def test_https_trusts_only_the_systems_authorities_by_default(tls_receiver: Receiver) -> None:
    result = post(
        f"https://localhost:{tls_receiver.port}/in",
        require_https=True,
        resolver=StubResolver("127.0.0.1"),
    )
    assert result.error is not None and "self-signed" in result.error
    assert tls_receiver.requests == []
