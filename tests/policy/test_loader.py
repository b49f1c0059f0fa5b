from __future__ import annotations

from pathlib import Path

import pytest

from taskroute.exceptions import PolicyError
from taskroute.policy import load_default_policy, load_policy, parse_policy
from taskroute.policy.prose import describe_policy

MINIMAL = """\
name: tiny
models:
  openai/small:
    tier: fast
    price: {input: 0.1, output: 0.4}
  openai/big:
    tier: strong
    price: {input: 5, output: 20}
    context: 200000
tiers:
  fast:
    use: openai/small
    escalate to: [strong]
  strong:
    use: openai/big
tasks:
  chat: fast
  reasoning: {tier: strong, gates: [non_empty, {regex: '^\\d+$'}]}
"""


def error_of(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, file="p.yaml")
    return info.value


def test_minimal_policy_parses_into_frozen_objects() -> None:
    policy = parse_policy(MINIMAL, file="p.yaml")
    assert policy.name == "tiny"
    assert policy.tier("fast").chain == ("openai/small", "openai/big")  # tier name → its model
    assert policy.tasks["reasoning"].gates[1].params == {"value": "^\\d+$"}
    assert policy.default_task == "chat"
    assert policy.models["openai/big"].context == 200_000
    with pytest.raises(AttributeError):
        policy.name = "other"  # type: ignore[misc]


def test_bundled_default_policy_is_valid_and_complete() -> None:
    policy = load_default_policy()
    assert policy.tier_names == ("fast", "balanced", "strong")
    assert set(policy.tasks) >= {
        "extraction", "classification", "summarization", "qa", "retrieval_qa",
        "transformation", "tool_use", "chat", "writing", "coding", "reasoning", "high_stakes",
    }
    assert all(m.price.input > 0 and m.price.output > 0 for m in policy.models.values())
    text = describe_policy(policy)
    assert "Extraction (pull named fields" in text
    assert "goes to the fast tier (openai/gpt-4.1-mini)" in text


def test_unknown_key_is_refused_with_line_and_key() -> None:
    bad = MINIMAL.replace("    context: 200000\n", "    context: 200000\n    colour: red\n")
    error = error_of(bad)
    assert error.line == 10
    assert error.key == "models.openai/big.colour"
    assert "unknown key 'colour'" in str(error)
    assert str(error).startswith("p.yaml:10 at 'models.openai/big.colour'")


def test_unknown_top_level_key_is_refused() -> None:
    error = error_of(MINIMAL + "routing_mode: fancy\n")
    assert error.key == "routing_mode"
    assert error.line == 19


@pytest.mark.parametrize(
    ("change", "line", "fragment"),
    [
        (("price: {input: 0.1, output: 0.4}", "price: {input: cheap, output: 0.4}"), 5,
         "expected a number"),
        (("price: {input: 0.1, output: 0.4}", "price: {input: -1, output: 0.4}"), 5,
         "from 0"),
        (("  chat: fast", "  chat: medium"), 17, "expected one of fast, strong"),
        (("escalate to: [strong]", "escalate to: [huge]"), 13, "neither a declared model"),
        (("    tier: fast\n", "    tier: tiny\n"), None, "names tier 'tiny'"),
        (("openai/small:", "small:"), 3, "provider/model"),
    ],
)
def test_bad_values_are_refused_with_what_was_expected(
    change: tuple[str, str], line: int | None, fragment: str
) -> None:
    error = error_of(MINIMAL.replace(*change, 1))
    assert fragment in str(error)
    if line is not None:
        assert error.line == line


def test_missing_required_section() -> None:
    error = error_of("models: {}\n")
    assert "missing 'tiers'" in str(error)


def test_duplicate_keys_are_an_error() -> None:
    error = error_of(MINIMAL + "tasks:\n  qa: fast\n")
    assert "given twice" in str(error)


def test_invalid_yaml_reports_its_line() -> None:
    error = error_of("models:\n  a: [1, 2\n")
    assert "not valid YAML" in str(error)
    assert error.line is not None


def test_conditions_are_checked_at_load_time() -> None:
    bad = MINIMAL + "adjust:\n  - when: input_tokens > lots\n    move up: 1\n"
    error = error_of(bad)
    assert error.line == 20 and error.key == "adjust.[0].when"
    assert "compares with a number" in str(error)
    assert "<policy>" not in str(error)  # located once, by the loader
    bad = MINIMAL + "adjust:\n  - when: mood is happy\n    move up: 1\n"
    assert "unknown signal 'mood'" in str(error_of(bad))


def test_adjust_rule_takes_exactly_one_action() -> None:
    bad = MINIMAL + "adjust:\n  - when: tools_required\n    move up: 1\n    use: strong\n"
    assert "exactly one of" in str(error_of(bad))


