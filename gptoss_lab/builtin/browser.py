"""gpt-oss's ``browser`` tool over a local folder of documents, served over MCP for vLLM's ``--tool-server``.

The actions are those of gpt-oss's reference browser: ``search(query, topn)`` shows numbered
results, ``open(id, cursor, loc, num_lines)`` opens a result by its number or a page by its id,
``find(pattern, cursor)`` looks for text in an open page. Every display starts with its cursor,
``[3]``, and numbers its lines ``L0:``, ``L1:`` ... so the model can cite ``【3†L4-L6】``.
Mistakes (no hits, an unknown id or cursor) come back as tool output that says what to do,
never as a crash. Pages are indexed on start with ``bm25s``.

Run: ``python -m gptoss_lab.builtin.browser --corpus DIR --port P`` (the lab does it for you:
``lab.serve(builtin_tools=["browser"], corpus=DIR)``). See ``docs/builtin-tools.md``.
"""

# No `from __future__ import annotations`: the MCP server reads the tools' annotations at run time.
import argparse
import html.parser
import json
import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUFFIXES = {".md", ".markdown", ".txt", ".rst", ".html", ".htm", ".ipynb"}
MAX_FILE_BYTES = 2_000_000
WRAP = 160
"""Long lines are wrapped at this width so each cited line stays short."""
DEFAULT_LINES = 50

# The namespace description and tool descriptions gpt-oss was trained with (openai-harmony's
# ToolNamespaceConfig.browser()), with the source named for what it is.
INSTRUCTIONS = """Tool for browsing.
The `cursor` appears in brackets before each browsing display: `[{cursor}]`.
Cite information from the tool using the following format:
`【{cursor}†L{line_start}(-L{line_end})?】`, for example: `【6†L9-L11】` or `【8†L3】`.
Do not quote more than 10 words directly from the tool output.
sources=local (default: local)"""
SEARCH_DESCRIPTION = "Searches for information related to `query` and displays `topn` results."
OPEN_DESCRIPTION = """Opens the link `id` from the page indicated by `cursor` starting at line number `loc`, \
showing `num_lines` lines.
Valid link ids are displayed with the formatting: `【{id}†.*】`.
If `cursor` is not provided, the most recent page is implied.
If `id` is a string, it is treated as a fully qualified URL associated with `source`.
If `loc` is not provided, the viewport will be positioned at the beginning of the document or centered on \
the most relevant passage, if available.
Use this function without `id` to scroll to a new location of an opened page."""
FIND_DESCRIPTION = "Finds exact matches of `pattern` in the current page, or the page given by `cursor`."


# -- the corpus -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Page:
    """One document of the corpus."""

    id: str
    """Its path relative to the corpus root, e.g. ``docs/nano.md``: what ``open(id=...)`` takes."""
    title: str
    lines: tuple[str, ...]


def default_sources() -> list[Path]:
    """The lab's own README, docs/ and notebooks/ (a source checkout), else the package's modules.

    An installed wheel has no docs next to it; its modules' docstrings are the fallback corpus.
    """
    root = Path(__file__).resolve().parents[2]
    found = [p for p in (root / "README.md", root / "docs", root / "notebooks") if p.exists()]
    return found or [Path(__file__).resolve().parents[1]]


def _html_to_text(raw: str) -> tuple[str, str]:
    """Return (title, text) of an HTML document: scripts and styles dropped, blocks on their own lines."""

    class Extract(html.parser.HTMLParser):
        blocks = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "section", "article"}

        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []
            self.title = ""
            self._skip = 0
            self._in_title = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag in ("script", "style"):
                self._skip += 1
            self._in_title = tag == "title"
            if tag in self.blocks:
                self.parts.append("\n")
            if tag in ("h1", "h2", "h3"):
                self.parts.append("#" * int(tag[1]) + " ")

        def handle_endtag(self, tag: str) -> None:
            if tag in ("script", "style"):
                self._skip = max(0, self._skip - 1)
            self._in_title = False
            if tag in self.blocks:
                self.parts.append("\n")

        def handle_data(self, data: str) -> None:
            if self._in_title:
                self.title += data.strip()
            elif not self._skip:
                self.parts.append(data)

    parser = Extract()
    parser.feed(raw)
    text = re.sub(r"[ \t]+", " ", "".join(parser.parts))
    return parser.title, re.sub(r"\n\s*\n+", "\n\n", text).strip()


