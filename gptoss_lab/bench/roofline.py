"""The batch-1 decode ceiling: how fast memory bandwidth lets one stream decode at best.

Decoding one token for one user reads every active weight once (the attention and
router weights, the ``experts_per_token`` experts the router picks, the unembedding)
and the KV cache of the context so far. Compute is idle most of the time, so

    ceiling tokens/s = memory bandwidth / bytes read per token.

gpt-oss ships its expert weights in MXFP4: 4-bit values with one 8-bit scale per
32 values, 4.25 bits a weight; everything else (attention, router, embeddings,
biases, norms) is bf16. The KV cache is bf16: K and V, ``kv_heads x head_dim`` each,
per layer and token; gpt-oss's sliding-window layers keep only the last 128 tokens.
Taught in ``notebooks/06_benchmark.ipynb``.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gptoss_lab.errors import RooflineError
from gptoss_lab.models import NANO_MARKER, NANO_MODELS

Format = Literal["mxfp4", "bf16"]
MXFP4_BITS = 4 + 8 / 32
"""Bits per MXFP4 weight: a 4-bit value plus its share of the 8-bit scale of its block of 32."""

BANDWIDTH_TBS: dict[str, float] = {
    "H200": 4.8, "H100": 3.35, "B200": 8.0, "A100": 2.0, "L40S": 0.864,
}
"""Peak memory bandwidth (TB/s) from the vendors' data sheets: H100 SXM, H200 SXM, A100 80GB SXM, B200, L40S.
An H100 PCIe has 2.0 TB/s and an A100 40GB 1.555 TB/s: pass ``bandwidth_tbs=`` for those."""


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a gpt-oss config that decide how many bytes a token reads."""

    name: str
    layers: int
    hidden: int
    intermediate: int
    experts: int
    experts_per_token: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    sliding_window: int | None = 128
    sliding_layers: int = 0
    """How many layers use the sliding window (gpt-oss: every other one)."""
    format: Format = "mxfp4"
    """How the checkpoint stores its expert weights."""

    @classmethod
    def from_config(cls, config: dict[str, Any], name: str = "model") -> ModelShape:
        """Read a Hugging Face ``config.json`` of a ``gpt_oss`` model."""
        layer_types = config.get("layer_types") or []
        window = config.get("sliding_window")
        quant = (config.get("quantization_config") or {}).get("quant_method")
        return cls(
            name=name, layers=config["num_hidden_layers"], hidden=config["hidden_size"],
            intermediate=config["intermediate_size"], experts=config["num_local_experts"],
            experts_per_token=config.get("num_experts_per_tok") or config["experts_per_token"],
            heads=config["num_attention_heads"], kv_heads=config["num_key_value_heads"],
            head_dim=config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"],
            vocab=config["vocab_size"], sliding_window=window,
            sliding_layers=sum(t == "sliding_attention" for t in layer_types) if window else 0,
            format="mxfp4" if quant == "mxfp4" else "bf16",
        )

    # -- parameters ------------------------------------------------------------------
    @property
    def attention_params(self) -> int:
        """Per layer: q, k, v, o projections with biases, plus one attention sink per head."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return self.hidden * (q + 2 * kv) + q * self.hidden + (q + 2 * kv + self.hidden) + self.heads

    @property
    def router_params(self) -> int:
        return self.hidden * self.experts + self.experts

    @property
    def expert_matrix_params(self) -> int:
        """Per expert: gate_up (hidden x 2 intermediate) and down (intermediate x hidden); the MXFP4 part."""
        return 3 * self.hidden * self.intermediate

    @property
    def expert_bias_params(self) -> int:
        return 2 * self.intermediate + self.hidden

    @property
    def total_params(self) -> int:
        per_layer = (self.attention_params + self.router_params + 2 * self.hidden
                     + self.experts * (self.expert_matrix_params + self.expert_bias_params))
        return self.layers * per_layer + 2 * self.vocab * self.hidden + self.hidden

    @property
    def active_params(self) -> int:
        """Weights one decoded token reads: all but the unpicked experts and all but one embedding row."""
        per_layer = (self.attention_params + self.router_params + 2 * self.hidden
                     + self.experts_per_token * (self.expert_matrix_params + self.expert_bias_params))
        return self.layers * per_layer + self.vocab * self.hidden + 2 * self.hidden

    def kv_bytes_per_token(self) -> int:
        """KV cache bytes one context token occupies in one layer (K and V, bf16)."""
        return 2 * self.kv_heads * self.head_dim * 2

    def kv_bytes_read(self, context: int) -> int:
        """KV cache bytes decoding one token reads with ``context`` tokens before it."""
        window = min(context, self.sliding_window) if self.sliding_window else context
        full = self.layers - self.sliding_layers
        return self.kv_bytes_per_token() * (full * context + self.sliding_layers * window)

    def weight_bytes(self, fmt: Format) -> float:
        """Weight bytes one decoded token reads, with experts in ``fmt`` and the rest in bf16."""
        expert = self.layers * self.experts_per_token * self.expert_matrix_params
        rest = self.active_params - expert
        return rest * 2 + expert * (MXFP4_BITS / 8 if fmt == "mxfp4" else 2)


# The published configs (Hugging Face openai/gpt-oss-20b and openai/gpt-oss-120b, config.json):
# 24 / 36 layers alternating sliding (128) and full attention, hidden 2880, 32 / 128 experts, 4 per token.
GPT_OSS_20B = ModelShape("openai/gpt-oss-20b", layers=24, hidden=2880, intermediate=2880, experts=32,
                         experts_per_token=4, heads=64, kv_heads=8, head_dim=64, vocab=201088,
                         sliding_window=128, sliding_layers=12)
GPT_OSS_120B = ModelShape("openai/gpt-oss-120b", layers=36, hidden=2880, intermediate=2880, experts=128,
                          experts_per_token=4, heads=64, kv_heads=8, head_dim=64, vocab=201088,
                          sliding_window=128, sliding_layers=18)
KNOWN = {"openai/gpt-oss-20b": GPT_OSS_20B, "gpt-oss-20b": GPT_OSS_20B, "20b": GPT_OSS_20B,
         "openai/gpt-oss-120b": GPT_OSS_120B, "gpt-oss-120b": GPT_OSS_120B, "120b": GPT_OSS_120B}


def shape(model: str | Path | dict[str, Any] | ModelShape | None = None) -> ModelShape:
    """The :class:`ModelShape` of a model: a known name, a checkpoint folder, a config dict, or the served model."""
    if isinstance(model, ModelShape):
        return model
    if isinstance(model, dict):
        return ModelShape.from_config(model)
    if model is None:
        model = _served_root()
    if str(model) in KNOWN:
        return KNOWN[str(model)]
    config = Path(model).expanduser() / "config.json"
    if config.exists():
        name = NANO_MODELS["nano"] if (config.parent / NANO_MARKER).exists() else str(model)
        return ModelShape.from_config(json.loads(config.read_text()), name)
    raise RooflineError(
        f"No config for {model!r}: pass 'openai/gpt-oss-20b', 'openai/gpt-oss-120b', a checkpoint folder "
        "with config.json, or the config as a dict."
    )


def _served_root() -> str:
    """The served model's path or Hugging Face id (``root`` in ``/v1/models``)."""
    import httpx

    from gptoss_lab import api
    from gptoss_lab.client import base_url as lab_url
    from gptoss_lab.client import server_key

    try:
        model = api.models(lab_url(), server_key())[0]
    except (httpx.HTTPError, ValueError, KeyError, IndexError) as exc:
        raise RooflineError(
            f"Cannot ask the server which model it serves ({exc}). Start it (`lab.serve()`) or pass the "
            "model: lab.bench.roofline('openai/gpt-oss-20b', gpu='H100')."
        ) from exc
    return model.get("root") or model["id"]


