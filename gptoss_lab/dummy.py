"""Serve the real gpt-oss architectures with random weights: a capacity check before a download.

``vllm serve FOLDER --load-format dummy`` builds the model from ``FOLDER/config.json`` and
fills every weight with random numbers instead of reading a checkpoint. With the published
config of gpt-oss-20b or -120b the shapes, kernels, memory use, start time and speed are those
of the real model; only the answers are noise. The configs ship with the lab
(``gptoss_lab/data/models``); the tokenizer is built the way nano's is
(:mod:`gptoss_lab.nano.tokenizer`), so nothing is downloaded. Measured in ``docs/presets.md``.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from gptoss_lab.errors import DummyWeightsError
from gptoss_lab.models import NANO_MODELS

NOTE = (
    "Random weights (--load-format dummy): the answers are noise, but the speed, the GPU memory "
    "and the start time are those of the real model. Download the weights to get real answers."
)
PUBLISHED = {"openai/gpt-oss-20b": "gpt-oss-20b", "openai/gpt-oss-120b": "gpt-oss-120b"}
"""Models whose published ``config.json`` ships with the lab: repo id -> folder name."""
FILES = ("config.json", "generation_config.json")
MARKER = "dummy.json"


def published_config(model: str) -> dict[str, object]:
    """Return the published ``config.json`` of ``model`` (``openai/gpt-oss-20b`` or ``-120b``)."""
    return json.loads(_data(model).joinpath("config.json").read_text())


def folder_for(model: str, root: Path | None = None) -> Path:
    """Return where the random-weights folder of ``model`` lives (default: in the lab's cache)."""
    from gptoss_lab.config import default_cache_dir

    base = root if root is not None else default_cache_dir() / "dummy"
    return base / (PUBLISHED.get(model) or NANO_MODELS.get(model) or _unknown(model))


def model_folder(model: str, root: Path | None = None) -> Path:
    """Write (once) and return a folder vLLM serves with ``--load-format dummy`` for ``model``.

    The folder holds the model's published config (nano: nano's own config) and the
    harmony tokenizer; no weights. Reused when it is already complete.
    """
    folder = folder_for(model, root)
    marker = folder / MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("model") == model:
        return folder
    from gptoss_lab.nano import tokenizer

    work = folder.with_name(folder.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    tokenizer.build(work)
    if model in NANO_MODELS:
        from gptoss_lab.nano import model as nano_model

        nano_model.write_config(work)
        # nano's config names no architecture (its weights do); without one vLLM serves GptOssModel
        # as an embedding model.
        config = json.loads((work / "config.json").read_text())
        config["architectures"] = ["GptOssForCausalLM"]
        (work / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    else:
        source = _data(model)
        for name in FILES:
            (work / name).write_text(source.joinpath(name).read_text())
    (work / MARKER).write_text(json.dumps({"model": model, "weights": "dummy", "note": NOTE}, indent=1) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    work.rename(folder)
    return folder


def serve_args(model: str) -> list[str]:
    """Return the vLLM flags that serve ``model``'s folder with random weights under its own name."""
    named = [] if model in NANO_MODELS else ["--served-model-name", model]  # nano's preset names it
    return ["--load-format", "dummy", *named]


def _data(model: str) -> Traversable:
    if model not in PUBLISHED:
        _unknown(model)
    return resources.files("gptoss_lab") / "data" / "models" / PUBLISHED[model]


def _unknown(model: str) -> str:
    known = ", ".join([*PUBLISHED, *NANO_MODELS])
    raise DummyWeightsError(
        f"No published config for {model!r} ships with the lab, so it cannot be served with random "
        f"weights. Pass one of {known} (`gptoss-lab serve --model openai/gpt-oss-20b --dummy-weights`), "
        f"or serve a folder holding its config.json yourself: `vllm serve FOLDER --load-format dummy`."
    )
