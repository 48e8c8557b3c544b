#!/usr/bin/env bash
# Reproduces the figures in docs/benchmarks.md: per-stage micro-benchmarks,
# the in-process flow benchmark, the heap per live session, and a loopback
# load test of the real binary at 1, 8 and 64 concurrent clients.
# Everything stays on 127.0.0.1; loops are bounded by -benchtime/--duration.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-3}
DUR=${DUR:-10s}
PORT=${PORT:-18080}

echo "== machine"; nproc; grep -m1 'model name' /proc/cpuinfo || true; go version

if [ "${LOAD_ONLY:-}" = "" ]; then
echo "== per-stage micro-benchmarks"
go test -run '^$' -count "$COUNT" -benchmem -bench 'BenchmarkRuntimeData' ./internal/jcs
go test -run '^$' -count "$COUNT" -benchmem -bench 'BenchmarkAppraisalSample|BenchmarkResourceAllow' ./policy
go test -run '^$' -count "$COUNT" -benchmem -bench 'BenchmarkIssue' ./ear
go test -run '^$' -count "$COUNT" -benchmem -bench 'BenchmarkVerify' ./kbs/tokenverify
go test -run '^$' -count "$COUNT" -benchmem -bench 'BenchmarkEncrypt' ./internal/jose
go test -run '^$' -count 1 -bench 'BenchmarkSessionHeap' -benchtime 1x ./kbs
go test -run '^$' -count "$COUNT" -benchmem -bench 'BenchmarkFlow' -benchtime 3s ./internal/app

echo "== verifiers (cached intermediates and collateral)"
go test -run '^$' -count "$COUNT" -benchmem -bench 'BenchmarkVerifyQuote|BenchmarkVerifyWithPCS' ./verifier/tdx
go test -run '^$' -count "$COUNT" -benchmem -bench 'BenchmarkEvaluateCached' ./verifier/tdx/pcs
go test -run '^$' -count "$COUNT" -benchmem -bench 'BenchmarkVerify$|BenchmarkVerifyReport$' ./verifier/snp
go test -run '^$' -count "$COUNT" -benchmem -bench 'BenchmarkVerifySNP|BenchmarkVerifyTDXvTPMPart' ./verifier/azvtpm
go test -run '^$' -count "$COUNT" -benchmem -bench 'BenchmarkVerify' ./verifier/tpm
go test -run '^$' -count "$COUNT" -benchmem -bench 'BenchmarkParseReplayGrub' ./eventlog
go test -run '^$' -count "$COUNT" -benchmem -bench 'BenchmarkVerifyHopper|BenchmarkVerify8Devices' ./verifier/nvidia

fi

echo "== load test (separate server process, zero-config HTTPS, info logging)"
tmp=$(mktemp -d)
go build -o "$tmp/sigil" ./cmd/sigil
go build -o "$tmp/loadgen" ./internal/tools/loadgen
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "port $PORT is in use; set PORT" >&2; exit 1
fi
"$tmp/sigil" kbs --data-dir "$tmp/data" --listen "127.0.0.1:$PORT" >"$tmp/kbs.out" 2>"$tmp/kbs.log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do [ -s "$tmp/kbs.out" ] && break; sleep 0.2; done
url="https://127.0.0.1:$PORT"
cert="$tmp/data/tls/cert.pem"
"$tmp/loadgen" --url "$url" --cert-file "$cert" --admin-token-file "$tmp/data/admin/admin-token" --setup --floor \
  --concurrency 1 --duration "$DUR" --server-pid "$pid"
for c in 8 64; do
  "$tmp/loadgen" --url "$url" --cert-file "$cert" --concurrency "$c" --duration "$DUR" --server-pid "$pid" --floor
done
echo "server log lines: $(wc -l <"$tmp/kbs.log")"
