"""catdog's own exceptions. Each message says what was wrong and what to do."""

from __future__ import annotations


class CatdogError(Exception):
    """Base class for every error catdog reports to a user."""


class ImageError(CatdogError, ValueError):
    """An image could not be read, decoded or converted."""


class DatasetError(CatdogError, ValueError):
    """A dataset folder is missing, empty or has the wrong layout."""


class RunError(CatdogError, ValueError):
    """A run folder or model file is missing or unreadable."""


class TrainingBusyError(CatdogError):
    """Another training is already running on this machine."""
