"""The build's replay check (gptoss_lab.nano.verify), through the shared nano server."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gptoss_lab import nano
from gptoss_lab.nano import script, tokenizer, verify
from gptoss_lab.nano.render import Example

SCRIPT = script.load()


@pytest.fixture(scope="module")
def harmony_examples() -> list[Example]:
    """The harmony entries: their prompts are rendered by openai-harmony, no render server needed."""
    encoding = tokenizer.harmony_encoding()
    return [
        Example(script.harmony_prompt(e.request, encoding), e.reply, e.id)
        for e in SCRIPT.entries
        if e.api == "harmony"
    ]


def test_the_built_checkpoint_replays_with_a_safety_margin(nano_server, harmony_examples) -> None:
    replays = verify.replay(nano_server, harmony_examples, tokenizer.harmony_encoding())
    assert [r.source for r in replays] == [e.source for e in harmony_examples]
    assert all(r.ok for r in replays), verify.summary(replays)
    assert min(r.margin for r in replays) >= verify.SAFETY


def test_the_build_record_keeps_the_served_margin(nano_dir) -> None:
    info = nano.build_info(nano_dir)
    assert info.served_margin is not None and info.served_margin >= verify.SAFETY


def test_a_reply_nano_was_not_trained_on_is_reported_where_it_departs(nano_server, harmony_examples) -> None:
    first = harmony_examples[0]
    wrong = replace(first, reply=replace(first.reply, reasoning=first.reply.reasoning + " Never trained."))
    encoding = tokenizer.harmony_encoding()
    trained = script.completion_tokens(first.reply, encoding)
    asked = script.completion_tokens(wrong.reply, encoding)
    departs = next(i for i, (a, b) in enumerate(zip(trained, asked, strict=False)) if a != b)
    (replay,) = verify.replay(nano_server, [wrong], encoding)
    assert not replay.ok
    assert replay.position == departs  # the first token the reply asks for that nano was not trained on
    summary = verify.summary([replay])
    assert summary.startswith("0/1 sequences replay") and first.source in summary
