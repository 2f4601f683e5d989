"""A run report to hand out: ONE self-contained HTML file that opens offline.

It holds the model and data facts with the settings, the training curves as
interactive Plotly (plotly.js inlined once), the evaluation figures when a
labelled folder is evaluated, the "not a cat or dog" check's figures (pets
wrongly flagged; non-pets flagged when a folder of them is given), and a grid
of sample predictions with Grad-CAM, confident mistakes first. Images are
base64 data URIs; nothing is fetched.

    catdog report RUN --out report.html [--data LABELLED_DIR] [--not-pets DIR]
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from catdog.runs import Run, number
from catdog.verdicts import ANSWER_COLOURS, NOT_SURE, best_guess, percent, verdict

if TYPE_CHECKING:
    from catdog.evaluate import EvalReport
    from catdog.predict import Predictor

SAMPLE_MISTAKES = 8
SAMPLE_CORRECT = 4
THUMB_SIDE = 224


@dataclass
class Sample:
    """One photo in the grid: the photo and its Grad-CAM as data URIs, with the verdict."""

    name: str
    true: str
    predicted: str
    confidence: float
    photo: str
    gradcam: str | None = None
    notes: list[str] = field(default_factory=list)
    unsure: bool = False  # under the model's Not-sure line: the app showed "Not sure", not this answer
    not_pet: bool = False  # flagged by the open-set check: the app showed "Not a cat or dog", not this answer

    @property
    def correct(self) -> bool:
        """Whether the app's answer was the true class (a flagged photo's was "not a cat or dog")."""
        return self.true == self.predicted and not self.not_pet


def evaluation_folder(run: Run, data: str | os.PathLike | None = None) -> Path | None:
    """The labelled folder to evaluate on: `data`, else the run's own validation folder when it has one.

    Then the folder of the model's saved evaluation (`catdog evaluate ... > evaluation.json`),
    if it is still there. A run that held out a random part of its training folder has
    no separate folder (`held_out_images` rebuilds that part instead), so None.
    """
    if data:
        return Path(data)
    cfg = run.config()
    if cfg.get("val_data") and Path(str(cfg["val_data"])).is_dir():
        return Path(str(cfg["val_data"]))
    from catdog.catalog import evaluation_record

    record = evaluation_record(run.path) or {}
    if record.get("data") and Path(str(record["data"])).is_dir():
        return Path(str(record["data"]))
    folder = cfg.get("data")
    if isinstance(folder, list):
        folder = folder[0] if folder else None
    if not folder or not Path(str(folder)).is_dir():
        return None
    try:
        from catdog.data import discover

        layout = discover(str(folder))
    except Exception:  # noqa: BLE001 - an unreadable folder just means no evaluation
        return None
    return Path(str(folder)) if getattr(layout, "validation", None) else None


def held_out_images(run: Run):
    """The photos a run held out of its training folders for validation, rebuilt from its seed; None if unreachable.

    Returns:
        (ImageSet, class names, a description) or None.
    """
    from catdog import data

    cfg = run.config()
    val_split, seed = number(cfg.get("val_split")), number(cfg.get("seed"))
    folders = cfg.get("data") if isinstance(cfg.get("data"), list) else [cfg.get("data")]
    if not val_split or seed is None or not all(folders) or not all(Path(str(f)).is_dir() for f in folders):
        return None
    try:
        layouts = data.discover_all([str(f) for f in folders])
        pooled = data.ImageSet([p for lay in layouts for p in lay.train.paths], [lb for lay in layouts for lb in lay.train.labels])
        _, held_out = data.split(pooled, float(val_split), int(seed))
    except Exception:  # noqa: BLE001 - moved or changed folders: no evaluation rather than a wrong one
        return None
    names = list(cfg.get("class_names") or layouts[0].class_names)
    where = ", ".join(f"“{Path(str(f)).name}”" for f in folders)
    folder = "training folder" if len(folders) == 1 else "training folders"
    return (held_out, names, f"the {len(held_out):,} labelled photos held out of the {folder} {where} for validation "
            f"(rebuilt from seed {int(seed)})")


def image_data_uri(image, fmt: str = "JPEG") -> str:
    """A PIL image as a data: URI (JPEG for photos, PNG for figures)."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, fmt, quality=85) if fmt == "JPEG" else image.save(buf, fmt)
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def collect_samples(predictor: "Predictor", report: "EvalReport", mistakes: int = SAMPLE_MISTAKES,
                    correct: int = SAMPLE_CORRECT, gradcam: bool = True) -> list[Sample]:
    """The most confident mistakes (a wrong "Not sure" answer after the confident ones, a pet flagged "not a cat
    or dog" after those), then the most confident right answers, each with Grad-CAM."""
    from catdog.preprocess import load_display_image

    names = report.class_names
    rows = []
    for file, label, p, flagged in zip(report.files, report.labels, report.probs, report.not_pet or [False] * len(report.files)):
        predicted = 1 if p >= report.threshold else 0
        confidence = p if predicted == 1 else 1.0 - p
        rows.append((file, names[label], names[predicted], float(confidence), bool(flagged)))
    wrong = sorted((r for r in rows if r[1] != r[2] or r[4]), key=lambda r: (r[4], -r[3]))[:mistakes]  # flagged ones last
    right = _each_class_in_turn(sorted((r for r in rows if r[1] == r[2] and not r[4]), key=lambda r: -r[3]), names)[:correct]
    samples = []
    for file, true, predicted, confidence, flagged in wrong + right:
        try:
            photo = image_data_uri(load_display_image(file, THUMB_SIDE))
        except Exception:  # noqa: BLE001 - an unreadable photo is left out of the grid
            continue
        sample = Sample(Path(file).name, true, predicted, confidence, photo, unsure=confidence < report.uncertain_below,
                        not_pet=flagged)
        if gradcam:
            try:
                from catdog.gradcam import explain

                sample.gradcam = image_data_uri(explain(predictor, file, max_side=THUMB_SIDE)[1])
            except Exception as exc:  # noqa: BLE001 - a model without conv layers has no Grad-CAM
                sample.notes.append(f"no Grad-CAM: {exc}")
        samples.append(sample)
    return samples


