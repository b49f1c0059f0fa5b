"""The OpenAI-shaped chat request used everywhere in taskroute.

A `ChatRequest` is built from a JSON body with `ChatRequest.from_dict`, which validates the fields
taskroute reads and keeps every other field untouched in `extra`, so it reaches the provider as
the caller sent it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from taskroute.exceptions import InvalidRequest

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class Message(msgspec.Struct, frozen=True, omit_defaults=True):
    role: Role
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    thinking_blocks: list[dict[str, Any]] | None = None  # an Anthropic answer's, sent back

    @property
    def text(self) -> str:
        """The message's text: a string content, or the text parts of a content list joined."""
        content = self.content
        if content is None:
            return ""
        if isinstance(content, str):
            return content
        return "\n".join(
            part["text"] for part in content
            if part.get("type") == "text" and isinstance(part.get("text"), str)
        )


class ChatRequest(msgspec.Struct, frozen=True, omit_defaults=True):
    """A chat-completions request; fields beyond these ride along in `extra`."""

    messages: list[Message]
    model: str = "auto"
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    stream: bool = False
    user: str | None = None
    metadata: dict[str, str] | None = None
    extra: dict[str, Any] = msgspec.field(default_factory=dict)
    # Client headers meant for an upstream (`anthropic-beta`), set by the gateway, never read
    # from the body nor sent in it: `taskroute.providers.vendor_fields` says who gets which.
    upstream_headers: dict[str, str] = msgspec.field(default_factory=dict)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChatRequest:
        """Validate a request body; unknown fields are kept in `extra`."""
        if not isinstance(data, Mapping):
            raise InvalidRequest("the request body must be a JSON object")
        known: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if key in _FIELDS:
                known[key] = value
            elif key == "max_completion_tokens" and "max_tokens" not in data:
                known["max_tokens"] = value
            else:
                extra[key] = value
        metadata = known.get("metadata")
        if isinstance(metadata, dict):
            # OpenAI's metadata is a string map; numbers and booleans are accepted as their text.
            known["metadata"] = {
                k: _scalar_text(v) if isinstance(v, int | float | bool) else v
                for k, v in metadata.items()
            }
        if "messages" not in known:
            raise InvalidRequest("'messages' is required", param="messages")
        try:
            request = msgspec.convert(known, cls, strict=True)
        except msgspec.ValidationError as exc:
            raise InvalidRequest(_describe(exc), param=_param(exc)) from None
        if not request.messages:
            raise InvalidRequest("'messages' must hold at least one message", param="messages")
        if extra:
            request = msgspec.structs.replace(request, extra=extra)
        _check_response_format(request.response_format)
        _check_counts(request, "max_tokens" if "max_tokens" in data else "max_completion_tokens")
        _check_stop(request)
        return request

    @classmethod
    def from_json(cls, body: bytes | str) -> ChatRequest:
        try:
            data = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_prompt(cls, prompt: str, *, system: str | None = None, **fields: Any) -> ChatRequest:
        """A one-turn request, for the CLI and quick library use."""
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        return cls.from_dict({"messages": messages, **fields})

    def with_upstream_headers(self, headers: dict[str, str]) -> ChatRequest:
        """The request carrying client headers meant for an upstream (see `upstream_headers`)."""
        return msgspec.structs.replace(self, upstream_headers=headers) if headers else self

    def to_dict(self) -> dict[str, Any]:
        """The body to send on: the validated fields plus every pass-through field."""
        body: dict[str, Any] = msgspec.to_builtins(self)
        body.pop("extra", None)
        body.pop("upstream_headers", None)
        body.update(self.extra)
        return body

    # -- what routing reads -------------------------------------------------------------------

    @property
    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text
        return ""

    @property
    def system_text(self) -> str:
        return "\n".join(m.text for m in self.messages if m.role in ("system", "developer"))

    @property
    def all_text(self) -> str:
        return "\n".join(m.text for m in self.messages)

    def meta(self, key: str) -> str | None:
        return self.metadata.get(key) if self.metadata else None

    @property
    def end_user(self) -> str | None:
        """The person the request is for: OpenAI's `user`, else `metadata.user_id` (what
        budgets, the log and Anthropic's `metadata.user_id` are keyed by)."""
        return self.user or self.meta("user_id")

    @property
    def format_kind(self) -> str:
        """'text', 'json_object', 'json_schema' or 'strict_schema'."""
        fmt = self.response_format
        if not fmt:
            return "text"
        kind = fmt.get("type", "text")
        if kind == "json_schema":
            spec = fmt.get("json_schema") or {}
            return "strict_schema" if spec.get("strict") else "json_schema"
        return str(kind)

    @property
    def json_schema(self) -> dict[str, Any] | None:
        fmt = self.response_format
        if fmt and fmt.get("type") == "json_schema":
            schema = (fmt.get("json_schema") or {}).get("schema")
            return schema if isinstance(schema, dict) else None
        return None


_FIELDS = frozenset(
    f for f in ChatRequest.__struct_fields__ if f not in ("extra", "upstream_headers"))
_FORMAT_TYPES = frozenset({"text", "json_object", "json_schema"})


def _check_response_format(fmt: dict[str, Any] | None) -> None:
    if fmt is None:
        return
    kind = fmt.get("type")
    if kind not in _FORMAT_TYPES:
        raise InvalidRequest(
            f"response_format.type must be one of text, json_object, json_schema; got {kind!r}",
            param="response_format.type",
        )
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name", ""), str):
            raise InvalidRequest(
                "response_format.json_schema must be an object with a 'name' and a 'schema'",
                param="response_format.json_schema",
            )
        if "schema" in spec and not isinstance(spec["schema"], dict):
            raise InvalidRequest(
                "response_format.json_schema.schema must be an object",
                param="response_format.json_schema.schema",
            )


# The most output tokens a request may ask for: above every model's output limit, far below
# what would overflow a provider's integer.
MAX_TOKENS_LIMIT = 1_000_000


def _check_counts(request: ChatRequest, max_tokens_name: str) -> None:
    """`max_tokens` from 1 to `MAX_TOKENS_LIMIT` (0 or less is no answer at all, not a reason
    to route); `n` only 1: the gates judge one answer, and one is what taskroute returns."""
    limit = request.max_tokens
    if limit is not None and not 1 <= limit <= MAX_TOKENS_LIMIT:
        raise InvalidRequest(
            f"'{max_tokens_name}' must be from 1 to {MAX_TOKENS_LIMIT:,}; got {limit}",
            param=max_tokens_name,
        )
    n = request.extra.get("n")
    if n is not None and (n != 1 or isinstance(n, bool)):
        raise InvalidRequest(
            f"'n' must be 1 (taskroute returns one answer, judged by its gates); got {n!r}",
            param="n",
        )


def _check_stop(request: ChatRequest) -> None:
    """`stop` (or Anthropic's `stop_sequences`): a string or a list of strings, which every
    provider's encoder then takes as it is."""
    for name in ("stop", "stop_sequences"):
        stop = request.extra.get(name)
        if stop is None or isinstance(stop, str) or (
                isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
            continue
        raise InvalidRequest(f"'{name}' must be a string or a list of strings; got "
                             f"{type(stop).__name__}", param=name)


def _scalar_text(value: float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _describe(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    message, _, path = text.partition(" - at `$")
    if path:
        return f"{message} at '{_param_from_path(path.rstrip('`'))}'"
    return message


def _param(exc: msgspec.ValidationError) -> str | None:
    _, _, path = str(exc).partition(" - at `$")
    return _param_from_path(path.rstrip("`")) if path else None


def _param_from_path(path: str) -> str:
    return path.lstrip(".")
