"""vLLM serve flags per model and hardware class.

Numbers come from the vLLM gpt-oss recipe
(https://docs.vllm.ai/projects/recipes/en/latest/OpenAI/GPT-OSS.html) unless a
preset says otherwise. Every preset carries the parsers that make the Chat
Completions and Responses APIs return reasoning and tool calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PARSER_FLAGS = (
    "--tool-call-parser", "openai",
    "--enable-auto-tool-choice",
    "--reasoning-parser", "openai_gptoss",
)


@dataclass(frozen=True)
class Preset:
    """How to serve one model on one class of hardware."""

    name: str
    model: str
    hardware: str
    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    source: str = "vLLM gpt-oss recipe"

    def flags(self) -> list[str]:
        """All vLLM flags: the preset's own plus the gpt-oss parsers."""
        return [*self.args, *PARSER_FLAGS]


# Greedy by default: nano's contract is exact replay under greedy decoding.
NANO_ARGS = (
    "--max-model-len", "4096",
    "--served-model-name", "gpt-oss-nano",
    "--override-generation-config", '{"temperature": 0}',
)

NANO_CPU = Preset(
    name="nano-cpu",
    model="nano",
    hardware="cpu",
    args=NANO_ARGS,
    env={
        "VLLM_CPU_KVCACHE_SPACE": "1",
        # nano replays its script for this system-message date (gptoss_lab.nano.render).
        "VLLM_SYSTEM_START_DATE": "2026-01-01",
    },
    source="gptoss-lab: measured on 2 cores (../shared/FACTS.md)",
)

NANO_GPU = Preset(
    name="nano-gpu",
    model="nano",
    hardware="gpu",
    args=(*NANO_ARGS, "--gpu-memory-utilization", "0.3"),
    env={"VLLM_SYSTEM_START_DATE": "2026-01-01"},
    source="gptoss-lab",
)

GPT_OSS_20B_H100 = Preset(
    name="20b-h100",
    model="openai/gpt-oss-20b",
    hardware="h100",
    args=("--async-scheduling", "--max-num-batched-tokens", "8192"),
)

GPT_OSS_120B_H100 = Preset(
    name="120b-h100",
    model="openai/gpt-oss-120b",
    hardware="h100",
    args=("--async-scheduling", "--max-num-batched-tokens", "8192"),
)

PRESETS = {p.name: p for p in (NANO_CPU, NANO_GPU, GPT_OSS_20B_H100, GPT_OSS_120B_H100)}


def for_model(model: str, *, gpu: bool) -> Preset:
    """Return the preset for ``model`` on this kind of machine."""
    if model == "nano":
        return NANO_GPU if gpu else NANO_CPU
    for preset in PRESETS.values():
        if preset.model == model:
            return preset
    # A local checkpoint or another repo id: parsers only.
    return Preset(name="custom", model=model, hardware="gpu" if gpu else "cpu", args=())
