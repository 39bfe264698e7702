"""The built-in browser and python tool servers, through a real MCP client over SSE (as vLLM connects).

The servers are the real child processes :mod:`gptoss_lab.builtin.servers` starts; nothing
is mocked. The last tests check that a dead server gives a clear error and that no tool
server process is left. One test (``server`` mark) starts vLLM with ``--tool-server``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gptoss_lab import builtin, process
from gptoss_lab.builtin import browser, python_tool
from gptoss_lab.builtin.servers import ToolServers
from gptoss_lab.errors import ServerError, UnknownToolError

PAGES = {
    "guide/serving.md": "# Serving gpt-oss\n\nStart the server with lab.serve().\nThe kraken flag sets the port.\n",
    "notes.txt": "Plain notes about harmony channels: analysis, commentary and final.\n",
    "site/index.html": "<html><head><title>Cache page</title><style>p{}</style></head>"
                       "<body><h1>Prefix caching</h1><p>The marmoset cache keeps prompts.</p></body></html>",
    "lab.ipynb": json.dumps({"cells": [
        {"cell_type": "markdown", "source": ["# A notebook\n", "Tool loops with the quokka example."]},
        {"cell_type": "code", "source": ["print('quokka')"]},
    ]}),
}


TOOL_SERVER = "-m gptoss_lab.builtin."
"""In the command line of every tool server process (found with the ``own_processes`` fixture)."""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for name, text in PAGES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


SERVER_SECRET = "sekrit-" + uuid.uuid4().hex
"""Put in the tool servers' environment: the sandbox must not be able to read it."""


@pytest.fixture(scope="module")
def tools(corpus: Path) -> Iterator[ToolServers]:
    os.environ["GPTOSS_LAB_TEST_SECRET"] = SERVER_SECRET
    try:
        started = builtin.start(["browser", "python"], corpus=corpus, python_timeout=3, python_memory_mb=512)
    finally:
        del os.environ["GPTOSS_LAB_TEST_SECRET"]
    yield started
    started.stop()


