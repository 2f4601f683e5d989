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


BAD_UPLOAD_NAMES = ["", ".", "cats/", "cats/a\0b.jpg", "cats/" + "x" * 256 + ".jpg", "clash", "clash/inner.jpg", "dogs/d1.jpg"]


def test_folder_upload_names_that_cannot_be_files_get_a_per_file_refusal(tmp_path, monkeypatch, stats):
    from catdog import sources
    from catdog.errors import CatdogError

    monkeypatch.setenv("CATDOG_HOME", str(tmp_path / "home"))
    good = [("cats/c1.jpg", b"c1"), ("dogs/d1.jpg", b"d1")]
    files = good + [(name, b"x") for name in BAD_UPLOAD_NAMES]
    refused: list[tuple[str, str]] = []
    dest = sources.import_files(files, "upload", refused=refused)
    stats.input(ok=True, n=len(good))
    stats.input(ok=False, n=len(refused))
    assert (dest / "cats" / "c1.jpg").read_bytes() == b"c1" and (dest / "dogs" / "d1.jpg").read_bytes() == b"d1"
    reasons = dict(refused)
    assert set(reasons) == set(BAD_UPLOAD_NAMES) - {"clash"}  # "clash" is stored; its clashing sibling is refused
    assert "empty" in reasons[""] and "empty" in reasons["."] and "NUL" in reasons["cats/a\0b.jpg"]
    assert "255" in reasons["cats/" + "x" * 256 + ".jpg"] and "same name" in reasons["clash/inner.jpg"]
    assert "same name" in reasons["dogs/d1.jpg"]
    # Without a list to report into, the first bad name is a clear CatdogError (what the page shows), not an OSError.
    try:
        sources.import_files([("cats/a\0b.jpg", b"x")], "upload")
    except CatdogError as exc:
        assert "NUL" in str(exc)
    else:
        raise AssertionError("a NUL byte in a name was accepted")
    assert not list((tmp_path / "home" / "datasets").glob(".*partial*"))
