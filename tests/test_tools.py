"""Tools from Python functions: schemas for both APIs, and every bad call as an error result."""

from __future__ import annotations

import json
import threading
import time
from typing import Literal

import pytest

import gptoss_lab as lab


@lab.tool
def get_weather(city: str, units: Literal["celsius", "fahrenheit"] = "celsius") -> dict:
    """Get the current weather in a city.

    Args:
        city: City name, e.g. "Tokyo".
        units: Temperature units.
    """
    if city == "Atlantis":
        raise ValueError("no such city")
    return {"city": city, "temperature": 21 if units == "celsius" else 70, "units": units}


@lab.tool(timeout=0.5)
def slow(seconds: float) -> str:
    """Sleep, then answer."""
    time.sleep(seconds)
    return "done"


@lab.tool(max_result_chars=50)
def big(n: int) -> str:
    """Return n characters."""
    return "x" * n


def test_schema_comes_from_hints_and_docstring() -> None:
    params = get_weather.parameters
    assert get_weather.name == "get_weather"
    assert get_weather.description == "Get the current weather in a city."
    assert params["required"] == ["city"]
    assert params["properties"]["city"] == {"type": "string", "description": 'City name, e.g. "Tokyo".'}
    assert params["properties"]["units"]["enum"] == ["celsius", "fahrenheit"]
    assert params["properties"]["units"]["default"] == "celsius"


def test_schemas_for_both_apis() -> None:
    chat = get_weather.chat_schema()
    assert chat["type"] == "function" and chat["function"]["name"] == "get_weather"
    responses = get_weather.responses_schema()
    assert responses["name"] == "get_weather" and responses["parameters"] == get_weather.parameters


def test_a_good_call_returns_json_text() -> None:
    result = json.loads(get_weather.run('{"city": "Tokyo"}'))
    assert result == {"city": "Tokyo", "temperature": 21, "units": "celsius"}


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"city": "Tokyo"', "are not valid JSON"),
        ('["Tokyo"]', "must be a JSON object"),
        ("{}", "invalid arguments for get_weather: city: Field required"),
        ('{"city": "Paris", "units": "kelvin"}', "invalid arguments for get_weather: units"),
        ('{"city": "Atlantis"}', "get_weather raised ValueError: no such city"),
    ],
)
def test_bad_calls_become_error_results(arguments: str, expected: str) -> None:
    result = get_weather.run(arguments)
    assert result.startswith("error: ") and expected in result


def test_a_slow_call_times_out_as_an_error_result() -> None:
    release, finished = threading.Event(), threading.Event()

    @lab.tool(timeout=0.5)
    def slow(seconds: float) -> str:
        """Wait to be released (at most ``seconds``), then answer."""
        release.wait(seconds)
        finished.set()
        return "done"

    try:
        assert slow.run('{"seconds": 60}') == "error: slow did not finish within 0.5 s; try a smaller request."
        assert not finished.is_set(), "the error comes at the timeout, while the call is still running"
    finally:
        release.set()


def test_an_oversized_result_is_truncated_with_a_marker() -> None:
    result = big.run('{"n": 120}')
    assert result == "x" * 50 + "\n[... truncated 70 characters]"


@lab.tool
def circular() -> dict:
    """Return a structure that contains itself."""
    loop: dict = {}
    loop["self"] = loop
    return loop


@lab.tool
def quits() -> str:
    """Call sys.exit, as careless code might."""
    raise SystemExit(3)


@pytest.mark.parametrize("arguments", ["[" * 100_000, '{"city": ' + "[" * 100_000 + "]" * 100_000 + "}",
                                       '{"city": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}"])
def test_deeply_nested_arguments_become_an_error_result(arguments: str) -> None:
    result = lab.run_call([get_weather], "get_weather", arguments)
    assert result.startswith("error: ") and "get_weather" in result and len(result) < 1000


def test_a_circular_result_becomes_an_error_result() -> None:
    result = lab.run_call([circular], "circular", "{}")
    assert result.startswith("error: circular returned a dict that cannot be written as text")
    assert "Circular reference" in result


def test_a_tool_that_exits_becomes_an_error_result() -> None:
    assert lab.run_call([quits], "quits", "{}") == "error: quits raised SystemExit: 3"


def test_a_timed_out_tool_does_not_block_interpreter_exit() -> None:
    import subprocess
    import sys

    script = ("import time, gptoss_lab as lab\n"
              "@lab.tool(timeout=0.5)\n"
              "def stuck() -> str:\n"
              "    'Never finish.'\n"
              "    time.sleep(120)\n"
              "    return 'late'\n"
              "print(stuck.run('{}'))\n")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=90)
    assert proc.stdout.strip() == "error: stuck did not finish within 0.5 s; try a smaller request."
    assert proc.returncode == 0 and time.monotonic() - started < 60  # the old code waited the full 120 s


def test_an_unknown_tool_is_an_error_result() -> None:
    result = lab.run_call([get_weather, slow], "get_time", "{}")
    assert result == "error: there is no tool named 'get_time'; the available tools are: get_weather, slow."


def test_var_args_are_refused_when_the_tool_is_made() -> None:
    with pytest.raises(TypeError, match=r"\*args and \*\*kwargs"):
        lab.tool(lambda *args: None)


def test_parallel_calls_run_concurrently() -> None:
    """arun() leaves the event loop free: four calls that each wait for all four to be running all finish."""
    import asyncio

    all_running = threading.Barrier(4)

    @lab.tool
    def meet(seconds: float) -> str:
        """Wait (at most ``seconds``) until four calls are running."""
        all_running.wait(timeout=seconds)
        return "ok"

    async def four() -> list[str]:
        return await asyncio.gather(*(meet.arun('{"seconds": 20}') for _ in range(4)))

    assert asyncio.run(four()) == ["ok"] * 4, "calls that run one after another break the barrier"
