"""Train page: choose settings, start a background training, watch it live.

The training runs as a child process (`catdog.jobs`), so reruns, page switches
and closed tabs never touch it. This page only reads the run folder.
"""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from catdog import config, jobs, sources
from catdog.compare import before_after_text
from catdog.config import WARM_START_EPOCHS, WARM_START_PATIENCE
from catdog.data import discover_all, image_files, split_sizes
from catdog.errors import CatdogError
from catdog.health import near_chance
from catdog.models import PRESETS, get_preset
from catdog.plots import before_point, curves_figure
from catdog.runs import Run
from catdog.training import (
    BOUNDS,
    TrainConfig,
    default_epochs,
    default_patience,
    refuse_overlaps,
    warm_start_fits,
    warm_start_learning_rate,
)
from pages._nav import use_app_navigation
from pages._text import code_span, plain
from pages._ui import STATE_ICONS, default_dataset, format_duration, report_ui, settings_text, use_model_ui

POLL_SECONDS = 1.5
METRIC_WIDTH = 140  # px: six fit the wide layout's row; two a line on a phone
WATCH_KEY = "train_run"
VAL_SPLIT_SLIDER = (0.05, 0.4, 0.2, 0.05)  # min, max, default (the CLI's), step


@st.cache_data(ttl=600, max_entries=16, show_spinner=False)
def dataset_summary(folders: tuple[str, ...], signature: tuple = ()) -> tuple[str | None, dict]:
    """(error, facts) for the training folders together; cached because big folders take a moment to list,
    and keyed by `signature` (`sources.folder_signature`) so a photo added or removed shows at once."""
    try:
        layouts = discover_all([sources.resolve_local_folder(f) for f in folders])  # the server's one path rule
        refuse_overlaps(layouts)  # a folder twice, or one inside another: photos in two splits
    except (CatdogError, OSError) as exc:
        return str(exc), {}
    own_val = [len(layout.validation) for layout in layouts if layout.validation is not None]
    classes = list(layouts[0].class_names)
    facts = {
        "kind": " + ".join(layout.kind for layout in layouts),
        "classes": classes,
        "train": sum(len(layout.train) for layout in layouts),
        "train_counts": [sum(layout.train.counts(classes)[name] for layout in layouts) for name in classes],
        "validation": sum(own_val) if own_val else None,
        "folders": len(layouts),
    }
    return None, facts


def _signature(folders: list[str]) -> tuple:
    """`sources.folder_signature` of the folders the path rule allows (nothing is listed for one it refuses)."""
    try:
        return sources.folder_signature([sources.resolve_local_folder(f) for f in folders])
    except (CatdogError, OSError):
        return ()


def dataset_ui(disabled: bool) -> tuple[list[str], dict | None]:
    """The dataset folder inputs and a one-line report on what is in them."""
    if "train_data" not in st.session_state:
        st.session_state["train_data"] = default_dataset()
    folder = st.text_input(
        "Dataset folder", key="train_data", disabled=disabled, placeholder="/path/to/photos (cats/ + dogs/, or train/ + test/)",
        help="A folder on this machine: cats/ and dogs/ folders, Kaggle's train/ + test/ layout, or cat.N.jpg files.",
    ).strip()
    more = st.text_area(
        "More training folders (optional, one per line)", key="train_data_more", disabled=disabled, height=68,
        placeholder="/path/to/more/photos", help="Their training photos are pooled with the first folder's. Same classes in every folder.",
    )
    folders = [f for f in [folder, *(line.strip() for line in more.splitlines())] if f]
    if not folders:
        st.caption("Enter the folder that holds your photos.")
        return folders, None
    error, facts = dataset_summary(tuple(folders), _signature(folders))
    if error:
        st.error(plain(error), icon=":material/folder_off:")
        return folders, None
    val = f"{facts['validation']:,} validation images" if facts["validation"] is not None else "no validation folder"
    where = f"{facts['folders']} folders · " if facts["folders"] > 1 else ""
    classes = ", ".join(code_span(c) for c in facts["classes"])  # folder names: shown as they are
    st.caption(f":green[:material/check_circle:] {where}{facts['kind']} layout · classes {classes} · "
               f"{facts['train']:,} training images · {val}")
    return folders, facts