def _session(url: str, calls: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Make ``calls`` in one MCP session (one vLLM request's worth), as vLLM's MCPToolServer does."""
    from mcp import ClientSession
    from mcp.client.sse import sse_client

    async def run() -> list[str]:
        async with sse_client(url=url, headers={"x-session-id": uuid.uuid4().hex}) as streams, \
                ClientSession(*streams) as session:
            await session.initialize()
            return [(await session.call_tool(tool, args)).content[0].text for tool, args in calls]

    return asyncio.run(run())


# -- what vLLM sees when it connects -----------------------------------------------------------
def test_servers_describe_themselves_as_vllm_expects(tools: ToolServers) -> None:
    from mcp import ClientSession
    from mcp.client.sse import sse_client

    async def describe(url: str) -> tuple[str, str, dict[str, Any]]:
        async with sse_client(url=url) as streams, ClientSession(*streams) as session:
            init = await session.initialize()
            listed = await session.list_tools()
            return init.server_info.name, init.instructions or "", {t.name: t for t in listed.tools}

    name, instructions, listed = asyncio.run(describe(tools["browser"].url))
    assert name == "browser" and "【{cursor}†L{line_start}(-L{line_end})?】" in instructions
    assert {"search", "open", "find"} <= set(listed)
    assert (listed["cleanup_session"].meta or {}).get("include_in_prompt") is False
    assert set(listed["open"].input_schema["properties"]) >= {"id", "cursor", "loc", "num_lines"}
    name, instructions, listed = asyncio.run(describe(tools["python"].url))
    assert name == "python" and "Internet access for this session is disabled" in instructions
    assert (listed["python"].meta or {}).get("include_in_prompt") is False  # harmony's python has no schema
    assert tools.flag() == ["--tool-server", f"{tools['browser'].address},{tools['python'].address}"]


# -- browser -----------------------------------------------------------------------------------
def test_search_open_by_number_and_find(tools: ToolServers) -> None:
    found, opened, matches, at_match = _session(tools["browser"].url, [
        ("search", {"query": "kraken port", "topn": 3}),
        ("open", {"id": 0}),
        ("find", {"pattern": "kraken"}),
        ("open", {"id": 0}),
    ])
    assert found.startswith("[0] Search results for `kraken port`")
    assert "【0†Serving gpt-oss†guide/serving.md】" in found
    assert opened.startswith("[1] Serving gpt-oss (guide/serving.md)")
    assert "L3: The kraken flag sets the port." in opened
    assert matches.startswith("[2] Find results") and "【0†match at L3】" in matches
    assert at_match.startswith("[3] Serving gpt-oss") and "viewing lines [3 -" in at_match


def test_open_by_page_id_and_scroll(tools: ToolServers) -> None:
    page, scrolled, by_cursor = _session(tools["browser"].url, [
        ("open", {"id": "site/index.html", "num_lines": 2}),
        ("open", {"loc": 2, "num_lines": 5}),
        ("open", {"id": "lab.ipynb", "cursor": 0}),
    ])
    assert page.startswith("[0] Cache page (site/index.html)") and "<style>" not in page
    assert "marmoset" in scrolled and "L2:" in scrolled
    assert "quokka" in by_cursor and "```python" in by_cursor


def test_search_with_no_hits_says_what_to_do(tools: ToolServers) -> None:
    (text,) = _session(tools["browser"].url, [("search", {"query": "xylophone zeppelin"})])
    assert text.startswith("No results for `xylophone zeppelin`") and "other or fewer words" in text


def test_open_unknown_id_or_link_says_what_to_do(tools: ToolServers) -> None:
    unknown, before_search, _, no_link, bad_cursor = _session(tools["browser"].url, [
        ("open", {"id": "docs/missing.md"}),
        ("open", {"id": 3}),
        ("search", {"query": "harmony"}),
        ("open", {"id": 9}),
        ("open", {"id": 0, "cursor": 42}),
    ])
    assert "Unknown page id `docs/missing.md`" in unknown and "open(id=0)" in unknown
    assert "Search first" in before_search
    assert "has no link 【9†...】" in no_link
    assert "No page has cursor 42" in bad_cursor


def test_sessions_keep_their_own_cursors(tools: ToolServers) -> None:
    server = tools["browser"]
    assert server.call("search", {"query": "marmoset"}, session="a").startswith("[0]")
    assert server.call("open", {"id": 0}, session="a").startswith("[1] Cache page")
    assert "Search first" in server.call("open", {"id": 0}, session="b")


def test_default_corpus_is_the_labs_docs_and_notebooks() -> None:
    ids = {page.id for page in browser.load_corpus(browser.default_sources())}
    assert "README.md" in ids and "docs/nano.md" in ids and "notebooks/01_serve.ipynb" in ids


def test_corpus_skips_symlinks_out_of_it_and_binary_files(tmp_path: Path) -> None:
    corpus, elsewhere = tmp_path / "corpus", tmp_path / "private"
    corpus.mkdir()
    elsewhere.mkdir()
    (elsewhere / "secret.md").write_text("# Secret\n\nnot for the model\n")
    (corpus / "page.md").write_text("# Page\n\nhello\n")
    (corpus / "leak.md").symlink_to(elsewhere / "secret.md")
    (corpus / "inner.md").symlink_to(corpus / "page.md")
    (corpus / "blob.txt").write_bytes(b"GIF89a\x00\x01\x02 binary")
    assert sorted(page.id for page in browser.load_corpus([corpus])) == ["inner.md", "page.md"]


def test_missing_corpus_folder_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ServerError, match="corpus folder does not exist") as err:
        builtin.start(["browser"], corpus=tmp_path / "nope", log_dir=tmp_path)
    assert "--corpus" in str(err.value)


# -- python ------------------------------------------------------------------------------------
def test_python_prints_and_cleans_up(tools: ToolServers) -> None:
    text = tools["python"].call("python", {"code": "import os\nprint(6 * 7)\nprint(os.getcwd())\n"
                                                   "print(sorted(k for k in os.environ))"})
    answer, workdir, env = text.splitlines()
    assert answer == "42"
    assert Path(workdir).name.startswith("gptoss-python-") and not Path(workdir).exists()
    assert env == "['HOME', 'LANG', 'PATH', 'TMPDIR']"  # no proxies, no keys


def test_python_infinite_loop_is_stopped(tools: ToolServers) -> None:
    text = tools["python"].call("python", {"code": "while True:\n    pass"})
    assert "[stopped: the code ran past the 3 s time limit]" in text


def test_python_big_allocation_is_refused(tools: ToolServers) -> None:
    text = tools["python"].call("python", {"code": "block = bytearray(2 * 1024**3)\nprint('allocated')"})
    assert "MemoryError" in text and "512 MiB memory limit" in text and "allocated" not in text


def test_python_writes_in_its_own_folder(tools: ToolServers) -> None:
    code = "open('inside.txt', 'w').write('ok'); print(open('inside.txt').read())"
    assert tools["python"].call("python", {"code": code}) == "ok"


def test_python_network_is_unreachable(tools: ToolServers) -> None:
    code = (f"import socket\ns = socket.create_connection(('127.0.0.1', {tools['browser'].port}), timeout=2)\n"
            "print('connected')")
    text = tools["python"].call("python", {"code": code})
    assert "connected" not in text and "ConnectionRefusedError" in text
    code = "print([line.split(':')[0].strip() for line in open('/proc/net/dev').readlines()[2:]])"
    assert tools["python"].call("python", {"code": code}) == "['lo']"  # an empty network namespace


# -- python: each escape the old audit-hook guard let through is contained -------------------
@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A host folder the sandbox must not touch, with a file and a sub-folder in it."""
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "data.txt").write_text("precious")
    return tmp_path


def test_chdir_then_relative_write_stays_inside(tools: ToolServers, outside: Path) -> None:
    code = f"import os\nos.chdir({str(outside)!r})\nopen('escaped.txt', 'w').write('x')"
    text = tools["python"].call("python", {"code": code})
    assert "FileNotFoundError" in text and not (outside / "escaped.txt").exists()
    text = tools["python"].call("python", {"code": "import os\nos.chdir('/')\nopen('escaped.txt', 'w')"})
    assert "Read-only file system" in text


def test_dir_fd_open_stays_inside(tools: ToolServers, outside: Path) -> None:
    code = (f"import os\nfd = os.open({str(outside)!r}, os.O_RDONLY)\n"
            "os.open('escaped.txt', os.O_CREAT | os.O_WRONLY, dir_fd=fd)")
    text = tools["python"].call("python", {"code": code})
    assert "FileNotFoundError" in text and not (outside / "escaped.txt").exists()


def test_sqlite_and_mkfifo_cannot_create_files_outside(tools: ToolServers, outside: Path) -> None:
    code = f"import sqlite3\nsqlite3.connect({str(outside / 'db.sqlite')!r}).execute('create table t (x)')"
    assert "unable to open database" in tools["python"].call("python", {"code": code})
    code = f"import os\nos.mkfifo({str(outside / 'fifo')!r})"
    assert "FileNotFoundError" in tools["python"].call("python", {"code": code})
    assert sorted(p.name for p in outside.iterdir()) == ["keep"]


def test_chdir_then_rmtree_deletes_nothing_outside(tools: ToolServers, outside: Path) -> None:
    code = f"import os, shutil\nos.chdir({str(outside)!r})\nshutil.rmtree('keep')"
    assert "FileNotFoundError" in tools["python"].call("python", {"code": code})
    code = "import os, shutil\nos.chdir('/usr')\nshutil.rmtree('share')"
    assert "Read-only file system" in tools["python"].call("python", {"code": code})
    assert (outside / "keep" / "data.txt").read_text() == "precious" and Path("/usr/share").is_dir()


def test_programs_run_only_inside_the_sandbox(tools: ToolServers, outside: Path) -> None:
    marker = outside / "ran.txt"
    code = ("import multiprocessing, os, subprocess\n"
            f"p = multiprocessing.get_context('spawn').Process(target=os.system, args=('touch {marker}',))\n"
            "p.start(); p.join()\n"
            f"print(subprocess.run(['sh', '-c', 'touch {marker}; echo shell ran'], capture_output=True, text=True)"
            ".stdout.strip())")
    text = tools["python"].call("python", {"code": code})
    assert "shell ran" in text and not marker.exists()


def test_private_files_and_the_servers_environment_are_unreadable(tools: ToolServers, outside: Path) -> None:
    secret = outside / ".ssh" / "id_ed25519"
    secret.parent.mkdir()
    secret.write_text("PRIVATE KEY")
    code = (f"try:\n    print(open({str(secret)!r}).read())\nexcept OSError as err:\n    print(type(err).__name__)\n"
            "import glob\nfor path in glob.glob('/proc/[0-9]*/environ'):\n"
            "    try:\n        print(open(path, 'rb').read())\n    except OSError:\n        pass\n"
            "import os\nprint('parent', os.getppid(), 'home', os.path.exists(os.path.expanduser('~/.ssh')))")
    text = tools["python"].call("python", {"code": code})
    assert "PRIVATE KEY" not in text and text.startswith("FileNotFoundError")
    assert SERVER_SECRET not in text and "GPTOSS_LAB_TOOL_TOKEN" not in text  # only the sandbox's own processes
    assert "parent 1 home False" in text  # PID 1 is the sandbox's init, not the tool server


def test_a_setsid_grandchild_dies_with_the_timeout(tools: ToolServers) -> None:
    code = "import subprocess\nsubprocess.Popen(['setsid', 'sleep', '4321.5'])\nwhile True:\n    pass"
    text = tools["python"].call("python", {"code": code})
    assert "[stopped: the code ran past the 3 s time limit]" in text
    assert subprocess.run(["pgrep", "-f", "sleep 4321.5"], capture_output=True).stdout == b""


def test_output_is_capped_while_it_is_read(tools: ToolServers) -> None:
    server_pid = tools["python"].proc.pid
    before = _rss_mib(server_pid)
    text = tools["python"].call("python", {"code": "for _ in range(2_000_000):\n    print('x' * 63)"})
    assert text.startswith("x" * 63) and "[... 127980000 more bytes cut]" in text  # 128 MB printed
    assert _rss_mib(server_pid) - before < 64  # the old code buffered it all (450 MiB for 150 MB)


def test_file_size_and_processes_are_limited(tools: ToolServers) -> None:
    code = "open('big', 'wb').write(b'0' * (80 * 1024 * 1024))"
    assert "64 MiB file size limit" in tools["python"].call("python", {"code": code})
    code = ("import resource\n"
            "print(resource.getrlimit(resource.RLIMIT_NPROC), resource.getrlimit(resource.RLIMIT_NOFILE))")
    assert tools["python"].call("python", {"code": code}) == "(64, 64) (256, 256)"


def test_runs_beyond_the_limit_wait_for_a_slot() -> None:
    import threading
    import time

    limits = python_tool.Limits(timeout=20, concurrent=1)
    outputs: list[str] = []
    started = time.monotonic()
    threads = [threading.Thread(target=lambda: outputs.append(python_tool.run_code(
        "import time\ntime.sleep(1.5)\nprint('done')", limits))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outputs == ["done"] * 3, outputs
    assert time.monotonic() - started >= 4.5  # one after another


def test_tool_servers_answer_only_callers_with_the_token(tools: ToolServers) -> None:
    import httpx

    for server in tools.servers:
        assert server.token and server.token in server.url and server.token not in repr(server)
        for path in ("/sse", "/wrong-token/sse"):
            with httpx.stream("GET", f"http://{server.endpoint}{path}", timeout=5) as response:
                assert response.status_code == 404


def test_python_tool_refuses_to_start_without_bubblewrap(tmp_path: Path) -> None:

    from gptoss_lab.builtin import sandbox
    from gptoss_lab.errors import SandboxError

    hidden = {**os.environ, "PATH": "/nonexistent"}
    proc = subprocess.run([sys.executable, "-m", "gptoss_lab.builtin.python_tool", "--port", "0"],
                          env=hidden, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "apt-get install -y bubblewrap" in proc.stderr
    path = os.environ["PATH"]
    try:
        os.environ["PATH"] = "/nonexistent"
        with pytest.raises(SandboxError, match="bubblewrap"):
            builtin.start(["python"], log_dir=tmp_path)
        with pytest.raises(SandboxError, match="make setup"):
            sandbox.require()
    finally:
        os.environ["PATH"] = path


def test_a_killed_server_leaves_no_work_folder_behind(tmp_path: Path) -> None:
    import tempfile

    started = builtin.start(["python"], log_dir=tmp_path)
    pid = started["python"].proc.pid
    try:
        started["python"].call("python", {"code": "print(1)"})
        folders = list(Path(tempfile.gettempdir()).glob(f"gptoss-python-server-{pid}-*"))
        assert len(folders) == 1
        os.killpg(pid, signal.SIGKILL)
        started["python"].proc.wait(timeout=10)
    finally:
        started.stop()
    assert folders[0].exists()  # SIGKILL gave it no chance to clean up
    restarted = builtin.start(["python"], log_dir=tmp_path)  # a new server sweeps the dead one's folder
    restarted.stop()
    assert not folders[0].exists()


def _rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


# -- failures and clean-up ---------------------------------------------------------------------
def test_dead_tool_server_gives_a_clear_error(tmp_path: Path) -> None:
    started = builtin.start(["python"], log_dir=tmp_path)
    server = started["python"]
    pid = server.proc.pid
    try:
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=10)
        with pytest.raises(ServerError, match=r"python tool server .* has exited \(exit code -9\)") as err:
            server.call("python", {"code": "print(1)"})
        assert "lab.serve(builtin_tools=" in str(err.value)
        with pytest.raises(ServerError, match="has exited"):
            started.check()
    finally:
        started.stop()
    assert not process.group_alive(pid) and server.proc is None


def test_failed_vllm_start_stops_the_tool_servers(corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  own_processes, foreign_port) -> None:
    """The tool servers start first; vLLM's start is refused (a program took its port meanwhile); they are stopped."""
    import gptoss_lab as lab

    monkeypatch.setenv("GPTOSS_LAB_CACHE_DIR", str(tmp_path / "cache"))  # the tool servers log here
    before = own_processes(TOOL_SERVER)
    port = process.free_port()  # free when serve() checks it, before it starts anything
    start_tools = builtin.start

    def start_tools_then_lose_the_port(*args: object, **kwargs: object) -> ToolServers:
        tools = start_tools(*args, **kwargs)
        assert foreign_port(port=port) == port  # another program binds it while the tool servers start
        return tools

    monkeypatch.setattr(builtin, "start", start_tools_then_lose_the_port)
    with pytest.raises(ServerError, match="not a vLLM server"):
        lab.serve(str(tmp_path), port=port, builtin_tools=["browser"], warmup=False, progress=False,
                  corpus=corpus)  # a local checkpoint: no nano build, and vLLM never starts
    [log] = (tmp_path / "cache" / "servers").glob("tool-browser-*.log")
    assert "Uvicorn running" in log.read_text(), "the browser server had started before vLLM was refused"
    assert own_processes(TOOL_SERVER) == before


def test_unknown_tool_name_is_refused() -> None:
    with pytest.raises(UnknownToolError, match=r"Unknown built-in tool\(s\) \['shell'\]"):
        builtin.start(["shell"])


def test_no_tool_server_is_left(tools: ToolServers, own_processes) -> None:
    pids = [s.proc.pid for s in tools.servers]
    assert own_processes(TOOL_SERVER) == sorted(pids)
    tools.stop()
    assert not any(process.group_alive(pid) for pid in pids)
    assert own_processes(TOOL_SERVER) == []


# -- with vLLM ---------------------------------------------------------------------------------
def _replay_builtin_chain(client: Any, model: str, chain: list[Any]) -> Any:
    """Send a built-in tool entry's one request; check every turn vLLM ran inside it."""
    response = client.responses.create(model=model, **chain[0].request,
                                       extra_body={"enable_response_messages": True})
    steps = builtin.transcript(response)
    assert steps.source == "output_messages"
    assert [r.text for r in steps.rows if r.kind == "reasoning"] == [e.reply.reasoning for e in chain]
    calls = [e.reply.builtin for e in chain if e.reply.builtin is not None]
    assert [(r.detail, r.text) for r in steps.calls()] == [(c.recipient, c.text) for c in calls]
    assert [r.who for r in steps.results()] == [c.recipient for c in calls]
    assert response.output_text == chain[-1].reply.final == steps.answer()
    return response


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_runs_the_builtin_tool_loops_nano_learned(nano_dir: Path, own_processes) -> None:
    """vLLM starts with --tool-server, and runs each scripted browser and python loop inside one request.

    nano replays its turns only if vLLM builds every follow-up prompt exactly as the nano
    builder predicted (previous prompt, completion, tool message): this checks that too.
    """
    import gptoss_lab as lab
    from gptoss_lab.nano import script

    before = own_processes(TOOL_SERVER)
    server = lab.serve("nano", port=process.free_port(), builtin_tools=["browser", "python"],
                       corpus=builtin.SAMPLE_CORPUS, warmup=False, progress=False)
    try:
        assert server.tools is not None
        pids = [s.proc.pid for s in server.tools.servers]
        log = server.log_path.read_text()
        assert re.search(r"MCPToolServer initialized with tools: \['browser', 'python'\]", log), server.logs()
        assert f"--tool-server {server.tools.flag()[1]}" in " ".join(server.argv())
        client = lab.client()
        model = server.model_id()

        browse = _replay_builtin_chain(client, model, script.load().chain("builtin.browse"))
        assert [item.type for item in browse.output].count("web_search_call") == 2
        results = builtin.transcript(browse).results()
        assert results[0].text.startswith("[0] Search results for `gpt-oss-120b GPU memory`")
        assert "L8: With its MoE weights in MXFP4 it fits on a single 80 GB GPU" in results[1].text
        # Without output_messages the transcript falls back to the output items (no tool results there).
        items = builtin.transcript({"output": [item.model_dump() for item in browse.output]})
        assert items.source == "output" and not items.results()
        assert [r.detail for r in items.calls()] == ["browser (search)", "browser (open_page)"]
        assert items.answer() == browse.output_text
        assert "answers" in str(items) and "<pre" in items._repr_html_()

        python = _replay_builtin_chain(client, model, script.load().chain("builtin.python"))
        assert builtin.transcript(python).results()[0].text.strip() == "338350"
        for tool in server.tools.servers:
            assert tool.log_path.read_text().count(f"GET /{tool.token}/sse") >= 2  # at start, then for a request
    finally:
        server.stop()
    assert not any(process.group_alive(pid) for pid in pids)
    assert own_processes(TOOL_SERVER) == before
