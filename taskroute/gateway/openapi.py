"""The gateway's OpenAPI 3 document, written by hand: what `/openapi.json` serves."""

from __future__ import annotations

import functools
from typing import Any

_MESSAGE = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"type": "string",
                 "enum": ["system", "developer", "user", "assistant", "tool", "function"]},
        "content": {"nullable": True, "oneOf": [
            {"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
        "name": {"type": "string"},
        "tool_calls": {"type": "array", "items": {"type": "object"}},
        "tool_call_id": {"type": "string"},
    },
}
_CHAT_REQUEST = {
    "type": "object",
    "required": ["messages"],
    "properties": {
        "model": {"type": "string", "description":
                  "auto or taskroute routes by the policy; taskroute/<class> names the task "
                  "class; a model id from the policy bypasses routing", "default": "auto"},
        "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
        "tools": {"type": "array", "items": {"type": "object"}},
        "tool_choice": {"oneOf": [{"type": "string"}, {"type": "object"}]},
        "response_format": {"type": "object", "properties": {
            "type": {"type": "string", "enum": ["text", "json_object", "json_schema"]}}},
        "max_tokens": {"type": "integer", "minimum": 1},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "stream": {"type": "boolean"},
        "user": {"type": "string"},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
_ANTHROPIC_REQUEST = {
    "type": "object",
    "required": ["model", "max_tokens", "messages"],
    "properties": {
        "model": {"type": "string"},
        "max_tokens": {"type": "integer", "minimum": 1},
        "system": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
        "messages": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["role", "content"], "properties": {
                "role": {"type": "string", "enum": ["user", "assistant"]},
                "content": {"oneOf": [{"type": "string"},
                                      {"type": "array", "items": {"type": "object"}}]}}}},
        "tools": {"type": "array", "items": {"type": "object"}},
        "tool_choice": {"type": "object"},
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
        "stream": {"type": "boolean"},
        "metadata": {"type": "object"},
    },
}
_RESPONSES_REQUEST = {
    "type": "object",
    "required": ["input"],
    "properties": {
        "model": _CHAT_REQUEST["properties"]["model"],  # type: ignore[index]
        "input": {"oneOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": {
            "type": "object", "description": "a message (role, content), a function_call "
            "(call_id, name, arguments) or a function_call_output (call_id, output)"}}]},
        "instructions": {"type": "string"},
        "tools": {"type": "array", "items": {"type": "object", "required": ["type", "name"],
                                             "properties": {
            "type": {"type": "string", "enum": ["function"]}, "name": {"type": "string"},
            "description": {"type": "string"}, "parameters": {"type": "object"},
            "strict": {"type": "boolean"}}}},
        "tool_choice": {"oneOf": [{"type": "string"}, {"type": "object"}]},
        "text": {"type": "object", "properties": {"format": {"type": "object", "properties": {
            "type": {"type": "string", "enum": ["text", "json_object", "json_schema"]}}}}},
        "max_output_tokens": {"type": "integer", "minimum": 1},
        "reasoning": {"type": "object", "properties": {"effort": {"type": "string"}}},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "stream": {"type": "boolean"},
        "store": {"type": "boolean", "description": "keep the response for "
                  "previous_response_id (only when the policy logs content)"},
        "previous_response_id": {"type": "string"},
        "user": {"type": "string"},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
_EMBEDDINGS_REQUEST = {
    "type": "object",
    "required": ["model", "input"],
    "properties": {
        "model": {"type": "string", "description": "one of the policy's embedding models (its "
                  "id, upstream name or an alias), or auto for the first"},
        "input": {"oneOf": [{"type": "string"}, {"type": "array", "minItems": 1}]},
        "encoding_format": {"type": "string", "enum": ["float", "base64"]},
        "dimensions": {"type": "integer", "minimum": 1},
        "user": {"type": "string"},
    },
}
_COUNT_TOKENS_REQUEST = {
    **_ANTHROPIC_REQUEST, "required": ["model", "messages"],
}
_ROUTE_HEADERS = {
    name: {"description": text, "schema": {"type": "string"}}
    for name, text in (
        ("X-Taskroute-Request-Id", "the id of this request in the log"),
        ("X-Taskroute-Task", "the task class it was routed as"),
        ("X-Taskroute-Tier", "the tier it was sent to"),
        ("X-Taskroute-Model", "the deployment that answered (for a stream: that started "
         "answering); on failover, another provider's"),
        ("X-Taskroute-Stood-In-For", "on failover only: the policy's model it answered for"),
        ("X-Taskroute-Label", "when the policy gives the route one: what a user may be shown "
         "(\"Quick answer\"), percent-encoded UTF-8 beyond printable ASCII"),
        ("X-Taskroute-Escalated", "true when a model past the first pick answered"),
        ("X-Taskroute-Cost-USD", "what the request cost, rejected attempts included"),
    )
}
_REQUEST_HEADERS = [
    {"name": "X-Taskroute-Task", "in": "header", "required": False,
     "description": "name the task class instead of letting the router classify",
     "schema": {"type": "string"}},
    {"name": "X-Taskroute-Explain", "in": "header", "required": False,
     "description": "1 adds a `taskroute` object with the decision's reasons to the body",
     "schema": {"type": "string", "enum": ["0", "1"]}},
    {"name": "X-Taskroute-Route-Event", "in": "header", "required": False,
     "description": "1 on a streamed request: the route (and its label) goes out as the "
     "stream's first event, before the model is called",
     "schema": {"type": "string", "enum": ["0", "1"]}},
]


def _error_responses(ref: str) -> dict[str, Any]:
    return {str(code): {"description": text, "content": {"application/json": {
        "schema": {"$ref": ref}}}} for code, text in (
        (400, "malformed or invalid request"), (401, "missing or invalid API key"),
        (404, "unknown model"), (413, "body too large"), (429, "rate limited"),
        (502, "every upstream attempt failed"), (504, "the upstream timed out"))}


def _post(summary: str, request: dict[str, Any], error_ref: str) -> dict[str, Any]:
    return {"post": {
        "summary": summary,
        "parameters": _REQUEST_HEADERS,
        "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
        "responses": {
            "200": {"description": "the answer (JSON, or server-sent events when streaming)",
                    "headers": _ROUTE_HEADERS,
                    "content": {"application/json": {"schema": {"type": "object"}},
                                "text/event-stream": {"schema": {"type": "string"}}}},
            **_error_responses(error_ref),
        },
    }}


def _count_tokens() -> dict[str, Any]:
    return {"post": {
        "summary": "Anthropic count_tokens: the input tokens a Messages body would take (the "
                   "estimate routing uses; nothing is called)",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": _COUNT_TOKENS_REQUEST}}},
        "responses": {
            "200": {"description": "the count", "content": {"application/json": {"schema": {
                "type": "object", "required": ["input_tokens"],
                "properties": {"input_tokens": {"type": "integer"}}}}}},
            **_error_responses("#/components/schemas/AnthropicError"),
        },
    }}


def _get(summary: str, content_type: str = "application/json") -> dict[str, Any]:
    schema = {"type": "object"} if content_type == "application/json" else {"type": "string"}
    return {"get": {"summary": summary, "responses": {
        "200": {"description": "OK", "content": {content_type: {"schema": schema}}}}}}


def _query(name: str, text: str, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": text,
            "schema": {"type": "string", **schema}}


_SINCE = _query("since", "the window: 1h, 24h, 7d ... or all (default 24h; the A/B report 7d)")
_QUALITY_ERRORS = {"400": {"description": "a query parameter it does not take", "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}}}}


def _report(summary: str, *parameters: dict[str, Any]) -> dict[str, Any]:
    op = _get(summary)
    op["get"]["parameters"] = list(parameters)
    op["get"]["responses"].update(_QUALITY_ERRORS)
    return op


def _taskroute_paths() -> dict[str, Any]:
    """The gateway's own endpoints: route quality, feedback, reload, the dashboard (served
    when the log can be read back; reload when admin keys are set)."""
    by = _query("by", "one row per group", enum=["route", "class", "model", "tier", "policy"])
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}}
    feedback_body = {"type": "object", "properties": {
        "request_id": {"type": "string", "description":
                       "the X-Taskroute-Request-Id of the answer (or send that header)"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "thumbs": {"type": "string", "enum": ["up", "down"]},
        "corrected": {"type": "boolean", "description": "the user had to fix or redo it"},
        "task": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$", "description":
                 "the task class the request really was (a misroute): one of the policy's"},
        "text": {"type": "string"}}}
    return {
        "/v1/taskroute/stats": _report(
            "route quality from the request log: first-pass rate, escalations, cost per task, "
            "latency; refused requests counted apart, and the misroutes feedback named",
            _SINCE, by),
        "/v1/taskroute/timeseries": _report(
            "cost and escalations per minute (windows up to 6 hours) or hour against always "
            "using the strongest model, every bucket of the window, with the running saving",
            _SINCE, _query("step", "bucket size (default auto)",
                           enum=["auto", "minute", "hour"])),
        "/v1/taskroute/ab": _report("the policy's A/B variants compared, with significance",
                                    _SINCE),
        "/v1/taskroute/shadow": _report(
            "the shadow policy against the served one: agreement by task class, what it would "
            "have cost, its quality where outcomes exist (Wilson 95% intervals)", _SINCE),
        "/v1/taskroute/breakers": _get(
            "each deployment's circuit breaker and the recent trips (other replicas' too, "
            "and those from before a restart, when the log keeps them)"),
        "/v1/taskroute/feedback": {"post": {
            "summary": "feedback on one answer: a score or thumbs, whether it was corrected "
                       "and the task class it really was",
            "parameters": [{"name": "X-Taskroute-Request-Id", "in": "header",
                            "required": False, "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": feedback_body}}},
            "responses": {
                "201": {"description": "recorded", "content": {"application/json": {
                    "schema": {"type": "object"}}}},
                "400": {"description": "malformed feedback, or a task the policy does not "
                        "define", "content": error},
                "404": {"description": "no logged request has that id", "content": error},
                "409": {"description": "the request already has feedback", "content": error},
            }}},
        "/v1/taskroute/reload": {"post": {
            "summary": "reload the policy file (as SIGHUP does); needs X-Taskroute-Admin-Key",
            "parameters": [{"name": "X-Taskroute-Admin-Key", "in": "header", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {
                "200": {"description": "reloaded", "content": {"application/json": {
                    "schema": {"type": "object"}}}},
                "400": {"description": "the new policy does not load", "content": error},
                "403": {"description": "reload is off, or the admin key is wrong",
                        "content": error},
            }}},
        "/dashboard": _get("route quality at a glance, as an HTML page (with keys: a sign-in "
                           "page until signed in)", "text/html"),
        # served only when the gateway has keys (gateway/signin.py)
        "/dashboard/signin": {"post": {
            "summary": "sign in to the dashboard with a read or admin key (sets an HttpOnly "
                       "session cookie; the key stays out of URLs and logs)",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"key": {"type": "string"}},
                "required": ["key"]}}}},
            "responses": {
                "204": {"description": "signed in"},
                "400": {"description": "the body is not {\"key\": ...}", "content": error},
                "401": {"description": "not a read or admin key", "content": error},
                "429": {"description": "too many wrong keys from this address",
                        "content": error},
            }}},
        "/dashboard/signout": {"post": {
            "summary": "sign out of the dashboard (clears the session cookie)",
            "responses": {"204": {"description": "signed out"}}}},
    }


