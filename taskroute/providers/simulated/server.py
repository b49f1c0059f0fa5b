"""`SimulatedUpstream`: a stand-in LLM provider on 127.0.0.1, speaking OpenAI and Anthropic.

SIMULATED — no real model is called. It serves `POST /v1/chat/completions` (OpenAI),
`POST /v1/messages` (Anthropic), Azure OpenAI's deployment path (`POST /openai/deployments/
{deployment}/chat/completions?api-version=...`, the deployment being the model), Gemini's
`POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`, Bedrock's
`POST /model/{model}/converse` and `/converse-stream` (checking SigV4 signatures when given
`aws_credentials`) and `GET /v1/models`, answers deterministically from the prompt, and can
be told per model to misbehave (see `Behaviour`). It counts requests, completed answers and
cancellations (the client went away before the answer was finished) per model, and caches
prompts (`cache.py`).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import replace
from types import ModuleType, TracebackType
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.client_exceptions import ClientConnectionResetError

import taskroute.providers.simulated.control as control
import taskroute.providers.simulated.wire_anthropic as wire_anthropic
import taskroute.providers.simulated.wire_bedrock as wire_bedrock
import taskroute.providers.simulated.wire_embeddings as wire_embeddings
import taskroute.providers.simulated.wire_gemini as wire_gemini
import taskroute.providers.simulated.wire_openai as wire_openai
from taskroute.policy.model import ProviderSpec
from taskroute.providers.simulated.answers import Answer, Ask, plan
from taskroute.providers.simulated.behaviours import BehaviourBook
from taskroute.providers.simulated.cache import PromptCache
from taskroute.providers.simulated.profiles import INSTANT, Behaviour, ModelProfile
from taskroute.response import new_id

_MALFORMED_EVENT = b"data: {this is not json\n\n"
_API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")
_Gone = (ConnectionResetError, ClientConnectionResetError)


class SimulatedUpstream(BehaviourBook):
    """`async with SimulatedUpstream(profiles) as up:` serves on the running loop;
    `with SimulatedUpstream(profiles) as up:` serves from a background thread (sync code, benches).
    """

    def __init__(
        self,
        profiles: Mapping[str, ModelProfile] | None = None,
        *,
        default: ModelProfile = INSTANT,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        aws_credentials: tuple[str, str] | None = None,
        control: bool = False,
    ) -> None:
        super().__init__()
        self.control = control                   # serve /_sim/* (control.py) for other processes
        self.profiles: dict[str, ModelProfile] = dict(profiles or {})
        self.default = default
        self.host, self.port = host, port
        self.api_key = api_key                   # when set, requests must carry it
        self.aws_credentials = aws_credentials   # (key id, secret): Bedrock calls must be signed
        self.requests: Counter[str] = Counter()
        # each model's callers' connections (client ports): how well a client pools them
        self.connections: defaultdict[str, set[int | None]] = defaultdict(set)
        self.completed: Counter[str] = Counter()
        self.cancelled: Counter[str] = Counter()
        self.last_body: dict[str, dict[str, Any]] = {}
        self.last_headers: dict[str, dict[str, str]] = {}
        self.prompt_cache = PromptCache()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- addresses ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (ends in /v1)."""
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The Anthropic-style base URL (the adapter appends /v1/messages)."""
        return self.url

    def provider_spec(self, name: str = "sim", api: str = "openai", **fields: Any
                      ) -> ProviderSpec:
        """A spec pointing at this upstream; `fields` (options, api_key_env, ...) go in it."""
        base = self.base_url if api in ("openai", "azure") else self.url
        return ProviderSpec(name=name, api=api, base_url=base, simulated=True, **fields)

    def set_profile(self, model: str, profile: ModelProfile) -> None:
        self.profiles[model] = profile

    def reset(self) -> None:
        """Forget behaviours and counters (profiles stay)."""
        super().reset()
        for counter in (self.requests, self.completed, self.cancelled):
            counter.clear()
        self.connections.clear()
        self.last_body.clear()
        self.last_headers.clear()
        self.prompt_cache.clear()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._azure)
        app.router.add_post("/{version:v1(beta)?}/models/{target}", self._gemini)
        app.router.add_post("/model/{model}/{method:converse(-stream)?}", self._bedrock)
        app.router.add_get("/v1/models", self._models)
        if self.control:
            control.add_routes(app, self, self.profiles)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SimulatedUpstream:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __enter__(self) -> SimulatedUpstream:
        loop = asyncio.new_event_loop()
        started: list[BaseException | None] = []
        ready = threading.Event()

        def run() -> None:
            try:
                loop.run_until_complete(self.start())
                started.append(None)
            except BaseException as exc:  # reported to the starting thread below
                started.append(exc)
            ready.set()
            if started[0] is None:
                loop.run_forever()
                loop.run_until_complete(self.stop())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="simulated-upstream", daemon=True)
        self._thread.start()
        ready.wait(10)
        if not started or started[0] is not None:
            raise RuntimeError("the simulated upstream did not start") from (
                started[0] if started else None)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = self._thread = None

    # -- handlers -------------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "taskroute-simulated"}
                for m in sorted(self.profiles)]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, wire_openai)

    async def _azure(self, request: web.Request) -> web.StreamResponse:
        version = request.query.get("api-version", "")
        if not _API_VERSION.fullmatch(version):
            return _error(wire_openai, 404 if not version else 400,
                          f"missing or unsupported api-version {version!r}")
        return await self._serve(request, wire_openai, model=request.match_info["deployment"])

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        if "anthropic-version" not in request.headers:
            return _error(wire_anthropic, 400, "anthropic-version: header is required")
        return await self._serve(request, wire_anthropic)

    async def _gemini(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["target"].partition(":")
        if method not in ("generateContent", "streamGenerateContent"):
            return _error(wire_gemini, 404, f"method {method!r} is not served here")
        stream = method == "streamGenerateContent"
        if stream and request.query.get("alt") != "sse":
            return _error(wire_gemini, 400, "this stand-in streams only with alt=sse")
        return await self._serve(request, wire_gemini, model=model, stream=stream)

    async def _bedrock(self, request: web.Request) -> web.StreamResponse:
        if self.aws_credentials is not None:
            problem = wire_bedrock.check_signature(request, await request.read(),
                                                   *self.aws_credentials)
            if problem:
                return _error(wire_bedrock, 403, problem)
        return await self._serve(request, wire_bedrock, model=request.match_info["model"],
                                 stream=request.match_info["method"] == "converse-stream")

    async def _embeddings(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(wire_openai, 401, "invalid bearer token")
        try:
            data = msgspec.json.decode(await request.read())
            texts = wire_embeddings.inputs(data)
        except (msgspec.DecodeError, wire_openai.BadRequest) as exc:
            return _error(wire_openai, 400, f"invalid request: {exc}")
        model = data["model"]
        self.requests[model] += 1
        self.last_body[model] = data
        self.last_headers[model] = dict(request.headers)
        behaviour = self.next_behaviour(model)
        if behaviour.delay_s:
            await asyncio.sleep(behaviour.delay_s)
        if behaviour.status is not None:
            return _error(wire_openai, behaviour.status, f"simulated failure {behaviour.status}",
                          _retry_headers(behaviour))
        try:
            answer = wire_embeddings.body(data, texts)
        except wire_openai.BadRequest as exc:
            return _error(wire_openai, 400, f"invalid request: {exc}")
        self.completed[model] += 1
        return web.Response(body=msgspec.json.encode(answer), content_type="application/json")

    def _authorized(self, request: web.Request) -> bool:
        if self.api_key is None:
            return True
        given = (request.headers.get("x-api-key") or request.headers.get("api-key")
                 or request.headers.get("x-goog-api-key")
                 or request.headers.get("Authorization", ""))
        return given in (self.api_key, f"Bearer {self.api_key}")

    async def _serve(
        self, request: web.Request, wire: ModuleType, model: str | None = None,
        stream: bool | None = None,
    ) -> web.StreamResponse:
        """`model`: the model or deployment named in the path (Azure, Gemini, Bedrock), which
        the body need not name; `stream`: whether the path asks for a stream (else the body's
        `stream` says)."""
        if not self._authorized(request):
            return _error(wire, 401, "invalid x-api-key, api-key or bearer token")
        try:
            data = msgspec.json.decode(await request.read())
            if model is not None and isinstance(data, dict):
                data["model"] = model
                if stream is not None:
                    data["stream"] = stream
            ask: Ask = wire.parse(data)
        except (msgspec.DecodeError, wire_openai.BadRequest, TypeError, KeyError, AttributeError,
                ValueError) as exc:
            return _error(wire, 400, f"invalid request: {exc}")
        model = ask.model
        self.requests[model] += 1
        self.last_body[model] = data
        self.last_headers[model] = dict(request.headers)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.connections[model].add(peer[1] if peer else None)
        behaviour = self.next_behaviour(model)
        profile = self.profiles.get(model, self.default)
        try:
            return await self._respond(request, wire, ask, data, profile, behaviour)
        except asyncio.CancelledError:
            self.cancelled[model] += 1
            raise

    async def _respond(
        self, request: web.Request, wire: ModuleType, ask: Ask, data: dict[str, Any],
        profile: ModelProfile, behaviour: Behaviour,
    ) -> web.StreamResponse:
        wait = profile.first_token_s + behaviour.delay_s
        if wait:
            await asyncio.sleep(wait)
        if behaviour.hang_up:
            _abort(request)
            return web.Response()  # never sent: the connection is gone
        if behaviour.status is not None:
            return _error(wire, behaviour.status, f"simulated failure {behaviour.status}",
                          _retry_headers(behaviour))
        if behaviour.malformed_body:
            return web.Response(body=b"<html>502 Bad Gateway</html>",
                                content_type="application/json")
        planned = plan(ask, profile, behaviour)
        window = profile.context_window
        if window is not None and planned.prompt_tokens + (ask.max_tokens or 0) > window:
            return web.Response(status=400, content_type="application/json",
                                body=msgspec.json.encode(wire.context_error(
                                    planned.prompt_tokens + (ask.max_tokens or 0), window)))
        answer = self._cached(wire, data, ask, planned, profile)
        token_delay = behaviour.token_delay_s
        if token_delay is None:
            token_delay = 1 / profile.tokens_per_s if profile.tokens_per_s else 0.0
        if data.get("stream"):
            options = data.get("stream_options") or {}
            return await self._stream(request, wire, ask, answer, behaviour, token_delay,
                                      bool(options.get("include_usage")))
        if token_delay:
            await asyncio.sleep(token_delay * len(answer.tokens))
        payload = msgspec.json.encode(wire.body(ask, answer, new_id("chatcmpl")))
        if behaviour.drop_after is not None:
            return await _drop_body(request, payload)
        if behaviour.stall_after is not None:
            return await self._stalled_body(request, ask.model, payload, behaviour.stall_s)
        self.completed[ask.model] += 1
        return web.Response(body=payload, content_type="application/json")

    def _cached(
        self, wire: ModuleType, data: dict[str, Any], ask: Ask, answer: Answer,
        profile: ModelProfile,
    ) -> Answer:
        """The answer with its prompt-cache reads and writes, and its reasoning tokens."""
        read, write = self.prompt_cache.use(ask.model, wire.cache_prefix(data),
                                            min_tokens=wire.CACHE_MIN_TOKENS)
        read = min(read, answer.prompt_tokens)
        write = min(write, answer.prompt_tokens - read) if wire.REPORTS_CACHE_WRITES else 0
        return replace(answer, cache_read_tokens=read, cache_write_tokens=write,
                       reasoning_tokens=profile.reasoning_tokens)

    async def _stream(
        self, request: web.Request, wire: ModuleType, ask: Ask, answer: Answer,
        behaviour: Behaviour, token_delay: float, include_usage: bool,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": getattr(wire, "STREAM_TYPE", "text/event-stream"),
                     "Cache-Control": "no-cache"})
        await response.prepare(request)
        frames = wire.frames(ask, answer, new_id("chatcmpl"), include_usage)
        try:
            for sent, (frame, paced) in enumerate(frames):
                if behaviour.drop_after is not None and sent >= behaviour.drop_after:
                    _abort(request)
                    return response
                if paced and token_delay:
                    await asyncio.sleep(token_delay)
                if sent == behaviour.stall_after:
                    await asyncio.sleep(behaviour.stall_s)
                await response.write(frame)
                if behaviour.malformed_sse:
                    await response.write(getattr(wire, "MALFORMED_EVENT", _MALFORMED_EVENT))
            if behaviour.end_delay_s:   # the last event out, the chunked body's end later
                await asyncio.sleep(behaviour.end_delay_s)
            await response.write_eof()
        except _Gone:
            self.cancelled[ask.model] += 1
            return response
        self.completed[ask.model] += 1
        return response


    async def _stalled_body(
        self, request: web.Request, model: str, payload: bytes, stall_s: float
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(payload)
        await response.prepare(request)
        half = len(payload) // 2
        try:
            await response.write(payload[:half])
            await asyncio.sleep(stall_s)
            await response.write(payload[half:])
            await response.write_eof()
        except _Gone:
            self.cancelled[model] += 1
            return response
        self.completed[model] += 1
        return response


def _error(
    wire: ModuleType, status: int, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    body = msgspec.json.encode(wire.error(status, message))
    if hasattr(wire, "error_headers"):   # Bedrock names the error in a header
        headers = {**(headers or {}), **wire.error_headers(status)}
    return web.Response(status=status, body=body, content_type="application/json",
                        headers=headers)


def _retry_headers(behaviour: Behaviour) -> dict[str, str]:
    headers = {}
    if behaviour.retry_after is not None:
        headers["Retry-After"] = behaviour.retry_after
    if behaviour.retry_after_ms is not None:
        headers["retry-after-ms"] = str(behaviour.retry_after_ms)
    return headers


async def _drop_body(request: web.Request, payload: bytes) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = len(payload)
    await response.prepare(request)
    await response.write(payload[: len(payload) // 2])
    _abort(request)
    return response


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()
