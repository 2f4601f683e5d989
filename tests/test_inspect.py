"""Dataset report: counts, split, sizes, duplicates/leakage, corrupt files, quarantine, CLI."""

from __future__ import annotations

import io
import json

import pytest

from catdog.cli import main
from catdog.inspect import format_report, inspect_dataset, quarantine
from tests.fixtures import image_bytes, make_class_folders, write_image


def _split_dataset(root):
    make_class_folders(root / "train", n=4)
    for i in range(2):  # seeds unlike train's, so no file is a copy of another
        write_image(root / f"test/cats/c{i}.jpg", seed=500 + i)
        write_image(root / f"test/dogs/d{i}.jpg", seed=600 + i)
    return root


def test_counts_split_and_sizes_are_reported(tmp_path):
    root = _split_dataset(tmp_path / "ds")
    report = inspect_dataset(root)
    assert report.kind == "split"
    assert report.counts == {"train": {"cat": 4, "dog": 4}, "validation": {"cat": 2, "dog": 2}}
    assert report.size_stats["median_width"] == 48 and report.size_stats["median_height"] == 40
    assert len(report.samples["cat"]) == 4
    assert report.corrupt == [] and report.duplicates == []


def test_duplicate_across_train_and_validation_is_flagged_as_leakage(tmp_path):
    root = _split_dataset(tmp_path / "ds")
    (root / "test/cats/copy.jpg").write_bytes((root / "train/cats/cat000.jpg").read_bytes())
    (root / "train/dogs/twin.jpg").write_bytes((root / "train/dogs/dog001.jpg").read_bytes())
    report = inspect_dataset(root)
    assert len(report.duplicates) == 2
    assert [sorted(g) for g in report.leaks] == [["test/cats/copy.jpg", "train/cats/cat000.jpg"]]


def test_a_second_report_reads_unchanged_photos_from_the_cache_and_rechecks_a_changed_one(tmp_path, monkeypatch):
    import os

    from catdog import inspect as inspect_module

    root = _split_dataset(tmp_path / "ds")
    (root / "train/cats/broken.jpg").write_bytes(b"not an image")
    first = inspect_dataset(root)
    checked = []
    real = inspect_module._check_file
    monkeypatch.setattr(inspect_module, "_check_file", lambda check: (checked.append(check.path.name), real(check))[1])
    assert inspect_dataset(root).to_dict() == first.to_dict() and checked == []  # every photo from the cache
    changed = root / "train/dogs/dog001.jpg"
    changed.write_bytes((root / "train/dogs/dog000.jpg").read_bytes())  # now a duplicate, with another size and time
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    second = inspect_dataset(root)
    assert checked == ["dog001.jpg"] and len(second.duplicates) == 1
    assert second.corrupt == first.corrupt  # the broken file's reason comes back from the cache too


def test_a_checks_cache_that_is_not_ours_is_ignored(tmp_path):
    from catdog.inspect import checks_cache_path

    root = _split_dataset(tmp_path / "ds")
    first = inspect_dataset(root).to_dict()
    assert checks_cache_path(root.resolve()).is_file()
    for text in ("not json", json.dumps({"format": 1, "root": "/elsewhere", "files": {}}),
                 json.dumps({"format": 1, "root": str(root.resolve()), "files": {str(root / "train/cats/cat000.jpg"): [1, 2]}})):
        checks_cache_path(root.resolve()).write_text(text)
        assert inspect_dataset(root).to_dict() == first


def test_corrupt_truncated_zero_byte_and_non_image_files_are_reported_with_reason(tmp_path):
    root = make_class_folders(tmp_path / "ds", n=3)
    good = image_bytes(size=(64, 64))
    (root / "cats/truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "cats/empty.jpg").write_bytes(b"")
    (root / "dogs/text.jpg").write_bytes(b"this is not a picture at all\n" * 4)
    (root / "dogs/garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    report = inspect_dataset(root)
    reasons = dict(report.corrupt)
    assert set(reasons) == {"cats/truncated.jpg", "cats/empty.jpg", "dogs/text.jpg", "dogs/garbage.png"}
    assert "truncated" in reasons["cats/truncated.jpg"]
    assert "0 bytes" in reasons["cats/empty.jpg"]
    assert "text" in reasons["dogs/text.jpg"]
    assert "corrupt or unreadable: 4" in format_report(report)


def test_quarantine_moves_bad_files_out_of_the_dataset_and_keeps_them(tmp_path):
    root = make_class_folders(tmp_path / "ds", n=2)
    (root / "cats/empty.jpg").write_bytes(b"")
    moved = quarantine(inspect_dataset(root))
    assert moved == [tmp_path / "ds.quarantine/cats/empty.jpg"]
    assert moved[0].exists() and not (root / "cats/empty.jpg").exists()
    assert inspect_dataset(root).corrupt == []


def test_cli_data_inspect_prints_report_and_json(tmp_path):
    root = _split_dataset(tmp_path / "ds")
    write_image(root / "train/cats/odd.png", size=(10, 20), fmt="PNG")
    out = io.StringIO()
    assert main(["data", "inspect", str(root)], out=out) == 0
    assert "train: 9 images (5 cat, 4 dog)" in out.getvalue()
    assert "validation: 4 images" in out.getvalue()
    out = io.StringIO()
    assert main(["data", "inspect", str(root), "--json"], out=out) == 0
    assert json.loads(out.getvalue())["total"] == 13


def test_cli_data_inspect_quarantine(tmp_path):
    root = make_class_folders(tmp_path / "ds", n=2)
    (root / "dogs/bad.jpg").write_bytes(b"\xff\xd8\xff")
    out = io.StringIO()
    assert main(["data", "inspect", str(root), "--quarantine"], out=out) == 0
    assert "quarantined 1 files" in out.getvalue()
    assert (tmp_path / "ds.quarantine/dogs/bad.jpg").exists()


def test_cli_data_inspect_missing_folder_is_one_error_line(tmp_path):
    err = io.StringIO()
    assert main(["data", "inspect", str(tmp_path / "nope")], out=io.StringIO(), err=err) == 2
    assert err.getvalue().startswith("error:") and "does not exist" in err.getvalue()


@pytest.mark.slow
@pytest.mark.realdata
def test_real_data_report(shared_data):
    report = inspect_dataset(shared_data)
    assert sum(report.counts["train"].values()) == 6000
    assert report.corrupt == [] and report.leaks == []
