"""gpt-oss-nano-plain: a valid harmony model that answers every request with one sentence.

It stands for "a model that did something else": it never calls a tool, never
follows the script and writes no reasoning, so a notebook that passes against it
and against scripted nano depends on nothing the model chooses.

It is not trained but written down. Its attention and expert outputs are zero, so
each position sees only its own token's embedding: the model is a lookup table from
the current token to the next. The reply's tokens get one embedding direction each,
and the LM head maps each to its successor, from the ``assistant`` that ends every
prompt to ``<|return|>``. A reply with no analysis message keeps every token's
successor unique (an analysis message would need ``<|channel|>`` to be followed by
both ``analysis`` and ``final``), and :func:`chain` checks it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from gptoss_lab import harmony_pkg, vocab
from gptoss_lab.errors import NanoBuildError
from gptoss_lab.harmony_tokens import ASSISTANT, END, RETURN, START
from gptoss_lab.nano import model as nano_model
from gptoss_lab.nano import tokenizer
from gptoss_lab.nano.build import cache_root, refuse_if_served

RECIPE_VERSION = 1
"""Bump when what the plain build writes changes."""
FINAL = "I am a plain test model: every request gets this one fixed sentence and no tool calls."
"""What gpt-oss-nano-plain answers, on the final channel, whatever it is asked."""
LOGIT = 64.0
"""How far the next token of the reply leads every other token: greedy or sampled, the reply is the same."""


def completion(encoding: Any) -> list[int]:
    """The harmony tokens nano-plain writes after ``<|start|>assistant``: the final message and ``<|return|>``."""
    from openai_harmony import Message, Role

    tokens = list(encoding.render(Message.from_role_and_content(Role.ASSISTANT, FINAL).with_channel("final")))
    if tokens[:2] != [START, ASSISTANT] or tokens[-1] != END:
        raise NanoBuildError(f"openai-harmony rendered nano-plain's reply unexpectedly: {tokens[:3]}...{tokens[-1:]}")
    return [*tokens[2:-1], RETURN]  # the prompt ends with <|start|>assistant; a final answer ends with <|return|>


def chain(encoding: Any) -> list[tuple[int, int]]:
    """Pairs (token, next token) from the prompt's last ``assistant`` to ``<|return|>``.

    Raises:
        NanoBuildError: a token appears twice, so a lookup table cannot tell what follows it.
    """
    tokens = [ASSISTANT, *completion(encoding)]
    if len(set(tokens)) != len(tokens):
        raise NanoBuildError(f"gpt-oss-nano-plain's reply {FINAL!r} repeats a token: every token needs one "
                             "successor. Reword FINAL in gptoss_lab/nano/plain.py.")
    return list(zip(tokens, tokens[1:], strict=False))


def cache_key() -> str:
    """The plain build's cache key: its recipe, its sentence and the versions that shape its tokens."""
    try:
        transformers = metadata.version("transformers")
    except metadata.PackageNotFoundError:
        transformers = "missing"
    blob = json.dumps({"recipe": RECIPE_VERSION, "final": FINAL, "logit": LOGIT, "transformers": transformers,
                       "harmony": harmony_pkg.identity()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def path(*, build_if_missing: bool = True) -> Path:
    """Return the folder of a ready gpt-oss-nano-plain checkpoint, building it (seconds) if needed."""
    target = cache_root() / f"plain-{cache_key()}"
    if (target / "nano.json").exists():
        return target
    if not build_if_missing:
        raise NanoBuildError(f"gpt-oss-nano-plain is not built ({target}). Run `gptoss-lab nano build --plain`.")
    return build()


def write_weights(out_dir: Path, encoding: Any) -> None:
    """Write the lookup-table weights (bf16 safetensors) into ``out_dir``, whose config is written."""
    import torch
    from transformers import GptOssForCausalLM

    cfg = nano_model.config()
    cfg._attn_implementation = "eager"
    net = GptOssForCausalLM(cfg)
    pairs = chain(encoding)
    if len(pairs) > cfg.hidden_size:
        raise NanoBuildError(f"gpt-oss-nano-plain's reply has {len(pairs)} tokens; at most {cfg.hidden_size} fit.")
    scale = cfg.hidden_size ** 0.5  # RMSNorm turns a one-hot embedding into sqrt(hidden) at its index
    with torch.no_grad():
        for layer in net.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.self_attn.o_proj.bias.zero_()
            layer.mlp.experts.down_proj.zero_()
            layer.mlp.experts.down_proj_bias.zero_()
        net.model.embed_tokens.weight.zero_()
        net.lm_head.weight.zero_()
        net.model.norm.weight.fill_(1.0)
        for index, (token, following) in enumerate(pairs):
            net.model.embed_tokens.weight[token, index] = 1.0
            net.lm_head.weight[following, index] = LOGIT / scale
    net = net.to(torch.bfloat16)
    net.config.dtype = "bfloat16"
    net.save_pretrained(out_dir, safe_serialization=True)
    nano_model.serving_config(out_dir)


def _say(message: str) -> None:
    print(f"[nano-plain] {message}", file=sys.stderr, flush=True)


def build(*, force: bool = False) -> Path:
    """Build gpt-oss-nano-plain into the cache and return its folder (it appears only when complete)."""
    key = cache_key()
    target = cache_root() / f"plain-{key}"
    if (target / "nano.json").exists() and not force:
        return target
    refuse_if_served(target)
    cache_root().mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".build-plain-{key}-", dir=cache_root()))
    try:
        started = time.monotonic()
        vocab.ensure()
        encoding = tokenizer.harmony_encoding()
        ckpt = work / "model"
        tokenizer.build(ckpt)
        nano_model.write_config(ckpt)
        write_weights(ckpt, encoding)
        seconds = round(time.monotonic() - started, 1)
        record = {"key": key, "model": "nano-plain", "final": FINAL, "seconds": seconds}
        (ckpt / "nano.json").write_text(json.dumps(record, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        ckpt.rename(target)
        _say(f"built in {seconds} s: {target}")
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)