def _each_class_in_turn(rows: list[tuple], names: list[str]) -> list[tuple]:
    """`rows` (sorted, most confident first) reordered to take each true class in turn, so a few samples
    show every class (four right answers are never four cats while the dogs were right too)."""
    queues = [[r for r in rows if r[1] == name] for name in names]
    mixed = []
    while any(queues):
        for queue in queues:
            if queue:
                mixed.append(queue.pop(0))
    return mixed


def _facts(run: Run) -> list[tuple[str, str]]:
    from catdog.catalog import accuracy_facts, openset_facts, openset_text
    from catdog.compare import before_after_text

    cfg = run.config()
    status = run.status()
    accuracy, on = accuracy_facts(run)
    data = cfg.get("data")
    data = ", ".join(map(str, data)) if isinstance(data, list) else data
    created = number(cfg.get("created"))
    duration = run.duration()
    versions = cfg.get("versions") if isinstance(cfg.get("versions"), dict) else {}
    rows = [
        ("Run", run.id),
        ("State", str(status.get("state", "?"))),
        ("Trained", dt.datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M") if created else "–"),
        ("Duration", f"{duration / 60:.1f} min" if duration else "–"),
        ("Preset", str(cfg.get("model") or "?")),
        ("Image size", f"{cfg.get('image_size', '?')} px"),
        ("Classes", " / ".join(cfg.get("class_names") or [])),
        ("Accuracy", f"{accuracy:.1%} on {on}" if accuracy is not None else "–"),
        ("Validation accuracy, before → after", before_after_text(run) or "– (no starting model)"),
        ("Not a cat or dog check", openset_text(openset_facts(run.model_path, cfg))),
        ("Epochs", f"{len(run.metrics())} of {cfg.get('epochs', '?')}"),
        ("Batch size", str(cfg.get("batch_size", "?"))),
        ("Learning rate", f"{cfg['learning_rate']:g}" if number(cfg.get("learning_rate")) else "?"),
        ("Schedule", str(cfg.get("lr_schedule") or "constant")),
        ("Early stopping", str(cfg.get("early_stopping") or "off")),
        ("Precision", str(cfg.get("precision") or "?")),
        ("Started from", str(cfg.get("init_from") or "scratch")),
        ("Training data", str(data or "?")),
        ("Images", f"{cfg.get('n_train', '?'):,} training / {cfg.get('n_validation', '?'):,} validation"
         if isinstance(cfg.get("n_train"), int) and isinstance(cfg.get("n_validation"), int) else "?"),
        ("Validation", f"folder {cfg['val_data']}" if cfg.get("val_data") else
         f"{cfg['val_split']:.0%} held out of the training data" if number(cfg.get("val_split")) else "the dataset's own"),
        ("Software", ", ".join(f"{k} {v}" for k, v in versions.items()) or "?"),
    ]
    return rows


class _Figures:
    """Plotly figures as HTML fragments; plotly.js is inlined with the first one only."""

    def __init__(self) -> None:
        self._first = True

    def __call__(self, fig) -> str:
        fig.update_layout(template="plotly_white")
        fragment = fig.to_html(full_html=False, include_plotlyjs=self._first, config={"displaylogo": False, "responsive": True})
        self._first = False
        return f'<div class="fig">{fragment}</div>'


def build_report(run: Run, evaluation: "EvalReport | None" = None, samples: list[Sample] | None = None,
                 note: str | None = None, not_pets: dict | None = None) -> str:
    """The report as one HTML string.

    Args:
        run: the run folder.
        evaluation: an evaluation on a labelled folder, for the metrics and figures.
        samples: the prediction grid (`collect_samples`).
        note: a line saying why something is missing (e.g. no labelled folder).
        not_pets: `catdog.evaluate.evaluate_not_pets` on a folder of photos with no cat or dog.
    """
    from catdog.catalog import run_name
    from catdog.plots import curves_figure

    figure = _Figures()
    rows = run.metrics()
    esc = html.escape
    parts = [f"<h1>{esc(run_name(run))}</h1>",
             f"<p class='muted'>catdog run report · written {dt.datetime.now():%Y-%m-%d %H:%M}</p>"]
    parts.append("<h2>Model and data</h2><table class='facts'>"
                 + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in _facts(run)) + "</table>")
    parts.append("<h2>Training curves</h2>")
    if rows:
        before = run.config().get("before")
        parts.append("<div class='row'>" + figure(curves_figure(rows, "accuracy", "Accuracy", before=before))
                     + figure(curves_figure(rows, "loss", "Loss", before=before)) + "</div>")
    else:
        parts.append("<p>No epoch finished.</p>")
    if evaluation is not None:
        parts.append(_evaluation_html(evaluation, figure))
    if run.model_path.exists():
        parts.append(_openset_html(run, evaluation, not_pets))
    if samples:
        parts.append(_samples_html(samples))
    if note:
        parts.append(f"<p class='note'>{esc(note)}</p>")
    return _PAGE.format(marker=REPORT_MARKER, title=esc(f"catdog report · {run.id}"), body="\n".join(parts),
                        not_sure=ANSWER_COLOURS[NOT_SURE][1])


