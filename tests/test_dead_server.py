"""A server of ours that died is named as dead wherever the learner meets it (fast: a killed `sleep` stands in
for vLLM's process; ``tests/test_fault_drill.py`` does the same to a real vLLM)."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import gptoss_lab as lab
from gptoss_lab import active, process
from gptoss_lab.diagnose import diagnose
from gptoss_lab.errors import ServerError
from gptoss_lab.server import VLLMServer

ENGINE_DIED = ("(APIServer pid=10860) WARNING 11-27 21:27:04 [core_client.py:817] [shutdown] MPClient: "
               "engine core exited unexpectedly; starting cleanup")


@pytest.fixture
def dead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> VLLMServer:
    """The current server: one this kernel started, whose process was killed (SIGKILL) after it logged a death."""
    log = tmp_path / "vllm.log"
    log.write_text(f"INFO: serving\n{ENGINE_DIED}\nINFO:     Finished server process [10860]\n"
                   "nanobind: leaked 4 instances!\n - leaked type \"triton._C.libtriton.ir.block\"\n"
                   " - ... skipped remainder\nSee https://nanobind.readthedocs.io/en/latest/refleaks.html\n")
    server = VLLMServer("some-model", port=process.free_port(), log_path=log)
    server.proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
    server.served_name = "some-model"
    server.proc.kill()
    server.proc.wait()
    active.set(server)  # the autouse fixture in conftest.py restores the active server
    return server


def _cut_off(error: Exception) -> Iterator[object]:
    """A stream that breaks before its first chunk, as one does when the server's process dies."""
    raise error
    yield  # pragma: no cover


@pytest.mark.parametrize("error", [
    httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
    httpx.ConnectError("All connection attempts failed"),
], ids=["cut-off", "refused"])
def test_a_stream_broken_by_our_servers_death_says_so(dead: VLLMServer, error: Exception) -> None:
    with pytest.raises(ServerError) as err:
        lab.show_stream(_cut_off(error), out=io.StringIO())
    message = str(err.value)
    assert message.startswith(f"The vLLM server on port {dead.port} (pid ") and "was killed by SIGKILL" in message
    assert "vLLM's engine process died" in message and "engine core exited unexpectedly" in message
    assert isinstance(err.value.__context__, type(error)), "the broken stream stays visible as the cause"


def test_a_stream_error_from_an_attached_server_is_left_as_it_was(dead: VLLMServer) -> None:
    """Only a server this kernel started is looked into: an attached server's errors pass through unchanged."""
    dead.attached = True
    with pytest.raises(httpx.RemoteProtocolError):
        lab.show_stream(_cut_off(httpx.RemoteProtocolError("cut")), out=io.StringIO())


def test_check_alive_keeps_saying_the_server_died(dead: VLLMServer) -> None:
    with pytest.raises(ServerError) as first:
        dead.check_alive()
    assert dead.proc is None, "the rest of its process group was stopped"
    with pytest.raises(ServerError) as again:
        dead.check_alive()
    assert str(again.value) == str(first.value)
    assert not dead.is_running()


def test_log_tails_leave_out_the_exit_noise_of_native_extensions(dead: VLLMServer) -> None:
    assert dead.logs(3).splitlines() == ["INFO: serving", ENGINE_DIED, "INFO:     Finished server process [10860]"]


def test_the_engine_dying_under_the_api_server_is_diagnosed() -> None:
    found = diagnose(f"INFO: ready\n{ENGINE_DIED}\nvllm.v1.engine.exceptions.EngineDeadError: EngineCore ...")
    assert found is not None and found.title == "vLLM's engine process died"
    assert found.evidence == ENGINE_DIED and "dmesg" in found.advice and "VLLM_CPU_KVCACHE_SPACE" in found.advice
