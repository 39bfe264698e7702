"""The sentences notebooks print about what the model did, read off responses and tokens (no server)."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

import gptoss_lab as lab
from gptoss_lab.agents import AgentRun

ENC = lab.harmony.encoding()


def _chat(finish_reason: str, content: str | None, reasoning: str | None, *, tokens: int = 20,
          counted: int | None = None, tool_call: bool = False) -> ChatCompletion:
    message: dict[str, Any] = {"role": "assistant", "content": content, "reasoning": reasoning}
    if tool_call:
        message["tool_calls"] = [{"id": "call_1", "type": "function",
                                  "function": {"name": "get_weather", "arguments": '{"city": "Tokyo"}'}}]
    usage: dict[str, Any] = {"prompt_tokens": 50, "completion_tokens": tokens, "total_tokens": 50 + tokens}
    if counted is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": counted}
    return ChatCompletion.model_validate({
        "id": "chatcmpl-1", "created": 0, "model": "gpt-oss", "object": "chat.completion", "usage": usage,
        "choices": [{"index": 0, "finish_reason": finish_reason, "message": message}],
    })


def _response(status: str, reasoning: str, answer: str | None, *, counted: int = 0) -> Response:
    output: list[dict[str, Any]] = [{"type": "reasoning", "id": "rs_1", "summary": [],
                                     "content": [{"type": "reasoning_text", "text": reasoning}]}]
    if answer is not None:
        output.append({"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                       "content": [{"type": "output_text", "text": answer, "annotations": []}]})
    return Response.model_validate({
        "id": "resp_1", "created_at": 0, "model": "gpt-oss", "object": "response", "parallel_tool_calls": False,
        "tool_choice": "auto", "tools": [], "status": status, "output": output,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "usage": {"input_tokens": 50, "output_tokens": 30, "total_tokens": 80,
                  "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                  "output_tokens_details": {"reasoning_tokens": counted}},
    })


def test_a_run_without_tool_calls_says_the_model_answered_without_one() -> None:
    assert lab.describe_calls([], 1) == "the model answered without calling a tool in 1 turn"


def test_a_run_with_calls_names_them_and_counts_the_turns() -> None:
    sentence = lab.describe_calls(["get_weather", "get_weather"], 3)
    assert sentence == "the model made 2 tool calls (get_weather, get_weather) in 3 turns"


def test_a_chat_reply_cut_off_while_reasoning_is_explained_as_empty_content() -> None:
    sentence = lab.describe_finish(_chat("length", None, "Let me think about MXFP4", tokens=16))
    assert sentence.startswith("finish_reason='length'")
    assert "still reasoning" in sentence and "`content` is empty" in sentence and "Raise max_tokens" in sentence


def test_a_chat_answer_cut_off_midway_is_told_apart_from_an_empty_one() -> None:
    sentence = lab.describe_finish(_chat("length", "MXFP4 is a 4-bit", "Explain it.", tokens=64))
    assert "the answer was cut off at max_tokens after 64 tokens" in sentence


def test_a_finished_chat_reply_reports_the_servers_reasoning_count_as_the_max_tokens_to_beat() -> None:
    sentence = lab.describe_finish(_chat("stop", "Paris.", "Capital of France.", tokens=20, counted=7))
    assert "finished on its own after 20 tokens, 7 of them reasoning (the server's count)" in sentence
    assert "max_tokens below about 7" in sentence and "finish_reason='length'" in sentence


def test_without_a_server_count_the_reasoning_is_counted_with_harmony() -> None:
    reasoning = "The capital of France is Paris, which everyone knows."
    sentence = lab.describe_finish(_chat("stop", "Paris.", reasoning))
    expected = len(ENC.encode(reasoning, allowed_special="all"))
    assert f"{expected} of them reasoning (its text encoded with harmony)" in sentence


def test_a_reply_with_no_reasoning_says_so() -> None:
    assert "with no reasoning before the answer" in lab.describe_finish(_chat("stop", "Paris.", None))


def test_a_tool_call_reply_says_the_model_stopped_to_call_a_tool() -> None:
    sentence = lab.describe_finish(_chat("tool_calls", None, "Call get_weather.", tool_call=True))
    assert sentence.startswith("finish_reason='tool_calls'") and "<|call|>" in sentence


def test_an_incomplete_response_is_explained_with_the_responses_names() -> None:
    sentence = lab.describe_finish(_response("incomplete", "Still thinking", None))
    assert sentence.startswith("status='incomplete (max_output_tokens)'")
    assert "`output_text` is empty" in sentence and "Raise max_output_tokens" in sentence


def test_a_completed_response_uses_the_output_tokens_details() -> None:
    sentence = lab.describe_finish(_response("completed", "Capital of France.", "Paris.", counted=5))
    assert "5 of them reasoning (the server's count)" in sentence and "max_output_tokens below about 5" in sentence


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<|channel|>analysis<|message|>Call it.<|end|><|start|>assistant<|channel|>commentary "
         "to=functions.get_weather <|constrain|>json<|message|>{\"city\": \"Tokyo\"}<|call|>",
         "2 message(s) (analysis -> commentary to functions.get_weather); it stopped with <|call|>: a tool call "
         "to functions.get_weather"),
        ("<|channel|>analysis<|message|>Easy.<|end|><|start|>assistant<|channel|>final<|message|>Paris.<|return|>",
         "2 message(s) (analysis -> final); it stopped with <|return|>: a final answer"),
        ("<|channel|>analysis<|message|>Thinking and thinking",
         "1 message(s) (analysis); it ended without <|return|> or <|call|>"),
    ],
    ids=["tool-call", "answer", "cut-off"],
)
def test_a_completion_is_described_by_its_channels_and_its_last_token(text: str, expected: str) -> None:
    assert lab.harmony.describe(ENC.encode(text, allowed_special="all")).startswith(expected)


def test_the_answer_of_a_completion_is_its_final_message_or_none() -> None:
    answered = lab.harmony.parse(ENC.encode(
        "<|channel|>analysis<|message|>Easy.<|end|><|start|>assistant<|channel|>final<|message|>Paris.<|return|>",
        allowed_special="all")).messages
    called = lab.harmony.parse(ENC.encode(
        "<|channel|>commentary to=functions.get_weather<|message|>{}<|call|>", allowed_special="all")).messages
    assert lab.harmony.answer(answered) == "Paris." and lab.harmony.answer(called) is None


def test_an_agent_run_describes_its_calls_or_its_error() -> None:
    assert AgentRun("chat", "Sunny.", ("get_weather",), 2, 1.0).describe() == (
        "the model made 1 tool call (get_weather) in 2 turns")
    assert AgentRun("litellm", None, (), 0, 0.1, "APIError: boom").describe() == "error: APIError: boom"
