"""benchmarks/goals.py: each figure judged against its goal, and 'not measured' said as such."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edge_asc.bench.timing import Stats

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def goals(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    sys.modules.pop("goals", None)
    import goals

    return goals


def test_goals_judge_and_say_when_not_measured(goals):
    fast, slow = Stats(1.0, 2.0, 50), Stats(6.0, 7.0, 50)
    met = goals.frontend_goals(fast, slow, slow)
    assert [g.met for g in met] == [True, True] and "6.00x" in met[0].measured
    assert goals.frontend_goals(fast, None, None)[0].met is None
    assert goals.faster_goal("x", fast, slow).met is True
    assert goals.faster_goal("x", slow, fast).met is False
    assert goals.faster_goal("x", fast, None).met is None
    assert goals.int8_goal(Stats(1.0, 1, 5), Stats(1.29, 1, 5)).met is False
    assert goals.int8_goal(Stats(1.0, 1, 5), Stats(1.31, 1, 5)).met is True
    assert goals.rss_goal(59.9).met is True and goals.rss_goal(60.1).met is False
    assert goals.rss_goal(None).met is None
    assert goals.cpu_goal(None).met is None and goals.cpu_goal(0.9).met is True
    assert goals.cpu_goal(1.1).met is False
    assert goals.time_goal(599).met is True and goals.time_goal(601).met is False


def test_the_installed_app_carries_no_goals():
    import edge_asc.bench

    assert not (Path(edge_asc.bench.__file__).parent / "goals.py").exists()
