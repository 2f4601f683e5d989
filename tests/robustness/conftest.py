"""Robustness suite fixtures: the hostile corpus, fault helpers, and a summary of counts.

Every test here records what it tried in `STATS`; `pytest_terminal_summary`
prints the totals (inputs tried, faults injected, errors seen, files lost) at
the end of any pytest run that collected this folder.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.robustness.corpus import Case, build_corpus


@dataclass
class RobustnessStats:
    """Counters shared by every robustness test (thread-safe)."""

    inputs_tried: int = 0
    inputs_ok: int = 0
    inputs_refused: int = 0  # refused with a clear per-file error, as expected
    faults_injected: int = 0
    unexpected: list[str] = field(default_factory=list)  # crashes, wrong outcomes: must stay empty
    files_lost: int = 0
    notes: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def input(self, ok: bool, n: int = 1) -> None:
        with self._lock:
            self.inputs_tried += n
            if ok:
                self.inputs_ok += n
            else:
                self.inputs_refused += n

    def fault(self, n: int = 1) -> None:
        with self._lock:
            self.faults_injected += n

    def error(self, what: str) -> None:
        with self._lock:
            self.unexpected.append(what)

    def lost(self, n: int) -> None:
        with self._lock:
            self.files_lost += n

    def note(self, line: str) -> None:
        with self._lock:
            self.notes.append(line)


STATS = RobustnessStats()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not (STATS.inputs_tried or STATS.faults_injected or STATS.notes):
        return
    tr = terminalreporter
    tr.section("catdog robustness summary")
    tr.line(f"inputs tried: {STATS.inputs_tried} (correct result {STATS.inputs_ok}, clear per-file error {STATS.inputs_refused})")
    tr.line(f"faults injected: {STATS.faults_injected}")
    tr.line(f"errors seen (crashes, hangs, wrong outcomes): {len(STATS.unexpected)}")
    for line in STATS.unexpected[:20]:
        tr.line(f"  - {line}")
    tr.line(f"files lost: {STATS.files_lost}")
    for line in STATS.notes:
        tr.line(line)


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
