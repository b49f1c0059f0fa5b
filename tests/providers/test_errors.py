"""The error boundary: every aiohttp exception that can surface maps to an `UpstreamError`."""

from __future__ import annotations

import email.utils
import inspect
import ssl

import aiohttp
import msgspec
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from taskroute.exceptions import (
    MalformedResponse,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamStatus,
    UpstreamTimeout,
)
from taskroute.providers.errors import map_exception, retry_after, status_error

# Every aiohttp exception class and what it must become. A new aiohttp class fails the test
# below until someone decides here what it means.
EXPECTED: dict[str, type[UpstreamError]] = {
    "ClientError": UpstreamConnectionError,
    "ClientConnectionError": UpstreamConnectionError,
    "ClientConnectionResetError": UpstreamConnectionError,
    "ClientOSError": UpstreamConnectionError,
    "ClientConnectorError": UpstreamConnectionError,
    "ClientConnectorDNSError": UpstreamConnectionError,
    "ClientProxyConnectionError": UpstreamConnectionError,
    "ClientSSLError": UpstreamConnectionError,
    "ClientConnectorSSLError": UpstreamConnectionError,
    "ClientConnectorCertificateError": UpstreamConnectionError,
    "ServerConnectionError": UpstreamConnectionError,
    "ServerDisconnectedError": UpstreamConnectionError,
    "ServerFingerprintMismatch": UpstreamConnectionError,
    "ServerTimeoutError": UpstreamTimeout,
    "SocketTimeoutError": UpstreamTimeout,
    "ConnectionTimeoutError": UpstreamTimeout,
    "ClientPayloadError": UpstreamConnectionError,
    "ClientResponseError": UpstreamStatus,
    "ContentTypeError": UpstreamStatus,
    "ClientHttpProxyError": UpstreamStatus,
    "TooManyRedirects": UpstreamStatus,
    "WSServerHandshakeError": UpstreamStatus,
    "InvalidURL": UpstreamConnectionError,
    "InvalidUrlClientError": UpstreamConnectionError,
    "InvalidUrlRedirectClientError": UpstreamConnectionError,
    "NonHttpUrlClientError": UpstreamConnectionError,
    "NonHttpUrlRedirectClientError": UpstreamConnectionError,
    "RedirectClientError": UpstreamConnectionError,
    "UploadAbortedError": UpstreamConnectionError,
}


def _aiohttp_client_errors() -> list[type[aiohttp.ClientError]]:
    return sorted(
        (c for _, c in inspect.getmembers(aiohttp, inspect.isclass)
         if issubclass(c, aiohttp.ClientError)),
        key=lambda c: c.__name__,
    )


def _instance(cls: type[aiohttp.ClientError]) -> aiohttp.ClientError:
    """A realistic instance of each aiohttp exception class."""
    from aiohttp.client_reqrep import ConnectionKey, RequestInfo

    url = URL("http://127.0.0.1:1/v1/chat/completions")
    headers = CIMultiDictProxy(CIMultiDict({"Authorization": "Bearer sk-secret"}))
    key = ConnectionKey("127.0.0.1", 1, False, True, None, None, None)
    if issubclass(cls, aiohttp.ClientConnectorCertificateError):
        return cls(key, ssl.SSLCertVerificationError("bad cert"))
    if issubclass(cls, aiohttp.ClientConnectorError):
        return cls(key, ConnectionRefusedError(111, "refused"))
    if issubclass(cls, aiohttp.ClientResponseError):
        info = RequestInfo(url, "POST", headers, url)
        return cls(info, (), status=500, message="boom", headers=None)
    if issubclass(cls, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return cls(url)
    if issubclass(cls, aiohttp.ServerFingerprintMismatch):
        return cls(b"a", b"b", "127.0.0.1", 1)
    return cls("boom")


def test_every_aiohttp_client_error_is_mapped_deliberately() -> None:
    names = {c.__name__ for c in _aiohttp_client_errors()}
    assert names - EXPECTED.keys() == set(), "decide in EXPECTED what these aiohttp errors mean"


@pytest.mark.parametrize("cls", _aiohttp_client_errors(), ids=lambda c: c.__name__)
def test_maps_each_aiohttp_error(cls: type[aiohttp.ClientError]) -> None:
    error = map_exception(_instance(cls), provider="p", model="m")
    assert isinstance(error, EXPECTED[cls.__name__])
    assert error.model == "m"
    assert "sk-secret" not in str(error)


@pytest.mark.parametrize(("exc", "expected"), [
    (TimeoutError(), UpstreamTimeout),
    (ConnectionResetError(104, "reset"), UpstreamConnectionError),
    (OSError("broken pipe"), UpstreamConnectionError),
    (msgspec.DecodeError("bad json"), MalformedResponse),
    (msgspec.ValidationError("bad shape"), MalformedResponse),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"), MalformedResponse),
    (ValueError("Line is too long"), MalformedResponse),
    (KeyError("content"), MalformedResponse),
    (TypeError("not a list"), MalformedResponse),
])
def test_maps_timeouts_sockets_and_parse_failures(
    exc: BaseException, expected: type[UpstreamError],
) -> None:
    assert isinstance(map_exception(exc, provider="p", model="m"), expected)


def test_a_timeout_carries_the_phase_that_was_running() -> None:
    error = map_exception(TimeoutError(), provider="p", model="m", phase="first_token")
    assert isinstance(error, UpstreamTimeout)
    assert error.phase == "first_token"
    connect = map_exception(_instance(aiohttp.ConnectionTimeoutError), provider="p", model="m",
                            phase="first_token")
    assert isinstance(connect, UpstreamTimeout)
    assert connect.phase == "connect"


def test_retry_after_forms() -> None:
    assert retry_after({"Retry-After": "12"}) == 12
    assert retry_after({"retry-after-ms": "250", "Retry-After": "12"}) == 0.25
    assert retry_after({"Retry-After": "soon"}) is None
    assert retry_after({}) is None
    date = email.utils.formatdate(1_000_060, usegmt=True)
    assert retry_after({"Retry-After": date}, now=1_000_000) == 60
    assert retry_after({"Retry-After": "-3"}) == 0


def test_an_upstream_that_echoes_the_key_has_it_redacted() -> None:
    body = b'{"error": {"message": "Incorrect API key provided: sk-live-abc"}}'
    error = status_error(401, {}, body, provider="p", model="m",
                         message_of=lambda b: b["error"]["message"],
                         redact=lambda t: t.replace("sk-live-abc", "***"))
    assert "sk-live-abc" not in str(error)
    assert "Incorrect API key provided: ***" in str(error)
