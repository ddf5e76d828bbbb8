"""One virtual environment per peer task queue, created on demand and cached.

Pinned versions keep runs comparable; arq gets its own environment because it
pins redis-py below 6. A venv is reused when its marker file lists exactly the
same requirements.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from pids.errors import PidsError

DEFAULT_DIR = Path.home() / ".cache" / "pids-bench" / "venvs"
_MARKER = ".pids-bench-requirements"


class VenvError(PidsError):
    """A peer's virtual environment could not be created."""


def venv_python(root: Path, name: str, requirements: tuple[str, ...]) -> Path:
    """Path of the venv's python, creating and installing the venv if needed."""
    venv = root / name
    python = venv / "bin" / "python"
    wanted = "\n".join(requirements) + "\n"
    marker = venv / _MARKER
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    console = Console(stderr=True)
    t0 = time.monotonic()
    with console.status(f"[bold]creating venv {venv} ({', '.join(requirements)})"):
        _run([sys.executable, "-m", "venv", "--clear", str(venv)], venv)
        _run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements], venv)
    marker.write_text(wanted)
    console.print(f"venv {name} ready in {time.monotonic() - t0:.0f}s")
    return python


def _run(cmd: list[str], venv: Path) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    except subprocess.TimeoutExpired as exc:
        raise VenvError(f"timed out creating {venv}: {' '.join(cmd)}") from exc
    if proc.returncode != 0:
        raise VenvError(f"creating {venv} failed ({' '.join(cmd)}):\n{proc.stderr[-2000:]}")