@st.cache_data(ttl=30, show_spinner=False)
def negatives_summary(folders: tuple[str, ...]) -> tuple[str | None, list[str], int]:
    """(error, resolved folders, photo count) of the 'no cat or dog' folders, under the server's path rule."""
    try:
        resolved = [str(sources.resolve_local_folder(f)) for f in folders]
        return None, resolved, sum(len(image_files(f)) for f in resolved)
    except (CatdogError, OSError) as exc:
        return str(exc), [], 0


def negatives_ui(disabled: bool) -> list[str] | None:
    """Optional folders of photos with no cat or dog for the 'not a cat or dog' check; None while one is refused."""
    text = st.text_area(
        "Photos with no cat or dog (optional, one folder per line)", key="train_negatives", disabled=disabled, height=68,
        placeholder="/path/to/other/photos",
        help="Clothes, rooms, people, food... The 'not a cat or dog' check learns from them. Without them it still works "
        "(it measures how unlike the training photos a picture is).",
    )
    folders = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not folders:
        return []
    error, resolved, count = negatives_summary(folders)
    if error:
        st.error(plain(error), icon=":material/folder_off:")
        return None
    st.caption(f":green[:material/check_circle:] {count:,} photos with no cat or dog for the 'not a cat or dog' check")
    return resolved


def settings_ui(facts: dict | None, disabled: bool) -> dict:
    """Preset and hyperparameters; returns TrainConfig keyword arguments."""
    names = list(PRESETS)
    default = names.index(config.DEFAULT_PRESET) if config.DEFAULT_PRESET in names else 0
    c1, c2, c3, c4 = st.columns(4)
    preset = c1.selectbox("Model preset", names, index=default, disabled=disabled, key="train_preset")
    spec = get_preset(preset)
    # Keys include the preset so switching presets brings back that preset's defaults.
    size = c4.number_input(
        "Image size (px)", *BOUNDS["image_size"], spec.image_size, step=16, disabled=disabled, key=f"train_size_{preset}"
    )
    batch = c3.number_input("Batch size", *BOUNDS["batch_size"], spec.batch_size, disabled=disabled, key=f"train_batch_{preset}")
    warm_key, fits = warm_start_key(preset, int(size), facts)
    warm_on = fits and st.session_state.get(warm_key, True)
    # A warm start of a whole network has its own (shorter) default; the key keeps each default apart.
    epochs = c2.number_input("Epochs", *BOUNDS["epochs"], default_epochs(preset, warm_on), disabled=disabled,
                             key=epochs_key(preset, warm_on),
                             help=f"A warm start defaults to {WARM_START_EPOCHS} epochs and stops early when validation stops improving; "
                             "a frozen backbone (lite0) trains only its head, in seconds, for the preset's epochs.")
    st.caption(f"**{preset}**: {spec.description}")
    warm = warm_start_ui(preset, int(size), facts, disabled)
    c1, c2, c3 = st.columns(3)
    lr = c1.number_input(
        "Learning rate",
        *BOUNDS["learning_rate"],
        float(warm_start_learning_rate(preset, warm)),
        step=1e-4,
        format="%.5f",
        disabled=disabled,
        key=f"train_lr_{preset}_{warm}",
        help="A warm start fine-tunes at a tenth of the preset's rate (measured: docs/recipe.md, Warm start on a new collection).",
    )
    split = validation_ui(c2, facts, disabled)
    if facts and facts.get("train_counts"):
        c2.caption(split_text(*split_sizes(facts["train_counts"], split, CALIBRATION_SPLIT), own_validation=facts.get("validation")))
    early = c3.toggle(
        "Early stopping",
        value=default_patience(preset, warm) > 0,  # a warm start of a whole network: a few hundred photos stop improving soon
        disabled=disabled,
        key=f"train_early_{preset}_{warm}",
        help="Stop when validation loss has not improved for this many epochs, and keep the best weights.",
    )
    patience = c3.number_input(
        "Patience (epochs)", 1, 100, WARM_START_PATIENCE, disabled=disabled or not early, key="train_patience",
        label_visibility="collapsed",
    )
    return {
        "model": preset,
        "epochs": int(epochs),
        "batch_size": int(batch),
        "image_size": int(size),
        "learning_rate": float(lr),
        "val_split": split,
        "early_stopping": int(patience) if early else 0,  # 0: off, also for a warm start
        "init_from": "bundled" if warm else None,
    }


