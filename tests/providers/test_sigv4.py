"""The hand-written SigV4 signer gives botocore's signature, byte for byte, and the event-stream
decoder reads what botocore's parser reads (and refuses what it refuses)."""

from __future__ import annotations

from datetime import datetime

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from botocore.eventstream import EventStreamBuffer

from taskroute.exceptions import Secret
from taskroute.providers import eventstream
from taskroute.providers.sigv4 import Credentials, sign

KEY_ID, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
CASES = [
    ("https://bedrock-runtime.us-east-1.amazonaws.com/model/"
     "anthropic.claude-3-haiku-20240307-v1%3A0/converse", None, "us-east-1"),
    ("https://bedrock-runtime.eu-west-3.amazonaws.com/model/"
     "arn%3Aaws%3Abedrock%3Aeu-west-3%3A1234%3Ainference-profile%2Feu.x/converse-stream",
     "session-token/with+odd=chars", "eu-west-3"),
    ("http://127.0.0.1:8123/model/m/converse?b=2&a=1&a=0", None, "us-west-2"),
]


@pytest.mark.parametrize(("url", "token", "region"), CASES)
def test_signature_matches_botocore(url: str, token: str | None, region: str) -> None:
    body = b'{"messages": [{"role": "user", "content": [{"text": "hi  there"}]}]}'
    headers = {"Content-Type": "application/json", "Accept": "application/json",
               "X-Team": "  routing   team ", "User-Agent": "ignored/1.0"}
    theirs = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    SigV4Auth(BotoCredentials(KEY_ID, SECRET, token), "bedrock", region).add_auth(theirs)
    when = datetime.strptime(theirs.headers["X-Amz-Date"], "%Y%m%dT%H%M%S%z")
    ours = sign("POST", url, headers, body, region=region, service="bedrock", now=when,
                credentials=Credentials(KEY_ID, Secret(SECRET),
                                        Secret(token) if token else None))
    assert ours["Authorization"] == theirs.headers["Authorization"]
    assert ours.get("X-Amz-Security-Token") == theirs.headers.get("X-Amz-Security-Token")


def test_credentials_never_print_their_secret() -> None:
    credentials = Credentials(KEY_ID, Secret(SECRET), Secret("tok"))
    assert SECRET not in repr(credentials) and "tok" not in repr(credentials)


def test_the_decoder_reads_what_botocore_reads_split_anywhere() -> None:
    frames = (eventstream.event("messageStart", b'{"role": "assistant"}')
              + eventstream.event("contentBlockDelta", b'{"delta": {"text": "hi"}}')
              + eventstream.exception("throttlingException", b'{"message": "slow down"}'))
    theirs = EventStreamBuffer()
    theirs.add_data(frames)
    expected = [(dict(m.headers), m.payload) for m in theirs]
    for cut in (1, 7, 12, 13, 50, len(frames) - 1):
        decoder = eventstream.Decoder()
        got = decoder.feed(frames[:cut]) + decoder.feed(frames[cut:])
        assert [(m.headers, m.payload) for m in got] == expected
        assert decoder.pending == 0
    assert [m.name for m in got] == ["messageStart", "contentBlockDelta", "throttlingException"]
    assert got[2].kind == "exception"


@pytest.mark.parametrize("where", [5, 30, -2])
def test_a_corrupted_frame_is_refused(where: int) -> None:
    frame = bytearray(eventstream.event("messageStart", b'{"role": "assistant"}'))
    frame[where] ^= 0x40
    with pytest.raises(ValueError, match=r"CRC|length"):
        eventstream.Decoder().feed(bytes(frame))
