"""Server lifecycle failures, provoked for real: each says what to do, nothing is left running."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gptoss_lab as lab
from gptoss_lab import active, process
from gptoss_lab.config import log_dir, pidfile_path
from gptoss_lab.errors import ServerError
from gptoss_lab.server import VLLMServer


def _failed_start(server: VLLMServer, timeout: float = 600) -> str:
    """Start ``server``, expect its start to fail, check nothing of it is left; return the message."""
    server.start()
    group = server.pid
    with pytest.raises(ServerError) as err:
        server.wait(timeout=timeout, progress=False)
    assert group is not None and not process.group_alive(group), "a failed start must leave no vLLM process"
    assert server.proc is None and not pidfile_path(server.port).exists()
    return str(err.value)


def test_port_taken_by_another_program(tmp_path: Path, foreign_port) -> None:
    port = foreign_port()
    server = VLLMServer("nano", port=port, log_path=tmp_path / "log")
    with pytest.raises(ServerError) as err:
        server.start()
    assert f"Port {port}" in str(err.value) and "not a vLLM server" in str(err.value)
    assert "lab.serve(port=...)" in str(err.value)
    assert server.proc is None and not (tmp_path / "log").exists(), "refused before anything was started"


def test_port_taken_by_a_vllm_server(nano_server) -> None:
    with pytest.raises(ServerError) as err:
        VLLMServer("nano", port=nano_server.port).start()
    assert "already running" in str(err.value) and "lab.connect()" in str(err.value)
    assert "gpt-oss-nano" in str(err.value)


def test_connect_to_nothing_says_how_to_start(monkeypatch) -> None:
    port = process.free_port()
    monkeypatch.setenv("GPTOSS_LAB_BASE_URL", f"http://127.0.0.1:{port}/v1")
    with pytest.raises(ServerError, match=r"lab.serve\(\)"):
        lab.connect()


@pytest.mark.vllm
def test_bad_model_path_is_diagnosed_and_cleaned_up(tmp_path: Path) -> None:
    message = _failed_start(
        VLLMServer(str(tmp_path / "no-such-model"), port=process.free_port(), log_path=tmp_path / "vllm.log")
    )
    assert "exited with code" in message
    assert "The model was not found" in message and "GPTOSS_LAB_MODEL" in message
    assert "Last lines of" in message


def test_attach_reuses_the_running_server(nano_server, monkeypatch) -> None:
    monkeypatch.setenv("GPTOSS_LAB_BASE_URL", nano_server.url)
    attached = lab.serve()
    assert attached.attached and attached.port == nano_server.port
    attached.stop()  # stopping an attached server never stops the real one
    assert nano_server.is_running()


def test_killed_parent_takes_its_server_down(tmp_path: Path) -> None:
    """A dead kernel must not leave an orphan: the child gets SIGTERM from the kernel."""
    code = (
        "import sys, time, os\n"
        "from pathlib import Path\n"
        "from gptoss_lab import process\n"
        "p = process.spawn([sys.executable, '-c', 'import time; time.sleep(600)'],"
        " env=dict(os.environ), log_path=Path(sys.argv[1]))\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "log")],
                              stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert process.group_alive(child)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while process.group_alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not process.group_alive(child)


def test_non_loopback_bind_requires_a_key(capsys, tmp_path: Path, foreign_port) -> None:
    """The key is generated and never printed whole (the start itself is refused: the port is taken)."""
    port = foreign_port("0.0.0.0")
    with pytest.raises(ServerError, match=f"Port {port}"):
        lab.serve(str(tmp_path), host="0.0.0.0", port=port)  # a local checkpoint: no nano build needed
    err = capsys.readouterr().err
    assert re.search(r"generated API key \S{4}\.\.\.\S{2} ", err), err


def test_import_is_light() -> None:
    code = "import gptoss_lab, sys; print(sorted(m for m in ('vllm','torch','jupyter','openai') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def test_orphan_is_found_and_stopped(tmp_path: Path, monkeypatch) -> None:
    """A server whose starting kernel died is listed by orphans() and stopped by stop_port()."""
    import json

    monkeypatch.setenv("GPTOSS_LAB_CACHE_DIR", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    child = process.spawn(
        [sys.executable, "-c", "import time; time.sleep(600)"], env=dict(os.environ),
        log_path=tmp_path / "log", tie_to_parent=False,
    )
    port = process.free_port()
    log_dir().mkdir(parents=True, exist_ok=True)
    record = {"pid": child.pid, "owner": dead.pid, "model": "nano", "url": "u", "port": port, "log": "x",
              "identity": process.identity(child.pid)}  # what start() records: start time and command line
    pidfile_path(port).write_text(json.dumps(record))
    assert [r["pid"] for r in lab.orphans()] == [child.pid]
    assert lab.stop_port(port)
    assert not process.group_alive(child.pid)
    assert lab.orphans() == []
    assert not lab.stop_port(port), "nothing left to stop"


@pytest.mark.vllm
def test_start_timeout_stops_everything(tmp_path: Path) -> None:
    started = time.monotonic()
    message = _failed_start(
        VLLMServer("nano-does-not-matter", port=process.free_port(), log_path=tmp_path / "log"), timeout=3
    )
    # By design 3 s + 5 s of grace + 5 s to reap; a wait that ignored its timeout ends with vLLM's own exit
    # ("exited with code", after importing vLLM), which the message check below tells apart.
    assert time.monotonic() - started < 60
    assert "not ready after 3 s" in message and "GPTOSS_LAB_START_TIMEOUT" in message


@pytest.mark.vllm
def test_kv_cache_too_small_is_diagnosed(nano_dir: Path, tmp_path: Path) -> None:
    """A context longer than the CPU KV cache can hold: vLLM exits, the lab says what to change."""
    message = _failed_start(
        VLLMServer(
            str(nano_dir), args=["--max-model-len", "4000000"], port=process.free_port(),
            env={"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ALLOW_LONG_MAX_MODEL_LEN": "1"},
            log_path=tmp_path / "vllm.log",
        )
    )
    assert "The KV cache cannot hold --max-model-len tokens" in message
    assert "--max-model-len" in message and "VLLM_CPU_KVCACHE_SPACE" in message
    assert "vLLM said:" in message and "KV cache" in message.split("vLLM said:")[1]


@pytest.mark.vllm
def test_no_network_for_the_download_is_diagnosed(tmp_path: Path) -> None:
    """A Hugging Face model id with the Hub unreachable (a dead endpoint, so on any machine)."""
    message = _failed_start(
        VLLMServer(
            "openai/gpt-oss-20b", port=process.free_port(), log_path=tmp_path / "vllm.log",
            env={"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_ETAG_TIMEOUT": "2",
                 "HF_HUB_DOWNLOAD_TIMEOUT": "2", "HF_HOME": str(tmp_path / "hf")},
        )
    )
    assert "No network to download the model" in message
    assert "hf download openai/gpt-oss-20b" in message and "GPTOSS_LAB_MODEL=nano" in message


@pytest.mark.vllm
def test_missing_vocabulary_is_diagnosed_at_the_first_request(nano_dir: Path, tmp_path: Path) -> None:
    """vLLM loads the harmony vocabulary lazily: the start succeeds, the warm-up request fails and is explained."""
    from gptoss_lab import presets

    empty = tmp_path / "no-vocabulary"
    empty.mkdir()
    preset = presets.PRESETS["nano-cpu"]
    server = VLLMServer(
        str(nano_dir), args=preset.flags(), port=process.free_port(), log_path=tmp_path / "vllm.log",
        env={**preset.env, "TIKTOKEN_ENCODINGS_BASE": str(empty)},
    )
    server.start()
    group = server.pid
    try:
        server.wait(progress=False)
        with pytest.raises(ServerError) as err:
            server.warmup()
    finally:
        server.stop(grace=5.0)
    assert not process.group_alive(group), "a failed warm-up must leave no vLLM process"
    message = str(err.value)
    assert "first request failed" in message and "The harmony vocabulary is missing" in message
    assert "gptoss-lab vocab" in message


def test_a_stopped_server_is_no_longer_current(monkeypatch) -> None:
    """After ``server.stop()``, ``lab.chat()`` and friends fall back to ``GPTOSS_LAB_BASE_URL``."""
    stopped = VLLMServer("m", port=process.free_port())
    active.set(stopped)
    monkeypatch.setenv("GPTOSS_LAB_BASE_URL", "http://127.0.0.1:9/v1")
    stopped.stop()
    assert active.get() is None and lab.base_url() == "http://127.0.0.1:9/v1"


def test_a_dead_server_of_ours_is_reported_with_its_cause(tmp_path: Path, monkeypatch) -> None:
    """A lab-started server whose process was SIGKILLed: check_alive and the client's next request say so."""
    import subprocess

    log = tmp_path / "vllm.log"
    log.write_text("INFO: serving\n")
    dead = VLLMServer("some-model", port=process.free_port(), log_path=log)
    dead.proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
    dead.served_name = "some-model"  # as after a start: the client asks no /models
    dead.proc.kill()
    dead.proc.wait()
    active.set(dead)
    with pytest.raises(ServerError, match=r"was killed by SIGKILL \(as the kernel's out-of-memory killer does\)"):
        lab.chat([{"role": "user", "content": "hi"}])  # connection refused: the client asks why
    assert dead.proc is None  # the rest of its group was stopped
