"""Training with a frozen pretrained backbone (`lite0`): features once, then the head in seconds.

    splits = split_photos(settings)                 # the same train / validation / calibration split as every preset
    sets = features_of(splits)                      # each photo's backbone features, from the cache where it has them
    head = fit_head(sets)                           # Keras fit of the head alone, epoch by epoch, into the live curves
    model = assemble(head)                          # the full network: the frozen backbone with the trained head
    calibrate, open-set check, save                 # from the cached features, no photo decoded again

Every epoch's metrics go through the run's usual callbacks (`RunRecorder`,
`StopOnRequest`), so the Train page, the CLI and metrics.jsonl see a frozen
training exactly as any other. While features are computed, progress.json says
phase "features" with the photos done and the time left.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from catdog import data, features, runs
from catdog.errors import CatdogError, DatasetError

HEAD_DROPOUT = 0.2
HEAD_L2 = 1e-4  # with lr 1e-3, cosine, 30 epochs: the recipe measured in benchmarks/lite0_design.py
PROGRESS_EVERY = 10.0  # seconds between the CLI's feature-progress lines
MIN_STEPS = 20
KEEP_CHECK_BELOW = 200  # held-out photos: fewer, and a warm start keeps its starting model's check
# Fewer held-out calibration photos than this: the temperature comes from out-of-fold predictions of every
# training photo (FOLDS heads, each trained without its fold), so 20 photos a class still give a calibrated model.
CROSS_FIT_BELOW = 200
FOLDS = 5  # batches per epoch at least (benchmarks/lite0_design.py: 40 photos, 30 epochs)


class StoppedEarly(Exception):
    """A stop request arrived before the head began to train (no model to save)."""


@dataclass
class FeatureData:
    """The training's photos as backbone features (the frozen counterpart of `PreparedData`)."""

    class_names: list[str]
    kind: str
    folders: list[dict]
    train: features.FeatureSet
    validation: features.FeatureSet
    calibration: features.FeatureSet | None

    def record(self) -> dict:
        """What config.json says about the data (the same record as `PreparedData`'s)."""
        from catdog.training.data_prep import data_record

        return data_record(self)


def fit_frozen(job, request) -> None:
    """`fit` for a preset with a frozen backbone: features, head, then the usual finish."""
    import keras

    from catdog.models.layers import OUTPUT_NAME
    from catdog.training.data_prep import check_readable, folders_record, layouts_kind, split_photos

    run, settings, log = job.run, job.settings, job.log
    keras.utils.set_random_seed(settings.seed)
    layouts = list(job.layouts or [])
    splits = split_photos(settings, layouts, log)
    model = new_frozen_model(settings, job.warm_source, log)
    extractor = extractor_for(model, settings)
    try:
        sets = {name: _extract(run, name, images, extractor, log, request) for name, images in splits.items() if images is not None}
    except StoppedEarly as exc:
        run.write_status("stopped", ended=time.time(), epochs_done=0, error=None, note=str(exc))
        log(f"Run stopped: {exc}")
        return
    for name in ("train", "validation"):
        check_readable(sets[name], name, settings.data_folders())
    prepared = FeatureData(layouts[0].class_names, layouts_kind(layouts), folders_record(layouts),
                           sets["train"], sets["validation"], sets.get("calibration"))
    run.write_config({**run.config(), **prepared.record(), "fused_batch_norm": False})
    head = head_model(model, settings)
    if settings.init_from:
        warn_overlap(run, settings.init_from, prepared, log)
    score_before_features(run, head, prepared, settings, log)  # the starting head: --init-from's, or an untrained one
    start_weights = head.get_layer(OUTPUT_NAME).get_weights()
    stopped = fit_head(job, head, prepared, request)
    copy_head(head, model)
    finish_frozen(run, model, head, prepared, start_weights, settings, extractor, log, state="stopped" if stopped else "finished")


def new_frozen_model(settings, warm_source=None, log=print):
    """The preset's full network (frozen backbone), with the head of `--init-from` when given."""
    from catdog.models import build_model
    from catdog.training.warm_start import copy_source_weights, load_source

    model = build_model(settings.model, settings.image_size, compile=False)
    if settings.init_from:
        copy_source_weights(warm_source or load_source(settings.init_from), model, settings.init_from)
        log(f"Starting from the head of {settings.init_from}")
    return model


