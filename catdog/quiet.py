"""TensorFlow without its start-up log lines, for the command line.

`catdog export`, `report` and `predict --explain` import TensorFlow, which writes
lines like these straight to the stderr file descriptor, whatever
TF_CPP_MIN_LOG_LEVEL says (XLA logs through absl before absl is initialised):

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 ... cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
    E0000 ... cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error ...

`quiet_tensorflow()` sets the log levels before the import and arranges that the
import and the device scan (which logs the cuInit failure) run with file
descriptor 2 pointed at a temporary file. The lines are replayed if the import
fails, so a real error is never swallowed. It imports nothing itself: the first
`import tensorflow`, wherever it happens, is the quiet one.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile
from typing import Iterator

TENSORFLOW = "tensorflow"


def quiet_tensorflow() -> None:
    """Make the next `import tensorflow` silent, and TensorFlow's own log levels errors-only.

    Call it before anything imports TensorFlow (the CLI does, first thing). A no-op
    when TensorFlow is imported already or the hook is in place.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # C++ INFO and WARNING lines once absl is initialised
    if TENSORFLOW in sys.modules:
        _quiet_python_loggers()
        return
    if not any(isinstance(finder, _QuietImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


@contextlib.contextmanager
def stderr_fd_captured() -> Iterator[None]:
    """Point file descriptor 2 at a temporary file; write what it caught to stderr only if the block raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            caught.seek(0)
            os.write(2, caught.read())  # the real reason an import failed is in these lines
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` through the other finders and hands it a loader that runs quietly (once)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != TENSORFLOW:
            return None
        sys.meta_path.remove(self)  # one import only; the finders below do the finding
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    """Runs the wrapped loader, then the device scan, with stderr captured."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module) -> None:
        with stderr_fd_captured():
            self._inner.exec_module(module)
            module.config.list_physical_devices()  # the first device scan is what logs "failed call to cuInit"
        _quiet_python_loggers()

    def __getattr__(self, name):  # get_resource_reader, is_package, ...: the real loader's
        return getattr(self._inner, name)


def _quiet_python_loggers() -> None:
    """TensorFlow's and absl's Python loggers: errors only (no 'Assets written to' INFO lines)."""
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
