"""Which model a name means: the CPU stand-ins (gpt-oss-nano, nano-plain) or a real gpt-oss.

Notebooks choose a few settings by model, never by string tests of their own: greedy
decoding for the stand-ins, which are trained to replay under it; temperature 1.0 for
gpt-oss. ``is_nano`` accepts every name a notebook has at hand: the model key
(``GPTOSS_LAB_MODEL``), the name the server reports in ``/v1/models``, or a checkpoint folder.
"""

from __future__ import annotations

from pathlib import Path

NANO_MODELS: dict[str, str] = {"nano": "gpt-oss-nano", "nano-plain": "gpt-oss-nano-plain"}
"""The CPU stand-ins for gpt-oss: model key -> the name vLLM serves it under."""

NANO_MARKER = "nano.json"
"""The file a nano build writes into its checkpoint folder."""

NANO_CONTEXT = 4096
"""nano's context length: its checkpoint's ``max_position_embeddings`` and every nano engine's ``max_model_len``."""

NANO_DATE = "2026-01-01"
"""The system-message date nano replays its script for (vLLM's ``VLLM_SYSTEM_START_DATE``)."""


def is_nano(model: str | None = None) -> bool:
    """True when ``model`` is gpt-oss-nano or nano-plain (default: ``GPTOSS_LAB_MODEL``).

    Args:
        model: a model key (``nano``, ``nano-plain``, ``auto``, ``openai/gpt-oss-20b``), a served
            name (``gpt-oss-nano``, ``gpt-oss-nano-plain``) or a checkpoint folder. ``auto`` means
            nano on a machine without a GPU, as :func:`gptoss_lab.resolve_model` decides.

    Taught in ``notebooks/05_harmony.ipynb`` (greedy for nano, temperature 1.0 for gpt-oss).
    """
    from gptoss_lab.config import settings
    from gptoss_lab.hardware import has_gpu

    name = model or settings().model
    if name == "auto":
        return not has_gpu()
    if name in NANO_MODELS or name in NANO_MODELS.values():
        return True
    folder = Path(name).expanduser()
    return folder.is_absolute() and (folder / NANO_MARKER).is_file()


def resolve_model(model: str) -> str:
    """Map ``auto`` to ``nano`` (no GPU) or ``openai/gpt-oss-20b`` (GPU); any other model key is itself."""
    from gptoss_lab.hardware import has_gpu

    if model == "auto":
        return "openai/gpt-oss-20b" if has_gpu() else "nano"
    return model


def served_name(model: str) -> str:
    """The name a server started for model key ``model`` reports in ``/v1/models``."""
    return NANO_MODELS.get(model, model)


def model_key(served: str) -> str:
    """The model key of a served name: ``gpt-oss-nano`` -> ``nano``; any other name is its own key."""
    return next((key for key, name in NANO_MODELS.items() if name == served), served)