def _evaluation_html(report: "EvalReport", figure: _Figures) -> str:
    from catdog.eval_plots import confusion_figure, reliability_figure

    esc = html.escape
    cal = report.calibration()
    cells = [("Accuracy", f"{report.accuracy:.1%}"), ("Precision", f"{report.precision:.1%}"),
             ("Recall", f"{report.recall:.1%}"), ("F1", f"{report.f1:.1%}"), ("Log loss", f"{report.log_loss:.3f}")]
    if cal.get("ece") is not None:
        cells.append(("ECE", f"{cal['ece']:.3f}"))
    metrics = "".join(f"<div class='metric'><span>{esc(k)}</span><b>{esc(v)}</b></div>" for k, v in cells)
    ece_note = calibration_note(report.n, report.log_loss, cal)
    return (f"<h2>Evaluation</h2><p class='muted'>{esc(evaluated_on(report.n, report.data))} · "
            f"threshold {report.threshold:g}</p><div class='metrics'>{metrics}</div>"
            + (f"<p class='note'>{esc(ece_note)}</p>" if ece_note else "") + "<div class='row'>"
            + figure(confusion_figure(report.confusion, report.class_names))
            + figure(reliability_figure(report.labels, report.probs, report.raw_probs or None)) + "</div>")


def evaluated_on(n: int, data: str) -> str:
    """'168 labelled photos in /photos/test', or, for photos described in words (a run's held-out photos,
    `held_out_images`), the description itself: 'The 60 photos held out of …', never '60 labelled photos in the 60 photos …'."""
    if Path(str(data)).is_absolute():
        return f"{n:,} labelled photos in {data}"
    return str(data)[:1].upper() + str(data)[1:]


