"""catdog report: one self-contained HTML file that headless Chromium renders with no network request."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from catdog.cli import main
from catdog.report import build_report, evaluation_folder, write_report


@pytest.fixture(scope="module")
def report_file(tmp_path_factory, tiny_run, tiny_dataset) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", str(tiny_run.path), "--out", str(out), "--data", str(tiny_dataset)]) == 0
    return out


@pytest.mark.slow
def test_the_report_is_one_file_with_everything_inline(report_file):
    text = report_file.read_text(encoding="utf-8")
    assert "Model and data" in text and "Training curves" in text and "Evaluation" in text and "Sample predictions" in text
    assert text.count("data:image/jpeg;base64,") >= 2  # photos and their Grad-CAM
    assert "plotly" in text and not re.search(r"<script[^>]+src=", text)  # plotly.js inlined, no script fetched
    markup = re.sub(r"<script.*?</script>", "", text, flags=re.S)  # plotly.js itself mentions URLs in strings
    assert not re.search(r"""(src|href)=["']https?://""", markup)


@pytest.mark.slow
@pytest.mark.browser
def test_headless_chromium_renders_it_with_no_network_request(chromium, report_file):
    requests: list[str] = []
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.route("**/*", lambda route: (requests.append(route.request.url), route.continue_()
                                          if route.request.url.startswith(("file:", "data:")) else route.abort()))
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(report_file.as_uri(), wait_until="load")
        page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=30_000)  # plotly.js ran: a chart is drawn
        assert page.locator(".js-plotly-plot").count() == 4  # accuracy, loss, confusion, reliability
        assert page.locator(".grid img").count() >= 2
        assert errors == []
    finally:
        page.close()
    assert [u for u in requests if u.startswith(("http:", "https:", "ws:", "wss:"))] == []


@pytest.mark.slow
def test_without_a_labelled_folder_the_report_rebuilds_the_runs_held_out_photos(tmp_path, tiny_run):
    from catdog.report import held_out_images

    assert evaluation_folder(tiny_run) is None  # it held out part of its training folder
    images, names, where = held_out_images(tiny_run)
    assert len(images) == 6 and names == ["cat", "dog"] and "held out of the training folder “data”" in where  # 25% of 24
    text = write_report(tiny_run, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Evaluation" in text and "Sample predictions" in text
    assert "The 6 labelled photos held out of the training folder “data” for validation" in text
    assert "labelled photos in the" not in text  # never '6 labelled photos in the 6 photos held out of …'


@pytest.mark.slow
def test_when_the_validation_photos_are_gone_the_report_says_how_to_add_some(tmp_path, tiny_run):
    import json
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(tiny_run.path, copy)
    cfg = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**cfg, "data": str(tmp_path / "moved-away")}))
    from catdog.runs import Run

    text = write_report(Run(copy), tmp_path / "r.html").read_text(encoding="utf-8")
    assert "--data DIR" in text and "Training curves" in text and "Sample predictions" not in text


def test_a_run_without_epochs_still_gives_a_page(tmp_path):
    from catdog.runs import Run

    (tmp_path / "config.json").write_text('{"model": "seed"}')
    assert "No epoch finished" in build_report(Run(tmp_path))


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 1920])
def test_every_chart_fits_its_column_when_the_file_is_first_opened(chromium, report_file, width):
    """No resize: plotly.js sizes a chart when its script runs, which is before the row's second column exists."""
    page = chromium.new_page(viewport={"width": width, "height": 900})
    try:
        page.goto(report_file.as_uri(), wait_until="load")
        page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=30_000)
        page.wait_for_timeout(500)  # any late relayout would have happened by now
        sizes = page.eval_on_selector_all(".fig", """figs => figs.map(f => ({
            column: f.getBoundingClientRect().width,
            chart: Math.max(...[...f.querySelectorAll('svg.main-svg')].map(s => s.getBoundingClientRect().width))}))""")
    finally:
        page.close()
    assert len(sizes) == 4
    for i, size in enumerate(sizes):
        assert 0 < size["chart"] <= size["column"] + 0.5, f"chart {i} at {width} px: {size}"
    assert sizes[0]["column"] < width / 2  # two charts a row: the columns really are half-width


def _openset_section(text: str) -> str:
    return text[text.index("<h2>Not a cat or dog</h2>"):].split("<h2>", 2)[1]


