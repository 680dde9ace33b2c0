#!/usr/bin/env bash
# Runs every libFuzzer target (each fuzz/fuzz_<name>.cpp) for N seconds from the project's own seed corpora and prints a
# table (target, executions, seconds, crashes). Exits non-zero when any target crashed; the
# crashing inputs are left in BUILD/fuzz/findings/<target>/.
# Usage: bash scripts/fuzz.sh BUILD_DIR SECONDS
set -uo pipefail
build=${1:-build-fuzz}
seconds=${2:-60}
dir="$build/fuzz"
rm -rf "$dir/seeds"
"$dir/fuzz_seeds" "$dir/seeds" >/dev/null
failed=0
printf '%-8s %12s %8s %8s\n' target executions seconds crashes
# Every target the build made (fuzz/fuzz_<name>.cpp -> BUILD/fuzz/fuzz_<name>).
for bin in "$dir"/fuzz_*; do
  t=${bin##*/fuzz_}
  [[ -x $bin && $t != seeds ]] || continue
  corpus="$dir/corpus/$t"
  findings="$dir/findings/$t"
  mkdir -p "$corpus" "$findings"
  cp -n "$dir/seeds/$t"/* "$corpus/" 2>/dev/null || true
  # Regression inputs kept in the repository (tests/fuzz_regressions/<target>/) join the corpus;
  # their <input>.expected files (the error each must give) do not.
  [[ -d tests/fuzz_regressions/$t ]] &&
    find tests/fuzz_regressions/$t -type f ! -name '*.expected' -exec cp -n {} "$corpus/" \; 2>/dev/null
  log="$dir/$t.log"
  start=$(date +%s)
  ASAN_OPTIONS=detect_leaks=0 "$dir/fuzz_$t" "$corpus" -max_total_time="$seconds" -rss_limit_mb=3072 \
    -max_len=65536 -timeout=20 -artifact_prefix="$findings/" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  end=$(date +%s)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  crashes=$(find "$findings" -type f | wc -l)
  printf '%-8s %12s %8s %8s\n' "$t" "${execs:-?}" "$((end - start))" "$crashes"
  if ((rc != 0 || crashes > 0)); then
    failed=1
    grep -m3 -E 'ERROR|SUMMARY|==[0-9]+==' "$log" | sed 's/^/    /'
  fi
done
exit $failed