@functools.cache
def openapi_document() -> dict[str, Any]:
    ready = _get("ready to serve (503 while shutting down, or when no deployment can be "
                 "called: no provider has its key)")
    ready["get"]["responses"]["503"] = {"description": "not ready, with the reason"}
    return {
        "openapi": "3.0.3",
        "info": {"title": "taskroute gateway", "version": "1.0.0", "description":
                 "OpenAI- and Anthropic-compatible endpoints that route each request to the "
                 "simplest model that reliably clears the bar."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "OpenAIError": {"type": "object", "required": ["error"], "properties": {
                    "error": {"type": "object", "required": ["message", "type"], "properties": {
                        "message": {"type": "string"}, "type": {"type": "string"},
                        "param": {"type": "string", "nullable": True},
                        "code": {"type": "string", "nullable": True}}}}},
                "AnthropicError": {"type": "object", "required": ["type", "error"],
                                   "properties": {
                    "type": {"type": "string", "enum": ["error"]},
                    "error": {"type": "object", "required": ["type", "message"], "properties": {
                        "type": {"type": "string"}, "message": {"type": "string"}}}}},
            },
        },
        "security": [{"bearer": []}, {}],
        "paths": {
            "/v1/chat/completions": _post("OpenAI chat completions, routed", _CHAT_REQUEST,
                                          "#/components/schemas/OpenAIError"),
            "/v1/messages": _post("Anthropic Messages, routed", _ANTHROPIC_REQUEST,
                                  "#/components/schemas/AnthropicError"),
            "/v1/messages/count_tokens": _count_tokens(),
            "/v1/responses": _post("OpenAI Responses API, routed like chat completions",
                                   _RESPONSES_REQUEST, "#/components/schemas/OpenAIError"),
            "/v1/embeddings": _post("OpenAI embeddings, passed to the policy's embedding model "
                                    "(not routed; logged and priced)", _EMBEDDINGS_REQUEST,
                                    "#/components/schemas/OpenAIError"),
            "/v1/models": _get("the routable names, the policy's models and their aliases"),
            "/healthz": _get("the process is up"),
            "/readyz": ready,
            "/metrics": _get("Prometheus metrics", "text/plain"),
            "/openapi.json": _get("this document"),
            **_taskroute_paths(),
        },
    }
