#!/usr/bin/env bash
# Measures the figures of docs/benchmarks.md "Sessions and replicas": full
# RCAR flows (auth + attest + resource) at 64 clients for sessions in memory,
# on LocalFs and on PostgreSQL + Redis, one replica versus three on the same
# cores, and database round trips per flow. Needs PostgreSQL on
# 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (uses database sigil_bench and
# Redis DB 13, both emptied first).
#
#   DURATION=15s scripts/bench-scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-15s}"
CONC="${CONC:-64}"
work=$(mktemp -d)
trap 'kill $(cat "$work"/*.pid 2>/dev/null) $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
go build -o "$work/sigil" ./cmd/sigil
go build -o "$work/loadgen" ./internal/tools/loadgen

psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS sigil_bench WITH (FORCE)" -c "CREATE DATABASE sigil_bench"
redis-cli -h 127.0.0.1 -n 13 FLUSHDB >/dev/null

# Shared keys and a zero-config configuration to derive the others from.
"$work/sigil" kbs --data-dir "$work/d" --insecure-http --listen 127.0.0.1:18190 >/dev/null 2>&1 &
boot=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:18190/healthz >/dev/null && break; sleep 0.1; done
kill $boot; wait $boot 2>/dev/null || true
base="$work/d/kbs-config.toml"
token="$work/d/admin/admin-token"

config() { # mode port
  local mode=$1 port=$2
  sed -e "s#sockets = \[.*\]#sockets = [\"127.0.0.1:$port\"]#" "$base" >"$work/$mode-$port.toml"
  case $mode in
  memory) ;;
  localfs) sed -i '/^session_storage_type/d' "$work/$mode-$port.toml" ;;
  pgredis)
    python3 - "$work/$mode-$port.toml" <<'EOF'
import re, sys
p = sys.argv[1]
s = open(p).read()
s = s.replace('session_storage_type = "Memory"', 'session_storage_type = "Redis"')
i = s.index("[storage_backend]")
j = s.index("[[plugins]]")
s = s[:i] + '''[storage_backend]
storage_type = "Postgres"

[storage_backend.backends.postgres]
host = "127.0.0.1"
port = 5432
username = "postgres"
db = "sigil_bench"

[storage_backend.backends.redis]
url = "redis://127.0.0.1:6379/13"

''' + s[j:]
open(p, "w").write(s)
EOF
    ;;
  esac
  echo "$work/$mode-$port.toml"
}

start() { # mode port → pid
  local cfg
  cfg=$(config "$1" "$2")
  POSTGRES_URL= REDIS_URL= SIGIL_LOG=error "$work/sigil" kbs -c "$cfg" >"$work/$1-$2.log" 2>&1 &
  local pid=$!
  echo $pid >"$work/$1-$2.pid"
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$2/healthz" >/dev/null && break; sleep 0.1; done
  echo $pid
}

pg_xacts() { psql -tA -h 127.0.0.1 -U postgres -c "SELECT xact_commit FROM pg_stat_database WHERE datname = 'sigil_bench'"; }

run() { # label urls pids [extra]
  echo "== $1"
  "$work/loadgen" --url "$2" --server-pid "$3" --concurrency "$CONC" --duration "$DURATION" --setup --admin-token-file "$token" ${4:-} | tee "$work/out"
}

for mode in memory localfs; do
  pid=$(start $mode 18200)
  extra=""
  [ $mode = memory ] && extra="--floor"
  run "sessions: $mode, 1 replica" http://127.0.0.1:18200 "$pid" "$extra"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done

pid=$(start pgredis 18210)
run "PostgreSQL + Redis, 1 replica" http://127.0.0.1:18210 "$pid"
# Round trips: exactly 500 flows, no warm-up, counters reset first.
redis-cli -h 127.0.0.1 CONFIG RESETSTAT >/dev/null
p0=$(pg_xacts)
"$work/loadgen" --url http://127.0.0.1:18210 --concurrency 8 --flows 500 --duration 60s --warmup 0s >/dev/null
p1=$(pg_xacts)
echo "== round trips over 500 flows (auth + attest + resource):"
redis-cli -h 127.0.0.1 INFO commandstats | grep -E '^cmdstat_(get|set|del):' | sed 's/,usec.*//'
echo "postgres transactions: $(( p1 - p0 ))"
kill "$pid"; wait "$pid" 2>/dev/null || true

pids=""; urls=""
for port in 18220 18221 18222; do
  p=$(start pgredis $port)
  pids="$pids${pids:+,}$p"; urls="$urls${urls:+,}http://127.0.0.1:$port"
done
run "PostgreSQL + Redis, 3 replicas" "$urls" "$pids"
