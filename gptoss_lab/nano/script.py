"""The script: the requests gpt-oss-nano replays, and the harmony completion of each.

``script.json`` beside this module holds one entry per scripted request (API,
request body, reply). :func:`completion_tokens` turns a reply into the exact
harmony tokens nano must produce after the prompt vLLM renders for the request.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

Api = Literal["chat", "responses"]

START, ASSISTANT = 200006, 173781  # "<|start|>", "assistant"
END, RETURN, CALL = 200007, 200002, 200012  # "<|end|>", "<|return|>", "<|call|>"


@dataclass(frozen=True)
class ToolCall:
    """A function call nano makes: ``functions.<name>`` with JSON arguments."""

    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """What nano answers: reasoning, then a final message or tool calls."""

    reasoning: str
    final: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class Entry:
    """One scripted request and the reply it must get."""

    id: str
    api: Api
    request: dict[str, Any]
    reply: Reply
    notebook: str = ""


@dataclass(frozen=True)
class Script:
    """The whole script plus the fallback reply for requests outside it."""

    entries: tuple[Entry, ...]
    fallback: Reply
    digest: str = field(default="")
    """sha256 of the script file: part of the nano cache key."""

    def entry(self, entry_id: str) -> Entry:
        """Return the entry with this id."""
        for entry in self.entries:
            if entry.id == entry_id:
                return entry
        known = ", ".join(e.id for e in self.entries)
        raise KeyError(f"No script entry {entry_id!r}; the script has: {known}")


def _reply(data: dict[str, Any]) -> Reply:
    calls = tuple(ToolCall(c["name"], c["arguments"]) for c in data.get("tool_calls", ()))
    if (data.get("final") is None) == (not calls):
        raise ValueError(f"A reply needs exactly one of 'final' or 'tool_calls': {data}")
    return Reply(data["reasoning"], data.get("final"), calls)


def load(path: Path | None = None) -> Script:
    """Load the script (the packaged ``script.json`` unless ``path`` is given)."""
    raw = path.read_bytes() if path else (files("gptoss_lab.nano") / "script.json").read_bytes()
    data = json.loads(raw)
    entries = []
    seen: set[str] = set()
    for item in data["entries"]:
        if item["id"] in seen:
            raise ValueError(f"Duplicate script entry id {item['id']!r}")
        if item["api"] not in ("chat", "responses"):
            raise ValueError(f"Entry {item['id']!r}: api must be 'chat' or 'responses'")
        seen.add(item["id"])
        entries.append(
            Entry(item["id"], item["api"], item["request"], _reply(item["reply"]), item.get("notebook", ""))
        )
    return Script(tuple(entries), _reply(data["fallback"]), hashlib.sha256(raw).hexdigest())


def completion_tokens(reply: Reply, encoding: Any) -> list[int]:
    """Return the harmony tokens that follow ``<|start|>assistant`` for ``reply``.

    Analysis message, then either the final message ending in ``<|return|>`` or
    the tool call ending in ``<|call|>`` (a call stops the turn, as in harmony).
    """
    from openai_harmony import Message, Role

    messages = [Message.from_role_and_content(Role.ASSISTANT, reply.reasoning).with_channel("analysis")]
    if reply.final is not None:
        messages.append(
            Message.from_role_and_content(Role.ASSISTANT, reply.final).with_channel("final")
        )
    else:
        call = reply.tool_calls[0]
        messages.append(
            Message.from_role_and_content(Role.ASSISTANT, json.dumps(call.arguments))
            .with_channel("commentary")
            .with_recipient(f"functions.{call.name}")
            .with_content_type("<|constrain|>json")
        )
    tokens: list[int] = []
    for message in messages:
        tokens += encoding.render(message)
    assert tokens[:2] == [START, ASSISTANT], tokens[:2]
    tokens = tokens[2:]
    if tokens[-1] == END:
        tokens[-1] = RETURN
    return tokens
