"""``lab.serve(port=...)`` with a port it cannot use: a PortError saying what to do, and nothing started.

No test here starts vLLM: the port is refused before a model is resolved, built or launched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import gptoss_lab as lab
from gptoss_lab import process
from gptoss_lab.config import log_dir
from gptoss_lab.errors import PortError, ServerError
from gptoss_lab.server import VLLMServer


@pytest.fixture
def nothing_may_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[], None]:
    """Fail the test if serve() builds nano or starts tool servers; return a check that no server was launched."""
    from gptoss_lab import builtin, nano

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("serve() went on to build nano or start tool servers for a port it cannot use")

    monkeypatch.setattr(nano, "path", refuse)
    monkeypatch.setattr(builtin, "start", refuse)
    monkeypatch.setenv("GPTOSS_LAB_CACHE_DIR", str(tmp_path / "cache"))

    def check() -> None:
        assert not log_dir().exists(), "no log and no pidfile: nothing was started"

    return check


@pytest.mark.parametrize("port", [0, -1, 65536, 70000])
def test_a_port_out_of_range_is_refused(port: int, nothing_may_start) -> None:
    with pytest.raises(PortError) as err:
        lab.serve("nano", port=port)
    assert f"port={port} is out of range" in str(err.value) and "1 to 65535" in str(err.value)
    assert "lab.serve(port=8001)" in str(err.value)
    nothing_may_start()


@pytest.mark.parametrize("port", ["8001", 8001.0, True, "eighty"])
def test_a_port_that_is_not_an_int_is_refused(port: object, nothing_may_start) -> None:
    with pytest.raises(PortError) as err:
        lab.serve("nano", port=port)  # type: ignore[arg-type]
    assert f"port={port!r} is not a port number" in str(err.value) and "lab.serve(port=8001)" in str(err.value)
    nothing_may_start()


def test_a_port_held_by_another_program_is_refused_before_nano_is_built(foreign_port, nothing_may_start) -> None:
    port = foreign_port()
    with pytest.raises(PortError) as err:
        lab.serve("nano", port=port, builtin_tools=["browser"])
    message = str(err.value)
    assert f"Port {port} on 127.0.0.1 is taken by a program that is not a vLLM server" in message
    assert f"ss -ltnp 'sport = :{port}'" in message and "lab.serve(port=...)" in message
    nothing_may_start()


def test_port_errors_are_server_errors_and_value_errors() -> None:
    """Code that caught ServerError for a taken port still does; a bad value is also a ValueError."""
    assert issubclass(PortError, ServerError) and issubclass(PortError, ValueError)


def test_a_port_another_lab_start_is_claiming_is_refused(monkeypatch, tmp_path: Path, nothing_may_start) -> None:
    """Between a start and vLLM's bind (about a minute and a half) the port is free, but the lab's claim holds it."""
    port = process.free_port()
    first = VLLMServer("first", port=port, log_path=tmp_path / "first.log")
    first.claim_port()  # what start() does before it spawns vLLM
    with pytest.raises(PortError) as err:
        lab.serve("nano", port=port)
    message = str(err.value)
    assert f"Port {port} is taken: the lab is already starting a vLLM server there" in message
    assert str(tmp_path / "first.log") in message
    assert f"gptoss-lab stop --port {port}" in message and "lab.serve(port=...)" in message
    assert lab.orphans() == [] and not lab.stop_port(port), "a claim has no process: nothing to stop"
    assert first.pidfile.exists(), "the refused start left the first start's claim in place"


def test_a_claim_whose_starter_died_is_taken_over(tmp_path: Path, monkeypatch) -> None:
    import json
    import subprocess
    import sys

    monkeypatch.setenv("GPTOSS_LAB_CACHE_DIR", str(tmp_path / "cache"))
    port = process.free_port()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    log_dir().mkdir(parents=True)
    (log_dir() / f"vllm-{port}.json").write_text(json.dumps(
        {"pid": None, "owner": dead.pid, "owner_identity": {"start_time": 1, "cmdline": ["gone"]}, "port": port}))
    server = VLLMServer("m", port=port)
    server.check_port()  # no error: the claim's starter is gone
    server.claim_port()
    assert json.loads(server.pidfile.read_text())["owner"] != dead.pid


def test_of_many_simultaneous_starts_on_one_port_exactly_one_claims_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GPTOSS_LAB_CACHE_DIR", str(tmp_path / "cache"))
    port = process.free_port()
    barrier = threading.Barrier(16)
    won: list[int] = []
    refused: list[str] = []

    def start(i: int) -> None:
        barrier.wait()
        try:
            VLLMServer(f"server-{i}", port=port).claim_port()
            won.append(i)
        except PortError as error:
            refused.append(str(error))

    threads = [threading.Thread(target=start, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(won) == 1 and len(refused) == 15
    assert all(f"Port {port} is taken: the lab is already starting" in message for message in refused)
