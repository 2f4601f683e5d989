"""The robustness suite's counters: what was tried, what was injected, what went wrong.

Every robustness test records into `STATS` (through the `stats` fixture). tests/conftest.py prints
the summary at the end of the run; under pytest-xdist each worker hands its counts to the
controller, which adds them up, so the totals are the same however the suite is run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

COUNTS = ("inputs_tried", "inputs_ok", "inputs_refused", "faults_injected", "files_lost")


@dataclass
class RobustnessStats:
    """Counters shared by every robustness test (thread-safe)."""

    inputs_tried: int = 0
    inputs_ok: int = 0
    inputs_refused: int = 0  # refused with a clear per-file error, as expected
    faults_injected: int = 0
    unexpected: list[str] = field(default_factory=list)  # crashes, wrong outcomes: must stay empty
    # Files a test saw deleted or changed that no command should have touched (a user's file beside an export, an
    # edited report, a file behind a symlink), counted from what the test observed *before* it asserts, so a loss
    # is both counted and failed; 0 means every such check looked and found its files intact.
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
        """Count `n` files the test observed lost; call it before the assert on the same observation."""
        with self._lock:
            self.files_lost += n

    def note(self, line: str) -> None:
        with self._lock:
            self.notes.append(line)

    def as_dict(self) -> dict:
        """The counts as plain values (what an xdist worker sends to the controller)."""
        with self._lock:
            return {**{k: getattr(self, k) for k in COUNTS}, "unexpected": list(self.unexpected), "notes": list(self.notes)}

    def add(self, other: dict) -> None:
        """Add another process's `as_dict()` to these counts."""
        with self._lock:
            for k in COUNTS:
                setattr(self, k, getattr(self, k) + int(other.get(k, 0)))
            self.unexpected.extend(other.get("unexpected", []))
            self.notes.extend(other.get("notes", []))

    def lines(self) -> list[str]:
        """The summary, a line each (none when nothing was recorded)."""
        if not (self.inputs_tried or self.faults_injected or self.notes):
            return []
        out = [f"inputs tried: {self.inputs_tried} (correct result {self.inputs_ok}, clear per-file error {self.inputs_refused})",
               f"faults injected: {self.faults_injected}",
               f"errors seen (crashes, hangs, wrong outcomes): {len(self.unexpected)}"]
        out += [f"  - {line}" for line in self.unexpected[:20]]
        out.append(f"files lost: {self.files_lost}")
        return out + list(self.notes)


STATS = RobustnessStats()
