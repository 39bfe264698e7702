"""nano's scripted structured-output replies pass vLLM's own grammar, token by token.

vLLM 0.32 compiles a request's JSON schema into an xgrammar structural tag over harmony
(``vllm.parser.harmony._adjust_output_format``): an optional analysis message, then a final
message whose header must read ``<|channel|>final json<|message|>`` or
``<|channel|>final <|constrain|>json<|message|>``, then JSON of the schema. A scripted reply
the grammar rejects is one gpt-oss cannot produce under that request, and nano would be
steered off its script at the rejected token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gptoss_lab.harmony_tokens import RETURN
from gptoss_lab.nano import script

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

STRUCTURED = [e for e in script.load().entries if e.reply.json_final]


@pytest.fixture(scope="module")
def tokenizer_info(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """xgrammar's view of the harmony vocabulary, built as vLLM builds it (``TokenizerInfo.from_huggingface``)."""
    import xgrammar
    from transformers import AutoTokenizer

    from gptoss_lab.nano import tokenizer

    folder: Path = tmp_path_factory.mktemp("tokenizer")
    tokenizer.build(folder)
    hf = AutoTokenizer.from_pretrained(folder)
    return xgrammar.TokenizerInfo.from_huggingface(hf, vocab_size=201088, stop_token_ids=[200002, 200012])


def grammar_for(entry: script.Entry, tokenizer_info: Any) -> Any:
    """The grammar vLLM samples this request's reply under."""
    import xgrammar
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.entrypoints.openai.responses.protocol import ResponsesRequest
    from vllm.parser.harmony import _adjust_output_format

    request_type = ChatCompletionRequest if entry.api == "chat" else ResponsesRequest
    request = _adjust_output_format(request_type(model="nano", **entry.request))
    return xgrammar.GrammarCompiler(tokenizer_info).compile_structural_tag(request.structured_outputs.structural_tag)


def test_the_script_has_a_structured_request_on_each_api() -> None:
    assert {e.api for e in STRUCTURED} == {"chat", "responses"}


@pytest.mark.parametrize("entry", STRUCTURED, ids=lambda e: e.id)
def test_each_scripted_structured_reply_is_accepted_by_vllms_grammar(entry: script.Entry, tokenizer_info: Any) -> None:
    import xgrammar

    from gptoss_lab.nano.tokenizer import harmony_encoding

    tokens = script.completion_tokens(entry.reply, harmony_encoding())
    matcher = xgrammar.GrammarMatcher(grammar_for(entry, tokenizer_info))
    refused = next((i for i, token in enumerate(tokens) if not matcher.accept_token(token)), None)
    assert refused is None, f"the grammar refuses token {refused} of the reply"
    assert tokens[-1] == RETURN and matcher.is_terminated()