def extractor_for(model, settings) -> features.FeatureExtractor:
    """The backbone of `model` up to the preset's feature layer, keyed for the feature cache."""
    import uuid

    layer = settings.spec.frozen_features
    weights = getattr(model, "catdog_weights_sha256", None)
    if weights is None:  # random weights (CATDOG_PRETRAINED=0): a key of its own, so no other training reads its features
        weights = f"random-{uuid.uuid4().hex}"
    return features.FeatureExtractor(model, layer, features.backbone_key(weights, settings.image_size, layer))


def _extract(run: runs.Run, name: str, images: data.ImageSet, extractor, log, request) -> features.FeatureSet:
    start, said = time.time(), [time.time()]

    def progress(done: int, total: int, left: float | None) -> None:
        if time.time() - said[0] >= PROGRESS_EVERY and done < total:  # the CLI's progress: a line every few seconds
            said[0] = time.time()
            eta = f", about {left:.0f}s left" if left is not None else ""
            log(f"  features of {name} photos: {done:,} of {total:,}{eta}")
        if request.is_set():
            raise StoppedEarly(f"stopped while computing features ({done:,} of {total:,} {name} photos done; "
                               "they stay in the cache, so the next training on these photos starts from there)")
        run.write_progress({"phase": "features", "split": name, "done": done, "total": total, "overall": 0.0,
                            "eta_seconds": None if left is None else round(left, 1), "updated": time.time()})

    found = features.extract(images.paths, images.labels, extractor, progress=progress)
    computed = len(found) - found.from_cache
    log(f"  features of {len(found)} {name} photos in {time.time() - start:.1f}s "
        f"({found.from_cache} from the cache, {computed} computed)")
    for path, reason in found.skipped:
        log(f"  skipped {path}: {reason}")
    return found


def head_model(model, settings):
    """The trainable head alone, on the features: dropout (training only) and `p_dog`, with `model`'s head weights."""
    import keras

    from catdog.models.layers import OUTPUT_NAME
    from catdog.training.recipe import compile_for_training

    layer = model.get_layer(OUTPUT_NAME)
    inputs = keras.Input(shape=(int(layer.kernel.shape[0]),), name="features")
    x = keras.layers.Dropout(HEAD_DROPOUT, name="dropout")(inputs)
    dense = keras.layers.Dense(1, activation="sigmoid", kernel_regularizer=keras.regularizers.l2(HEAD_L2), name=OUTPUT_NAME)
    head = keras.Model(inputs, dense(x), name=f"{model.name}_head")
    head.get_layer(OUTPUT_NAME).set_weights(layer.get_weights())
    compile_for_training(head, settings.learning_rate, settings.label_smoothing, settings.ema)
    return head


def copy_head(head, model) -> None:
    from catdog.models.layers import OUTPUT_NAME

    model.get_layer(OUTPUT_NAME).set_weights(head.get_layer(OUTPUT_NAME).get_weights())


def head_probs(head, feats: np.ndarray) -> np.ndarray:
    """Raw P(class 1) of the head for features, as float64."""
    if not len(feats):
        return np.zeros(0)
    return np.asarray(head.predict(np.asarray(feats, np.float32), batch_size=1024, verbose=0), np.float64).reshape(-1)


def warn_overlap(run: runs.Run, init_from: str, prepared: FeatureData, log=print) -> dict | None:
    """Say so (and record `overlap` in config.json) when the starting model trained on some of these photos."""
    from pathlib import Path

    from catdog import provenance

    start = provenance.load(Path(init_from).parent)
    if start is None:
        return None
    record = {}
    for name in ("train", "validation"):
        found = getattr(prepared, name)
        record[name] = {"shared": provenance.overlap(provenance.fingerprints(found.digests), start), "of": len(found)}
    run.write_config({**run.config(), "overlap": record})
    shared_val, shared_train = record["validation"]["shared"], record["train"]["shared"]
    if shared_val or shared_train:
        log(f"Warning: the starting model already trained on {shared_train:,} of these {len(prepared.train):,} training photos "
            f"and {shared_val:,} of the {len(prepared.validation):,} validation photos: 'before -> after' cannot show a gain "
            "on photos it has seen; train on photos of your own")
    return record


