"""Direct sampling: harmony renders, the real in-process vLLM engine samples, harmony parses back."""

from __future__ import annotations

import json

import pytest

import gptoss_lab as lab
from gptoss_lab.examples import get_weather
from gptoss_lab.nano import script

SCRIPT = script.load()


@pytest.fixture(scope="module")
def llm(nano_dir):
    engine = lab.sampling.engine("nano")
    yield engine
    lab.sampling.shutdown(engine)


def _text(tokens: list[int]) -> list[tuple[str | None, str]]:
    parsed = lab.harmony.parse(tokens)
    assert parsed.strict, parsed.problem
    return [(m.channel, m.content[0].text) for m in parsed.messages]


@pytest.mark.vllm
def test_tool_call_round_trip_through_harmony(llm) -> None:
    from openai_harmony import Author, Conversation, Message, Role

    first, second = SCRIPT.chain("harmony.weather")
    enc = lab.harmony.encoding()
    conversation = Conversation.from_json(json.dumps(first.request["conversation"]))
    [completion] = lab.sampling.sample(llm, [enc.render_conversation_for_completion(conversation, Role.ASSISTANT)])
    assert completion[-1] in lab.harmony.stop_tokens()
    messages = enc.parse_messages_from_completion_tokens(completion, Role.ASSISTANT)
    call = messages[-1]
    assert (call.recipient, json.loads(call.content[0].text)) == ("functions.get_weather", {"city": "Tokyo"})
    assert messages[0].content[0].text == first.reply.reasoning
    output = lab.run_call([get_weather], call.recipient.removeprefix("functions."), call.content[0].text)
    tool = (Message.from_author_and_content(Author.new(Role.TOOL, call.recipient), output)
            .with_channel("commentary").with_recipient("assistant"))
    conversation = Conversation.from_messages([*conversation.messages, *messages, tool])
    [completion] = lab.sampling.sample(llm, [enc.render_conversation_for_completion(conversation, Role.ASSISTANT)])
    assert _text(completion) == [("analysis", second.reply.reasoning), ("final", second.reply.final)]


@pytest.mark.vllm
def test_batch_returns_each_conversation_in_order(llm) -> None:
    entries = [e for e in SCRIPT.entries if e.id.startswith("harmony.batch_")]
    enc = lab.harmony.encoding()
    prompts = [script.harmony_prompt(e.request, enc) for e in entries]
    completions = lab.sampling.sample(llm, prompts)
    assert [_text(c)[-1] for c in completions] == [("final", e.reply.final) for e in entries]


def test_gpu_share_uses_what_is_free_and_says_what_to_stop() -> None:
    """A real model beside a server gets the free memory, or an error naming the fix (no GPU needed)."""
    from gptoss_lab.sampling import gpu_share

    assert gpu_share("openai/gpt-oss-20b", free_gib=70.0, total_gib=80.0) == round(69 / 80, 3)
    assert gpu_share("openai/gpt-oss-20b", free_gib=79.0, total_gib=80.0) == 0.9
    with pytest.raises(lab.LabError, match=r"needs about 16 GiB.*7\.5 of 80 GiB are free.*gptoss-lab stop --port"):
        gpu_share("openai/gpt-oss-20b", free_gib=7.5, total_gib=80.0)
