#!/usr/bin/env bash
# A local Marquee cluster on 127.0.0.1, for the tests and for operators (README "Scaling out"):
# PostgreSQL (sessions, feedback, profiles), a Chroma server (the index, built once), two `marquee serve`
# replicas and nginx in front of them (streaming-safe: SSE and websockets unbuffered, sticky by cookie).
#
#   scripts/cluster.sh up     [--dir DIR] [--only NAME,…]   start what is not running; prints "NAME URL" lines
#   scripts/cluster.sh down   [--dir DIR] [--purge]         stop exactly what `up` started, by PID (--purge:
#                                                           then delete DIR and PostgreSQL's data with it)
#   scripts/cluster.sh status [--dir DIR]
#
# NAME: postgres, chroma, replica1, replica2, lb (--only starts what those need too). DIR (default
# $MARQUEE_CLUSTER_DIR, else $MARQUEE_HOME/cluster) keeps each service's data, log, port and PID; data survive
# `down`, so a later `up` resumes, and `up` after a replica crashed restarts just that replica on its port.
# Replicas share MARQUEE_HOME (converted model, caches) and get MARQUEE_STORAGE__URL / MARQUEE_CHROMA_URL from
# here; other MARQUEE_* variables (e.g. MARQUEE_AGENT__EXPLAIN) pass through to them.
# Needs the Debian packages postgresql and nginx (scripts/services_deps.sh) and `make setup`'s .venv.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
ALL=(postgres chroma replica1 replica2 lb)
READY_LINE="Marquee is ready at"  # agent/web/server.py READY_MESSAGE
TIMEOUT=${MARQUEE_CLUSTER_TIMEOUT:-900}  # seconds a replica may take to load (a first run converts the model)

say() { echo "[cluster] $*" >&2; }
die() { local code=$1; shift; echo "[cluster] error: $*" >&2; exit "$code"; }

tool() {  # the venv's copy of a command, else the one on PATH
  if [[ -x "$VENV/bin/$1" ]]; then echo "$VENV/bin/$1"; elif command -v "$1" >/dev/null 2>&1; then command -v "$1"
  else die 2 "'$1' not found: run make setup (it creates $VENV)"; fi
}

# ------------------------------------------------------------------------------------------- arguments
cmd=${1:-}; shift || true
DIR=${MARQUEE_CLUSTER_DIR:-${MARQUEE_HOME:-$HOME/.local/share/marquee}/cluster}
only=""
purge=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --dir) DIR=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --purge) purge=1; shift ;;
    *) die 2 "unknown argument '$1'; usage: $0 up|down|status [--dir DIR] [--only NAME,…] [--purge]" ;;
  esac
done
PY=$(tool python)

# --------------------------------------------------------------------------------------------- helpers
pid_of() { [[ -f "$DIR/$1.pid" ]] && cat "$DIR/$1.pid" || true; }
# A PID file can outlive its process and the PID be reused: only a live process whose command line names this
# cluster's port counts as ours.
running() {
  local pid port; pid=$(pid_of "$1"); port=$(cat "$DIR/$1.port" 2>/dev/null || true)
  [[ -n "$pid" && -n "$port" ]] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null \
    | grep -q -- "$(marker "$1" "$port")"
}
marker() {
  case $1 in
    postgres) echo "port=$2" ;;
    lb) echo "$DIR/nginx" ;;
    *) echo "port $2" ;;
  esac
}
port_of() {  # chosen once, then kept: nginx's upstreams and clients' URLs stay valid across restarts
  if [[ ! -s "$DIR/$1.port" ]]; then
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' \
      > "$DIR/$1.port"
  fi
  cat "$DIR/$1.port"
}
wait_http() {  # URL PID LOG: until the URL answers (any HTTP status), the process dies, or the time is up
  local url=$1 pid=$2 log=$3 deadline=$((SECONDS + 120))
  until "$PY" - "$url" <<'EOF' 2>/dev/null
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError:
    pass
EOF
  do
    kill -0 "$pid" 2>/dev/null || die 1 "$url: the process exited; last lines of $log:
$(tail -n 20 "$log" 2>/dev/null)"
    (( SECONDS < deadline )) || die 1 "$url did not answer within 120 s; see $log"
    sleep 0.3
  done
}
wait_line() {  # LOG PID: until the replica prints its ready line
  local log=$1 pid=$2 deadline=$((SECONDS + TIMEOUT))
  until grep -q "$READY_LINE" "$log" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || die 1 "replica exited during start-up; last lines of $log:
$(tail -n 30 "$log")"
    (( SECONDS < deadline )) || die 1 "replica not ready after $TIMEOUT s; see $log"
    sleep 0.5
  done
}
start_bg() {  # NAME COMMAND…: a background process in its own session (a Ctrl-C of the caller leaves it)
  local name=$1; shift
  setsid "$@" > "$DIR/$name.log" 2>&1 < /dev/null &
  echo $! > "$DIR/$name.pid"
}

