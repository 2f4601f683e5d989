"""Predict page: drop photos (or take one), get a label and a confidence for each.

Every image goes through `catdog.preprocess` inside `Predictor.predict`, at the
size and threshold saved with the model; a bad file gets its own error card.
A photo the model's open-set check flags gets a "Not a cat or dog" card, with
the class it would be, if it were a pet, in small print. The table and its CSV
give each photo's `answer` (what the card says) beside `label` (the best class).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from PIL import Image, ImageOps

from catdog import config
from catdog.errors import CatdogError
from catdog.predict import Prediction, Predictor
from catdog.preprocess import load_display_image
from catdog.results import prediction_rows, rows_csv
from catdog.verdicts import (
    ANSWER_COLOURS,
    NOT_PET,
    NOT_SURE,
    UNREADABLE,
    best_guess,
    percent,
    probability,
    shown,
    tally,
    tally_text,
)
from pages._nav import use_app_navigation
from pages._text import code_span, plain
from pages._ui import class_badge, class_hex, load_model_file, model_picker_ui, model_version

CARDS_PER_ROW = 4
THUMBNAIL_SIDE = 320  # display only; the model's own size comes from its settings
THUMBNAIL_BACKGROUND = (244, 246, 250)  # the theme's secondary background
NOT_PET_TITLE = NOT_PET.capitalize()  # "Not a cat or dog": the words `catdog predict` and the report use
SAMPLES_KEY = "predict_samples"
EXPLAIN_KEY = "predict_explain"


@dataclass
class Upload:
    """One image to classify: a display name and its raw bytes."""

    name: str
    data: bytes


@st.cache_data(show_spinner=False, max_entries=16, ttl=900)  # bounded: it holds the uploaded bytes
def classify(model_key: tuple[str, float, float], _predictor: Predictor, names: tuple[str, ...],
             blobs: tuple[bytes, ...]) -> list[Prediction]:
    """Predictions for these files with this model version (cached across reruns)."""
    return _predictor.predict(list(blobs), list(names))


@st.cache_data(show_spinner="Explaining…", max_entries=64, ttl=900)  # bounded: it holds the uploaded bytes
def explanation(model_key: tuple[str, float, float], _predictor: Predictor, data: bytes) -> Image.Image:
    """The Grad-CAM overlay for one photo with this model version (cached across reruns)."""
    from catdog.gradcam import explain

    overlay = explain(_predictor, data, max_side=THUMBNAIL_SIDE)[1]
    return ImageOps.pad(overlay, (THUMBNAIL_SIDE, THUMBNAIL_SIDE), color=THUMBNAIL_BACKGROUND)


def model_ui() -> tuple[Path | None, object]:
    """The model selector: (the chosen model file or None, a slot under it for `load_ui`'s line)."""
    path = model_picker_ui("predict_model")
    if path is None:
        st.info(
            "**No trained model yet.** Train one on the **Train** page and press *Use this model for Predict*, "
            "or from a terminal: `catdog train --data PHOTOS` then `catdog use <run>`.",
            icon=":material/model_training:",
        )
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
        return None, None
    return path, st.empty()


def load_ui(path: Path, slot) -> Predictor | None:
    """Load the chosen model (once per file version) and say what it is in `slot`; None with the error drawn.

    Called after the drop zone and the examples are drawn: the page is usable at once, even while a
    server's first visit loads (or first converts) the model.
    """
    try:
        with slot, st.spinner("Loading the model…"):
            predictor = load_model_file(path)
    except (CatdogError, OSError) as exc:
        slot.error(f"Cannot use this model: {plain(exc)}")
        return None
    runtime = "ONNX Runtime" if predictor.backend == "onnxruntime" else "TensorFlow"
    check = "says *Not a cat or dog*" if predictor.openset is not None else "no *Not a cat or dog* check"
    slot.caption(
        f"Classes {plain(' / '.join(predictor.class_names))} · input {predictor.image_size}px · "
        f"threshold {predictor.threshold:g} · runs on {runtime} · {check}"
    )
    return predictor


def sample_images() -> list[Path]:
    """Example photos shipped under assets/samples/ (none if the folder is absent)."""
    folder = config.assets_dir() / "samples"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in config.IMAGE_EXTENSIONS)


