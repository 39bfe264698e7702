"""Every error the lab raises on purpose is a LabError defined in gptoss_lab/errors.py."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from gptoss_lab import errors

PACKAGE = Path(errors.__file__).resolve().parent


def _exception_classes_outside_errors() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "errors.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(base, ast.Name) and base.id.endswith(("Error", "Exception", "Warning"))
                    for base in node.bases):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}")
    return found


def test_no_module_but_errors_defines_an_exception_class() -> None:
    assert _exception_classes_outside_errors() == []


@pytest.mark.parametrize("name", [n for n, c in inspect.getmembers(errors, inspect.isclass)
                                  if issubclass(c, BaseException) and c.__module__ == errors.__name__])
def test_every_error_is_a_lab_error_and_every_warning_a_user_warning(name: str) -> None:
    cls = getattr(errors, name)
    assert issubclass(cls, errors.LabError) or issubclass(cls, UserWarning), name


def _narrows_to_not_none(test: ast.expr) -> bool:
    """``x is not None`` (or several joined by ``and``): a hint for the type checker, not a check on data."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return all(_narrows_to_not_none(value) for value in test.values)
    return (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.IsNot)
            and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value is None)


def test_no_lab_module_asserts_at_run_time_on_data() -> None:
    """``assert`` vanishes under ``python -O``; a check on data raises a LabError that says what to do."""
    asserts = [f"{path.relative_to(PACKAGE.parent)}:{node.lineno}" for path in sorted(PACKAGE.rglob("*.py"))
               for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, ast.Assert) and not _narrows_to_not_none(node.test)]
    assert asserts == []
