#!/usr/bin/env bash
# LibTorch's headers bring glog, whose CHECK macro replaces Catch's when they come after
# <catch2/catch.hpp>: the CHECKs of that file then abort on failure instead of reporting, and
# are not counted. This fails when a test file reaches a LibTorch header only after Catch's.
# Usage: catch_after_torch.sh SOURCE_DIR
set -euo pipefail
root=${1:?usage: catch_after_torch.sh SOURCE_DIR}
cd "$root"

# Project headers that reach LibTorch, directly or through each other (to a fixed point).
reach=$(grep -lE '#include <(torch|ATen|c10)/' src/*/*.h tests/support/*.h 2>/dev/null || true)
while :; do
  pattern=$(printf '%s\n' $reach | sed -E 's#^(src|tests)/##' | paste -sd'|')
  [ -z "$pattern" ] && break
  more=$(grep -lE "#include \"($pattern)\"" src/*/*.h tests/support/*.h 2>/dev/null || true)
  next=$(printf '%s\n' $reach $more | sort -u)
  [ "$next" = "$(printf '%s\n' $reach | sort -u)" ] && break
  reach=$next
done
pattern=$(printf '%s\n' $reach | sed -E 's#^(src|tests)/##' | paste -sd'|')

bad=0
for f in $(find tests -name '*.cpp' | sort); do
  if ! awk -v pat="^#include (\"($pattern)\"|<(torch|ATen|c10)/)" '
      /^#include <catch2\/catch.hpp>/ { if (!catch_line) catch_line = NR }
      $0 ~ pat { if (catch_line) { if (!after) after = NR } else before = NR }
      END { exit (catch_line && after && !before) ? 1 : 0 }' "$f"; then
    echo "$f: a LibTorch header is included after <catch2/catch.hpp>; include it first, or glog's CHECK replaces Catch's"
    bad=1
  fi
done
exit $bad