def test_classify_rule_with_bad_regex() -> None:
    bad = MINIMAL + "classify:\n  - as: chat\n    pattern: '([a-z'\n"
    error = error_of(bad)
    assert "not a valid regular expression" in str(error)
    assert error.line == 21


def test_keys_may_use_spaces_underscores_or_dashes() -> None:
    text = MINIMAL.replace("escalate to:", "escalate_to:") + "session-window: 90s\n"
    policy = parse_policy(text)
    assert policy.tier("fast").escalate_to == ("openai/big",)
    assert policy.session_window_s == 90


def test_durations_and_calling_settings() -> None:
    text = MINIMAL + (
        "calling:\n  timeouts: {connect: 250ms, first token: 2s, total: 1m}\n"
        "  retries: 3\n  hedge: {after: p90, min samples: 5}\n"
    )
    calling = parse_policy(text).calling
    assert (calling.connect_timeout_s, calling.first_token_timeout_s) == (0.25, 2.0)
    assert calling.total_timeout_s == 60.0
    assert calling.retries == 3
    assert calling.hedge and calling.hedge_quantile == 0.9 and calling.hedge_min_samples == 5


def test_policy_may_add_its_own_task_class_with_a_meaning() -> None:
    text = MINIMAL + "  triage: {tier: fast, meaning: sort support tickets by urgency}\n"
    assert parse_policy(text).tasks["triage"].meaning == "sort support tickets by urgency"
    error = error_of(MINIMAL + "  triage: {tier: fast}\n")
    assert "give it a 'meaning'" in str(error)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        load_policy(tmp_path / "missing.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(PolicyError, match="empty"):
        load_policy(empty)


def test_a_race_may_name_a_judge_model_which_must_be_declared() -> None:
    raced = MINIMAL.replace("  chat: fast", "  chat: {tier: fast, race: {against: strong, "
                            "min confidence: 0.9, judge: openai/small}}")
    race = parse_policy(raced, file="p.yaml").tasks["chat"].race
    assert race is not None and race.judge == "openai/small" and race.against == "openai/big"
    assert "openai/small grades it" in describe_policy(parse_policy(raced, file="p.yaml"))
    error = error_of(raced.replace("judge: openai/small", "judge: nobody/here"))
    assert "nobody/here" in str(error) and "p.yaml:" in str(error)


def test_shared_state_fails_open_unless_the_policy_says_closed() -> None:
    assert parse_policy(MINIMAL).shared_state_down == "fail open"
    closed = parse_policy(MINIMAL + "shared state: {when down: fail closed}\n")
    assert closed.shared_state_down == "fail closed"
    error = error_of(MINIMAL + "shared state: {when down: shrug}\n")
    assert error.key == "shared state.when down"
    assert "fail open, fail closed" in str(error)


LABELLED = MINIMAL.replace("    escalate to: [strong]\n", "    escalate to: [strong]\n"
                           "    label: Quick answer\n").replace(
    "  reasoning: {tier: strong, gates: [non_empty, {regex: '^\\d+$'}]}",
    "  reasoning: {tier: strong, label: Using advanced analysis}\n"
    "  coding: {tier: fast, meaning: code, label: Écrit du code}")


def test_labels_a_task_s_own_wins_over_its_tier_s() -> None:
    policy = parse_policy(LABELLED, file="p.yaml")
    assert policy.tier("fast").label == "Quick answer" and policy.tier("strong").label is None
    assert policy.label_for("chat", "fast") == "Quick answer"          # the tier's
    assert policy.label_for("coding", "fast") == "Écrit du code"       # the task's wins
    assert policy.label_for("reasoning", "strong") == "Using advanced analysis"
    assert policy.label_for("chat", "strong") is None                  # neither has one
    assert parse_policy(MINIMAL).label_for("chat", "fast") is None


def test_labels_read_as_prose() -> None:
    text = describe_policy(parse_policy(LABELLED, file="p.yaml"))
    assert "fast (openai/small, $0.10 in / $0.40 out per million tokens; users see " \
           "\u201cQuick answer\u201d)" in text
    assert "Users see \u201cUsing advanced analysis\u201d while it is answered." in text
    assert "X-Taskroute-Label" in text and "X-Taskroute-Route-Event: 1" in text
    assert "X-Taskroute-Label" not in describe_policy(parse_policy(MINIMAL))


@pytest.mark.parametrize(("label", "fragment"), [
    ("''", "expected text"),
    ('"two\\nlines"', "one line of printable text"),  # YAML's double quotes: a real newline
    ("'" + "x" * 81 + "'", "at most 80 characters, this one 81"),
    ("[a, b]", "expected text"),
])
def test_a_bad_label_is_refused_with_its_line(label: str, fragment: str) -> None:
    bad = MINIMAL.replace("  chat: fast", f"  chat: {{tier: fast, label: {label}}}")
    error = error_of(bad)
    assert fragment in str(error) and error.key == "tasks.chat.label" and error.line == 17
