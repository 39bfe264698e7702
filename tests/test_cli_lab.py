"""``gptoss-lab lab`` with a server of its own (an untrained nano): Ctrl-C and a dying server, as a user meets them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gptoss_lab import process

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "lab-test-token"


@dataclass
class Lab:
    proc: subprocess.Popen[bytes]
    output: Path
    jupyter: str
    """JupyterLab's base URL."""
    server: int
    """The pid of the vLLM server the command started."""
    jupyter_pid: int

    def text(self) -> str:
        return self.output.read_text(errors="replace")


def _children(pid: int, text: str) -> list[int]:
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        if parent == pid and text in argv:
            found.append(int(entry.name))
    return found


def _wait_for(condition, seconds: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return condition()


@contextlib.contextmanager
def _lab(model: Path, tmp_path: Path) -> Iterator[Lab]:
    """Run `gptoss-lab lab --model FOLDER` in its own session until JupyterLab answers; kill what is left after."""
    port, jupyter_port = process.free_port(), process.free_port()
    cache = tmp_path / "cache"
    env = {**os.environ, "GPTOSS_LAB_CACHE_DIR": str(cache), "GPTOSS_LAB_PORT": str(port), "JUPYTER_TOKEN": TOKEN,
           "VLLM_CPU_KVCACHE_SPACE": "1", "PYTHONUNBUFFERED": "1", "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    env.pop("GPTOSS_LAB_BASE_URL", None)
    output = tmp_path / "lab.out"
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gptoss_lab.cli", "lab", "--model", str(model), "--jupyter-port", str(jupyter_port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{jupyter_port}"
    pidfile = cache / "servers" / f"vllm-{port}.json"
    server = 0

    def up() -> bool:
        try:
            return httpx.get(f"{url}/api/status", params={"token": TOKEN}, timeout=5).status_code == 200
        except httpx.HTTPError:
            return proc.poll() is not None  # stop waiting: it exited

    try:
        assert _wait_for(up, 900) and proc.poll() is None, f"`gptoss-lab lab` did not come up:\n{output.read_text()}"
        server = int(json.loads(pidfile.read_text())["pid"])
        [jupyter] = _children(proc.pid, "jupyterlab")
        yield Lab(proc, output, url, server, jupyter)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        for group in (server, *_children(proc.pid, "jupyterlab")):
            if group and process.group_alive(group):
                process.stop_group(group, grace=2.0)


def _start_kernel(lab: Lab) -> int:
    """Start a notebook kernel through JupyterLab's REST API; return its pid."""
    kernel = httpx.post(f"{lab.jupyter}/api/kernels", params={"token": TOKEN}, json={"name": "python3"}, timeout=60)
    assert kernel.status_code == 201, kernel.text
    kernel_id = kernel.json()["id"]
    found: list[int] = []

    def started() -> bool:
        found[:] = _children(lab.jupyter_pid, kernel_id)
        return bool(found)

    assert _wait_for(started, 60), "the kernel's process did not appear"
    return found[0]


def test_ctrl_c_stops_jupyterlab_gracefully_then_the_server_it_started(untrained_nano: Path, tmp_path: Path) -> None:
    with _lab(untrained_nano, tmp_path) as lab:
        kernel = _start_kernel(lab)
        os.killpg(lab.proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole foreground group
        code = lab.proc.wait(timeout=180)
        text = lab.text()
        assert code == 130, text[-3000:]
        assert "Stopping JupyterLab" in text and "Shutting down 1 kernel" in text, "JupyterLab's own graceful stop"
        for pid, what in ((lab.jupyter_pid, "JupyterLab"), (kernel, "its kernel"), (lab.server, "the vLLM server")):
            assert not process.pid_alive(pid) or not process.group_alive(pid), f"{what} (pid {pid}) is still running"
        assert not process.group_alive(lab.server)


def test_lab_says_at_once_when_its_server_dies_and_exits_1(untrained_nano: Path, tmp_path: Path) -> None:
    with _lab(untrained_nano, tmp_path) as lab:
        os.kill(lab.server, signal.SIGKILL)  # as the kernel's out-of-memory killer would
        killed = time.monotonic()
        assert _wait_for(lambda: "was killed by SIGKILL" in lab.text(), 30), lab.text()[-3000:]
        said_after = time.monotonic() - killed
        text = lab.text()
        assert f"(pid {lab.server}) was killed by SIGKILL" in text and "Last lines of" in text
        assert str(tmp_path / "cache" / "servers") in text.split("Last lines of")[1], "the log's path"
        assert "JupyterLab keeps running" in text and said_after < 10
        status = httpx.get(f"{lab.jupyter}/api/status", params={"token": TOKEN}, timeout=10)
        assert status.status_code == 200, "JupyterLab still serves the notebooks"
        assert _wait_for(lambda: not process.group_alive(lab.server), 5), "nothing of the dead server is left"
        os.killpg(lab.proc.pid, signal.SIGINT)
        assert lab.proc.wait(timeout=180) == 1
        assert not process.group_alive(lab.jupyter_pid)
