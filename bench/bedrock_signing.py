"""Per-request cost of Bedrock's SigV4 signing and event-stream decoding: taskroute's own
(`providers/sigv4.py`, `providers/eventstream.py`) beside botocore's `SigV4Auth` and
`EventStreamBuffer`, and the installed size of each. One command:

    python bench/bedrock_signing.py

Needs botocore (the `bedrock` extra, or `dev`) for the comparison; bounded: 2,000 rounds each.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from taskroute.exceptions import Secret
from taskroute.providers import eventstream
from taskroute.providers.sigv4 import Credentials, sign

ROUNDS = 2000
URL = ("https://bedrock-runtime.us-east-1.amazonaws.com/model/"
       "us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream")
BODY = b'{"messages": [{"role": "user", "content": [{"text": "' + b"x" * 2000 + b'"}]}]}'
HEADERS = {"Content-Type": "application/json", "Accept": "application/vnd.amazon.eventstream"}
STREAM = b"".join(eventstream.event("contentBlockDelta",
                                    b'{"contentBlockIndex":0,"delta":{"text":"token "}}')
                  for _ in range(200))


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    samples.sort()
    return statistics.median(samples) * 1e6, samples[int(len(samples) * 0.99)] * 1e6


def size_of(package: str) -> float:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return 0.0
    root = Path(spec.origin).parent
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    credentials = Credentials("AKIDEXAMPLE", Secret("secret"), Secret("token"))
    now = datetime.now(UTC)
    rows = [("taskroute sigv4.sign", timed(lambda: sign(
        "POST", URL, HEADERS, BODY, credentials=credentials, region="us-east-1",
        service="bedrock", now=now)))]
    rows.append(("taskroute eventstream (200 events)",
                 timed(lambda: eventstream.Decoder().feed(STREAM))))
    try:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials as BotoCredentials
        from botocore.eventstream import EventStreamBuffer
    except ImportError:
        print("botocore is not installed: pip install 'taskroute[bedrock]' to compare")
    else:
        auth = SigV4Auth(BotoCredentials("AKIDEXAMPLE", "secret", "token"), "bedrock",
                         "us-east-1")

        def boto_sign() -> None:
            auth.add_auth(AWSRequest(method="POST", url=URL, data=BODY, headers=dict(HEADERS)))

        def boto_decode() -> None:
            buffer = EventStreamBuffer()
            buffer.add_data(STREAM)
            list(buffer)

        rows.insert(1, ("botocore SigV4Auth.add_auth", timed(boto_sign)))
        rows.append(("botocore EventStreamBuffer (200 events)", timed(boto_decode)))
    print(f"{'what':<42} {'p50 us':>9} {'p99 us':>9}")
    for name, (p50, p99) in rows:
        print(f"{name:<42} {p50:>9.1f} {p99:>9.1f}")
    own = sum((Path(__file__).parent.parent / "taskroute" / "providers" / f).stat().st_size
              for f in ("sigv4.py", "eventstream.py", "aws_credentials.py")) / 1024
    print(f"installed size: taskroute's sigv4 + eventstream + aws_credentials {own:.0f} KiB; "
          f"botocore {size_of('botocore'):.1f} MiB; boto3 {size_of('boto3'):.1f} MiB")


if __name__ == "__main__":
    main()
