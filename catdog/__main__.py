"""`python -m catdog`."""

from __future__ import annotations

import sys

from catdog.cli import main

if __name__ == "__main__":
    sys.exit(main())
