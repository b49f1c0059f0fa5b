"""Server-sent events parsed as the spec says."""

from __future__ import annotations

from taskroute.providers.sse import Event, EventParser


def parse(text: str) -> list[Event]:
    parser = EventParser()
    events = [parser.feed(line) for line in text.split("\n")]
    return [e for e in events if e is not None]


def test_joins_multi_line_data_and_reads_event_names() -> None:
    events = parse("event: delta\ndata: {\"a\":\ndata: 1}\n\n")
    assert events == [Event(data='{"a":\n1}', event="delta")]


def test_ignores_comments_ids_retries_and_empty_events() -> None:
    events = parse(": keep-alive\n\nid: 7\nretry: 100\ndata: x\n\n\n\nevent: only-name\n\n")
    assert events == [Event("x")]


def test_strips_one_leading_space_only_and_accepts_no_space() -> None:
    assert parse("data:  two\n\ndata:none\n\n") == [Event(" two"), Event("none")]


def test_a_field_without_a_colon_is_a_name_with_empty_value() -> None:
    assert parse("data\n\n") == [Event("")]
