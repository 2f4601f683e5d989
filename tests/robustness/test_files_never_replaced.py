"""No command replaces a file it did not write: report, quarantine, export --overwrite, model.onnx; full disks are worded clearly."""

from __future__ import annotations

import errno
import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from catdog import cli, config, onnx_runtime, runs
from catdog.export import sidecar_path
from catdog.inspect import inspect_dataset, quarantine
from tests.fixtures import write_image


def _run(tmp_path: Path) -> runs.Run:
    """A run folder with a config and no epochs: `catdog report --no-eval` needs no model for it."""
    run = runs.create_run(tmp_path / "runs", "plain")
    run.write_config({"model": "seed", "image_size": 32, "class_names": ["cat", "dog"]})
    return run


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


# --- item 7: catdog report --out --------------------------------------------------


def test_report_refuses_to_overwrite_a_file_it_did_not_write(tmp_path, stats):
    run = _run(tmp_path)
    model = run.path / config.MODEL_FILENAME
    model.write_bytes(b"the trained model")
    for extra in ((), ("--overwrite",)):
        code, _, err = _cli("report", str(run.path), "--out", str(model), "--no-eval", *extra)
        stats.fault()
        kept = model.read_bytes() == b"the trained model"
        stats.lost(int(not kept))
        stats.input(ok=False)
        assert kept, "report --out replaced a file it did not write"
        assert code == 2 and "not a catdog report" in err and "Traceback" not in err, err


def test_report_overwrite_replaces_only_a_previous_report(tmp_path, stats):
    run = _run(tmp_path)
    out = tmp_path / "report.html"
    assert _cli("report", str(run.path), "--out", str(out), "--no-eval")[0] == 0
    first = out.read_text(encoding="utf-8")
    code, _, err = _cli("report", str(run.path), "--out", str(out), "--no-eval")
    assert code == 2 and "--overwrite" in err, err  # a previous report is not replaced silently
    assert out.read_text(encoding="utf-8") == first
    assert _cli("report", str(run.path), "--out", str(out), "--no-eval", "--overwrite")[0] == 0
    stats.input(ok=True, n=3)


def test_report_overwrite_keeps_a_report_edited_since_it_was_written(tmp_path, stats):
    run = _run(tmp_path)
    out = tmp_path / "report.html"
    assert _cli("report", str(run.path), "--out", str(out), "--no-eval")[0] == 0
    edited = out.read_text(encoding="utf-8").replace("<body>", "<body><p>my notes on this run</p>")
    out.write_text(edited, encoding="utf-8")
    code, _, err = _cli("report", str(run.path), "--out", str(out), "--no-eval", "--overwrite")
    stats.fault()
    kept = out.read_text(encoding="utf-8") == edited
    stats.lost(int(not kept))
    assert kept, "report --overwrite replaced a report edited since it was written"
    assert code == 2 and "changed since" in err and "Traceback" not in err, err


@pytest.mark.parametrize("head", ["title", "marker"])
def test_report_overwrite_keeps_a_page_that_only_looks_like_a_report(tmp_path, head, stats):
    from catdog.report import REPORT_MARKER

    run = _run(tmp_path)
    out = tmp_path / "page.html"
    mine = ("<!doctype html><html><head><title>catdog report · my own page</title>" if head == "title"
            else f"<!doctype html><html><head>{REPORT_MARKER}<title>mine</title>") + "</head><body>hand-written</body></html>"
    out.write_text(mine, encoding="utf-8")
    code, _, err = _cli("report", str(run.path), "--out", str(out), "--no-eval", "--overwrite")
    stats.fault()
    kept = out.read_text(encoding="utf-8") == mine
    stats.lost(int(not kept))
    assert kept, "report --overwrite replaced a page catdog did not write"
    assert code == 2 and "not a catdog report" in err and "Traceback" not in err, err


def test_report_records_what_it_wrote_and_never_replaces_a_foreign_record(tmp_path, stats):
    from catdog.hashing import file_sha256
    from catdog.report import record_path

    run = _run(tmp_path)
    out = tmp_path / "report.html"
    assert _cli("report", str(run.path), "--out", str(out), "--no-eval")[0] == 0
    assert json.loads(record_path(out).read_text())["sha256"] == file_sha256(out)
    other = tmp_path / "other.html"
    record_path(other).write_text("my own json")
    code, _, err = _cli("report", str(run.path), "--out", str(other), "--no-eval")
    stats.fault()
    kept = record_path(other).read_text() == "my own json"
    stats.lost(int(not kept))
    assert kept and not other.exists()
    assert code == 2 and "not a catdog report record" in err, err


# --- item 11: quarantine ------------------------------------------------------------


