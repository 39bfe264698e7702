"""Sample gpt-oss directly with ``vllm.LLM``: harmony token ids in, completion token ids out.

No server and no chat template: the prompt is whatever harmony rendered, the
engine stops on harmony's assistant-action stop tokens, and the completion
tokens go back to harmony to be parsed. nano on CPU, the real model on a GPU.
An attach-only learner (``GPTOSS_LAB_ATTACH_ONLY=1``, a workshop) starts no engine:
:func:`server_engine` sends the same token ids to the host's server instead.
Taught in ``notebooks/05_harmony.ipynb``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gptoss_lab.errors import SamplingError, ServerError

if TYPE_CHECKING:
    from gptoss_lab.server import VLLMServer


def engine_args(model: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """Prepare this process for ``vllm.LLM`` and return its keyword arguments for ``model``.

    ``vllm.LLM(**engine_args(model))`` starts the engine. The model defaults to
    ``GPTOSS_LAB_MODEL``. nano gets small, eager settings that fit a CPU (and no prefix
    caching: its contract is exact greedy replay); a real model on a GPU gets the GPU
    memory that is free now (a model server may hold the rest), or a
    :class:`~gptoss_lab.errors.GPUMemoryError` saying how to stop the server when too little is
    free. Extra keyword arguments go to ``vllm.LLM`` as they are. Taught in
    ``notebooks/05_harmony.ipynb``.
    """
    from gptoss_lab import harmony, presets, vocab
    from gptoss_lab.config import settings
    from gptoss_lab.hardware import has_gpu
    from gptoss_lab.models import NANO_CONTEXT, NANO_MODELS, is_nano, resolve_model
    from gptoss_lab.vllm_cli import patch_version_lookup

    vocab.ensure()
    harmony.encoding()
    patch_version_lookup()
    # Start the engine process with spawn, never fork: a forked engine core inside a Jupyter kernel
    # can die at start with no output (docs/decisions.md).
    os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
    name = resolve_model(model or settings().model)
    options: dict[str, Any] = {}
    if is_nano(name):
        if name in NANO_MODELS:
            from gptoss_lab import nano

            name = str(nano.path() if name == "nano" else nano.plain_path())
        options = {"max_model_len": NANO_CONTEXT, **presets.NANO_CPU_ENGINE}  # exact greedy replay, on a GPU too
        if has_gpu():
            options["gpu_memory_utilization"] = 0.3
        else:
            for variable, value in presets.NANO_CPU_ENV.items():
                os.environ.setdefault(variable, value)
    elif has_gpu() and "gpu_memory_utilization" not in kwargs:
        from gptoss_lab.hardware import free_memory_gib, gpus

        free = free_memory_gib()
        if free is not None:
            options["gpu_memory_utilization"] = gpu_share(name, free, gpus()[0].memory_gib)
    return {"model": name, **options, **kwargs}


def engine(model: str | None = None, **kwargs: Any) -> Any:
    """Start ``vllm.LLM`` in this process for ``model``: ``LLM(**engine_args(model, **kwargs))``.

    Starting takes about a minute on 2 CPU cores (model load, KV cache); stop it with
    :func:`shutdown` to give its memory back.
    """
    args = engine_args(model, **kwargs)
    from vllm import LLM

    return LLM(**args)


def gpu_share(model: str, free_gib: float, total_gib: float) -> float:
    """The ``gpu_memory_utilization`` that lets an engine for ``model`` use what is free now.

    vLLM reads the fraction as this engine's share of the whole card and refuses to
    start when less than that is free, so a server already holding 90% leaves 10%.

    Raises:
        GPUMemoryError: less is free than ``model`` needs, with what to do about it.
    """
    from gptoss_lab.errors import GPUMemoryError
    from gptoss_lab.launch import stop_hint
    from gptoss_lab.presets import MODEL_MEMORY_GIB

    need = MODEL_MEMORY_GIB.get(model, 0)
    usable = free_gib - 1.0  # leave room for the CUDA context and allocator slack
    if usable < need:
        raise GPUMemoryError(
            f"{model} needs about {need} GiB of GPU memory for an in-process engine, and {free_gib:.1f} of "
            f"{total_gib:.0f} GiB are free: the model server probably holds the rest. This step needs the GPU "
            f"memory a second copy of the model takes; stop the server first: {stop_hint()}."
        )
    return round(min(0.9, usable / total_gib), 3)


def sample(llm: Any, prompts: Sequence[Sequence[int]], *, max_tokens: int = 512, temperature: float = 0.0,
           **params: Any) -> list[list[int]]:
    """Generate a completion for each harmony-rendered prompt in one batch; return the completion ids.

    The shortcut for ``SamplingParams`` + ``TokensPrompt`` + ``llm.generate``; ``llm`` is a
    ``vllm.LLM`` or, for an attach-only learner, a :class:`ServerEngine`. Generation
    stops on ``<|return|>`` or ``<|call|>``, which stay in the output so harmony can parse
    the last message. Greedy by default, which nano replays under; sample gpt-oss with
    ``temperature=1.0``, its recommended setting (greedy decoding can loop in the analysis
    channel).
    """
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    from gptoss_lab import harmony

    sampling = SamplingParams(max_tokens=max_tokens, temperature=temperature,
                              stop_token_ids=harmony.stop_tokens(), skip_special_tokens=False, **params)
    outputs = llm.generate([TokensPrompt(prompt_token_ids=list(p)) for p in prompts], sampling, use_tqdm=False)
    return [list(out.outputs[0].token_ids) for out in outputs]


def shutdown(llm: Any) -> None:
    """Stop the engine's processes and free its memory."""
    engine_core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if engine_core is not None and hasattr(engine_core, "shutdown"):
        engine_core.shutdown()


