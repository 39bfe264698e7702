"""Fault drill: each fault provoked for real against vLLM serving an untrained gpt-oss-nano (no training, no build).

The tests run in file order and hold at most one vLLM process tree at a time: the port race at bind time
(vLLM exits before it loads a model), then one shared server (a second start on its port, 64 concurrent
streams, then kill -9 of its engine, which ends it), then servers started by a "kernel" that is killed.
"Nothing left running" is checked on the processes of the group the lab started, never machine-wide.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import gptoss_lab as lab
from gptoss_lab import active, presets, process, registry
from gptoss_lab.config import log_dir
from gptoss_lab.errors import PortError, ServerError
from gptoss_lab.server import VLLMServer

pytestmark = pytest.mark.slow

PRESET = presets.PRESETS["nano-cpu"]


def _server(model: Path, port: int, log: Path) -> VLLMServer:
    return VLLMServer(str(model), args=PRESET.flags(), port=port, env=dict(PRESET.env), log_path=log)


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...), or None if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _family(leader: int) -> set[int]:
    """The live processes of the group ``leader`` leads, and their descendants wherever they moved."""
    table = {}
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _stat(int(entry.name))
        if fields and fields[0] != "Z":
            table[int(entry.name)] = (int(fields[1]), int(fields[2]))
    found = {pid for pid, (_, group) in table.items() if group == leader}
    grew = True
    while grew:
        more = {pid for pid, (parent, _) in table.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return found


def _alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (a zombie waiting to be reaped does not count)."""
    return {pid for pid in pids if (fields := _stat(pid)) is not None and fields[0] != "Z"}