def epochs_key(preset: str, warm: bool) -> str:
    return f"train_epochs_{preset}_warm" if warm else f"train_epochs_{preset}"


def warm_start_key(preset: str, size: int, facts: dict | None) -> tuple[str, bool]:
    """(the warm-start toggle's key, whether the bundled model fits this training)."""
    fits = warm_start_fits(preset, size, (facts or {}).get("classes", []))
    return f"train_warm_{preset}_{size}_{fits}", fits


@st.cache_data(ttl=300, show_spinner="Comparing your photos with the bundled model's…")
def bundled_overlap(folders: tuple[str, ...], bundle: str) -> tuple[int, int] | None:
    """(photos the bundled model in `bundle` trained on, photos read) of the training folders; None when it cannot tell."""
    from catdog.provenance import shared_with

    try:
        layouts = discover_all([sources.resolve_local_folder(f) for f in folders])
    except (CatdogError, OSError):
        return None
    return shared_with(bundle, [p for layout in layouts for p in layout.train.paths])


def overlap_warning_ui(folders: list[str]) -> None:
    """Say so before Start when the bundled model already trained on these photos (its before -> after would show nothing)."""
    from catdog.model_files import bundled_model_dir

    bundle = bundled_model_dir()
    found = bundled_overlap(tuple(folders), str(bundle)) if bundle is not None else None
    if found and found[0]:
        shared, n = found
        st.warning(plain(f"The bundled model already trained on {shared:,} of these {n:,} photos, so 'before → after' cannot "
                         "show what training adds: it scores photos it has seen. Train on photos of your own, or turn the "
                         "warm start off."), icon=":material/warning:")


def warm_start_ui(preset: str, size: int, facts: dict | None, disabled: bool) -> bool:
    """The "Start from the bundled model" toggle: on by default when the bundled model fits."""
    key, fits = warm_start_key(preset, size, facts)
    on = st.toggle(
        "Start from the bundled model",
        value=fits,
        disabled=disabled or not fits,
        key=key,
        help="Begin with the weights of the model catdog ships (trained on 15,000 cat and dog photos), so a few hundred "
        "photos and a few epochs give a good model. Needs the same preset and image size, and two classes.",
    )
    if not fits and facts is None:  # the dataset box said what is wrong; no second, unrelated reason here
        st.caption("Warm start is decided once the dataset folder above can be read.")
    elif not fits:
        st.caption("Warm start needs the bundled model's preset, image size and classes (cat, dog); this training starts from scratch.")
    return bool(on and fits)


def validation_ui(col, facts: dict | None, disabled: bool) -> float | None:
    """The validation split, or None to use the dataset's own validation folder."""
    own_val = bool(facts and facts.get("validation"))
    hold_out = col.toggle(
        "Split off validation images",
        value=not own_val,
        disabled=disabled or not own_val,
        key=f"train_hold_out_{own_val}",
        help="Off: validate on the dataset's own validation/test folder.",
    )
    low, high, default, step = VAL_SPLIT_SLIDER
    split = col.slider(
        "Validation split", low, high, default, step, disabled=disabled or not hold_out, key="train_split", label_visibility="collapsed"
    )
    if not hold_out:
        col.caption(f"Validating on the dataset's {facts['validation']:,} validation images.")
    return float(split) if hold_out else None


CALIBRATION_SPLIT = TrainConfig.__dataclass_fields__["calibration_split"].default


def split_text(n_train: int, n_validation: int, n_calibration: int, own_validation: int | None = None) -> str:
    """'216 to train · 60 to validate · 24 to calibrate' (the dataset's own validation photos when none are split off)."""
    n_validation = n_validation or own_validation or 0
    parts = [f"{n_train:,} to train", f"{n_validation:,} to validate"]
    if n_calibration:
        parts.append(f"{n_calibration:,} to calibrate")
    return " · ".join(parts)


