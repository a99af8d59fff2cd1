#!/usr/bin/env bash
# The benchmarks refuse bad input with exit 2 and a message naming it, before any work: a bad
# WAND_CPU, counts out of range or malformed, an unknown option, a missing value, a bad KV cache
# type. Usage: bad_input.sh ENGINE_BENCH SAMPLE_BENCH
set -u
engine=$1 sample=$2
failed=0
expect() {  # expect RC PATTERN -- COMMAND...
  local want=$1 pattern=$2; shift 3
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  if [ "$rc" != "$want" ] || ! grep -qF -- "$pattern" <<<"$err"; then
    echo "FAIL: $* -> rc $rc (want $want), stderr: $err"; failed=1
  fi
}
expect 2 "WAND_CPU=neon: unknown kernel path" -- env WAND_CPU=neon "$sample" --engine-only --ks 1 --reps 1
expect 2 "WAND_CPU=neon: unknown kernel path" -- env WAND_CPU=neon "$engine" --quick
expect 2 "--ks -1: '-1' is not a count from 1 to 64" -- "$sample" --ks -1
expect 2 "--ks 1,2x: '2x' is not a count" -- "$sample" --ks 1,2x
expect 2 "--reps 0: '0' is not a count" -- "$sample" --reps 0
expect 2 "--reps takes one count" -- "$sample" --reps 1,2
expect 2 "--threads 0: '0' is not a count" -- "$sample" --threads 0
expect 2 "unknown option '--bogus'" -- "$sample" --bogus
expect 2 "--ks needs a value" -- "$sample" --ks
expect 2 "KV cache type 'f17' is unknown" -- "$sample" --kv-cache f17
expect 2 "KV cache type 'f17' is unknown" -- "$engine" --kv-cache f17
expect 2 "unknown option '--bogus'" -- "$engine" --bogus
expect 0 "" -- "$sample" --help
expect 0 "" -- "$engine" --help
exit $failed
