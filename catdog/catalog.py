"""Every model the app can use, with a readable name and what its accuracy was measured on.

The bundled model (assets/model/) is always listed, whichever run is active, so
the demo model never disappears. Nothing here imports TensorFlow or Streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from catdog import config
from catdog.hashing import cached_file_sha256
from catdog.runs import Run, list_runs, number, read_json

EVALUATION_FILE = "evaluation.json"  # written by `catdog evaluate --data DIR --json > assets/model/evaluation.json`
USABLE_STATES = ("finished", "stopped")


@dataclass
class ModelEntry:
    """One usable model: its file, where it comes from, and its recorded accuracy.

    Attributes:
        path: the resolved `.keras` file.
        kind: "bundled" or "run".
        name: the run id ("bundled" for the shipped model).
        preset: the architecture preset, if recorded.
        image_size: the input side in pixels, if recorded.
        accuracy: the best recorded accuracy (an evaluation, else the best validation epoch).
        accuracy_on: which data `accuracy` is on, in words.
        active: whether Predict and Evaluate use it by default.
        created: the training's Unix time, if recorded.
        openset: the "not a cat or dog" check's record (config.json's "openset"), or None without a check.
    """

    path: Path
    kind: str
    name: str
    preset: str | None = None
    image_size: int | None = None
    accuracy: float | None = None
    accuracy_on: str = ""
    active: bool = False
    created: float | None = None
    openset: dict | None = None
    class_names: list[str] | None = None

    @property
    def openset_text(self) -> str:
        """The "not a cat or dog" check's operating point (`openset_text`): the details."""
        return openset_text(self.openset)

    @property
    def openset_summary(self) -> str:
        """The "not a cat or dog" check in a stakeholder's words (`openset_summary`)."""
        return openset_summary(self.openset, self.class_names)

    @property
    def openset_details(self) -> str:
        """How the check decides and its operating point (`openset_details`)."""
        return openset_details(self.openset)

    @property
    def label(self) -> str:
        """'bundled · compact · 160px · 91.6% · active' (missing parts left out)."""
        parts = [self.name, self.preset, f"{self.image_size}px" if self.image_size else None]
        if self.accuracy is not None:
            parts.append(f"{self.accuracy:.1%}")
        if self.active:
            parts.append("active")
        return " · ".join(str(p) for p in parts if p)


def run_name(run: Run) -> str:
    """A readable name for legends and pickers: 'compact 160px 91.6% (20261126-101010)'.

    The figure is the saved model's (`accuracy_facts`), never a better epoch the model did not keep.
    """
    cfg = run.config()
    accuracy, _ = accuracy_facts(run)
    parts = [str(cfg.get("model") or "?")]
    if cfg.get("image_size"):
        parts.append(f"{cfg['image_size']}px")
    if accuracy is not None:
        parts.append(f"{accuracy:.1%}")
    stamp = run.id.split("-")
    short = "-".join(stamp[:2]) if len(stamp) >= 2 and stamp[0].isdigit() else run.id
    return f"{' '.join(parts)} ({short})"


def evaluation_record(folder: Path) -> dict | None:
    """The saved `catdog evaluate --json` output next to a model (None when missing, unreadable, or stale).

    A record with `model_sha256` that does not match the model file beside it
    was made for an older model (e.g. before the bundled model was replaced) and is ignored.
    """
    record = read_json(Path(folder) / EVALUATION_FILE)
    if not isinstance(record, dict) or number(record.get("accuracy")) is None:
        return None
    model = Path(folder) / config.MODEL_FILENAME
    if record.get("model_sha256") and model.exists() and record["model_sha256"] != cached_file_sha256(model):
        return None
    return record


def _data_name(path: object) -> str:
    """'catdog-small/validation' from a full path: the last two parts are what people recognise."""
    parts = Path(str(path)).parts if path else ()
    return "/".join(parts[-2:]) if parts else "?"


def accuracy_facts(run: Run) -> tuple[float | None, str]:
    """(accuracy, which data it is on) for a run folder, preferring a saved evaluation.

    An evaluation on a separate folder says more than the best validation epoch
    (which was picked on the very images it reports).
    """
    record = evaluation_record(run.path)
    if record is not None:
        n = int(number(record.get("n")) or 0)
        return float(record["accuracy"]), f"{n:,} photos in {_data_name(record.get('data'))} (catdog evaluate)"
    cfg = run.config()
    value, which = _saved_model_val_accuracy(run, cfg)
    if value is None:
        return None, ""
    n_val = int(number(cfg.get("n_validation")) or 0)
    count = f"{n_val:,} " if n_val else ""
    data = first_folder(cfg)
    if cfg.get("val_data"):
        where = f"{count}photos in {_data_name(cfg['val_data'])}"
    elif cfg.get("val_split"):
        where = f"{count}photos held out of {_data_name(data)}"
    else:
        where = f"{count}validation photos"
    return value, f"{which}, {where}"


