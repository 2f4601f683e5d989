"""The lite0 preset: EfficientNet-Lite0 built from the installed package, its feature cache, and a frozen training."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from tests.fixtures import REPO, make_class_folders

pytestmark = pytest.mark.slow  # builds a 4.7M-parameter network

SAMPLES = REPO / "assets" / "samples"


@pytest.fixture(scope="module")
def lite0_model():
    from catdog.models import build_model

    return build_model("lite0", compile=False)


def _pet_share(logits) -> np.ndarray:
    """The summed ImageNet probability of the cat and dog classes: the check's own NumPy reference, undone from -log."""
    from catdog.models.lite0 import PET_CLASSES
    from catdog.openset import not_pet_logprob

    return np.exp(-not_pet_logprob(logits, PET_CLASSES))


def test_lite0_from_the_package_finds_the_cat_in_a_cat_class_and_the_dog_in_a_dog_class(lite0_model):
    import keras

    from catdog.models.lite0 import CAT_CLASSES, DOG_CLASSES
    from catdog.preprocess import load_array

    logits_model = keras.Model(lite0_model.input, lite0_model.get_layer("imagenet").output)
    cats = sorted(SAMPLES.glob("cat-*.jpg"))
    dogs = sorted(SAMPLES.glob("dog-*.jpg"))
    assert cats and dogs
    logits = np.asarray(logits_model(np.stack([load_array(p, 224) for p in cats + dogs]).astype("float32")))
    top = logits.argmax(axis=1)
    assert sum(t in CAT_CLASSES for t in top[: len(cats)]) >= len(cats) - 1, top  # ImageNet's own top-1
    assert all(t in DOG_CLASSES for t in top[len(cats) :]), top
    pets = np.array(CAT_CLASSES + DOG_CLASSES)
    top_pet = pets[logits[:, pets].argmax(axis=1)]  # among ImageNet's cats and dogs, the likeliest is the right kind
    assert all(t in CAT_CLASSES for t in top_pet[: len(cats)]) and all(t in DOG_CLASSES for t in top_pet[len(cats) :]), top_pet
    assert (_pet_share(logits[len(cats) :]) > 0.5).all()


def test_a_plain_grey_picture_is_no_imagenet_pet(lite0_model):
    import keras

    logits = keras.Model(lite0_model.input, lite0_model.get_layer("imagenet").output)(np.full((1, 224, 224, 3), 128.0, np.float32))
    assert _pet_share(np.asarray(logits))[0] < 0.2


def test_converted_weights_are_cached_by_the_files_sha256_and_a_damaged_cache_is_rebuilt(monkeypatch, tmp_path):
    from catdog import pretrained
    from catdog.models import lite0

    monkeypatch.setenv("CATDOG_CACHE_DIR", str(tmp_path / "cache"))
    weights, sha = lite0.converted_weights()
    cached = lite0.cache_file(sha)
    assert sha == pretrained.WEIGHTS_SHA256 and cached.is_file()
    reads = []
    monkeypatch.setattr(pretrained, "read_state_dict", lambda *a, **k: reads.append(a) or (_ for _ in ()).throw(AssertionError))
    again, _ = lite0.converted_weights()  # from the cache: the .pth is not read
    assert reads == [] and all(np.array_equal(a, b) for a, b in zip(weights["head_conv"], again["head_conv"]))
    monkeypatch.undo()
    monkeypatch.setenv("CATDOG_CACHE_DIR", str(tmp_path / "cache"))
    cached.write_bytes(b"not an npz")
    rebuilt, _ = lite0.converted_weights()
    assert np.array_equal(rebuilt["imagenet"][0], weights["imagenet"][0])
    assert cached.stat().st_size > 1_000_000


def test_a_lite0_model_loads_in_plain_keras_without_catdog(lite0_model, tmp_path):
    import keras

    path = tmp_path / "m.keras"
    lite0_model.save(path)
    again = keras.saving.load_model(path, compile=False)
    x = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(lite0_model(x)), atol=1e-6)
    assert again.get_layer("imagenet").get_weights()[0].shape == (1280, 1000)


def _train(data, runs_dir, run_id, **options):
    from catdog.training import TrainConfig, train

    cfg = TrainConfig(data=str(data), model="lite0", val_split=0.25, **{"epochs": 3, **options})
    log = io.StringIO()
    run = train(cfg, runs_dir=runs_dir, run_id=run_id, verbose=0, stream=log, lock=False, handle_signals=False)
    return run, log.getvalue()


def test_a_frozen_training_streams_epochs_saves_a_whole_model_and_a_second_one_reads_the_feature_cache(tmp_path):
    from catdog.predict import Predictor

    data = make_class_folders(tmp_path / "data", n=24, size=(64, 48))
    run, log = _train(data, tmp_path / "runs", "first")
    assert run.status()["state"] == "finished"
    assert [r["epoch"] for r in run.metrics()] == [1, 2, 3]
    assert all(r["val_accuracy"] is not None for r in run.metrics())
    assert "(0 from the cache" in log
    record = json.loads((run.path / "config.json").read_text())
    assert record["preset"] == "lite0" and record["image_size"] == 224
    assert record["openset"]["parts"] == ["imagenet"]  # cats and dogs: ImageNet's classes say what a pet is
    assert (run.path / "model.keras").is_file() and (run.path / "trained_on.npy").is_file()
    # The saved network is the whole one: a photo through it gives the head's answer on the cached features.
    predictor = Predictor.load(run.path)
    assert predictor.predict_arrays(np.zeros((1, 224, 224, 3), np.uint8)).shape == (1,)

    again, log2 = _train(data, tmp_path / "runs", "second")
    assert again.status()["state"] == "finished"
    n_train = record["n_train"]
    assert f"features of {n_train} train photos" in log2 and f"({n_train} from the cache, 0 computed)" in log2