def start(folders: list[str], settings: dict) -> None:
    """Launch the training and remember it in this session."""
    try:
        resolved = [str(sources.resolve_local_folder(f)) for f in folders]
        run = jobs.start_training(TrainConfig(data=resolved[0] if len(resolved) == 1 else resolved, **settings))
    except (CatdogError, ValueError) as exc:
        st.error(f"Could not start: {plain(exc)}")
        return
    st.session_state[WATCH_KEY] = str(run.path)
    st.rerun()


def watched_run() -> Run | None:
    """The machine's running job, else the run this session started last."""
    active = jobs.active_run()
    if active is not None:
        st.session_state[WATCH_KEY] = str(active.path)
        return active
    path = st.session_state.get(WATCH_KEY)
    return Run(Path(path)) if path and Path(path).is_dir() else None


def eta_now(progress: dict, now: float) -> float | None:
    """progress.json's time left, less the time since it was written (writes pause during validation and saving)."""
    eta, updated = progress.get("eta_seconds"), progress.get("updated")
    if not isinstance(eta, (int, float)):
        return None
    since = now - updated if isinstance(updated, (int, float)) else 0.0
    return max(1.0, eta - max(0.0, since)) if eta > 0 else 0.0


def progress_ui(run: Run, status: jobs.JobStatus) -> None:
    """One progress bar for the whole run, with the ETA, and the Stop button beside it."""
    bar, button = st.columns([5, 1], vertical_alignment="bottom")
    prog = run.progress()
    if prog.get("phase") == "features":  # written while the run is still "queued": its epochs have not begun
        bar.progress(*features_progress(prog, time.time()))
    elif status.state in ("starting", "queued") or not prog:
        bar.progress(0.0, text="Starting: loading TensorFlow and decoding the images…")
    else:
        bar.progress(*epochs_progress(prog, time.time()))
    stopping = run.stop_requested()
    label = "Stopping…" if stopping else "Stop"
    if button.button(
        label,
        icon=":material/stop:",
        disabled=stopping,
        key="train_stop",
        width="stretch",
        help="End after the current batch and keep the model trained so far.",
    ):
        jobs.stop_training(run)
        st.toast("Stop requested: the model so far will be saved.")


def epochs_progress(prog: dict, now: float) -> tuple[float, str]:
    """(fraction, text) of the epochs: where the run is and the time left; once every epoch has run,
    what it still does (calibrating, saving) instead of a percentage that reads as done."""
    batches = max(1, int(prog.get("batches") or 1))
    batch = min(int(prog.get("batch") or 0), batches)
    epochs = max(1, int(prog.get("epochs") or 1))
    epoch = int(prog.get("epoch") or 1)
    overall = prog.get("overall")
    if not isinstance(overall, (int, float)):  # progress.json from an older catdog
        overall = (epoch - 1 + batch / batches) / epochs
    overall = min(1.0, max(0.0, float(overall)))
    eta = eta_now(prog, now)
    if prog.get("phase") == "finishing":
        took = f" (about {format_duration(eta)})" if eta is not None and eta > 1.0 else ""  # 1.0: the estimate has passed
        return 1.0, f"Training done after epoch {epoch} · now calibrating the confidence and saving the model{took}"
    phase = {"validate": " · validating", "epoch_end": " · epoch done"}.get(prog.get("phase"), "")
    left = f"about {format_duration(eta)} left" if eta is not None else "estimating the time left…"
    return overall, f"Epoch {epoch}/{epochs} · batch {batch}/{batches}{phase} · {overall:.0%} of the epochs · {left}"


FEATURE_SPLITS = {"train": "training", "training": "training", "validation": "validation", "calibration": "calibration"}


