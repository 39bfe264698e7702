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
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gptoss_lab import builtin, process
from gptoss_lab.builtin import browser, python_tool
from gptoss_lab.builtin.servers import ToolServers
from gptoss_lab.errors import ServerError

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


@pytest.fixture(scope="module")
def tools(corpus: Path) -> Iterator[ToolServers]:
    started = builtin.start(["browser", "python"], corpus=corpus, python_timeout=3, python_memory_mb=512)
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


def test_python_network_is_refused(tools: ToolServers) -> None:
    code = (f"import socket\ns = socket.create_connection(('127.0.0.1', {tools['browser'].port}), timeout=2)\n"
            "print('connected')")
    text = tools["python"].call("python", {"code": code})
    assert "connected" not in text
    assert "network access is disabled" in text
    if python_tool.network_namespace():  # and below the hook, an empty network namespace: only a down `lo`
        code = "print([line.split(':')[0].strip() for line in open('/proc/net/dev').readlines()[2:]])"
        assert tools["python"].call("python", {"code": code}) == "['lo']"


def test_python_write_outside_its_folder_is_refused(tools: ToolServers, tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    code = (f"open('inside.txt', 'w').write('ok'); print(open('inside.txt').read())\n"
            f"open({str(target)!r}, 'w').write('escaped')")
    text = tools["python"].call("python", {"code": code})
    assert text.startswith("ok") and "writing outside the working directory is refused" in text
    assert not target.exists()
    text = tools["python"].call("python", {"code": "import os; os.system('touch /tmp/gptoss-escape')"})
    assert "starting programs is disabled" in text


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
    """The tool servers start first; vLLM's start is refused (its port is taken), and they are stopped."""
    import gptoss_lab as lab

    monkeypatch.setenv("GPTOSS_LAB_CACHE_DIR", str(tmp_path / "cache"))  # the tool servers log here
    before = own_processes(TOOL_SERVER)
    with pytest.raises(ServerError, match="not a vLLM server"):
        lab.serve(str(tmp_path), port=foreign_port(), builtin_tools=["browser"], warmup=False, progress=False,
                  corpus=corpus)  # a local checkpoint: no nano build, and vLLM never starts
    [log] = (tmp_path / "cache" / "servers").glob("tool-browser-*.log")
    assert "Uvicorn running" in log.read_text(), "the browser server had started before vLLM was refused"
    assert own_processes(TOOL_SERVER) == before


def test_unknown_tool_name_is_refused() -> None:
    with pytest.raises(ServerError, match=r"Unknown built-in tool\(s\) \['shell'\]"):
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
            assert tool.log_path.read_text().count("GET /sse") >= 2  # at start, then for a request
    finally:
        server.stop()
    assert not any(process.group_alive(pid) for pid in pids)
    assert own_processes(TOOL_SERVER) == before
