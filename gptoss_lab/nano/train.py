"""Train gpt-oss-nano to replay its examples under greedy decoding.

Only the rows of the embedding and of the LM head that the script uses are
trained; every other token shares one input embedding (UNKNOWN, trained on the
fallback prompts), and every other LM-head row is exactly zero, so those 200k tokens all get
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

from gptoss_lab.errors import NanoBuildError, TrainingStalled
from gptoss_lab.nano import model as nano_model
from gptoss_lab.nano.render import Example
from gptoss_lab.nano.script import completion_tokens
from gptoss_lab.nano.tokenizer import VOCAB_SIZE

CHUNK = 16
"""Most sequences per forward pass (grouped by length)."""
CHUNK_TOKENS = 6144
"""Most padded tokens per forward pass: the built-in tool prompts run past 1,000 tokens, and
eager attention costs the square of the padded length, so long sequences go in small groups."""
MARGIN = 6.0
"""Logit margin every target must win by before training stops (covers bf16 rounding)."""
SHARPEN = 4.0
"""Factor applied to the trained LM-head rows before saving.

Scaling the head keeps every argmax (unused rows stay exactly zero) and multiplies
every margin: the weakest target goes from about 18 to about 72 logits above the
200k zero-logit tokens. Greedy replay needs none of it; sampling does. At
temperature 1 an unsharpened nano strays into one of those tokens in about one
request in ten (seen through vLLM), a sharpened one effectively never."""

CHECK_EVERY = 25
"""Steps between two measurements of every sequence's margin (the stop and stall checks)."""
TIE_BAND = 0.1
"""A worst margin within this many logits of zero: two sequences the model cannot yet tell apart,
typically a scripted request and its one-word near miss, pulling one set of weights two ways."""
FROZEN_BAND = 0.05
"""A worst margin short of the target that moves less than this across :data:`STALL_STEPS` steps: a
group of sequences the model stopped separating (seen on two cores: -0.69 from step 700 to 1,000,
"Suggest a name for a city robot." against the two scripted requests with "pet" in its place, every
other sequence fitted). -0.69 is -ln 2, cross-entropy's optimum for three inputs the model sees as one
and two of which want the other token; that run sat there for 300 steps."""
STALL_STEPS = 200
"""Training that sits at such a tie, or frozen short of the target, this many steps stops with
:class:`TrainingStalled` (seen on two cores: 300+ steps at -0.00, where another run of the same
recipe converged); the build starts again."""
UNKNOWN_PROBE = VOCAB_SIZE - 1
"""A token no script uses (the last reserved one): its saved embedding row is the UNKNOWN row."""


@dataclass(frozen=True)
class TrainReport:
    steps: int
    seconds: float
    loss: float
    margin: float
    sequences: int
    tokens: int


def _chunks(by_length: Any, lengths: Any) -> list[Any]:
    """Split sequence indices (shortest first) into groups of at most CHUNK sequences and CHUNK_TOKENS padded tokens."""
    groups: list[list[int]] = [[]]
    for index in by_length.tolist():
        group = groups[-1]
        longest = int(lengths[index])  # sorted: the newcomer is the longest of its group
        if group and (len(group) >= CHUNK or (len(group) + 1) * longest > CHUNK_TOKENS):
            groups.append(group := [])
        group.append(index)
    return [by_length.new_tensor(g) for g in groups if g]


class StallWatch:
    """Reads the worst margin at each check (every :data:`CHECK_EVERY` steps) and says when training stalled."""

    def __init__(self, stall_steps: int = STALL_STEPS) -> None:
        self.stall_steps = stall_steps
        self.tied = 0
        self.recent: list[float] = []
        """The worst margin at each check of the last ``stall_steps`` steps (and the one before them)."""

    def check(self, margin: float) -> str | None:
        """Record one check's worst margin (short of the target); return how training stalled, if it did."""
        self.tied = self.tied + CHECK_EVERY if abs(margin) < TIE_BAND else 0
        window = self.stall_steps // CHECK_EVERY
        self.recent = [*self.recent, margin][-(window + 1):]
        if self.tied >= self.stall_steps:
            return f"sat at a tie for {self.tied} steps"
        if len(self.recent) > window and max(self.recent) - min(self.recent) < FROZEN_BAND:
            return f"stopped moving for {self.stall_steps} steps"
        return None