def features_progress(prog: dict, now: float) -> tuple[float, str]:
    """(fraction, text) of a frozen backbone's first step: the pretrained network reads each photo once."""
    total = max(1, int(prog.get("total") or 1))
    done = min(int(prog.get("done") or 0), total)
    eta = eta_now(prog, now)
    left = f"about {format_duration(eta)} left" if eta is not None else "estimating the time left…"
    split = plain(FEATURE_SPLITS.get(str(prog.get("split")), str(prog.get("split") or "training")))
    text = (f"Preparing the {split} photos: the pretrained network reads each one once ({done:,} of {total:,}) · {left}. "
            "The epochs follow; a next training on the same photos skips this step.")
    return done / total, text


def metrics_ui(rows: list[dict], before: dict | None = None) -> None:
    """The latest epoch's metrics, with the change since the epoch before (and the starting model's)."""
    last, prev = rows[-1], (rows[-2] if len(rows) > 1 else {})
    # One wrapping row of short labels: all six across on a desktop, two a line on a phone (not one per row).
    row = st.container(horizontal=True, gap="small")
    row.metric("Epoch", f"{last['epoch']}", help="Epochs finished so far", width=METRIC_WIDTH)
    start = before_point(before)
    if start is not None:
        row.metric("Before training", f"{start:.1%}", width=METRIC_WIDTH,
                   help="Validation accuracy of the starting model, on the same validation photos, before the first epoch")
    for key, label in zip(("accuracy", "val_accuracy", "loss", "val_loss"), ("Train accuracy", "Val accuracy", "Train loss", "Val loss")):
        value, before = last.get(key), prev.get(key)
        if value is None:
            row.metric(label, "–", width=METRIC_WIDTH)
            continue
        is_acc = "accuracy" in key
        change = None if before is None else value - before
        # No arrow for a change that rounds to zero (a green "↑ +0.0%" reads as progress).
        if change is not None and abs(change) < 0.0005:
            change = None
        delta = None if change is None else (f"{change:+.1%}" if is_acc else f"{change:+.3f}")
        row.metric(label, f"{value:.1%}" if is_acc else f"{value:.3f}", delta, delta_color="normal" if is_acc else "inverse",
                   width=METRIC_WIDTH)


def chance_warning_ui(run: Run, rows: list[dict]) -> None:
    """Say so when validation accuracy sits near chance, and what to do about it."""
    cfg = run.config()
    classes = cfg.get("class_names") or ["cat", "dog"]
    if not near_chance(rows, len(classes), n_validation=cfg.get("n_validation")):
        return
    latest = [r["val_accuracy"] for r in rows if isinstance(r.get("val_accuracy"), (int, float))][-1]
    advice = "more photos or more epochs" if cfg.get("init_from") else "**Start from the bundled model**, more photos, or more epochs"
    st.warning(
        f"Validation accuracy is still near chance (latest {latest:.1%} after {len(rows)} epochs, chance is {1 / len(classes):.0%}): "
        f"the model is not learning to tell the classes apart yet. Try {advice}.",
        icon=":material/warning:",
    )


def curves_ui(run: Run, rows: list[dict], before: dict | None = None) -> None:
    """Accuracy and loss per epoch; a warm start's starting point at epoch 0, labelled "before training"."""
    left, right = st.columns(2)
    left.plotly_chart(curves_figure(rows, "accuracy", "Accuracy", before=before), key=f"train_acc_{run.id}")
    right.plotly_chart(curves_figure(rows, "loss", "Loss", before=before), key=f"train_loss_{run.id}")


def resume_ui(run: Run) -> None:
    """The Resume button (with the total epochs) for a stopped, failed or killed run with a checkpoint."""
    if not jobs.resumable(run):
        return
    done = len([r for r in run.metrics() if not r.get("partial")])
    planned = int(run.config().get("epochs") or done + 1)
    c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
    epochs = c1.number_input(
        "Total epochs",
        *BOUNDS["epochs"],
        min(max(planned, done + 1), BOUNDS["epochs"][1]),
        key=f"resume_epochs_{run.id}",
        help="Resume trains from the last checkpoint up to this many epochs in all.",
    )
    if c2.button(
        "Resume",
        type="primary",
        icon=":material/play_arrow:",
        key=f"resume_{run.id}",
        help="Continue from the last checkpoint with this run's own settings.",
    ):
        try:
            jobs.start_resume(run, epochs=int(epochs))
        except (CatdogError, ValueError) as exc:
            st.error(f"Could not resume: {plain(exc)}")
            return
        st.session_state[WATCH_KEY] = str(run.path)
        st.rerun(scope="app")


