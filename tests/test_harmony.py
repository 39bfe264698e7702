"""Harmony helpers that need no model: malformed completions, the token view, the parser replay."""

from __future__ import annotations

import pytest

import gptoss_lab as lab
from gptoss_lab.harmony import HarmonyFormatWarning
from gptoss_lab.nano import script

ENC = lab.harmony.encoding()
GOOD = script.completion_tokens(script.load().entry("tools.compare").reply, ENC)


def test_well_formed_completion_parses_strictly_without_warning(recwarn) -> None:
    parsed = lab.harmony.parse(GOOD)
    assert parsed.strict and parsed.problem is None and len(parsed.messages) == 2
    assert not recwarn.list


@pytest.mark.parametrize(
    ("tokens", "problem"),
    [
        (GOOD[:12], "truncated"),
        (GOOD[:20], "were dropped"),
        (ENC.encode("<|message|>Paris.<|end|>", allowed_special="all"), "has no channel"),
        (GOOD[:4] + ENC.encode("<|start|>", allowed_special="all") + GOOD[4:], "unexpected <|start|> at token 4"),
        ([], "empty"),
    ],
    ids=["truncated", "truncated-header", "no-channel", "stray-token", "empty"],
)
def test_malformed_completion_is_parsed_leniently_with_a_named_problem(tokens: list[int], problem: str) -> None:
    with pytest.warns(HarmonyFormatWarning, match="not well-formed harmony"):
        parsed = lab.harmony.parse(tokens)
    assert not parsed.strict and problem in (parsed.problem or "")


def test_token_view_marks_specials_and_ids() -> None:
    view = lab.harmony.show_tokens(GOOD, "completion")
    page = view._repr_html_()
    assert "&lt;|channel|&gt;" in page and f"id {GOOD[0]}" in page and "completion (" in page
    assert str(view).startswith("<|channel|>analysis<|message|>")


def test_replay_follows_the_parser_state(capsys) -> None:
    states = lab.harmony.replay(GOOD)
    assert len(states) == len(GOOD)
    assert states[-1].messages == 2 and states[5].channel == "analysis"
    assert "recipient=functions.get_weather" in capsys.readouterr().out
