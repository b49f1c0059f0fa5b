"""The task classes taskroute routes by, each with what it means.

A request is routed by what kind of work it asks for, not by which model it names. These are the
default classes; a policy may add its own under `tasks:`.
"""

from __future__ import annotations

from types import MappingProxyType

DEFAULT_TASKS: MappingProxyType[str, str] = MappingProxyType({
    "extraction": "pull named fields, entities or facts out of supplied text",
    "classification": "assign a label, category or sentiment from a fixed set",
    "summarization": "condense supplied text",
    "qa": "a factual or knowledge question with no supplied context",
    "retrieval_qa": "an answer grounded in supplied context (passages, documents)",
    "transformation": "a structured rewrite or format conversion",
    "tool_use": "work that needs calling tools, APIs or functions",
    "chat": "light conversation and quick casual help",
    "writing": "original prose or verse: stories, poems, letters, speeches, posts",
    "coding": "writing, fixing, explaining or reviewing code",
    "reasoning": "multi-step planning, math, logic and analysis",
    "high_stakes": "final user-facing output where trust matters most",
})

# Typical answer length per class, used only to estimate a decision's cost before the call.
TYPICAL_OUTPUT_TOKENS: MappingProxyType[str, int] = MappingProxyType({
    "extraction": 150,
    "classification": 20,
    "summarization": 300,
    "qa": 250,
    "retrieval_qa": 300,
    "transformation": 400,
    "tool_use": 150,
    "chat": 150,
    "writing": 700,
    "coding": 800,
    "reasoning": 1000,
    "high_stakes": 600,
})
DEFAULT_OUTPUT_TOKENS = 300