# ------------------------------------------------------------------------------------------- PostgreSQL
pg_bin() {
  local bin; bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
  [[ -n "$bin" && -x "$bin/initdb" ]] || die 3 "PostgreSQL is not installed: bash scripts/services_deps.sh " \
    "(Debian package postgresql)"
  echo "$bin"
}
# PostgreSQL refuses to run as root: as root, its files and processes belong to the unprivileged `postgres`
# user (the Debian package creates it), in a folder that user can reach.
as_pg() { if [[ $(id -u) -eq 0 ]]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }
pg_root() {
  if [[ -f "$DIR/postgres.root" ]]; then cat "$DIR/postgres.root"; return; fi
  local root="$DIR/postgres"
  mkdir -p "$root"
  if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die 3 "running as root needs the 'postgres' user (Debian package postgresql)"
    chown postgres: "$root"; chmod 700 "$root"
    if ! runuser -u postgres -- test -w "$root"; then  # DIR sits below a folder only root may enter
      rmdir "$root"
      root=$(mktemp -d /var/tmp/marquee-postgres.XXXXXX)
      chown postgres: "$root"; chmod 700 "$root"
      ln -sfn "$root" "$DIR/postgres"
    fi
  fi
  echo "$root" > "$DIR/postgres.root"
  echo "$root"
}
pg_url() { echo "postgresql://marquee:$(cat "$DIR/postgres.password")@127.0.0.1:$(cat "$DIR/postgres.port")/marquee"; }
up_postgres() {
  local bin root port; bin=$(pg_bin); root=$(pg_root); port=$(port_of postgres)
  if running postgres; then return; fi
  if [[ ! -f "$root/data/PG_VERSION" ]]; then
    say "postgres: initdb in $root/data"
    [[ -s "$DIR/postgres.password" ]] || (umask 077; "$PY" -c 'import secrets; print(secrets.token_hex(16))' \
      > "$DIR/postgres.password")
    (umask 077; cp "$DIR/postgres.password" "$root/pwfile")
    [[ $(id -u) -ne 0 ]] || chown postgres: "$root/pwfile"
    as_pg "$bin/initdb" -D "$root/data" -U marquee --pwfile="$root/pwfile" -A scram-sha-256 -E UTF8 \
      --locale=C > "$root/initdb.log" 2>&1 || die 1 "initdb failed: $(tail -n 5 "$root/initdb.log")"
    rm -f "$root/pwfile"
  fi
  say "postgres: starting on 127.0.0.1:$port"
  # loopback only, no Unix socket (its default folder belongs to the system service)
  as_pg "$bin/pg_ctl" -D "$root/data" -l "$root/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=''" start > /dev/null \
    || die 1 "PostgreSQL did not start: $(tail -n 10 "$root/postgres.log")"
  head -n1 "$root/data/postmaster.pid" > "$DIR/postgres.pid"
  ln -sfn "$root/postgres.log" "$DIR/postgres.log"
  local exists
  exists=$(PGPASSWORD=$(cat "$DIR/postgres.password") "$bin/psql" -h 127.0.0.1 -p "$port" -U marquee -d postgres \
    -tAc "SELECT 1 FROM pg_database WHERE datname = 'marquee'")
  [[ "$exists" == 1 ]] || PGPASSWORD=$(cat "$DIR/postgres.password") "$bin/createdb" -h 127.0.0.1 -p "$port" \
    -U marquee marquee
}