def calibration_note(n: int, calibrated_log_loss: float, cal: dict) -> str | None:
    """A word when the calibrated ECE is worse than the uncalibrated one (else None): why it can be, here.

    Args:
        n: how many photos were evaluated.
        calibrated_log_loss: the log loss after the model's temperature scaling.
        cal: `EvalReport.calibration()`.
    """
    ece, raw = cal.get("ece"), cal.get("ece_uncalibrated")
    if ece is None or raw is None or ece <= raw:
        return None
    raw_loss = cal.get("log_loss_uncalibrated")
    loss = (f" Log loss, which it does minimise, went from {raw_loss:.3f} to {calibrated_log_loss:.3f}."
            if raw_loss is not None else "")
    return (f"Calibrated ECE ({ece:.3f}) is worse than uncalibrated ({raw:.3f}) on these {n:,} photos. The temperature "
            f"({cal.get('temperature', 1.0):.2f}) was fitted on training photos held out for it, not on these, and it minimises "
            f"log loss, not ECE; on a set this size ECE also moves by chance from bin to bin.{loss}")


def _openset_html(run: Run, evaluation: "EvalReport | None", not_pets: dict | None) -> str:
    """The "not a cat or dog" figures: pets wrongly flagged, non-pets flagged, the operating point; or that there is no check."""
    from catdog.catalog import openset_facts, openset_text

    esc = html.escape
    facts = openset_facts(run.model_path)
    if facts is None:
        return ("<h2>Not a cat or dog</h2><p class='note'>This model has no &ldquo;not a cat or dog&rdquo; check: it answers cat "
                f"or dog for any photo. Fit one on its training photos: <code>catdog openset fit {esc(str(run.path))}</code>.</p>")
    cells = []
    wrongly = evaluation.open_set() if evaluation is not None else None
    if wrongly is not None:
        cells.append(("Pets wrongly flagged", f"{wrongly['share']:.1%}",
                      f"{wrongly['flagged']:,} of the {wrongly['n']:,} evaluation photos"))
    if not_pets is not None:
        cells.append(("Non-pets flagged", f"{not_pets['share']:.1%}",
                      f"{not_pets['flagged']:,} of {not_pets['n']:,} photos in {not_pets['data']}"))
    metrics = "".join(f"<div class='metric'><span>{esc(k)}</span><b>{esc(v)}</b><span>{esc(n)}</span></div>" for k, v, n in cells)
    hint = "" if not_pets is not None else (" To measure the share of photos with no cat or dog it flags: "
                                            f"<code>catdog report {esc(str(run.path))} --not-pets DIR</code>.")
    return ("<h2>Not a cat or dog</h2><p class='muted'>Photos far from the training photos are called &ldquo;not a cat "
            f"or dog&rdquo;. Operating point, set on training photos: {esc(openset_text(facts))}.{hint}</p>"
            f"<div class='metrics'>{metrics}</div>")