def outcome_ui(run: Run, status: jobs.JobStatus) -> None:
    """What a finished, stopped or failed run leaves: plots, downloads, the model."""
    if status.state == "failed":
        st.error(f"Training failed: {plain(status.error or 'no reason recorded')}", icon=":material/error:")
        resume_ui(run)
        if status.log_tail:
            with st.expander("Last lines of the training log", expanded=True):
                st.code(status.log_tail, language="text")
        return
    done = len(run.metrics())
    if status.state == "stopped":
        st.warning(f"Stopped on request after {done} epoch(s). The model trained so far was saved.", icon=":material/stop_circle:")
        resume_ui(run)
    else:
        st.success(f"Finished {done} epoch(s) in {format_duration(run.duration())}.", icon=":material/check_circle:")
    gain = before_after_text(run)
    if gain:
        st.markdown(f"**Validation accuracy:** {gain}")
    calibration_ui(run.config())
    plots = [(name, run.path / f"{name}.png") for name in ("accuracy", "loss") if (run.path / f"{name}.png").exists()]
    if plots:
        with st.expander("The notebook's plots (PNG) and downloads", icon=":material/image:"):
            cols = st.columns(2)
            for col, (name, png) in zip(cols, plots):
                col.image(str(png), caption=f"{name} (the notebook's plot)")
                col.download_button(f"Download {name}.png", png.read_bytes(), f"{run.id}-{name}.png", "image/png",
                                    key=f"dl_{name}_{run.id}")
    use_model_ui(run, key="use")
    report_ui(run, key="train_report")


def calibration_ui(cfg: dict) -> None:
    """How the run's confidence was calibrated, in words (config.json's calibration.method)."""
    cal = cfg.get("calibration") if isinstance(cfg.get("calibration"), dict) else {}
    if cal.get("method") and isinstance(cal.get("temperature"), (int, float)):
        st.caption(f":material/tune: Confidence calibration: {plain(cal['method'])} · temperature {cal['temperature']:.3g}")


def run_caption(run: Run) -> str:
    """What the run trains on, with which settings, so a second viewer knows what they watch."""
    cfg = run.config()
    if not cfg:
        return "The training process is starting; its settings appear here in a moment."
    text = plain(f"{cfg.get('model', '?')} · {settings_text(cfg)} · {cfg.get('epochs', '?')} epochs")  # config.json's words
    if cfg.get("data"):
        text += f" · data {code_span(cfg['data'])}"
    if cfg.get("n_train"):
        text += f" ({split_text(cfg['n_train'], cfg.get('n_validation') or 0, cfg.get('n_calibration') or 0)})"
    return text


def monitor_ui(run_path: str, live: bool) -> None:
    """The watched run: progress, metrics, curves; redrawn on a timer while it trains."""

    @st.fragment(run_every=POLL_SECONDS if live else None)
    def monitor() -> None:
        run = Run(Path(run_path))
        status = jobs.job_status(run)
        state = "starting" if status.state == "queued" else status.state  # queued only means the process is starting
        st.subheader(f"{STATE_ICONS.get(state, '')} Run {code_span(run.id)} · {state}")
        st.caption(run_caption(run))
        if status.active:
            progress_ui(run, status)
        rows = run.metrics()
        before = run.config().get("before")
        if rows:
            chance_warning_ui(run, rows)
            metrics_ui(rows, before)
            curves_ui(run, rows, before)
        elif status.active and before_point(before) is not None:
            st.caption(f"Before training, the starting model scores {before_point(before):.1%} on the validation photos.")
            curves_ui(run, rows, before)
        elif status.active:
            st.caption("Curves appear after the first epoch.")
        if not status.active:
            outcome_ui(run, status)
        if live and jobs.active_run() is None:
            st.rerun()  # the job is over: redraw the whole page so Start comes back

    monitor()


