"""The repeated training pipeline: one iterator for every epoch, each epoch a full (seed, epoch) permutation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from catdog import data

pytestmark = pytest.mark.slow  # TensorFlow pipelines


def _indexed(n: int, size: int = 8) -> data.DecodedSet:
    """Image i is filled with the value i, so a batch tells which images it holds."""
    images = np.repeat(np.arange(n, dtype=np.uint8), size * size * 3).reshape(n, size, size, 3)
    return data.DecodedSet(images, (np.arange(n) % 2).astype(np.int32), [Path(f"{i}.png") for i in range(n)])


def _epochs(ds, steps: int, epochs: int) -> list[list[np.ndarray]]:
    """`epochs` epochs of `steps` batches each from one iterator, as image indices per batch."""
    it = iter(ds)
    return [[np.asarray(next(it)[0])[:, 0, 0, 0].astype(int) for _ in range(steps)] for _ in range(epochs)]


def test_each_epoch_is_a_full_permutation_in_its_steps_and_epochs_differ():
    n, batch = 21, 4
    steps = data.steps_per_epoch(n, batch)
    assert steps == 6
    ds = data.make_tf_dataset(_indexed(n), batch, shuffle=True, seed=5, repeat=True)
    epochs = _epochs(ds, steps, 3)
    for e, batches in enumerate(epochs):
        assert [len(b) for b in batches] == [4, 4, 4, 4, 4, 1]  # no batch runs into the next epoch
        order = np.concatenate(batches)
        assert sorted(order.tolist()) == list(range(n))
        np.testing.assert_array_equal(order, data.epoch_order(n, 5, e))
    assert len({tuple(np.concatenate(b)) for b in epochs}) == 3


def test_labels_travel_with_their_images():
    ds = data.make_tf_dataset(_indexed(10), 3, shuffle=True, seed=1, repeat=True)
    x, y = next(iter(ds))
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x)[:, 0, 0, 0] % 2)


def test_a_dataset_starting_at_epoch_2_repeats_an_uninterrupted_runs_epoch_2():
    n, batch = 13, 5
    steps = data.steps_per_epoch(n, batch)
    whole = _epochs(data.make_tf_dataset(_indexed(n), batch, shuffle=True, seed=9, repeat=True), steps, 3)
    resumed = _epochs(data.make_tf_dataset(_indexed(n), batch, shuffle=True, seed=9, repeat=True, first_epoch=2), steps, 1)
    np.testing.assert_array_equal(np.concatenate(resumed[0]), np.concatenate(whole[2]))


def test_unshuffled_repeat_keeps_file_order_every_epoch():
    ds = data.make_tf_dataset(_indexed(7), 3, repeat=True)
    for batches in _epochs(ds, data.steps_per_epoch(7, 3), 2):
        assert np.concatenate(batches).tolist() == list(range(7))


def test_epoch_order_depends_on_seed_and_epoch_only():
    np.testing.assert_array_equal(data.epoch_order(50, 3, 4), data.epoch_order(50, 3, 4))
    assert not np.array_equal(data.epoch_order(50, 3, 4), data.epoch_order(50, 3, 5))
    assert not np.array_equal(data.epoch_order(50, 3, 4), data.epoch_order(50, 4, 4))


@pytest.mark.parametrize("kwargs, word", [({"n_images": 0, "batch_size": 4}, "n_images"), ({"n_images": 5, "batch_size": 0}, "batch_size")])
def test_steps_per_epoch_refuses_empty_input(kwargs, word):
    with pytest.raises(ValueError, match=word):
        data.steps_per_epoch(**kwargs)


def test_first_epoch_must_not_be_negative():
    with pytest.raises(ValueError, match="first_epoch"):
        data.make_tf_dataset(_indexed(4), 2, repeat=True, first_epoch=-1)
