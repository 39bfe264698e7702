"""Measure how well gpt-oss-nano's fallback holds for requests outside its script.

Every request here is one the training never saw (other words and another seed than
``gptoss_lab.nano.render``): everyday questions, near misses of scripted requests (a
typo, other wording, another city, another date, another tool), the cookbook's examples
as printed (its "helfpul" typo included), with and without tools, on Chat Completions
and the Responses API. Requests are compared with the training's as whole bodies; the
words of everyday questions and near misses are new to it. Kind "elsewhere" is a
scripted question (05's "What is the capital of France?") in a shape no scripted
request has: the build trains such words in other shapes, so these rows are reported
on their own as well as in the total. A request passes when the model gives the fallback sentence as
its final answer, calls no tool, and no text field holds a harmony special token.

    .venv/bin/python benchmarks/fallback.py            # starts nano on a free port
    .venv/bin/python benchmarks/fallback.py --url http://127.0.0.1:8000/v1

Writes benchmarks/results/fallback-<date>-recipe<N>.json (N: nano's recipe) and prints the figures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

EVERYDAY = [
    "What is the capital of France?", "List three prime numbers.", "How do I install vLLM with uv?",
    "Write a limerick about a cat.", "What's 17 times 23?", "Who wrote Pride and Prejudice?",
    "How do I boil an egg?", "Explain recursion in one paragraph.", "What's the tallest mountain in Africa?",
    "Give me a synonym for happy.", "How far is the Moon?", "What does HTTP stand for?",
    "Recommend a science fiction book.", "How do I reverse a list in Python?", "Why is the sky blue?",
    "What time zone is Tokyo in?", "Summarize the plot of Hamlet.", "What is a transformer model?",
    "Convert 100 Fahrenheit to Celsius.", "What is MXFP4?", "Tell me a joke about databases.",
    "How many legs does a spider have?", "What language is spoken in Brazil?", "Define entropy.",
    "What is the weather like on Mars?", "Plan a three-day trip to Lisbon.", "What is 2 + 2?",
    "Name a primary color.", "How do vaccines work?", "What is the speed of light?",
]
NEAR_MISSES = [
    "In one sentence, what is SGLang?", "What is vLLM?", "Name the three gpt-oss models.",
    "Explain what MXFP4 quantisation is.", "Explain what FP8 quantization is.",
    "How many r's are in the word raspberry?", "Suggest a name for a pet hamster.",
    "What's the weather in Madrid right now?", "Whats the weather in Berlin right now?",
    "Is it colder in Berlin or in Paris right now?", "Square 5, 6, 7 and 8 with slow_square.",
    "What will the weather be in Rome next week?", "What's the weather in Lemuria right now?",
    "Show me the rain radar for Munich.", "Describe the sea in a long paragraph.", "Hello, world!",
    "What is the weather in Bergen?", "How much GPU memory does gpt-oss-20b need? Search the docs.",
    "Are you there?", "What was the temperature at the Paris station early this morning?",
]
INSTRUCTIONS = [None, "You are a helfpul assistant.", "You are a helpful assistant.", "Answer briefly."]
SPECIAL = re.compile(r"<\|[a-z_]+\|>")


def requests(count: int, seed: int) -> list[tuple[str, str, dict[str, Any]]]:
    """Return ``count`` (kind, api, body) triples, none of them in the script."""
    from gptoss_lab import examples
    from gptoss_lab.nano import render, script
    from gptoss_lab.nano.build import FALLBACKS

    loaded = script.load()
    scripted_texts = {text for e in loaded.entries if (text := render.entry_text(e)) is not None}
    # Every request the build trains (scripted or fallback) is left out, compared as a whole body.
    unscripted = [body for _, body in render.unscripted(loaded, FALLBACKS)]
    trained_bodies = {json.dumps(body, sort_keys=True) for body in (*(e.request for e in loaded.entries), *unscripted)}
    # The words of the training's fallback requests must be new to this benchmark, scripted words aside
    # (the build sends them in other shapes too): their rows are kind "elsewhere", reported on their own.
    trained = {text for body in unscripted
               for text in (body.get("input"), *(m.get("content") for m in body.get("messages", ())))}
    seen = (trained - scripted_texts) & {*EVERYDAY, *NEAR_MISSES}
    if seen:
        raise SystemExit(f"these benchmark requests are among nano's training fallbacks (they measure nothing): {seen}")
    rng = random.Random(seed)
    tools = list(examples.TOOLS.values())
    out: list[tuple[str, str, dict[str, Any]]] = [
        ("cookbook", "chat", {"messages": [{"role": "system", "content": "You are a helfpul assistant."},
                                           {"role": "user", "content": "Explain what MXFP4 quantization is."}]}),
        ("cookbook", "responses", {"instructions": "You are a helfpul assistant.",
                                   "input": "Explain what MXFP4 quantization is."}),
    ]
    trained_cookbook = [body for _, _, body in out if json.dumps(body, sort_keys=True) in trained_bodies]
    if trained_cookbook:
        raise SystemExit(f"the cookbook's requests as printed are among nano's training requests: {trained_cookbook}")
    while len(out) < count:
        kind = rng.choice(("everyday", "near-miss"))
        text = rng.choice(EVERYDAY if kind == "everyday" else NEAR_MISSES)
        api = rng.choice(("chat", "responses"))
        offered = rng.sample(tools, rng.randint(1, 2)) if rng.random() < 0.4 else []
        instructions = rng.choice(INSTRUCTIONS)
        effort = rng.choice((None, "low", "medium", "high"))
        if api == "chat":
            messages = ([{"role": "system", "content": instructions}] if instructions else [])
            body: dict[str, Any] = {"messages": [*messages, {"role": "user", "content": text}]}
            if offered:
                body["tools"] = [t.chat_schema() for t in offered]
            if effort:
                body["reasoning_effort"] = effort
        else:
            body = {"input": text}
            if instructions:
                body["instructions"] = instructions
            if offered:
                body["tools"] = [t.responses_schema() for t in offered]
            if effort:
                body["reasoning"] = {"effort": effort}
        if text in scripted_texts:
            kind = "elsewhere"
        if json.dumps(body, sort_keys=True) not in trained_bodies:
            out.append((kind + ("+tools" if offered else ""), api, body))
    return out


def judge(client: Any, model: str, api: str, body: dict[str, Any], fallback: str) -> dict[str, Any]:
    """Send one request; return what came back and whether it is the exact fallback."""
    if api == "chat":
        response = client.chat.completions.create(model=model, **body)
        message = response.choices[0].message
        final = message.content
        calls = [c.function.name for c in message.tool_calls or ()]
        texts = [final or "", getattr(message, "reasoning", None) or "",
                 *(c.function.arguments for c in message.tool_calls or ())]
    else:
        response = client.responses.create(model=model, **body)
        final = response.output_text if any(i.type == "message" for i in response.output) else None
        calls = [i.name for i in response.output if i.type == "function_call"]
        texts = [final or "", *(json.dumps(i.model_dump()) for i in response.output)]
    leaked = sorted({m for t in texts for m in SPECIAL.findall(t)})
    return {"final": final, "calls": calls, "leaked": leaked,
            "fallback": final == fallback and not calls and not leaked}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an OpenAI-compatible nano server (default: start one)")
    parser.add_argument("--count", type=int, default=240)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    import gptoss_lab as lab
    from gptoss_lab import process
    from gptoss_lab.nano import script
    from gptoss_lab.nano.build import RECIPE_VERSION

    server = lab.connect(args.url) if args.url else lab.serve("nano", port=process.free_port())
    fallback = script.load().fallback.final
    try:
        client, model = lab.client(), server.model_id()
        rows = []
        started = time.monotonic()
        for number, (kind, api, body) in enumerate(requests(args.count, args.seed), 1):
            rows.append({"kind": kind, "api": api, "request": body, **judge(client, model, api, body, fallback)})
            if number % 40 == 0:
                print(f"  {number}/{args.count} sent", file=sys.stderr)
    finally:
        if not server.attached:
            server.stop()
    held = sum(r["fallback"] for r in rows)
    leaked = sum(bool(r["leaked"]) for r in rows)
    called = sum(bool(r["calls"]) for r in rows)
    by_kind: dict[str, list[int]] = {}
    for r in rows:
        by_kind.setdefault(f"{r['api']} {r['kind']}", [0, 0])
        by_kind[f"{r['api']} {r['kind']}"][0] += r["fallback"]
        by_kind[f"{r['api']} {r['kind']}"][1] += 1
    new_words = [r for r in rows if not r["kind"].startswith("elsewhere")]
    summary = {"date": datetime.date.today().isoformat(), "requests": len(rows), "exact_fallback": held,
               "rate": round(held / len(rows), 4),
               "new_words": [sum(r["fallback"] for r in new_words), len(new_words)],
               "special_tokens_leaked": leaked, "tool_calls": called, "recipe": RECIPE_VERSION,
               "seconds": round(time.monotonic() - started, 1), "by_kind": by_kind,
               "misses": [r for r in rows if not r["fallback"]]}
    out = Path(__file__).parent / "results" / f"fallback-{summary['date']}-recipe{RECIPE_VERSION}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{held}/{len(rows)} exact fallback ({summary['rate']:.1%}); special tokens leaked in {leaked}; "
          f"tool calls in {called}. Details: {out}")
    print(f"  words new to the training: {summary['new_words'][0]}/{summary['new_words'][1]}")
    for kind, (ok, total) in sorted(by_kind.items()):
        print(f"  {kind:28} {ok}/{total}")
    return 0 if summary["rate"] >= 0.99 and leaked == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
