"""Robustness suite fixtures: the hostile corpus, fault helpers, and a summary of counts.

Every test here records what it tried in `STATS` (tests/robustness/stats.py); tests/conftest.py
prints the totals (inputs tried, faults injected, errors seen, files lost) at the end of any
pytest run that collected this folder, adding up the workers' counts under pytest-xdist.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.robustness.corpus import Case, build_corpus
from tests.robustness.stats import STATS, RobustnessStats


@pytest.fixture(scope="session")
def stats() -> RobustnessStats:
    return STATS


@pytest.fixture(scope="session")
def hostile_corpus() -> list[Case]:
    """Every hostile input (generated once per session, ~3 MB in memory)."""
    return build_corpus()


@pytest.fixture(scope="session")
def hostile_folder(tmp_path_factory, hostile_corpus) -> Path:
    """The corpus written to files, one per case, named as the case."""
    folder = tmp_path_factory.mktemp("hostile")
    for case in hostile_corpus:
        (folder / case.name).write_bytes(case.data)
    return folder
