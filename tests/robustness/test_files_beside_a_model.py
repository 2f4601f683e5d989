"""Every file beside a model is untrusted input (issue 24, items 3 and 4).

openset.npz and config.json, damaged in every way the trial found, get one clear
message naming the file and what to do, the same on ONNX Runtime and TensorFlow,
from the CLI; an oversized array is refused from its header, before it is read;
and a run killed while finishing (new check, old model) is refused as not whole.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures import REPO, write_image

pytestmark = pytest.mark.slow

BACKENDS = ("onnxruntime", "tensorflow")


def _npz(base: dict, **changes) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{**base, **changes})
    return buf.getvalue()


def _damaged_checks(good: bytes) -> dict[str, bytes]:
    with np.load(io.BytesIO(good)) as z:
        base = {k: z[k] for k in z.files}
    meta = json.loads(bytes(base["meta"]).decode())
    as_meta = lambda value: np.frombuffer(json.dumps(value).encode(), np.uint8)  # noqa: E731
    objects = io.BytesIO()
    np.savez(objects, **{**base, "threshold": np.array([{"a": 1}], dtype=object)})
    return {
        "0 bytes": b"",
        "garbage": b"not a zip at all " * 20,
        "a 3-vector threshold": _npz(base, threshold=np.array([1.0, 2.0, 3.0])),
        "a NaN threshold": _npz(base, threshold=np.float64("nan")),
        "a 1e9 threshold": _npz(base, threshold=np.float64(1e9)),
        "a NaN weight": _npz(base, head_w=np.full_like(base["head_w"], np.nan)) if "head_w" in base else b"",
        "meta a JSON list": _npz(base, meta=as_meta([1, 2])),
        "layers an int": _npz(base, meta=as_meta({**meta, "layers": 5})),
        "a pickled object array": objects.getvalue(),
    }


@pytest.fixture
def run_copy(run_with_check, tmp_path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(run_with_check[0], run_dir)
    return run_dir


def _predict(run_dir: Path, photo: Path, backend: str) -> tuple[int, str]:
    from catdog.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(["predict", str(photo), "--model", str(run_dir), "--backend", backend, "--json"], out=out, err=err)
    return code, err.getvalue() + out.getvalue()


def test_a_damaged_check_is_one_clear_message_on_both_backends(run_copy, tmp_path, stats):
    photo = write_image(tmp_path / "cat.jpg", size=(40, 40))
    check_file = run_copy / "openset.npz"
    cases = {k: v for k, v in _damaged_checks(check_file.read_bytes()).items() if v}
    tracebacks = 0
    for name, content in cases.items():
        check_file.write_bytes(content)
        stats.fault()
        for backend in BACKENDS:
            code, text = _predict(run_copy, photo, backend)
            stats.input(ok=False)
            tracebacks += "Traceback" in text
            assert code == 2, (name, backend, text)
            assert str(check_file) in text and f"catdog openset fit {run_copy}" in text, (name, backend, text)
            assert "NaN" not in text.split("error:")[0]  # no bare NaN printed as JSON
    assert tracebacks == 0


def test_an_oversized_array_is_refused_from_its_header_under_1_5_gb(run_copy, tmp_path, stats):
    """A 3.4 MB compressed array of 400 M zeros: refused before it is read (it took 14.8 GB before)."""
    check_file = run_copy / "openset.npz"
    with np.load(check_file) as z:
        base = {k: z[k] for k in z.files}
    buf = io.BytesIO()
    np.savez_compressed(buf, **base, extra=np.zeros(400_000_000, np.uint8))
    check_file.write_bytes(buf.getvalue())
    stats.fault()
    photo = write_image(tmp_path / "cat.jpg", size=(40, 40))
    # The child reports its own peak, VmHWM (ru_maxrss keeps the forking parent's peak across exec on Linux).
    child = ("import re, sys; from catdog.cli import main; code = main(sys.argv[1:]); "
             "print('PEAK_KB', re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1), file=sys.stderr); "
             "sys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", child, "predict", str(photo), "--model", str(run_copy), "--backend", "tensorflow"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    stats.input(ok=False)
    assert proc.returncode == 2 and "not a numeric array of a sane size" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    peak_kb = int(proc.stderr.rsplit("PEAK_KB", 1)[1].split()[0])
    assert peak_kb < 1.5 * 1024 * 1024, f"peak {peak_kb / 1024:.0f} MB"


@pytest.mark.parametrize("content, needle", [
    (b"", "is unreadable"),
    (b"[1, 2]", "it is a JSON list, not an object"),
    (b'{"class_names": "cat"}', "class_names must be two names"),
    (b'{"image_size": "big"}', "image_size must be an integer"),
    (b'{"calibration": {"temperature": -1}}', "calibration temperature must be a positive number"),
    (b'{"threshold": 7}', "threshold must be a number between 0 and 1"),
    (b"\xff\xfe garbage", "is unreadable"),
])
def test_a_damaged_config_json_is_one_clear_message(run_copy, tmp_path, content, needle, stats):
    (run_copy / "config.json").write_bytes(content)
    stats.fault()
    photo = write_image(tmp_path / "cat.jpg", size=(40, 40))
    for backend in BACKENDS:
        code, text = _predict(run_copy, photo, backend)
        stats.input(ok=False)
        assert code == 2 and needle in text and "config.json" in text and "Traceback" not in text, (backend, text)


def test_a_run_killed_while_finishing_is_refused_not_served_mixed(tmp_path, tiny_dataset, stats):
    """Kill -9 between the new check landing and model.keras being replaced: both backends refused it, and so does `use`."""
    import dataclasses

    from catdog.cli import main
    from catdog.errors import RunError
    from catdog.predict import Predictor
    from catdog.training import TrainConfig, train
    from catdog.training import fit as fit_module

    cfg = TrainConfig(data=str(tiny_dataset), model="seed", epochs=1, batch_size=8, image_size=32, val_split=0.25, precision="float32")
    run = train(cfg, runs_dir=tmp_path, run_id="r", verbose=0, stream=io.StringIO(), lock=False, handle_signals=False)
    assert Predictor.load(run.path).predict_arrays(np.zeros((1, 32, 32, 3), np.uint8)).shape == (1,)
    old_model = (run.path / "model.keras").read_bytes()

    class Killed(BaseException):
        pass

    def killed(*args, **kwargs):
        raise Killed()

    # The finish of a second training into the same folder: calibration and check written, then "kill -9".
    original = fit_module.save_model
    fit_module.save_model = killed
    try:
        with pytest.raises(Killed):
            fit_module.finish(run, _model_of(run), _prepared_like(run, tiny_dataset, cfg, dataclasses), log=lambda m: None)
    finally:
        fit_module.save_model = original
    stats.fault()
    assert (run.path / "model.keras").read_bytes() == old_model  # the old network is still there
    for backend in BACKENDS:
        with pytest.raises(RunError, match="is not whole"):
            Predictor.load(run.path, backend=backend)
        stats.input(ok=False)
    err = io.StringIO()
    assert main(["use", str(run.path)], out=io.StringIO(), err=err) == 2 and "is not whole" in err.getvalue()


def _model_of(run):
    from catdog.models import load_keras

    return load_keras(run.path / "model.keras")


def _prepared_like(run, data, cfg, dataclasses):
    from catdog.training import prepare_data, resolve

    return prepare_data(resolve(dataclasses.replace(cfg, calibration_split=0.25)), log=lambda m: None)
