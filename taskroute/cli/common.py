"""Helpers shared by the CLI's nouns: loading the router and reading requests."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from taskroute.exceptions import CallerError, InvalidRequest
from taskroute.request import ChatRequest
from taskroute.router import Router


def add_policy_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy", metavar="FILE", help="policy file (default: the bundled default policy)"
    )


def add_embedder_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--embedder", metavar="FOLDER",
        help="a local sentence-embedding model (sentence-transformers BERT folder) whose "
        "vectors join the learned router's features; needs taskroute[embed]. Vectors are "
        "cached under ~/.cache/taskroute/embeddings ($XDG_CACHE_HOME)",
    )


def load_embedder(args: argparse.Namespace) -> Any:
    """The `--embedder` encoder behind a disk cache, or None."""
    folder = getattr(args, "embedder", None)
    if not folder:
        return None
    from taskroute.learned.embedding import EmbeddingCache, SentenceEncoder, default_cache_folder

    if not Path(folder).is_dir():
        raise CallerError(f"--embedder {folder}: no such folder")
    return EmbeddingCache(SentenceEncoder(folder), default_cache_folder())


def load_router(args: argparse.Namespace, **kwargs: Any) -> Router:
    if getattr(args, "policy", None):
        return Router.from_file(args.policy, **kwargs)
    return Router.default(**kwargs)


def read_request(prompt: str | None, request_file: str | None) -> ChatRequest:
    """A request from a prompt argument, a JSON request file, or a JSON request on stdin
    (`-` as the file, or no prompt with stdin not a terminal)."""
    if prompt is not None and request_file is not None:
        raise CallerError("give a prompt or --request, not both")
    if request_file is not None or prompt is None:
        return _request_from_json(_read_text(request_file))
    if not prompt.strip():
        raise InvalidRequest("the prompt is empty")
    return ChatRequest.from_prompt(prompt)


def _read_text(path: str | None) -> str:
    if path is None or path == "-":
        if path is None and sys.stdin.isatty():
            raise CallerError("give a prompt, or a JSON request with --request FILE or on stdin")
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CallerError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CallerError(f"cannot read {path}: not UTF-8 text") from None


def _request_from_json(text: str) -> ChatRequest:
    if not text.strip():
        raise InvalidRequest("the JSON request is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"malformed JSON request: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if isinstance(data, str):
        if not data.strip():
            raise InvalidRequest("the prompt is empty")
        return ChatRequest.from_prompt(data)
    return ChatRequest.from_dict(data)