RESTORED_KEY = "train_settings_restored"  # session_state: the settings were filled from a run once


def restore_settings(run: Run) -> None:
    """After a reload, fill the settings from the watched run's config.json (once per session)."""
    if st.session_state.get(RESTORED_KEY) or "train_data" in st.session_state:
        return
    st.session_state[RESTORED_KEY] = True
    cfg = run.config()
    preset = cfg.get("model")
    if not cfg or preset not in PRESETS:
        return
    data = cfg.get("data")
    folders = [str(f) for f in data] if isinstance(data, list) else ([str(data)] if data else [])
    state = st.session_state
    if folders:
        state["train_data"] = folders[0]
        state["train_data_more"] = "\n".join(folders[1:])
    state["train_preset"] = preset
    for key, field in (("epochs", "epochs"), ("batch", "batch_size"), ("size", "image_size")):
        value, (low, high) = cfg.get(field), BOUNDS[field]
        if isinstance(value, int) and low <= value <= high:
            state[epochs_key(preset, bool(cfg.get("init_from"))) if key == "epochs" else f"train_{key}_{preset}"] = value
    lr = cfg.get("learning_rate")
    if isinstance(lr, (int, float)) and BOUNDS["learning_rate"][0] <= lr <= BOUNDS["learning_rate"][1]:
        state[f"train_lr_{preset}_{bool(cfg.get('init_from'))}"] = float(lr)
    early_key = f"train_early_{preset}_{bool(cfg.get('init_from'))}"
    if isinstance(cfg.get("early_stopping"), int) and cfg["early_stopping"] > 0:
        state[early_key], state["train_patience"] = True, max(1, min(100, cfg["early_stopping"]))
    elif "early_stopping" in cfg:
        state[early_key] = False
    split = cfg.get("val_split")
    low, high = VAL_SPLIT_SLIDER[:2]
    if isinstance(split, (int, float)) and low <= split <= high:
        state["train_split"] = float(split)


def settings_panel(busy: bool, run: Run | None) -> tuple[bool, str, dict, bool]:
    """Dataset, settings and the Start button: (clicked, folders, settings, dataset ok)."""
    folders, facts = dataset_ui(disabled=busy)
    negatives = negatives_ui(disabled=busy)
    settings = settings_ui(facts, disabled=busy)
    if negatives:
        settings["negatives"] = negatives
    if settings.get("init_from") == "bundled" and facts is not None and not busy:
        overlap_warning_ui(folders)
    c1, c2 = st.columns([1, 3], vertical_alignment="center")
    ready = facts is not None and negatives is not None
    clicked = c1.button("Start training", type="primary", icon=":material/play_arrow:", disabled=busy or not ready, key="train_start")
    if busy:
        running = code_span(run.id if run else "?")
        c2.caption(f"A training is running on this machine ({running}); one at a time. Watch it above or stop it.")
    else:
        c2.caption("Training runs in the background: you can switch pages or close the tab and come back.")
    return clicked, folders, settings, ready


def main() -> None:
    use_app_navigation()
    st.title("Train")
    run = watched_run()
    if run is not None:
        restore_settings(run)
    busy = jobs.active_run() is not None
    if busy and run is not None:
        # While a job runs, watching it comes first; the settings wait folded away.
        monitor_ui(str(run.path), live=True)
        with st.expander("Settings for the next training", icon=":material/tune:"):
            settings_panel(busy, run)
        return
    if run is not None:
        # The same place as while it trained, so the finished run's charts replace the live ones instead of doubling.
        monitor_ui(str(run.path), live=False)
        with st.expander("Settings for the next training", icon=":material/tune:", expanded=True):
            clicked, folders, settings, ok = settings_panel(busy, run)
        if clicked and ok:
            start(folders, settings)
        return
    with st.container(border=True):
        clicked, folders, settings, ok = settings_panel(busy, run)
    if clicked and ok:
        start(folders, settings)
    else:
        st.info("No training in this session yet. Pick a dataset and press **Start training**; earlier runs are on the Runs page.")


main()
