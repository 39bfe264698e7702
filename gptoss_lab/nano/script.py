"""The script: the requests gpt-oss-nano replays, and the harmony completion of each.

``script.json`` beside this module holds one entry per scripted request (API,
request body, reply). An entry with ``turns`` is a whole tool loop: it expands
into one entry per model turn, each follow-up request built with the same
message builders :func:`gptoss_lab.run_tools` uses, so the loop's requests are
exactly the ones nano learned. ``"lab_tools": [names]`` in a request stands for
the schemas of those tools from :mod:`gptoss_lab.examples`.
:func:`completion_tokens` turns a reply into the exact harmony tokens nano must
produce after the prompt vLLM renders for the request.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from gptoss_lab.errors import ScriptError, UnfaithfulScriptError
from gptoss_lab.harmony_tokens import ASSISTANT, END, RETURN, START

Api = Literal["chat", "responses", "harmony"]
APIS = ("chat", "responses", "harmony")
"""``harmony``: a prompt rendered by openai-harmony itself, sampled with ``vllm.LLM``."""


@dataclass(frozen=True)
class ToolCall:
    """A function call nano makes: ``functions.<name>`` with JSON arguments."""

    name: str
    arguments: dict[str, Any] | str
    """A JSON object, or raw text (a deliberately malformed call)."""

    @property
    def arguments_text(self) -> str:
        """The arguments as the API returns them."""
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass(frozen=True)
class BuiltinCall:
    """A call to one of gpt-oss's built-in tools, which vLLM runs inside the Responses request.

    ``recipient`` is ``browser.search``, ``browser.open``, ``browser.find`` or ``python``;
    ``text`` is the message body: JSON arguments for the browser, plain code for python.
    """

    recipient: str
    text: str


BUILTIN_TOOL_TYPES = {"web_search_preview": "browser", "code_interpreter": "python"}
"""Responses API tool types that turn on a built-in tool, and the harmony namespace of each."""


@dataclass(frozen=True)
class Reply:
    """What nano answers: reasoning, then a final message, function tool calls, or a built-in call."""

    reasoning: str
    final: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    builtin: BuiltinCall | None = None
    json_final: bool = False
    """The request asks for JSON of a schema: vLLM's grammar makes the final header ``<|constrain|>json``."""


@dataclass(frozen=True)
class Entry:
    """One scripted request and the reply it must get."""

    id: str
    api: Api
    request: dict[str, Any]
    reply: Reply
    notebook: str = ""
    turn: int = 1
    """Which model turn of a tool loop this is (1 for a plain request)."""
    results: tuple[str, ...] = ()
    """The tool results the loop hands back after this turn's calls."""
    given: tuple[tuple[Reply, tuple[str, ...]], ...] = ()
    """Constructed model turns (and their tool results) the loop was fed before the model's first turn.

    They are never trained: a notebook shows a misbehaviour gpt-oss will not produce on cue
    (malformed arguments, an unknown tool) by feeding it to the loop, and nano learns only
    the faithful turns that follow. ``opening`` is the request before them."""
    opening: dict[str, Any] | None = None

    @property
    def chain(self) -> str:
        """The id of the loop this turn belongs to (the entry id without ``#turn``)."""
        return self.id.split("#")[0]

    @property
    def builtin(self) -> bool:
        """Whether the request turns on built-in tools: vLLM then runs the tool loop itself.

        Turns after the first have no request of their own: vLLM builds their prompt
        inside the first request (``gptoss_lab.nano.render.examples``). ``request`` is
        the first turn's, for every turn.
        """
        tools = self.request.get("tools") or []
        return self.api == "responses" and any(t.get("type") in BUILTIN_TOOL_TYPES for t in tools)


@dataclass(frozen=True)
class Script:
    """The whole script plus the fallback reply for requests outside it."""

    entries: tuple[Entry, ...]
    fallback: Reply
    digest: str = field(default="")
    """sha256 of the script file: part of the nano cache key."""

    def chain(self, chain_id: str) -> list[Entry]:
        """Return every turn of the tool loop ``chain_id``, in order."""
        turns = [e for e in self.entries if e.chain == chain_id]
        if not turns:
            raise KeyError(f"No script loop {chain_id!r}")
        return turns

    def entry(self, entry_id: str) -> Entry:
        """Return the entry with this id."""
        for entry in self.entries:
            if entry.id == entry_id:
                return entry
        known = ", ".join(e.id for e in self.entries)
        raise KeyError(f"No script entry {entry_id!r}; the script has: {known}")


