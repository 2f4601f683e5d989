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

import errno
import json
import os
import signal
import socket
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from catdog.errors import CatdogError

STRATEGIES = ("auto", "none", "mirrored", "multiworker")
CLUSTER_TIMEOUT = 600.0  # seconds a worker waits for the others (CATDOG_CLUSTER_TIMEOUT)


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


def make_strategy(name: str = "auto", stop: Callable[[], bool] | None = None):
    """A `tf.distribute.Strategy` for `name` (see the module docstring).

    Args:
        name: one of `STRATEGIES`.
        stop: called while a multi-worker cluster starts; True ends the wait
            (training passes its stop request: the STOP file of `catdog stop`).

    Raises:
        CatdogError: a multi-worker cluster did not start in time, was stopped
            while it waited, or this worker's port is taken.
    """
    import tensorflow as tf

    resolved = resolve_strategy_name(name)
    if resolved == "none":
        return tf.distribute.get_strategy()
    if resolved == "multiworker":
        if tf_config_workers() == 0:
            raise ValueError("--strategy multiworker needs TF_CONFIG naming the cluster; see the README's 'Training on a cluster'")
        return _reduce_each_leaf(start_cluster(stop))
    devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=devices)


def cluster_timeout(env: dict | None = None) -> float:
    """Seconds to wait for every worker of the cluster: CATDOG_CLUSTER_TIMEOUT, default `CLUSTER_TIMEOUT`.

    Raises:
        CatdogError: the variable is set to anything but a number of seconds > 0.
    """
    from catdog.config import env_number

    return env_number("CATDOG_CLUSTER_TIMEOUT", CLUSTER_TIMEOUT, minimum=0, above=True, env=env)


def check_environment(env: dict | None = None) -> None:
    """Refuse a bad TF_CONFIG or CATDOG_CLUSTER_TIMEOUT before a training makes its run folder.

    Raises:
        CatdogError: CATDOG_CLUSTER_TIMEOUT is not a number of seconds > 0.
        ValueError: TF_CONFIG is malformed (see `tf_config_workers`).
    """
    cluster_timeout(env)
    tf_config_workers(env)


def start_cluster(stop: Callable[[], bool] | None = None, timeout: float | None = None, build: Callable | None = None):
    """`MultiWorkerMirroredStrategy()`, once every other worker of TF_CONFIG is reachable.

    TensorFlow waits for the other workers inside one C++ call that holds
    Python's lock and never returns while one is missing: no signal handler,
    `catdog stop` or timeout can run during it. So the workers first meet in
    Python: each listens on its own port from TF_CONFIG and connects to every
    other's, checking SIGINT/SIGTERM (the handlers in place are still called),
    `stop()` and the deadline between tries. Once all answer, each closes its
    listener and TensorFlow starts its server on the same port; a worker still
    meeting then reaches that server instead.

    Args:
        stop: called while waiting; True ends the wait.
        timeout: seconds to wait (default `cluster_timeout()`).
        build: makes the strategy (default `tf.distribute.MultiWorkerMirroredStrategy`).

    Raises:
        CatdogError: this worker's port is taken, the cluster did not start
            within `timeout`, or a stop came first.
    """
    timeout = cluster_timeout() if timeout is None else float(timeout)
    own, peers = _addresses()
    meet_workers(own, peers, timeout, stop)
    if build is None:
        import tensorflow as tf

        build = tf.distribute.MultiWorkerMirroredStrategy
    try:
        return build()
    except Exception as exc:  # noqa: BLE001 - TensorFlow raises many types (a port taken meanwhile, a peer gone)
        raise _cluster_error(exc, own) from exc