def test_quarantine_never_replaces_an_earlier_quarantined_file(tmp_path, stats):
    root = tmp_path / "data"
    for cls in ("cats", "dogs"):
        for i in range(2):
            write_image(root / cls / f"{i}.jpg", seed=i)
    moved = []
    for attempt in (b"first broken file", b"second broken file, same name", b"third"):
        (root / "cats" / "bad.jpg").write_bytes(attempt)
        moved += quarantine(inspect_dataset(root))
        stats.fault()
    stats.lost(3 - len({p.read_bytes() for p in moved if p.exists()}))
    contents = sorted(p.read_bytes() for p in moved)
    assert len(moved) == 3 and len(set(moved)) == 3, moved
    assert contents == sorted([b"first broken file", b"second broken file, same name", b"third"])
    assert all(p.parent == tmp_path / "data.quarantine" / "cats" for p in moved)


# --- item 12: export --overwrite replaces only what the previous export wrote -------


@pytest.fixture
def fake_export(monkeypatch, tmp_path):
    """Export without TensorFlow: a fake predictor, and SavedModel/TFLite writers that write small files."""
    from catdog import export, predict

    model_file = tmp_path / "run" / config.MODEL_FILENAME
    model_file.parent.mkdir()
    model_file.write_bytes(b"keras bytes")
    fake = SimpleNamespace(model=None, image_size=32, temperature=1.0, class_names=["cat", "dog"], threshold=0.5,
                           uncertain_below=0.75)
    monkeypatch.setattr(predict, "resolve_model", lambda model: (model_file, None))
    monkeypatch.setattr(predict.Predictor, "load", classmethod(lambda cls, *a, **k: fake))
    hooks: dict = {}

    def saved_model(model, size, out, temperature=1.0, check=None):
        (out / "variables").mkdir(parents=True)
        (out / "saved_model.pb").write_bytes(b"graph")
        (out / "variables" / "variables.index").write_bytes(b"index")
        hooks.get("during", lambda: None)()

    def tflite(model, size, out, temperature=1.0, check=None):
        hooks.get("during", lambda: None)()
        out.write_bytes(b"tflite model")

    monkeypatch.setattr(export, "_saved_model", saved_model)
    monkeypatch.setattr(export, "_tflite", tflite)
    return model_file, hooks


def test_export_overwrite_keeps_files_that_appear_in_the_target_while_it_runs(tmp_path, fake_export, stats):
    model_file, hooks = fake_export
    out = tmp_path / "saved"
    assert _cli("export", str(model_file), "--format", "savedmodel", "--out", str(out)) == (0, f"{out}\n{sidecar_path(out)}\n", "")
    hooks["during"] = lambda: (out / "my-notes.txt").write_text("written while the export ran\n")
    code, _, err = _cli("export", str(model_file), "--format", "savedmodel", "--out", str(out), "--overwrite")
    stats.fault()
    kept = (out / "my-notes.txt").is_file() and (out / "my-notes.txt").read_text() == "written while the export ran\n"
    stats.lost(int(not kept))
    assert kept, "export --overwrite deleted a file it did not write"
    assert code == 2 and "my-notes.txt" in err and "Traceback" not in err, err
    assert (out / "saved_model.pb").read_bytes() == b"graph"  # the previous export is left as it was


def test_export_overwrite_of_a_file_swapped_while_it_runs_is_refused(tmp_path, fake_export, stats):
    model_file, hooks = fake_export
    out = tmp_path / "model.tflite"
    assert _cli("export", str(model_file), "--format", "tflite", "--out", str(out))[0] == 0
    hooks["during"] = lambda: out.write_bytes(b"someone else's file, saved under the export's name")
    code, _, err = _cli("export", str(model_file), "--format", "tflite", "--out", str(out), "--overwrite")
    stats.fault()
    assert code == 2 and "changed" in err, err
    assert out.read_bytes() == b"someone else's file, saved under the export's name"
    hooks.pop("during")
    assert _cli("export", str(model_file), "--format", "tflite", "--out", str(tmp_path / "b.tflite"))[0] == 0
    assert _cli("export", str(model_file), "--format", "tflite", "--out", str(tmp_path / "b.tflite"), "--overwrite")[0] == 0
    stats.input(ok=True, n=2)


@pytest.mark.parametrize("fmt", ["savedmodel", "tflite"])
@pytest.mark.parametrize("named", ["../victim.txt", "absolute", "sub/../../victim.txt", "."])
def test_export_overwrite_refuses_a_sidecar_naming_files_outside_the_export(tmp_path, fake_export, fmt, named, stats):
    model_file, _ = fake_export
    out = tmp_path / ("saved" if fmt == "savedmodel" else "model.tflite")
    victim = tmp_path / "victim.txt"
    victim.write_text("not export's\n")
    assert _cli("export", str(model_file), "--format", fmt, "--out", str(out))[0] == 0
    sidecar = json.loads(sidecar_path(out).read_text())
    rel = str(victim) if named == "absolute" else named
    if fmt == "savedmodel" or named != ".":
        sidecar["files"][rel] = onnx_runtime.file_sha256(victim)
    else:
        sidecar["files"] = {rel: onnx_runtime.file_sha256(victim)}  # the one-file export's own entry, pointing at another file's hash
    sidecar_path(out).write_text(json.dumps(sidecar))
    before = _snapshot_tree(tmp_path)
    code, _, err = _cli("export", str(model_file), "--format", fmt, "--out", str(out), "--overwrite")
    stats.fault()
    lost = sorted(set(before) - set(_snapshot_tree(tmp_path)))
    stats.lost(len(lost))
    assert lost == [] and victim.read_text() == "not export's\n", lost
    assert code == 2 and "Traceback" not in err, err
    assert ("not a file export wrote" in err) if named != "." or fmt == "savedmodel" else ("changed" in err), err


