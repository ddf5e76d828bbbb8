"""Task functions: which `module:callable` names may run, and resolving them on a worker.

A task function is a public callable of an allowed module: the module is one of the
worker's allowed modules or lies inside one, and the callable is defined in that module
or exported by it (listed in its `__all__`). Names starting with "_" (dunders included),
attributes that are modules and names a module merely imports are refused, so whoever may
enqueue reaches the functions a module offers, never its internals (`__setattr__`,
`__delattr__`, its globals, the modules it imports).
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .errors import TaskFunctionError

MAX_FUNCTION_LENGTH = 256
FUNCTION_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")


def check_function(fn: object) -> str:
    """The name rules, checkable anywhere without importing anything: "package.module:callable",
    ASCII identifiers, no part private."""
    if not isinstance(fn, str) or len(fn) > MAX_FUNCTION_LENGTH or not FUNCTION_PATTERN.fullmatch(fn):
        shown = repr(fn) if len(repr(fn)) <= 100 else f"{repr(fn)[:100]}..."
        raise TaskFunctionError(
            f"task function must look like 'package.module:callable' (ASCII, at most "
            f"{MAX_FUNCTION_LENGTH} characters), got {shown}"
        )
    module, name = fn.split(":")
    private = next((part for part in (*module.split("."), name) if part.startswith("_")), None)
    if private is not None:
        raise TaskFunctionError(
            f"task function {fn!r}: {private!r} is private (starts with '_'); only public names can be task functions"
        )
    return fn


def is_allowed(module: str, allowed_modules: tuple[str, ...] | list[str]) -> bool:
    """A module is allowed if it is, or lies inside, one of the allowed packages."""
    return any(module == a or module.startswith(a + ".") for a in allowed_modules)


def resolve(fn: str, allowed_modules: tuple[str, ...]) -> Callable[..., Any]:
    """The callable `fn` names; its module is imported only once the name rules and the
    allow-list pass. Every refusal is a TaskFunctionError saying why."""
    check_function(fn)
    module_name, name = fn.split(":")
    if not is_allowed(module_name, allowed_modules):
        raise TaskFunctionError(
            f"module {module_name!r} is not allowed on this worker (allowed: {', '.join(allowed_modules)})"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TaskFunctionError(f"cannot import task module {module_name!r}: {exc}") from None
    except Exception as exc:  # the module's own code failed while importing
        raise TaskFunctionError(f"importing task module {module_name!r} failed: {type(exc).__name__}: {exc}") from None
    return _public_callable(module, name)


def _public_callable(module: ModuleType, name: str) -> Callable[..., Any]:
    """`module`'s callable `name`, if it is defined there or exported in its `__all__`."""
    fn = f"{module.__name__}:{name}"
    exported = name in _exports(module)
    target = getattr(module, name, None) if exported else vars(module).get(name)
    if target is None:
        raise TaskFunctionError(f"{fn!r}: module {module.__name__!r} has no callable {name!r}")
    if inspect.ismodule(target):
        raise TaskFunctionError(f"{fn!r} is a module, not a task function")
    if not callable(target):
        raise TaskFunctionError(f"{fn!r} is not callable (a {type(target).__name__})")
    origin = getattr(target, "__module__", None)
    if not exported and origin != module.__name__:
        raise TaskFunctionError(
            f"{fn!r} is not defined in {module.__name__!r} (it comes from {origin!r}): name it "
            f"by the module that defines it, or export it in {module.__name__}.__all__"
        )
    function: Callable[..., Any] = target
    return function


def _exports(module: ModuleType) -> tuple[str, ...]:
    names = vars(module).get("__all__", ())
    return tuple(n for n in names if isinstance(n, str)) if isinstance(names, (list, tuple)) else ()
