"""Data page: get a dataset in (Kaggle, zip or folder upload, local folder), check it, pick it.

The report shows class counts, the split, image sizes, duplicates (and train/validation
leakage) and unreadable files, which can be moved to a quarantine folder.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from PIL import Image

from catdog import kaggle, sources
from catdog.archive import UnpackBudget
from catdog.errors import CatdogError
from catdog.inspect import DatasetReport, inspect_dataset, quarantine
from catdog.preprocess import display_square
from pages._nav import use_app_navigation
from pages._text import code_span, plain
from pages._ui import confirm_delete_ui

FOLDER_KEY = "data_folder"
PICK_KEY = "data_pick"
REMOVE_KEY = "data_confirm_remove"
BUDGET_KEY = "data_unpack_budget"
SAMPLES_PER_CLASS = 6
SAMPLE_SIDE = 220  # px; shown at 110 (sharp on a 2x screen)


@st.cache_data(ttl=600, max_entries=8, show_spinner=False)
def cached_report(folder: str, signature: tuple) -> DatasetReport:
    """The dataset report; `signature` (`sources.folder_signature`) in the key picks up photos added, removed
    or renamed, and the ttl a photo replaced in place (each file's checks are cached on disk by its size and time)."""
    return inspect_dataset(folder, samples_per_class=SAMPLES_PER_CLASS)


def _choose(path: Path) -> None:
    """Select a dataset just brought in (the picker below is drawn later in the same run)."""
    st.session_state[FOLDER_KEY] = str(path)
    st.session_state[PICK_KEY] = str(path)


def upload_limit_text(session_bytes: int) -> str:
    """What the server accepts per upload (server.maxUploadSize) and how far a zip, and one session's zips, may expand."""
    from catdog.archive import MAX_TOTAL_BYTES

    per_file = st.get_option("server.maxUploadSize")
    return (f"Uploads: up to {per_file:,} MB per file, a zip included (the server's `server.maxUploadSize`). "
            f"A zip may expand to {MAX_TOTAL_BYTES / 1024**3:.0f} GB, and all of one session's zips "
            f"to {session_bytes / 1024**3:.3g} GB.")


def kaggle_ui() -> None:
    """Credentials (upload kaggle.json) and the download button."""
    source = kaggle.credential_source()
    st.caption(f"Credentials: {plain(source)}" if source else "No Kaggle credentials found yet.")
    token = st.file_uploader("kaggle.json (from kaggle.com → Settings → API)", type=["json"], key="kaggle_json")
    if token is not None and st.button("Save credentials", key="save_kaggle"):
        try:
            path = kaggle.save_kaggle_json(token.getvalue())
            st.success(f"Saved to {code_span(path)} (readable only by you).")
        except CatdogError as exc:
            st.error(plain(exc))
    slug = st.text_input("Dataset or competition", value=kaggle.DEFAULT_DATASET, key="kaggle_slug")
    is_competition = st.checkbox("It is a competition (e.g. dogs-vs-cats)", key="kaggle_competition")
    if st.button("Download", key="kaggle_download", type="primary"):
        try:
            with st.spinner(f"Downloading {slug} …"):
                path = kaggle.download(dataset=None if is_competition else slug, competition=slug if is_competition else None)
        except CatdogError as exc:
            st.error(plain(exc))
            return
        _choose(path)
        st.success(f"Downloaded to {code_span(path)}.")


# Streamlit draws a chosen .zip with a plain folder icon; this uploader takes zips only, so its chip shows an archive
# (Streamlit's own Material Symbols font, scoped to the zip uploader by its key's class).
ZIP_CHIP_CSS = """<style>
.st-key-data_zip [data-testid="stFileChip"] svg { display: none; }
.st-key-data_zip [data-testid="stFileChip"] > div:first-child::before {
  content: "folder_zip"; font-family: "Material Symbols Rounded"; font-size: 1.25rem; line-height: 1;
  font-feature-settings: "liga"; -webkit-font-smoothing: antialiased; }
</style>"""


def upload_ui() -> None:
    """A zip, or a whole folder, uploaded from the browser."""
    st.html(ZIP_CHIP_CSS)
    try:
        budget = _unpack_budget()
    except CatdogError as exc:  # CATDOG_SESSION_UNPACK_GB is not a size: the server's setting to fix
        st.error(plain(exc))
        return
    st.caption(upload_limit_text(budget.limit) + " Bigger datasets: the **Local folder** tab or `catdog download`.")
    archive = st.file_uploader("A zip of your photos (cats/ and dogs/ folders inside)", type=["zip"], key="data_zip")
    if archive is not None and st.button("Import zip", key="import_zip"):
        refused: list[tuple[str, str]] = []
        try:
            _choose(sources.import_zip(archive, archive.name, refused=refused, budget=budget))
            st.success(f"Imported to {code_span(st.session_state[FOLDER_KEY])}.")
        except CatdogError as exc:
            st.error(plain(exc))
        _show_refused(refused, "zip entries")
    files = st.file_uploader("Or a folder", accept_multiple_files="directory", key="data_dir")
    if files and st.button("Import folder", key="import_dir"):
        refused: list[tuple[str, str]] = []
        try:
            _choose(sources.import_files([(f.name, f.getvalue()) for f in files], "upload", refused=refused))
            st.success(f"Imported {len(files) - len(refused):,} files to {code_span(st.session_state[FOLDER_KEY])}.")
        except CatdogError as exc:
            st.error(plain(exc))
        _show_refused(refused, "files")


def _show_refused(refused: list[tuple[str, str]], what: str) -> None:
    """One line per file that was left out, with the reason (names as code: never drawn as Markdown)."""
    if refused:
        lines = "\n".join(f"- {code_span(repr(name[:200]))}: {plain(why)}" for name, why in refused[:50])
        more = f"\n- … and {len(refused) - 50} more" if len(refused) > 50 else ""
        st.warning(f"{len(refused)} {what} could not be stored and were left out:\n{lines}{more}")


def _unpack_budget() -> UnpackBudget:
    """What this browser session may still unpack, over all its zips."""
    return st.session_state.setdefault(BUDGET_KEY, UnpackBudget())


def local_ui() -> None:
    """A folder on this server (desktop use); off when CATDOG_ALLOW_LOCAL_FOLDERS=0."""
    try:
        allowed = sources.local_folders_allowed()
    except CatdogError as exc:  # CATDOG_ALLOW_LOCAL_FOLDERS is neither on nor off
        st.error(plain(exc))
        return
    if not allowed:
        st.info("Local folders are turned off on this server. Upload a zip instead.")
        return
    path = st.text_input("Folder on this computer", key="local_path", placeholder="/path/to/photos")
    if path and st.button("Use this folder", key="use_local"):
        try:
            _choose(sources.resolve_local_folder(path))
        except CatdogError as exc:
            st.error(plain(exc))


def pick_ui() -> str | None:
    """The dataset to report on: the last one brought in, or one under CATDOG_HOME/datasets."""
    known = [str(p) for p in sources.list_datasets()]
    current = st.session_state.get(FOLDER_KEY) or (str(sources.active_dataset() or "") or None)
    options = sorted(set(known) | ({current} if current else set()))
    if not options:
        st.info("No dataset yet: download one, upload a zip, or pick a local folder above.")
        return None
    if st.session_state.get(PICK_KEY) not in options:
        st.session_state.pop(PICK_KEY, None)
    return st.selectbox("Dataset", options, index=options.index(current) if current in options else 0, key=PICK_KEY)


def remove_ui(folder: str) -> None:
    """Remove a dataset catdog stored (uploads, downloads), after a confirmation; local folders are never deleted."""
    from catdog import config

    if Path(folder).resolve().parent != config.datasets_dir().resolve():
        return
    if st.button("Remove this dataset", icon=":material/delete:", key="data_remove"):
        st.session_state[REMOVE_KEY] = folder
    if st.session_state.get(REMOVE_KEY) != folder:
        return

    def remove() -> None:
        sources.remove_dataset(folder)
        cached_report.clear()

    question = f"Delete {code_span(folder)} and every photo in it?"
    confirm_delete_ui(question, "data_remove", REMOVE_KEY, remove, "remove", (FOLDER_KEY, PICK_KEY))


def report_ui(folder: str) -> None:
    """Counts, sizes, duplicates, bad files, the sample grid, and the two actions."""
    try:
        with st.spinner("Checking every image …"):
            report = cached_report(folder, sources.folder_signature([folder]))
    except (CatdogError, OSError) as exc:
        st.error(plain(exc))
        return
    # One column per figure, however many splits the dataset has (no empty or shared columns).
    figures = [(f"{part} images", f"{sum(counts.values()):,}", ", ".join(f"{n:,} {k}" for k, n in counts.items()))
               for part, counts in report.counts.items()]
    figures += [("duplicate groups", f"{len(report.duplicates):,}", f"{len(report.leaks)} across train and validation (leakage)"),
                ("unreadable files", f"{len(report.corrupt):,}", None)]
    for col, (label, value, help_text) in zip(st.columns(len(figures)), figures):
        col.metric(label, value, help=help_text, border=True)
    st.dataframe([{"split": p, **c} for p, c in report.counts.items()], hide_index=True)
    if report.size_stats:
        s = report.size_stats
        st.caption(f"Image sizes: width {s['min_width']}–{s['max_width']} (median {s['median_width']}), "
                   f"height {s['min_height']}–{s['max_height']} (median {s['median_height']}); most common {s['most_common']}.")
    if report.leaks:
        st.warning(f"{len(report.leaks):,} images are in both train and validation; validation accuracy will be too high.")
    if report.corrupt:
        st.dataframe([{"file": f, "reason": r} for f, r in report.corrupt], hide_index=True)
        if st.button(f"Move {len(report.corrupt)} bad files to quarantine", key="quarantine"):
            moved = quarantine(report)
            cached_report.clear()
            st.success(f"Moved {len(moved):,} files to {code_span(str(report.root) + '.quarantine')} (nothing deleted).")
    for name, paths in report.samples.items():
        st.markdown(f"**{code_span(name)}**")  # a class folder named by whoever made the zip
        thumbs = [t for t in map(square_thumbnail, paths) if t is not None]
        if thumbs:
            st.image(thumbs, width=110)
    if st.button("Use this dataset for training", key="set_active", type="primary"):
        sources.set_active_dataset(report.root)
        st.success("The Train page will start with this dataset.")
    remove_ui(folder)


def square_thumbnail(path: str | Path) -> Image.Image | None:
    """The photo cropped to its centre square, so a row of samples has one height; None if unreadable."""
    try:
        return display_square(path, SAMPLE_SIDE)
    except (CatdogError, OSError):
        return None


def main() -> None:
    use_app_navigation()
    st.title("Data")
    kaggle_tab, upload_tab, local_tab = st.tabs(["Kaggle", "Upload", "Local folder"])
    with kaggle_tab:
        kaggle_ui()
    with upload_tab:
        upload_ui()
    with local_tab:
        local_ui()
    st.divider()
    folder = pick_ui()
    if folder:
        report_ui(folder)


main()
