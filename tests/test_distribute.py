"""tf.distribute strategies: names, TF_CONFIG, and a mirrored training on 2 logical CPUs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from catdog.distribute import global_batch_size, resolve_strategy_name, tf_config_workers
from tests.fixtures import REPO, make_class_folders

pytestmark = pytest.mark.slow  # TensorFlow models or trainings; `pytest -m "not slow"` leaves them out


def test_auto_picks_multiworker_when_tf_config_lists_a_cluster():
    env = {"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}})}
    assert resolve_strategy_name("auto", gpus=0, env=env) == "multiworker"


def test_auto_picks_mirrored_for_two_gpus_and_none_for_a_cpu():
    assert resolve_strategy_name("auto", gpus=2, env={}) == "mirrored"
    assert resolve_strategy_name("auto", gpus=1, env={}) == "none"
    assert resolve_strategy_name("auto", gpus=0, env={}) == "none"


def test_unknown_strategy_and_bad_tf_config_are_refused():
    with pytest.raises(ValueError, match="strategy must be one of"):
        resolve_strategy_name("tpu", gpus=0, env={})
    with pytest.raises(ValueError, match="TF_CONFIG"):
        tf_config_workers({"TF_CONFIG": "{not json"})


def test_global_batch_is_per_replica_batch_times_replicas():
    class TwoReplicas:
        num_replicas_in_sync = 2

    assert global_batch_size(8, TwoReplicas()) == 16


_MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from catdog.distribute import global_batch_size, make_strategy
    from catdog.training import TrainConfig, train
    strategy = make_strategy("mirrored")
    cfg = TrainConfig(data=sys.argv[1], model="seed", epochs=1, batch_size=4, image_size=32,
                      val_split=0.25, precision="float32", strategy="mirrored", checkpoint=False)
    run = train(cfg, runs_dir=sys.argv[2], run_id="mirrored", verbose=0, lock=False, handle_signals=False)
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "global": global_batch_size(4, strategy),
                      "state": run.status()["state"]}))
    """
)


def test_mirrored_training_runs_on_two_logical_cpu_devices(tmp_path):
    data = make_class_folders(tmp_path / "data", n=8)
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    proc = subprocess.run(
        [sys.executable, "-c", _MIRRORED_SCRIPT, str(data), str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"replicas": 2, "global": 8, "state": "finished"}
    assert "2 replicas, global batch 8" in proc.stdout
    assert (tmp_path / "runs" / "mirrored" / "model.keras").exists()
