"""Render every request nano must answer with the vLLM that will serve it.

A memorised model is brittle to any difference in the prompt, so the prompts
are not rebuilt by hand: vLLM's CPU-only render server (``vllm launch
render``, no weights needed) turns each request into the exact token ids the
serving path will feed the model.

vLLM releases whose render server has no Responses endpoint (0.26 has only
``/v1/chat/completions/render``) render Responses requests through a full
server on an untrained nano instead: at DEBUG level it logs each request's
prompt token ids, and a one-token request is enough to make it render.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from gptoss_lab import process
from gptoss_lab.errors import NanoBuildError
from gptoss_lab.models import NANO_CONTEXT, NANO_DATE
from gptoss_lab.nano import script as nano_script
from gptoss_lab.nano.script import Reply, Script
from gptoss_lab.server import VLLMServer

SERVED_DATE = NANO_DATE
"""The date nano's server writes into the system message (``VLLM_SYSTEM_START_DATE``)."""
EXTRA_DATES = ("2025-08-05", "2027-03-14")
"""Other dates nano is trained on, so a server started without the pin still replays."""
DATED = ("01_serve", "tests")
"""Notebooks whose entries are also trained with :data:`EXTRA_DATES`.

Every server the lab starts pins the date, so the variants only matter to someone
serving nano by hand; they are kept to the first notebook's requests because each
one adds a sequence to every training step."""

_WORDS = (
    "apple river quantum kernel tensor garden music history ocean planet poem recipe train python "
    "cloud mountain coffee language story engine number bridge winter robot paint market doctor "
    "library forest galaxy chess bicycle theory window puzzle weather capital country city king "
    "computer internet battery moon sun star desert island volcano tiger eagle bread cheese soup "
    "football guitar piano movie book teacher student school exam money bank tax law election "
    "virus medicine heart brain sleep dream color light sound speed time year birthday friend"
).split()
_FRAMES = (
    "Tell me about {}.", "What is {}?", "Write a haiku about {}.", "Explain {} to a child.",
    "{}", "Why does {} matter?", "Translate '{}' into French.", "List three facts about {}.",
    "What is the {} of {}?", "How do I fix my {}?", "Who invented the {}?", "In one sentence, what is {}?",
    "What is the {} in {} right now?", "Can you help me with {} and {}?", "Summarize the history of {}.",
    "Is {} better than {}?", "How many {} are there in {}?", "Hi! {}", "Give me a recipe with {}.",
)


NEAR_MISSES = 6
"""Near misses trained per scripted entry (:func:`near_misses`), beside the fallback requests."""


@dataclass(frozen=True)
class Example:
    """One training sequence: the rendered prompt and the reply nano must produce."""

    prompt: list[int]
    reply: Reply
    source: str
    """Script entry id, or ``fallback`` for a request outside the script."""


def random_prompt(rng: random.Random) -> str:
    frame = rng.choice(_FRAMES)
    slots = frame.count("{}")
    return frame.format(*(" ".join(rng.sample(_WORDS, rng.randint(1, 3))) for _ in range(slots)))