def _title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _wait_gone(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return _alive(pids)


def _rss_mib(pids: set[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


# -- a program takes the port between the lab's check and vLLM's bind ---------------------------------------
def test_a_program_that_takes_the_port_after_the_check_is_named_and_nothing_is_left(untrained_nano, tmp_path) -> None:
    port = process.free_port()
    server = _server(untrained_nano, port, tmp_path / "vllm.log")
    server.start()  # the port was free when the lab checked it
    intruder = socket.create_server(("127.0.0.1", port))  # vLLM binds only after importing itself (tens of seconds)
    group = server.pid
    try:
        with pytest.raises(ServerError) as err:
            server.wait(timeout=600, progress=False)
    finally:
        intruder.close()
        server.stop(grace=5.0)
    message = str(err.value)
    assert f"vLLM exited with code 1 while starting on port {port}." in message, message
    assert "The port is already taken" in message and "lab.serve(port=8001)" in message
    assert "Address already in use" in message, "the log line that shows it"
    assert group is not None and not process.group_alive(group) and not server.pidfile.exists()


# -- one shared server ------------------------------------------------------------------------------------------
@dataclass
class Drill:
    server: VLLMServer
    second: VLLMServer
    """Another start asked for the same port right after the first, before vLLM had bound it."""
    refusal: str
    """What the second start raised (empty if it did not)."""


@pytest.fixture(scope="module")
def drill(untrained_nano: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drill]:
    logs = tmp_path_factory.mktemp("drill")
    port = process.free_port()
    first = _server(untrained_nano, port, logs / "first.log")
    second = _server(untrained_nano, port, logs / "second.log")
    first.start()
    try:
        refusal = ""
        try:
            second.start()
        except PortError as error:
            refusal = str(error)
        finally:
            second.stop(grace=5.0)  # if it started after all, it must not run beside the first
        first.wait(timeout=900, progress=False)
        yield Drill(first, second, refusal)
    finally:
        first.stop(grace=5.0)


def test_a_second_start_on_a_port_a_lab_start_holds_is_refused(drill: Drill) -> None:
    port = drill.server.port
    assert drill.refusal.startswith(f"Port {port} is taken: the lab is already starting a vLLM server there "
                                    f"(pid {drill.server.pid}"), drill.refusal
    assert f"gptoss-lab stop --port {port}" in drill.refusal and "lab.serve(port=...)" in drill.refusal
    assert drill.second.proc is None and not (drill.second.log_path or Path("/nonexistent")).exists()
    record = json.loads(drill.server.pidfile.read_text())
    assert record["pid"] == drill.server.pid, "the refused start left the first start's record alone"
    assert [r["pid"] for r in registry.running() if r["port"] == port] == [drill.server.pid]


def test_64_concurrent_streams_through_the_lab_client_all_complete(drill: Drill, monkeypatch) -> None:
    server = drill.server
    active.set(server)  # the autouse fixture in conftest.py restores the active server
    group_before = _rss_mib(_family(server.pid))
    mine_before = _rss_mib({os.getpid()})

    async def one(client, i: int) -> tuple[int, str | None]:  # noqa: ANN001
        stream = await client.chat.completions.create(
            model=server.model_id(), messages=[{"role": "user", "content": f"Fault drill stream {i}"}],
            max_tokens=16, stream=True, stream_options={"include_usage": True},
        )
        tokens, finish = 0, None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
            if chunk.usage:
                tokens = chunk.usage.completion_tokens
        return tokens, finish

    async def all_of_them() -> list[tuple[int, str | None]]:
        async with lab.async_client(max_retries=0, timeout=600) as client:
            return await asyncio.gather(*(one(client, i) for i in range(64)))

    started = time.monotonic()
    results = asyncio.run(all_of_them())
    took = time.monotonic() - started
    assert len(results) == 64, results
    assert all(1 <= tokens <= 16 and finish for tokens, finish in results), results  # each ran to its end
    assert took < 600
    assert server.is_running() and server.check_alive() is None
    grew_server = _rss_mib(_family(server.pid)) - group_before
    grew_mine = _rss_mib({os.getpid()}) - mine_before
    print(f"64 streams: {took:.1f} s; vLLM's processes grew {grew_server:.0f} MiB, the client {grew_mine:.0f} MiB")
    assert grew_server < 2048 and grew_mine < 512


def test_kill_9_of_the_engine_mid_stream_is_reported_and_leaves_nothing(drill: Drill, monkeypatch) -> None:
    """Last of the shared server's tests: it ends the server."""
    server = drill.server
    active.set(server)  # the autouse fixture in conftest.py restores the active server
    family = _family(server.pid)
    engines = [pid for pid in family if "EngineCore" in _title(pid)]
    assert engines, {pid: _title(pid) for pid in family}
    stream = lab.client(max_retries=0).chat.completions.create(
        model=server.model_id(), messages=[{"role": "user", "content": "Fault drill: a long stream"}],
        max_tokens=1500, stream=True, extra_body={"ignore_eos": True},
    )
    killed: dict[str, float] = {}

    def kill_after_the_first_chunks() -> Iterator[object]:
        for i, chunk in enumerate(stream):
            if i == 0:  # the stream is open, the engine generating
                os.kill(engines[0], signal.SIGKILL)  # as the kernel's out-of-memory killer would
                killed["at"] = time.monotonic()
            yield chunk

    with pytest.raises(ServerError) as err:
        lab.show_stream(kill_after_the_first_chunks(), out=io.StringIO())
    reported_after = time.monotonic() - killed["at"]
    message = str(err.value)
    assert message.startswith(f"The vLLM server on port {server.port} ("), message
    assert "it no longer serves" in message and "lab.serve()" in message and "Last lines of" in message
    assert "vLLM's engine process died" in message and "vLLM said:" in message
    assert "nanobind" not in message.split("Last lines of")[1], "the tail shows vLLM's lines, not exit noise"
    assert reported_after < 60, f"reported {reported_after:.0f} s after the kill"
    with pytest.raises(ServerError, match=f"The vLLM server on port {server.port}"):
        server.check_alive()
    assert not server.is_running()
    assert _wait_gone(family, 10) == set(), {pid: _title(pid) for pid in _alive(family)}
    assert not server.pidfile.exists()


# -- the process that started a server is killed --------------------------------------------------------------
_KERNEL = """
import sys, time
from pathlib import Path
from gptoss_lab import presets
from gptoss_lab.server import VLLMServer
preset = presets.PRESETS["nano-cpu"]
server = VLLMServer(sys.argv[1], args=preset.flags(), port=int(sys.argv[2]), env=dict(preset.env),
                    log_path=Path(sys.argv[3]))
server.start().wait(progress=False)
print(server.pid, flush=True)
time.sleep(900)
"""


@contextlib.contextmanager
def _kernel_with_a_server(model: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    """A Python process (a notebook kernel) that started a server; yields it, the server's port and pid."""
    port = process.free_port()
    kernel = subprocess.Popen([sys.executable, "-c", _KERNEL, str(model), str(port), str(tmp_path / "vllm.log")],
                              stdout=subprocess.PIPE, text=True)
    pid = 0
    try:
        line = kernel.stdout.readline()  # type: ignore[union-attr]
        assert line.strip().isdigit(), f"the kernel's server did not start:\n{(tmp_path / 'vllm.log').read_text()}"
        pid = int(line)
        yield kernel, port, pid
    finally:
        if kernel.poll() is None:
            kernel.kill()
        kernel.wait(timeout=30)
        if pid and process.group_alive(pid):
            process.stop_group(pid, grace=5.0)


def test_a_killed_kernel_takes_its_server_down_within_seconds(untrained_nano: Path, tmp_path: Path) -> None:
    with _kernel_with_a_server(untrained_nano, tmp_path) as (kernel, port, pid):
        family = _family(pid)
        assert len(family) >= 2, family  # vLLM's API server, its engine and helpers
        assert pid in [r["pid"] for r in registry.running()], "the lab recorded it"
        kernel.kill()
        kernel.wait(timeout=30)
        killed = time.monotonic()
        left = _wait_gone(family, 60)
        gone_after = time.monotonic() - killed
        assert left == set(), {p: _title(p) for p in left}
        print(f"the server's {len(family)} processes were gone {gone_after:.1f} s after the kernel's SIGKILL")
        assert gone_after < 30
        assert not process.port_in_use("127.0.0.1", port)
        assert [r for r in lab.orphans() if r["port"] == port] == [], "nothing left to report"
        assert not (log_dir() / f"vllm-{port}.json").exists(), "its stale record was swept"


def test_a_server_its_dead_kernel_could_not_stop_is_an_orphan_that_stop_port_stops(
    untrained_nano: Path, tmp_path: Path
) -> None:
    """A server hung when its kernel died (SIGSTOP here) never acts on its death signal: the registry finds it."""
    with _kernel_with_a_server(untrained_nano, tmp_path) as (kernel, port, pid):
        family = _family(pid)
        os.kill(pid, signal.SIGSTOP)
        kernel.kill()
        kernel.wait(timeout=30)
        time.sleep(2)
        assert _alive(family) >= {pid}, "a stopped server outlives its kernel"
        found = [r for r in lab.orphans() if r["port"] == port]
        assert [r["pid"] for r in found] == [pid] and found[0]["owner"] == kernel.pid
        out = subprocess.run([sys.executable, "-m", "gptoss_lab.cli", "stop", "--port", str(port)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and f"stopped the lab server on port {port}" in out.stdout, out.stderr
        assert _wait_gone(family, 10) == set(), {p: _title(p) for p in _alive(family)}
        assert [r for r in lab.orphans() if r["port"] == port] == []

