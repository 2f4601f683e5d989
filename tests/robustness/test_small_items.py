"""Smaller promises: a refused training leaves nothing, and messages say what really happened."""

from __future__ import annotations

import io

from catdog import cli, runs


def test_a_training_refused_because_the_lock_is_busy_leaves_no_run_folder(tmp_path, tiny_dataset, stats):
    holder = runs.create_run(tmp_path, "holder")
    runs.acquire_lock(holder, tmp_path)
    try:
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(
            ["train", "--data", str(tiny_dataset), "--image-size", "32", "--runs-dir", str(tmp_path), "--run-id", "refused"], out, err
        )
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


# --- messages that mislead ---------------------------------------------------------


def _kaggle_env(monkeypatch, folder):
    for var in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(folder))


def test_a_kaggle_json_with_bad_json_is_reported_as_such_not_as_missing(tmp_path, monkeypatch, stats):
    import pytest

    from catdog import kaggle

    _kaggle_env(monkeypatch, tmp_path)
    (tmp_path / "kaggle.json").write_text('{"username": "me", "key": ')
    stats.input(ok=False)
    with pytest.raises(kaggle.KaggleCredentialsError, match="not valid JSON") as info:
        kaggle.real_client()
    assert "no Kaggle credentials found" not in str(info.value)


def test_a_kaggle_json_other_users_can_read_gets_a_warning(tmp_path, monkeypatch, stats):
    from catdog import kaggle

    _kaggle_env(monkeypatch, tmp_path)
    token = tmp_path / "kaggle.json"
    token.write_text('{"username": "me", "key": "0123"}')
    token.chmod(0o644)
    assert any("chmod 600" in w and "644" in w for w in kaggle.credential_warnings())
    token.chmod(0o600)
    assert kaggle.credential_warnings() == []
    stats.input(ok=True, n=2)


class _FailingClient:
    def dataset_download_files(self, *args, **kwargs):
        raise ConnectionError("network is down")


def test_a_failed_download_leaves_no_download_folder_behind(tmp_path, stats):
    import pytest

    from catdog import kaggle

    with pytest.raises(kaggle.KaggleError):
        kaggle.download(dataset="owner/pets", dest=tmp_path / "pets", client=_FailingClient())
    stats.fault()
    assert list(tmp_path.iterdir()) == []


def test_random_bytes_as_a_model_and_catdog_use_of_a_non_model_are_refused_clearly(tmp_path, stats):
    fake = tmp_path / "model.keras"
    fake.write_bytes(bytes(range(256)) * 40)
    for argv in (["predict", str(fake), "--model", str(fake)], ["use", str(fake)], ["use", "/etc/passwd"]):
        err = io.StringIO()
        assert cli.main(argv, io.StringIO(), err) == 2, argv
        assert "is not a Keras model file" in err.getvalue() and "File not found" not in err.getvalue(), err.getvalue()
        stats.input(ok=False)


def test_catdog_use_refuses_a_model_that_does_not_load_and_keeps_the_active_one(home, tmp_path, stats):
    import json
    import zipfile

    from catdog.model_files import active_model_file, default_model

    broken = tmp_path / "broken-run"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"class_names": ["cat", "dog"], "image_size": 32, "threshold": 0.5}))
    with zipfile.ZipFile(broken / "model.keras", "w") as zf:  # a .keras archive whose config.json is not JSON
        zf.writestr("config.json", "{not json")
        zf.writestr("metadata.json", "{}")
    before = default_model()
    err = io.StringIO()
    code = cli.main(["use", str(broken)], io.StringIO(), err)
    stats.fault()
    assert default_model() == before and not active_model_file().exists(), "a model that does not load was made active"
    assert code == 2 and "cannot load model" in err.getvalue() and "the active model is unchanged" in err.getvalue(), err.getvalue()


def test_catdog_use_bundled_makes_the_bundled_model_active(home, tiny_run, stats):
    from catdog.model_files import bundled_model_dir, default_model

    if bundled_model_dir() is None:
        import pytest

        pytest.skip("no bundled model in assets/model")
    assert cli.main(["use", str(tiny_run.path)], io.StringIO(), io.StringIO()) == 0
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["use", "bundled"], out, err) == 0, err.getvalue()
    assert default_model() is not None and default_model().resolve() == (bundled_model_dir() / "model.keras").resolve()
    assert str(bundled_model_dir() / "model.keras") in out.getvalue()
    stats.input(ok=True)


def test_an_all_corrupt_dataset_is_reported_as_unreadable_not_as_one_class(tmp_path, stats):
    import pytest

    from catdog.errors import DatasetError
    from catdog.training import TrainConfig, train

    for name in ("cats", "dogs"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(4):
            (tmp_path / "data" / name / f"{i}.jpg").write_bytes(b"\xff\xd8 not an image")
    cfg = TrainConfig(data=str(tmp_path / "data"), model="seed", epochs=1, batch_size=4, image_size=32, val_split=0.25, precision="float32")
    with pytest.raises(DatasetError, match="could be read") as info:
        train(cfg, runs_dir=tmp_path / "runs", verbose=0, stream=io.StringIO(), lock=False, handle_signals=False)
    stats.input(ok=False, n=8)
    assert "only one class" not in str(info.value)


def test_empty_files_are_not_duplicates_and_a_newline_in_a_name_stays_on_one_line(tmp_path, stats):
    from catdog import inspect
    from tests.fixtures import make_class_folders

    root = make_class_folders(tmp_path / "ds", n=3)
    (root / "cats" / "empty1.jpg").write_bytes(b"")
    (root / "dogs" / "empty2.jpg").write_bytes(b"")
    (root / "cats" / "bad\nname.jpg").write_bytes(b"junk")
    report = inspect.inspect_dataset(root)
    stats.input(ok=False, n=3)
    assert report.duplicates == [] and len(report.corrupt) == 3
    text = inspect.format_report(report)
    assert "bad\\nname.jpg" in text
    assert not any(line.startswith("name.jpg") for line in text.splitlines())
