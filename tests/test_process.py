"""Child processes started from any thread stay up until stopped, and still die with the process that started them."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from gptoss_lab import process


def test_a_child_started_from_a_thread_that_ends_stays_up(tmp_path: Path) -> None:
    started: list[subprocess.Popen[bytes]] = []
    worker = threading.Thread(target=lambda: started.append(
        process.spawn(["sleep", "60"], env={"PATH": "/usr/bin:/bin"}, log_path=tmp_path / "sleep.log")))
    worker.start()
    worker.join()
    child = started[0]
    try:
        time.sleep(1.5)  # the old code's child got SIGTERM within 0.5 s of the thread's end
        assert child.poll() is None and process.group_alive(child.pid)
    finally:
        process.stop_group(child.pid, grace=5, proc=child)
    assert child.returncode is not None


def test_a_child_still_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    code = ("import os, sys, threading, time\n"
            "from pathlib import Path\n"
            "from gptoss_lab import process\n"
            "box = []\n"
            "t = threading.Thread(target=lambda: box.append(process.spawn(['sleep', '60'], "
            f"env={{'PATH': '/usr/bin:/bin'}}, log_path=Path({str(tmp_path / 'sleep.log')!r}))))\n"
            "t.start(); t.join()\n"
            "print(box[0].pid, flush=True)\n"
            "os.kill(os.getpid(), 9)\n")  # killed: no atexit clean-up runs
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 10
    while process.group_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not process.group_alive(pid)
