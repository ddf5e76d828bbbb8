"""The version is written once, in worker/pids/__init__.py; everything else reads it or is
checked against it here (`make version` writes it into the charts)."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from pids import __version__

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("chart", ["pids", "pids-crds"])
def test_charts_carry_the_version(chart: str) -> None:
    meta = yaml.safe_load((ROOT / "charts" / chart / "Chart.yaml").read_text())
    assert (meta["version"], meta["appVersion"]) == (__version__, __version__), "run `make version`"


def test_the_package_version_is_read_from_pids() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "pids.__version__"}
    import pids_operator

    assert pids_operator.__version__ == __version__


def test_the_e2e_scripts_carry_the_version() -> None:
    """A literal (`make version` writes it): versions.sh is part of the e2e node image's stamp,
    so it stays byte for byte what it was until a release."""
    out = subprocess.run(
        ["bash", "-c", '. e2e/versions.sh && echo "$PIDS_VERSION"'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert out.stdout.strip() == __version__, "run `make version`"


@pytest.mark.parametrize("dockerfile", ["worker/Dockerfile", "operator/Dockerfile"])
def test_dockerfiles_take_the_version_from_the_build(dockerfile: str) -> None:
    text = (ROOT / dockerfile).read_text()
    assert re.search(r"^ARG PIDS_VERSION$", text, re.MULTILINE), "no default: images.sh passes pids.__version__"


def test_dockerfile_defaults_are_the_version() -> None:
    defaults = {
        str(p.relative_to(ROOT)): v
        for p in ROOT.glob("**/Dockerfile")
        if ".venv" not in p.parts
        for v in re.findall(r"^ARG PIDS_VERSION=(\S+)$", p.read_text(), re.MULTILINE)
    }
    assert all(v == __version__ for v in defaults.values()), f"{defaults}: run `make version`"


def test_no_manifest_pins_another_version_of_the_images() -> None:
    pinned = re.compile(r"pids-[a-z-]+:([0-9][\w.+-]*)")
    paths = [*ROOT.glob("examples/**/*.yaml"), *ROOT.glob("crds/*.yaml"), *ROOT.glob("charts/*/values.yaml")]
    found = {(p.name, v) for p in paths for v in pinned.findall(p.read_text())}
    assert all(v == __version__ for _, v in found), found
