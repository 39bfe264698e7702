"""vLLM serve flags per model and hardware class.

Sources: the vLLM gpt-oss recipe
(https://docs.vllm.ai/projects/recipes/en/latest/OpenAI/GPT-OSS.html: parsers,
``--async-scheduling``, tensor parallelism, the Blackwell FlashInfer MoE switch)
and GPUStack's measured gpt-oss tuning pages
(https://docs.gpustack.ai/latest/performance-lab/: A100 flags for 120b). Every
preset carries the parsers that make Chat Completions and Responses return
reasoning and tool calls. Taught in ``notebooks/01_serve.ipynb``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from gptoss_lab.errors import PresetError
from gptoss_lab.models import NANO_CONTEXT, NANO_DATE, NANO_MODELS

Hardware = Literal["h200", "h100", "a100", "b200", "l40s", "cpu"]

PARSER_FLAGS = (
    "--tool-call-parser", "openai",
    "--enable-auto-tool-choice",
    "--reasoning-parser", "openai_gptoss",
)
RECIPE = "vLLM gpt-oss recipe"

def nano_args(model: str = "nano") -> tuple[str, ...]:
    """The vLLM flags every nano server gets: its context, its served name, greedy decoding.

    Greedy by default: nano's contract is exact replay under greedy decoding.
    """
    return ("--max-model-len", str(NANO_CONTEXT), "--served-model-name", NANO_MODELS[model],
            "--override-generation-config", '{"temperature": 0}')


NANO_ARGS = nano_args()
NANO_ENV = {
    "VLLM_SYSTEM_START_DATE": NANO_DATE,
}
NANO_CPU_ENGINE: dict[str, Any] = {"enforce_eager": True, "enable_prefix_caching": False}
"""How vLLM runs nano on a CPU, as ``vllm.LLM`` keywords; the ``nano-cpu`` presets' flags are written from
them (:func:`engine_flags`), and ``gptoss_lab.sampling.engine`` passes them as they are. No torch.compile:
eager reaches ready sooner than a warm compile cache. No prefix caching: a cached prefix is read by a second
attention path, and nano's contract is exact greedy replay (docs/decisions.md)."""
NANO_CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1"}
"""GiB of KV cache vLLM-CPU reserves for nano (its default would take a large share of the machine's memory)."""


def engine_flags(options: dict[str, Any]) -> tuple[str, ...]:
    """``vllm serve`` flags for ``vllm.LLM`` keywords: ``True`` gives ``--name``, ``False`` ``--no-name``."""
    flags: list[str] = []
    for key, value in options.items():
        name = key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(f"--{name}" if value else f"--no-{name}")
        else:
            flags += [f"--{name}", str(value)]
    return tuple(flags)

# GiB of GPU memory a model needs in total: MXFP4 weights plus a working KV cache.
MODEL_MEMORY_GIB = {"openai/gpt-oss-20b": 16, "openai/gpt-oss-120b": 70, **{m: 1 for m in NANO_MODELS}}



@dataclass(frozen=True)
class Preset:
    """How to serve one model on one class of hardware."""

    name: str
    model: str
    hardware: Hardware
    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    gpus: int = 1
    """GPUs the preset uses (``--tensor-parallel-size``)."""
    source: str = RECIPE

    def flags(self) -> list[str]:
        """All vLLM flags: the preset's own, tensor parallelism, and the gpt-oss parsers."""
        tp = ["--tensor-parallel-size", str(self.gpus)] if self.gpus > 1 else []
        return [*self.args, *tp, *PARSER_FLAGS]


def _p(name: str, model: str, hw: Hardware, args: tuple[str, ...] = (), **kw: Any) -> Preset:
    return Preset(name=name, model=model, hardware=hw, args=args, **kw)


