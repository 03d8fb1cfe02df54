#!/usr/bin/env bash
# Debian's Chromium for the browser tests (Playwright drives it; no `playwright install`).
set -euo pipefail
if [[ -x /usr/bin/chromium ]]; then exit 0; fi
if [[ $(id -u) -ne 0 ]]; then
  echo "[browser] /usr/bin/chromium missing; run: sudo apt-get install -y chromium" >&2; exit 1
fi
echo "[browser] installing Debian chromium"
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
