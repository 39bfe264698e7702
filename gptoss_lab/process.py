"""Child process groups that never outlive the lab.

vLLM starts several processes (API server, engine core, workers). The lab
starts it in a new session so the whole group can be signalled at once, and
registers every group it starts so interpreter exit stops what is left.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_LIVE: dict[int, subprocess.Popen[bytes]] = {}
_SPAWN_REQUESTS: queue.Queue[tuple[Callable[[], Any], dict[str, Any], threading.Event]] = queue.Queue()
_SPAWNER_LOCK = threading.Lock()
_SPAWNER: list[threading.Thread] = []


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM us when the process that started us dies.

    A killed kernel or test runner then takes its vLLM down instead of leaving an
    orphan holding the port and the GPU. Elsewhere than Linux this is a no-op and
    the pidfile check in :mod:`gptoss_lab.registry` finds orphans instead.

    Linux sends the signal when the *thread* that forked the child ends, so every child is
    forked by one daemon thread that lives as long as the process (:func:`_on_spawner_thread`).
    """
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def spawn(
    argv: list[str], *, env: dict[str, str], log_path: Path | None, tie_to_parent: bool = True
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new process group, stdout and stderr appended to ``log_path`` (None: this process's).

    With ``tie_to_parent`` the child is stopped when this process dies, even by SIGKILL.
    """
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") if log_path is not None else contextlib.nullcontext() as log:
        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT if log is not None else None,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent if tie_to_parent else None,
            )

        proc = _on_spawner_thread(start) if tie_to_parent else start()
    _LIVE[proc.pid] = proc
    return proc


def _on_spawner_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on the lab's spawner thread (a daemon that lives until the process exits) and return its value.

    A child forked from a worker thread (a widget's Start button) would otherwise get its
    death signal as soon as that thread finished.
    """
    with _SPAWNER_LOCK:
        if not _SPAWNER or not _SPAWNER[0].is_alive():
            _SPAWNER[:] = [threading.Thread(target=_spawner_loop, name="gptoss-lab-spawner", daemon=True)]
            _SPAWNER[0].start()
    box: dict[str, Any] = {}
    done = threading.Event()
    _SPAWN_REQUESTS.put((fn, box, done))
    done.wait()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _spawner_loop() -> None:
    while True:
        fn, box, done = _SPAWN_REQUESTS.get()
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc
        finally:
            done.set()


def _signal_reaches(send: Callable[[int, int], None], target: int) -> bool:
    try:
        send(target, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pid_alive(pid: int) -> bool:
    """Return True while process ``pid`` exists."""
    return _signal_reaches(os.kill, pid)


def group_alive(pgid: int) -> bool:
    """Return True while any live (non-zombie) process of the group ``pgid`` exists."""
    if not _signal_reaches(os.killpg, pgid):
        return False
    if Path("/proc").is_dir():
        return _others_alive(pgid)  # a zombie waiting to be reaped is not running
    return True


def stop_group(pgid: int, *, grace: float = 15.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc is not None:
            proc.poll()  # reap the leader so it does not linger as a zombie
        if not group_alive(pgid):
            break
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    deadline = time.monotonic() + 5
    while group_alive(pgid) and time.monotonic() < deadline:  # a big process takes a moment to exit after SIGKILL
        time.sleep(0.05)
    _LIVE.pop(pgid, None)


def identity(pid: int) -> dict[str, object] | None:
    """What tells process ``pid`` apart from a later one with the same number: start time and command line.

    ``start_time`` is in clock ticks since boot (``/proc/PID/stat`` field 22). None when the
    process does not exist (or this is not Linux).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    start_time = int(stat.rsplit(")", 1)[1].split()[19])
    return {"start_time": start_time, "cmdline": [a.decode(errors="replace") for a in cmdline.split(b"\0") if a]}


def same_process(pid: int, recorded: dict[str, object]) -> bool:
    """True if ``pid`` is still the process ``recorded`` (an :func:`identity`) describes, not a reused PID."""
    now = identity(pid)
    return now is not None and now["start_time"] == recorded.get("start_time") and \
        now["cmdline"] == recorded.get("cmdline")


def _others_alive(pgid: int) -> bool:
    """True if a process of the group is alive and not a zombie (reads /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _family(host: str) -> socket.AddressFamily:
    """``AF_INET6`` for an IPv6 address such as ``::1``, else ``AF_INET``."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def port_in_use(host: str, port: int) -> bool:
    """Return True if something accepts TCP connections at ``host:port`` (IPv4 or IPv6)."""
    host = host.strip("[]")
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    host = host.strip("[]")
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@atexit.register
def _stop_all() -> None:
    for pgid, proc in list(_LIVE.items()):
        stop_group(pgid, grace=5.0, proc=proc)
