#!/usr/bin/env bash
# Install everything the tests need from the project's own files, then run them.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -r requirements.txt
bash scripts/install-browser.sh || echo "note: headless Chromium could not be installed; browser tests will skip"
python3 -m ruff check .
exec python3 -m pytest "$@"