def score_before_features(run: runs.Run, head, prepared: FeatureData, settings, log=print) -> dict:
    """The starting head's accuracy and loss on the validation photos (config.json's `before`), from their features.

    Recorded for every frozen training, a new one too (its untrained head is the "before"): with no
    early stopping, these photos pick nothing, so "before -> after" on them is a fair measure.
    """
    v = prepared.validation
    scores = head.evaluate(v.features, v.labels.astype(np.float32), batch_size=1024, verbose=0, return_dict=True)
    before = {"val_accuracy": round(float(scores["accuracy"]), 6), "val_loss": round(float(scores["loss"]), 6),
              "n": len(v), "model": settings.init_from or f"{settings.model}, its head untrained"}
    run.write_config({**run.config(), "before": before})
    start = "the starting model" if settings.init_from else f"{settings.model} with an untrained head"
    log(f"Before training: {start} scores {before['val_accuracy']:.1%} (loss {before['val_loss']:.4f}) "
        f"on the {before['n']:,} validation photos")
    return before


def fit_head(job, head, prepared: FeatureData, request) -> bool:
    """Keras `fit` of the head with the run's callbacks; returns whether a stop ended it.

    An epoch is at least `MIN_STEPS` batches (the photos drawn again in a new
    order), so 40 photos train as well as 4,000 do in the same epochs.
    """
    from catdog.callbacks import StopOnRequest
    from catdog.training.steps import make_callbacks

    settings, log = job.settings, job.log
    t = prepared.train
    steps = steps_per_epoch(len(t), settings.batch_size)
    callbacks = [c for c in make_callbacks(job, steps, [], None, request) if type(c).__name__ != "AtomicCheckpoint"]
    stopper = next(c for c in callbacks if isinstance(c, StopOnRequest))
    job.run.write_status("running", pid=os.getpid())
    log(f"Training the {settings.model} head ({head.count_params():,} parameters on {t.features.shape[1]} "
        f"frozen features) for {settings.epochs} epochs of {steps} batches of {settings.batch_size}")
    train_head(head, t.features, t.labels, settings, callbacks, (prepared.validation.features, prepared.validation.labels))
    return stopper.stopped


def steps_per_epoch(n: int, batch_size: int) -> int:
    return max(MIN_STEPS, data.steps_per_epoch(n, batch_size))


def train_head(head, features: np.ndarray, labels: np.ndarray, settings, callbacks=(), validation=None) -> None:
    """The head's recipe: shuffled batches drawn again each epoch, the run's epochs (and its callbacks)."""
    import keras
    import tensorflow as tf

    from catdog.training.recipe import cosine_learning_rate

    callbacks = list(callbacks)
    if settings.lr_schedule == "cosine" and not any(isinstance(c, keras.callbacks.LearningRateScheduler) for c in callbacks):
        callbacks.insert(0, keras.callbacks.LearningRateScheduler(
            lambda epoch, lr: cosine_learning_rate(epoch, settings.epochs, settings.learning_rate)))
    ds = (tf.data.Dataset.from_tensor_slices((features, labels.astype(np.float32)))
          .shuffle(len(features), seed=settings.seed, reshuffle_each_iteration=True).repeat().batch(settings.batch_size))
    val = None if validation is None else (validation[0], validation[1].astype(np.float32))
    head.fit(ds, epochs=settings.epochs, steps_per_epoch=steps_per_epoch(len(features), settings.batch_size), validation_data=val,
             callbacks=callbacks, verbose=0, shuffle=False)  # RunRecorder logs one line per epoch; the dataset shuffles


def out_of_fold_probs(model, start_weights, settings, features: np.ndarray, labels: np.ndarray, folds: int = FOLDS) -> np.ndarray:
    """Each photo's raw P(class 1) from a head trained, with the run's recipe, on the other folds only."""
    from catdog.models.layers import OUTPUT_NAME

    rng = np.random.default_rng(settings.seed + 2)
    fold_of = np.empty(len(labels), int)
    for label in np.unique(labels):  # stratified
        idx = rng.permutation(np.where(labels == label)[0])
        fold_of[idx] = np.arange(len(idx)) % folds
    probs = np.empty(len(labels))
    for k in range(folds):
        fold = head_model(model, settings)
        fold.get_layer(OUTPUT_NAME).set_weights(start_weights)
        train_head(fold, features[fold_of != k], labels[fold_of != k], settings)
        probs[fold_of == k] = head_probs(fold, features[fold_of == k])
    return probs