def _notebook_to_text(raw: str) -> str:
    cells = json.loads(raw).get("cells", [])
    parts = []
    for cell in cells:
        source = "".join(cell.get("source", []))
        if cell.get("cell_type") == "code" and source.strip():
            parts.append(f"```python\n{source}\n```")
        elif cell.get("cell_type") == "markdown":
            parts.append(source)
    return "\n\n".join(parts)


def _python_to_text(raw: str) -> str:
    match = re.match(r'\s*(?:#.*\n\s*)*(?:"""|\'\'\')(.*?)(?:"""|\'\'\')', raw, re.S)
    return match.group(1).strip() if match else ""


def load_page(path: Path, page_id: str) -> Page | None:
    """Read one file into a :class:`Page` (None when it is empty or unreadable)."""
    try:
        raw = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    title = ""
    if path.suffix in (".html", ".htm"):
        title, text = _html_to_text(raw)
    elif path.suffix == ".ipynb":
        try:
            text = _notebook_to_text(raw)
        except ValueError:
            return None
    elif path.suffix == ".py":
        text = _python_to_text(raw)
    else:
        text = raw
    if not text.strip():
        return None
    heading = re.search(r"^#{1,3} +(.+)$", text, re.M)
    title = title or (heading.group(1).strip() if heading else path.name)
    lines: list[str] = []
    for line in text.splitlines():
        lines.extend(textwrap.wrap(line, WRAP, drop_whitespace=False, replace_whitespace=False) or [""])
    return Page(id=page_id, title=title, lines=tuple(lines))


def load_corpus(sources: Sequence[Path]) -> list[Page]:
    """Load every supported file under ``sources`` (files or folders), skipping hidden folders.

    Page ids are paths relative to the common parent of the sources, with ``/`` separators.

    Raises:
        ValueError: a source does not exist, or nothing readable was found.
    """
    sources = [Path(s).expanduser().resolve() for s in sources]
    missing = [str(s) for s in sources if not s.exists()]
    if missing:
        raise ValueError(f"The browser's corpus folder does not exist: {', '.join(missing)}. "
                         "Pass an existing folder with --corpus DIR (or lab.serve(corpus=DIR)).")
    root = sources[0] if len(sources) == 1 and sources[0].is_dir() else _common_parent(sources)
    pages: dict[str, Page] = {}
    suffixes = SUFFIXES | ({".py"} if any(s.name == "gptoss_lab" for s in sources) else set())
    for path in _files(sources, suffixes):
        page_id = path.relative_to(root).as_posix()
        if path.stat().st_size <= MAX_FILE_BYTES and page_id not in pages:
            page = load_page(path, page_id)
            if page is not None:
                pages[page_id] = page
    if not pages:
        raise ValueError(f"No readable documents ({', '.join(sorted(SUFFIXES))}) under "
                         f"{', '.join(map(str, sources))}. Point --corpus at a folder of Markdown, HTML or text.")
    return list(pages.values())


def _common_parent(paths: Sequence[Path]) -> Path:
    parents = [p if p.is_dir() else p.parent for p in paths]
    common = parents[0]
    while not all(p == common or common in p.parents for p in parents):
        common = common.parent
    return common


def _files(sources: Iterable[Path], suffixes: set[str]) -> Iterable[Path]:
    for source in sources:
        if source.is_file():
            yield source
            continue
        for path in sorted(source.rglob("*")):
            hidden = any(part.startswith(".") for part in path.relative_to(source).parts)
            if path.is_file() and path.suffix in suffixes and not hidden and _inside(path, source) \
                    and not _binary(path):
                yield path


def _inside(path: Path, folder: Path) -> bool:
    """True if ``path`` resolves inside ``folder``: a symlink out of the corpus is not followed."""
    return path.resolve().is_relative_to(folder)


def _binary(path: Path) -> bool:
    """True if the file's first 8 KiB hold a NUL byte (not a text document, whatever its suffix)."""
    with path.open("rb") as file:
        return b"\0" in file.read(8192)


