"""Benchmark results: one run, a sweep, what produced them, and saving them as JSON and CSV.

The JSON keeps everything (settings, metrics, every request's timings, the environment);
the CSV has one row per run with the same metadata columns, for a spreadsheet.
Taught in ``notebooks/06_benchmark.ipynb``.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import json
import os
import platform
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gptoss_lab.api import auth_headers
from gptoss_lab.bench.metrics import Metrics, RequestRecord
from gptoss_lab.redact import redact, redact_args

COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (label, key in RunResult.row(), format)
    ("concurrency", "concurrency", "{}"),
    ("ok", "completed", "{}"),
    ("failed", "failed", "{}"),
    ("req/s", "request_throughput", "{:.2f}"),
    ("out tok/s", "output_throughput", "{:.1f}"),
    ("total tok/s", "total_token_throughput", "{:.1f}"),
    ("tok/s/user", "tokens_per_user", "{:.1f}"),
    ("TTFT ms p50", "median_ttft_ms", "{:.0f}"),
    ("TTFT p99", "p99_ttft_ms", "{:.0f}"),
    ("TPOT ms p50", "median_tpot_ms", "{:.1f}"),
    ("TPOT p99", "p99_tpot_ms", "{:.1f}"),
    ("ITL ms p50", "median_itl_ms", "{:.1f}"),
    ("E2E ms p50", "median_e2el_ms", "{:.0f}"),
    ("E2E p99", "p99_e2el_ms", "{:.0f}"),
)


def _get(url: str, key: str, path: str) -> Any:
    try:
        response = httpx.get(url.rstrip("/") + path, headers=auth_headers(key), timeout=3.0)
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError):
        return None


def _device() -> str:
    from gptoss_lab.hardware import gpus

    found = gpus()
    if found:
        return f"{len(found)} x {found[0].name} ({found[0].memory_gib:.0f} GiB)"
    return f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def _flags(url: str) -> str:
    """The server's vLLM flags: the lab's own server's arguments, else the 'non-default args' line of its log."""
    from gptoss_lab import active, registry

    current = active.get()
    if current is not None and current.url.rstrip("/") == url.rstrip("/"):
        if not current.attached:
            return redact_args(current.args, [current.api_key])
        log = current.log_path
    else:
        port = httpx.URL(url).port
        log = registry.logged_path(port) if port else None
    if log is not None and log.exists():
        with open(log, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if match := re.search(r"non-default args: (.*)$", line):
                    return redact(match.group(1).strip())
    return "unknown (the lab did not start this server and found no log of it)"


def environment(url: str, key: str = "") -> dict[str, Any]:
    """What produced a result: date, vLLM version, device, server flags, model, client machine."""
    from gptoss_lab.version import __version__
    from gptoss_lab.vllm_cli import vllm_version

    base = url.rstrip("/")
    root = base.removesuffix("/v1")
    version = _get(root, key, "/version")
    models = _get(base, key, "/models")
    model = (models or {}).get("data", [{}])[0] if models else {}
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "vllm_version": (version or {}).get("version") or f"{vllm_version()} (client side; server did not say)",
        "device": _device(),
        "server_flags": _flags(base),
        "model": model.get("id"),
        "model_root": model.get("root"),
        "max_model_len": model.get("max_model_len"),
        "base_url": base,
        "client": f"{platform.node()} {platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "gptoss_lab": __version__,
    }


@dataclass
class RunResult:
    """One benchmark run: its settings, every request, the metrics and the environment."""

    settings: dict[str, Any]
    requests: list[RequestRecord]
    metrics: Metrics
    meta: dict[str, Any]
    """What produced it: see :func:`environment`."""
    warmup_errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """Requests that failed (each with its error text in ``requests``)."""
        return self.metrics.failed

    @property
    def ok(self) -> bool:
        """True when every request completed."""
        return self.metrics.failed == 0 and self.metrics.completed > 0

    @property
    def message(self) -> str:
        """One line: all good, or how many failed and why (the most common error first)."""
        m = self.metrics
        total = m.completed + m.failed
        if not m.failed:
            return f"{m.completed} of {total} requests completed"
        errors = sorted(m.errors.items(), key=lambda kv: -kv[1])
        why = "; ".join(f"{n} x {text}" for text, n in errors[:3])
        return f"{m.failed} of {total} requests failed: {why}"

    def row(self) -> dict[str, Any]:
        """A flat dict: settings, metrics and metadata, one CSV row."""
        return {**self.settings, **self.metrics.flat(), **{f"meta_{k}": v for k, v in self.meta.items()}}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "run", "meta": self.meta, "settings": self.settings, "metrics": asdict(self.metrics),
                "warmup_errors": self.warmup_errors, "requests": [asdict(r) for r in self.requests]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        return cls(data["settings"], [RequestRecord(**r) for r in data["requests"]], Metrics(**data["metrics"]),
                   data["meta"], data.get("warmup_errors", []))

    def __str__(self) -> str:
        return _text_table([self]) + "\n" + self.message

    def __repr__(self) -> str:
        return f"<RunResult {self.settings['workload']} concurrency={self.settings.get('concurrency')}: {self.message}>"

    def _repr_html_(self) -> str:
        return _html_table([self], f"{self.settings['workload']} on {self.meta.get('model')}: {self.message}")


