"""Run untrusted Python inside a bubblewrap sandbox: namespaces, read-only system, one writable folder.

Each run is ``bwrap --unshare-all`` (new user, mount, PID, network, IPC, UTS and cgroup
namespaces) with ``--die-with-parent`` and ``--new-session``; inside, the root is read-only
and shows only ``/usr`` (with the ``/bin``, ``/lib`` links), the interpreter's own prefix,
a private ``/proc`` and a minimal ``/dev``. The only writable place is a fresh work folder,
bound at its host path. A launcher sets rlimits (processes, file size, open files, memory,
CPU) before it runs the code. Output is read with a byte cap, runs are limited in number,
and on timeout the whole sandbox (its PID namespace) is killed and the folder deleted.

What is not contained is listed in ``docs/builtin-tools.md``.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

from gptoss_lab.errors import SandboxError

INSTALL_HINT = ("install bubblewrap: `sudo apt-get install -y bubblewrap` (Debian/Ubuntu), "
                "`sudo dnf install -y bubblewrap` (Fedora), or `make setup` as root")

# Runs inside the sandbox before the model's code (read from stdin): rlimits, then the code.
LAUNCHER = r'''
import os, resource, sys
for name, value in {LIMITS}:
    resource.setrlimit(getattr(resource, name), (value, value))
os.environ.pop("PWD", None)
_code = sys.stdin.read()
sys.stdin = open(os.devnull)
del os, resource, name, value
try:
    exec(compile(_code, "<python>", "exec"), {{"__name__": "__main__", "__builtins__": __builtins__}})
except SystemExit:
    raise
except BaseException as _error:
    import traceback
    traceback.print_exception(type(_error), _error, _error.__traceback__.tb_next)  # not the launcher's frame
    sys.exit(1)
'''


@dataclass(frozen=True)
class Limits:
    """What one run of model-written code may use."""

    timeout: float = 30.0
    """Seconds of wall time before the sandbox is killed (``RLIMIT_CPU`` is set just above)."""
    memory_mb: int = 1024
    """Address-space limit (``RLIMIT_AS``) in MiB."""
    processes: int = 64
    """Processes and threads the code may start (``RLIMIT_NPROC``; Linux does not apply it to root)."""
    file_mb: int = 64
    """Largest file the code may write (``RLIMIT_FSIZE``) in MiB."""
    open_files: int = 256
    """Open file descriptors (``RLIMIT_NOFILE``)."""
    output_bytes: int = 20_000
    """Bytes of stdout and of stderr kept, each; the rest is read and dropped."""
    concurrent: int = 2
    """Runs at the same time; a further run waits up to ``timeout`` seconds for a slot."""


@dataclass(frozen=True)
class Result:
    """How one run ended."""

    stdout: bytes
    stderr: bytes
    stdout_dropped: int
    """Bytes of stdout past the cap (read, not kept)."""
    stderr_dropped: int
    returncode: int | None
    timed_out: bool
    busy: bool = False
    """True when no slot freed up in time and the code never ran."""


def _bwrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxError(f"The python tool needs bubblewrap (bwrap), which is not on PATH: {INSTALL_HINT}. "
                           "Without a sandbox the python tool refuses to start.")
    return path


def _system_args() -> list[str]:
    """Read-only ``/usr`` and the ``/bin``, ``/lib`` ... entries as the host has them (links or folders)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = f"/{name}"
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def _interpreter_args() -> list[str]:
    """Read-only binds of the interpreter's prefixes (base install and venv) outside ``/usr``."""
    args: list[str] = []
    seen: list[str] = []
    for prefix in (sys.base_prefix, sys.prefix, os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))):
        for path in dict.fromkeys((prefix, os.path.realpath(prefix))):
            if path in ("/", "/usr") or path.startswith("/usr/") or any(path.startswith(s + "/") or path == s
                                                                         for s in seen):
                continue
            seen.append(path)
            args += ["--ro-bind", path, path]
    return args


def command(workdir: str, limits: Limits) -> list[str]:
    """The ``bwrap`` command line that runs the launcher with ``workdir`` as the only writable folder."""
    rlimits = [("RLIMIT_NPROC", limits.processes), ("RLIMIT_FSIZE", limits.file_mb * 1024 * 1024),
               ("RLIMIT_NOFILE", limits.open_files), ("RLIMIT_AS", limits.memory_mb * 1024 * 1024),
               ("RLIMIT_CPU", int(limits.timeout) + 1), ("RLIMIT_CORE", 0)]
    return [
        _bwrap(), "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
        *_system_args(), "--proc", "/proc", "--dev", "/dev", *_interpreter_args(),
        "--bind", workdir, workdir, "--chdir", workdir, "--remount-ro", "/",
        "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", workdir,
        "--setenv", "TMPDIR", workdir, "--setenv", "LANG", "C.UTF-8",
        sys.executable, "-I", "-B", "-c", LAUNCHER.format(LIMITS=repr(rlimits)),
    ]


