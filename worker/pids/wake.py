"""The claim loop's wake-up: an event other threads set (new work, a finished task, a drain), that
the loop can wait on together with file descriptors (the pipes of its process slots)."""

from __future__ import annotations

import contextlib
import os
import select
from collections.abc import Sequence
from typing import Any


class Wake:
    """Like threading.Event, backed by a pipe so that `wait` can also watch other descriptors."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._set = False

    def set(self) -> None:
        self._set = True
        with contextlib.suppress(BlockingIOError):  # a pipe full of earlier wake-ups: one more changes nothing
            os.write(self._write, b"!")

    def is_set(self) -> bool:
        return self._set

    def clear(self) -> None:
        self._set = False
        try:
            while os.read(self._read, 4096):
                pass
        except BlockingIOError:
            pass

    def wait(self, timeout: float | None, also: Sequence[Any] = ()) -> bool:
        """Until set, one of `also` (descriptors, or objects with fileno()) is readable, or timeout."""
        if not self._set:
            select.select([self._read, *also], [], [], timeout)
        return self._set

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)
