#!/usr/bin/env bash
# Install catdog and open the studio in the browser.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e .  # the app only (ONNX Runtime included); requirements.txt adds the test extras
exec python3 -m streamlit run streamlit_app.py "$@"