# ------------------------------------------------------------------------------------------ the others
chroma_url() { echo "http://127.0.0.1:$(cat "$DIR/chroma.port")"; }
up_chroma() {
  local port; port=$(port_of chroma)
  if running chroma; then return; fi
  say "chroma: starting on 127.0.0.1:$port"
  start_bg chroma "$(tool chroma)" run --path "$DIR/chroma" --host 127.0.0.1 --port "$port"
  wait_http "$(chroma_url)/api/v2/heartbeat" "$(pid_of chroma)" "$DIR/chroma.log"
}
replica_env() { env "MARQUEE_STORAGE__URL=$(pg_url)" "MARQUEE_CHROMA_URL=$(chroma_url)" "$@"; }
index_once() {  # the index lives in the Chroma server: built (or brought up to date) once, before any replica
  say "index: building into the Chroma server if needed (log: $DIR/index.log)"
  replica_env "$(tool marquee)" index --quiet >> "$DIR/index.log" 2>&1 \
    || die 1 "marquee index failed: $(tail -n 10 "$DIR/index.log")"
}
up_replicas() {
  local started=() name port
  for name in "$@"; do
    port=$(port_of "$name")
    if running "$name"; then continue; fi
    [[ ${#started[@]} -gt 0 ]] || index_once
    say "$name: starting marquee serve on 127.0.0.1:$port (log: $DIR/$name.log)"
    start_bg "$name" env "MARQUEE_STORAGE__URL=$(pg_url)" "MARQUEE_CHROMA_URL=$(chroma_url)" \
      "$(tool marquee)" serve --host 127.0.0.1 --port "$port"
    started+=("$name")
  done
  for name in "${started[@]}"; do wait_line "$DIR/$name.log" "$(pid_of "$name")"; done
}
nginx_conf() {
  mkdir -p "$DIR/nginx/logs" "$DIR/nginx/tmp"
  local user=""; [[ $(id -u) -ne 0 ]] || user="user nobody nogroup;"
  cat > "$DIR/nginx/nginx.conf" <<EOF
# Written by scripts/cluster.sh; regenerated by every 'up'.
$user
worker_processes 1;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/error.log warn;
events { worker_connections 1024; }
http {
    log_format replica '\$remote_addr [\$time_local] "\$request" \$status upstream=\$upstream_addr \$request_time';
    access_log $DIR/nginx/access.log replica;
    client_body_temp_path $DIR/nginx/tmp/body;
    proxy_temp_path $DIR/nginx/tmp/proxy;
    fastcgi_temp_path $DIR/nginx/tmp/fastcgi;
    uwsgi_temp_path $DIR/nginx/tmp/uwsgi;
    scgi_temp_path $DIR/nginx/tmp/scgi;
    client_max_body_size 50m;

    # websockets: pass the upgrade on; otherwise keep upstream connections alive
    map \$http_upgrade \$connection_upgrade { default upgrade; '' ''; }
    # Stickiness: a Gradio client's queue join and its event stream must reach the same replica (the queue
    # lives in that process). The first response sets a cookie; the same cookie always hashes to the same
    # replica (gradio_client and browsers send it back), and a dead replica's share moves to the other one.
    map \$cookie_marquee_replica \$marquee_affinity { '' \$request_id; default \$cookie_marquee_replica; }
    map \$cookie_marquee_replica \$marquee_set_cookie {
        '' "marquee_replica=\$request_id; Path=/; HttpOnly; SameSite=Lax"; default ''; }

    upstream marquee_replicas {
        hash \$marquee_affinity consistent;
        server 127.0.0.1:$(cat "$DIR/replica1.port") max_fails=1 fail_timeout=10s;
        server 127.0.0.1:$(cat "$DIR/replica2.port") max_fails=1 fail_timeout=10s;
        keepalive 16;
    }
    server {
        listen 127.0.0.1:$(cat "$DIR/lb.port");
        location / {
            proxy_pass http://marquee_replicas;
            proxy_http_version 1.1;
            proxy_set_header Host \$http_host;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \$connection_upgrade;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Host \$http_host;
            proxy_set_header X-Forwarded-Proto \$scheme;
            # streaming: server-sent events reach the client as they are written, nothing is cached
            proxy_buffering off;
            proxy_cache off;
            proxy_request_buffering off;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            # a replica that refuses the connection (down) is skipped; a request it already received is not
            # repeated on the other one (a turn must not run twice)
            proxy_connect_timeout 2s;
            proxy_next_upstream error timeout;
            add_header Set-Cookie \$marquee_set_cookie always;
        }
    }
}
EOF
}
up_lb() {
  local port nginx; port=$(port_of lb)
  nginx=$(command -v nginx || echo /usr/sbin/nginx)
  [[ -x "$nginx" ]] || die 3 "nginx is not installed: bash scripts/services_deps.sh (Debian package nginx)"
  nginx_conf
  if running lb; then kill -HUP "$(pid_of lb)"; return; fi  # reload the (re)written configuration
  "$nginx" -t -q -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf" 2> "$DIR/lb.log" || die 1 "nginx: $(cat "$DIR/lb.log")"
  say "lb: starting nginx on 127.0.0.1:$port"
  start_bg lb "$nginx" -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf" -g "daemon off;"
  wait_http "http://127.0.0.1:$port/" "$(pid_of lb)" "$DIR/lb.log"
}
url_of() {
  case $1 in
    postgres) pg_url ;;
    chroma) chroma_url ;;
    *) echo "http://127.0.0.1:$(cat "$DIR/$1.port")/" ;;
  esac
}

