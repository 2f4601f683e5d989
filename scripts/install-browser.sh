#!/usr/bin/env bash
# Debian's Chromium for the real-browser tests (Playwright drives it; no browser download).
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  SUDO="sudo -n"
else
  SUDO=""
fi
command -v apt-get >/dev/null 2>&1 || { echo "no apt-get: install Chromium yourself to run the browser tests"; exit 1; }
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
