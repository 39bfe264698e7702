"""Clean-up acts only on processes the lab recorded: same PID, start time and command line, or this run's id."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gptoss_lab import process
from gptoss_lab.registry import orphans, stop_port

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / "scripts" / "check-no-vllm.sh"


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """``sleep`` processes started by the test, each in its own process group; all ended afterwards."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def _sleep(sleepers: list[subprocess.Popen[bytes]], run_id: str | None = None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "GPTOSS_LAB_RUN_ID"}
    if run_id:
        env["GPTOSS_LAB_RUN_ID"] = run_id
    proc = subprocess.Popen(["sleep", "300"], env=env, start_new_session=True)
    sleepers.append(proc)
    return proc


def test_check_no_vllm_stops_only_its_own_runs_processes(sleepers: list[subprocess.Popen[bytes]]) -> None:
    mine = _sleep(sleepers, "run-mine-1")
    other_run = _sleep(sleepers, "run-other-2")
    no_run = _sleep(sleepers)  # a user's own server in another terminal
    result = subprocess.run(["bash", str(CHECK), "run-mine-1"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and f"{mine.pid} sleep 300" in result.stderr
    assert mine.wait(timeout=10) < 0
    assert other_run.poll() is None and no_run.poll() is None
    again = subprocess.run(["bash", str(CHECK), "run-mine-1"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "no process of test run run-mine-1 left running" in again.stdout


def test_check_no_vllm_needs_a_run_id() -> None:
    result = subprocess.run(["bash", str(CHECK)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "usage" in result.stderr


def _record(cache: Path, port: int, pid: int, identity: object, owner: int | None = None) -> Path:
    folder = cache / "servers"
    folder.mkdir(parents=True, exist_ok=True)
    owner = owner if owner is not None else os.getpid()
    path = folder / f"vllm-{port}.json"
    path.write_text(json.dumps({"pid": pid, "owner": owner, "model": "m", "url": f"http://127.0.0.1:{port}/v1",
                                "port": port, "log": "", "identity": identity,
                                "owner_identity": process.identity(owner)}))
    return path


def test_stop_acts_on_the_recorded_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           sleepers: list[subprocess.Popen[bytes]]) -> None:
    monkeypatch.setenv("GPTOSS_LAB_CACHE_DIR", str(tmp_path))
    proc = _sleep(sleepers)
    pidfile = _record(tmp_path, 41001, proc.pid, process.identity(proc.pid))
    assert stop_port(41001, grace=5)
    assert proc.wait(timeout=10) < 0 and not pidfile.exists()


@pytest.mark.parametrize("change", ["start_time", "cmdline", "no identity"])
def test_stop_leaves_a_process_that_only_shares_the_pid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        sleepers: list[subprocess.Popen[bytes]], change: str) -> None:
    """After a reboot a pidfile's PID can belong to an unrelated process: it is not signalled."""
    monkeypatch.setenv("GPTOSS_LAB_CACHE_DIR", str(tmp_path))
    proc = _sleep(sleepers)
    identity = process.identity(proc.pid)
    assert identity is not None
    if change == "start_time":
        identity["start_time"] = int(identity["start_time"]) - 1  # type: ignore[call-overload]
    elif change == "cmdline":
        identity["cmdline"] = ["python", "-m", "gptoss_lab.vllm_cli", "serve"]
    pidfile = _record(tmp_path, 41002, proc.pid, None if change == "no identity" else identity)
    assert not stop_port(41002, grace=5)
    assert proc.poll() is None and not pidfile.exists()  # alive, and the stale record is gone


def test_orphans_are_servers_whose_recorded_owner_is_gone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          sleepers: list[subprocess.Popen[bytes]]) -> None:
    monkeypatch.setenv("GPTOSS_LAB_CACHE_DIR", str(tmp_path))
    owned, orphan = _sleep(sleepers), _sleep(sleepers)
    _record(tmp_path, 41003, owned.pid, process.identity(owned.pid))
    gone_owner = subprocess.Popen(["true"])
    gone_owner.wait()
    _record(tmp_path, 41004, orphan.pid, process.identity(orphan.pid), owner=gone_owner.pid)
    assert [int(r["port"]) for r in orphans()] == [41004]  # type: ignore[call-overload]
