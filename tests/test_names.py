"""One name, one thing: no exported name means two things, and no function hides a module of the same name."""

from __future__ import annotations

import importlib
import pkgutil

import gptoss_lab

PUBLIC = ["gptoss_lab", "gptoss_lab.bench", "gptoss_lab.builtin", "gptoss_lab.widgets", "gptoss_lab.nano"]

HIDDEN_ON_PURPOSE = {
    # A notebook calls the function; the module, whose one job the function is, stays importable by its full name.
    "gptoss_lab.client": "lab.client(), the OpenAI client (02_apis)",
    "gptoss_lab.doctor": "lab.doctor(), the machine check (00_setup)",
    "gptoss_lab.bench.roofline": "lab.bench.roofline(), the decode ceiling (06_benchmark)",
    "gptoss_lab.widgets.playground": "lab.widgets.playground(), the chat UI (07_playground)",
    "gptoss_lab.widgets.server_panel": "lab.widgets.server_panel(), the server control (07_playground)",
    "gptoss_lab.nano.build": "nano.build(), what `gptoss-lab nano build` calls",
}
"""Modules whose package attribute is the function of the same name, each the module's one entry point."""


def test_no_two_public_classes_share_a_name() -> None:
    owners: dict[str, set[str]] = {}
    for package in PUBLIC:
        module = importlib.import_module(package)
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, type):
                owners.setdefault(name, set()).add(f"{value.__module__}.{value.__qualname__}")
    assert {name: where for name, where in owners.items() if len(where) > 1} == {}


def test_no_function_hides_a_module_of_the_same_name() -> None:
    hidden = []
    for package in [gptoss_lab, *(importlib.import_module(p) for p in PUBLIC[1:])]:
        for info in pkgutil.iter_modules(package.__path__):
            full = f"{package.__name__}.{info.name}"
            module = importlib.import_module(full)
            if getattr(package, info.name) is not module and full not in HIDDEN_ON_PURPOSE:
                hidden.append(full)
    assert hidden == []
