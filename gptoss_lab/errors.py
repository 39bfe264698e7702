"""Errors raised by gptoss-lab.

Each error says what happened, why, and what to do next, so a learner reading
a notebook traceback knows the command or setting that fixes it.
"""

from __future__ import annotations


class LabError(Exception):
    """Base class for every error gptoss-lab raises on purpose."""


class VocabError(LabError):
    """The harmony vocabulary (o200k_base.tiktoken) is missing or wrong."""


class NanoBuildError(LabError):
    """gpt-oss-nano could not be built or does not replay its script."""


class ServerError(LabError):
    """The vLLM server could not be started, reached or stopped."""


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


class LabWarning(UserWarning):
    """Something still works, but not as a learner would expect; the message says what to do."""
