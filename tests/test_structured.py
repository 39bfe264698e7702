"""Structured outputs on both APIs: vLLM holds gpt-oss's final answer to a JSON schema.

The requests are 02_apis's (nano's script entries ``apis.structured_chat`` and
``apis.structured_responses``), sent to the suite's server, whatever model it serves.
vLLM 0.32 turns the schema into a grammar over harmony (``vllm/parser/harmony.py``,
``_adjust_output_format``, on both APIs): one unconstrained analysis message may come
first, then the final message must be JSON of the schema. nano-plain answers everything
else with one plain sentence, so JSON of the schema coming back from it is vLLM's doing.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from openai import OpenAI
from pydantic import BaseModel, ConfigDict

from gptoss_lab.nano import script

CHAT = script.load().entry("apis.structured_chat").request
RESPONSES = script.load().entry("apis.structured_responses").request


class Pick(BaseModel):
    """The schema of the requests, as 02_apis parses the answer."""

    model_config = ConfigDict(extra="forbid", strict=True)
    model: Literal["gpt-oss-20b", "gpt-oss-120b"]
    fits_in_16gb: bool


def object_in(answer: str) -> Any:
    """The JSON object an answer carries: the whole answer, or the object inside vLLM's raw fallback.

    When the model leaves harmony's format (nano-plain, whose next token depends on the last one
    alone, spells the closing ``<|end|>`` in plain letters), vLLM's harmony parser cannot finish and
    returns the raw text of the reply as the answer, headers and all, with the JSON inside it.
    """
    return json.loads(answer[answer.index("{"):answer.rindex("}") + 1])


@pytest.fixture(scope="module")
def client(nano_server: Any) -> OpenAI:
    return OpenAI(base_url=nano_server.url, api_key=nano_server.api_key or "EMPTY")


@pytest.fixture(scope="module")
def model_id(nano_server: Any) -> str:
    return nano_server.model_id()


def test_chat_response_format_holds_the_answer_to_the_schema(client: OpenAI, model_id: str) -> None:
    reply = client.chat.completions.create(model=model_id, **CHAT)
    choice = reply.choices[0]
    assert choice.finish_reason == "stop"
    Pick.model_validate(object_in(choice.message.content or ""))


def test_responses_text_format_holds_the_answer_to_the_schema(client: OpenAI, model_id: str) -> None:
    response = client.responses.create(model=model_id, **RESPONSES)
    assert response.status == "completed"
    Pick.model_validate(object_in(response.output_text))


def test_the_reasoning_comes_back_apart_from_the_constrained_answer(client: OpenAI, model_id: str) -> None:
    message = client.chat.completions.create(model=model_id, **CHAT).choices[0].message
    reasoning = getattr(message, "reasoning", None)
    assert not reasoning or reasoning not in (message.content or "")
    response = client.responses.create(model=model_id, **RESPONSES)
    kinds = [item.type for item in response.output]
    assert kinds[-1] == "message" and set(kinds[:-1]) <= {"reasoning"}


def test_vllm_does_not_show_the_schema_to_the_model(client: OpenAI, model_id: str) -> None:
    """The prompt is the same token for token without the schema: describe the fields in the request too."""
    chat = client.chat.completions.create(model=model_id, **CHAT)
    bare = client.chat.completions.create(model=model_id, messages=CHAT["messages"], max_tokens=1)
    assert chat.usage.prompt_tokens == bare.usage.prompt_tokens
    response = client.responses.create(model=model_id, **RESPONSES)
    plain = client.responses.create(model=model_id, input=RESPONSES["input"], max_output_tokens=1)
    assert response.usage.input_tokens == plain.usage.input_tokens
