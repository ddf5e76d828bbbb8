"""List requirements a wheelhouse lacks for a *target* interpreter.

The wheelhouse is built with the host's pip, which evaluates environment
markers for the host Python (e.g. 3.11.7). The images run Debian bookworm's
python3 (3.11.2), for which some markers differ — redis needs async-timeout on
``python_full_version < "3.11.3"``. This walks the Requires-Dist of the wheels
from the root requirement, evaluating markers with the target's environment,
and prints one missing requirement per line (nothing when complete), pinned
to the lock's version for the target when LOCK (requirements/lock.txt) has one.

usage: python3 wheelhouse_missing.py WHEELHOUSE TARGET_ENV_JSON ROOT_REQ [LOCK]
"""

from __future__ import annotations

import json
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # pip always carries a copy
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]
    from pip._vendor.packaging.utils import canonicalize_name  # type: ignore[no-redef]


def read_wheels(wheelhouse: Path) -> dict[str, tuple[str, list[str]]]:
    dists: dict[str, tuple[str, list[str]]] = {}
    for whl in wheelhouse.glob("*.whl"):
        with zipfile.ZipFile(whl) as zf:
            meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            meta = Parser().parsestr(zf.read(meta_name).decode())
        dists[canonicalize_name(meta["Name"])] = (meta["Version"], meta.get_all("Requires-Dist") or [])
    return dists


def missing(wheelhouse: Path, env: dict[str, str], root: str) -> list[str]:
    dists = read_wheels(wheelhouse)
    out: list[str] = []
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(root)]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        if name not in dists or not req.specifier.contains(dists[name][0], prereleases=True):
            out.append(str(req).split(";")[0].strip())
            continue
        for line in dists[name][1]:
            sub = Requirement(line)
            extras = req.extras or {""}
            if sub.marker is None or any(sub.marker.evaluate({**env, "extra": e}) for e in extras):
                sub.marker = None
                todo.append(sub)
    return sorted(set(out))


def lock_pins(lock: Path, env: dict[str, str]) -> dict[str, str]:
    """name -> "name==version" of the lock's lines whose markers hold for the target."""
    pins: dict[str, str] = {}
    for raw in lock.read_text().splitlines():
        line = raw.split("#")[0].strip()
        if not line:
            continue
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(env):
            req.marker = None
            pins[canonicalize_name(req.name)] = str(req)
    return pins


if __name__ == "__main__":
    env = json.loads(sys.argv[2])
    pins = lock_pins(Path(sys.argv[4]), env) if len(sys.argv) > 4 else {}
    for line in missing(Path(sys.argv[1]), env, sys.argv[3]):
        print(pins.get(canonicalize_name(Requirement(line).name), line))