B200_ENV = {"VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8": "1"}
A100_120B = ("--async-scheduling", "--max-model-len", "32768", "--max-num-batched-tokens", "4096")

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        # NANO_CPU_ENGINE says why eager and without prefix caching; the in-process worker
        # (--distributed-executor-backend uni) gains nothing (docs/decisions.md, benchmarks/startup.py).
        *(
            _p(f"{m}-cpu", m, "cpu", (*nano_args(m), *engine_flags(NANO_CPU_ENGINE)),
               env={**NANO_ENV, **NANO_CPU_ENV},
               source="gptoss-lab, measured on 2 CPU cores (benchmarks/startup.py)")
            for m in NANO_MODELS
        ),
        *(
            _p(f"{m}-{hw}", m, hw, (*nano_args(m), "--gpu-memory-utilization", "0.3"),
               env=dict(NANO_ENV), source="gptoss-lab")
            for m in NANO_MODELS for hw in ("h200", "h100", "a100", "b200", "l40s")
        ),
        # Measured: the best of the flag sets tried at 1 and 64 users (the recipe 0.83x, its stream
        # interval alone 0.79x at 64 users); the recipe led at 256 users in one run (preset 0.90x).
        _p("20b-h200", "openai/gpt-oss-20b", "h200", ("--async-scheduling",),
           source="docs/presets.md#20b-h200-preset (random weights, vLLM 0.26.0, H200, 2026-11-28, median of 3)"),
        # Measured: same batch-1 speed as every flag set tried, the 64-user throughput kept; the
        # small-capture lab flags start in half the time but are 7.6x slower at 64 users.
        _p("20b-h100", "openai/gpt-oss-20b", "h100", ("--async-scheduling",),
           source="docs/presets.md#20b-h100-preset (random weights, vLLM 0.26.0, H100, 2026-11-27, n=1)"),
        _p("20b-b200", "openai/gpt-oss-20b", "b200", ("--async-scheduling",), env=B200_ENV),
        _p("20b-a100", "openai/gpt-oss-20b", "a100", ("--async-scheduling",),
           source="GPUStack performance lab (A100 80GB)"),
        _p("20b-l40s", "openai/gpt-oss-20b", "l40s",
           ("--async-scheduling", "--max-model-len", "32768", "--gpu-memory-utilization", "0.92"),
           source="vLLM gpt-oss recipe (20b fits ~16 GB); context trimmed for 24-48 GB cards"),
        _p("120b-h200", "openai/gpt-oss-120b", "h200", ("--async-scheduling",)),
        _p("120b-h100", "openai/gpt-oss-120b", "h100", ("--async-scheduling",)),
        _p("120b-h100-tp2", "openai/gpt-oss-120b", "h100", ("--async-scheduling",), gpus=2,
           source="GPUStack performance lab (2x H100: best throughput per GPU)"),
        _p("120b-b200", "openai/gpt-oss-120b", "b200", ("--async-scheduling",), env=B200_ENV),
        _p("120b-a100", "openai/gpt-oss-120b", "a100", A100_120B,
           source="GPUStack performance lab (A100 80GB)"),
    )
}


def hardware_class(gpu_name: str | None) -> Hardware:
    """Map an ``nvidia-smi`` GPU name (or None for no GPU) to a preset hardware class."""
    if not gpu_name:
        return "cpu"
    name = gpu_name.upper()
    classes: tuple[tuple[str, Hardware], ...] = (
        ("H200", "h200"), ("GH200", "h200"), ("H100", "h100"), ("H800", "h100"),
        ("B200", "b200"), ("B100", "b200"), ("A100", "a100"), ("A800", "a100"))
    for key, hw in classes:
        if key in name:
            return hw
    return "l40s"  # L40S, L40, L4, A10G, RTX cards: the 24-48 GB class


def select(model: str, gpu_name: str | None = None, gpu_memory_gib: float = 0.0,
           gpu_count: int = 0) -> Preset:
    """Return the preset for ``model`` on this machine, or refuse with the nearest one that fits.

    Args:
        model: ``nano``, ``openai/gpt-oss-20b``, ``openai/gpt-oss-120b`` or a local path.
        gpu_name: the first GPU's name from ``nvidia-smi`` (None: no GPU).
        gpu_memory_gib: memory of one GPU.
        gpu_count: number of GPUs.

    Raises:
        PresetError: the model does not fit; the message names the preset that does.
    """
    hw = hardware_class(gpu_name)
    if model not in MODEL_MEMORY_GIB:
        # A local checkpoint or another repo id: parsers only, vLLM's defaults otherwise.
        return Preset(name="custom", model=model, hardware=hw, args=(), source="vLLM defaults")
    if model in NANO_MODELS:
        return PRESETS[f"{model}-{hw}"]
    if hw == "cpu":
        raise PresetError(
            f"{model} needs an NVIDIA GPU (about {MODEL_MEMORY_GIB[model]} GB); this machine has "
            "none. Use gpt-oss-nano on the CPU: GPTOSS_LAB_MODEL=nano (preset nano-cpu)."
        )
    need = MODEL_MEMORY_GIB[model]
    candidates = [p for p in PRESETS.values() if p.model == model and p.hardware == hw]
    fitting = [p for p in candidates if p.gpus <= gpu_count and gpu_memory_gib * p.gpus >= need]
    if fitting:
        return min(fitting, key=lambda p: p.gpus)
    smaller = "openai/gpt-oss-20b"
    if model != smaller and gpu_memory_gib >= MODEL_MEMORY_GIB[smaller]:
        hint = f"Use {smaller} instead (preset {select(smaller, gpu_name, gpu_memory_gib, gpu_count).name})"
    else:
        hint = "Use gpt-oss-nano (GPTOSS_LAB_MODEL=nano) to learn the APIs on this machine"
    raise PresetError(
        f"{model} needs about {need} GB of GPU memory; this machine has {gpu_count} x "
        f"{gpu_memory_gib:.0f} GB ({gpu_name}). {hint}, or move to a GPU with more memory."
    )


def for_machine(model: str) -> Preset:
    """Return :func:`select` for ``model`` on the GPUs of this machine."""
    from gptoss_lab import hardware

    gpus = hardware.gpus()
    first = gpus[0] if gpus else None
    return select(model, first.name if first else None, first.memory_gib if first else 0.0, len(gpus))