@functools.cache
def _probe(bwrap: str) -> str:
    """Empty when bwrap can build a sandbox here; else what went wrong."""
    workdir = tempfile.mkdtemp(prefix="gptoss-python-probe-")
    try:
        proc = subprocess.run(command(workdir, Limits()), input=b"print('ok')", capture_output=True,
                              timeout=60, env={})
    except (OSError, subprocess.TimeoutExpired) as err:
        return str(err)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if proc.returncode != 0 or proc.stdout.strip() != b"ok":
        return (proc.stderr.decode(errors="replace").strip() or f"exit status {proc.returncode}")[-500:]
    return ""


def require() -> None:
    """Raise :class:`SandboxError` unless bubblewrap is installed and can create its namespaces here."""
    problem = _probe(_bwrap())
    if problem:
        raise SandboxError(
            f"bubblewrap cannot create a sandbox on this machine ({problem}), so the python tool refuses "
            "to start. It needs user namespaces: check `sysctl kernel.unprivileged_userns_clone` (=1) and, "
            "on Ubuntu 24.04+, `sysctl kernel.apparmor_restrict_unprivileged_userns` (=0) or an AppArmor "
            f"profile for bwrap. If bwrap is missing or old, {INSTALL_HINT}.")


_SERVER_PREFIX = "gptoss-python-server-"


def remove_stale_folders() -> None:
    """Delete the work folders of python tool servers that died without cleaning up (killed by SIGKILL)."""
    for entry in os.scandir(tempfile.gettempdir()):
        if not entry.name.startswith(_SERVER_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        pid = entry.name[len(_SERVER_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(entry.path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Runner:
    """Runs code in sandboxes, a few at a time, each in a fresh folder under one parent folder."""

    def __init__(self, limits: Limits = Limits()) -> None:
        self.limits = limits
        self._slots = threading.BoundedSemaphore(limits.concurrent)
        self.root = tempfile.mkdtemp(prefix=f"{_SERVER_PREFIX}{os.getpid()}-")
        """Parent of every run's folder; removed by :meth:`close` (and at interpreter exit)."""
        atexit.register(self.close)

    def close(self) -> None:
        """Delete every work folder this runner made."""
        shutil.rmtree(self.root, ignore_errors=True)

    def run(self, code: str) -> Result:
        """Run ``code`` in a new sandbox and return what it printed and how it ended."""
        if not self._slots.acquire(timeout=self.limits.timeout):
            return Result(b"", b"", 0, 0, None, False, busy=True)
        try:
            workdir = tempfile.mkdtemp(prefix="gptoss-python-", dir=self.root)
            try:
                return _run(command(workdir, self.limits), code.encode(), self.limits)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        finally:
            self._slots.release()


def _run(argv: list[str], code: bytes, limits: Limits) -> Result:
    # bwrap itself gets no environment: the sandbox's PID 1 is bwrap, and its /proc/1/environ is readable inside.
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, env={})
    threading.Thread(target=_feed, args=(proc, code), daemon=True).start()
    kept: dict[int, bytearray] = {}
    dropped: dict[int, int] = {}
    deadline = time.monotonic() + limits.timeout
    timed_out = False
    with selectors.DefaultSelector() as selector:
        for stream in (proc.stdout, proc.stderr):
            assert stream is not None
            selector.register(stream, selectors.EVENT_READ)
            kept[stream.fileno()], dropped[stream.fileno()] = bytearray(), 0
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            for key, _ in selector.select(timeout=min(left, 1.0)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                room = max(0, limits.output_bytes - len(kept[key.fd]))
                kept[key.fd] += chunk[:room]
                dropped[key.fd] += len(chunk) - len(chunk[:room])
    if not timed_out:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)  # the code has closed its output: bwrap is exiting
    _kill(proc)
    out, err = proc.stdout, proc.stderr
    assert out is not None and err is not None
    result = Result(bytes(kept[out.fileno()]), bytes(kept[err.fileno()]), dropped[out.fileno()],
                    dropped[err.fileno()], proc.returncode, timed_out)
    out.close()
    err.close()
    return result


def _feed(proc: subprocess.Popen[bytes], code: bytes) -> None:
    assert proc.stdin is not None
    with contextlib.suppress(OSError):
        proc.stdin.write(code)
    with contextlib.suppress(OSError):
        proc.stdin.close()


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill bwrap's session: its PID namespace goes with it (PID 1 of a namespace takes everyone)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