def meet_workers(own: str | None, peers: list[str], timeout: float, stop: Callable[[], bool] | None = None) -> None:
    """Listen on `own` and wait until every address in `peers` accepts a connection (see `start_cluster`).

    Raises:
        CatdogError: `own`'s port is taken, a stop or SIGINT/SIGTERM came, or `timeout` passed.
    """
    listener = _listen(own)
    deadline = time.monotonic() + timeout
    pending = list(peers)
    try:
        with _noting_signals() as signalled:
            while True:
                _accept_waiting(listener)
                pending = [a for a in pending if not _answers(a)]
                if not pending:
                    return
                if signalled or (stop is not None and stop()):
                    raise CatdogError(f"stopped while waiting for the other workers of the cluster in TF_CONFIG "
                                      f"({', '.join(pending)} not reached); nothing was trained")
                if time.monotonic() > deadline:
                    raise CatdogError(_timeout_message(timeout, pending))
                time.sleep(0.25)
    finally:
        if listener is not None:
            listener.close()


def _timeout_message(timeout: float, pending: list[str]) -> str:
    return (f"the other workers of the cluster in TF_CONFIG did not start within {timeout:g} s "
            f"({', '.join(pending)} not reached); start the same `catdog train` command on every machine listed "
            "there (each with its own task index), check that they reach each other on those ports, "
            "or wait longer with CATDOG_CLUSTER_TIMEOUT=SECONDS")


def _cluster_error(exc: BaseException, address: str | None) -> CatdogError:
    text = str(exc)
    if "address already in use" in text.lower() or "failed to add port" in text.lower():
        return CatdogError(f"this worker's address {address} from TF_CONFIG cannot be served: its port is already in use; "
                           "stop the program using it, or give this worker another port in TF_CONFIG")
    return CatdogError(f"the cluster in TF_CONFIG could not start: {type(exc).__name__}: {text[:500]}")


def _addresses() -> tuple[str | None, list[str]]:
    """(this task's "host:port", every other task's) from TF_CONFIG."""
    spec = json.loads(os.environ.get("TF_CONFIG", "") or "{}")
    task = spec.get("task") or {}
    own = None
    try:
        own = spec["cluster"][task.get("type")][int(task.get("index", 0))]
    except (KeyError, TypeError, IndexError, ValueError):
        pass
    every = [a for job in ("chief", "worker") for a in (spec.get("cluster") or {}).get(job, [])]
    return own, [a for a in every if a != own]


def _split(address: str) -> tuple[str, int]:
    host, _, port = str(address).rpartition(":")
    try:
        return host.strip("[]") or "localhost", int(port)
    except ValueError:
        raise ValueError(f"TF_CONFIG address must be \"host:port\", got {address!r}") from None


def _listen(address: str | None) -> socket.socket | None:
    """A listening socket on this worker's port, so the others see it is up; a port in use is refused."""
    if address is None:
        return None
    port = _split(address)[1]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC does: a TIME_WAIT is no obstacle
    try:
        listener.bind(("", port))
        listener.listen(64)
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise CatdogError(f"port {port} of this worker's address {address} in TF_CONFIG is already in use by another "
                              "program; stop it, or give this worker another port in TF_CONFIG") from exc
        raise CatdogError(f"cannot listen on this worker's address {address} from TF_CONFIG: {exc.strerror or exc}") from exc
    listener.setblocking(False)
    return listener


def _accept_waiting(listener: socket.socket | None) -> None:
    """Accept and close the other workers' knocks (a connection is all they check)."""
    while listener is not None:
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        conn.close()


def _answers(address: str) -> bool:
    host, port = _split(address)
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


@contextmanager
def _noting_signals() -> Iterator[list[int]]:
    """Note SIGINT/SIGTERM in the yielded list while inside, still calling the handlers in place (main thread only)."""
    noted: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield noted
        return
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def note(signum, frame) -> None:
        noted.append(signum)
        previous = old.get(signum)
        if callable(previous) and previous is not signal.default_int_handler:
            previous(signum, frame)

    for sig in old:
        signal.signal(sig, note)
    try:
        yield noted
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


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
