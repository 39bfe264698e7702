"""Sample gpt-oss directly with ``vllm.LLM``: harmony token ids in, completion token ids out.

No server and no chat template: the prompt is whatever harmony rendered, the
engine stops on harmony's assistant-action stop tokens, and the completion
tokens go back to harmony to be parsed. nano on CPU, the real model on a GPU.
Taught in ``notebooks/05_harmony.ipynb``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any


def engine_args(model: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """Prepare this process for ``vllm.LLM`` and return its keyword arguments for ``model``.

    ``vllm.LLM(**engine_args(model))`` starts the engine. The model defaults to
    ``GPTOSS_LAB_MODEL``. nano gets small, eager settings that fit a CPU (and no prefix
    caching: its contract is exact greedy replay); a real model on a GPU gets the GPU
    memory that is free now (a model server may hold the rest), or a
    :class:`~gptoss_lab.errors.GPUMemoryError` saying how to stop the server when too little is
    free. Extra keyword arguments go to ``vllm.LLM`` as they are. Taught in
    ``notebooks/05_harmony.ipynb``.
    """
    from gptoss_lab import harmony, presets, vocab
    from gptoss_lab.config import settings
    from gptoss_lab.hardware import has_gpu
    from gptoss_lab.models import NANO_CONTEXT, NANO_MODELS, is_nano, resolve_model
    from gptoss_lab.vllm_cli import patch_version_lookup

    vocab.ensure()
    harmony.encoding()
    patch_version_lookup()
    # Start the engine process with spawn, never fork: a forked engine core inside a Jupyter kernel
    # can die at start with no output (docs/decisions.md).
    os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
    name = resolve_model(model or settings().model)
    options: dict[str, Any] = {}
    if is_nano(name):
        if name in NANO_MODELS:
            from gptoss_lab import nano

            name = str(nano.path() if name == "nano" else nano.plain_path())
        options = {"max_model_len": NANO_CONTEXT, **presets.NANO_CPU_ENGINE}  # exact greedy replay, on a GPU too
        if has_gpu():
            options["gpu_memory_utilization"] = 0.3
        else:
            for variable, value in presets.NANO_CPU_ENV.items():
                os.environ.setdefault(variable, value)
    elif has_gpu() and "gpu_memory_utilization" not in kwargs:
        from gptoss_lab.hardware import free_memory_gib, gpus

        free = free_memory_gib()
        if free is not None:
            options["gpu_memory_utilization"] = gpu_share(name, free, gpus()[0].memory_gib)
    return {"model": name, **options, **kwargs}


def engine(model: str | None = None, **kwargs: Any) -> Any:
    """Start ``vllm.LLM`` in this process for ``model``: ``LLM(**engine_args(model, **kwargs))``.

    Starting takes about a minute on 2 CPU cores (model load, KV cache); stop it with
    :func:`shutdown` to give its memory back.
    """
    args = engine_args(model, **kwargs)
    from vllm import LLM

    return LLM(**args)


def gpu_share(model: str, free_gib: float, total_gib: float) -> float:
    """The ``gpu_memory_utilization`` that lets an engine for ``model`` use what is free now.

    vLLM reads the fraction as this engine's share of the whole card and refuses to
    start when less than that is free, so a server already holding 90% leaves 10%.

    Raises:
        GPUMemoryError: less is free than ``model`` needs, with what to do about it.
    """
    from gptoss_lab.errors import GPUMemoryError
    from gptoss_lab.launch import stop_hint
    from gptoss_lab.presets import MODEL_MEMORY_GIB

    need = MODEL_MEMORY_GIB.get(model, 0)
    usable = free_gib - 1.0  # leave room for the CUDA context and allocator slack
    if usable < need:
        raise GPUMemoryError(
            f"{model} needs about {need} GiB of GPU memory for an in-process engine, and {free_gib:.1f} of "
            f"{total_gib:.0f} GiB are free: the model server probably holds the rest. This step needs the GPU "
            f"memory a second copy of the model takes; stop the server first: {stop_hint()}."
        )
    return round(min(0.9, usable / total_gib), 3)


def sample(llm: Any, prompts: Sequence[Sequence[int]], *, max_tokens: int = 512, temperature: float = 0.0,
           **params: Any) -> list[list[int]]:
    """Generate a completion for each harmony-rendered prompt in one batch; return the completion ids.

    The shortcut for ``SamplingParams`` + ``TokensPrompt`` + ``llm.generate``. Generation
    stops on ``<|return|>`` or ``<|call|>``, which stay in the output so harmony can parse
    the last message. Greedy by default, which nano replays under; sample gpt-oss with
    ``temperature=1.0``, its recommended setting (greedy decoding can loop in the analysis
    channel).
    """
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    from gptoss_lab import harmony

    sampling = SamplingParams(max_tokens=max_tokens, temperature=temperature,
                              stop_token_ids=harmony.stop_tokens(), skip_special_tokens=False, **params)
    outputs = llm.generate([TokensPrompt(prompt_token_ids=list(p)) for p in prompts], sampling, use_tqdm=False)
    return [list(out.outputs[0].token_ids) for out in outputs]


def shutdown(llm: Any) -> None:
    """Stop the engine's processes and free its memory."""
    engine_core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if engine_core is not None and hasattr(engine_core, "shutdown"):
        engine_core.shutdown()