def _snapshot_tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- item 24: full disks in export and report --------------------------------------


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", "/some/.tmp-file")


@pytest.mark.parametrize("fmt", ["keras", "tflite"])
def test_export_on_a_full_disk_says_so_clearly(tmp_path, fake_export, monkeypatch, fmt, stats):
    from catdog import export

    model_file, _ = fake_export
    if fmt == "keras":
        monkeypatch.setattr(export.shutil, "copyfile", _disk_full)
    else:
        monkeypatch.setattr(export, "_tflite", _disk_full)
    out = tmp_path / f"model.{fmt}"
    code, _, err = _cli("export", str(model_file), "--format", fmt, "--out", str(out))
    stats.fault()
    assert code == 2 and "the disk is full" in err and str(out) in err and "free some space" in err, err
    assert not out.exists() and not sidecar_path(out).exists()
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary left behind


def test_report_on_a_full_disk_says_so_clearly(tmp_path, monkeypatch, stats):
    from catdog import atomic

    run = _run(tmp_path)
    monkeypatch.setattr(atomic, "atomic_write_text", _disk_full)
    out = tmp_path / "r.html"
    code, _, err = _cli("report", str(run.path), "--out", str(out), "--no-eval")
    stats.fault()
    assert code == 2 and "the disk is full" in err and str(out) in err, err


def test_the_write_error_message_is_shared():
    from catdog.errors import RunError, write_error

    clear = write_error(OSError(errno.EDQUOT, "Disk quota exceeded", "/x/.tmp-a"), "/x/a", "then run it again", cls=RunError)
    assert isinstance(clear, RunError)
    assert str(clear) == "cannot write '/x/a': the disk quota is used up; free some space or fix the permissions, then run it again"
    assert write_error(OSError(errno.ENOENT, "gone")) is None and write_error(ValueError("x")) is None


# --- item 13: a swapped model.onnx ---------------------------------------------------


def _onnx_run(tmp_path: Path) -> Path:
    run = tmp_path / "onnxrun"
    run.mkdir()
    model_file = run / config.MODEL_FILENAME
    model_file.write_bytes(b"keras model bytes")
    onnx = run / onnx_runtime.ONNX_FILENAME
    onnx.write_bytes(b"the converted graph")
    onnx_runtime._write_record(onnx, model_file, onnx_runtime.file_sha256(model_file), 32, "tf", "tf2onnx")
    return model_file


def test_a_swapped_model_onnx_is_not_served(tmp_path, monkeypatch, stats):
    model_file = _onnx_run(tmp_path)
    onnx = model_file.with_name(onnx_runtime.ONNX_FILENAME)
    assert onnx_runtime.current_onnx(model_file) == onnx
    assert json.loads(onnx_runtime.record_path(onnx).read_text())["onnx_sha256"] == onnx_runtime.file_sha256(onnx)
    onnx.write_bytes(b"another graph, same record")
    stats.fault()
    monkeypatch.setattr(config, "cache_dir", lambda: tmp_path / "cache")
    assert onnx_runtime.current_onnx(model_file) is None
    converted = []
    monkeypatch.setattr(onnx_runtime, "convert", lambda src, out, sha=None: converted.append(Path(out)) or Path(out))
    assert onnx_runtime.ensure_onnx(model_file) == onnx_runtime.cached_path(onnx_runtime.file_sha256(model_file))
    assert converted, "the swapped file was served instead of a fresh conversion"
    stats.input(ok=False)


def test_a_record_without_the_onnx_hash_is_not_trusted(tmp_path, stats):
    model_file = _onnx_run(tmp_path)
    record = onnx_runtime.record_path(model_file.with_name(onnx_runtime.ONNX_FILENAME))
    old = json.loads(record.read_text())
    old.pop("onnx_sha256")
    record.write_text(json.dumps(old))
    assert onnx_runtime.current_onnx(model_file) is None
    stats.input(ok=False)


def test_the_bundled_models_onnx_copy_in_the_cache_pins_its_file(stats):
    model_file = config.assets_dir() / "model" / config.MODEL_FILENAME
    if not model_file.is_file():
        pytest.skip(f"no bundled model at {model_file}")
    onnx = onnx_runtime.ensure_onnx(model_file)  # not shipped: converted once into the cache
    assert onnx_runtime.current_onnx(model_file) == onnx
    assert json.loads(onnx_runtime.record_path(onnx).read_text())["onnx_sha256"] == onnx_runtime.file_sha256(onnx)
    stats.input(ok=True)
