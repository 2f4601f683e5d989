"""Predict page (AppTest): uploads, a corrupt file, the camera, examples, no model."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from catdog import predict
from catdog.verdicts import ANSWER_COLOURS, NOT_PET, NOT_SURE, percent, tally, verdict
from tests.fixtures import CAT_COLOUR, DOG_COLOUR, REPO, image_bytes, shown, write_image

TIMEOUT = 120  # the first run loads TensorFlow and the model


pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_bundled_model")]  # AppTest with TensorFlow; no bundled model


@pytest.fixture
def active_model(home, tiny_run):
    predict.set_active_model(tiny_run.path)
    return tiny_run


def open_predict_page() -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT).run()
    return at.switch_page("pages/predict.py").run()


def cards(at: AppTest) -> list[str]:
    """The label headings of the result cards."""
    return [m.value for m in at.markdown if m.value.startswith("### ")]


def test_without_a_model_the_page_says_how_to_get_one(home):
    at = open_predict_page()
    assert not at.exception
    assert "No trained model yet" in at.info[0].value and "Train" in at.info[0].value
    assert not at.file_uploader


def test_the_drop_zone_is_drawn_before_the_model_loads_and_a_broken_model_is_said_under_the_picker(home, tmp_path):
    import json
    import zipfile

    from catdog.model_files import active_model_file

    broken = tmp_path / "broken-run"
    broken.mkdir()
    with zipfile.ZipFile(broken / "model.keras", "w") as zf:  # a .keras archive by its look, that no Keras loads
        zf.writestr("config.json", "{}")
    active_model_file().parent.mkdir(parents=True, exist_ok=True)
    active_model_file().write_text(json.dumps({"model": str(broken / "model.keras")}))  # as if it broke after `catdog use`
    at = open_predict_page()
    assert not at.exception, at.exception
    assert at.file_uploader and at.selectbox(key="predict_model")  # the page is usable: another model can be picked
    assert any("Cannot use this model" in e.value for e in at.error)


def test_upload_of_a_photo_and_a_corrupt_file_gives_a_card_each(active_model):
    at = open_predict_page()
    assert "tiny-seed" in at.selectbox(key="predict_model").format_func(at.selectbox(key="predict_model").value)
    at.file_uploader(key="predict_files").set_value([
        ("dog.jpg", image_bytes(colour=DOG_COLOUR, seed=5), "image/jpeg"),
        ("broken.jpg", b"\xff\xd8\xff\xe0 this is not really a jpeg", "image/jpeg"),
    ]).run()
    assert not at.exception
    labels = cards(at)
    assert len(labels) == 1 and re.search(r"\b(Cat|Dog|Not sure)\b", labels[0])  # a tiny model is often unsure
    assert len(at.error) == 1 and ("corrupt" in at.error[0].value or "not a supported image" in at.error[0].value)
    assert "1 of 2 classified" in at.subheader[0].value
    table = at.dataframe[0].value
    assert list(table["file"]) == ["dog.jpg", "broken.jpg"]
    good, bad = table.iloc[0], table.iloc[1]
    assert 0.5 <= good["confidence"] <= 1.0 and good["label"] in ("cat", "dog") and not good["error"]
    assert bad["error"] and not bad["label"]
    assert at.get("download_button")


def test_page_predictions_match_the_predictor(active_model):
    photos = [("cat.png", image_bytes(colour=CAT_COLOUR, seed=3, fmt="PNG"), "image/png"),
              ("dog.jpg", image_bytes(colour=DOG_COLOUR, seed=4), "image/jpeg")]
    expected = predict.Predictor.load(active_model.path).predict([p[1] for p in photos], [p[0] for p in photos])
    at = open_predict_page()
    at.file_uploader(key="predict_files").set_value(photos).run()
    table = at.dataframe[0].value
    assert list(table["label"]) == [r.label for r in expected]
    assert list(table["p_dog"]) == pytest.approx([r.p_dog for r in expected], abs=1e-5)


def test_camera_snapshot_is_classified(active_model):
    at = open_predict_page()
    assert not at.camera_input  # the camera asks for permission only when switched on
    at.toggle(key="predict_camera_on").set_value(True).run()
    at.camera_input(key="predict_camera").upload("shot.jpg", image_bytes(colour=CAT_COLOUR, seed=8)).run()
    assert not at.exception
    assert len(cards(at)) == 1
    assert any("camera snapshot" in c.value for c in at.caption)


def test_example_buttons_add_the_bundled_sample_photos(active_model, tmp_path):
    write_image(tmp_path / "assets" / "samples" / "cat_1.jpg", colour=CAT_COLOUR)
    write_image(tmp_path / "assets" / "samples" / "dog_1.jpg", colour=DOG_COLOUR)
    at = open_predict_page()
    at.button(key="sample_dog_1.jpg").click().run()
    assert len(cards(at)) == 1
    at.button(key="sample_cat_1.jpg").click().run()
    assert len(cards(at)) == 2
    at.button(key="samples_clear").click().run()
    assert cards(at) == []


def test_explain_toggle_adds_a_grad_cam_overlay_to_each_good_card(active_model):
    at = open_predict_page()
    at.file_uploader(key="predict_files").set_value([
        ("dog.jpg", image_bytes(colour=DOG_COLOUR, seed=5), "image/jpeg"),
        ("broken.jpg", b"not an image", "image/jpeg"),
    ]).run()
    assert len(at.get("image")) == 1  # off by default: the thumbnail only
    at.toggle(key="predict_explain").set_value(True).run()
    assert not at.exception
    images = at.get("image")
    assert len(images) == 2 and "Grad-CAM" in str(images[1].proto)
    assert len(cards(at)) == 1 and len(at.error) == 1  # the bad file still gets its error card only
    at.toggle(key="predict_explain").set_value(False).run()
    assert len(at.get("image")) == 1


def test_drops_over_the_file_limit_are_capped_with_a_warning(active_model, monkeypatch):
    monkeypatch.setenv("CATDOG_MAX_PREDICT_FILES", "2")
    at = open_predict_page()
    at.file_uploader(key="predict_files").set_value([
        (f"p{i}.jpg", image_bytes(colour=CAT_COLOUR, seed=i), "image/jpeg") for i in range(3)
    ]).run()
    assert not at.exception
    assert any("only the first 2" in w.value for w in at.warning)
    assert list(at.dataframe[0].value["file"]) == ["p0.jpg", "p1.jpg"]


NOT_PET_CARD = "### :red[:material/block: Not a cat or dog]"


@pytest.fixture
def model_with_check(home, run_with_check):
    predict.set_active_model(run_with_check[0])
    return run_with_check


def far_and_near_photos() -> list[tuple[str, bytes, str]]:
    """A bright grey noise photo (far from the coloured training photos) and a cat-coloured one."""
    return [("cup.png", image_bytes(colour=(250, 250, 250), seed=600, fmt="PNG"), "image/png"),
            ("cat.jpg", image_bytes(colour=CAT_COLOUR, seed=3), "image/jpeg")]


def test_a_photo_the_check_flags_gets_a_not_a_cat_or_dog_card_with_the_best_guess(model_with_check):
    photos = far_and_near_photos()
    expected = predict.Predictor.load(model_with_check[0]).predict([p[1] for p in photos], [p[0] for p in photos])
    assert expected[0].not_pet  # the premise: the check flags the noise photo
    at = open_predict_page()
    assert any("says *Not a cat or dog*" in c.value for c in at.caption)
    at.file_uploader(key="predict_files").set_value(photos).run()
    assert not at.exception
    headings = cards(at)
    assert headings[0] == NOT_PET_CARD
    assert [h == NOT_PET_CARD for h in headings] == [r.not_pet for r in expected]
    guess = expected[0]
    assert any(f">If it were a pet: {guess.label}, {percent(guess.confidence)}</div>" in m.value for m in at.markdown)
    table = at.dataframe[0].value
    assert list(table["answer"]) == [verdict(r) for r in expected] and table["answer"][0] == "not a cat or dog"
    assert list(table["not_pet"]) == [r.not_pet for r in expected]
    assert list(table["openset_score"]) == pytest.approx([r.openset_score for r in expected], rel=1e-4, abs=1e-3)
    assert list(table["label"]) == [r.label for r in expected]  # the best guess stays in the label column
    summary = next(c.value for c in at.caption if "not a cat or dog" in c.value)
    counts = tally(expected, ["cat", "dog"])
    assert summary.startswith(f"{counts['cat']} cat · {counts['dog']} dog")
    assert "1 not a cat or dog" in summary and sum(counts.values()) == 2  # counted once: not also a cat, a dog or not sure


def test_without_a_check_the_same_photo_is_answered_cat_or_dog(active_model):
    at = open_predict_page()
    assert any("no *Not a cat or dog* check" in c.value for c in at.caption)
    at.file_uploader(key="predict_files").set_value(far_and_near_photos()).run()
    assert not at.exception
    assert NOT_PET_CARD not in cards(at) and len(cards(at)) == 2
    table = at.dataframe[0].value
    assert list(table["not_pet"]) == [False, False] and table["openset_score"].isna().all()


def test_the_summary_counts_each_photo_once(home, tiny_run, tmp_path):
    import json
    import shutil

    unsure = tmp_path / "unsure-run"
    shutil.copytree(tiny_run.path, unsure)
    cfg = json.loads((unsure / "config.json").read_text())
    (unsure / "config.json").write_text(json.dumps({**cfg, "calibration": {**cfg.get("calibration", {}), "uncertain_below": 1.0}}))
    predict.set_active_model(unsure)
    photos = [(f"p{i}.jpg", image_bytes(colour=(CAT_COLOUR, DOG_COLOUR)[i % 2], seed=i), "image/jpeg") for i in range(3)]
    at = open_predict_page()
    at.file_uploader(key="predict_files").set_value(photos).run()
    assert not at.exception
    summary = next(c.value for c in at.caption if "not sure" in c.value)
    assert summary.startswith("0 cat · 0 dog · 3 not sure"), summary  # not also counted as cats or dogs


def test_the_summary_counts_a_flagged_photo_once_and_keeps_the_not_sure_note_on_its_count(home, run_with_check, tmp_path):
    import json
    import shutil

    unsure = tmp_path / "unsure-checked"
    shutil.copytree(run_with_check[0], unsure)
    cfg = json.loads((unsure / "config.json").read_text())
    (unsure / "config.json").write_text(json.dumps({**cfg, "calibration": {**cfg.get("calibration", {}), "uncertain_below": 1.0}}))
    predict.set_active_model(unsure)
    photos = far_and_near_photos()
    expected = predict.Predictor.load(unsure).predict([p[1] for p in photos], [p[0] for p in photos])
    assert [(r.not_pet, r.uncertain) for r in expected] == [(True, True), (False, True)]  # the premise
    at = open_predict_page()
    at.file_uploader(key="predict_files").set_value(photos).run()
    assert not at.exception
    summary = next(c.value for c in at.caption if "not a cat or dog" in c.value)
    assert summary == "0 cat · 0 dog · 1 not sure (under 100% confident) · 1 not a cat or dog", summary


def test_badges_take_their_colours_from_the_one_table_and_cat_is_no_longer_orange():
    from pages._ui import class_badge, class_hex

    assert class_badge("cat", ["cat", "dog"]).startswith(":yellow[") and class_badge("dog", ["cat", "dog"]).startswith(":blue[")
    assert class_hex("cat", ["cat", "dog"]) == "#DEA816"
    assert NOT_PET_CARD.startswith(f"### :{ANSWER_COLOURS[NOT_PET][0]}[") and ANSWER_COLOURS[NOT_SURE][0] == "gray"


def test_a_class_named_as_markdown_reads_as_typed_in_its_badge():
    """Class names are folder names: the coloured badge must not let one close it and add a link or another colour."""
    from pages._ui import class_badge

    evil = "dogs] [click me](https:evil.example) :red[RED"
    badge = class_badge(evil, ["cats", evil])
    assert badge.count("]") == 1 and badge.endswith("]") and "(https" not in badge, badge
    assert shown(badge).endswith(f"{evil.capitalize()}]"), shown(badge)
