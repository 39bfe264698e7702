"""Turn a failed vLLM start into a paragraph a learner can act on.

Each known failure is a regular expression over the server log and an
explanation with the fix. Taught in ``notebooks/01_serve.ipynb``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Diagnosis:
    """A recognised failure: a short title and what to do about it."""

    title: str
    advice: str
    evidence: str = ""
    """The log line that matched."""


_KNOWN: list[tuple[str, Diagnosis]] = [
    (
        r"Address already in use|address already in use",
        Diagnosis(
            "The port is already taken",
            "Another process listens on this port. Stop it, or start the lab on another "
            "port: `lab.serve(port=8001)` or `GPTOSS_LAB_PORT=8001`.",
        ),
    ),
    (
        r"error downloading or loading vocab file|invalid tiktoken vocab file|TIKTOKEN_ENCODINGS_BASE is not set",
        Diagnosis(
            "The harmony vocabulary is missing",
            "openai-harmony could not load o200k_base.tiktoken. Run `gptoss-lab vocab` "
            "(it provisions a verified copy offline) and start the server again from the lab, "
            "which exports TIKTOKEN_ENCODINGS_BASE for vLLM.",
        ),
    ),
    (
        r"(larger than the maximum number of tokens that can be stored in KV cache"
        r"|KV cache is needed, which is larger than the available KV cache memory)",
        Diagnosis(
            "The KV cache cannot hold --max-model-len tokens",
            "Lower the context length (for example "
            "`lab.serve(extra_args=[\"--max-model-len\", \"8192\"])`), or give the cache more "
            "memory: `--gpu-memory-utilization 0.95` on a GPU, `VLLM_CPU_KVCACHE_SPACE=<GiB>` "
            "on a CPU.",
        ),
    ),
    (
        r"CUDA out of memory|torch\.OutOfMemoryError|OutOfMemoryError",
        Diagnosis(
            "The GPU ran out of memory",
            "The model and its KV cache do not fit. Close other GPU processes (`nvidia-smi`), "
            "lower `--gpu-memory-utilization` or `max_model_len`, or choose the smaller model "
            "(`GPTOSS_LAB_MODEL=openai/gpt-oss-20b`).",
        ),
    ),
    (
        r"(We couldn't connect to 'https://huggingface\.co'|ConnectionError|Max retries exceeded"
        r"|Temporary failure in name resolution|LocalEntryNotFoundError)",
        Diagnosis(
            "No network to download the model",
            "vLLM tried to download the weights and could not reach huggingface.co. Download "
            "them on a connected machine (`hf download openai/gpt-oss-20b`) and copy the folder "
            "here, then set `GPTOSS_LAB_MODEL` to that folder; or use gpt-oss-nano "
            "(`GPTOSS_LAB_MODEL=nano`).",
        ),
    ),
    (
        r"(Repository Not Found|Repo id must be in the form|is not a local folder and is not a valid model identifier"
        r"|does not appear to have a file named config\.json|No such file or directory.*config\.json"
        r"|Invalid repository ID or local directory)",
        Diagnosis(
            "The model was not found",
            "The model name is neither a local checkpoint folder nor a Hugging Face repo vLLM "
            "could read. Check the spelling (`openai/gpt-oss-20b`, `openai/gpt-oss-120b`), or "
            "point `GPTOSS_LAB_MODEL` at a folder holding config.json and the weights.",
        ),
    ),
    (
        r"(mxfp4|MXFP4).*(compute capability|not supported)|compute capability.*(too low|below)",
        Diagnosis(
            "This GPU is too old for MXFP4",
            "gpt-oss ships MXFP4 weights, whose kernels need a recent GPU (Ampere or newer; "
            "Hopper/Blackwell for the fastest paths). Use a newer GPU or a cloud VM with an "
            "A100/H100/L40S.",
        ),
    ),
    (
        r"(CUDA driver version is insufficient|no kernel image is available"
        r"|forward compatibility was attempted on non supported HW|libcudart\.so.*cannot open)",
        Diagnosis(
            "CUDA and the driver do not match",
            "The installed vLLM/torch wheels were built for a newer CUDA than this driver "
            "supports. Update the NVIDIA driver, or install the vLLM release built for your "
            "CUDA (see `gptoss-lab doctor`).",
        ),
    ),
    (
        r"Unsupported CPU attention configuration",
        Diagnosis(
            "The CPU attention backend rejected the model",
            "vLLM's CPU backend supports only some head sizes (64 works). gpt-oss-nano uses 64; "
            "a custom checkpoint must too.",
        ),
    ),
    (
        r"engine core exited unexpectedly|Engine core proc \S+ died unexpectedly|EngineDeadError",
        Diagnosis(
            "vLLM's engine process died",
            "Its engine core process ended without being asked to (killed by a signal, such as the out-of-memory "
            "killer's SIGKILL, or crashed: the first error above it in the log says which; `dmesg | grep -i "
            "'killed process'` lists the OOM killer's victims), and the API server shut down after it. Start "
            "the server again; if memory ran out, lower `--max-model-len` or the KV cache "
            "(`--gpu-memory-utilization` on a GPU, `VLLM_CPU_KVCACHE_SPACE` on a CPU).",
        ),
    ),
]


def diagnose(log_text: str) -> Diagnosis | None:
    """Return the first known failure found in ``log_text`` (with the line that shows it), or None."""
    for pattern, diagnosis in _KNOWN:
        match = re.search(pattern, log_text)
        if match:
            start = log_text.rfind("\n", 0, match.start()) + 1
            end = log_text.find("\n", match.end())
            line = log_text[start : end if end != -1 else None].strip()
            return Diagnosis(diagnosis.title, diagnosis.advice, line[:400])
    return None