def _reply(data: dict[str, Any]) -> Reply:
    calls = tuple(ToolCall(c["name"], c["arguments"]) for c in data.get("tool_calls", ()))
    builtin = None
    if "builtin_call" in data:
        raw = data["builtin_call"]
        recipient = raw["recipient"]
        if recipient != "python" and not recipient.startswith("browser."):
            raise ScriptError(f"A builtin_call goes to browser.search/open/find or python, not {recipient!r}")
        text = raw["code"] if recipient == "python" else json.dumps(raw["arguments"])
        builtin = BuiltinCall(recipient, text)
    if sum((data.get("final") is not None, bool(calls), builtin is not None)) != 1:
        raise ScriptError(f"A reply needs exactly one of 'final', 'tool_calls' or 'builtin_call': {data}")
    return Reply(data["reasoning"], data.get("final"), calls, builtin)


_SPECIAL = re.compile(r"<\|[a-z_]+\|>")
"""Text that would render as a harmony special token (``<|call|>``, ``<|end|>``, ...)."""


def offered_functions(api: Api, request: dict[str, Any]) -> set[str]:
    """Names of the function tools a request offers the model (after ``lab_tools`` is expanded)."""
    if api == "harmony":
        names: set[str] = set()
        for message in request["conversation"]["messages"]:
            for part in message.get("content") or ():
                namespace = ((part.get("tools") or {}).get("functions") or {}) if isinstance(part, dict) else {}
                names |= {tool["name"] for tool in namespace.get("tools", ())}
        return names
    tools = request.get("tools") or []
    if api == "chat":
        return {t["function"]["name"] for t in tools if t.get("type") == "function"}
    return {t["name"] for t in tools if t.get("type") == "function"}


def check_faithful(where: str, api: Api, request: dict[str, Any], reply: Reply) -> None:
    """Refuse a reply gpt-oss could not produce for ``request``.

    The rules: analysis first; at most one tool call per generation (a call ends with
    ``<|call|>``, a stop token, so gpt-oss makes one and waits for its result); a call names
    a function the request offers, with a JSON object as arguments; a built-in call goes to a
    built-in tool the request turns on; no text that renders as a harmony special token;
    a final answer is not empty. A misbehaviour a notebook wants to *teach* is shown by
    feeding the tool loop a constructed model turn, never by training nano to produce it.

    Raises:
        UnfaithfulScriptError: naming the rule and how to fix the entry.
    """
    def refuse(rule: str) -> UnfaithfulScriptError:
        return UnfaithfulScriptError(f"Script entry {where}: {rule} (gptoss_lab/nano/script.json; "
                                     "nano may only do what gpt-oss does, see check_faithful).")

    if not reply.reasoning.strip():
        raise refuse("the reasoning is empty, but gpt-oss writes its analysis before it answers or calls")
    if len(reply.tool_calls) > 1:
        raise refuse(f"{len(reply.tool_calls)} tool calls in one generation, but gpt-oss makes one: harmony "
                     "ends a call with <|call|>, a stop token. Split them into consecutive turns, one call and "
                     "its result each")
    offered = offered_functions(api, request)
    for call in reply.tool_calls:
        if call.name not in offered:
            raise refuse(f"a call to {call.name!r}, which the request does not offer (it offers: "
                         f"{', '.join(sorted(offered)) or 'no functions'}). To show an unknown tool, feed the "
                         "loop a constructed turn")
        try:
            arguments = json.loads(call.arguments_text)
        except json.JSONDecodeError:
            arguments = None
        if not isinstance(arguments, dict):
            raise refuse(f"the arguments of {call.name!r} are not a JSON object. To show malformed arguments, "
                         "feed the loop a constructed turn")
    if reply.builtin is not None:
        namespace = reply.builtin.recipient.split(".", 1)[0]
        enabled = {BUILTIN_TOOL_TYPES[t.get("type")] for t in request.get("tools") or ()
                   if t.get("type") in BUILTIN_TOOL_TYPES} if api == "responses" else set()
        if namespace not in enabled:
            raise refuse(f"a call to the built-in {reply.builtin.recipient!r}, which the request does not turn on")
    if reply.final is not None and not reply.final.strip():
        raise refuse("the final answer is empty")
    texts = [reply.reasoning, reply.final or "", *(c.arguments_text for c in reply.tool_calls),
             reply.builtin.text if reply.builtin else ""]
    for text in texts:
        if special := _SPECIAL.search(text):
            raise refuse(f"the text {text[:60]!r} contains {special.group()!r}, which renders "
                         "as a harmony special token that gpt-oss never writes inside a message")


