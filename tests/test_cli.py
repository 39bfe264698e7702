"""The ``gptoss-lab`` command line, run as a user runs it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gptoss_lab import hardware, process

ROOT = Path(__file__).resolve().parents[1]


def test_lab_command_serves_the_notebooks_and_stops_with_jupyter(nano_server) -> None:
    """`make lab`: JupyterLab with token auth on notebooks/, attached to the running server."""
    port = process.free_port()
    env = {**os.environ, "GPTOSS_LAB_BASE_URL": nano_server.url, "JUPYTER_TOKEN": "lab-test-token"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gptoss_lab.cli", "lab", "--jupyter-port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        listing = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/contents", params={"token": "lab-test-token"})
                if r.status_code == 200:
                    listing = r.json()
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        if listing is None:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            raise AssertionError(f"JupyterLab did not come up:\n{proc.communicate(timeout=60)[0][-3000:]}")
        names = {item["name"] for item in listing["content"]}
        assert {"00_setup.ipynb", "01_serve.ipynb"} <= names
        denied = httpx.get(f"http://127.0.0.1:{port}/api/contents")
        assert denied.status_code == 403, "token auth must be on"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert f"Model server: {nano_server.url} (attached" in out
    assert "JupyterLab:   http://127.0.0.1:" in out and "token=lab-test-token" in out
    assert not process.group_alive(proc.pid)
    assert nano_server.is_running(), "an attached server is never stopped by `lab`"


def test_stop_without_a_lab_server_says_so() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gptoss_lab.cli", "stop", "--port", str(process.free_port())],
        capture_output=True, text=True,
    )
    assert out.returncode == 1 and "nothing stopped" in out.stderr


def test_nano_path_before_a_build_says_how_to_build(tmp_path: Path) -> None:
    env = {**os.environ, "GPTOSS_LAB_CACHE_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "gptoss_lab.cli", "nano", "path"], capture_output=True, text=True, env=env
    )
    assert out.returncode == 1 and "gptoss-lab nano build" in out.stderr


# -- gptoss-lab serve ----------------------------------------------------------------------------
def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gptoss_lab.cli", "serve", *args], capture_output=True, text=True,
                          env=env or dict(os.environ), timeout=120)


def test_serve_refuses_a_port_that_is_not_a_number() -> None:
    out = _serve("--port", "eighty")
    assert out.returncode == 2 and "argument --port: invalid int value: 'eighty'" in out.stderr


def test_serve_on_a_taken_port_says_so_and_starts_nothing(tmp_path: Path, foreign_port) -> None:
    env = {**os.environ, "GPTOSS_LAB_CACHE_DIR": str(tmp_path / "cache")}
    port = foreign_port()
    out = _serve("--model", str(tmp_path), "--port", str(port), env=env)  # a local checkpoint: no nano build
    assert out.returncode == 1 and out.stderr.startswith(f"error: Port {port} on 127.0.0.1 is taken by a program")
    assert "lab.serve(port=...)" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "cache" / "servers").exists(), "no log, no pidfile: nothing was started"


def test_serve_on_all_interfaces_generates_a_key_and_never_prints_it(tmp_path: Path, foreign_port) -> None:
    port = foreign_port("0.0.0.0")
    out = _serve("--model", str(tmp_path), "--host", "0.0.0.0", "--port", str(port))
    assert out.returncode == 1 and f"error: Port {port} on 0.0.0.0 is taken" in out.stderr
    assert re.search(r"Binding to 0\.0\.0\.0 exposes the server: generated API key \S{4}\.\.\.\S{2} ", out.stderr)


@pytest.mark.skipif(hardware.has_gpu(), reason="on a GPU machine this would start gpt-oss-20b")
def test_serve_a_real_model_without_a_gpu_names_nano() -> None:
    out = _serve("--model", "openai/gpt-oss-20b", "--port", str(process.free_port()))
    assert out.returncode == 1 and out.stderr.startswith("error: openai/gpt-oss-20b needs an NVIDIA GPU")
    assert "GPTOSS_LAB_MODEL=nano" in out.stderr


def test_serve_attaches_to_a_running_server_and_starts_nothing(nano_server) -> None:
    out = _serve(env={**os.environ, "GPTOSS_LAB_BASE_URL": nano_server.url})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"A server is already running at {nano_server.url}; nothing started."
    assert nano_server.is_running()


def _serve_until_ready(model: Path, tmp_path: Path) -> tuple[subprocess.Popen, int, Path, Path]:
    """Start `gptoss-lab serve --model FOLDER` in its own session; wait until it says Ctrl-C stops it.

    Returns the process, its port, the pidfile the lab writes and the file holding its output.
    """
    port = process.free_port()
    cache = tmp_path / "cache"
    env = {**os.environ, "GPTOSS_LAB_CACHE_DIR": str(cache), "VLLM_CPU_KVCACHE_SPACE": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("GPTOSS_LAB_BASE_URL", None)
    log = tmp_path / "serve.out"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gptoss_lab.cli", "serve", "--model", str(model),
                                 "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline and "Ctrl-C stops it." not in log.read_text():
        time.sleep(1)  # the line comes after the server is up and warmed
    return proc, port, cache / "servers" / f"vllm-{port}.json", log


@pytest.mark.slow
def test_serve_starts_a_server_and_ctrl_c_stops_it(untrained_nano: Path, tmp_path: Path) -> None:
    """`gptoss-lab serve --model FOLDER`: a server of its own, answering until Ctrl-C, then nothing is left."""
    proc, port, pidfile, log = _serve_until_ready(untrained_nano, tmp_path)
    try:
        assert proc.poll() is None, f"`gptoss-lab serve` exited:\n{log.read_text()[-3000:]}"
        served = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=10).json()["data"]
        assert [m["id"] for m in served] == [str(untrained_nano)]
        server = json.loads(pidfile.read_text())["pid"]
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole foreground group
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        with contextlib.suppress(ValueError, OSError):
            process.stop_group(json.loads(pidfile.read_text())["pid"], grace=5)
    text = log.read_text()
    assert f"Serving {untrained_nano} at http://127.0.0.1:{port}/v1" in text and "Ctrl-C stops it." in text
    assert code in (0, 130), text[-2000:]
    assert not process.group_alive(server) and not pidfile.exists()


@pytest.mark.slow
def test_serve_says_when_its_server_dies_and_exits_non_zero(untrained_nano: Path, tmp_path: Path) -> None:
    """kill -9 of the vLLM process (as the OOM killer would): `gptoss-lab serve` says so within seconds and exits 1."""
    proc, port, pidfile, log = _serve_until_ready(untrained_nano, tmp_path)
    try:
        assert proc.poll() is None, f"`gptoss-lab serve` exited:\n{log.read_text()[-3000:]}"
        server = json.loads(pidfile.read_text())["pid"]
        os.kill(server, signal.SIGKILL)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    text = log.read_text()
    assert code == 1, text[-2000:]
    assert f"The vLLM server on port {port} (pid {server}) was killed by SIGKILL" in text, text[-2000:]
    assert "Last lines of" in text
    assert not process.group_alive(server) and not pidfile.exists()
