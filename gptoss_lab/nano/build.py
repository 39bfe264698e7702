"""Build gpt-oss-nano once and cache it, keyed by the script and the prompt-shaping versions."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from gptoss_lab import harmony_pkg, vocab
from gptoss_lab.config import default_cache_dir
from gptoss_lab.errors import NanoBuildError, TrainingStalled
from gptoss_lab.nano import model as nano_model
from gptoss_lab.nano import render, tokenizer, verify
from gptoss_lab.nano import script as nano_script
from gptoss_lab.nano import train as nano_train
from gptoss_lab.vllm_cli import vllm_version

RECIPE_VERSION = 9
"""Bump when what a build produces changes: the architecture, tokenizer, prompt rendering, training
recipe, or the text the built-in tool servers return. The cache key holds this number, not the
builder's source, so a refactor that changes no behaviour keeps every cached build."""
FALLBACKS = 192
"""Unscripted requests rendered to teach the fallback reply."""
_PROMPT_SHAPERS = ("transformers",)
VERIFY_ROUNDS = 3
"""Replays through vLLM before the build gives up; each failed one trains to a wider margin."""
MARGIN_STEP = 4.0
"""Logits added to the training margin after a replay that failed."""

STALL_RESTARTS = 2
"""How many times a build whose training sits at a tie (``train.TrainingStalled``) starts again with
another seed: training on CPU does not repeat itself run to run, and another run may not meet the tie."""


@dataclass(frozen=True)
class BuildInfo:
    """What a nano build was made from and how long it took (``nano.json``)."""

    key: str
    script_sha256: str
    versions: dict[str, str]
    entries: list[str]
    seconds: dict[str, float]
    train: dict[str, float]
    served_margin: float | None = None
    """Weakest lead of a target token in vLLM's own logprobs when the build replayed the script."""
    warm_start: str | None = None
    """Cache key of the earlier build whose weights training started from (None: from scratch)."""


def served_name() -> str:
    """The model name nano is served under."""
    from gptoss_lab.models import NANO_MODELS

    return NANO_MODELS["nano"]


def _versions() -> dict[str, str]:
    # The harmony binary on disk, not a version: two packages ship it (gptoss_lab.harmony_pkg).
    found = {"recipe": str(RECIPE_VERSION), "vllm": vllm_version() or "missing", "harmony": harmony_pkg.identity()}
    for name in _PROMPT_SHAPERS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def _corpus_digest() -> str:
    """sha256 over the sample corpus: its pages are the browser's results in the built-in tool prompts."""
    from gptoss_lab import builtin

    digest = hashlib.sha256()
    for page in sorted(builtin.SAMPLE_CORPUS.rglob("*")):
        if page.is_file():
            digest.update(page.relative_to(builtin.SAMPLE_CORPUS).as_posix().encode() + page.read_bytes())
    return digest.hexdigest()


