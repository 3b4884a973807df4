#!/usr/bin/env bash
# Runs every fuzz target (func Fuzz... in a _test.go file) for FUZZTIME each.
#
# A finding always writes its input to testdata/fuzz/<target>/ and fails the
# run. Go's fuzzer can also stop with "context deadline exceeded" when the
# -fuzztime deadline passes while a starved worker is mid-call
# (golang/go#51484); with no input written that is retried once, not counted
# as a finding.
set -uo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-5s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run() { # dir target
  go test -run '^$' -fuzz "^$2\$" -fuzztime "$FUZZTIME" "$1" >"$log" 2>&1
}

for dir in $(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | cut -d' ' -f2); do
    echo "fuzz $target ($dir) for $FUZZTIME"
    run "$dir" "$target" && continue
    if ! grep -q 'Failing input written' "$log" && grep -q 'context deadline exceeded' "$log"; then
      echo "fuzz $target: deadline passed mid-call with no finding; retrying once"
      run "$dir" "$target" && continue
    fi
    tail -n 40 "$log"
    echo "fuzz $target failed; rerun: go test -run '^\$' -fuzz '^$target\$' $dir"
    exit 1
  done
done