def _saved_model_val_accuracy(run: Run, cfg: dict) -> tuple[float | None, str]:
    """The validation accuracy of the weights model.keras holds: the best epoch's with early stopping
    (it restores them), else the last epoch's (the best epoch's would overstate the saved model)."""
    value = run.model_val_accuracy()
    if value is None:
        return None, ""
    return value, "validation epoch of the lowest loss" if cfg.get("early_stopping") else "last validation epoch"


def first_folder(cfg: dict) -> str | None:
    """The (first) training folder a config names: `data` (a path or a list), else `data_folders` (paths or dicts)."""
    data = cfg.get("data") or cfg.get("data_folders")
    if isinstance(data, list):
        data = data[0] if data else None
    if isinstance(data, dict):
        data = data.get("path") or data.get("folder") or data.get("root")
    return str(data) if data else None


def openset_facts(model: str | Path, cfg: dict | None = None) -> dict | None:
    """The "not a cat or dog" check a model has: config.json's "openset" record, or None without a check.

    The check is the `openset.npz` saved beside the model; a record without that
    file (deleted, or copied without it) means no check, since Predict never says it.

    Args:
        model: the `.keras` file.
        cfg: the run's config.json (read from beside the model when None).
    """
    from catdog.openset import path_for

    model = Path(model)
    if not path_for(model).is_file():
        return None
    cfg = read_json(model.parent / "config.json", {}) if cfg is None else cfg
    record = cfg.get("openset") if isinstance(cfg, dict) else None
    return dict(record) if isinstance(record, dict) else {}


def openset_text(facts: dict | None) -> str:
    """The check and its operating point in words, e.g. 'threshold 2.27 · flags 2.1% of 725 held-out training
    photos · non-pet photos flagged: clothing 15.8%, objects 3.0%'; says so when there is no check.

    Args:
        facts: `openset_facts(...)`: None without a check, {} for a check with no record in config.json.
    """
    if facts is None:
        return "none, so it answers cat or dog for any photo (add one: catdog openset fit RUN)"
    parts = []
    threshold, held = number(facts.get("threshold")), number(facts.get("held_out_flagged"))
    if threshold is not None:
        parts.append(f"threshold {threshold:.3g}")
    if held is not None:
        n = int(number(facts.get("threshold_from")) or 0)
        # A check refitted on other folders set its threshold on photos the model may have trained on.
        which = "photos from its training folders" if "may have trained" in str(facts.get("threshold_from_source")) \
            else "held-out training photos"
        parts.append(f"flags {held:.1%} of {f'{n:,} ' if n else ''}{which}")
    negatives = facts.get("negatives_flagged") if isinstance(facts.get("negatives_flagged"), dict) else {}
    shares = [f"{name} {number(share):.1%}" for name, share in negatives.items() if number(share) is not None]
    if shares and str(facts.get("score", "distance")) != "distance":  # a head fitted on these photos: a fitting figure
        parts.append("fitted with non-pet photos, of which it flags " + ", ".join(shares))
    elif shares:
        parts.append("non-pet photos flagged: " + ", ".join(shares))
    return " · ".join(parts) or "yes (no operating point recorded)"


def openset_summary(facts: dict | None, class_names: list[str] | None = None) -> str:
    """The check in plain words, for someone who will not read a threshold: what it says, for which photos,
    and how often it wrongly says it, e.g. 'Says “Not a cat or dog” for photos without a cat or dog in them;
    wrongly flags about 1 in 90 pet photos.' (`openset_text` gives the operating point behind it.)

    Args:
        facts: `openset_facts(...)`: None without a check, {} for a check with no record in config.json.
        class_names: the model's classes ("pet photos" for cat and dog, else "photos of A or B").
    """
    names = [str(n) for n in (class_names or [])]
    pets = not names or sorted(n.lower() for n in names) == ["cat", "dog"]
    if facts is None:
        answers = "cat or dog" if pets else " or ".join(names)
        return f"No “not a cat or dog” check: it answers {answers} for any photo, whatever is in it."
    own = "pet photos" if pets else f"photos of {' or '.join(names)}"
    imagenet = "imagenet" in [str(p).lower() for p in facts.get("parts") or []]
    which = "without a cat or dog in them" if imagenet else f"unlike the {'pet photos' if pets else 'photos'} it learned from"
    parts = [f"Says “Not a cat or dog” for photos {which}"]
    held = number(facts.get("held_out_flagged"))
    if held is not None:
        parts.append(f"wrongly flags {_one_in(held)} {own}")
    negatives = facts.get("negatives_flagged") if isinstance(facts.get("negatives_flagged"), dict) else {}
    shares = [f"{number(share):.0%} of the {name} photos" for name, share in negatives.items() if number(share) is not None]
    if shares and str(facts.get("score", "distance")) == "distance":  # never a figure on photos the check was fitted on
        parts.append("on photos it never saw it flagged " + " and ".join(shares))
    return "; ".join(parts) + "."


