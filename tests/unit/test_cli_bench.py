"""`pids bench`: handed to the pids-bench package, with a clear error when it is not installed."""

from __future__ import annotations

import sys

import pytest

from pids.cli import main
from pids_bench.cli import BENCHMARKS


def test_bench_without_the_research_package_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "pids_bench", None)  # as if pids-bench were not installed
    assert main(["bench", "placement"]) == 2
    assert "pip install -e ./bench" in capsys.readouterr().err


def test_bench_without_a_name_lists_the_benchmarks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == list(BENCHMARKS) == ["placement", "peers", "scale", "soak"]


def test_an_unknown_benchmark_is_refused_naming_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "teleport"]) == 2
    assert "unknown benchmark 'teleport'; choose one of placement, peers, scale" in capsys.readouterr().err


def test_a_benchmark_gets_its_own_options_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "placement", "--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    assert help_text.startswith("usage: pids bench placement") and "--workload" in help_text