def _with_tools(api: Api, request: dict[str, Any]) -> dict[str, Any]:
    names = request.get("lab_tools")
    if names is None:
        return request
    from gptoss_lab import examples

    request = {k: v for k, v in request.items() if k != "lab_tools"}
    request["tools"] = [
        examples.TOOLS[n].chat_schema() if api == "chat" else examples.TOOLS[n].responses_schema() for n in names
    ]
    return request


def followup(api: Api, request: dict[str, Any], reply: Reply, results: tuple[str, ...],
             user: str | None = None) -> dict[str, Any]:
    """The next request of a conversation, exactly as :func:`gptoss_lab.run_tools` builds it.

    After tool calls: the turn's reasoning and calls, then one result per call.
    After a final answer: the answer (Chat) or the output items (Responses),
    then the next ``user`` message, as ``notebooks/02_apis.ipynb`` does.
    """
    from gptoss_lab.client import ToolCallRequest
    from gptoss_lab.loop import (
        as_input_items,
        chat_assistant_message,
        chat_tool_message,
        responses_call_output,
        responses_output_items,
    )

    calls = [ToolCallRequest(f"call_{i}", c.name, c.arguments_text) for i, c in enumerate(reply.tool_calls)]
    request = json.loads(json.dumps(request))
    if api == "harmony":
        return {**request, "conversation": _harmony_followup(request["conversation"], reply, results, user)}
    if api == "chat":
        if calls:
            request["messages"] += [chat_assistant_message(None, reply.reasoning, calls)]
            request["messages"] += [chat_tool_message(c.id, r) for c, r in zip(calls, results, strict=True)]
        else:
            request["messages"] += [chat_assistant_message(reply.final, None, []), {"role": "user", "content": user}]
    else:
        items = responses_output_items(reply.reasoning, reply.final, calls)
        request["input"] = as_input_items(request["input"]) + items
        request["input"] += [responses_call_output(c.id, r) for c, r in zip(calls, results, strict=True)]
        if not calls:
            request["input"].append({"role": "user", "content": user})
    return request


def _harmony_followup(conversation: dict[str, Any], reply: Reply, results: tuple[str, ...],
                      user: str | None) -> dict[str, Any]:
    """The next harmony conversation, as ``notebooks/05_harmony.ipynb`` builds it.

    The completion is parsed back into messages (as the notebook does with the
    sampled tokens) and appended, then one tool message per call, or the next
    user message.
    """
    from openai_harmony import Author, Conversation, Message, Role

    from gptoss_lab import harmony

    enc = harmony.encoding()
    before = Conversation.from_json(json.dumps(conversation))
    parsed = enc.parse_messages_from_completion_tokens(completion_tokens(reply, enc), Role.ASSISTANT)
    after = [
        Message.from_author_and_content(Author.new(Role.TOOL, f"functions.{call.name}"), result)
        .with_channel("commentary").with_recipient("assistant")
        for call, result in zip(reply.tool_calls, results, strict=True)
    ]
    if not reply.tool_calls:
        after = [Message.from_role_and_content(Role.USER, user or "")]
    return json.loads(Conversation.from_messages([*before.messages, *parsed, *after]).to_json())


def harmony_prompt(request: dict[str, Any], encoding: Any) -> list[int]:
    """The token ids of a ``harmony`` entry's prompt (its conversation, rendered for the assistant)."""
    from openai_harmony import Conversation, Role

    conversation = Conversation.from_json(json.dumps(request["conversation"]))
    return list(encoding.render_conversation_for_completion(conversation, Role.ASSISTANT))


def _answering(reply: Reply, request: dict[str, Any]) -> Reply:
    """Return ``reply`` as an answer to ``request``: one to a JSON schema gets the ``<|constrain|>json`` header."""
    asks_schema = request.get("response_format") or (request.get("text") or {}).get("format")
    return replace(reply, json_final=True) if asks_schema and reply.final is not None else reply


