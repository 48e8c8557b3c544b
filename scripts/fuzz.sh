#!/usr/bin/env bash
# Runs every fuzz target (or those matching $1, a grep pattern on
# "package Target") for FUZZTIME each (default 5m), one at a time, and
# prints one line per target. New corpus entries stay in the Go build cache;
# failures are written to the package's testdata/fuzz as usual.
#
#   FUZZTIME=5m scripts/fuzz.sh            # all targets
#   FUZZTIME=30s scripts/fuzz.sh tokenverify
set -uo pipefail
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-5m}"
PARALLEL="${PARALLEL:-1}"
pattern="${1:-.}"
status=0
while read -r file target; do
  pkg="./$(dirname "$file")"
  echo "$pkg $target" | grep -q -- "$pattern" || continue
  start=$(date +%s)
  if out=$(go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -parallel "$PARALLEL" "$pkg" 2>&1); then
    execs=$(echo "$out" | grep -o 'execs: [0-9]*' | tail -1)
    echo "ok   $pkg $target $((  $(date +%s) - start ))s ${execs}"
  else
    status=1
    echo "FAIL $pkg $target"; echo "$out" | tail -20
  fi
done < <(grep -rn --include='*_test.go' '^func Fuzz' . | sed -E 's#^\./([^:]+):[0-9]+:func (Fuzz[A-Za-z0-9_]*)\(.*#\1 \2#')
exit $status