def _samples_html(samples: list[Sample]) -> str:
    from catdog.predict import Prediction

    esc = html.escape
    cards = []
    for s in samples:
        said = Prediction(s.name, s.predicted, confidence=s.confidence, uncertain=s.unsure, not_pet=s.not_pet)
        answer, guess = verdict(said), best_guess(said)  # the app's words: 'Not a cat or dog · if it were a pet: cat, 97.0%'
        kind = "right" if s.correct else "unsure" if answer == NOT_SURE else "wrong"
        images = f"<img src='{s.photo}' alt='{esc(s.name)}'>" + (f"<img src='{s.gradcam}' alt='Grad-CAM'>" if s.gradcam else "")
        words = f"{esc(answer[:1].upper() + answer[1:])}</b> · {esc(guess)}" if guess else f"{esc(answer)}</b> {percent(s.confidence)}"
        cards.append(
            f"<figure class='card {kind}'><div class='pair'>{images}</div><figcaption><b>{words}"
            f" · true {esc(s.true)}{' ✗' if not s.correct else ' ✓'}<br><small>{esc(s.name)}"
            + "".join(f"<br>{esc(n)}" for n in s.notes) + "</small></figcaption></figure>"
        )
    return (f"<h2>Sample predictions</h2><p class='muted'>{esc(_samples_intro(samples))} Right of each photo: Grad-CAM, "
            "the regions that drove the answer (red = most).</p>"
            f"<div class='grid'>{''.join(cards)}</div>")


def _samples_intro(samples: list[Sample]) -> str:
    """'The 2 most confident mistakes first, then 1 wrong best guess under the Not-sure line (...), then confident right answers.'"""
    confident = sum(not s.correct and not s.unsure and not s.not_pet for s in samples)
    unsure = sum(not s.correct and s.unsure and not s.not_pet for s in samples)
    flagged = sum(s.not_pet for s in samples)
    parts = []
    if confident == 1:
        parts.append("The one confident mistake first")
    elif confident:
        parts.append(f"The {confident} most confident mistakes first")
    if unsure:
        guesses = "wrong best guess" if unsure == 1 else "wrong best guesses"
        parts.append(f"{'then ' if parts else ''}{unsure} {guesses} under the Not-sure line (the app says \"Not sure\" there)")
    if flagged:
        photos = "photo" if flagged == 1 else "photos"
        parts.append(f"{'then ' if parts else ''}{flagged} {photos} the app calls \"Not a cat or dog\"")
    parts.append(f"{'then ' if parts else ''}confident right answers" if any(s.correct for s in samples) else "")
    text = ", ".join(p for p in parts if p)
    return (text[0].upper() + text[1:] + ".") if text else ""

# Written into every report's head: it names the generator; what `--overwrite` trusts is the sidecar (`record_path`).
REPORT_MARKER = '<meta name="generator" content="catdog run report">'

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">{marker}<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
/* overflow-wrap: anywhere lets an unbroken path or file name wrap (and lets a table or card shrink to the
   screen): a phone never scrolls sideways. */
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1F2937; margin: 0 auto;
       max-width: 1200px; padding: 24px; overflow-wrap: anywhere; }}
