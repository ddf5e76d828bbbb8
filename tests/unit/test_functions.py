"""Which `module:callable` a worker runs: public callables defined in, or exported by, an
allowed module; never dunders, private names, modules or names a module merely imports.
Resolved against real modules (pids.tasks and a package written to a temporary directory)."""

from __future__ import annotations

import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import pids.tasks
from pids.errors import TaskFunctionError
from pids.execution import run_task
from pids.functions import check_function, resolve
from pids.wire import ClaimedTask

BUILTIN = ("pids.tasks",)


@pytest.fixture
def package(tmp_path: Path) -> Iterator[str]:
    """A user's package on sys.path: a module defining, importing and exporting names."""
    name = f"userjobs{uuid.uuid4().hex[:8]}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text(
        textwrap.dedent("""
        import json
        from os.path import join
        from .jobs import double, triple

        __all__ = ["double", "lazy"]
        LIMIT = 3
        SETTINGS = {"debug": False}

        def visible(x):
            return x + 1

        def _hidden():
            return "hidden"

        class Job:
            def __init__(self, n):
                self.n = n

        def __getattr__(name):
            if name == "lazy":
                return visible
            raise AttributeError(name)
    """)
    )
    (root / "jobs.py").write_text("def double(x):\n    return 2 * x\n\n\ndef triple(x):\n    return 3 * x\n")
    (root / "broken.py").write_text("raise RuntimeError('boom at import')\n")
    (root / "_internal.py").write_text("def run():\n    return 'internal'\n")
    sys.path.insert(0, str(tmp_path))
    yield name
    sys.path.remove(str(tmp_path))
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


def test_the_builtin_tasks_resolve() -> None:
    assert resolve("pids.tasks:sleep", BUILTIN) is pids.tasks.sleep
    assert resolve("pids.tasks:square", BUILTIN)(3) == 9


@pytest.mark.parametrize(
    "fn",
    [
        "pids.tasks:__setattr__",
        "pids.tasks:__delattr__",
        "pids.tasks:__dict__",
        "pids.tasks:__loader__",
        "pids.tasks:_private",
        "pids._x:f",
        "pids.tasks.__main__:f",
    ],
)
def test_dunder_and_private_names_are_refused(fn: str) -> None:
    with pytest.raises(TaskFunctionError, match="is private"):
        resolve(fn, BUILTIN)
    with pytest.raises(TaskFunctionError, match="is private"):
        check_function(fn)


@pytest.mark.parametrize(
    "fn, reason",
    [
        ("pids.tasks:time", "is a module"),
        ("pids.tasks:Any", "is not defined in 'pids.tasks' \\(it comes from 'typing'\\)"),
        ("pids.tasks:annotations", "is not callable"),
        ("pids.tasks:print", "has no callable 'print'"),
        ("pids.tasks:missing", "has no callable 'missing'"),
    ],
)
def test_what_a_task_module_imports_or_lacks_is_refused_with_the_reason(fn: str, reason: str) -> None:
    with pytest.raises(TaskFunctionError, match=reason):
        resolve(fn, BUILTIN)


def test_running_a_dunder_task_fails_for_good_and_leaves_the_module_intact() -> None:
    outcome = run_task(
        ClaimedTask("t", "1|0|0|w", "pids.tasks:__setattr__", '["time",0]', "{}", None, 1.0, ""), BUILTIN
    )
    assert not outcome.ok and not outcome.retryable
    assert outcome.error.startswith("TaskFunctionError:") and "'__setattr__' is private" in outcome.error
    assert vars(pids.tasks)["time"] is time and pids.tasks.sleep(0.0) == 0.0
    outcome = run_task(ClaimedTask("t", "1|0|0|w", "pids.tasks:__delattr__", '["sleep"]', "{}", None, 1.0, ""), BUILTIN)
    assert not outcome.ok and not outcome.retryable and hasattr(pids.tasks, "sleep")


def test_a_users_public_functions_and_classes_resolve(package: str) -> None:
    assert resolve(f"{package}:visible", (package,))(1) == 2
    assert resolve(f"{package}:Job", (package,))(4).n == 4
    assert resolve(f"{package}.jobs:triple", (package,))(2) == 6  # by the module that defines it


def test_a_name_exported_in_all_resolves_though_defined_elsewhere(package: str) -> None:
    assert resolve(f"{package}:double", (package,))(5) == 10
    assert resolve(f"{package}:lazy", (package,))(1) == 2  # exported and served by the module's __getattr__


def test_a_name_imported_but_not_exported_is_refused_naming_its_origin(package: str) -> None:
    with pytest.raises(TaskFunctionError, match=rf"not defined in '{package}' \(it comes from '{package}.jobs'\)"):
        resolve(f"{package}:triple", (package,))
    with pytest.raises(TaskFunctionError, match="it comes from 'posixpath'"):
        resolve(f"{package}:join", (package,))


def test_a_users_module_globals_cannot_be_reached(package: str) -> None:
    for name, reason in [
        ("json", "is a module"),
        ("LIMIT", "is not callable"),
        ("SETTINGS", "is not callable"),
        ("__setattr__", "is private"),
        ("__getattr__", "is private"),
        ("_hidden", "is private"),
    ]:
        with pytest.raises(TaskFunctionError, match=reason):
            resolve(f"{package}:{name}", (package,))
    assert sys.modules[package].LIMIT == 3


def test_a_private_submodule_is_refused_before_it_is_imported(package: str) -> None:
    with pytest.raises(TaskFunctionError, match="'_internal' is private"):
        resolve(f"{package}._internal:run", (package,))
    assert f"{package}._internal" not in sys.modules


def test_a_module_failing_at_import_is_a_task_function_error(package: str) -> None:
    with pytest.raises(TaskFunctionError, match=f"importing task module '{package}.broken' failed: RuntimeError: boom"):
        resolve(f"{package}.broken:anything", (package,))
    with pytest.raises(TaskFunctionError, match="cannot import task module"):
        resolve(f"{package}.absent:anything", (package,))


def test_a_module_outside_the_allow_list_is_never_imported(package: str) -> None:
    with pytest.raises(TaskFunctionError, match="not allowed on this worker"):
        resolve(f"{package}:visible", BUILTIN)
    assert package not in sys.modules


@pytest.mark.parametrize(
    "fn",
    [
        "m\u00f3dulo:f",
        "pids.tasks:sq\u00fcare",
        "pids.tasks:sleep\udc80",
        "a:" + "b" * 300,
        "pids.tasks:sleep ",
        None,
        3,
    ],
)
def test_names_that_are_not_ascii_identifiers_or_too_long_are_malformed(fn: object) -> None:
    with pytest.raises(TaskFunctionError, match="must look like 'package.module:callable'"):
        check_function(fn)