def _expand(item: dict[str, Any]) -> list[Entry]:
    api, request, notebook = item["api"], _with_tools(item["api"], item["request"]), item.get("notebook", "")
    if "turns" not in item:
        reply = _answering(_reply(item["reply"]), request)
        check_faithful(repr(item["id"]), api, request, reply)
        return [Entry(item["id"], api, request, reply, notebook)]
    entries: list[Entry] = []
    opening, given = request, []
    for turn in item.get("given", ()):
        reply = _reply(turn)  # constructed on purpose: not held to check_faithful, never trained
        results = tuple(turn.get("results", ()))
        if not reply.tool_calls or len(results) != len(reply.tool_calls):
            raise ScriptError(f"Entry {item['id']!r}: a given turn makes tool calls and has one result per call")
        given.append((reply, results))
        request = followup(api, request, reply, results)
    turns = item["turns"]
    for number, turn in enumerate(turns, 1):
        reply = _answering(_reply(turn), request)
        check_faithful(f"{item['id']!r} turn {number}", api, request, reply)
        results = tuple(turn.get("results", ()))
        if number < len(turns) and len(results) != len(reply.tool_calls):
            raise ScriptError(f"Entry {item['id']!r} turn {number}: give one result per tool call")
        entry_id = item["id"] if number == 1 else f"{item['id']}#{number}"
        entries.append(Entry(entry_id, api, request, reply, notebook, number, results, tuple(given),
                             opening if given else None))
        if entries[-1].builtin:
            if number < len(turns) and reply.builtin is None:
                raise ScriptError(f"Entry {item['id']!r} turn {number}: only a builtin_call can be followed by "
                                 "more turns in a built-in tool request (vLLM runs that loop itself)")
            continue  # vLLM builds the next prompt inside the same request
        if number < len(turns):
            if not reply.tool_calls and not turn.get("user"):
                raise ScriptError(f"Entry {item['id']!r} turn {number}: a final answer followed by more turns "
                                 "needs the next 'user' message")
            request = followup(api, request, reply, results, turn.get("user"))
    return entries


def load(path: Path | None = None) -> Script:
    """Load the script (the packaged ``script.json`` unless ``path`` is given)."""
    raw = path.read_bytes() if path else (files("gptoss_lab.nano") / "script.json").read_bytes()
    data = json.loads(raw)
    entries: list[Entry] = []
    seen: set[str] = set()
    for item in data["entries"]:
        if item["id"] in seen:
            raise ScriptError(f"Duplicate script entry id {item['id']!r}")
        if "#" in item["id"]:
            raise ScriptError(f"Script entry id {item['id']!r}: '#' is kept for the turns of a loop")
        if item["api"] not in APIS:
            raise ScriptError(f"Entry {item['id']!r}: api must be one of {', '.join(APIS)}")
        seen.add(item["id"])
        entries += _expand(item)
    return Script(tuple(entries), _reply(data["fallback"]), hashlib.sha256(raw).hexdigest())


def builtin_result_tokens(call: BuiltinCall, result: str, encoding: Any) -> list[int]:
    """The tool message vLLM appends after a built-in call, then ``<|start|>assistant``.

    vLLM (``HarmonyContext.call_*_tool``) authors it as the call's recipient, addressed
    to the assistant, on the call's channel, with the tool server's text as is.
    """
    from openai_harmony import Author, Message, Role

    message = (
        Message.from_author_and_content(Author.new(Role.TOOL, call.recipient), result)
        .with_channel("analysis")
        .with_recipient("assistant")
    )
    return [*encoding.render(message), START, ASSISTANT]


def completion_tokens(reply: Reply, encoding: Any) -> list[int]:
    """Return the harmony tokens that follow ``<|start|>assistant`` for ``reply``.

    Analysis message, then the final message ending in ``<|return|>``, or one tool
    call ending in ``<|call|>``, the stop token after which gpt-oss waits for the result.
    """
    from openai_harmony import Message, Role

    messages = [Message.from_role_and_content(Role.ASSISTANT, reply.reasoning).with_channel("analysis")]
    if reply.builtin is not None:
        # Recipient in the header, analysis channel, no content type: the form vLLM re-renders
        # token for token when it builds the next prompt (harmony 0.0.8 and 0.0.11 alike).
        messages.append(
            Message.from_role_and_content(Role.ASSISTANT, reply.builtin.text)
            .with_channel("analysis")
            .with_recipient(reply.builtin.recipient)
        )
    elif reply.final is not None:
        final = Message.from_role_and_content(Role.ASSISTANT, reply.final).with_channel("final")
        messages.append(final.with_content_type("<|constrain|>json") if reply.json_final else final)
    else:
        (call,) = reply.tool_calls  # the loader allows one call per generation, as gpt-oss makes
        messages.append(
            Message.from_role_and_content(Role.ASSISTANT, call.arguments_text)
            .with_channel("commentary")
            .with_recipient(f"functions.{call.name}")
            .with_content_type("<|constrain|>json")
        )
    tokens: list[int] = []
    for message in messages:
        tokens += encoding.render(message)
    if tokens[:2] != [START, ASSISTANT]:
        raise ScriptError(f"harmony rendered an assistant message that does not open with <|start|>assistant "
                          f"(ids {tokens[:2]}): the installed openai-harmony renders differently from the one "
                          "the script was written for. Reinstall the harmony vLLM brings: `make setup`.")
    tokens = tokens[2:]
    if tokens[-1] == END:
        tokens[-1] = RETURN
    return tokens
