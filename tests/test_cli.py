"""The ``gptoss-lab`` command line, run as a user runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from gptoss_lab import process

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