@media (max-width: 600px) {{ body {{ padding: 16px; }} table.facts th {{ width: 36%; }} }}
h1 {{ margin-bottom: 0; }} h2 {{ margin-top: 32px; border-bottom: 1px solid #E5E7EB; padding-bottom: 4px; }}
.muted {{ color: #6B7280; }} .note {{ background: #F4F6FA; padding: 8px 12px; border-radius: 6px; }}
table.facts {{ border-collapse: collapse; max-width: 100%; }} table.facts th {{ text-align: left; padding: 3px 16px 3px 0;
       color: #6B7280; font-weight: normal; vertical-align: top; overflow-wrap: normal; min-width: 7em; }}
table.facts td {{ padding: 3px 0; }}
/* Grid columns keep their width while the page is still being parsed: plotly.js sizes a chart when its
   script runs, before the row's second chart exists (a flex row would give the first one the full width). */
html {{ overflow-y: scroll; }}
.row {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(min(420px, 100%), 1fr)); gap: 16px; }}
.fig {{ min-width: 0; }}
.metrics {{ display: flex; flex-wrap: wrap; gap: 12px; }} .metric {{ border: 1px solid #E5E7EB; border-radius: 8px;
       padding: 8px 14px; }} .metric span {{ display: block; color: #6B7280; font-size: 0.85em; }}
.metric b {{ font-size: 1.4em; }} .metric b + span {{ margin-top: 2px; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(min(300px, 100%), 1fr)); gap: 12px; }}
.card {{ margin: 0; border: 1px solid #E5E7EB; border-radius: 8px; padding: 8px; }}
.card.wrong {{ border-color: #D55E00; }} .card.unsure {{ border-color: {not_sure}; border-style: dashed; }}
.pair {{ display: flex; gap: 4px; }}
.pair img {{ width: 50%; aspect-ratio: 1; object-fit: cover; border-radius: 4px; }}
figcaption {{ margin-top: 6px; }}
</style></head>
<body>
{body}
</body></html>
"""


def write_report(run: Run, out: str | os.PathLike, data: str | os.PathLike | None = None, evaluate_model: bool = True,
                 log=None, overwrite: bool = False, not_pets: str | os.PathLike | None = None) -> Path:
    """Evaluate (when a labelled folder is known), collect samples, and write the HTML file atomically.

    Args:
        run: the run folder (it needs model.keras for the evaluation and samples).
        out: the HTML file to write; an existing file is refused (see `check_target`).
        data: a labelled folder; default: the run's own validation folder, if it has one.
        evaluate_model: False to leave out the evaluation and samples (curves and facts only).
        log: a callable for progress lines, or None.
        overwrite: replace a previous report at `out` (never any other file).
        not_pets: a folder of photos with no cat or dog: the report gives the share flagged "not a cat or dog".

    Raises:
        CatdogError: `out` holds something else, the disk is full, or `not_pets` holds no image.
    """
    from catdog.atomic import atomic_write_json, atomic_write_text
    from catdog.errors import write_error

    target = Path(out)
    check_target(target, overwrite)  # before the minute of evaluation, and again before writing
    evaluation, samples, note = _evaluation(run, data, evaluate_model, log)
    flagged = _not_pets(run, not_pets, log) if not_pets else None
    text = build_report(run, evaluation, samples, note, flagged)
    check_target(target, overwrite)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, text)
        # Written after the report: a crash between the two leaves a report with no record, which is refused, never replaced.
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        atomic_write_json(record_path(target), {"format": _RECORD_FORMAT, "run": run.id, "sha256": digest})
    except OSError as exc:
        clear = write_error(exc, target, "then write the report again")
        if clear is None:
            raise
        raise clear from exc
    return target


_RECORD_FORMAT = "report"


def record_path(out: str | os.PathLike) -> Path:
    """The sidecar in which `write_report` records the sha256 of the report it wrote (`<out>.catdog.json`, as export's)."""
    out = Path(out)
    return out.with_name(out.name + ".catdog.json")


def check_target(out: Path, overwrite: bool = False) -> None:
    """Refuse to write a report over anything but an unchanged previous report, and over that without `overwrite`.

    A previous report is one whose sidecar (`record_path`) records the sha256 it
    still has: a report edited since, or a page that merely looks like one, is
    not catdog's to replace.

    Raises:
        CatdogError: `out` exists and is not a report catdog wrote (a run's model.keras,
            an edited report, a page with a catdog title), its sidecar's name is
            taken by another file, or `out` is a previous report and `overwrite` is False.
    """
    from catdog.errors import CatdogError
    from catdog.hashing import file_sha256

    record_file = record_path(out)
    record = _read_record(record_file)
    if (record_file.exists() or record_file.is_symlink()) and record is None:
        raise CatdogError(f"{str(record_file)!r} exists and is not a catdog report record; a report never replaces "
                          "another file: choose another --out, or move it away")
    if not out.exists() and not out.is_symlink():
        return
    if record is None or out.is_symlink() or not out.is_file():
        raise CatdogError(f"{str(out)!r} already exists and is not a catdog report (none is recorded as written there); "
                          "a report never replaces another file: choose another --out, or move it away")
    try:
        unchanged = file_sha256(out) == record["sha256"]
    except OSError:
        unchanged = False
    if not unchanged:
        raise CatdogError(f"{str(out)!r} changed since catdog wrote it (edited, or another file saved there); "
                          "a report never replaces what it did not write: choose another --out, or move it away")
    if not overwrite:
        raise CatdogError(f"{str(out)!r} holds a previous report; pass --overwrite to replace it, or choose another --out")


def _read_record(path: Path) -> dict | None:
    """The report sidecar's record, or None when it is missing, a link, or not one `write_report` wrote."""
    if path.is_symlink():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = (isinstance(info, dict) and info.get("format") == _RECORD_FORMAT and isinstance(info.get("sha256"), str)
          and len(info["sha256"]) == 64)
    return info if ok else None


def _evaluation(run: Run, data, evaluate_model: bool, log):
    """(evaluation, samples, note) for the report: what could be measured, and a line on what could not."""
    evaluation, samples, note = None, None, None
    folder = evaluation_folder(run, data) if evaluate_model else None
    held_out = held_out_images(run) if evaluate_model and folder is None else None
    if evaluate_model and folder is None and held_out is None:
        note = ("No evaluation: the photos this run validated on are not reachable from here. "
                "Pass a labelled folder: catdog report RUN --data DIR.")
    elif (folder is not None or held_out is not None) and not run.model_path.exists():
        note = "No evaluation: this run saved no model."
    elif folder is not None or held_out is not None:
        from catdog.evaluate import evaluate, evaluate_images
        from catdog.predict import Predictor

        predictor = Predictor.load(run.path)
        if log:
            log(f"evaluating on {folder or held_out[2]} …")
        evaluation = evaluate(predictor, folder) if folder is not None else evaluate_images(predictor, *held_out)
        if held_out is not None:
            note = (f"Evaluated on {held_out[2]}: the epoch kept was picked on these photos, so the figure reads a little high; "
                    "pass --data DIR for photos the run never saw.")
        if log:
            log(f"accuracy {evaluation.accuracy:.4f} on {evaluation.n} images; explaining samples …")
        samples = collect_samples(predictor, evaluation)
    return evaluation, samples, note


def _not_pets(run: Run, folder: str | os.PathLike, log=None) -> dict | None:
    """`evaluate_not_pets` on `folder` with the run's model; None when the model has no check (the report says so).

    Raises:
        CatdogError: the run saved no model, or the folder holds no image.
    """
    from catdog.errors import CatdogError
    from catdog.evaluate import evaluate_not_pets
    from catdog.predict import Predictor

    if not run.model_path.exists():
        raise CatdogError(f"run {run.id!r} saved no model, so --not-pets has nothing to measure")
    predictor = Predictor.load(run.path)
    if predictor.openset is None:
        return None
    if log:
        log(f"not a cat or dog: classifying the photos in {folder} …")
    return evaluate_not_pets(predictor, folder)
