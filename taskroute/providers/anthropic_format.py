"""Conversions between OpenAI's chat-completions shapes and Anthropic's Messages API."""

from __future__ import annotations

# How a JSON answer is asked of a model that has no response_format: in the system prompt.
JSON_INSTRUCTION = "Respond with a single JSON object and nothing else: no prose, no code fences."
SCHEMA_INSTRUCTION = "The JSON object must be valid against this JSON Schema: "
