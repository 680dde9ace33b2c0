#!/usr/bin/env bash
# Writes a help2man include file with every command's --help, for the man page (the commands
# come from the binary itself: `medattn --completion commands`).
set -euo pipefail
bin=$1
out=$2
{
  echo "[COMMANDS]"
  for c in $("$bin" --completion commands); do
    echo ".SS $c"
    echo ".nf"
    "$bin" "$c" --help | sed 's/\\/\\\\/g; s/^\./\\\&./'
    echo ".fi"
  done
  echo "[EXIT STATUS]"
  echo "0 all inputs succeeded; 1 some inputs failed (the rest were processed and reported);"
  echo "2 usage error (bad flag or value); 3 nothing could run (model missing or invalid, output not writable)."
} > "$out"
