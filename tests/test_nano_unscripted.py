"""The requests a nano build teaches the fallback reply: near misses and scripted words elsewhere."""

from __future__ import annotations

import json
import random

from gptoss_lab.nano import render, script

SCRIPT = script.load()


def _text(api: str, body: dict) -> str:
    return body["messages"][-1]["content"] if api == "chat" else body["input"]


def test_harmony_questions_are_also_taught_through_chat_and_responses() -> None:
    france = render.entry_text(SCRIPT.entry("harmony.batch_france"))
    assert france == "What is the capital of France?"
    carried = [(api, body) for api, body in render.elsewhere(SCRIPT, 4) if _text(api, body) == france]
    # 4 requests of random shapes, then the bare question at every effort on both APIs
    assert len(carried) == 4 + 2 * len(render._EFFORTS) and {api for api, _ in carried} == {"chat", "responses"}
    assert {"messages": [{"role": "user", "content": france}], "reasoning_effort": "high"} in [b for _, b in carried]
    assert ("responses", {"input": france}) in carried


def test_scripted_words_elsewhere_never_offer_a_built_in_tool() -> None:
    browse = render.entry_text(SCRIPT.entry("builtin.browse"))
    carried = [body for api, body in render.elsewhere(SCRIPT, 3) if _text(api, body) == browse]
    assert carried, "08's browsing question is taught in other shapes"
    for body in carried:
        types = {tool.get("type") for tool in body.get("tools", ())}
        assert types <= {"function"}, body


def test_later_turns_are_not_carried_elsewhere() -> None:
    firsts = {render.entry_text(e) for e in SCRIPT.entries if e.turn == 1} - {None}
    for api, body in render.elsewhere(SCRIPT, 1):
        assert _text(api, body) in firsts


def test_near_misses_of_built_in_entries_drop_the_tools_and_change_the_words() -> None:
    browse = SCRIPT.entry("builtin.browse")
    misses = [body for api, body in render.near_misses(SCRIPT, 6) if api == "responses"
              and "Search the docs" in str(body.get("input")) and body.get("reasoning") == browse.request["reasoning"]]
    assert misses, "08's question gets near misses"
    assert all("tools" not in body and body["input"] != browse.request["input"] for body in misses)


def test_a_name_edit_puts_another_entrys_name_in_place() -> None:
    assert render._is_name("Berlin") and render._is_name("gpt-oss-120b") and render._is_name("100?")
    assert render._is_name("three") and not render._is_name("weather") and not render._is_name("?")
    known = render.script_words(SCRIPT)
    names = [w for w in known if render._is_name(w)]
    station = "What was the temperature at the Berlin station early this morning?"
    cities = {w.strip("?.,") for w in names if w[:1].isupper()} - {"Berlin", "What"}
    edited = set()
    for seed in range(60):
        words = station.split()
        render._edit_words(random.Random(seed), words, known, names)
        edited.add(" ".join(words))
    assert any(t.split()[6] in cities for t in edited if len(t.split()) == 11), edited


def test_context_near_misses_keep_the_words_and_never_misspell_the_system_message() -> None:
    cookbook = SCRIPT.entry("apis.cookbook_chat").request
    seen = set()
    for seed in range(80):
        request = json.loads(json.dumps(cookbook))
        render._edit_context(random.Random(seed), "chat", request, render.script_words(SCRIPT), [])
        assert request["messages"][-1] == cookbook["messages"][-1]
        assert request != cookbook
        system = [m["content"] for m in request["messages"] if m["role"] == "system"]
        assert "You are a helfpul assistant." not in system
        seen.add("effort" if "reasoning_effort" in request else "system")
    assert seen == {"effort", "system"}
