"""A store URL shown without its secret: the one form of it that messages and logs print."""

from __future__ import annotations

import re


def redact(url: str) -> str:
    """The URL without its password (`postgresql://user:***@host/db`)."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)
