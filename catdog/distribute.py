"""`--strategy auto|none|mirrored|multiworker`: pick a `tf.distribute` strategy.

* none: the default strategy (one device).
* mirrored: `MirroredStrategy` over this machine's GPUs (or its logical CPU
  devices when there is no GPU), one model replica per device.
* multiworker: `MultiWorkerMirroredStrategy`; every machine runs the same
  command with its own `TF_CONFIG` (see the README).
* auto: multiworker when `TF_CONFIG` names a cluster, mirrored with two or
  more GPUs, none otherwise.

`--batch-size` is per replica: the global batch is batch x replicas.
Under multiworker each worker decodes only its own share of the training photos
(`worker_shard`, `catdog.data.shard`); validation photos are read by every worker.
"""

from __future__ import annotations

import json
import os

STRATEGIES = ("auto", "none", "mirrored", "multiworker")


def tf_config_workers(env: dict | None = None) -> int:
    """How many workers `TF_CONFIG` lists (0 when it is unset).

    Raises:
        ValueError: TF_CONFIG is not valid JSON, has no cluster, or lists its
            workers other than as a list of "host:port" strings.
    """
    raw = (os.environ if env is None else env).get("TF_CONFIG", "").strip()
    if not raw:
        return 0
    try:
        cluster = json.loads(raw)["cluster"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"TF_CONFIG must be JSON with a 'cluster' entry, got {raw[:80]!r}") from exc
    if not isinstance(cluster, dict):
        raise ValueError(f"TF_CONFIG's 'cluster' must be an object of job name -> list of \"host:port\", got {cluster!r:.80}")
    for job in ("worker", "chief"):
        addresses = cluster.get(job, [])
        # A bare string is iterable too: "host:port" would count as 9 workers.
        if not isinstance(addresses, list) or not all(isinstance(a, str) and a.strip() for a in addresses):
            raise ValueError(f"TF_CONFIG's cluster {job!r} must be a list of \"host:port\" strings, got {addresses!r:.80}; "
                             f"write [\"host:port\"] even for one {job}")
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def worker_shard(strategy: str = "multiworker", env: dict | None = None) -> tuple[int, int]:
    """(this worker's index, number of workers) from `TF_CONFIG`; (0, 1) unless `strategy` is multi-worker.

    The chief, when the cluster names one, is index 0 and the workers follow,
    as in TensorFlow's own task numbering.

    Raises:
        ValueError: TF_CONFIG is malformed or its task is not in the cluster.
    """
    count = tf_config_workers(env)
    if count <= 1 or resolve_strategy_name(strategy, gpus=0, env=env) != "multiworker":
        return 0, 1
    spec = json.loads((os.environ if env is None else env)["TF_CONFIG"])
    task = spec.get("task") or {}
    kind, index = task.get("type"), task.get("index", 0)
    has_chief = bool(spec["cluster"].get("chief"))
    if kind == "chief":
        return 0, count
    if kind != "worker" or not isinstance(index, int) or not 0 <= index < len(spec["cluster"].get("worker", [])):
        raise ValueError(f"TF_CONFIG task must be a chief or a worker listed in the cluster, got {task!r}")
    return index + int(has_chief), count


def resolve_strategy_name(name: str = "auto", gpus: int | None = None, env: dict | None = None) -> str:
    """The concrete strategy `auto` stands for on this machine."""
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
    if name != "auto":
        return name
    if tf_config_workers(env) > 1:
        return "multiworker"
    if gpus is None:
        from catdog.hardware import gpu_count

        gpus = gpu_count()
    return "mirrored" if gpus > 1 else "none"


def make_strategy(name: str = "auto"):
    """A `tf.distribute.Strategy` for `name` (see the module docstring)."""
    import tensorflow as tf

    resolved = resolve_strategy_name(name)
    if resolved == "none":
        return tf.distribute.get_strategy()
    if resolved == "multiworker":
        if tf_config_workers() == 0:
            raise ValueError("--strategy multiworker needs TF_CONFIG naming the cluster; see the README's 'Training on a cluster'")
        return _reduce_each_leaf(tf.distribute.MultiWorkerMirroredStrategy())
    devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=devices)


def global_batch_size(per_replica: int, strategy) -> int:
    """The batch the input pipeline must yield: per-replica batch x replicas."""
    if per_replica < 1:
        raise ValueError(f"per_replica batch must be >= 1, got {per_replica!r}")
    return per_replica * int(strategy.num_replicas_in_sync)


def _reduce_each_leaf(strategy):
    """Make `strategy.reduce` accept an (x, y) structure, as Keras 3's `fit` needs.

    Keras 3 reduces the first batch as one structure before training, and
    MultiWorkerMirroredStrategy only reduces single values, so every multi-worker
    `fit` failed with "Attempt to convert a value (PerReplica...)"
    (keras-team/keras#20585). Reducing leaf by leaf gives the same result.
    Collectives cannot reduce uint8 (the image batches); for those, the
    worker's own first value stands in: Keras reads only their shape and dtype.
    Keras also reduces each scalar log with axis=0, which a scalar has not
    (the same failure, next step); those are averaged over the replicas.
    """
    import tensorflow as tf

    reduce = strategy.reduce
    reducible = (tf.float16, tf.bfloat16, tf.float32, tf.float64, tf.int32, tf.int64)

    def reduce_leaf(reduce_op, leaf, axis):
        distributed = isinstance(leaf, tf.distribute.DistributedValues)
        first = strategy.experimental_local_results(leaf)[0] if distributed else leaf
        if distributed and getattr(first, "dtype", None) not in reducible:
            return first
        if axis is not None and getattr(getattr(first, "shape", None), "rank", None) == 0:
            axis = None  # a scalar log (the loss): its mean over replicas
        return reduce(reduce_op, leaf, axis=axis)

    def reduce_leaves(reduce_op, value, axis=None):
        return tf.nest.map_structure(lambda leaf: reduce_leaf(reduce_op, leaf, axis), value)

    strategy.reduce = reduce_leaves
    return strategy
