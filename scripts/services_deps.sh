#!/usr/bin/env bash
# Debian's PostgreSQL and nginx for the scale-out tests and `scripts/cluster.sh` (the cluster runs them as
# its own processes on 127.0.0.1 with their own data dirs; the packages' system services are not used).
# Idempotent: on a machine that has both it returns at once.
set -euo pipefail
need=()
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
[[ -n "$pg_bin" && -x "$pg_bin/initdb" && -x "$pg_bin/postgres" ]] || need+=(postgresql)
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
if [[ ${#need[@]} -eq 0 ]]; then exit 0; fi
if [[ $(id -u) -ne 0 ]]; then
  echo "[services] missing ${need[*]}; run: sudo apt-get install -y ${need[*]}" \
       "(the cluster tests are skipped without them)" >&2
  exit 0
fi
echo "[services] installing ${need[*]}"
# policy-rc.d: install the packages without starting their system-wide services (the cluster runs its own)
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created_policy=1
fi
trap 'if [[ $created_policy -eq 1 ]]; then rm -f "$policy"; fi' EXIT
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
