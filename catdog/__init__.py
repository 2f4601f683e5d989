"""catdog: train and serve a cats-vs-dogs image classifier."""

from __future__ import annotations

__version__ = "0.1.0"