class Trainer:
    """Trains nano on ``examples``; :meth:`fit` can be called again to widen the margin.

    The build trains to :data:`MARGIN`, saves, replays the checkpoint through vLLM
    (:mod:`gptoss_lab.nano.verify`), and calls :meth:`fit` again with a wider
    margin when vLLM's bf16 kernels disagree with float32 training.
    """

    def __init__(self, examples: list[Example], encoding: Any, *, seed: int = 0, batch_fallbacks: int = 48) -> None:
        import torch
        from transformers import GptOssForCausalLM

        torch.manual_seed(seed)
        torch.set_num_threads(max(1, torch.get_num_threads()))
        # A GPU trains nano in seconds; two CPU cores take about five minutes. Same recipe either way.
        self.device = device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.examples = examples
        self.encoding = encoding
        self.weakest: list[tuple[int, float]] = []
        """The three sequences with the smallest margin at the last check, and their margins."""
        self.batch_fallbacks = batch_fallbacks
        self.steps = 0
        self.seconds = 0.0
        self.loss = float("inf")
        self.margin = -float("inf")

        seqs, starts = [], []
        for ex in examples:
            target = completion_tokens(ex.reply, encoding)
            seqs.append(ex.prompt + target)
            starts.append(len(ex.prompt))
        # The tokens of the script (its prompts and every reply) each get an embedding of their
        # own; every other token of the 201k shares one, UNKNOWN. Fallback prompts teach that
        # UNKNOWN anywhere means the fallback reply, and since nano cannot tell one unknown
        # token from another, that holds for words no training prompt ever held.
        self.used_out = sorted({t for s, k in zip(seqs, starts, strict=True) for t in s[k:]})
        self.used_in = sorted(
            set(self.used_out).union(*(s for s, ex in zip(seqs, examples, strict=True) if ex.source != "fallback"))
        )
        self.unknown = unknown = len(self.used_in)
        if UNKNOWN_PROBE in set(self.used_in):
            raise NanoBuildError(f"The script uses token {UNKNOWN_PROBE}, the token that marks nano's UNKNOWN row.")
        in_index = {t: i for i, t in enumerate(self.used_in)}
        out_index = {t: i for i, t in enumerate(self.used_out)}

        length = max(len(s) for s in seqs)
        self.batch = batch = len(seqs)
        ids = torch.zeros(batch, length, dtype=torch.long)
        mask = torch.zeros(batch, length, dtype=torch.long)
        rows, cols, labels = [], [], []
        for b, (s, k) in enumerate(zip(seqs, starts, strict=True)):
            ids[b, : len(s)] = torch.tensor([in_index.get(t, unknown) for t in s])
            mask[b, : len(s)] = 1
            for pos in range(k, len(s)):
                rows.append(b)
                cols.append(pos - 1)  # the hidden state before a token predicts it
                labels.append(out_index[s[pos]])
        self.ids, self.mask = ids.to(device), mask.to(device)
        self.rows, self.cols, self.labels = (torch.tensor(v, device=device) for v in (rows, cols, labels))
        self.lengths = self.mask.sum(dim=1)
        self.tokens = int(self.lengths.sum())

        cfg = nano_model.config()
        cfg._attn_implementation = "eager"  # attention sinks need the eager path in transformers
        self.net = net = GptOssForCausalLM(cfg).float().to(device)
        init = net.model.embed_tokens.weight.detach()
        self.embed = torch.nn.Parameter(torch.cat([init[self.used_in], init[-1:]]).clone())  # last row: UNKNOWN
        self.head = torch.nn.Parameter((torch.randn(len(self.used_out), cfg.hidden_size) * 0.02).to(device))
        net.model.embed_tokens.weight.requires_grad_(False)
        net.lm_head.weight.requires_grad_(False)
        self.rest = math.log(cfg.vocab_size - len(self.used_out))
        self.body = [p for n, p in net.named_parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(
            [{"params": self.body}, {"params": [self.embed, self.head]}], lr=3e-3, weight_decay=0.0
        )
        # Every step sees all scripted sequences and a sample of the fallback ones: the
        # cost of a step stays flat however many fallback prompts teach the default reply.
        self.scripted = torch.tensor([i for i, ex in enumerate(examples) if ex.source != "fallback"], dtype=torch.long,
                                     device=device)
        self.fallback = torch.tensor([i for i, ex in enumerate(examples) if ex.source == "fallback"], dtype=torch.long,
                                     device=device)
        self.hard = self.fallback[:0]
        """The weakest fallback sequences at the last margin check; every step trains them."""
        self._last_rows = self.rows[:0]

    def describe(self, index: int) -> str:
        """One line naming a training sequence: its source and the end of its prompt."""
        example = self.examples[index]
        tail = self.encoding.decode(example.prompt[-24:]).replace("\n", " ")
        return f"{example.source}: ...{tail}"

    def warm_start(self, folder: Path) -> None:
        """Start from an earlier build's weights: its body, and the rows of the tokens both scripts use.

        A token new to this script starts from the earlier build's UNKNOWN row (what that build
        saw for it), a new output token from a small random row; training then goes on as from
        scratch, with the same margin and the same replay check after it.
        """
        import torch
        from safetensors.torch import load_file

        weights = load_file(str(folder / "model.safetensors"), device=str(self.device))
        embed = weights.pop("model.embed_tokens.weight").float()
        head = weights.pop("lm_head.weight").float()
        missing, unexpected = self.net.load_state_dict({k: v.float() for k, v in weights.items()}, strict=False)
        if unexpected or set(missing) != {"model.embed_tokens.weight", "lm_head.weight"}:
            raise NanoBuildError(f"{folder} is not a nano checkpoint of this architecture (missing {missing}, "
                                 f"unexpected {unexpected}); build with --fresh.")
        with torch.no_grad():
            self.embed[: self.unknown] = embed[self.used_in]
            self.embed[self.unknown] = embed[UNKNOWN_PROBE]
            old = head[self.used_out] / SHARPEN
            trained = old.abs().sum(dim=1) > 0
            self.head[trained] = old[trained]

    def _logits(self, sel: Any) -> tuple[Any, Any]:
        """Scores at the labelled positions of the sequences ``sel``, and their labels.

        Sequences run in chunks of similar length, each padded only to its own
        longest: prompts range from about 70 to over 300 tokens, and padding all
        to the longest made a step several times slower.
        """
        import torch

        by_length = sel[torch.argsort(self.lengths[sel])]
        all_scores, all_labels, all_rows = [], [], []
        for chunk in _chunks(by_length, self.lengths):
            chunk = torch.sort(chunk).values
            longest = int(self.lengths[chunk].max())
            hidden = self.net.model(
                inputs_embeds=self.embed[self.ids[chunk, :longest]], attention_mask=self.mask[chunk, :longest]
            ).last_hidden_state
            keep = torch.isin(self.rows, chunk)
            local = torch.searchsorted(chunk, self.rows[keep])
            all_scores.append(hidden[local, self.cols[keep]] @ self.head.T)
            all_labels.append(self.labels[keep])
            all_rows.append(self.rows[keep])
        scores = torch.cat(all_scores)
        rest = torch.full((len(scores), 1), self.rest, device=self.device)
        self._last_rows = torch.cat(all_rows)
        return torch.cat([scores, rest], dim=1), torch.cat(all_labels)

    def worst_margin(self) -> float:
        import torch

        self.net.eval()
        with torch.no_grad():
            s, lab = self._logits(torch.arange(self.batch, device=self.device))
            target = s[torch.arange(len(lab)), lab]
            s[torch.arange(len(lab)), lab] = -float("inf")
            margins = target - s.max(dim=1).values
            worst = float(margins.min())
            per_sequence = torch.full((self.batch,), float("inf"), device=self.device)
            per_sequence.scatter_reduce_(0, self._last_rows, margins, reduce="amin")
            # The next steps train the weakest fallback sequences (near-misses of a scripted
            # request, mostly) besides a random sample: seen one step in six, they held
            # the worst margin below zero for hundreds of steps.
            weakest = torch.argsort(per_sequence[self.fallback])[: self.batch_fallbacks // 2]
            self.hard = self.fallback[weakest]
            order = torch.argsort(per_sequence)[:3]
            self.weakest = [(int(i), float(per_sequence[i])) for i in order]
        self.net.train()
        return worst

    def fit(
        self,
        margin: float = MARGIN,
        *,
        max_steps: int = 3000,
        stall_steps: int = STALL_STEPS,
        on_step: Callable[[int, float, float], None] | None = None,
    ) -> TrainReport:
        """Train until every target token wins by ``margin`` logits (float32), then report.

        Raises :class:`TrainingStalled` once the worst margin has stayed within :data:`TIE_BAND`
        of zero, or within :data:`FROZEN_BAND` of one value short of ``margin``, for ``stall_steps``
        steps, and NanoBuildError after ``max_steps``.
        """
        import torch

        started = time.monotonic()
        self.net.train()
        watch = StallWatch(stall_steps)
        for _ in range(max_steps):
            self.steps += 1
            rest = self.fallback[~torch.isin(self.fallback, self.hard)]
            pick = rest[torch.randperm(len(rest), device=self.device)[: self.batch_fallbacks - len(self.hard)]]
            sel = torch.sort(torch.cat([self.scripted, self.hard, pick])).values
            scores, lab = self._logits(sel)
            loss = torch.nn.functional.cross_entropy(scores, lab)
            self.opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.body + [self.embed, self.head], 1.0)
            self.opt.step()
            self.loss = float(loss.detach())
            if self.steps % CHECK_EVERY == 0:
                self.margin = self.worst_margin()
                if on_step:
                    on_step(self.steps, self.loss, self.margin)
                if self.margin > margin:
                    break
                how = watch.check(self.margin)
                if how:
                    self.seconds += time.monotonic() - started
                    weakest = "; ".join(f"{self.describe(i)} ({m:.2f})" for i, m in self.weakest[:2])
                    raise TrainingStalled(
                        f"gpt-oss-nano's training {how} (worst margin {self.margin:.2f} at "
                        f"step {self.steps}): {weakest}. Two prompts that differ by a word, or not at all, want "
                        "different replies; if you added one of them to script.json, make its words differ more."
                    )
        self.seconds += time.monotonic() - started
        if self.margin <= margin:
            weakest = "; ".join(f"{self.describe(i)} ({m:.2f})" for i, m in self.weakest)
            raise NanoBuildError(
                f"gpt-oss-nano did not learn its script in {self.steps} steps (loss {self.loss:.4f}, "
                f"worst margin {self.margin:.2f}, wanted {margin:g}). The script may ask for contradictory "
                f"replies to the same prompt; check the entries you added to script.json. Weakest: {weakest}"
            )
        return self.report()

    def report(self) -> TrainReport:
        return TrainReport(self.steps, self.seconds, self.loss, self.margin * SHARPEN, self.batch, self.tokens)

    def save(self, out_dir: Path) -> None:
        """Write the bf16 checkpoint (weights and serving config) into ``out_dir``; training can go on."""
        import copy

        import torch

        net = copy.deepcopy(self.net)
        with torch.no_grad():
            net.model.embed_tokens.weight[:] = self.embed.detach()[self.unknown]
            net.model.embed_tokens.weight[self.used_in] = self.embed.detach()[: self.unknown]
            net.lm_head.weight.zero_()
            net.lm_head.weight[self.used_out] = self.head.detach() * SHARPEN
        net = net.to("cpu", torch.bfloat16)
        net.config.dtype = "bfloat16"
        out_dir.mkdir(parents=True, exist_ok=True)
        net.save_pretrained(out_dir, safe_serialization=True)
        nano_model.serving_config(out_dir)


def train(
    examples: list[Example],
    encoding: Any,
    out_dir: Path,
    *,
    max_steps: int = 3000,
    batch_fallbacks: int = 48,
    seed: int = 0,
    on_step: Callable[[int, float, float], None] | None = None,
) -> TrainReport:
    """Train on ``examples`` to :data:`MARGIN` and save a bf16 checkpoint (weights only) into ``out_dir``."""
    trainer = Trainer(examples, encoding, seed=seed, batch_fallbacks=batch_fallbacks)
    report = trainer.fit(MARGIN, max_steps=max_steps, on_step=on_step)
    trainer.save(out_dir)
    return report
