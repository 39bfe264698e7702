"""Errors raised by gptoss-lab.

Each error says what happened, why, and what to do next, so a learner reading
a notebook traceback knows the command or setting that fixes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gptoss_lab.loop import Transcript


class LabError(Exception):
    """Base class for every error gptoss-lab raises on purpose."""


class VocabError(LabError):
    """The harmony vocabulary (o200k_base.tiktoken) is missing or wrong."""


class NanoBuildError(LabError):
    """gpt-oss-nano could not be built or does not replay its script."""


class TrainingStalled(NanoBuildError):
    """nano's training sat at a tie (two sequences it cannot yet tell apart) and stopped early."""


class ServerError(LabError):
    """The vLLM server could not be started, reached or stopped."""


class AttachError(ServerError):
    """Something answers at the server URL, but the lab cannot use it (wrong key, not an OpenAI API), or
    attach-only mode (``GPTOSS_LAB_ATTACH_ONLY=1``) found nothing there."""


class WrongKeyError(AttachError):
    """A server answers at the URL but refuses the API key the lab sent (HTTP 401)."""


class PortError(ServerError, ValueError):
    """The port asked for cannot serve: not a port number, out of range, or taken by another program or lab start."""


class ScriptError(LabError, ValueError):
    """gpt-oss-nano's script (``gptoss_lab/nano/script.json``) is malformed."""


class UnfaithfulScriptError(ScriptError):
    """A scripted reply is one gpt-oss could not produce, so nano would teach something false."""


class SandboxError(LabError):
    """The python tool's sandbox (bubblewrap) is missing or cannot be set up on this machine."""


class SettingsError(LabError, ValueError):
    """A ``GPTOSS_LAB_*`` setting has a value the lab cannot use."""


class HarmonyParseError(LabError):
    """vLLM answered HTTP 500 twice: it could not parse gpt-oss's harmony output (vLLM issue 51977)."""


class ToolParserError(LabError):
    """The vLLM server runs without gpt-oss's tool-call parser, so tool calls cannot come back."""


class UnknownToolError(LabError, ValueError):
    """A built-in tool name is not one the lab serves (``browser``, ``python``)."""


class PresetError(LabError):
    """No serving preset fits this model on this machine."""


class SamplingError(LabError, ValueError):
    """A prompt that is not harmony token ids, or a server whose completions come back without token ids."""


class GPUMemoryError(LabError):
    """Too little GPU memory is free for what was asked (an in-process engine beside a running server)."""


class ToolLoopError(LabError):
    """The model kept calling tools past the turn limit (``max_turns``, the playground's ``max_requests``).

    ``.transcript`` holds what :func:`gptoss_lab.run_tools` did (the playground's turns run through it too).
    """

    def __init__(self, message: str, transcript: Transcript | None = None) -> None:
        super().__init__(message)
        self.transcript = transcript


class ScriptedModelError(LabError):
    """A :func:`gptoss_lab.scripted_model` stand-in was asked for more turns than it was given."""


class Cancelled(LabError):
    """The request was stopped by the user (the playground's Stop button)."""


class CrossCheckError(LabError):
    """``vllm bench serve`` did not run or left no result."""


class RooflineError(LabError):
    """The roofline cannot be computed (unknown model or device)."""


class LabWarning(UserWarning):
    """Something still works, but not as a learner would expect; the message says what to do."""


class HarmonyFormatWarning(UserWarning):
    """A completion was not well-formed harmony and was parsed leniently."""


class DummyWeightsError(LabError):
    """The lab has no published configuration to serve this model with random weights."""