def _user_text(api: str, request: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """The dict and key holding a request's last user words, or None when it has none to edit.

    A conversation that ends in a tool result has none: code writes tool results, nobody
    retypes them, and a one-word change there is not a request someone would send.
    """
    if api == "chat":
        last = request["messages"][-1]
        return (last, "content") if last.get("role") == "user" and isinstance(last.get("content"), str) else None
    if isinstance(request.get("input"), str):
        return request, "input"
    return None


def _harmony_user_text(request: dict[str, Any]) -> str | None:
    """The text of a ``harmony`` entry's last message when a user wrote it."""
    messages = request["conversation"]["messages"]
    if not messages or messages[-1].get("role") != "user":
        return None
    parts = messages[-1].get("content")
    if isinstance(parts, str):
        return parts
    texts = [part.get("text") for part in parts or () if isinstance(part, dict) and part.get("type") == "text"]
    return " ".join(t for t in texts if t) or None


def entry_text(entry: nano_script.Entry) -> str | None:
    """The last user message of a first-turn entry, whatever its API; None when there is none."""
    if entry.api == "harmony":
        return _harmony_user_text(entry.request)
    found = _user_text(entry.api, entry.request)
    return str(found[0][found[1]]) if found is not None else None


def script_words(script: Script) -> list[str]:
    """The words of the script's user messages: near misses built from them hold no unknown token."""
    words: set[str] = set()
    for entry in script.entries:
        if (text := entry_text(entry)) is not None:
            words.update(text.split())
    return sorted(words)


_NUMBER_WORDS = frozenset("one two three four five six seven eight nine ten".split())


def _is_name(word: str) -> bool:
    """A word that names something (a city, a model, a number): "Berlin", "gpt-oss-120b", "100"."""
    core = word.strip(".,?!'\"")
    return bool(core) and (core[0].isupper() or any(c.isdigit() for c in core) or core in _NUMBER_WORDS)


def _edit_words(
    rng: random.Random, words: list[str], known: list[str], names: list[str], *, typos: bool = True
) -> None:
    """Change ``words`` in place by one edit (see :func:`near_misses`)."""
    edit = rng.choice(("replace", "insert", "drop", "append", "typo", "known", "known", "known", "name", "clause"))
    if edit == "typo" and not typos:
        edit = "known"
    where = rng.randrange(len(words))
    named = [i for i, word in enumerate(words) if i > 0 and _is_name(word)]
    others = [w for w in names if w not in words]
    if edit == "name" and named and others:  # another entry's city, model or number in its place
        words[rng.choice(named)] = rng.choice(others)
    elif edit == "clause" and len(words) > 2:  # the words before a comma, or the first or last one, left out
        comma = next((i for i, word in enumerate(words[:-1]) if word.endswith(",")), None)
        words[:] = words[comma + 1:] if comma is not None else (words[1:] if rng.random() < 0.5 else words[:-1])
    elif edit in ("known", "name", "clause"):
        replacement = rng.choice(known)
        if replacement == words[where]:
            words.insert(where, replacement)
        else:
            words[where] = replacement
    elif edit == "typo" and len(words[where]) > 3:  # two letters swapped, as in "helfpul"
        word, at = words[where], rng.randrange(1, len(words[where]) - 2)
        words[where] = word[:at] + word[at + 1] + word[at] + word[at + 2:]
    elif edit in ("replace", "typo") or (edit == "drop" and len(words) < 3):
        words[where] = rng.choice(_WORDS)
    elif edit == "insert":
        words.insert(where, rng.choice(_WORDS))
    elif edit == "drop":
        del words[where]
    else:
        words.append(rng.choice(_WORDS) + "?")


_EFFORTS = (None, "low", "medium", "high")


def _edit_context(rng: random.Random, api: str, request: dict[str, Any], known: list[str], names: list[str]) -> None:
    """Change one thing around the user's words in place: the reasoning effort, or the system message.

    System messages and instructions get word edits but no typos: the cookbook's
    "helfpul" stays a held-out case for ``benchmarks/fallback.py``.
    """
    if api == "chat":
        effort = request.get("reasoning_effort")
        messages = request["messages"]
        system = messages[0] if messages and messages[0].get("role") == "system" else None
    else:
        effort = (request.get("reasoning") or {}).get("effort")
        system = request if "instructions" in request else None
    if rng.random() < 0.5:
        new = rng.choice([e for e in _EFFORTS if e != effort])
        key = "reasoning_effort" if api == "chat" else "reasoning"
        request.pop(key, None)
        if new is not None:
            request[key] = new if api == "chat" else {"effort": new}
        return
    field = "content" if api == "chat" else "instructions"
    if system is None:
        text = rng.choice([t for t in _INSTRUCTIONS if "helfpul" not in t])  # the misspelt one is held out
        if api == "chat":
            request["messages"] = [{"role": "system", "content": text}, *messages]
        else:
            request["instructions"] = text
    elif rng.random() < 0.3:
        if api == "chat":
            messages.remove(system)
        else:
            del request["instructions"]
    elif (words := str(system[field]).split()):
        _edit_words(rng, words, known, names, typos=False)
        system[field] = " ".join(words)


def near_misses(script: Script, per_entry: int, seed: int = 1) -> list[tuple[str, dict[str, Any]]]:
    """Return scripted requests with one word of the last user message, or one thing around it, changed.

    They teach nano that only the exact scripted request gets the scripted reply. Most
    word edits use only the script's own words (dropped, put in from another entry,
    another entry's city, model or number in place of a name, a leading clause or an end
    word left out): a new word is an unknown token and easy to tell apart, these are the
    hard cases. About one near miss in three keeps the words and changes the reasoning
    effort or the system message. Word order
    alone is not varied: a build with swapped-word near misses had not converged after 300
    steps (worst margin -7.5 logits), and people retype a question, they do not permute it.
    """
    rng = random.Random(seed)
    known = script_words(script)
    names = [word for word in known if _is_name(word)]
    out: list[tuple[str, dict[str, Any]]] = []
    for entry in script.entries:
        if entry.turn > 1 or entry.api == "harmony":  # follow-ups differ from their first turn already
            continue
        for _ in range(per_entry):
            request = json.loads(json.dumps(entry.request))
            if entry.builtin:
                # A built-in tool prompt is ~500 tokens of tool descriptions before the user's words:
                # two layers never told a one-word change there from the scripted request (the margin
                # of the pair stayed at zero for 250 steps). The edit is trained without the tools,
                # the way a learner retyping 08's question elsewhere would send it.
                request.pop("tools", None)
            found = _user_text(entry.api, request)
            if found is None:
                continue
            holder, key = found
            words = str(holder[key]).split()
            if not words:
                continue
            if not entry.builtin and rng.random() < 0.35:
                _edit_context(rng, entry.api, request, known, names)
            else:
                _edit_words(rng, words, known, names)
                holder[key] = " ".join(words)
            out.append((entry.api, request))
    return out


def invented_tool(rng: random.Random, api: str) -> dict[str, Any]:
    """A function tool the script never offers (a learner's own), in ``api``'s request shape."""
    name = "_".join(rng.sample(_WORDS, 2))
    spec = {"name": name, "description": random_prompt(rng),
            "parameters": {"type": "object", "properties": {rng.choice(_WORDS): {"type": "string"}}}}
    return {"type": "function", "function": spec} if api == "chat" else {"type": "function", **spec}


_INSTRUCTIONS = ("You are a helpful assistant.", "You are a helfpul assistant.", "Answer in one short sentence.",
                 "You only respond in haikus.")
"""System messages and instructions of the unscripted requests (the cookbook's "helfpul" typo among them)."""
_ROLES = (
    "You are a {} expert.", "Always mention {}.", "Reply like a {}.", "Keep it about {}.", "Be brief.",
    "Use simple words.", "Answer in {} words or fewer.", "You are {}, a {} assistant.", "Never talk about {}.",
)


def _instructions(rng: random.Random) -> str:
    """A system message or instructions: one of the usual ones, or a learner's own."""
    if rng.random() < 0.5:
        return rng.choice(_INSTRUCTIONS)
    frame = rng.choice(_ROLES)
    return frame.format(*(rng.choice(_WORDS) for _ in range(frame.count("{}"))))


def _function_tools(script: Script, api: str) -> list[Any]:
    return [e.request["tools"] for e in script.entries if e.api == api and e.request.get("tools") and not e.builtin]


def _around(
    rng: random.Random, text: str, chat_tools: list[Any], responses_tools: list[Any]
) -> tuple[str, dict[str, Any]]:
    """``text`` as the user's words of a request of a random shape: API, system message, effort, tools."""
    effort = rng.choice(["low", "medium", "high"])
    if rng.random() < 0.55:
        messages = [{"role": "system", "content": _instructions(rng)}] if rng.random() < 0.45 else []
        body: dict[str, Any] = {"messages": [*messages, {"role": "user", "content": text}]}
        if rng.random() < 0.5:
            body["reasoning_effort"] = effort
        if chat_tools and rng.random() < 0.35:
            body["tools"] = rng.choice(chat_tools)
        elif rng.random() < 0.1:
            body["tools"] = [invented_tool(rng, "chat")]
        return "chat", body
    body = {"input": text}
    if rng.random() < 0.6:
        body["reasoning"] = {"effort": effort}
    if rng.random() < 0.45:
        body["instructions"] = _instructions(rng)
    if responses_tools and rng.random() < 0.3:
        body["tools"] = rng.choice(responses_tools)
    elif rng.random() < 0.1:
        body["tools"] = [invented_tool(rng, "responses")]
    return "responses", body


def fallback_requests(script: Script, count: int, seed: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """Return ``count`` (api, request) pairs outside the script, for the fallback reply.

    Both APIs, with and without a system message or instructions, reasoning efforts, and
    the lab's tools offered, so that no shape of request is left for which nano only ever
    saw scripted replies.
    """
    rng = random.Random(seed)
    chat_tools, responses_tools = _function_tools(script, "chat"), _function_tools(script, "responses")
    return [_around(rng, random_prompt(rng), chat_tools, responses_tools) for _ in range(count)]


ELSEWHERE = 2
"""Requests per first-turn entry that carry its words in another shape (:func:`elsewhere`)."""


def elsewhere(script: Script, per_entry: int, seed: int = 2) -> list[tuple[str, dict[str, Any]]]:
    """Return each first-turn entry's exact words in requests of other shapes, for the fallback.

    A scripted question is scripted only with its own API, system message, effort and
    tools: 05's "What is the capital of France?" sent through Chat Completions, or 08's
    browsing question without the browser tool, is a request outside the script. Requests
    that render to a scripted prompt are dropped by :func:`examples`.
    """
    rng = random.Random(seed)
    chat_tools, responses_tools = _function_tools(script, "chat"), _function_tools(script, "responses")
    out: list[tuple[str, dict[str, Any]]] = []
    for entry in script.entries:
        if entry.turn > 1 or (text := entry_text(entry)) is None:
            continue
        out.extend(_around(rng, text, chat_tools, responses_tools) for _ in range(per_entry))
        if entry.api == "harmony":
            # 05's prompts differ from a plain Chat or Responses request by little more than the
            # reasoning effort: every effort is taught (one that renders the same prompt is dropped).
            for effort in _EFFORTS:
                chat: dict[str, Any] = {"messages": [{"role": "user", "content": text}]}
                responses: dict[str, Any] = {"input": text}
                if effort:
                    chat["reasoning_effort"], responses["reasoning"] = effort, {"effort": effort}
                out += [("chat", chat), ("responses", responses)]
    return out


def unscripted(script: Script, fallbacks: int) -> list[tuple[str, dict[str, Any]]]:
    """Every request the build teaches the fallback reply: random ones, near misses, scripted words elsewhere."""
    return fallback_requests(script, fallbacks) + near_misses(script, NEAR_MISSES) + elsewhere(script, ELSEWHERE)


@contextmanager
def render_server(model_dir: Path, extra_args: Sequence[str] = (), log_dir: Path | None = None) -> Iterator[VLLMServer]:
    """Run vLLM's render server on ``model_dir`` (tokenizer and config only) for the block.

    ``extra_args``: ``--tool-server ...`` when the script has built-in tool requests, whose
    system message lists the tools those servers describe. ``log_dir``: where its log is
    written (default: beside ``model_dir``; a build passes a folder that outlives a failure).
    """
    server = VLLMServer(
        str(model_dir),
        args=["--max-model-len", str(NANO_CONTEXT), "--served-model-name", "nano-render", *extra_args],
        port=process.free_port(),
        subcommand=("launch", "render"),
        env={"VLLM_SYSTEM_START_DATE": SERVED_DATE},
        log_path=(log_dir or model_dir.parent) / "render-server.log",
    )
    with server.running(timeout=600):
        yield server


Renderer = Callable[[str, dict[str, Any]], list[int]]
"""``render_prompt(api, request) -> prompt token ids``."""


def render_with_server(server: VLLMServer, api: str, request: dict[str, Any]) -> list[int]:
    """Return the prompt token ids vLLM renders for one request."""
    path = "chat/completions/render" if api == "chat" else "responses/render"
    response = httpx.post(f"{server.url}/{path}", json={"model": "nano-render", **request}, timeout=60.0)
    if response.status_code != 200:
        raise NanoBuildError(
            f"vLLM could not render a {api} request ({response.status_code}): {response.text[:500]}\nRequest: {request}"
        )
    return list(response.json()["token_ids"])


def has_responses_render(server: VLLMServer) -> bool:
    """Whether this vLLM's render server renders Responses requests (0.32 does, 0.26 does not)."""
    response = httpx.post(f"{server.url}/responses/render", json={"model": "nano-render", "input": "hi"}, timeout=60.0)
    return response.status_code != 404


@contextmanager
def full_server(
    model_dir: Path, *, log_path: Path, debug: bool = False, eager: bool = False, extra_args: Sequence[str] = ()
) -> Iterator[VLLMServer]:
    """Run vLLM on ``model_dir`` (weights needed) with the nano preset's flags, for the block.

    ``eager`` skips graph capture and compilation (a one-off server that only renders);
    ``debug`` logs each request's prompt token ids.
    """
    from gptoss_lab import presets

    preset = presets.for_machine("nano")
    env = {**preset.env, "VLLM_SYSTEM_START_DATE": SERVED_DATE}
    args = [*preset.flags(), *extra_args]
    if eager and "--enforce-eager" not in args:
        args.append("--enforce-eager")
    if debug:
        env["VLLM_LOGGING_LEVEL"] = "DEBUG"
        args.append("--enable-log-requests")
    server = VLLMServer(str(model_dir), args=args, port=process.free_port(), env=env, log_path=log_path)
    with server.running(timeout=900):
        yield server


def log_render_server(
    model_dir: Path, extra_args: Sequence[str] = (), log_dir: Path | None = None
) -> AbstractContextManager[VLLMServer]:
    """A full server on ``model_dir`` (trained or not) that logs each request's prompt ids."""
    return full_server(model_dir, log_path=(log_dir or model_dir.parent) / "log-render-server.log", debug=True,
                       eager=True, extra_args=extra_args)


_LOGGED_IDS = re.compile(r"prompt_token_ids: \[([\d, ]*)\]")


def render_from_log(server: VLLMServer, api: str, request: dict[str, Any]) -> list[int]:
    """Return the prompt token ids a full server logs for one request, sent for a single token."""
    log = Path(str(server.log_path))
    offset = log.stat().st_size
    limit = {"max_tokens": 1} if api == "chat" else {"max_output_tokens": 1}
    path = "chat/completions" if api == "chat" else "responses"
    body = {"model": server.model_id(), **request, **limit}
    response = httpx.post(f"{server.url}/{path}", json=body, timeout=120.0)
    if response.status_code != 200:
        raise NanoBuildError(
            f"vLLM could not run a {api} request ({response.status_code}): {response.text[:500]}\nRequest: {request}"
        )
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        with log.open(encoding="utf-8", errors="replace") as handle:
            handle.seek(offset)
            found = _LOGGED_IDS.search(handle.read())
        if found:
            return [int(t) for t in found.group(1).split(",") if t.strip()]
        time.sleep(0.2)
    raise NanoBuildError(
        f"vLLM did not log the prompt token ids of a {api} request (is VLLM_LOGGING_LEVEL=DEBUG honoured?). "
        f"Server log: {log}"
    )


def renderer(server: VLLMServer, responses: VLLMServer | None = None) -> Renderer:
    """Render Chat requests with the render server; Responses too, or through ``responses``' log."""

    def run(api: str, request: dict[str, Any]) -> list[int]:
        if api == "responses" and responses is not None:
            return render_from_log(responses, api, request)
        return render_with_server(server, api, request)

    return run


def with_date(prompt: list[int], date: str, encoding: Any) -> list[int]:
    """Return ``prompt`` with the system message's current date replaced by ``date``."""
    text = encoding.decode(prompt)
    changed = re.sub(r"Current date: \d{4}-\d{2}-\d{2}", f"Current date: {date}", text, count=1)
    return list(encoding.encode(changed, allowed_special="all"))


BuiltinRunner = Callable[[str, "nano_script.BuiltinCall"], str]
"""``run(chain_id, call) -> the tool server's text``; calls of one chain share a browsing session."""


def examples(
    render_prompt: Renderer, script: Script, encoding: Any, fallbacks: int, run_builtin: BuiltinRunner | None = None
) -> list[Example]:
    """Render every scripted request (with date variations) and ``fallbacks`` unscripted ones.

    A built-in tool request's later turns have no request of their own: vLLM re-renders
    the conversation after each tool result, which for the calls nano makes equals the
    previous prompt, the previous completion, the tool message and ``<|start|>assistant``.
    ``run_builtin`` runs each scripted call on the real tool server to get that message's text.
    """
    out: list[Example] = []
    scripted: dict[tuple[int, ...], Example] = {}
    previous: list[int] = []
    for entry in script.entries:
        if entry.api == "harmony":
            prompt = nano_script.harmony_prompt(entry.request, encoding)
        elif entry.builtin and entry.turn > 1:
            before = script.entry(entry.chain if entry.turn == 2 else f"{entry.chain}#{entry.turn - 1}")
            call = before.reply.builtin
            if run_builtin is None or call is None:
                raise NanoBuildError(f"Script entry {entry.id!r} follows a built-in tool call: the build needs the "
                                     "tool servers running to render it.")
            result = run_builtin(entry.chain, call)
            prompt = [*previous, *nano_script.completion_tokens(before.reply, encoding),
                      *nano_script.builtin_result_tokens(call, result, encoding)]
        else:
            prompt = render_prompt(entry.api, entry.request)
        previous = prompt
        dates = EXTRA_DATES if entry.notebook in DATED else ()
        for variant in (prompt, *(with_date(prompt, d, encoding) for d in dates)):
            example = Example(variant, entry.reply, entry.id)
            earlier = scripted.get(tuple(variant))
            if earlier is not None and earlier.reply != entry.reply:
                raise NanoBuildError(
                    f"Script entries {earlier.source!r} and {entry.id!r} render to the same prompt but "
                    "ask for different replies; change one request or give them the same reply."
                )
            scripted[tuple(variant)] = example
            out.append(example)
    for api, request in unscripted(script, fallbacks):
        prompt = render_prompt(api, request)
        if tuple(prompt) not in scripted:
            out.append(Example(prompt, script.fallback, "fallback"))
    return out
