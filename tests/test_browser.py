"""The playground in a real browser: JupyterLab started as `make lab` starts it, driven with Playwright.

The browser is Debian's chromium (``/usr/bin/chromium``, installed by ``make browser``),
launched by Playwright with that executable: nothing is downloaded. The test opens
``notebooks/07_playground.ipynb``, runs every cell, types the scripted prompt into the
playground, presses Send and waits for nano's streamed answer on the page. The screenshot
is kept in ``test-artifacts/playground.png``. JupyterLab and its kernel are stopped at the
end, pass or fail, and the test checks that no process of theirs is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gptoss_lab import process

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NOTEBOOK = "07_playground.ipynb"
PROMPT = "Hello, playground!"
ANSWER = "Hello! I am running on your vLLM server."

INSTALL = "sudo apt-get install -y chromium"
IN_CI = os.environ.get("CI", "").lower() == "true"
"""CI services set CI=true: there the browser test must run, never be skipped."""
MISSING = (f"Debian's chromium is not installed ({CHROMIUM} is missing). Install it with `{INSTALL}` "
           "(or `sudo make browser`) and run the test again.")

pytestmark = [
    pytest.mark.server, pytest.mark.slow,
    # Skipped before the shared server starts; in CI the test runs and fails in _need_browser instead.
    pytest.mark.skipif(not CHROMIUM.exists() and not IN_CI, reason=MISSING),
]


def _need_browser() -> None:
    """Fail (not skip) without the browser in CI (CI=true), where this test must run."""
    if not CHROMIUM.exists():
        pytest.fail(f"{MISSING} CI=true: this test is required in CI.", pytrace=False)
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.fail("The Python package playwright is missing: run `make setup` (it is in the test extra). "
                    "No `playwright install` is needed: the test drives the system chromium.", pytrace=False)


class Lab:
    """A running `gptoss-lab lab` (JupyterLab on notebooks/) and what is needed to stop it completely."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, token: str, log: Path) -> None:
        self.proc, self.port, self.token, self.log = proc, port, token, log
        self.kernels: set[str] = set()
        self.leftovers: list[int] = []
        """Kernel processes still alive after JupyterLab stopped (killed, and reported by the test)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"token {self.token}"}
        return httpx.request(method, f"{self.url}/api/{path}", headers=headers, timeout=30.0, **kwargs)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def remember_kernels(self) -> None:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            self.kernels |= {k["id"] for k in self.api("GET", "kernels").json()}


def _kernel_processes(kernel_ids: set[str]) -> list[int]:
    """Pids of processes whose command line names one of these kernels' connection files."""
    found = []
    for proc_dir in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc_dir / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if any(f"kernel-{kid}" in cmdline for kid in kernel_ids):
            found.append(int(proc_dir.name))
    return found


@contextlib.contextmanager
def _jupyterlab(server_url: str, tmp: Path) -> Iterator[Lab]:
    """Start JupyterLab the way `make lab` does, attached to the session's server; stop all of it after."""
    port, token = process.free_port(), secrets.token_hex(16)
    env = {
        **os.environ, "GPTOSS_LAB_BASE_URL": server_url, "JUPYTER_TOKEN": token,
        # A fresh JupyterLab profile: no saved workspace; settings below, not the user's.
        "JUPYTERLAB_SETTINGS_DIR": str(tmp / "lab-settings"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "lab-workspaces"),
    }
    settings = tmp / "lab-settings" / "@jupyterlab"
    for plugin, values in (("notebook-extension/tracker", '{"windowingMode": "none"}'),  # every cell in the page
                           ("apputils-extension/notification", '{"fetchNews": "false"}'),
                           ("docmanager-extension/plugin", '{"autosave": false}')):  # never save the outputs
        (settings / f"{plugin}.jupyterlab-settings").parent.mkdir(parents=True, exist_ok=True)
        (settings / f"{plugin}.jupyterlab-settings").write_text(values)
    log = tmp / "jupyterlab.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gptoss_lab.cli", "lab", "--jupyter-port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    lab = Lab(proc, port, token, log)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if lab.api("GET", "contents").status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"JupyterLab did not answer within 120 s:\n{lab.tail()}")
            time.sleep(1)
        else:
            raise AssertionError(f"`gptoss-lab lab` exited with {proc.returncode}:\n{lab.tail()}")
        yield lab
    finally:
        lab.remember_kernels()
        for kernel in lab.kernels:  # shut kernels down first: they run in sessions of their own
            with contextlib.suppress(httpx.HTTPError):
                lab.api("DELETE", f"kernels/{kernel}")
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        lab.leftovers = _kernel_processes(lab.kernels)
        for pid in lab.leftovers:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _restore(path: Path, committed: bytes, changed: list[Path]) -> None:
    """Put the notebook back as committed if JupyterLab wrote it; keep what it wrote in test-artifacts/."""
    if path.read_bytes() != committed:
        changed.append(ARTIFACTS / f"{path.stem}.browser-run.ipynb")
        changed[-1].write_bytes(path.read_bytes())
        path.write_bytes(committed)


