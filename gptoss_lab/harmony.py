"""Harmony by hand: the encoding, a token visualiser, and a parser that says what went wrong.

gpt-oss reads and writes the harmony format. ``openai-harmony`` renders a
conversation to token ids and parses completion tokens back into messages;
this module adds what a learner needs around that: the encoding loaded
offline, a coloured view of any token list (role, channel, recipient, special
tokens, ids on hover), a replay through ``StreamableParser`` that shows the
parser's state token by token, and :func:`parse`, which tries the strict parse
first and, when the completion is malformed, parses leniently with a warning
that names the problem. Taught in ``notebooks/05_harmony.ipynb``.
"""

from __future__ import annotations

import functools
import html
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gptoss_lab.errors import HarmonyFormatWarning

_COLORS = {"system": "#7c3aed", "developer": "#2563eb", "user": "#0f766e", "assistant": "#b45309",
           "tool": "#be185d", "analysis": "#6b7280", "commentary": "#c2410c", "final": "#15803d"}


@functools.lru_cache(maxsize=1)
def encoding() -> Any:
    """The gpt-oss harmony encoding, with its vocabulary provisioned offline if needed."""
    from openai_harmony import HarmonyEncodingName, load_harmony_encoding

    from gptoss_lab import vocab

    vocab.ensure()
    return load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)


def stop_tokens() -> list[int]:
    """The tokens that end an assistant turn: ``<|return|>`` and ``<|call|>``."""
    return list(encoding().stop_tokens_for_assistant_actions())


@dataclass(frozen=True)
class Parsed:
    """Messages parsed from completion tokens, and whether the strict parse accepted them."""

    messages: list[Any]
    strict: bool
    problem: str | None = None


def problems(tokens: Sequence[int]) -> list[str]:
    """What is wrong with completion ``tokens`` as harmony (empty when nothing is).

    openai-harmony's strict parser accepts some broken completions (a message
    without a channel, a stray special token inside the content); these checks
    name them, together with truncation.
    """
    enc = encoding()
    name = {t: enc.decode([t]) for t in set(tokens) if enc.is_special_token(t)}
    if not tokens:
        return ["the completion is empty"]
    found: list[str] = []
    if name.get(tokens[-1]) not in ("<|return|>", "<|call|>", "<|end|>"):
        found.append(f"it is truncated: it stops inside a message (last token {enc.decode([tokens[-1]])!r}) "
                     "instead of at <|return|>, <|call|> or <|end|>; raise max_tokens")
    part, number, header_has_channel = "header", 1, False
    for position, token in enumerate(tokens):
        special = name.get(token)
        if special is None:
            continue
        if part == "between":
            if special == "<|start|>":
                part, header_has_channel = "header", False
            else:
                found.append(f"unexpected {special} at token {position}, between messages (expected <|start|>)")
        elif part == "header":
            if special == "<|channel|>":
                header_has_channel = True
            elif special == "<|message|>":
                if not header_has_channel:
                    found.append(f"message {number} has no channel: gpt-oss always writes <|channel|>analysis, "
                                 "commentary or final before <|message|>")
                part = "content"
            elif special != "<|constrain|>":
                found.append(f"unexpected {special} at token {position}, in the header of message {number}")
        elif special in ("<|end|>", "<|return|>", "<|call|>"):
            part, number = "between", number + 1
        else:
            found.append(f"unexpected {special} at token {position}, inside the content of message {number}")
    return found


def parse(tokens: Sequence[int], role: Any = None) -> Parsed:
    """Parse completion ``tokens`` (what follows ``<|start|>assistant``) into messages.

    Well-formed tokens get the strict parse. Otherwise a lenient parse recovers
    what it can (if even that fails, the messages completed before the problem)
    and a :class:`HarmonyFormatWarning` names each problem.
    """
    from openai_harmony import HarmonyError, Role

    role = Role.ASSISTANT if role is None else role
    enc, tokens = encoding(), list(tokens)
    found = problems(tokens)
    messages = None
    try:
        messages = enc.parse_messages_from_completion_tokens(tokens, role, strict=True)
    except HarmonyError as exc:
        found.append(f"the strict parser says: {exc}")
    if not found and messages is not None:
        return Parsed(messages, True)
    if messages is None:
        try:
            messages = enc.parse_messages_from_completion_tokens(tokens, role, strict=False)
        except HarmonyError:
            enders = {*stop_tokens(), *enc.encode("<|end|>", allowed_special="all")}
            ends = [i for i, t in enumerate(tokens) if t in enders]
            keep = tokens[: ends[-1] + 1] if ends else []
            messages = enc.parse_messages_from_completion_tokens(keep, role, strict=False) if keep else []
            found.append(f"the last {len(tokens) - len(keep)} token(s), after the last complete message, were dropped")
    problem = "; ".join(found)
    warnings.warn(f"The completion is not well-formed harmony: {problem}. Parsed leniently: {len(messages)} "
                  "message(s) recovered; check them before trusting them.", HarmonyFormatWarning, stacklevel=2)
    return Parsed(messages, False, problem)


def answer(messages: Sequence[Any]) -> str | None:
    """The text of the last ``final``-channel message, or None when the model gave no final answer.

    With ``GPTOSS_LAB_ANSWER_LOG`` set (the test suite sets it), the answer is also appended
    there, so the drift check (:mod:`gptoss_lab.drift`) sees answers sampled in-process.
    """
    from gptoss_lab import drift

    finals = [m for m in messages if m.channel == "final"]
    text = "".join(part.text for part in finals[-1].content) if finals else None
    drift.record_answer(text)
    return text