@dataclass(frozen=True)
class ServerCompletion:
    """One completion from :meth:`ServerEngine.generate`: the fields of vLLM's ``CompletionOutput`` 05 reads."""

    token_ids: list[int]
    finish_reason: str | None
    text: str = ""


@dataclass(frozen=True)
class ServerOutput:
    """One prompt's result from :meth:`ServerEngine.generate`, read like vLLM's ``RequestOutput``."""

    prompt_token_ids: list[int]
    outputs: list[ServerCompletion]


# The SamplingParams fields sent with each request: the ones 05 and :func:`sample` set.
_SAMPLING_FIELDS = ("max_tokens", "temperature", "top_p", "seed", "stop_token_ids", "skip_special_tokens")


@dataclass
class ServerEngine:
    """``LLM.generate`` over HTTP: harmony token ids to a vLLM server's ``/v1/completions``, token ids back.

    For attach-only learners (``GPTOSS_LAB_ATTACH_ONLY=1``), whose kernel starts no engine. The
    prompt goes in as token ids, so the server applies no chat template, and vLLM's
    ``return_token_ids`` (the suite's vLLM 0.32 has it) brings the completion's token ids back for
    harmony to parse. Make one with :func:`server_engine`.
    """

    server: VLLMServer
    timeout: float = 600.0
    """Seconds one ``generate`` call may take (a batch of long reasoning completions on a busy server)."""

    def __str__(self) -> str:
        return (f"No vLLM engine runs in this kernel: {self.server.model} samples on the server at "
                f"{self.server.url}, POST /v1/completions with the prompt as token ids and return_token_ids=true, "
                "so no chat template applies and the completion comes back as token ids. An engine in this kernel "
                "(LLM) needs a GPU of your own (or gpt-oss-nano on a CPU machine) and GPTOSS_LAB_ATTACH_ONLY unset.")

    def generate(self, prompts: Sequence[Any], sampling_params: Any = None, use_tqdm: bool = False,
                 **_: Any) -> list[ServerOutput]:
        """Sample a completion for each prompt in one request; the outputs come back in prompt order.

        Args:
            prompts: ``TokensPrompt`` dicts (``{"prompt_token_ids": [...]}``) or lists of token ids.
            sampling_params: a ``vllm.SamplingParams``; its ``max_tokens``, ``temperature``, ``top_p``,
                ``seed``, ``stop_token_ids`` and ``skip_special_tokens`` are sent.
            use_tqdm: accepted for ``LLM.generate``'s signature; nothing is shown.

        Raises:
            SamplingError: a prompt is not token ids, or the server answered with an error or without token ids.
            ServerError: the server did not answer.
        """
        ids = [_token_ids(prompt, index) for index, prompt in enumerate(prompts)]
        if not ids:
            return []
        params = {name: getattr(sampling_params, name) for name in _SAMPLING_FIELDS
                  if getattr(sampling_params, name, None) is not None}
        # An attached server's model is the id /v1/models served when it attached (lab.connect).
        model = self.server.model if self.server.attached and self.server.model else self.server.model_id()
        body = {"model": model, "prompt": ids, "return_token_ids": True, **params}
        import httpx

        from gptoss_lab.api import auth_headers
        from gptoss_lab.redact import redact

        url = self.server.url
        try:
            response = httpx.post(f"{url}/completions", json=body, headers=auth_headers(self.server.api_key),
                                  timeout=self.timeout)
        except httpx.HTTPError as error:
            raise ServerError(f"The server at {url} did not answer /v1/completions ({type(error).__name__}: "
                              f"{redact(str(error), [self.server.api_key])}). Check it with `gptoss-lab verify`.") \
                from error
        if response.status_code != 200:
            raise SamplingError(f"The server at {url} answered /v1/completions with HTTP {response.status_code}: "
                                f"{redact(response.text[:300], [self.server.api_key])}")
        try:
            answer = response.json()
        except ValueError:
            answer = None
        return read_completions(answer, ids, url)