def measure_bandwidth(mib: int = 256, repeats: int = 5) -> float:
    """Memory bandwidth of one CPU thread in bytes/s: the best of ``repeats`` copies of ``mib`` MiB.

    A copy reads and writes each byte, so it moves twice the array's size. One thread,
    because vLLM's CPU worker decodes on one thread on a 2-core machine.
    """
    import numpy as np

    src = np.ones(mib * 2**20 // 8)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - started)
    return 2 * src.nbytes / best


def gpu_bandwidth(name: str) -> float:
    """Peak bandwidth (bytes/s) of a GPU named like ``nvidia-smi`` names it, from :data:`BANDWIDTH_TBS`."""
    upper = name.upper()
    for key in sorted(BANDWIDTH_TBS, key=len, reverse=True):
        if key in upper:
            return BANDWIDTH_TBS[key] * 1e12
    raise RooflineError(
        f"No bandwidth on file for {name!r} (known: {', '.join(BANDWIDTH_TBS)}). Pass it from the data sheet: "
        "lab.bench.roofline(..., bandwidth_tbs=...)."
    )


@dataclass(frozen=True)
class Roofline:
    """The batch-1 decode ceiling of one model on one device, with its arithmetic."""

    model: ModelShape
    device: str
    bandwidth: float
    """Bytes per second."""
    context: int
    """Tokens of context the KV-cache term assumes."""
    measured: float | None = None
    """Measured batch-1 decode tokens/s (1 / median TPOT at concurrency 1), if given."""
    bandwidth_source: str = "data sheet"

    def bytes_per_token(self, fmt: Format) -> float:
        return self.model.weight_bytes(fmt) + self.model.kv_bytes_read(self.context)

    def ceiling(self, fmt: Format | None = None) -> float:
        """Tokens/s the bandwidth allows at batch 1 (default: the checkpoint's own format)."""
        return self.bandwidth / self.bytes_per_token(fmt or self.model.format)

    @property
    def fraction(self) -> float | None:
        """Measured / ceiling of the served format (None without a measurement)."""
        return self.measured / self.ceiling() if self.measured else None

    def lines(self) -> list[tuple[str, str]]:
        """The arithmetic, step by step, as (what, value) pairs."""
        m = self.model
        expert_w = m.layers * m.experts_per_token * m.expert_matrix_params
        rest = m.active_params - expert_w
        kv = m.kv_bytes_read(self.context)
        window = f", {m.sliding_layers} of them sliding ({m.sliding_window} tokens)" if m.sliding_layers else ""
        out = [
            ("model", f"{m.name}: {m.layers} layers, hidden {m.hidden}, {m.experts} experts ({m.experts_per_token} "
                      f"per token), {m.heads} heads / {m.kv_heads} KV heads x {m.head_dim}, vocab {m.vocab:,}"),
            ("parameters", f"{m.total_params / 1e9:.3f} B total, {m.active_params / 1e9:.3f} B active per token"),
            ("active expert weights", f"{m.layers} layers x {m.experts_per_token} experts x 3 x {m.hidden} x "
                                      f"{m.intermediate} = {expert_w / 1e9:.3f} B"),
            ("other active weights", f"attention, router, biases, norms, unembedding = {rest / 1e9:.3f} B (bf16)"),
            ("weights read, MXFP4 experts", f"{expert_w / 1e9:.3f} B x {MXFP4_BITS / 8:.4f} B + {rest / 1e9:.3f} B "
                                            f"x 2 B = {m.weight_bytes('mxfp4') / 1e9:.3f} GB"),
            ("weights read, all bf16", f"{m.active_params / 1e9:.3f} B x 2 B = {m.weight_bytes('bf16') / 1e9:.3f} GB"),
            ("KV cache read", f"{m.kv_bytes_per_token():,} B per token and layer x {self.context:,} tokens of context "
                              f"over {m.layers} layers{window} = {kv / 1e6:.2f} MB"),
            ("bandwidth", f"{self.bandwidth / 1e12:.3f} TB/s ({self.device}, {self.bandwidth_source})"),
        ]
        for fmt in ("mxfp4", "bf16"):
            mark = " <- this checkpoint" if fmt == m.format else ""
            out.append((f"ceiling, {fmt}", f"{self.bandwidth / 1e12:.3f} TB/s / {self.bytes_per_token(fmt) / 1e9:.4f}"
                                          f" GB = {self.ceiling(fmt):,.1f} tokens/s{mark}"))
        if self.measured:
            out.append(("measured", f"{self.measured:,.1f} tokens/s = {self.fraction:.1%} of the {m.format} ceiling"))
        return out

    def __repr__(self) -> str:
        measured = f", measured {self.fraction:.1%} of it" if self.measured else ""
        return (f"<Roofline {self.model.name} on {self.device}: {self.ceiling():,.1f} tokens/s at batch 1 "
                f"({self.model.format}){measured}>")

    def __str__(self) -> str:
        width = max(len(k) for k, _ in self.lines())
        return "\n".join(f"{k:<{width}}  {v}" for k, v in self.lines())

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td style='text-align:left'>{html.escape(k)}</td><td style='text-align:left'>"
                       f"{html.escape(v)}</td></tr>" for k, v in self.lines())
        return f"<table><caption style='text-align:left'>Batch-1 decode roofline</caption>{rows}</table>"

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.name, "device": self.device, "bandwidth_bytes_per_s": self.bandwidth,
                "context": self.context, "format": self.model.format,
                "weight_bytes_mxfp4": self.model.weight_bytes("mxfp4"),
                "weight_bytes_bf16": self.model.weight_bytes("bf16"),
                "kv_bytes": self.model.kv_bytes_read(self.context),
                "ceiling_mxfp4": self.ceiling("mxfp4"), "ceiling_bf16": self.ceiling("bf16"),
                "measured": self.measured, "fraction": self.fraction}


