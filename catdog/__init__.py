"""catdog: train and serve a cats-vs-dogs image classifier."""

from __future__ import annotations

import os

__version__ = "0.1.0"

# TensorFlow's default CPU allocator hands every large tensor back to the OS and
# page-faults it in again on the next step; its BFC allocator keeps the memory
# (measurements: docs/performance.md). It is read when TensorFlow starts, so it is set here, before
# any catdog module imports TensorFlow. Set it to "false" to opt out.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
