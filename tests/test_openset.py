"""The open-set check ("not a cat or dog"): fitting, saving, the graph's score, and every backend."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from catdog import openset
from tests.fixtures import make_class_folders, write_image


def _gaussian_features(rng, n, shift=0.0, d=(4, 6)):
    """Per layer, two classes of Gaussian features (labels alternate); `shift` moves every point away."""
    labels = np.arange(n) % 2
    feats = [rng.normal(size=(n, k)) + labels[:, None] * 3.0 + shift for k in d]
    return feats, labels


def test_threshold_flags_about_the_target_share_of_held_out_photos_and_far_points():
    rng = np.random.default_rng(0)
    fit_f, fit_y = _gaussian_features(rng, 2000)
    held_f, _ = _gaussian_features(rng, 1000)
    check = openset.fit(fit_f, fit_y, held_f, ["a", "b"], flag_rate=0.05)
    new_f, _ = _gaussian_features(rng, 2000)
    far_f, _ = _gaussian_features(rng, 200, shift=8.0)
    assert 0.02 < check.is_not_pet(check.score(new_f)).mean() < 0.09
    assert check.is_not_pet(check.score(far_f)).mean() > 0.99
    assert check.info["held_out_flagged"] == pytest.approx(0.05, abs=0.01)


def test_too_few_photos_or_a_bad_flag_rate_are_refused_with_the_values():
    rng = np.random.default_rng(1)
    f, y = _gaussian_features(rng, 8)
    with pytest.raises(ValueError, match="at least 20 training"):
        openset.fit(f, y, f, ["a", "b"])
    f, y = _gaussian_features(rng, 100)
    with pytest.raises(ValueError, match="flag_rate must be between 0 and 0.5, got 0.7"):
        openset.fit(f, y, f, ["a", "b"], flag_rate=0.7)


def test_saved_check_gives_the_same_scores_and_a_broken_file_is_one_clear_error(tmp_path):
    rng = np.random.default_rng(2)
    f, y = _gaussian_features(rng, 300)
    check = openset.fit(f, y, f, ["a", "b"])
    model_file = tmp_path / "model.keras"
    check.save(openset.path_for(model_file))
    again = openset.load_for(model_file)
    np.testing.assert_allclose(again.score(f), check.score(f))
    assert again.threshold == check.threshold and again.layers == ["a", "b"]
    openset.path_for(model_file).write_bytes(b"not an npz")
    with pytest.raises(openset.OpenSetError) as info:
        openset.load_for(model_file)
    assert str(openset.path_for(model_file)) in str(info.value) and f"catdog openset fit {tmp_path}" in str(info.value)


def test_exported_keras_copy_keeps_its_check_under_its_own_name(tmp_path):
    assert openset.path_for(tmp_path / "model.keras") == tmp_path / "openset.npz"
    assert openset.path_for(tmp_path / "m.keras") == tmp_path / "m.keras.openset.npz"


@pytest.mark.slow
def test_compact_is_read_once_per_resolution_without_the_augmented_input():
    from catdog.models import build_model

    model = build_model("compact", 64, compile=False)
    assert openset.feature_layer_names(model) == ["stem_relu", "block1_relu", "block2_relu", "block3_relu", "block4_relu"]


def test_the_graph_score_equals_the_numpy_reference():
    import tensorflow as tf

    from catdog.models import build_model

    model = build_model("seed", 32, compile=False)
    rng = np.random.default_rng(3)
    images = rng.integers(0, 255, (60, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(60) % 2
    layers = openset.feature_layer_names(model)
    _, feats = openset.extract(model, images, layers)
    check = openset.fit(feats, labels, [f[:30] for f in feats], layers)
    _, graph_scores = openset.inference_fn(model, check)(tf.constant(images, tf.float32))
    np.testing.assert_allclose(graph_scores.numpy(), check.score(feats), rtol=1e-3, atol=1e-3)


def test_fit_for_model_saves_the_check_and_records_it_in_config_json(run_with_check):
    run_dir, _, _, check = run_with_check
    assert (run_dir / "openset.npz").exists()
    record = json.loads((run_dir / "config.json").read_text())["openset"]
    assert record["threshold"] == pytest.approx(check.threshold, abs=1e-5)
    assert record["fitted_on"] > 0 and "noise" in record["negatives_flagged"]


def test_onnxruntime_and_tensorflow_give_the_same_not_pet_answers(run_with_check, tmp_path):
    from catdog.predict import Predictor

    run_dir, photos, negatives, _ = run_with_check
    files = sorted(photos.rglob("*.jpg"))[::10] + sorted(negatives.glob("*.png"))
    odd = write_image(tmp_path / "odd.png", size=(40, 40), colour=(0, 255, 0), seed=9)
    answers = {}
    for backend in ("onnxruntime", "tensorflow"):
        predictor = Predictor.load(run_dir, backend=backend)
        assert predictor.backend == backend and predictor.openset is not None
        answers[backend] = predictor.predict([*files, odd])
    onnx, tf = answers["onnxruntime"], answers["tensorflow"]
    assert [(r.not_pet, r.label) for r in onnx] == [(r.not_pet, r.label) for r in tf]
    np.testing.assert_allclose([r.openset_score for r in onnx], [r.openset_score for r in tf], rtol=1e-4, atol=1e-3)


def test_predict_json_has_not_pet_for_every_photo(run_with_check, tmp_path, monkeypatch):
    from catdog.cli import main

    run_dir, photos, _, _ = run_with_check
    out = io.StringIO()
    main(["predict", "--json", "--model", str(run_dir), str(next(photos.rglob("*.jpg")))], out=out)
    result = json.loads(out.getvalue().splitlines()[-1])
    assert isinstance(result["not_pet"], bool) and "openset_score" in result


def test_evaluate_reports_the_share_of_non_pets_flagged_and_of_pets_wrongly_flagged(run_with_check):
    from catdog.cli import main

    run_dir, photos, negatives, check = run_with_check
    out = io.StringIO()
    assert main(["evaluate", "--json", "--model", str(run_dir), "--data", str(photos), "--not-pets", str(negatives)], out=out) == 0
    summary = json.loads(out.getvalue())
    assert summary["not_pets"]["n"] == 6 and 0 <= summary["not_pets"]["share"] <= 1
    wrongly = summary["not_pet_wrongly_flagged"]
    assert wrongly["n"] == summary["n"] and wrongly["flagged"] == len(wrongly["files"])


def test_evaluate_not_pets_on_a_model_without_a_check_says_how_to_get_one(tiny_run, tmp_path):
    from catdog.cli import main

    folder = tmp_path / "things"
    write_image(folder / "a.png")
    err = io.StringIO()
    assert main(["evaluate", "--model", str(tiny_run.path), "--not-pets", str(folder)], out=io.StringIO(), err=err) == 2
    assert "no open-set check" in err.getvalue() and "catdog openset fit" in err.getvalue()


def test_a_refitted_check_is_never_served_from_a_stale_onnx_graph(run_with_check, tmp_path):
    import shutil

    from catdog import onnx_runtime

    shared, photos, _, _ = run_with_check
    run_dir = tmp_path / "run"  # refitted here: the session's run_with_check stays as other tests expect it
    shutil.copytree(shared, run_dir)
    model_file = run_dir / "model.keras"
    first = onnx_runtime.ensure_onnx(model_file)
    openset.fit_for_model(run_dir, [str(photos)], flag_rate=0.1, log=lambda m: None)
    assert onnx_runtime.current_onnx(model_file) != first or not first.exists() or first == onnx_runtime.beside_path(model_file)
    second = onnx_runtime.ensure_onnx(model_file)
    record = json.loads(onnx_runtime.record_path(second).read_text())
    assert record["openset_sha256"] == onnx_runtime.file_sha256(openset.path_for(model_file))


@pytest.mark.slow
def test_a_users_training_saves_its_check_and_both_backends_use_it(tmp_path):
    """Every trained model gets the check, from its own photos and the negatives it was given."""
    from catdog.predict import Predictor
    from catdog.training import TrainConfig, train
    from tests.fixtures import quiet

    photos = make_class_folders(tmp_path / "photos", n=40, size=(40, 40))
    negatives = tmp_path / "things"
    for i in range(8):
        write_image(negatives / f"t{i}.png", size=(40, 40), seed=700 + i, colour=(250, 250, 250))
    cfg = TrainConfig(data=str(photos), model="seed", epochs=2, batch_size=8, image_size=32, val_split=0.25,
                      precision="float32", negatives=[str(negatives)])
    log = io.StringIO()
    run = train(cfg, runs_dir=tmp_path / "runs", run_id="with-check", **{**quiet(), "stream": log})
    assert (run.path / "openset.npz").exists(), log.getvalue()
    record = run.config()["openset"]
    assert record["score"].startswith("pet-or-not head") and record["negatives"] == {"things": 8}
    assert "Open-set check" in log.getvalue()
    files = [*sorted(photos.rglob("*.jpg"))[:4], *sorted(negatives.glob("*.png"))[:4]]
    onnx, tf = (Predictor.load(run.path, backend=b).predict(files) for b in ("onnxruntime", "tensorflow"))
    assert [r.not_pet for r in onnx] == [r.not_pet for r in tf]
    np.testing.assert_allclose([r.openset_score for r in onnx], [r.openset_score for r in tf], rtol=1e-4, atol=1e-3)


@pytest.mark.slow
def test_a_training_too_small_for_the_check_says_so_and_saves_none(tmp_path, tiny_dataset):
    from catdog.training import train
    from tests.fixtures import quiet, tiny_config

    log = io.StringIO()
    run = train(tiny_config(tiny_dataset, epochs=1), runs_dir=tmp_path / "runs", **{**quiet(), "stream": log})
    assert run.config()["openset"] is None and not (run.path / "openset.npz").exists()
    assert "No open-set check" in log.getvalue()


def test_a_negatives_folder_without_images_is_refused_before_a_run_folder_exists(tmp_path, tiny_dataset):
    from catdog.errors import DatasetError
    from catdog.training import train
    from tests.fixtures import quiet, tiny_config

    (tmp_path / "empty").mkdir()
    cfg = tiny_config(tiny_dataset, epochs=1)
    cfg.negatives = [str(tmp_path / "empty")]
    with pytest.raises(DatasetError, match="holds no images"):
        train(cfg, runs_dir=tmp_path / "runs", **quiet())
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_check_saved_before_the_head_existed_still_loads_with_its_scores(tmp_path):
    import io as _io

    rng = np.random.default_rng(4)
    f, y = _gaussian_features(rng, 300)
    check = openset.fit(f, y, f, ["a", "b"])
    with np.load(_io.BytesIO(check.to_bytes())) as z:  # the first format: no part_centre / part_scale
        old = {k: z[k] for k in z.files if k not in ("part_centre", "part_scale")}
    old["centre"], old["scale"] = check.centre, check.scale
    model_file = tmp_path / "model.keras"
    np.savez(openset.path_for(model_file), **old)
    again = openset.load_for(model_file)  # raises if it is refused
    raw = ((check.layer_distances(f) - check.centre) / check.scale).mean(axis=1)  # the first format's score
    np.testing.assert_allclose(again.score(f), raw)
    assert again.threshold == check.threshold


def test_an_onnx_export_gives_the_same_not_pet_answers_as_the_predictor(run_with_check, tmp_path):
    import onnxruntime as ort

    from catdog.export import export_model, sidecar_path
    from catdog.predict import Predictor

    run_dir, photos, negatives, _ = run_with_check
    files = sorted(photos.rglob("*.jpg"))[::12] + sorted(negatives.glob("*.png"))
    predictor = Predictor.load(run_dir, backend="tensorflow")
    expected = predictor.predict(files)
    out = export_model(run_dir, "onnx", tmp_path / "m.onnx")
    sidecar = json.loads(sidecar_path(out).read_text())
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    batch = np.stack([predictor.preprocess(f) for f in files]).astype(np.float32)
    p_dog, score = session.run(None, {session.get_inputs()[0].name: batch})  # P(dog) first, as without a check
    score = score.reshape(-1)
    np.testing.assert_allclose(p_dog.reshape(-1), [r.p_dog for r in expected], atol=1e-3)
    assert [bool(s > sidecar["openset"]["threshold"]) for s in score] == [r.not_pet for r in expected]
    np.testing.assert_allclose(score, [r.openset_score for r in expected], rtol=1e-3, atol=1e-3)