def openset_details(facts: dict | None) -> str:
    """What stands behind `openset_summary`: how the check decides, then its operating point (`openset_text`)."""
    if facts is None:
        return openset_text(facts)
    method = str(facts.get("method") or "").strip()
    how = f"How it decides: {method}. " if method else ""
    return f"{how}Operating point: {openset_text(facts)}."


def _one_in(share: float) -> str:
    """'about 1 in 90' for 0.011; 'none of the' for 0; a plain percentage from one in two up."""
    if share <= 0:
        return "none of the held-out"
    if share >= 0.5:
        return f"{share:.0%} of"
    every = 1 / share
    rounded = round(every) if every < 10 else round(every, -1) if every < 100 else round(every, -(len(str(int(every))) - 2))
    return f"about 1 in {int(rounded):,}"


def _entry(run: Run, kind: str, active: Path | None) -> ModelEntry:
    cfg = run.config()
    accuracy, on = accuracy_facts(run)
    path = run.model_path.resolve()
    size = number(cfg.get("image_size"))
    return ModelEntry(
        path=path, kind=kind, name="bundled" if kind == "bundled" else run.id, preset=cfg.get("model") or cfg.get("preset"),
        image_size=int(size) if size else None, accuracy=accuracy, accuracy_on=on, active=active == path,
        created=number(cfg.get("created")), openset=openset_facts(path, cfg),
        class_names=[str(n) for n in cfg["class_names"]] if isinstance(cfg.get("class_names"), list) else None,
    )


def bundled_entry() -> ModelEntry | None:
    """The model shipped in assets/model/, or None when it is not there."""
    from catdog.model_files import bundled_model_dir, default_model, model_file

    folder = bundled_model_dir()
    if folder is None:
        return None
    default = default_model()
    return _entry(Run(folder), "bundled", model_file(default) if default else None)


def list_models() -> list[ModelEntry]:
    """The bundled model first (always), then every finished or stopped run with a model, newest first."""
    from catdog.model_files import default_model, model_file

    default = default_model()
    active = model_file(default) if default is not None else None
    entries: list[ModelEntry] = []
    bundled = bundled_entry()
    if bundled is not None:
        entries.append(bundled)
    for run in list_runs():
        if run.model_path.exists() and run.status().get("state") in USABLE_STATES:
            entry = _entry(run, "run", active)
            if all(e.path != entry.path for e in entries):
                entries.append(entry)
    if active is not None and all(e.path != active for e in entries) and active.exists():
        entries.insert(0, _entry(Run(active.parent), "run", active))  # an active model outside the runs folder
    return entries


def active_entry() -> ModelEntry | None:
    """The model Predict uses by default (the active run's, else the bundled one)."""
    return next((e for e in list_models() if e.active), None)


def replace_check(run: Run, measure: bool = False) -> tuple[str | None, str | None]:
    """(confirm, warn) messages for making `run` the active model; None when there is nothing to say.

    Plain text (they name models and data folders): a page shows them through its plain-text rule.

    The run and the current model are compared on the same photos, the run's validation
    photos (`catdog.compare.same_photos`), when that figure is known or `measure` allows
    scoring the current model now; else on their recorded figures, saying they differ.

    Args:
        run: the run about to become active.
        measure: score the current model on the run's validation photos if needed (TensorFlow).
    """
    from catdog.compare import same_photos
    from catdog.health import near_chance

    warn = None
    classes = run.config().get("class_names") or config.CLASS_NAMES
    rows = run.metrics()
    if rows and near_chance(rows, len(classes)):
        warn = (f"This run's validation accuracy sits near chance ({1 / len(classes):.0%}): it has not learned to tell "
                "the classes apart, so Predict would answer almost at random.")
    confirm = None
    current = active_entry()
    if current is None or current.path == run.model_path.resolve():
        return confirm, warn
    same = same_photos(run, current.path, measure=measure)
    if same is not None:
        if same.new < same.current:
            confirm = (f"On this run's {same.n:,} validation photos, Predict's model {current.label} scores "
                       f"{same.current:.1%} and this run {same.new:.1%}. Replace it anyway?")
        return confirm, warn
    new, new_on = accuracy_facts(run)
    if current.accuracy is not None and (new is None or new < current.accuracy):
        reached = "no recorded accuracy" if new is None else f"{new:.1%} on {new_on}"
        confirm = (f"Predict now uses {current.label} ({current.accuracy:.1%} on {current.accuracy_on}). "
                   f"This run reached {reached} (other photos, so the figures compare only roughly). Replace it anyway?")
    return confirm, warn
