"""The example tools the notebooks, tests and benchmarks call.

They are deterministic on purpose: gpt-oss-nano replays a script, and every
follow-up request in a tool loop carries these tools' results, so the same
call must always return the same text. With a real gpt-oss model they are
ordinary tools. Taught in ``notebooks/03_tools.ipynb``.
"""

from __future__ import annotations

import time

from gptoss_lab.tools import Tool, tool

WEATHER = {
    "Berlin": {"city": "Berlin", "temperature_c": 18, "conditions": "sunny"},
    "Paris": {"city": "Paris", "temperature_c": 21, "conditions": "cloudy"},
    "Tokyo": {"city": "Tokyo", "temperature_c": 24, "conditions": "humid"},
    "Oslo": {"city": "Oslo", "temperature_c": 9, "conditions": "rain"},
}


@tool
def get_weather(city: str) -> dict[str, object]:
    """Get the current weather in a city.

    Args:
        city: City name, for example "Berlin".
    """
    if city not in WEATHER:
        raise ValueError(f"no weather station for {city!r}")
    return WEATHER[city]


@tool(timeout=1.0)
def get_radar(city: str) -> str:
    """Fetch the live rain radar image for a city (a slow service).

    Args:
        city: City name.
    """
    time.sleep(3.0)
    return f"radar image for {city}"


@tool(max_result_chars=300)
def get_station_log(city: str) -> str:
    """Read today's raw log from a city's weather station (very long).

    Args:
        city: City name.
    """
    lines = [f"{hour:02d}:{minute:02d} {city} temp=18C wind=3m/s" for hour in range(24) for minute in range(0, 60, 5)]
    return "\n".join(lines)


@tool
def slow_square(x: int) -> int:
    """Square a number, slowly (takes one second).

    Args:
        x: The number to square.
    """
    time.sleep(1.0)
    return x * x


TOOLS: dict[str, Tool] = {t.name: t for t in (get_weather, get_radar, get_station_log, slow_square)}
"""Every example tool by name."""
