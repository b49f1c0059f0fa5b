"""AWS Bedrock's Converse API, behind the OpenAI-shaped Protocol.

`POST {base_url}/model/{modelId}/converse`, and `/converse-stream` for streams, whose answer
is AWS's binary event stream (`eventstream`), not SSE. Each request is signed with SigV4
(`sigv4`, service `bedrock`) using credentials and a region from the standard AWS sources
(`aws_credentials`), or carries a Bedrock API key (`Authorization: Bearer`) when the policy
names one with `api key env` (AWS's variable for it is `AWS_BEARER_TOKEN_BEDROCK`).

    providers:
      bedrock:
        api: bedrock
        base url: https://bedrock-runtime.us-east-1.amazonaws.com
        options: {profile: prod, region: us-east-1}     # both optional
    models:
      bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0: {tier: balanced, ...}

The model id is the Bedrock model or inference profile id (or ARN), URL-encoded in the path.
Request conversion is `bedrock_format`. No AWS SDK is needed; `taskroute[bedrock]` adds
botocore for its wider credential chain (SSO, assume-role, instance roles).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
import msgspec

from taskroute.exceptions import (
    RateLimited,
    UpstreamConnectionError,
    UpstreamStatus,
)
from taskroute.policy.model import ProviderSpec
from taskroute.providers.aws_credentials import AwsConfig, resolve
from taskroute.providers.base import Timeouts
from taskroute.providers.bedrock_format import (
    OpenAIChunks,
    from_converse_response,
    to_converse_request,
)
from taskroute.providers.errors import Clock, status_error, upstream_errors
from taskroute.providers.eventstream import Decoder
from taskroute.providers.http import HttpClient, StatusError
from taskroute.providers.sigv4 import sign
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse, StreamChunk

SERVICE = "bedrock"
OPTIONS = ("profile", "region")
STREAM_TYPE = "application/vnd.amazon.eventstream"
# ConverseStream's in-stream exceptions, by the status the same error has as a response.
STREAM_ERRORS = {"throttlingException": 429, "serviceUnavailableException": 503,
                 "internalServerException": 500, "modelStreamErrorException": 424,
                 "validationException": 400}
_decode = msgspec.json.Decoder(dict[str, Any])


class BedrockProvider:
    """A `Provider` for Bedrock's Converse and ConverseStream."""

    def __init__(
        self, spec: ProviderSpec, *, env: Mapping[str, str] | None = None,
        profile: str | None = None, region: str | None = None,
    ) -> None:
        self.name = spec.name
        self._http = HttpClient(spec, env=env)
        self._env = env
        self._profile, self._region = profile, region
        self._aws: AwsConfig | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"BedrockProvider(name={self.name!r}, base_url={self._http.base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    @staticmethod
    def path(model: str, *, stream: bool) -> str:
        return f"/model/{quote(model, safe='')}/{'converse-stream' if stream else 'converse'}"

    async def complete(
        self, request: ChatRequest, *, model: str, timeouts: Timeouts
    ) -> ChatResponse:
        clock = Clock(timeouts)
        with upstream_errors(self.name, model, clock, self._http.redact):
            path, body = self.path(model, stream=False), msgspec.json.encode(
                to_converse_request(request))
            headers = await self._headers(path, body, "application/json")
            _, raw = await self._http.exchange(path, body, headers, clock,
                                               self._status_error(model))
            return from_converse_response(_decode.decode(raw), model)

    async def stream(
        self, request: ChatRequest, *, model: str, timeouts: Timeouts
    ) -> AsyncIterator[StreamChunk]:
        clock = Clock(timeouts)
        with upstream_errors(self.name, model, clock, self._http.redact):
            path, body = self.path(model, stream=True), msgspec.json.encode(
                to_converse_request(request))
            headers = await self._headers(path, body, STREAM_TYPE)
            response = await self._http.open_stream(path, body, headers, clock,
                                                    self._status_error(model), STREAM_TYPE)
            complete = False
            try:
                translator = OpenAIChunks(model)
                async for name, data in _events(response, clock):
                    for chunk in translator.feed(name, data):
                        yield StreamChunk(chunk)
                    if translator.done:
                        complete = True
                        return
                if not translator.stopped:
                    raise UpstreamConnectionError("the stream ended before messageStop")
                complete = True
            finally:
                # read to its end: back to the pool; stopped early: hung up, the upstream stops
                self._http.end_stream(response, complete=complete)

    async def _headers(self, path: str, body: bytes, accept: str) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": accept,
                   **self._http.headers()}
        key = self._http.key()
        if key is not None:           # a Bedrock API key: no signing
            headers["Authorization"] = f"Bearer {key.reveal()}"
            return headers
        aws = await self._config()
        return sign("POST", self._http.url(path), headers, body, credentials=aws.credentials,
                    region=aws.region, service=SERVICE)

    async def _config(self) -> AwsConfig:
        """Credentials and region, read once (in a thread: files, maybe botocore's chain)."""
        if self._aws is None:
            async with self._lock:
                if self._aws is None:
                    self._aws = await asyncio.to_thread(
                        resolve, self._env, profile=self._profile, region=self._region,
                        base_url=self._http.base_url,
                        # botocore reads the process environment only: not for a given one
                        use_botocore=self._env is None)
        return self._aws

    def _status_error(self, model: str) -> StatusError:
        def error(response: aiohttp.ClientResponse, raw: bytes) -> UpstreamStatus:
            kind = response.headers.get("x-amzn-ErrorType", "").partition(":")[0]
            status = response.status
            if kind == "ThrottlingException" and status != 429:
                status = 429   # throttling is a rate limit whatever status carried it
            return status_error(status, response.headers, raw, provider=self.name, model=model,
                                message_of=lambda body: error_message(body, kind),
                                redact=self._http.redact)
        return error


async def _events(
    response: aiohttp.ClientResponse, clock: Clock
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event type, payload) of each message; an exception message raises."""
    decoder = Decoder()
    while True:
        async with asyncio.timeout_at(clock.deadline()):
            data = await response.content.readany()
        if not data:
            if decoder.pending:
                raise UpstreamConnectionError("the event stream ended mid-message")
            return
        for message in decoder.feed(data):
            clock.started()
            payload = _decode.decode(message.payload) if message.payload else {}
            if message.kind == "exception":
                status = STREAM_ERRORS.get(message.name, 500)
                text = f"{message.name} in the stream: {payload.get('message', '')}"
                if status == 429:
                    raise RateLimited(text, body=payload)
                raise UpstreamStatus(text, status=status, body=payload)
            yield message.name, payload


def build(spec: ProviderSpec, env: Mapping[str, str] | None) -> BedrockProvider:
    """The `bedrock` provider kind, registered in `taskroute.plugins.PROVIDERS`."""
    unknown = set(spec.options) - set(OPTIONS)
    if unknown:
        raise ValueError("the bedrock provider kind takes only 'profile' and 'region', got "
                         f"{', '.join(sorted(k.replace('_', ' ') for k in unknown))}")
    profile, region = spec.options.get("profile"), spec.options.get("region")
    return BedrockProvider(spec, env=env, profile=None if profile is None else str(profile),
                           region=None if region is None else str(region))


def error_message(body: Any, kind: str = "") -> str | None:
    """AWS's `{"message": ...}` (or `Message`), with the `x-amzn-ErrorType` header's name."""
    if isinstance(body, dict):
        message = body.get("message") or body.get("Message")
        if message:
            return f"{kind}: {message}" if kind else str(message)
    return None
