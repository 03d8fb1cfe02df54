#!/usr/bin/env bash
# Debian's Chromium for the browser tests (Playwright drives it; no `playwright install`), plus a small CJK
# font so the page's Chinese example renders in test screenshots (cosmetic: tests pass without it).
set -euo pipefail
need=()
[[ -x /usr/bin/chromium ]] || need+=(chromium)
command -v fc-list >/dev/null && fc-list :lang=zh | grep -q . || need+=(fonts-wqy-microhei)
if [[ ${#need[@]} -eq 0 ]]; then exit 0; fi
if [[ $(id -u) -ne 0 ]]; then
  if [[ -x /usr/bin/chromium ]]; then exit 0; fi
  echo "[browser] /usr/bin/chromium missing; run: sudo apt-get install -y chromium" >&2; exit 1
fi
echo "[browser] installing ${need[*]}"
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