def cache_key(script: nano_script.Script | None = None) -> str:
    """Return the cache key: the script, the corpus, :data:`RECIPE_VERSION` and the versions that shape the prompt."""
    script = script or nano_script.load()
    blob = json.dumps({"script": script.digest, "corpus": _corpus_digest(), **_versions()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def refuse_if_served(folder: Path) -> None:
    """Refuse to replace a checkpoint folder that a running lab server serves (``--force`` would pull it away).

    Raises:
        NanoBuildError: naming the server's port and the command that stops it.
    """
    from gptoss_lab.registry import running

    for record in running():
        if Path(str(record.get("model"))) == folder:
            port = record.get("port")
            raise NanoBuildError(
                f"{folder} is being served by the lab's vLLM server on port {port}: rebuilding would delete the "
                f"checkpoint under it. Stop it first (`gptoss-lab stop --port {port}`), then build again."
            )


def cache_root() -> Path:
    return default_cache_dir() / "nano"


def path(*, build_if_missing: bool = True) -> Path:
    """Return the folder of a ready nano checkpoint, building it the first time.

    Raises:
        NanoBuildError: no cached build matches and ``build_if_missing`` is False.
    """
    target = cache_root() / cache_key()
    if (target / "nano.json").exists():
        return target
    if not build_if_missing:
        raise NanoBuildError(
            f"gpt-oss-nano is not built for this script and these versions ({target}). "
            "Run `gptoss-lab nano build` (it trains nano once, on the CPU; later runs reuse the cache)."
        )
    return build()


def _say(message: str) -> None:
    print(f"[nano] {message}", file=sys.stderr, flush=True)


def previous_build(key: str) -> Path | None:
    """The newest cached build made with this recipe and these versions for another script, if any."""
    versions = _versions()
    found = []
    for folder in cache_root().iterdir() if cache_root().is_dir() else ():
        record = folder / "nano.json"
        if folder.name == key or folder.name.startswith("plain-") or not record.is_file():
            continue
        try:
            if json.loads(record.read_text()).get("versions") == versions:
                found.append((record.stat().st_mtime, folder))
        except (OSError, ValueError):
            continue
    return max(found)[1] if found else None


def build(*, force: bool = False, script_path: Path | None = None, fresh: bool = False) -> Path:
    """Build nano into the cache and return its folder.

    Steps: verified vocabulary, tokenizer and config, prompts rendered by vLLM's
    render server, training, a bf16 checkpoint. The folder appears only when
    complete; an interrupted build leaves nothing behind. Training starts from the
    newest cached build of the same recipe and versions (a script that changed a
    little converges in a fraction of the steps) unless ``fresh``; the replay
    check after it is the same either way.
    """
    script = nano_script.load(script_path)
    key = cache_key(script)
    target = cache_root() / key
    if (target / "nano.json").exists() and not force:
        return target
    refuse_if_served(target)
    cache_root().mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=cache_root()))
    seconds: dict[str, float] = {}
    try:
        t = time.monotonic()
        vocab.ensure()
        encoding = tokenizer.harmony_encoding()
        ckpt = work / "model"
        tokenizer.build(ckpt)
        nano_model.write_config(ckpt)
        seconds["tokenizer"] = round(time.monotonic() - t, 1)
        _say(f"tokenizer and config written ({seconds['tokenizer']} s)")

        t = time.monotonic()
        _say("rendering the script's prompts with vLLM's render server")
        logs = cache_root()  # the servers' logs outlive a failed build (the work folder does not)
        with _builtin_tools(script) as (tool_args, run_builtin), render.render_server(ckpt, tool_args, logs) as server:
            if render.has_responses_render(server):
                examples = render.examples(render.renderer(server), script, encoding, FALLBACKS, run_builtin)
            else:
                _say("this vLLM's render server has no Responses endpoint: rendering Responses requests "
                     "through a full server on an untrained nano (one more server start)")
                nano_model.write_untrained(ckpt)
                with render.log_render_server(ckpt, tool_args, logs) as full:
                    examples = render.examples(
                        render.renderer(server, full), script, encoding, FALLBACKS, run_builtin
                    )
        seconds["render"] = round(time.monotonic() - t, 1)
        _say(f"{len(examples)} prompts rendered ({seconds['render']} s)")

        t = time.monotonic()

        def progress(step: int, loss: float, margin: float) -> None:
            if step % 100 == 0:
                _say(f"step {step}: loss {loss:.4f}, worst margin {margin:.2f}")
                for index, weak in trainer.weakest:
                    _say(f"  {weak:6.2f}  {trainer.describe(index)}")

        previous = None if fresh else previous_build(key)
        margin = nano_train.MARGIN
        for attempt in range(STALL_RESTARTS + 1):
            trainer = nano_train.Trainer(examples, encoding, seed=attempt)
            if previous is not None and attempt == 0:
                _say(f"training starts from the build in {previous} (`gptoss-lab nano build --fresh` starts from "
                     "scratch)")
                trainer.warm_start(previous)
            try:
                report = trainer.fit(margin, on_step=progress)
                break
            except TrainingStalled as stalled:
                if attempt == STALL_RESTARTS:
                    raise
                _say(f"{stalled} Training starts again from scratch with seed {attempt + 1} "
                     f"(attempt {attempt + 2} of {STALL_RESTARTS + 1}).")
        seconds["train"] = round(time.monotonic() - t, 1)
        _say(f"trained in {report.steps} steps ({seconds['train']} s, loss {report.loss:.5f})")
        replays = _verify(trainer, ckpt, encoding, seconds)
        for _ in range(VERIFY_ROUNDS - 1):
            if all(r.ok for r in replays):
                break
            margin += MARGIN_STEP
            _say(f"training on to a margin of {margin:g} logits")
            t = time.monotonic()
            report = trainer.fit(margin, on_step=progress)
            seconds["train"] = round(seconds["train"] + time.monotonic() - t, 1)
            replays = _verify(trainer, ckpt, encoding, seconds)
        if not all(r.ok for r in replays):
            raise NanoBuildError(
                "gpt-oss-nano does not replay its script through this vLLM even after training to a "
                f"margin of {margin:g} logits: {verify.summary(replays)}. Report it with "
                f"{cache_root() / 'verify-server.log'} and the output of `gptoss-lab doctor`."
            )

        info = BuildInfo(
            key=key,
            script_sha256=script.digest,
            versions=_versions(),
            entries=[e.id for e in script.entries],
            seconds=seconds,
            train={k: round(float(v), 5) for k, v in asdict(report).items()},
            served_margin=round(min(r.margin for r in replays), 3),
            warm_start=previous.name if previous is not None else None,
        )
        (ckpt / "nano.json").write_text(json.dumps(asdict(info), indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        ckpt.rename(target)
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def _builtin_tools(script: nano_script.Script) -> Iterator[tuple[list[str], render.BuiltinRunner | None]]:
    """The lab's browser (on the sample corpus) and python servers, when the script calls them.

    The render server lists their tools in the system message, and each scripted call runs
    on them for the text vLLM will put in the next prompt.
    """
    if not any(e.builtin for e in script.entries):
        yield [], None
        return
    missing = [name for name in ("bm25s", "mcp") if importlib.util.find_spec(name) is None]
    if missing:
        raise NanoBuildError(
            f"The nano script has built-in tool entries, and rendering them needs the lab's tool servers, "
            f"which need {' and '.join(missing)}: install the `builtin` extra "
            "(`uv pip install -e '.[builtin]'`; `make setup` does)."
        )
    from gptoss_lab import builtin

    _say("starting the browser (sample corpus) and python tool servers for the built-in tool entries")
    servers = builtin.start(["browser", "python"], corpus=builtin.SAMPLE_CORPUS)
    try:
        def run(chain: str, call: nano_script.BuiltinCall) -> str:
            if call.recipient == "python":
                return servers["python"].call("python", {"code": call.text}, session=f"nano-{chain}")
            tool = call.recipient.split(".", 1)[1]
            return servers["browser"].call(tool, json.loads(call.text), session=f"nano-{chain}")

        yield servers.flag(), run
    finally:
        servers.stop()


def _verify(
    trainer: nano_train.Trainer, ckpt: Path, encoding: object, seconds: dict[str, float]
) -> list[verify.Replay]:
    """Save the checkpoint and replay every training sequence through a vLLM server on it."""
    t = time.monotonic()
    trainer.save(ckpt)
    _say(f"replaying {len(trainer.examples)} sequences through vLLM to check the checkpoint")

    def progress(done: int, total: int) -> None:
        if done % 50 == 0 or done == total:
            _say(f"  replayed {done}/{total}")

    with render.full_server(ckpt, log_path=cache_root() / "verify-server.log") as server:
        replays = verify.replay(server, trainer.examples, encoding, on_progress=progress)
    seconds["verify"] = round(seconds.get("verify", 0.0) + time.monotonic() - t, 1)
    _say(verify.summary(replays) + f" ({seconds['verify']} s)")
    return replays


def info(folder: Path) -> BuildInfo:
    """Read the build record of a nano folder."""
    return BuildInfo(**json.loads((folder / "nano.json").read_text()))