# ------------------------------------------------------------------------------------------- commands
wanted() {  # the services to start: --only's names plus what they need, in start order
  local names=("${ALL[@]}") want=() n
  if [[ -n "$only" ]]; then
    IFS=, read -r -a names <<< "$only"
    for n in "${names[@]}"; do
      [[ " ${ALL[*]} " == *" $n "* ]] || die 2 "unknown service '$n'; known: ${ALL[*]}"
      case $n in
        replica*) names+=(postgres chroma) ;;
        lb) names+=(postgres chroma replica1 replica2) ;;
      esac
    done
  fi
  for n in "${ALL[@]}"; do [[ " ${names[*]} " == *" $n "* ]] && want+=("$n"); done
  echo "${want[@]}"
}

up() {
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  local names replicas=() n; read -r -a names <<< "$(wanted)"
  for n in "${names[@]}"; do
    case $n in
      postgres) up_postgres ;;
      chroma) up_chroma ;;
      replica*) replicas+=("$n") ;;
      lb) [[ ${#replicas[@]} -eq 0 ]] || { up_replicas "${replicas[@]}"; replicas=(); }; port_of lb > /dev/null
          up_lb ;;
    esac
  done
  [[ ${#replicas[@]} -eq 0 ]] || up_replicas "${replicas[@]}"
  for n in "${names[@]}"; do echo "$n $(url_of "$n")"; done
}

stop() {  # NAME…: signal them all (TERM; postgres: INT, its fast shutdown), wait, KILL what is left after 30 s
  local name pid signal waiting=()
  for name in "$@"; do
    if ! running "$name"; then rm -f "$DIR/$name.pid"; continue; fi
    pid=$(pid_of "$name"); signal=TERM
    [[ $name != postgres ]] || signal=INT
    say "$name: stopping (pid $pid)"
    kill -s "$signal" "$pid" 2>/dev/null || true
    waiting+=("$name:$pid")
  done
  local entry deadline=$((SECONDS + 30))
  for entry in "${waiting[@]}"; do
    name=${entry%%:*}; pid=${entry##*:}
    while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then say "$name: still running, killing"; kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$DIR/$name.pid"
  done
}

down() {
  [[ -d "$DIR" ]] || return 0
  DIR=$(cd "$DIR" && pwd)
  stop lb replica1 replica2  # the front first, then what it used
  stop chroma postgres
  if [[ $purge -eq 1 ]]; then
    local pg; pg=$(cat "$DIR/postgres.root" 2>/dev/null || true)
    case $pg in "$DIR"/postgres | /var/tmp/marquee-postgres.*) rm -rf "$pg" ;; esac  # only what pg_root made
    rm -rf "$DIR"
    say "deleted $DIR"
  fi
}

status() {
  [[ -d "$DIR" ]] && DIR=$(cd "$DIR" && pwd)
  local n
  for n in "${ALL[@]}"; do
    if [[ -d "$DIR" ]] && running "$n"; then echo "$n $(url_of "$n") running (pid $(pid_of "$n"))"
    else echo "$n - stopped"; fi
  done
}

case $cmd in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die 2 "usage: $0 up|down|status [--dir DIR] [--only NAME,…]" ;;
esac
