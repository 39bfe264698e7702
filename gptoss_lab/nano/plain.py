"""gpt-oss-nano-plain: a valid harmony model that answers every request with one sentence.

It stands for "a model that did something else": it never calls a tool and never
follows the script, so a notebook that passes against it and against scripted nano
depends on nothing the model chooses. It is trained like nano, on prompts that
openai-harmony renders from generated conversations (no vLLM needed), with every
input token outside its own reply blanked to one zero embedding: the model cannot
react to the words of a prompt, only to where its reply has got to.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gptoss_lab import harmony_pkg, vocab
from gptoss_lab.errors import NanoBuildError
from gptoss_lab.nano import model as nano_model
from gptoss_lab.nano import render, tokenizer
from gptoss_lab.nano import train as nano_train
from gptoss_lab.nano.render import Example
from gptoss_lab.nano.script import START, Reply, completion_tokens

RECIPE_VERSION = 1
"""Bump when what the plain build produces changes."""
REPLY = Reply(
    reasoning="I answer every request with the same sentence.",
    final="I am gpt-oss-nano-plain, a test model: I answer every request with this sentence and call no tools.",
)
"""What gpt-oss-nano-plain answers, whatever it is asked."""
PROMPTS = 48
"""Generated conversations it is trained on."""

_DATES = ("2025-08-05", "2026-01-01", "2026-11-27", "2027-03-14")


def _function_tools() -> list[Any]:
    from openai_harmony import ToolDescription

    from gptoss_lab import examples

    return [ToolDescription.new(t.name, t.description, parameters=t.parameters) for t in examples.TOOLS.values()]


def conversations(count: int = PROMPTS, seed: int = 0) -> list[Any]:
    """Generate ``count`` harmony conversations of the shapes the lab sends, ending before the assistant's turn.

    System messages with other dates and efforts, built-in tools or none; developer
    instructions and function tools or none; one to three user turns, with earlier
    assistant replies, tool calls and tool results in between.
    """
    from openai_harmony import (
        Author,
        Conversation,
        DeveloperContent,
        Message,
        ReasoningEffort,
        Role,
        SystemContent,
        ToolNamespaceConfig,
    )

    rng = random.Random(seed)
    functions = _function_tools()
    efforts = (ReasoningEffort.LOW, ReasoningEffort.MEDIUM, ReasoningEffort.HIGH)
    out = []
    for _ in range(count):
        system = SystemContent.new().with_conversation_start_date(rng.choice(_DATES))
        system = system.with_reasoning_effort(rng.choice(efforts))
        if rng.random() < 0.2:
            system = system.with_tools(ToolNamespaceConfig.browser())
        if rng.random() < 0.2:
            system = system.with_tools(ToolNamespaceConfig.python())
        messages = [Message.from_role_and_content(Role.SYSTEM, system)]
        developer = DeveloperContent.new()
        if rng.random() < 0.4:
            developer = developer.with_instructions(rng.choice(
                ("You are a helpful assistant.", "Answer in one short sentence.", "You are a helfpul assistant.")))
        tools = rng.sample(functions, rng.randint(1, len(functions))) if rng.random() < 0.5 else []
        if tools:
            developer = developer.with_function_tools(tools)
        if tools or rng.random() < 0.5:
            messages.append(Message.from_role_and_content(Role.DEVELOPER, developer))
        for turn in range(rng.randint(1, 3)):
            messages.append(Message.from_role_and_content(Role.USER, render.random_prompt(rng)))
            if turn == 0 and tools and rng.random() < 0.5:
                tool = rng.choice(tools)
                messages += [
                    Message.from_role_and_content(Role.ASSISTANT, "Call the tool.").with_channel("analysis"),
                    Message.from_role_and_content(Role.ASSISTANT, '{"city": "Berlin"}').with_channel("commentary")
                    .with_recipient(f"functions.{tool.name}").with_content_type("<|constrain|>json"),
                    Message.from_author_and_content(Author.new(Role.TOOL, f"functions.{tool.name}"),
                                                    rng.choice(("18", '{"ok": true}', "error: no such city")))
                    .with_channel("commentary").with_recipient("assistant"),
                ]
                break  # the model answers the tool result next
            if turn < 2 and rng.random() < 0.5:
                final = REPLY.final if rng.random() < 0.5 else render.random_prompt(rng)
                messages.append(Message.from_role_and_content(Role.ASSISTANT, final).with_channel("final"))
            else:
                break
        out.append(Conversation.from_messages(messages))
    return out


def examples(encoding: Any, count: int = PROMPTS) -> list[Example]:
    """The training sequences: each generated conversation rendered for the assistant, then :data:`REPLY`."""
    from openai_harmony import Role

    return [
        Example(list(encoding.render_conversation_for_completion(c, Role.ASSISTANT)), REPLY, "plain")
        for c in conversations(count)
    ]


def known_inputs(encoding: Any) -> set[int]:
    """Input tokens the model may tell apart: its reply's own tokens and ``<|start|>``; all others read as blank."""
    return {START, *completion_tokens(REPLY, encoding)}


def cache_key() -> str:
    """The plain build's cache key: its recipe, its reply and the versions that shape its tokens."""
    blob = json.dumps({"recipe": RECIPE_VERSION, "reply": [REPLY.reasoning, REPLY.final], "prompts": PROMPTS,
                       "harmony": harmony_pkg.identity(), **_versions()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _versions() -> dict[str, str]:
    from importlib import metadata

    try:
        return {"transformers": metadata.version("transformers")}
    except metadata.PackageNotFoundError:
        return {"transformers": "missing"}


def _root() -> Path:
    from gptoss_lab.config import default_cache_dir

    return default_cache_dir() / "nano"


def path(*, build_if_missing: bool = True) -> Path:
    """Return the folder of a ready gpt-oss-nano-plain checkpoint, building it (under a minute) if needed."""
    target = _root() / f"plain-{cache_key()}"
    if (target / "nano.json").exists():
        return target
    if not build_if_missing:
        raise NanoBuildError(f"gpt-oss-nano-plain is not built ({target}). Run `gptoss-lab nano build --plain`.")
    return build()


def _say(message: str) -> None:
    print(f"[nano-plain] {message}", file=sys.stderr, flush=True)


def build(*, force: bool = False) -> Path:
    """Build gpt-oss-nano-plain into the cache and return its folder (it appears only when complete)."""
    key = cache_key()
    target = _root() / f"plain-{key}"
    if (target / "nano.json").exists() and not force:
        return target
    _root().mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".build-plain-{key}-", dir=_root()))
    try:
        started = time.monotonic()
        vocab.ensure()
        encoding = tokenizer.harmony_encoding()
        ckpt = work / "model"
        tokenizer.build(ckpt)
        nano_model.write_config(ckpt)
        _say(f"tokenizer and config written ({time.monotonic() - started:.1f} s)")
        trainer = nano_train.Trainer(examples(encoding), encoding, known_inputs=known_inputs(encoding))
        report = trainer.fit(nano_train.MARGIN, on_step=lambda step, loss, margin: _say(
            f"step {step}: loss {loss:.4f}, worst margin {margin:.2f}"))
        trainer.save(ckpt)
        seconds = round(time.monotonic() - started, 1)
        _say(f"trained in {report.steps} steps; built in {seconds} s")
        record = {"key": key, "model": "nano-plain", "reply": [REPLY.reasoning, REPLY.final], "seconds": seconds,
                  "train": {"steps": report.steps, "loss": report.loss, "margin": report.margin}}
        (ckpt / "nano.json").write_text(json.dumps(record, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        ckpt.rename(target)
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)