def _wait_for_kernel(page, timeout: float = 120.0) -> None:  # page: playwright.sync_api.Page
    """Wait until the notebook's kernel is connected and idle, accepting a kernel dialog if one appears."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dialog = page.locator(".jp-Dialog .jp-mod-accept")
        if dialog.count():
            dialog.first.click()
        # The status bar says "Python 3 (ipykernel) | Idle" once the kernel is connected (the toolbar's
        # indicator already says idle while it connects, and Run All then asks for a kernel).
        status = " ".join(page.locator(".jp-StatusBar-Widget").all_inner_texts())
        if re.search(r"Python 3 \(ipykernel\) \| Idle", status):
            return
        time.sleep(0.5)
    raise AssertionError("The notebook's kernel was not ready within the time limit.")


def _run_all(page, code_cells: int, timeout: float = 600.0) -> None:
    """Run > Run All Cells, then wait until every code cell has run; fail on the first error output."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dialog = page.locator(".jp-Dialog .jp-mod-accept")
        if dialog.count():
            dialog.first.click()
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        traceback = [t for t in errors.all_inner_texts() if "Traceback" in t]
        if traceback:
            raise AssertionError(f"A cell of {NOTEBOOK} failed in the browser:\n{traceback[0][-3000:]}")
        prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
        if len(prompts) == code_cells and all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts):
            return
        time.sleep(1)
    raise AssertionError(f"{NOTEBOOK} did not finish within {timeout:.0f} s (prompts: {prompts})")


def test_playground_answers_in_a_real_browser(nano_server, tmp_path: Path) -> None:
    _need_browser()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "playground.png"
    shot.unlink(missing_ok=True)
    path = ROOT / "notebooks" / NOTEBOOK
    committed, changed = path.read_bytes(), []
    with contextlib.ExitStack() as stack:
        stack.callback(_restore, path, committed, changed)
        lab = stack.enter_context(_jupyterlab(nano_server.url, tmp_path))
        pids = (lab.proc.pid,)
        with sync_playwright() as pw:
            browser = pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
                args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000},
            )
            try:
                page = browser.new_page()
                page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}")
                page.locator(".jp-Notebook").wait_for(timeout=120_000)
                _wait_for_kernel(page)
                lab.remember_kernels()
                notebook = json.loads(committed)
                _run_all(page, sum(c["cell_type"] == "code" for c in notebook["cells"]))
                playground = page.locator(".gptoss-playground").first  # the notebook's own `pg`, left for you
                playground.scroll_into_view_if_needed()
                playground.locator(".gptoss-prompt textarea").fill(PROMPT)
                playground.locator("button.gptoss-send").click()
                try:
                    playground.locator(".gptoss-answer").get_by_text(ANSWER).wait_for(timeout=120_000)
                finally:
                    playground.scroll_into_view_if_needed()
                    page.screenshot(path=str(shot))
                assert "A greeting." in playground.locator(".gptoss-reasoning").inner_text()
                assert "tokens/s" in playground.locator(".gptoss-tokens-per-s").inner_text()
            finally:
                browser.close()
    assert not changed, f"JupyterLab saved {NOTEBOOK} (restored; what it wrote: {changed[0]}): keep autosave off"
    assert shot.exists() and shot.stat().st_size > 10_000
    assert not any(process.group_alive(pid) for pid in pids), "JupyterLab is still running"
    assert lab.kernels and not lab.leftovers, f"kernel processes left after JupyterLab stopped: {lab.leftovers}"
    assert nano_server.is_running(), "`gptoss-lab lab` must not stop a server it only attached to"