def inputs_ui() -> list[Upload]:
    """Uploads, an optional camera snapshot, and example photos, as plain bytes."""
    files = st.file_uploader(
        "Drop photos here",
        accept_multiple_files=True,
        key="predict_files",
        help="JPEG, PNG, GIF, BMP, TIFF or WebP. Each file is checked on its own; a broken one does not stop the rest.",
    )
    files = list(files or [])
    try:
        limit = config.max_predict_files()
    except CatdogError as exc:  # CATDOG_MAX_PREDICT_FILES is not a number: the server's setting to fix
        st.error(plain(exc))
        return []
    if len(files) > limit:
        st.warning(
            f"{len(files)} files dropped; only the first {limit} are classified "
            "(CATDOG_MAX_PREDICT_FILES sets the limit). Use `catdog predict` or the Evaluate page for large folders."
        )
        files = files[:limit]
    items = [Upload(f.name, f.getvalue()) for f in files]
    if st.toggle("Take a photo with the camera", key="predict_camera_on"):
        shot = st.camera_input("Camera", key="predict_camera")
        if shot is not None:
            items.append(Upload("camera snapshot", shot.getvalue()))
    items += samples_ui()
    return items


def samples_ui() -> list[Upload]:
    samples = sample_images()
    if not samples:
        return []
    st.caption("No photo at hand? Try an example:")
    chosen = st.session_state.setdefault(SAMPLES_KEY, [])
    # One wrapping row: on a phone the buttons flow several to a line instead of one per row.
    row = st.container(horizontal=True, gap="small")
    for path in samples:
        if row.button(path.stem, key=f"sample_{path.name}", width="content") and str(path) not in chosen:
            chosen.append(str(path))
    if chosen and row.button("Clear examples", key="samples_clear", icon=":material/close:", width="content"):
        chosen.clear()
    return [Upload(Path(p).name, Path(p).read_bytes()) for p in chosen if Path(p).is_file()]


def thumbnail(data: bytes) -> Image.Image:
    """The photo padded to a square, so every card in a row has the same height."""
    img = load_display_image(data, THUMBNAIL_SIDE)
    return ImageOps.pad(img, (THUMBNAIL_SIDE, THUMBNAIL_SIDE), color=THUMBNAIL_BACKGROUND)


def render_result_card(result: Prediction, item: Upload, predictor: Predictor) -> None:
    """One bordered card: thumbnail, label, confidence bar (or the file's error).

    Other features (e.g. explanations) can add to a card by extending this function.
    """
    with st.container(border=True):
        if not result.ok:
            st.markdown(f"**{code_span(item.name)}**")  # a name is shown as it is, never as Markdown
            st.error(plain(result.error), icon=":material/broken_image:")
            return
        if st.session_state.get(EXPLAIN_KEY):
            photo, heat = st.columns(2, gap="small")
            photo.image(thumbnail(item.data), width="stretch")
            try:
                model_key = model_version(Path(predictor.source)) if predictor.source else ("", 0.0, 0.0)
                heat.image(explanation(model_key, predictor, item.data), width="stretch", caption="Grad-CAM")
            except (CatdogError, ValueError, OSError) as exc:
                heat.caption(f"No explanation: {plain(exc)}")
        else:
            st.image(thumbnail(item.data), width="stretch")
        if result.not_pet:
            not_pet_ui(result)
        elif result.uncertain:
            st.markdown(f"### :{ANSWER_COLOURS[NOT_SURE][0]}[:material/help: {NOT_SURE.capitalize()}]")
            confidence_bar(result.confidence, sentence(best_guess(result)), None)
        else:
            st.markdown(f"### {class_badge(result.label, predictor.class_names)}")
            confidence_bar(result.confidence, f"{percent(result.confidence)} confident", class_hex(result.label, predictor.class_names))
        st.caption(f"{code_span(item.name)} · P({plain(predictor.class_names[1])}) {probability(result.p_dog)}")


def not_pet_ui(result: Prediction) -> None:
    """The "Not a cat or dog" verdict: its own colour and icon; the class it would be only in small print."""
    st.markdown(f"### :{ANSWER_COLOURS[NOT_PET][0]}[:material/block: {NOT_PET_TITLE}]")
    st.markdown(
        f'<div class="catdog-best-guess" style="font-size:0.8rem;color:#6B7280;margin:-4px 0 6px 0">'
        f"{html.escape(sentence(best_guess(result)))}</div>",
        unsafe_allow_html=True,
    )


