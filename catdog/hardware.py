"""What the machine can do: CPU features, GPUs, and the precision to train in."""

from __future__ import annotations

import os
import platform
from pathlib import Path

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _cpuinfo(key: str) -> str | None:
    """The first /proc/cpuinfo line's value for `key` ("model name", "cpu family"), or None."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.split(":", 1)[0].strip() == key:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_family() -> str:
    """/proc/cpuinfo's "cpu family" (e.g. "25" for AMD Zen 3/4): with `cpu_model`, what benchmarks name a CPU by."""
    return _cpuinfo("cpu family") or "unknown"


def lscpu_model_name() -> str:
    """`lscpu`'s "Model name" (what figures are reported with), else /proc/cpuinfo's model name."""
    import subprocess

    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), None) or cpu_model()


def cpu_has_fast_bf16(flags: set[str] | None = None) -> bool:
    """AMX or AVX-512 BF16: the CPU has bfloat16 matrix instructions."""
    flags = cpu_flags() if flags is None else flags
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def gpu_count() -> int:
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


def resolve_precision(
    precision: str = "auto", flags: set[str] | None = None, gpus: int | None = None, cpu_bf16: bool = True
) -> str:
    """The Keras dtype policy to train in.

    auto: mixed_float16 on a GPU; on a CPU with AMX/AVX-512 BF16, mixed_bfloat16
    when the preset trains faster in it (`cpu_bf16`, measured per preset: see
    `catdog.models.Preset.cpu_bf16`); float32 otherwise (bfloat16 is emulated,
    and slower, without those instructions).

    Args:
        precision: one of `PRECISIONS`; anything but "auto" is returned as it is.
        flags: the CPU's flags (default: this machine's).
        gpus: the number of GPUs (default: this machine's).
        cpu_bf16: whether the preset gains from bfloat16 on a CPU that has it.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    if (gpu_count() if gpus is None else gpus) > 0:
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_bf16 and cpu_has_fast_bf16(flags) else "float32"


def resolve_inference_precision(precision: str = "auto", flags: set[str] | None = None, gpus: int | None = None) -> str:
    """The Keras dtype policy to predict in; `CATDOG_PREDICT_PRECISION` overrides "auto".

    auto: mixed_float16 on a GPU, float32 on every CPU. A model trained in
    mixed precision on another machine is run in float32 on a CPU: bfloat16
    is emulated and slow without AMX/AVX-512 BF16, and with them a one-image
    forward pass of the seed network was still faster in float32 here
    (benchmarks/bench_predict.py --precision compares the two).
    """
    precision = requested_inference_precision(precision)
    if precision != "auto":
        return precision
    return "mixed_float16" if (gpu_count() if gpus is None else gpus) > 0 else "float32"


def requested_inference_precision(precision: str = "auto") -> str:
    """The inference precision asked for: `precision`, or `CATDOG_PREDICT_PRECISION` when it is "auto" (may stay "auto").

    Raises:
        ValueError: not one of `PRECISIONS` (a `SettingError` naming the variable when it came from there).
    """
    if precision == "auto":
        from catdog.config import env_choice

        return env_choice("CATDOG_PREDICT_PRECISION", PRECISIONS, "auto")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


def describe() -> dict:
    """Machine facts for run configs and benchmark output."""
    import tensorflow as tf

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "fast_bf16": cpu_has_fast_bf16(),
        "gpus": gpu_count(),
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
    }


def gpu_device_present() -> bool:
    """Whether an NVIDIA GPU is visible to this process, checked without importing TensorFlow."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return any(Path("/dev").glob("nvidia[0-9]*"))
