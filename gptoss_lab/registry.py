"""The pidfiles of lab-started vLLM servers: which run, which outlived their kernel, how to stop one.

A server the lab starts writes a pidfile (:func:`gptoss_lab.config.pidfile_path`) with its PID, its
starting process and both processes' identities (start time and command line), so a PID reused by
another program is never taken for a lab server.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from gptoss_lab import process
from gptoss_lab.config import log_dir, pidfile_path, private_dir

Record = dict[str, Any]
"""A pidfile's content: ``pid``, ``owner``, ``model``, ``url``, ``port``, ``log``, identities, ``pidfile``."""


def write(pid: int, *, model: str, url: str, port: int, log: Path | None) -> None:
    """Record the server process ``pid`` that this process started on ``port``."""
    record = {
        "pid": pid, "owner": os.getpid(), "model": model, "url": url, "port": port, "log": str(log),
        "identity": process.identity(pid),  # start time and command line
        "owner_identity": process.identity(os.getpid()),
    }
    path = pidfile_path(port)
    private_dir(path.parent)
    path.write_text(json.dumps(record))


def remove(port: int, *, pid: int | None = None) -> None:
    """Delete the pidfile of the server on ``port`` (it has stopped); with ``pid``, only if it records that process."""
    if pid is None or read(port).get("pid") == pid:
        pidfile_path(port).unlink(missing_ok=True)


def read(port: int) -> Record:
    """Return the pidfile record of ``port`` (empty when there is none or it cannot be read)."""
    try:
        record = json.loads(pidfile_path(port).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def live_claim(port: int) -> Record | None:
    """The record of ``port`` if it still holds the port: its server runs, or its starter is spawning it now."""
    record = read(port)
    if record.get("pid"):
        return record if still_ours(record) else None
    owner, recorded = int(record.get("owner") or 0), record.get("owner_identity")
    return record if owner and isinstance(recorded, dict) and process.same_process(owner, recorded) else None


def claim(port: int, log: Path) -> Record | None:
    """Write the pidfile of ``port`` with no pid yet, so one start at a time owns the port.

    Claims are made under an exclusive lock on one file beside the pidfiles, so of any number of
    simultaneous starts (threads or processes) exactly one wins. A stale record (its server gone,
    its starter dead) is replaced. Returns None once the port is claimed, or the live record that holds it.
    """
    import fcntl

    path = pidfile_path(port)
    private_dir(path.parent)
    with open(path.parent / ".claims.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        holder = live_claim(port)
        if holder is not None:
            return holder
        record = {"pid": None, "owner": os.getpid(), "owner_identity": process.identity(os.getpid()),
                  "port": port, "log": str(log)}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(record))
        return None


def records() -> list[Record]:
    """Return every pidfile's record, running or not (each with its ``pidfile`` path)."""
    out = []
    for path in sorted(log_dir().glob("vllm-*.json")) if log_dir().exists() else []:
        try:
            out.append({**json.loads(path.read_text()), "pidfile": str(path)})
        except (OSError, ValueError):
            continue
    return out


def still_ours(record: Record) -> bool:
    """True if the record's server runs: same PID, start time and command line as recorded at its start."""
    pid = int(record.get("pid") or 0)
    recorded = record.get("identity")
    return bool(pid) and isinstance(recorded, dict) and process.same_process(pid, recorded) \
        and process.group_alive(pid)


def running() -> list[Record]:
    """Return the records of every lab-started server still running (``pid``, ``port``, ``model``, ...)."""
    return [record for record in records() if still_ours(record)]


def orphans() -> list[Record]:
    """Return lab-started servers still running whose starting process (a kernel) has died.

    Each record has ``pid``, ``port``, ``model``, ``url`` and ``log``. Stop one with
    :func:`stop_port` or ``gptoss-lab stop --port PORT``.
    """
    found = []
    for record in records():
        pid, owner = int(record.get("pid") or 0), int(record.get("owner") or 0)
        if not pid:
            continue  # a start in progress (its claim on the port), or a stale claim the next start replaces
        if not still_ours(record):
            Path(str(record["pidfile"])).unlink(missing_ok=True)  # stale record: gone, or its PID reused
            continue
        owner_gone = not owner or not process.same_process(owner, record.get("owner_identity") or {})
        if pid and owner_gone:
            found.append(record)
    return found


def stop_port(port: int, grace: float = 15.0) -> bool:
    """Stop the lab-started server on ``port`` (found through its pidfile).

    Returns:
        True if a server was stopped, False if the lab has no running server there.
    """
    for record in records():
        if int(record.get("port") or 0) != port or not record.get("pid"):
            continue  # another port, or a start in progress that has no process yet
        if still_ours(record):
            process.stop_group(int(record["pid"]), grace=grace)
            Path(str(record["pidfile"])).unlink(missing_ok=True)
            return True
        Path(str(record["pidfile"])).unlink(missing_ok=True)  # stale: never signal a PID that was reused
    return False


def logged_path(port: int) -> Path | None:
    """Return the log of a lab-started server on ``port``, from its pidfile (for attached servers)."""
    try:
        log = Path(json.loads(pidfile_path(port).read_text())["log"])
    except (OSError, ValueError, KeyError):
        return None
    return log if log.exists() else None
