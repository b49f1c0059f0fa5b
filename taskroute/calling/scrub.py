"""Prompt text kept out of upstream error messages: a provider's 400 often quotes the request
back ("... 'Extract the total from: ...' is too long"), and that message is recorded in the
attempt, the log and the error the caller gets. Unless the policy logs content, any stretch of
the message that repeats the prompt is replaced; the status and the error's type stay."""

from __future__ import annotations

from taskroute.exceptions import UpstreamError

REMOVED = "[prompt text removed]"
MIN_ECHO = 12  # characters in a row, shared with the prompt, that make an echo
_MESSAGE_LIMIT = 2000  # upstream messages past this are cut (and scanned no further)


def scrub(text: str, prompt: str, *, min_echo: int = MIN_ECHO) -> str:
    """`text` with every stretch of at least `min_echo` characters that also occurs in
    `prompt` replaced (a prompt shorter than that counts whole, from 4 characters)."""
    prompt = prompt.strip()
    need = min(min_echo, len(prompt))
    if need < 4 or not text:
        return text
    text = text[:_MESSAGE_LIMIT]
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = i + need
        if j <= n and text[i:j] in prompt:
            while j < n and text[i:j + 1] in prompt:
                j += 1
            out.append(REMOVED)
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def scrub_error(exc: BaseException, prompt: str) -> BaseException:
    """The upstream error with its message scrubbed of `prompt` (in place: the same error goes
    on up the chain), and the body it quoted dropped when it echoed the prompt."""
    if not isinstance(exc, UpstreamError):
        return exc
    clean = scrub(exc.message, prompt)
    if clean != exc.message:
        exc.message = clean
        exc.args = (clean,)
        if hasattr(exc, "body"):
            exc.body = None
    return exc
