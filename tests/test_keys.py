"""Keys and tokens stay in the process that needs them: no command line, repr, copied log line or result file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from gptoss_lab import builtin, config
from gptoss_lab.bench import metrics, results
from gptoss_lab.redact import redact
from gptoss_lab.server import VLLMServer

KEY = "sk-lab-0123456789abcdef"
TOKEN = "Zq3xYw8vUt7sRq6pOn5mLk4j"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GPTOSS_LAB_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_vllm_gets_its_key_from_the_environment_not_the_command_line() -> None:
    server = VLLMServer(model="nano", api_key=KEY)
    assert KEY not in " ".join(server.argv()) and "--api-key" not in server.argv()
    assert server.environment()["VLLM_API_KEY"] == KEY


def test_a_server_without_a_key_does_not_inherit_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_API_KEY", "someone-elses-key")
    assert "VLLM_API_KEY" not in VLLMServer(model="nano").environment()


def test_reprs_hide_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPTOSS_LAB_API_KEY", KEY)
    assert config.settings().api_key == KEY and KEY not in repr(config.settings())
    assert KEY not in repr(VLLMServer(model="nano", api_key=KEY))


def test_a_lab_started_vllm_allows_no_browser_origin() -> None:
    argv = VLLMServer(model="nano").argv()
    assert argv[argv.index("--allowed-origins") + 1] == "[]"
    own = VLLMServer(model="nano", args=["--allowed-origins", '["http://127.0.0.1:8888"]']).argv()
    assert own.count("--allowed-origins") == 1
    assert "--allowed-origins" not in VLLMServer(model="nano", subcommand=("launch", "render")).argv()


def test_log_tails_the_lab_shows_are_redacted(cache: Path) -> None:
    log = cache / "vllm.log"
    log.write_text(f"INFO non-default args: {{'model': 'nano', 'api_key': ['{KEY}'], "
                   f"'tool_server': '127.0.0.1:4000/{TOKEN}'}}\nINFO Authorization: Bearer {KEY}\n")
    text = VLLMServer(model="nano", api_key=KEY, log_path=log).logs()
    assert KEY not in text and TOKEN not in text and "'api_key': ['***']" in text


def test_redact_hides_flags_headers_and_tool_tokens() -> None:
    line = (f"--api-key {KEY} --api-key={KEY} VLLM_API_KEY={KEY} Bearer {KEY} "
            f"--tool-server 127.0.0.1:4000/{TOKEN},127.0.0.1:4001/{TOKEN}")
    assert KEY not in redact(line) and TOKEN not in redact(line)
    assert redact("--max-model-len 2048 --port 8000 http://127.0.0.1:8000/v1/models") == \
        "--max-model-len 2048 --port 8000 http://127.0.0.1:8000/v1/models"


def test_benchmark_results_carry_no_key(cache: Path, tmp_path: Path) -> None:
    servers = cache / "servers"
    servers.mkdir()
    log = servers / "vllm-59999.log"
    log.write_text(f"INFO non-default args: {{'api_key': ['{KEY}'], 'tool_server': '127.0.0.1:4000/{TOKEN}'}}\n")
    (servers / "vllm-59999.json").write_text(json.dumps({"pid": 0, "port": 59999, "log": str(log)}))
    meta = results.environment("http://127.0.0.1:59999/v1")
    assert KEY not in meta["server_flags"] and TOKEN not in meta["server_flags"]
    meta["note"] = f"--api-key {KEY}"  # even a key that slipped into the metadata
    run = results.RunResult(settings={"workload": "chat"}, requests=[], metrics=metrics.compute([], 1.0),
                            meta=meta)
    json_path, csv_path = results.save(run, tmp_path / "out")
    for path in (json_path, csv_path):
        assert KEY not in path.read_text() and TOKEN not in path.read_text()


def test_the_labs_log_folder_is_private(cache: Path) -> None:
    logs = cache / "servers"
    logs.mkdir(mode=0o755)
    started = builtin.start(["browser"], corpus=builtin.SAMPLE_CORPUS, log_dir=logs)
    started.stop()
    assert stat.S_IMODE(os.stat(logs).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(config.private_dir(cache / "new" / "servers")).st_mode) == 0o700
