#!/usr/bin/env bash
# Install catdog and open the studio in the browser.
#
# It serves on 127.0.0.1 only (.streamlit/config.toml). To let others on the
# network in, run `bash scripts/app.sh --share` (or CATDOG_SHARE=1): it serves on
# every interface and refuses to start without a password (CATDOG_PASSWORD, or
# [auth] password in .streamlit/secrets.toml). Other arguments go to `streamlit run`;
# any other address than 127.0.0.1, ::1 or localhost, however it is asked for
# (--server.address, STREAMLIT_SERVER_ADDRESS, a config.toml), needs the password too.
set -euo pipefail
cd "$(dirname "$0")/.."
share="${CATDOG_SHARE:-0}"
args=()
for arg in "$@"; do
  if [[ "$arg" == "--share" ]]; then share=1; else args+=("$arg"); fi
done
# Refuse to start with an unreadable secrets.toml (its password would be lost), or to share without a password.
# (Checked first, from this folder: a refused start installs nothing.)
if [[ "$share" == "1" ]]; then
  python3 -m catdog.auth --share ${args[@]+"${args[@]}"}
else
  python3 -m catdog.auth ${args[@]+"${args[@]}"}
fi
python3 -m pip install -q -e .  # the app only (ONNX Runtime included); requirements.txt adds the test extras
if [[ "$share" == "1" ]]; then
  args=(--server.address 0.0.0.0 ${args[@]+"${args[@]}"})
  echo "catdog: sharing on every network interface, behind the password." >&2
fi
exec python3 -m streamlit run streamlit_app.py ${args[@]+"${args[@]}"}