def finish_frozen(run: runs.Run, model, head, prepared: FeatureData, start_weights, settings, extractor, log=print,
                  state: str = "finished") -> None:
    """Calibrate and fit the open-set check from the features, then save the full model (as `finish` does)."""
    from catdog.calibration import calibrate_probs
    from catdog.training.steps import begin_finish, end_finish, save_model
    from catdog.training.warm_start import source_temperature

    begin_finish(run)
    start, fitted = source_temperature(run.config().get("init_from"))
    cal, val = prepared.calibration, prepared.validation
    validation = (val.labels, head_probs(head, val.features))
    if cal is not None and len(cal) and (len(cal) >= CROSS_FIT_BELOW or fitted):
        # Enough held-out photos; or a warm start from a calibrated head, whose temperature a few photos only nudge.
        record = calibrate_probs(cal.labels, head_probs(head, cal.features), validation, log, start, fitted)
    else:  # a new head with too few held out: every training photo, each predicted by a head that did not train on it
        feats = np.concatenate([prepared.train.features, *([cal.features] if cal is not None else [])])
        labels = np.concatenate([prepared.train.labels, *([cal.labels] if cal is not None else [])])
        oof = out_of_fold_probs(model, start_weights, settings, feats, labels)
        record = calibrate_probs(labels, oof, validation, log, start, fitted,
                                 what=f"training photos' out-of-fold predictions ({FOLDS} heads, each trained without its fifth)")
        record["out_of_fold"] = FOLDS
    run.write_config({**run.config(), "calibration": record})
    fit_openset_frozen(run, model, prepared, extractor, log)
    from catdog import provenance

    provenance.save(run.path, provenance.fingerprints(
        [*prepared.train.digests, *(prepared.calibration.digests if prepared.calibration is not None else [])]))
    save_model(run, model, log)
    end_finish(run)
    rows = run.metrics()
    run.write_status(state, ended=time.time(), epochs_done=len(rows), error=None, traceback=None)
    log(f"Run {state} after {len(rows)} epoch(s); model saved to {run.model_path}")


def fit_openset_frozen(run: runs.Run, model, prepared: FeatureData, extractor, log=print) -> None:
    """The "not a cat or dog" check from the cached features (`catdog.openset.fit_on_features`); openset.npz and its record."""
    from catdog import openset

    config = run.config()
    held, source = prepared.calibration, "held-out training photos (the run's calibration photos)"
    if held is None or len(held) < openset.MIN_FIT_PHOTOS // 2:
        held, source = prepared.validation, "the run's validation photos (no calibration hold-out)"
    negatives = {}
    if config.get("negatives"):
        for folder in config["negatives"]:
            files = data.image_files(folder)
            negatives[os.path.basename(os.path.normpath(folder))] = features.extract(files, [0] * len(files), extractor).features
    check = kept_check(config, prepared, held, negatives, log)
    if check is None:
        try:
            check = openset.fit_on_features(model, prepared.train.features, prepared.train.labels, held.features,
                                            prepared.class_names, negatives, held_out_source=source,
                                            seed=int(config.get("seed") or 0), log=log)
        except ValueError as exc:
            log(f"No open-set check: {exc}; the model will never say 'not a cat or dog'")
    openset.path_for(run.model_path).unlink(missing_ok=True)  # a check of an earlier model never outlives it
    if check is not None:
        check.save(openset.path_for(run.model_path))
    run.write_config({**run.config(), "openset": check.summary() if check is not None else None})


def kept_check(config: dict, prepared: FeatureData, held, negatives: dict, log=print):
    """A warm start's check: the starting model's, kept when this run holds out too few photos to set a threshold well.

    A threshold at 1% of a few dozen held-out photos is a guess, while the starting model's was set on
    hundreds: for the same classes and no new negatives, its check (the ImageNet part depends on the
    backbone only) is kept, and said so. Otherwise (None) the check is refitted on this run's photos.
    """
    from catdog import openset
    from catdog.model_files import resolve_model

    source = config.get("init_from")
    if not source or negatives or held is None or len(held) >= KEEP_CHECK_BELOW:
        return None
    try:
        source_file, source_settings = resolve_model(source)
        check = openset.load_for(source_file)
    except CatdogError:
        return None  # a starting model gone or damaged since: refit
    if check is None or list(source_settings.get("class_names") or []) != list(prepared.class_names):
        return None
    log(f"Open-set check kept from the starting model ({', '.join(check.part_names)}; its threshold was set on "
        f"{check.info.get('threshold_from', '?')} held-out photos, this run holds out {len(held)})")
    check.info = {**check.info, "kept_from": str(source_file)}
    return check


def refuse_unsupported(settings) -> None:
    """Settings a frozen backbone cannot honour, refused before a run folder exists."""
    if settings.progressive_size:
        raise DatasetError(f"preset {settings.model!r} trains only its head on fixed-size features; leave --progressive-size unset")