def describe(tokens: Sequence[int]) -> str:
    """One sentence saying what a completion did: its messages' channels and recipients, and how it ended.

    Read off the tokens, so it holds for any model: a tool call ends with ``<|call|>``, a
    final answer with ``<|return|>``, and a completion cut off by ``max_tokens`` with neither.
    """
    tokens = list(tokens)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HarmonyFormatWarning)
        messages = parse(tokens).messages
    path = " -> ".join(f"{m.channel}" + (f" to {m.recipient}" if m.recipient else "") for m in messages)
    last = encoding().decode(tokens[-1:]) if tokens else ""
    if last == "<|call|>":
        recipient = messages[-1].recipient if messages else None
        ending = f"it stopped with <|call|>: a tool call to {recipient}, for the caller to run"
    elif last == "<|return|>":
        ending = "it stopped with <|return|>: a final answer"
    else:
        ending = f"it ended without <|return|> or <|call|> after {len(tokens)} tokens: max_tokens cut it off"
    return f"{len(messages)} message(s) ({path or 'none'}); {ending}"


@dataclass(frozen=True)
class _Piece:
    token: int
    text: str
    special: bool
    part: str
    """``header`` (role, channel, recipient), ``content`` or ``special``."""
    style: str
    """Role or channel name, for the colour."""


def _pieces(tokens: Sequence[int]) -> list[_Piece]:
    enc = encoding()
    out: list[_Piece] = []
    part, style, header = "content", "assistant", ""
    for token in tokens:
        special = enc.is_special_token(token)
        text = enc.decode([token])
        if special:
            if text == "<|start|>":
                part, header = "header", ""
            elif text == "<|channel|>":
                part = "header"
            elif text == "<|message|>":
                part = "content"
                style = next((c for c in ("analysis", "commentary", "final") if c in header), header.split()[0]
                             if header.split() else style)
            elif text in ("<|end|>", "<|return|>", "<|call|>"):
                part = "content"
            out.append(_Piece(token, text, True, "special", style))
            continue
        if part == "header":
            header += text
            role = header.split()[0] if header.split() else style
            style = role.split("<")[0] if role in _COLORS or role.startswith("functions.") else style
        out.append(_Piece(token, text, False, part, style))
    return out


class TokenView:
    """A token list shown as coloured harmony: ``lab.harmony.show_tokens(ids)``."""

    def __init__(self, tokens: Sequence[int], title: str = "") -> None:
        self.tokens = list(tokens)
        self.title = title

    def __str__(self) -> str:
        return encoding().decode(self.tokens)

    def __repr__(self) -> str:
        return f"{self.title + ': ' if self.title else ''}{len(self.tokens)} tokens\n{self}"

    def _repr_html_(self) -> str:
        spans = []
        for piece in _pieces(self.tokens):
            color = _COLORS.get(piece.style, "#b45309" if piece.style.startswith("functions") else "#111827")
            tip = f"id {piece.token}"
            if piece.special:
                spans.append(f"<span title='{tip}' style='background:#e5e7eb;color:#374151;border-radius:3px;"
                             f"padding:0 2px;font-size:0.85em'>{html.escape(piece.text)}</span>")
            else:
                weight = "font-weight:600;" if piece.part == "header" else ""
                spans.append(f"<span title='{tip}' style='color:{color};{weight}'>{html.escape(piece.text)}</span>")
        title = f"<div style='color:#6b7280'>{html.escape(self.title)} ({len(self.tokens)} tokens; hover for ids)</div>"
        return (f"{title}<div style='font-family:monospace;white-space:pre-wrap;line-height:1.5;"
                f"border:1px solid #e5e7eb;padding:6px'>{''.join(spans)}</div>")


def show_tokens(tokens: Sequence[int], title: str = "") -> TokenView:
    """Return a view of ``tokens`` that renders as coloured harmony in Jupyter (text elsewhere)."""
    return TokenView(tokens, title)


@dataclass(frozen=True)
class ParserState:
    """What ``StreamableParser`` knew after one token."""

    token: int
    channel: str | None
    recipient: str | None
    content: str
    messages: int


def replay(tokens: Sequence[int], *, delay: float = 0.0, show: bool = True) -> list[ParserState]:
    """Feed completion ``tokens`` to ``StreamableParser`` one at a time, showing its state live.

    This is how a streaming client follows gpt-oss: the parser knows the channel
    and recipient as soon as the header is complete, before the content arrives.
    Returns the state after every token.
    """
    from openai_harmony import Role, StreamableParser

    parser = StreamableParser(encoding(), role=Role.ASSISTANT)
    states: list[ParserState] = []
    handle = None
    from gptoss_lab.jupyter import in_jupyter

    if show and in_jupyter():
        from IPython.display import HTML, display

        handle = display(HTML(""), display_id=True)
    for token in tokens:
        parser.process(token)
        state = ParserState(token, parser.current_channel, parser.current_recipient, parser.current_content or "",
                            len(parser.messages))
        states.append(state)
        if handle is not None:
            handle.update(HTML(_state_html(state)))
        elif show:
            print(f"{state.messages} done | channel={state.channel} recipient={state.recipient} "
                  f"| {state.content[-60:]!r}")
        if delay:
            time.sleep(delay)
    return states


def _state_html(state: ParserState) -> str:
    color = _COLORS.get(state.channel or "", "#111827")
    return (f"<div style='font-family:monospace'>messages done: {state.messages} &middot; channel: "
            f"<b style='color:{color}'>{html.escape(str(state.channel))}</b> &middot; recipient: "
            f"{html.escape(str(state.recipient))}</div><div style='white-space:pre-wrap;color:{color}'>"
            f"{html.escape(state.content)}</div>")
