#!/usr/bin/env bash
# CTest lists Catch's test names as a CMake list, so a ';' in a name splits the test in two
# entries that match no test (the runner then fails them with "No tests ran"). This names the
# offending test cases instead.
# Usage: test_names.sh SOURCE_DIR
set -euo pipefail
root=${1:?usage: test_names.sh SOURCE_DIR}
bad=$(grep -rnE 'TEST_CASE\("[^"]*;' "$root/tests" --include='*.cpp' || true)
if [[ -n "$bad" ]]; then
  echo "test names must not contain ';' (CTest splits them):"
  echo "$bad"
  exit 1
fi
echo "no test name contains ';'"