def test_a_warm_start_on_its_own_photos_says_they_overlap(tmp_path):
    data = make_class_folders(tmp_path / "data", n=24, size=(64, 48))
    first, _ = _train(data, tmp_path / "runs", "first")
    warm, log = _train(data, tmp_path / "runs", "warm", init_from=str(first.path))
    assert "Warning: the starting model already trained on" in log
    record = json.loads((warm.path / "config.json").read_text())
    overlap = record["overlap"]
    assert overlap["train"]["shared"] == overlap["train"]["of"] > 0
    # Too few held-out photos to set a threshold: the starting model's check is kept, and said so (never dropped).
    assert "Open-set check kept from the starting model" in log
    assert record["openset"]["kept_from"] == str(first.path / "model.keras")
    assert (warm.path / "openset.npz").read_bytes() != b"" and record["openset"]["parts"] == ["imagenet"]


def test_resuming_a_lite0_run_says_to_train_again(tmp_path):
    from catdog.errors import RunError
    from catdog.training import resume

    data = make_class_folders(tmp_path / "data", n=24, size=(64, 48))
    run, _ = _train(data, tmp_path / "runs", "r", epochs=1)
    with pytest.raises(RunError, match="keeps no checkpoint.*start a new training on the same folders"):
        resume(run.path, epochs=3, lock=False, handle_signals=False)


def test_two_other_classes_get_the_feature_distance_check(tmp_path):
    from catdog.openset import OpenSet

    data = make_class_folders(tmp_path / "data", n=24, size=(64, 48), names=("glass", "plastic"))
    run, log = _train(data, tmp_path / "runs", "things")
    record = json.loads((run.path / "config.json").read_text())
    assert record["class_names"] == ["glass", "plastic"]
    assert record["openset"]["parts"] == ["distance"]
    check = OpenSet.load(run.path / "openset.npz")
    assert check.pet_classes is None and check.layers == ["features"]


def test_progressive_resizing_is_refused_for_a_frozen_backbone_before_a_run_exists(tmp_path):
    from catdog.errors import DatasetError

    data = make_class_folders(tmp_path / "data", n=4)
    with pytest.raises(DatasetError, match="leave --progressive-size unset"):
        _train(data, tmp_path / "runs", "p", progressive_size=64)
    assert not (tmp_path / "runs" / "p").exists()


def test_a_small_training_is_calibrated_on_out_of_fold_predictions_and_records_its_before(tmp_path):
    data = make_class_folders(tmp_path / "data", n=24, size=(64, 48))
    run, log = _train(data, tmp_path / "runs", "small", epochs=2)
    record = json.loads((run.path / "config.json").read_text())
    assert record["calibration"]["out_of_fold"] == 5
    assert "out-of-fold predictions" in record["calibration"]["method"]
    assert record["calibration"]["fitted_on"] == record["n_train"] + record["n_calibration"]
    # A new head's "before" is the untrained head, on the validation photos that chose nothing (no early stopping).
    assert record["before"]["model"] == "lite0, its head untrained" and record["early_stopping"] == 0


def test_a_lite0_warm_start_keeps_the_presets_epochs_and_no_early_stopping():
    from catdog.training import TrainConfig, resolve

    warm = resolve(TrainConfig(data=str(REPO), model="lite0", init_from=str(REPO / "assets" / "model")))
    assert warm.epochs == 30 and warm.early_stopping == 0
    compact = resolve(TrainConfig(data=str(REPO), model="compact", init_from=None))
    assert compact.early_stopping == 0


def test_data_pair_makes_two_class_folders_from_file_names_with_the_rest_to_test_on(tmp_path, monkeypatch):
    from catdog import sources
    from catdog.cli import main
    from catdog.errors import DatasetError
    from tests.fixtures import write_image

    flat = tmp_path / "flat"
    for kind, n in (("glass", 18), ("metal", 16), ("paper", 3)):
        for i in range(n):
            write_image(flat / f"{kind}_{kind}{i}.jpg", size=(20, 20), seed=i)
    write_image(flat / "glassware.jpg", size=(20, 20))  # not "glass_": not a glass photo
    monkeypatch.setenv("CATDOG_HOME", str(tmp_path / "home"))
    out = io.StringIO()
    assert main(["data", "pair", str(flat), "glass", "metal", "--train-per-class", "10"], out=out, err=io.StringIO()) == 0
    made = tmp_path / "home" / "datasets" / "glass-vs-metal"
    counts = {p.relative_to(made).as_posix(): len(list(p.iterdir())) for p in sorted(made.glob("*/*"))}
    assert counts == {"test/glass": 8, "test/metal": 6, "train/glass": 10, "train/metal": 10}
    assert sources.suggested_dataset() == made.resolve()
    with pytest.raises(DatasetError, match="has 3 photos named paper"):
        sources.pair_by_name(flat, ("glass", "paper"), 10)


def test_random_weights_never_share_the_feature_cache_with_imagenet_weights(lite0_model):
    from catdog.models import build_model
    from catdog.models.transfer import random_weights
    from catdog.training import TrainConfig, resolve
    from catdog.training.frozen import extractor_for

    settings = resolve(TrainConfig(data=str(REPO), model="lite0"))
    with random_weights():
        untrained = build_model("lite0", compile=False)
    keys = {extractor_for(m, settings).key for m in (lite0_model, untrained, untrained)}
    assert len(keys) == 3  # ImageNet's key, and one of its own for each use of random weights
    assert extractor_for(lite0_model, settings).key == extractor_for(build_model("lite0", compile=False), settings).key
