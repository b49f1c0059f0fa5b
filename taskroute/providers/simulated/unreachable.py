"""Addresses on 127.0.0.1 that fail before HTTP starts: one that refuses connections, one where
a connection never completes (a connect timeout). SIMULATED; nothing leaves the machine."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


@contextlib.contextmanager
def refusing() -> Iterator[str]:
    """A base URL nothing listens at: every connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    yield f"http://127.0.0.1:{port}"  # closed again: connecting is refused (RST)


@contextlib.contextmanager
def black_hole() -> Iterator[str]:
    """A base URL where connecting hangs: a listener that never accepts, its one-place queue
    kept full, so the kernel drops further SYNs and the client waits out its connect timeout."""
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        yield f"http://127.0.0.1:{port}"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
