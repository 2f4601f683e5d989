"""Smaller promises: a refused training leaves nothing, and messages say what really happened."""

from __future__ import annotations

import io

from catdog import cli, runs


def test_a_training_refused_because_the_lock_is_busy_leaves_no_run_folder(tmp_path, tiny_dataset, stats):
    holder = runs.create_run(tmp_path, "holder")
    runs.acquire_lock(holder, tmp_path)
    try:
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(["train", "--data", str(tiny_dataset), "--image-size", "32", "--runs-dir", str(tmp_path), "--run-id", "refused"], out, err)
    finally:
        runs.release_lock(tmp_path)
    stats.fault()
    assert code == 2 and "another training is running" in err.getvalue()
    assert not (tmp_path / "refused").exists()
    assert [r.id for r in runs.list_runs(tmp_path)] == []
