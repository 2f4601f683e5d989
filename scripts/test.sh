#!/usr/bin/env bash
# Install everything the tests need from the project's own files, then run them.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -r requirements.txt
bash scripts/install-browser.sh || echo "note: headless Chromium could not be installed; browser tests will skip"
python3 -m ruff check .
# Two workers (pytest-xdist): most tests wait on subprocesses, servers and browsers, so two share the
# 2 cores well (the suite went from about 26 to 16 minutes on 2 cores). CATDOG_TEST_WORKERS=0 runs it in one process.
exec python3 -m pytest -n "${CATDOG_TEST_WORKERS:-2}" "$@"
