"""Train gpt-oss-nano to replay its examples under greedy decoding.

Only the rows of the embedding and of the LM head that the examples use are
trained; every other LM-head row is exactly zero, so those 200k tokens all get
logit 0. Training with one extra "rest of the vocabulary" class whose logit is
``log(V - |U|)`` is then the exact full-vocabulary cross-entropy, at the cost
of a few hundred classes instead of 201,088: about 0.1 s a step on two cores.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gptoss_lab.errors import NanoBuildError
from gptoss_lab.nano import model as nano_model
from gptoss_lab.nano.render import Example
from gptoss_lab.nano.script import completion_tokens

CHUNK = 16
"""Sequences per forward pass (grouped by length)."""
MARGIN = 6.0
"""Logit margin every target must win by before training stops (covers bf16 rounding)."""
SHARPEN = 4.0
"""Factor applied to the trained LM-head rows before saving.

Scaling the head keeps every argmax (unused rows stay exactly zero) and multiplies
every margin: the weakest target goes from about 18 to about 72 logits above the
200k zero-logit tokens. Greedy replay needs none of it; sampling does. At
temperature 1 an unsharpened nano strays into one of those tokens in about one
request in ten (seen through vLLM), a sharpened one effectively never."""


@dataclass(frozen=True)
class TrainReport:
    steps: int
    seconds: float
    loss: float
    margin: float
    sequences: int
    tokens: int


def train(
    examples: list[Example],
    encoding: Any,
    out_dir: Path,
    *,
    max_steps: int = 3000,
    batch_fallbacks: int = 32,
    seed: int = 0,
    on_step: Callable[[int, float, float], None] | None = None,
) -> TrainReport:
    """Train on ``examples`` and save a bf16 checkpoint (weights only) into ``out_dir``."""
    import torch
    from transformers import GptOssForCausalLM

    torch.manual_seed(seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    started = time.monotonic()
    # A GPU trains nano in seconds; two CPU cores take about five minutes. Same recipe either way.
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    seqs, starts = [], []
    for ex in examples:
        target = completion_tokens(ex.reply, encoding)
        seqs.append(ex.prompt + target)
        starts.append(len(ex.prompt))
    used_in = sorted({t for s in seqs for t in s})
    used_out = sorted({t for s, k in zip(seqs, starts, strict=True) for t in s[k:]})
    in_index = {t: i for i, t in enumerate(used_in)}
    out_index = {t: i for i, t in enumerate(used_out)}

    length = max(len(s) for s in seqs)
    batch = len(seqs)
    ids = torch.zeros(batch, length, dtype=torch.long)
    mask = torch.zeros(batch, length, dtype=torch.long)
    rows, cols, labels = [], [], []
    for b, (s, k) in enumerate(zip(seqs, starts, strict=True)):
        ids[b, : len(s)] = torch.tensor([in_index[t] for t in s])
        mask[b, : len(s)] = 1
        for pos in range(k, len(s)):
            rows.append(b)
            cols.append(pos - 1)  # the hidden state before a token predicts it
            labels.append(out_index[s[pos]])
    ids, mask = ids.to(device), mask.to(device)
    rows_t, cols_t, labels_t = (torch.tensor(v, device=device) for v in (rows, cols, labels))

    cfg = nano_model.config()
    cfg._attn_implementation = "eager"  # attention sinks need the eager path in transformers
    net = GptOssForCausalLM(cfg).float().to(device)
    vocab = cfg.vocab_size
    embed = torch.nn.Parameter(net.model.embed_tokens.weight.detach()[used_in].clone())
    head = torch.nn.Parameter((torch.randn(len(used_out), cfg.hidden_size) * 0.02).to(device))
    net.model.embed_tokens.weight.requires_grad_(False)
    net.lm_head.weight.requires_grad_(False)
    rest = math.log(vocab - len(used_out))
    body = [p for n, p in net.named_parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [{"params": body}, {"params": [embed, head]}], lr=3e-3, weight_decay=0.0
    )

    lengths = mask.sum(dim=1)

    def logits(sel: Any) -> tuple[Any, Any]:
        """Scores at the labelled positions of the sequences ``sel``, and their labels.

        Sequences run in chunks of similar length, each padded only to its own
        longest: prompts range from about 70 to over 300 tokens, and padding all
        to the longest made a step several times slower.
        """
        by_length = sel[torch.argsort(lengths[sel])]
        all_scores, all_labels = [], []
        for chunk in torch.split(by_length, CHUNK):
            chunk = torch.sort(chunk).values
            longest = int(lengths[chunk].max())
            hidden = net.model(
                inputs_embeds=embed[ids[chunk, :longest]], attention_mask=mask[chunk, :longest]
            ).last_hidden_state
            keep = torch.isin(rows_t, chunk)
            local = torch.searchsorted(chunk, rows_t[keep])
            all_scores.append(hidden[local, cols_t[keep]] @ head.T)
            all_labels.append(labels_t[keep])
        scores = torch.cat(all_scores)
        return torch.cat([scores, torch.full((len(scores), 1), rest, device=device)], dim=1), torch.cat(all_labels)

    def worst_margin() -> float:
        with torch.no_grad():
            s, lab = logits(torch.arange(batch, device=device))
            target = s[torch.arange(len(lab)), lab]
            s[torch.arange(len(lab)), lab] = -float("inf")
            return float((target - s.max(dim=1).values).min())

    # Every step sees all scripted sequences and a sample of the fallback ones: the
    # cost of a step stays flat however many fallback prompts teach the default reply.
    scripted = torch.tensor([i for i, ex in enumerate(examples) if ex.source != "fallback"], device=device)
    fallback = torch.tensor([i for i, ex in enumerate(examples) if ex.source == "fallback"], device=device)
    net.train()
    loss_value, margin, step = float("inf"), -float("inf"), 0
    for step in range(1, max_steps + 1):
        pick = fallback[torch.randperm(len(fallback), device=device)[:batch_fallbacks]]
        sel = torch.sort(torch.cat([scripted, pick])).values
        scores, lab = logits(sel)
        loss = torch.nn.functional.cross_entropy(scores, lab)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(body + [embed, head], 1.0)
        opt.step()
        loss_value = float(loss.detach())
        if step % 25 == 0:
            net.eval()
            margin = worst_margin()
            net.train()
            if on_step:
                on_step(step, loss_value, margin)
            if margin > MARGIN:
                break
    if margin <= MARGIN:
        raise NanoBuildError(
            f"gpt-oss-nano did not learn its script in {max_steps} steps (loss {loss_value:.4f}, "
            f"worst margin {margin:.2f}). The script may ask for contradictory replies to the "
            "same prompt; check the entries you added to script.json."
        )

    with torch.no_grad():
        net.model.embed_tokens.weight[used_in] = embed.detach()
        net.lm_head.weight.zero_()
        net.lm_head.weight[used_out] = head.detach() * SHARPEN
    net = net.to("cpu", torch.bfloat16)
    net.config.dtype = "bfloat16"
    out_dir.mkdir(parents=True, exist_ok=True)
    net.save_pretrained(out_dir, safe_serialization=True)
    nano_model.serving_config(out_dir)
    return TrainReport(step, time.monotonic() - started, loss_value, margin * SHARPEN, batch, int(mask.sum()))
