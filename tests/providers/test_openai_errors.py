"""Every way an OpenAI-compatible upstream can fail, mapped to taskroute's error tree."""

from __future__ import annotations

import email.utils
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from taskroute.exceptions import (
    ConfigError,
    MalformedResponse,
    RateLimited,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamStatus,
    UpstreamTimeout,
)
from taskroute.policy.model import ProviderSpec
from taskroute.providers.base import Timeouts
from taskroute.providers.openai import OpenAIProvider
from taskroute.providers.simulated import Behaviour, ModelProfile, SimulatedUpstream
from taskroute.request import ChatRequest

from .conftest import KEY, KEY_ENV

FAST = Timeouts(connect=2, first_token=5, total=10)
REQUEST = ChatRequest.from_prompt("hello there")


async def drain(provider: OpenAIProvider, timeouts: Timeouts = FAST) -> None:
    async for _ in provider.stream(REQUEST, model="m", timeouts=timeouts):
        pass


@pytest.mark.parametrize("status", [400, 401, 403, 404, 500, 502, 503])
async def test_maps_error_status_with_the_upstream_message(
    openai: OpenAIProvider, upstream: SimulatedUpstream, status: int,
) -> None:
    upstream.fail("m", status)
    with pytest.raises(UpstreamStatus) as caught:
        await openai.complete(REQUEST, model="m", timeouts=FAST)
    assert caught.value.status == status
    assert f"simulated failure {status}" in str(caught.value)
    assert caught.value.model == "m"
    assert not isinstance(caught.value, RateLimited)


async def test_maps_error_status_when_streaming(
    openai: OpenAIProvider, upstream: SimulatedUpstream,
) -> None:
    upstream.fail("m", 503)
    with pytest.raises(UpstreamStatus) as caught:
        await drain(openai)
    assert caught.value.status == 503


@pytest.mark.parametrize(("behaviour", "expected"), [
    (Behaviour(status=429, retry_after="7"), 7.0),
    (Behaviour(status=429, retry_after="0.5"), 0.5),
    (Behaviour(status=429, retry_after_ms=1500), 1.5),
    (Behaviour(status=429, retry_after="9", retry_after_ms=250), 0.25),
])
async def test_429_is_rate_limited_with_retry_after(
    openai: OpenAIProvider, upstream: SimulatedUpstream, behaviour: Behaviour, expected: float,
) -> None:
    upstream.behave("m", behaviour)
    with pytest.raises(RateLimited) as caught:
        await openai.complete(REQUEST, model="m", timeouts=FAST)
    assert caught.value.retry_after == pytest.approx(expected)
    assert caught.value.status == 429


async def test_429_retry_after_as_an_http_date(
    openai: OpenAIProvider, upstream: SimulatedUpstream,
) -> None:
    upstream.fail("m", 429, retry_after=email.utils.formatdate(time.time() + 30, usegmt=True))
    with pytest.raises(RateLimited) as caught:
        await openai.complete(REQUEST, model="m", timeouts=FAST)
    assert caught.value.retry_after is not None
    assert 25 <= caught.value.retry_after <= 31


async def test_429_without_retry_after(openai: OpenAIProvider, upstream: SimulatedUpstream) -> None:
    upstream.fail("m", 429)
    with pytest.raises(RateLimited) as caught:
        await openai.complete(REQUEST, model="m", timeouts=FAST)
    assert caught.value.retry_after is None


async def test_first_token_timeout_waiting_for_headers(
    openai: OpenAIProvider, upstream: SimulatedUpstream,
) -> None:
    upstream.answer_slowly("m", 2.0)
    timeouts = Timeouts(connect=1, first_token=0.1, total=5)
    with pytest.raises(UpstreamTimeout) as caught:
        await openai.complete(REQUEST, model="m", timeouts=timeouts)
    assert caught.value.phase == "first_token"
    with pytest.raises(UpstreamTimeout) as streamed:
        await drain(openai, timeouts)
    assert streamed.value.phase == "first_token"


async def test_total_timeout_while_tokens_trickle_in() -> None:
    async with SimulatedUpstream({"m": ModelProfile(tokens_per_s=5)}) as upstream:
        provider = OpenAIProvider(ProviderSpec("sim", "openai", upstream.base_url))
        try:
            with pytest.raises(UpstreamTimeout) as caught:
                await drain(provider, Timeouts(connect=1, first_token=1, total=0.3))
        finally:
            await provider.aclose()
    assert caught.value.phase == "total"


