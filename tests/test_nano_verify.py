"""The build's replay check (gptoss_lab.nano.verify), through the shared nano server."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gptoss_lab import nano
from gptoss_lab.nano import script, tokenizer, verify
from gptoss_lab.nano.render import Example
from gptoss_lab.nano.verify import Replay
from gptoss_lab.vllm_cli import vllm_version

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


@pytest.fixture(scope="module")
def harmony_replays(nano_server, harmony_examples) -> list[Replay]:
    """The harmony entries replayed through the shared server, once for the module."""
    return verify.replay(nano_server, harmony_examples, tokenizer.harmony_encoding())


def test_the_built_checkpoint_replays_with_a_safety_margin(harmony_replays, harmony_examples) -> None:
    assert [r.source for r in harmony_replays] == [e.source for e in harmony_examples]
    assert all(r.ok for r in harmony_replays), verify.summary(harmony_replays)
    assert min(r.margin for r in harmony_replays) >= verify.SAFETY


def test_the_build_record_describes_this_checkpoint(nano_dir, harmony_replays) -> None:
    """nano.json names the script and vLLM it was built from, and the weakest margin the build measured."""
    info = nano.build_info(nano_dir)
    assert (info.key, info.script_sha256) == (nano_dir.name, SCRIPT.digest)
    assert info.entries == [e.id for e in SCRIPT.entries] and info.versions["vllm"] == vllm_version()
    # The build replayed every sequence, these among them, one at a time as here, and keeps the weakest lead.
    # Half a logit of slack for any rounding difference between the build's server and the shared one.
    assert info.served_margin is not None
    assert info.served_margin <= min(r.margin for r in harmony_replays) + 0.5


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