def test_the_report_gives_pets_wrongly_flagged_and_non_pets_flagged(tmp_path, run_with_check):
    from catdog.evaluate import evaluate, evaluate_not_pets
    from catdog.predict import Predictor
    from catdog.runs import Run

    run_dir, photos, negatives, check = run_with_check
    out = tmp_path / "report.html"
    assert main(["report", str(run_dir), "--out", str(out), "--data", str(photos), "--not-pets", str(negatives)]) == 0
    predictor = Predictor.load(run_dir)
    wrongly = evaluate(predictor, photos).open_set()
    flagged = evaluate_not_pets(predictor, negatives)
    section = _openset_section(out.read_text(encoding="utf-8"))
    assert f"<span>Pets wrongly flagged</span><b>{wrongly['share']:.1%}</b>" in section
    assert f"{wrongly['flagged']:,} of the {wrongly['n']:,} evaluation photos" in section
    assert f"<span>Non-pets flagged</span><b>{flagged['share']:.1%}</b>" in section and flagged["flagged"] > 0
    assert f"{flagged['flagged']} of 6 photos in {negatives}" in section
    assert f"threshold {check.threshold:.3g}" in section
    facts = build_report(Run(run_dir))
    assert re.search(r"<th>Not a cat or dog check</th><td>threshold [0-9.]+ · flags", facts)


def test_a_report_without_a_check_says_how_to_get_one(tmp_path, tiny_run, tiny_dataset):
    out = tmp_path / "report.html"
    assert main(["report", str(tiny_run.path), "--out", str(out), "--data", str(tiny_dataset), "--not-pets", str(tiny_dataset)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "no &ldquo;not a cat or dog&rdquo; check" in _openset_section(text)
    assert f"catdog openset fit {tiny_run.path}" in text
    assert "<th>Not a cat or dog check</th><td>none, so it answers cat or dog for any photo" in text


def _long_named_run(tmp_path: Path):
    """A run whose facts hold an unbroken 120-character path, with curves (no model: no TensorFlow)."""
    import json

    from catdog.runs import Run

    folder = tmp_path / "run"
    folder.mkdir()
    data = "/srv/photos/" + "a_very_long_folder_name_without_breaks" * 3
    (folder / "config.json").write_text(json.dumps({"model": "lite0", "image_size": 224, "data": data, "epochs": 3,
                                                     "class_names": ["cat", "dog"], "n_train": 40, "n_validation": 16}))
    (folder / "metrics.jsonl").write_text("".join(
        json.dumps({"epoch": e, "accuracy": 0.8, "val_accuracy": 0.75, "loss": 0.4, "val_loss": 0.5}) + "\n" for e in (1, 2, 3)))
    return Run(folder)


@pytest.mark.slow
@pytest.mark.browser
def test_on_a_390_px_phone_the_report_never_scrolls_sideways(chromium, tmp_path):
    from catdog.report import Sample

    long_name = "pants_" + "d03aa9778e854699b050c83390e8bd27" * 2 + ".jpg"
    samples = [Sample(long_name, "cat", "dog", 0.9, "data:image/jpeg;base64,AA==")]
    out = tmp_path / "report.html"
    out.write_text(build_report(_long_named_run(tmp_path), samples=samples), encoding="utf-8")
    page = chromium.new_page(viewport={"width": 390, "height": 800})
    try:
        page.goto(out.as_uri(), wait_until="load")
        page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=30_000)
        widths = page.evaluate("""() => ({page: document.documentElement.scrollWidth,
            facts: document.querySelector('table.facts').getBoundingClientRect().right,
            grid: document.querySelector('.grid').getBoundingClientRect().right})""")
    finally:
        page.close()
    assert widths["page"] <= 390, widths
    assert widths["facts"] <= 390 and widths["grid"] <= 390, widths


def test_the_right_answers_shown_take_each_class_in_turn(tmp_path):
    from types import SimpleNamespace

    from catdog.report import collect_samples
    from tests.fixtures import write_image

    files = [str(write_image(tmp_path / f"{i}.jpg")) for i in range(8)]
    # Six cats answered more confidently than any dog, two dogs; every answer right.
    evaluation = SimpleNamespace(class_names=["cat", "dog"], files=files, labels=[0] * 6 + [1] * 2,
                                 probs=[0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.9, 0.8], not_pet=None,
                                 threshold=0.5, uncertain_below=0.6)
    samples = collect_samples(None, evaluation, correct=4, gradcam=False)
    assert [s.true for s in samples] == ["cat", "dog", "cat", "dog"]
    assert [s.name for s in samples] == ["0.jpg", "6.jpg", "1.jpg", "7.jpg"]  # the most confident of each class first
