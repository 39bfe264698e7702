"""Known vLLM start failures map to advice; the line that matched is quoted back."""

from __future__ import annotations

from gptoss_lab.diagnose import diagnose

KV_LINE = (
    "(EngineCore pid=1) ERROR [core.py:1510] ValueError: To serve at least one request with the "
    "model's max seq len (4000000), (1.91 GiB KV cache is needed, which is larger than the "
    "available KV cache memory (1.0 GiB)."
)
LONG_WARNING = (
    "WARNING [model.py:2660] User-specified max_model_len (4000000) is greater than the derived "
    "max_model_len (max_position_embeddings=4096.0)."
)


def test_kv_cache_error_wins_over_a_max_model_len_warning() -> None:
    found = diagnose(f"{LONG_WARNING}\nother\n{KV_LINE}\n")
    assert found is not None and found.title.startswith("The KV cache cannot hold")
    assert found.evidence == KV_LINE


def test_unknown_failure_is_none() -> None:
    assert diagnose("Traceback ...\nZeroDivisionError: division by zero\n") is None


def test_gpu_failures_have_advice() -> None:
    cases = {
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate": "out of memory",
        "RuntimeError: CUDA driver version is insufficient for CUDA runtime version": "driver",
        "ValueError: MXFP4 quantization is not supported on compute capability 7.5": "MXFP4",
        "OSError: We couldn't connect to 'https://huggingface.co' to load the files": "network",
        "Exception: error downloading or loading vocab file": "vocabulary",
    }
    for line, word in cases.items():
        found = diagnose(line)
        assert found is not None, line
        assert word.lower() in (found.title + found.advice).lower(), (line, found)