# -- the index --------------------------------------------------------------------------------
class Index:
    """BM25 over the pages (title and text), from the ``bm25s`` library."""

    def __init__(self, pages: Sequence[Page]) -> None:
        import bm25s

        self.pages = list(pages)
        self.by_id = {page.id: page for page in self.pages}
        self._tokenizer = bm25s.tokenization.Tokenizer(stopwords="en")
        texts = [f"{page.title}\n{page.id}\n" + "\n".join(page.lines) for page in self.pages]
        tokens = self._tokenizer.tokenize(texts, show_progress=False, return_as="tuple")
        self._bm25 = bm25s.BM25()
        self._bm25.index(tokens, show_progress=False)

    def search(self, query: str, topn: int) -> list[Page]:
        """The pages that match ``query``, best first (only pages with a positive score)."""
        ids = self._tokenizer.tokenize([query], update_vocab=False, show_progress=False, return_as="ids")
        unknown = self._tokenizer.word_to_id.get("")  # words the corpus never uses map to ""
        ids = [[token for token in ids[0] if token != unknown]]
        if not ids[0]:
            return []
        k = max(1, min(int(topn), len(self.pages)))
        docs, scores = self._bm25.retrieve(ids, k=k, show_progress=False)
        return [self.pages[int(d)] for d, s in zip(docs[0], scores[0], strict=True) if s > 0]


# -- the browser: displays, cursors and links -------------------------------------------------
@dataclass
class View:
    """One display the model has seen; its position in :attr:`Browser.views` is its cursor."""

    title: str
    lines: list[str]
    page_id: str | None = None
    """The corpus page this view shows (None for search and find results)."""
    links: dict[int, tuple[str, int]] = field(default_factory=dict)
    """Link number -> (page id, line to open at)."""


class Browser:
    """One session's browsing state: the displays seen so far, each with its cursor."""

    def __init__(self, index: Index, label: str = "local corpus") -> None:
        self.index = index
        self.label = label
        self.views: list[View] = []

    def search(self, query: str, topn: int = 10) -> str:
        """Show up to ``topn`` results for ``query``, numbered ``【n†title†page id】``."""
        hits = self.index.search(query, topn)
        if not hits:
            return (f"No results for `{query}` in the {self.label} ({len(self.index.pages)} pages). "
                    "Search again with other or fewer words.")
        terms = {t for t in re.findall(r"\w+", query.lower()) if len(t) > 2}
        lines, links = [], {}
        for n, page in enumerate(hits):
            links[n] = (page.id, -1)
            lines.append(f"【{n}†{page.title}†{page.id}】")
            lines.extend(_snippet(page, terms))
            lines.append("")
        return self._show(View(f"Search results for `{query}`", lines, links=links), 0, len(lines))

    def open(self, id: int | str = -1, cursor: int = -1, loc: int = -1, num_lines: int = -1) -> str:
        """Open link ``id`` of the page at ``cursor``, a page by its id, or scroll (``id=-1``)."""
        num_lines = DEFAULT_LINES if num_lines is None or int(num_lines) <= 0 else int(num_lines)
        if isinstance(id, str) and not id.lstrip("-").isdigit():
            page = self.index.by_id.get(id.removeprefix("./"))
            if page is None:
                return (f"Unknown page id `{id}`: the {self.label} has no such page. Page ids are the paths "
                        "shown last in search results (`【0†title†docs/page.md】`); or open a result by its "
                        "number: open(id=0).")
            return self._open_page(page, loc, num_lines)
        id = int(id)
        view, error = self._view(cursor)
        if view is None:
            return error
        if id < 0:  # scroll the page at cursor
            start = max(0, int(loc)) if loc is not None and int(loc) >= 0 else 0
            return self._show(View(view.title, view.lines, view.page_id, view.links), start, num_lines)
        if id not in view.links:
            have = f"links 0-{max(view.links)}" if view.links else "no links"
            return (f"Page [{self.views.index(view)}] has no link 【{id}†...】 (it has {have}). Open a page by "
                    "its id instead: open(id=\"docs/page.md\"), or search again.")
        page_id, at = view.links[id]
        return self._open_page(self.index.by_id[page_id], loc if loc is not None and int(loc) >= 0 else at,
                               num_lines)

    def find(self, pattern: str, cursor: int = -1) -> str:
        """Show the lines of the page at ``cursor`` that contain ``pattern`` (case-insensitive)."""
        view, error = self._view(cursor)
        if view is None:
            return error
        needle = pattern.lower()
        hits = [n for n, line in enumerate(view.lines) if needle and needle in line.lower()]
        if not hits:
            return (f"No match for `{pattern}` in page [{self.views.index(view)}] ({view.title}). "
                    "Try a shorter pattern, or search the corpus instead.")
        lines, links = [], {}
        for n, line_no in enumerate(hits[:20]):
            if view.page_id is not None:
                links[n] = (view.page_id, line_no)
            lines += [f"【{n}†match at L{line_no}】", view.lines[line_no], ""]
        title = f"Find results for text: `{pattern}` in `{view.title}`"
        return self._show(View(title, lines, links=links), 0, len(lines))

    # -- internals --------------------------------------------------------------------------
    def _open_page(self, page: Page, loc: int, num_lines: int) -> str:
        start = max(0, int(loc)) if loc is not None and int(loc) >= 0 else 0
        return self._show(View(page.title, list(page.lines), page.id), start, num_lines)

    def _view(self, cursor: int) -> tuple[View | None, str]:
        if not self.views:
            return None, "Nothing is open yet. Search first (search(query=...)), or open a page by its id."
        cursor = int(cursor) if cursor is not None else -1
        if cursor == -1:
            return self.views[-1], ""
        if not 0 <= cursor < len(self.views):
            return None, f"No page has cursor {cursor}; cursors 0-{len(self.views) - 1} exist."
        return self.views[cursor], ""

    def _show(self, view: View, start: int, count: int) -> str:
        self.views.append(view)
        cursor = len(self.views) - 1
        total = len(view.lines)
        start = min(start, max(0, total - 1))
        end = min(total, start + count)
        where = f" ({view.page_id})" if view.page_id else ""
        body = "\n".join(f"L{n}: {view.lines[n]}" for n in range(start, end))
        header = f"[{cursor}] {view.title}{where}\n**viewing lines [{start} - {max(start, end - 1)}] of {total - 1}**"
        return f"{header}\n\n{body}"