@pytest.fixture
def unaccepting_port() -> Iterator[int]:
    """A port on 127.0.0.1 whose listen queue is full, so new connects hang (SYNs dropped)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(8):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for filler in fillers:
        filler.close()
    server.close()


async def test_connect_timeout(unaccepting_port: int) -> None:
    spec = ProviderSpec("sim", "openai", f"http://127.0.0.1:{unaccepting_port}/v1")
    provider = OpenAIProvider(spec)
    try:
        with pytest.raises(UpstreamTimeout) as caught:
            await provider.complete(REQUEST, model="m",
                                    timeouts=Timeouts(connect=0.2, first_token=3, total=5))
    finally:
        await provider.aclose()
    assert caught.value.phase == "connect"


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_connection_refused(closed_port: int) -> None:
    provider = OpenAIProvider(ProviderSpec("sim", "openai", f"http://127.0.0.1:{closed_port}/v1"))
    try:
        with pytest.raises(UpstreamConnectionError, match="cannot connect"):
            await provider.complete(REQUEST, model="m", timeouts=FAST)
    finally:
        await provider.aclose()


async def test_connection_dropped_mid_stream(
    openai: OpenAIProvider, upstream: SimulatedUpstream,
) -> None:
    upstream.drop_connection("m", after=2)
    received = []
    with pytest.raises(UpstreamConnectionError):
        async for chunk in openai.stream(REQUEST, model="m", timeouts=FAST):
            received.append(chunk)
    assert len(received) == 2


async def test_connection_dropped_mid_body(
    openai: OpenAIProvider, upstream: SimulatedUpstream,
) -> None:
    upstream.drop_connection("m")
    with pytest.raises(UpstreamConnectionError, match="dropped"):
        await openai.complete(REQUEST, model="m", timeouts=FAST)


async def test_malformed_sse(openai: OpenAIProvider, upstream: SimulatedUpstream) -> None:
    upstream.send_malformed_sse("m")
    with pytest.raises(MalformedResponse):
        await drain(openai)


async def test_malformed_body(openai: OpenAIProvider, upstream: SimulatedUpstream) -> None:
    upstream.send_malformed_body("m")
    with pytest.raises(MalformedResponse):
        await openai.complete(REQUEST, model="m", timeouts=FAST)


async def test_the_upstream_recovers_after_n_failures(
    openai: OpenAIProvider, upstream: SimulatedUpstream,
) -> None:
    upstream.fail("m", 500, times=1)
    with pytest.raises(UpstreamStatus):
        await openai.complete(REQUEST, model="m", timeouts=FAST)
    assert (await openai.complete(REQUEST, model="m", timeouts=FAST)).text


async def test_missing_key_names_the_variable(upstream: SimulatedUpstream) -> None:
    spec = ProviderSpec("vendor", "openai", upstream.base_url, api_key_env="VENDOR_API_KEY")
    provider = OpenAIProvider(spec, env={})
    with pytest.raises(ConfigError, match="VENDOR_API_KEY"):
        await provider.complete(REQUEST, model="m", timeouts=FAST)
    with pytest.raises(ConfigError, match="VENDOR_API_KEY"):
        await drain(provider)
    await provider.aclose()


async def test_simulated_providers_need_no_key() -> None:
    async with SimulatedUpstream() as upstream:
        spec = ProviderSpec("sim", "openai", upstream.base_url, api_key_env="UNSET_KEY",
                            simulated=True)
        provider = OpenAIProvider(spec, env={})
        assert (await provider.complete(REQUEST, model="m", timeouts=FAST)).text
        await provider.aclose()


async def test_a_wrong_key_is_an_upstream_401_that_never_shows_the_key(
    upstream: SimulatedUpstream,
) -> None:
    wrong = KEY + "-wrong"
    spec = ProviderSpec("sim", "openai", upstream.base_url, api_key_env=KEY_ENV)
    provider = OpenAIProvider(spec, env={KEY_ENV: wrong})
    with pytest.raises(UpstreamStatus) as caught:
        await provider.complete(REQUEST, model="m", timeouts=FAST)
    await provider.aclose()
    assert caught.value.status == 401
    for text in (str(caught.value), repr(caught.value), repr(provider), repr(caught.value.body)):
        assert wrong not in text
        assert KEY not in text


async def test_the_key_never_appears_in_errors_or_reprs(
    openai: OpenAIProvider, upstream: SimulatedUpstream,
) -> None:
    failures: list[UpstreamError] = []
    setups: list[Callable[[], None]] = [
        lambda: upstream.fail("m", 500),
        lambda: upstream.send_malformed_body("m"),
        lambda: upstream.drop_connection("m"),
    ]
    for setup in setups:
        setup()
        with pytest.raises(UpstreamError) as caught:
            await openai.complete(REQUEST, model="m", timeouts=FAST)
        failures.append(caught.value)
    for error in failures:
        assert KEY not in str(error) and KEY not in repr(error)
        assert error.__cause__ is None  # aiohttp errors can hold the request headers
    assert KEY not in repr(openai)
    assert KEY not in repr(vars(openai))

