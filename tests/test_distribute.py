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


@pytest.mark.slow
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


def _free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.mark.slow
def test_two_multiworker_workers_on_localhost_train_one_model(tmp_path):
    data = make_class_folders(tmp_path / "data", n=8, size=(40, 40))
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1", TF_CONFIG=json.dumps(tf_config))
        cmd = [sys.executable, "-m", "catdog", "train", "--data", str(data), "--model", "seed", "--epochs", "2",
               "--batch-size", "4", "--image-size", "32", "--val-split", "0.25", "--precision", "float32",
               "--calibration-split", "0", "--strategy", "multiworker", "--runs-dir", str(tmp_path / f"runs{index}"),
               "--run-id", "cluster"]
        log = open(tmp_path / f"worker{index}.log", "w")
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO))
    try:
        codes = [p.wait(timeout=400) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], "\n\n".join(log[-3000:] for log in logs)
    assert all("2 replicas, global batch 8" in log for log in logs)
    assert all("decoded 6 train images" in log for log in logs)  # each worker decodes only its half of the 12
    chief = tmp_path / "runs0" / "cluster"
    assert json.loads((chief / "status.json").read_text())["state"] == "finished"
    epochs = [json.loads(line)["epoch"] for line in (chief / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]
    for name in ("model.keras", "config.json", "model.onnx", "accuracy.png", "loss.png"):
        assert (chief / name).is_file(), name


def test_worker_shard_numbers_the_chief_first_and_ignores_other_strategies():
    from catdog.distribute import worker_shard

    def env(task, chief=False):
        cluster = {"worker": ["a:1", "b:2"], **({"chief": ["c:3"]} if chief else {})}
        return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": task})}

    assert worker_shard("multiworker", env({"type": "worker", "index": 1})) == (1, 2)
    assert worker_shard("auto", env({"type": "worker", "index": 0})) == (0, 2)
    assert worker_shard("multiworker", env({"type": "chief", "index": 0}, chief=True)) == (0, 3)
    assert worker_shard("multiworker", env({"type": "worker", "index": 1}, chief=True)) == (2, 3)
    assert worker_shard("mirrored", env({"type": "worker", "index": 1})) == (0, 1)
    assert worker_shard("multiworker", {}) == (0, 1)
    with pytest.raises(ValueError, match="TF_CONFIG task"):
        worker_shard("multiworker", env({"type": "worker", "index": 5}))


def test_shards_are_disjoint_equal_and_cover_all_but_the_remainder():
    from catdog.data import ImageSet, shard

    images = ImageSet([f"f{i}.jpg" for i in range(11)], [i % 2 for i in range(11)])
    shares = [shard(images, i, 3) for i in range(3)]
    assert [len(s) for s in shares] == [3, 3, 3]
    paths = [p for s in shares for p in s.paths]
    assert len(set(paths)) == 9 and set(paths) <= set(images.paths)
    assert shard(images, 0, 1) is images
    with pytest.raises(ValueError, match="index must be in"):
        shard(images, 3, 3)
