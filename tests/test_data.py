from __future__ import annotations

import numpy as np
import pytest

from catdog import data
from catdog.errors import DatasetError
from tests.fixtures import make_class_folders, write_image


def test_salader_layout_uses_train_and_test(tmp_path):
    make_class_folders(tmp_path / "train", n=4)
    make_class_folders(tmp_path / "test", n=2)
    layout = data.discover(tmp_path)
    assert layout.kind == "split"
    assert layout.class_names == ["cat", "dog"]
    assert len(layout.train) == 8 and len(layout.validation) == 4
    assert layout.train.counts(layout.class_names) == {"cat": 4, "dog": 4}
    assert all(("cats" in p.parts) == (label == 0) for p, label in zip(layout.train.paths, layout.train.labels))


def test_plain_class_folders_split_stratified_and_seeded(tmp_path):
    make_class_folders(tmp_path, n=10)
    layout = data.discover(tmp_path)
    assert layout.kind == "folders" and layout.validation is None
    train, val = data.split(layout.train, 0.2, seed=1)
    again, _ = data.split(layout.train, 0.2, seed=1)
    assert train.paths == again.paths
    assert val.counts(layout.class_names) == {"cat": 2, "dog": 2}
    assert not set(train.paths) & set(val.paths)


def test_petimages_capitalised_folders_map_to_cat_and_dog(tmp_path):
    make_class_folders(tmp_path, n=2, names=("Cat", "Dog"))
    layout = data.discover(tmp_path)
    assert layout.class_names == ["cat", "dog"]
    assert layout.train.labels == [0, 0, 1, 1]


def test_kaggle_flat_layout_reads_labels_from_names(tmp_path):
    for i in range(3):
        write_image(tmp_path / "train" / f"cat.{i}.jpg")
        write_image(tmp_path / "train" / f"dog.{i + 10}.jpg")
    layout = data.discover(tmp_path)
    assert layout.kind == "flat"
    labels = {p.name: label for p, label in zip(layout.train.paths, layout.train.labels)}
    assert labels["cat.0.jpg"] == 0 and labels["dog.12.jpg"] == 1


def test_other_binary_folder_names_are_kept_alphabetically(tmp_path):
    make_class_folders(tmp_path, n=2, names=("wolf", "fox"))
    layout = data.discover(tmp_path)
    assert layout.class_names == ["fox", "wolf"]


def test_corrupt_files_are_listed_and_skipped(tmp_path):
    make_class_folders(tmp_path, n=3)
    (tmp_path / "cats" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 garbage")
    (tmp_path / "dogs" / "empty.jpg").write_bytes(b"")
    (tmp_path / "dogs" / "notes.txt").write_text("hello")
    layout = data.discover(tmp_path)
    decoded = data.decode_images(layout.train, 32)
    assert len(decoded) == 6
    reasons = {p.name: r for p, r in decoded.skipped}
    assert set(reasons) == {"broken.jpg", "empty.jpg", "notes.txt"}
    assert "empty" in reasons["empty.jpg"]
    batches = list(data.make_tf_dataset(decoded, batch_size=4, shuffle=True).as_numpy_iterator())
    assert sum(len(y) for _, y in batches) == 6
    assert batches[0][0].dtype == np.uint8 and batches[0][0].shape[1:] == (32, 32, 3)


def test_disk_cache_is_reused_and_invalidated_when_files_change(tmp_path, monkeypatch):
    monkeypatch.setenv("CATDOG_CACHE_DIR", str(tmp_path / "cache"))
    make_class_folders(tmp_path / "d", n=2)
    layout = data.discover(tmp_path / "d")
    first = data.decode_images(layout.train, 16, cache="disk")
    second = data.decode_images(layout.train, 16, cache="disk")
    assert first.cache_path == second.cache_path and first.cache_path.exists()
    np.testing.assert_array_equal(np.asarray(first.images), np.asarray(second.images))
    write_image(layout.train.paths[0], colour=(1, 2, 3), seed=99)
    third = data.decode_images(data.discover(tmp_path / "d").train, 16, cache="disk")
    assert third.cache_path != first.cache_path


@pytest.mark.parametrize(
    "setup,message",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "no images found"),
        (lambda p: make_class_folders(p, n=2, names=("cats",)), "only one class"),
        (lambda p: (p.parent.mkdir(exist_ok=True), p.write_text("x")), "not a folder"),
    ],
    ids=["missing", "empty", "one-class", "a-file"],
)
def test_bad_dataset_folders_get_clear_messages(tmp_path, setup, message):
    target = tmp_path / "ds"
    setup(target)
    with pytest.raises(DatasetError, match=message):
        data.discover(target)


def test_three_class_folders_are_refused(tmp_path):
    make_class_folders(tmp_path, n=1, names=("cats", "dogs"))
    write_image(tmp_path / "birds" / "b.jpg")
    with pytest.raises(DatasetError, match="exactly two"):
        data.discover(tmp_path)


def test_a_photo_listed_twice_through_a_link_is_refused(tmp_path):
    from catdog.training import refuse_overlaps

    root = make_class_folders(tmp_path / "photos", n=3)
    (root / "cats" / "alias.jpg").symlink_to(root / "cats" / "cat000.jpg")  # a link may stay inside its class folder
    with pytest.raises(DatasetError, match="both hold"):
        refuse_overlaps(data.discover_all([root]))
    (root / "cats" / "alias.jpg").unlink()
    refuse_overlaps(data.discover_all([root, make_class_folders(tmp_path / "more", n=2)]))  # photos of their own: fine