def _snippet(page: Page, terms: set[str], most: int = 2) -> list[str]:
    found = [line.strip() for line in page.lines if line.strip() and any(t in line.lower() for t in terms)]
    chosen = found[:most] or [line.strip() for line in page.lines if line.strip()][:1]
    return [line[:200] for line in chosen]


# -- the MCP server ---------------------------------------------------------------------------
def build_server(index: Index, label: str) -> Any:
    """The MCP server vLLM connects to: named ``browser``, tools ``search``, ``open`` and ``find``.

    vLLM names the harmony namespace after the server and uses its instructions as the
    namespace description. Browsing state is kept per vLLM request (its ``x-session-id``
    header) or per connection, and dropped by ``cleanup_session``, which vLLM calls at the end.
    """
    from mcp.server.mcpserver import Context, MCPServer

    server = MCPServer(name="browser", title="gptoss-lab local browser", instructions=INSTRUCTIONS)
    sessions: dict[str, Browser] = {}

    def browser_for(ctx: Context) -> Browser:
        headers = ctx.headers or {}
        key = headers.get("x-session-id") or f"connection-{id(ctx.session)}"
        if key not in sessions:
            sessions[key] = Browser(index, label)
        return sessions[key]

    @server.tool(name="search", description=SEARCH_DESCRIPTION, structured_output=False)
    def search(ctx: Context, query: str, topn: int = 10, source: str | None = None) -> str:
        return browser_for(ctx).search(query, topn)

    @server.tool(name="open", description=OPEN_DESCRIPTION, structured_output=False)
    def open_(ctx: Context, id: int | str = -1, cursor: int = -1, loc: int = -1, num_lines: int = -1,
              view_source: bool = False, source: str | None = None) -> str:
        return browser_for(ctx).open(id, cursor, loc, num_lines)

    @server.tool(name="find", description=FIND_DESCRIPTION, structured_output=False)
    def find(ctx: Context, pattern: str, cursor: int = -1) -> str:
        return browser_for(ctx).find(pattern, cursor)

    @server.tool(name="cleanup_session", description="Forget this session's pages.",
                 meta={"include_in_prompt": False}, structured_output=False)
    def cleanup_session(ctx: Context) -> str:
        headers = ctx.headers or {}
        sessions.pop(headers.get("x-session-id") or f"connection-{id(ctx.session)}", None)
        return "ok"

    return server


def main(argv: Sequence[str] | None = None) -> None:
    """Index the corpus and serve the browser over MCP (SSE transport, ``/TOKEN/sse``)."""
    from gptoss_lab.builtin.auth import serve_sse

    parser = argparse.ArgumentParser(prog="python -m gptoss_lab.builtin.browser", description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", action="append", type=Path,
                        help="a folder (or file) to index; repeatable (default: the lab's README, docs and notebooks)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    sources = args.corpus or default_sources()
    try:
        pages = load_corpus(sources)
    except ValueError as err:
        raise SystemExit(f"browser tool server: {err}") from None
    index = Index(pages)
    print(f"browser tool server: indexed {len(pages)} pages from {', '.join(map(str, sources))}", flush=True)
    serve_sse(build_server(index, "local corpus"), args.host, args.port)


if __name__ == "__main__":
    main()
