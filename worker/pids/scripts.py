"""Loading the Lua scripts: each declares what it includes (`-- include: a b`) in its first line,
so each can be loaded on its own; cycle.lua declares its parts (`-- parts: a b c`), which run
in it as local functions of their own KEYS and ARGV."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import redis


@functools.cache
def source(name: str) -> str:
    return resources.files("pids").joinpath("lua", f"{name}.lua").read_text()


def _header(name: str, word: str) -> list[str]:
    first = source(name).partition("\n")[0]
    prefix = f"-- {word}:"
    return first[len(prefix) :].split() if first.startswith(prefix) else []


def includes(*names: str) -> list[str]:
    """The shared files the named scripts include, each once, in order."""
    return list(dict.fromkeys(shared for name in names for shared in _header(name, "include")))


@functools.cache
def full_source(name: str) -> str:
    """A script with everything it needs in front of it, ready for EVAL."""
    parts = _header(name, "parts")
    if not parts:
        return "".join(source(shared) for shared in includes(name)) + source(name)
    wrapped = [f"local function {part}(KEYS, ARGV)\n{source(part)}\nend\n" for part in parts]
    return "".join(source(shared) for shared in includes(*parts)) + "".join(wrapped) + source(name)


def register(client: redis.Redis, name: str) -> Any:
    """A redis-py Script: called by SHA, reloaded if the server lost its script cache."""
    return client.register_script(full_source(name))
