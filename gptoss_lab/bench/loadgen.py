"""The load generator: streaming requests against the running server, timed per chunk.

One ``httpx.AsyncClient``, requests sent at a fixed concurrency (an ``asyncio``
semaphore) and/or at a request rate (Poisson arrivals, as ``vllm bench serve``),
after a warm-up. Every request is recorded: a request that errors (an HTTP error,
an error event in the stream, a server that went away) is counted with its error
text and the run goes on. Taught in ``notebooks/06_benchmark.ipynb``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import random
import time
from collections.abc import Sequence
from typing import Any

import httpx

from gptoss_lab.aio import run_sync
from gptoss_lab.api import auth_headers
from gptoss_lab.bench.metrics import RequestRecord, compute
from gptoss_lab.bench.results import RunResult, Sweep, environment
from gptoss_lab.bench.workloads import Workload, WorkloadName, read_event

_START_HINT = ("Start it with `lab.serve()` in a notebook or `gptoss-lab serve` in a terminal, "
               "or set GPTOSS_LAB_BASE_URL to the server's URL.")


def describe(exc: BaseException, url: str) -> str:
    """One line a learner can act on, for an exception a request raised."""
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {url} ({exc or 'connection refused'}): is the server running? {_START_HINT}"
    if isinstance(exc, httpx.TimeoutException):
        return f"{type(exc).__name__}: the server sent nothing for too long ({exc}); raise timeout= or lower the load"
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        return (f"the server closed the connection mid-response ({exc or type(exc).__name__}): did it stop or "
                "crash? `server.logs()` shows its last lines")
    return f"{type(exc).__name__}: {exc}"


def _http_error(status: int, body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return f"HTTP {status}: {body.strip()[:300]}"
    error = data.get("error", data) if isinstance(data, dict) else data
    message = error.get("message", error) if isinstance(error, dict) else error
    return f"HTTP {status}: {message}"


async def _request(http: httpx.AsyncClient, workload: Workload, model: str, index: int, t0: float) -> RequestRecord:
    record = RequestRecord(index=index)
    sent = time.perf_counter()
    record.start = sent - t0
    first: float | None = None
    last = sent
    chunks = 0
    try:
        async with http.stream("POST", workload.path.lstrip("/"), json=workload.body(model, index)) as response:
            if response.status_code != 200:
                record.error = _http_error(response.status_code, (await response.aread()).decode(errors="replace"))
                return record
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                now = time.perf_counter()
                event = read_event(workload.name, json.loads(payload))
                if event.error:
                    record.error = f"error in the stream: {event.error}"
                    return record
                if event.usage is not None:
                    record.prompt_tokens = event.usage["prompt_tokens"]
                    record.output_tokens = event.usage["output_tokens"]
                    record.usage_reported = True
                if event.token:
                    if first is None:
                        first = now
                        record.ttft = now - sent
                    else:
                        record.itl.append(now - last)
                    last = now
                    chunks += 1
                    if event.text and record.answer_ttft is None:
                        record.answer_ttft = now - sent
                    record.reasoning += event.reasoning
                    record.text += event.text
    except (httpx.HTTPError, OSError, ValueError) as exc:
        record.error = describe(exc, str(http.base_url))
        return record
    if first is None:
        record.error = "the stream ended before any token arrived"
        return record
    record.latency = last - sent
    if not record.usage_reported:
        record.output_tokens = chunks  # no usage in the stream: one token per chunk, a lower bound
    record.ok = True
    return record


def arrivals(n: int, rate: float | None, *, burstiness: float = 1.0, seed: int = 0) -> list[float]:
    """Send times (seconds after the start) of ``n`` requests at ``rate`` per second.

    Gamma-distributed gaps (Poisson arrivals when ``burstiness`` is 1), rescaled so the
    last request goes out at ``n / rate``, as ``vllm bench serve`` does. No rate: all at 0.
    """
    if not rate or math.isinf(rate):
        return [0.0] * n
    rng = random.Random(seed)
    times = list(itertools.accumulate(rng.gammavariate(burstiness, 1 / (rate * burstiness)) for _ in range(n)))
    scale = (n / rate) / times[-1] if times and times[-1] > 0 else 1.0
    return [t * scale for t in times]


def _progress(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm comes with the `notebooks` extra
        return None

    return tqdm(total=total, desc=desc, unit="req", leave=True)


async def _served_model(http: httpx.AsyncClient) -> str:
    response = await http.get("models", timeout=10.0)
    response.raise_for_status()
    return response.json()["data"][0]["id"]


async def arun(workload: WorkloadName = "chat", *, requests: int = 8, concurrency: int | None = 1,
               rate: float | None = None, warmup: int = 1, input_len: int = 128, output_len: int = 64,
               seed: int = 0, burstiness: float = 1.0, base_url: str | None = None, api_key: str | None = None,
               model: str | None = None, timeout: float = 300.0, progress: bool = True,
               percentiles: Sequence[float] = (99,)) -> RunResult:
    """Benchmark one workload at one load; the awaitable form of :func:`run`."""
    from gptoss_lab.client import base_url as lab_url
    from gptoss_lab.client import server_key

    url = (base_url or lab_url()).rstrip("/") + "/"
    key = api_key if api_key is not None else server_key()
    work = Workload(workload, input_len=input_len, output_len=output_len, seed=seed)
    settings = {"workload": workload, "requests": requests, "concurrency": concurrency, "rate": rate,
                "warmup": warmup, "input_len": input_len if workload == "completions" else None,
                "output_len": output_len if workload == "completions" else None, "seed": seed,
                "burstiness": burstiness, "base_url": url.rstrip("/"), "model": model}
    limits = httpx.Limits(max_connections=max(concurrency or requests, 1) + 2, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=url, headers=auth_headers(key), limits=limits,
                                 timeout=httpx.Timeout(timeout, connect=10.0)) as http:
        try:
            model = model or await _served_model(http)
        except (httpx.HTTPError, OSError, ValueError, KeyError, IndexError) as exc:
            error = describe(exc, url.rstrip("/"))
            records = [RequestRecord(index=i, error=error) for i in range(requests)]
            return RunResult(settings, records, compute(records, 0.0, concurrency=concurrency, rate=rate,
                                                        percentiles=percentiles), environment(url, key))
        settings["model"] = model
        gate = asyncio.Semaphore(concurrency) if concurrency else None

        async def limited(index: int, t0: float, bar: Any) -> RequestRecord:
            if gate is None:
                record = await _request(http, work, model, index, t0)
            else:
                async with gate:
                    record = await _request(http, work, model, index, t0)
            if bar is not None:
                bar.update(1)
            return record

        warm = await asyncio.gather(*(limited(i, time.perf_counter(), None) for i in range(warmup)))
        label = f"{workload} c={concurrency or '∞'}" + (f" {rate:g} req/s" if rate else "")
        bar = _progress(requests, label, progress)
        t0 = time.perf_counter()
        tasks = []
        for index, at in enumerate(arrivals(requests, rate, burstiness=burstiness, seed=seed)):
            if (wait := t0 + at - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(limited(index, t0, bar)))
        records = list(await asyncio.gather(*tasks))
        duration = time.perf_counter() - t0
        if bar is not None:
            bar.close()
    metrics = compute(records, duration, concurrency=concurrency, rate=rate, percentiles=percentiles)
    result = RunResult(settings, records, metrics, environment(url, key))
    result.warmup_errors = [r.error for r in warm if not r.ok]
    return result


def run(workload: WorkloadName = "chat", *, requests: int = 8, concurrency: int | None = 1,
        rate: float | None = None, warmup: int = 1, input_len: int = 128, output_len: int = 64, seed: int = 0,
        burstiness: float = 1.0, base_url: str | None = None, api_key: str | None = None, model: str | None = None,
        timeout: float = 300.0, progress: bool = True, percentiles: Sequence[float] = (99,)) -> RunResult:
    """Benchmark one workload at one load against the running server.

    Args:
        workload: ``chat``, ``responses`` (the scripted prompt) or ``completions``
            (synthetic, ``input_len`` tokens in, exactly ``output_len`` out with ``ignore_eos``).
        requests: requests to time (after the warm-up).
        concurrency: at most this many requests in flight (None: no limit).
        rate: requests per second, Poisson arrivals (None: all at once, limited by ``concurrency``).
        warmup: untimed requests sent first, at the same concurrency.
        input_len, output_len: the ``completions`` workload's lengths.
        seed: seeds the synthetic prompts and the arrival times.
        burstiness: gamma shape of the arrival gaps (1: Poisson).
        base_url, api_key, model: default to the lab's server and the model it serves.
        timeout: seconds a request may wait for the next chunk.
        progress: show a progress bar.
        percentiles: latency percentiles to report (vLLM's default: 99).

    Returns:
        A :class:`RunResult`; failed requests are counted in it, never raised.
        Taught in ``notebooks/06_benchmark.ipynb``.
    """
    return run_sync(arun(workload, requests=requests, concurrency=concurrency, rate=rate, warmup=warmup,
                      input_len=input_len, output_len=output_len, seed=seed, burstiness=burstiness,
                      base_url=base_url, api_key=api_key, model=model, timeout=timeout, progress=progress,
                      percentiles=percentiles))


def levels(n: int) -> list[int]:
    """Concurrency levels 1, 2, 4, ... up to ``n`` (``n`` itself included)."""
    out = [1 << i for i in range(max(n, 1).bit_length()) if 1 << i <= n]
    return out + ([n] if out[-1] != n else [])


def sweep(workload: WorkloadName = "chat", concurrencies: Sequence[int] | int = 8, *, requests: int | None = None,
          stop_when_all_fail: bool = True, **kwargs: Any) -> Sweep:
    """Run :func:`run` at each concurrency (an int ``N`` means 1, 2, 4, ... N).

    Args:
        workload: see :func:`run`.
        concurrencies: the levels, or the largest one.
        requests: requests per level (default: 4 per user, at least 8).
        stop_when_all_fail: stop at a level where every request failed (the server is gone);
            the levels run so far are kept.
        **kwargs: passed to :func:`run` (``warmup``, ``input_len``, ``output_len``, ...).

    Returns:
        A :class:`Sweep` with one :class:`RunResult` per level run, and the wall time.
        Interrupting it (Ctrl-C, Jupyter's stop button) returns the levels finished so far.
    """
    todo = levels(concurrencies) if isinstance(concurrencies, int) else list(concurrencies)
    result = Sweep(workload=workload, planned=todo)
    started = time.perf_counter()
    try:
        for c in todo:
            run_result = run(workload, requests=requests or max(8, 4 * c), concurrency=c, **kwargs)
            result.runs.append(run_result)
            if stop_when_all_fail and run_result.metrics.completed == 0:
                result.note = f"stopped at concurrency {c}: every request failed ({run_result.message})"
                break
    except KeyboardInterrupt:
        result.note = f"interrupted after {len(result.runs)} of {len(todo)} levels"
    result.wall_s = time.perf_counter() - started
    return result
