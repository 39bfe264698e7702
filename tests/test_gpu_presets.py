"""The vLLM server-log parsing that the GPU measurements use (benchmarks/gpu_presets.py); no GPU, no vLLM."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from gpu_presets import milestones, server_facts  # noqa: E402

LOG = """\
(APIServer pid=3581) INFO 11-27 21:37:58 [api_utils.py:273] non-default args: {'model_tag': '/tmp/models/gpt-oss-20b'}
(EngineCore pid=3846) INFO 11-27 21:38:25 [core.py:116] Initializing a V1 LLM engine (v0.26.0) with config: ...
(EngineCore pid=3846) INFO 11-27 21:38:29 [runner.py:5] Model loading took 13.03 GiB memory and 1.097992 seconds
(EngineCore pid=3846) INFO 11-27 21:38:50 [monitor.py:53] torch.compile took 21.05 s in total
(EngineCore pid=3846) INFO 11-27 21:39:16 [kv_cache_utils.py:1300] GPU KV cache size: 2,177,855 tokens
(EngineCore pid=3846) INFO 11-27 21:40:45 [gpu_model_runner.py:6000] Graph capturing finished in 89 secs, took 0.9 GiB
(EngineCore pid=3846) INFO 11-27 21:40:46 [core.py:3] init engine (profile, create kv cache, warmup model) took 138.2 s
(APIServer pid=3581) INFO 11-27 21:40:55 [launcher.py:50] Application startup complete.
"""


def test_milestones_are_seconds_from_launch_in_order() -> None:
    launch = dt.datetime(2026, 11, 27, 21, 37, 33).timestamp()
    at = milestones(LOG, launch)
    assert at == {"api_args": 25.0, "engine_init": 52.0, "weights_loaded": 56.0, "compiled": 77.0,
                  "kv_cache": 103.0, "graphs_captured": 192.0, "engine_ready": 193.0, "api_up": 202.0}
    assert list(at) == sorted(at, key=at.__getitem__)


def test_milestones_of_a_start_that_has_not_begun() -> None:
    assert milestones("", 0.0) == {}


def test_server_facts_reads_the_start_figures() -> None:
    facts = server_facts(LOG)
    assert facts["torch_compile_s"] == 21.05
    assert facts["graph_capture_s"] == 89.0
    assert facts["kv_cache_tokens"] == 2_177_855
    assert facts["triton_jit_after_start"] == 0