@dataclass
class Sweep:
    """Runs of one workload at rising concurrency."""

    workload: str
    planned: list[int]
    runs: list[RunResult] = field(default_factory=list)
    wall_s: float = 0.0
    """Wall time of the whole sweep, warm-ups included."""
    note: str = ""
    """Why it stopped early, if it did."""

    @property
    def meta(self) -> dict[str, Any]:
        return self.runs[0].meta if self.runs else {}

    def rows(self) -> list[dict[str, Any]]:
        return [r.row() for r in self.runs]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "sweep", "workload": self.workload, "planned": self.planned, "wall_s": self.wall_s,
                "note": self.note, "runs": [r.to_dict() for r in self.runs]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sweep:
        return cls(data["workload"], data["planned"], [RunResult.from_dict(r) for r in data["runs"]],
                   data["wall_s"], data.get("note", ""))

    def __str__(self) -> str:
        lines = [_text_table(self.runs), f"sweep wall time {self.wall_s:.1f} s"]
        lines += [f"concurrency {r.settings['concurrency']}: {r.message}" for r in self.runs if r.metrics.failed]
        return "\n".join(lines + ([self.note] if self.note else []))

    def __repr__(self) -> str:
        levels = [r.settings.get("concurrency") for r in self.runs]
        note = f"; {self.note}" if self.note else ""
        return f"<Sweep {self.workload} concurrency={levels}, {self.wall_s:.1f} s{note}>"

    def _repr_html_(self) -> str:
        caption = f"{self.workload} sweep on {self.meta.get('model')}: {self.wall_s:.1f} s wall"
        return _html_table(self.runs, caption + (f"; {self.note}" if self.note else ""))


def _cells(run: RunResult) -> list[str]:
    row = run.row()
    out = []
    for _, key, fmt in COLUMNS:
        value = row.get(key)
        measured = run.metrics.completed or key in ("concurrency", "completed", "failed")
        out.append("-" if value is None or not measured else fmt.format(value))
    return out


def _text_table(runs: Sequence[RunResult]) -> str:
    head = [label for label, _, _ in COLUMNS]
    body = [_cells(r) for r in runs]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=False)]
    lines = ["  ".join(x.rjust(w) for x, w in zip(cells, widths, strict=True)) for cells in [head, *body]]
    return "\n".join(lines)


def _html_table(runs: Sequence[RunResult], caption: str) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for label, _, _ in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in _cells(r)) + "</tr>" for r in runs)
    return (f"<table><caption style='text-align:left'>{html.escape(caption)}</caption>"
            f"<tr>{head}</tr>{body}</table>")


def save(result: RunResult | Sweep, path: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``result`` as JSON (everything) and CSV (one row per run), side by side.

    Args:
        result: a run or a sweep.
        path: file stem or a ``.json`` path (default ``results/bench-<workload>-<UTC time>``).

    Returns:
        The JSON path and the CSV path.
    """
    workload = result.workload if isinstance(result, Sweep) else result.settings["workload"]
    if path is None:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        path = Path("results") / f"bench-{workload}-{stamp}"
    stem = Path(path).with_suffix("") if Path(path).suffix in (".json", ".csv") else Path(path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".csv")
    json_path.write_text(redact(json.dumps(result.to_dict(), indent=1)) + "\n")  # keys never reach a file
    rows = result.rows() if isinstance(result, Sweep) else [result.row()]
    rows = [{k: redact(v) if isinstance(v, str) else v for k, v in row.items()} for row in rows]
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with open(csv_path, "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return json_path, csv_path


def load(path: str | Path) -> RunResult | Sweep:
    """Read a result :func:`save` wrote (the ``.json`` file)."""
    data = json.loads(Path(path).with_suffix(".json").read_text())
    return Sweep.from_dict(data) if data.get("kind") == "sweep" else RunResult.from_dict(data)