def sentence(text: str) -> str:
    """`text` with a capital first letter, the rest as it is (a class name keeps its own case)."""
    return text[:1].upper() + text[1:]


def confidence_bar(value: float, text: str, hex_colour: str | None) -> None:
    """A confidence bar in the class's own colour (Not sure's grey when None); st.progress has one colour for all."""
    width = max(0.0, min(1.0, value)) * 100
    st.markdown(
        f'<div class="catdog-confidence" style="margin:-4px 0 6px 0">'
        f'<div style="font-size:0.9rem;margin-bottom:4px">{html.escape(text)}</div>'
        f'<div style="background:#E5E7EB;border-radius:6px;height:10px" role="progressbar" aria-valuenow="{width:.0f}" '
        f'aria-valuemin="0" aria-valuemax="100"><div style="width:{width:.1f}%;background:{hex_colour or ANSWER_COLOURS[NOT_SURE][1]};'
        f'height:10px;border-radius:6px"></div></div></div>',
        unsafe_allow_html=True,
    )


def results_ui(results: list[Prediction], items: list[Upload], predictor: Predictor) -> None:
    ok = sum(r.ok for r in results)
    counts = tally(results, predictor.class_names)  # each photo once: a "Not sure" one is not also a cat or a dog
    unreadable = counts.pop(UNREADABLE)
    # The Not-sure line's note goes right after its count ("not a cat or dog" may follow it).
    note = f" (under {predictor.uncertain_below:.0%} confident)"
    # Each count names a class, that is a folder name: shown through plain(), the note after it as written.
    parts = tally_text(counts).split(" · ")
    summary = " · ".join(plain(part) + (note if part.endswith(f" {NOT_SURE}") else "") for part in parts)
    st.subheader(f"Results: {ok} of {len(results)} classified")
    st.caption(summary + (f" · :{ANSWER_COLOURS[UNREADABLE][0]}[{unreadable} {UNREADABLE}]" if unreadable else ""))
    per_row = CARDS_PER_ROW // 2 if st.session_state.get(EXPLAIN_KEY) else CARDS_PER_ROW  # Grad-CAM needs the room
    for start in range(0, len(results), per_row):
        cols = st.columns(per_row)
        for col, result, item in zip(cols, results[start : start + per_row], items[start : start + per_row]):
            with col:
                render_result_card(result, item, predictor)
    if len(results) > 1:
        rows = prediction_rows(results, predictor.class_names)
        st.dataframe(
            [{**row, "confidence": shown(row["confidence"]) if row["confidence"] is not None else None} for row in rows],  # CSV: exact
            hide_index=True,
            key="predict_table",
            column_config={
                "answer": st.column_config.TextColumn(
                    "answer", help="What the card says: a class, 'not sure' or 'not a cat or dog' (or 'unreadable')."),
                "label": st.column_config.TextColumn(
                    "label", help="The model's best class, whatever the answer: with 'not a cat or dog', the class it would be."),
                "confidence": st.column_config.ProgressColumn("confidence", min_value=0.0, max_value=1.0, format="percent"),
                "openset_score": st.column_config.NumberColumn(
                    "openset_score", format="%.2f",
                    help="The 'not a cat or dog' check's score: above the check's threshold, the photo is flagged (not_pet)."),
            },
        )
        st.download_button(
            "Download results (CSV)", rows_csv(rows), "catdog-predictions.csv", "text/csv", icon=":material/download:", key="predict_csv"
        )


def main() -> None:
    use_app_navigation()
    st.title("Predict")
    st.caption("Drop one or many photos of cats and dogs. Each gets a label and how sure the model is.")
    path, slot = model_ui()
    if path is None:
        return
    items = inputs_ui()
    predictor = load_ui(path, slot)
    if predictor is None or not items:
        return
    st.toggle("Explain (Grad-CAM)", key=EXPLAIN_KEY, help="Colour the parts of each photo that drove the model's answer (red = most).")
    model_key = model_version(Path(predictor.source))  # a refitted check is a new version too
    with st.spinner(f"Classifying {len(items)} image(s)…"):
        results = classify(model_key, predictor, tuple(i.name for i in items), tuple(i.data for i in items))
    results_ui(results, items, predictor)


main()
