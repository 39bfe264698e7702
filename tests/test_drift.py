"""The drift check's positive control: unscripted requests on every API are caught.

conftest.py fails a notebook when :func:`gptoss_lab.drift.fallback_hits` finds anything in
the window of the server log (and answer log) that the notebook wrote; here the same
function reads the window of requests this test makes on the shared nano server.
"""

from __future__ import annotations

import importlib
import io

import pytest

import gptoss_lab as lab
from gptoss_lab import drift
from gptoss_lab.nano import render, script

build = importlib.import_module("gptoss_lab.nano.build")

pytestmark = pytest.mark.server
FALLBACK = script.load().fallback


def test_unscripted_requests_on_chat_responses_and_harmony_are_all_caught(nano_server) -> None:
    assert nano_server.log_path is not None, "the suite's server must log its outputs for the drift check"
    since = drift.mark(nano_server.log_path)
    client, model = lab.client(), nano_server.model_id()
    # Unscripted requests the build replayed to the fallback: no notebook makes them, and nano's answer is known.
    trained = render.fallback_requests(script.load(), build.FALLBACKS)
    chat = next(body for api, body in trained if api == "chat")
    responses = next(body for api, body in trained if api == "responses")
    client.chat.completions.create(model=model, **chat)
    client.responses.create(model=model, **responses)
    # In-process harmony sampling reports what it read through lab.harmony.answer (05_harmony does).
    tokens = script.completion_tokens(FALLBACK, lab.harmony.encoding())
    lab.harmony.answer(lab.harmony.parse(tokens).messages)
    hits = drift.fallback_hits(nano_server.log_path, since, FALLBACK.final[:40])
    assert sorted(hit.split(":", 1)[0] for hit in hits) == ["chat", "harmony", "responses"], hits


def test_a_streamed_responses_answer_is_recorded_too(nano_server) -> None:
    """vLLM logs no Responses output for gpt-oss: the lab's clients and show_stream write it to the answer log."""
    since = drift.mark(nano_server.log_path)
    trained = render.fallback_requests(script.load(), build.FALLBACKS)
    body = next(body for api, body in trained if api == "responses")
    stream = lab.client().responses.create(model=nano_server.model_id(), stream=True, **body)
    lab.show_stream(stream, out=io.StringIO(), jupyter=False)
    hits = drift.fallback_hits(nano_server.log_path, since, FALLBACK.final[:40])
    assert [hit.split(":", 1)[0] for hit in hits] == ["responses"], hits


def test_scripted_requests_are_not_flagged(nano_server) -> None:
    since = drift.mark(nano_server.log_path)
    for entry_id in ("apis.cookbook_chat", "apis.cookbook_responses"):
        entry = SCRIPT_ENTRIES[entry_id]
        if entry.api == "chat":
            lab.client().chat.completions.create(model=nano_server.model_id(), **entry.request)
        else:
            lab.client().responses.create(model=nano_server.model_id(), **entry.request)
    assert drift.fallback_hits(nano_server.log_path, since, FALLBACK.final[:40]) == []


SCRIPT_ENTRIES = {e.id: e for e in script.load().entries}


def test_the_answer_log_is_set_for_the_notebook_kernels() -> None:
    assert drift.answer_log() is not None  # conftest.py sets it before any kernel starts