def _token_ids(prompt: Any, index: int) -> list[int]:
    ids = prompt.get("prompt_token_ids") if isinstance(prompt, Mapping) else prompt
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence) or not ids \
            or not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in ids):
        raise SamplingError(
            f"Prompt {index} is not a list of token ids ({type(prompt).__name__}: {str(prompt)[:60]!r}): render "
            "the conversation first, `encoding.render_conversation_for_completion(conversation, Role.ASSISTANT)`, "
            "and pass TokensPrompt(prompt_token_ids=ids) or the ids themselves."
        )
    return list(ids)


def read_completions(response: Any, prompts: list[list[int]], url: str) -> list[ServerOutput]:
    """Read a ``/v1/completions`` answer (JSON) into one :class:`ServerOutput` per prompt, in prompt order.

    Raises:
        SamplingError: a choice without ``token_ids`` (a server that ignores ``return_token_ids``: not
            vLLM, or a vLLM without that option), or fewer choices than prompts.
    """
    choices = response.get("choices") if isinstance(response, Mapping) else None
    if not isinstance(choices, list) or len(choices) != len(prompts):
        raise SamplingError(f"The server at {url} answered {len(prompts)} prompt(s) with "
                            f"{len(choices) if isinstance(choices, list) else 'no'} choice(s): not a vLLM "
                            "/v1/completions answer. Check it with `gptoss-lab verify`.")
    outputs: list[ServerOutput | None] = [None] * len(prompts)
    for position, choice in enumerate(choices):
        index = choice.get("index", position) if isinstance(choice, Mapping) else position
        tokens = choice.get("token_ids") if isinstance(choice, Mapping) else None
        if not isinstance(tokens, list) or not isinstance(index, int) or not 0 <= index < len(prompts):
            raise SamplingError(
                f"The server at {url} returned a completion without its token ids: it ignores "
                "return_token_ids (it is not vLLM, or a vLLM without that option), so harmony has nothing to parse. "
                "Sample with an engine of your own instead (unset GPTOSS_LAB_ATTACH_ONLY, on a GPU or with nano)."
            )
        outputs[index] = ServerOutput(prompts[index], [ServerCompletion(
            [int(t) for t in tokens], choice.get("finish_reason"), str(choice.get("text") or ""))])
    missing = [index for index, out in enumerate(outputs) if out is None]
    if missing:
        raise SamplingError(f"The server at {url} answered no completion for prompt(s) {missing} (and two for "
                            "another): not a vLLM /v1/completions answer. Check it with `gptoss-lab verify`.")
    return [out for out in outputs if out is not None]


def server_engine(url: str | None = None) -> ServerEngine:
    """Attach to the server (``GPTOSS_LAB_BASE_URL``) and return an engine that samples through it.

    ``engine.generate(prompts, sampling_params)`` takes and returns what ``LLM.generate`` does
    for token-id prompts, so the cells of ``notebooks/05_harmony.ipynb`` and :func:`sample` run
    unchanged. For attach-only learners, whose kernel starts no engine.

    Raises:
        AttachError: attach-only mode and no usable server at the URL (the message says what answered).
        ServerError: nothing answers at the URL.
    """
    from gptoss_lab.attach import connect

    return ServerEngine(connect(url))