def decode_speed(result: Any) -> float:
    """Batch-1 decode tokens/s of a run (or of a sweep's concurrency-1 run): 1000 / median TPOT in ms."""
    runs = getattr(result, "runs", None)
    if runs is not None:
        ones = [r for r in runs if r.settings.get("concurrency") == 1]
        if not ones:
            raise RooflineError("The sweep has no concurrency-1 run; the roofline compares batch-1 decoding.")
        result = ones[0]
    tpot = result.metrics.latency_ms["tpot"]["median"]
    if not tpot:
        raise RooflineError(f"The run has no TPOT to compare ({result.message}).")
    return 1000 / tpot


def roofline(model: str | Path | dict[str, Any] | ModelShape | None = None, *, gpu: str | None = None,
             bandwidth_tbs: float | None = None, context: int = 1024, measured: Any = None) -> Roofline:
    """The batch-1 decode ceiling of ``model`` on a device, and the measured fraction of it.

    Args:
        model: ``openai/gpt-oss-20b``, ``openai/gpt-oss-120b``, a checkpoint folder, a config
            dict, or None for the model the lab's server serves.
        gpu: a GPU name (``H100``, ``H200``, ``A100``, ``B200``, ``L40S``); default: this machine's GPU.
        bandwidth_tbs: the memory bandwidth in TB/s, for any other device. Without a GPU and
            without this, one CPU thread's copy bandwidth is measured.
        context: tokens of context for the KV-cache term.
        measured: tokens/s, or a :class:`RunResult` / :class:`Sweep` (its concurrency-1 median TPOT).

    Taught in ``notebooks/06_benchmark.ipynb``.
    """
    from gptoss_lab.hardware import gpus

    source = "data sheet"
    if bandwidth_tbs is not None:
        bandwidth, device, source = bandwidth_tbs * 1e12, gpu or "given", "given"
    elif gpu is not None:
        bandwidth, device = gpu_bandwidth(gpu), gpu
    elif found := gpus():
        bandwidth, device = gpu_bandwidth(found[0].name), found[0].name
    else:
        bandwidth, device, source = measure_bandwidth(), "CPU, one thread", "measured: numpy copy"
    speed = measured if isinstance(measured, (int, float)) or measured is None else decode_speed(measured)
    return Roofline(shape(model), device, bandwidth, context, speed, source)
