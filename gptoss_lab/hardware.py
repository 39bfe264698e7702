"""What GPUs this machine has, read from ``nvidia-smi`` (no torch import)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class GPU:
    """One NVIDIA GPU."""

    name: str
    compute_capability: str
    memory_gib: float


@lru_cache(maxsize=1)
def gpus() -> tuple[GPU, ...]:
    """Return the GPUs ``nvidia-smi`` lists (empty without a driver or GPU)."""
    if shutil.which("nvidia-smi") is None:
        return ()
    query = "--query-gpu=name,compute_cap,memory.total"
    try:
        out = subprocess.run(
            ["nvidia-smi", query, "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ()
    if out.returncode != 0:
        return ()
    found = []
    for line in out.stdout.strip().splitlines():
        name, cap, mem = (part.strip() for part in line.split(","))
        found.append(GPU(name, cap, float(mem) / 1024))
    return tuple(found)


def has_gpu() -> bool:
    """True when ``nvidia-smi`` lists at least one GPU."""
    return bool(gpus())


def free_memory_gib(index: int = 0) -> float | None:
    """Free memory of GPU ``index`` in GiB, as ``nvidia-smi`` reports it now (None without a GPU)."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits", f"--id={index}"],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    return float(out.stdout.strip().splitlines()[0]) / 1024
