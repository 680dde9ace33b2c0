#!/usr/bin/python3
"""The order in which medattn's executables name their shared libraries (cmake/loader_order.txt).

LibTorch 1.13 as Debian builds it pulls in about 300 shared libraries (OpenCV's video and GUI
modules, FFmpeg, Qt, GDAL and all of theirs). At start-up the dynamic loader binds about 150,000
symbols, and each binding searches the global scope from its start, library by library, until
one defines the symbol. In the order the dependency tree gives, the libraries that bind the most
symbols (OpenBLAS, Xerces, GEOS, ...) sit 100-250 places deep, so the loader's symbol search was
about a third of a cold `medattn diagnose` (perf). Naming the busiest libraries first in the
executable's DT_NEEDED list puts them at the front of the scope.

The order must not change which definition a symbol binds to. Libraries that both define a symbol
strongly (OpenBLAS's libblas.so.3 and libopenblas.so.0 both define sgemm_; DCMTK's CharLS and
Debian's libcharls both define JpegLsDecode) are all named, in their old relative order; only weak
definitions (inline functions and template instances, the same code by
the one-definition rule) may bind to another library's copy.

  loader_order.py order BINARY [ARGS...]   print the sonames, busiest first, for cmake/loader_order.txt;
                                           BINARY built with -DMEDATTN_LOADER_ORDER=OFF (the dependency
                                           tree's own order is the one to keep for shared symbols)
  loader_order.py check OLD NEW [ARGS...]  compare two builds' bindings: exit 1 if a symbol binds to a
                                           different library and is not weak in both
"""
import collections
import functools
import os
import re
import subprocess
import sys
import tempfile

BINDING = re.compile(r"binding file (\S+) \[\d+\] to (\S+) \[\d+\]: normal symbol `([^']*)'")
# Libraries with fewer bindings are not worth naming, unless the order rule below needs them.
MIN_BINDINGS = 150


def bindings(argv):
    """(requesting file, target file, symbol) for every symbol the loader binds, realpaths."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, LD_DEBUG="bindings", LD_DEBUG_OUTPUT=os.path.join(tmp, "b"))
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        out = []
        for name in os.listdir(tmp):
            with open(os.path.join(tmp, name), errors="replace") as f:
                for line in f:
                    m = BINDING.search(line)
                    if m:
                        out.append((os.path.realpath(m.group(1)), os.path.realpath(m.group(2)), m.group(3)))
        return out


def scope(binary):
    """The executable's libraries in the loader's search order (ldd lists them breadth first)."""
    out = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        m = re.search(r"=> (/\S+)", line)
        if m:
            path = os.path.realpath(m.group(1))
            if path not in libs:
                libs.append(path)
    return libs


@functools.lru_cache(maxsize=None)
def defined_symbols(path):
    """name -> nm's type letters for the symbols `path` defines (dynamic table; a name may have
    several versions)."""
    out = subprocess.run(["nm", "-D", "--defined-only", path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True).stdout
    kinds = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            kinds.setdefault(parts[2].split("@")[0], set()).add(parts[1])
    return kinds


def strong_symbols(path):
    # Absolute symbols are version names; the others named here the linker puts in every library.
    return {name for name, kinds in defined_symbols(path).items()
            if kinds & set("TDBRG") and name not in ("__bss_start", "_edata", "_end", "_init", "_fini")}


def weak_in(path, symbol):
    kinds = defined_symbols(path).get(symbol)
    return bool(kinds) and kinds <= {"W", "V", "u", "i"}


def soname(path):
    out = subprocess.run(["readelf", "-d", path], stdout=subprocess.PIPE, text=True).stdout
    m = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", out)
    return m.group(1) if m else os.path.basename(path)


def order(argv):
    binary = os.path.realpath(argv[0])
    libs = scope(binary)
    counts = collections.Counter(target for _, target, _ in bindings(argv) if target != binary)
    chosen = {lib for lib in libs if counts[lib] >= MIN_BINDINGS}
    # Libraries that define a symbol strongly in common keep their order: whoever comes first
    # in the old scope must come first in the new one, so it joins the list when a later one does.
    symbols = {lib: strong_symbols(lib) for lib in libs}
    before = collections.defaultdict(set)  # lib -> libs that must precede it
    for i, a in enumerate(libs):
        for b in libs[i + 1:]:
            if symbols[a] & symbols[b]:
                before[b].add(a)
    # Every library in such a pair is named, in the old order: the ones left out then define no
    # symbol strongly that another defines, and where the loader happens to put them cannot matter.
    for lib, pres in before.items():
        if pres:
            chosen.add(lib)
            chosen |= pres
    # A library that must wait for another lends it its count, so that it is not held back.
    weight = {lib: counts[lib] for lib in chosen}
    for lib in sorted(chosen, key=lambda lib: -libs.index(lib)):
        for pre in before[lib] & chosen:
            weight[pre] = max(weight[pre], weight[lib])
    placed, result = set(), []
    pending = sorted(chosen, key=lambda lib: (-weight[lib], libs.index(lib)))
    while pending:
        for lib in pending:
            if (before[lib] & chosen) <= placed:
                result.append(lib)
                placed.add(lib)
                pending.remove(lib)
                break
        else:
            raise SystemExit("cyclic order constraints")
    for lib in result:
        print(f"{soname(lib)}\t# {counts[lib]} bindings, was {libs.index(lib) + 1}")


def check(old, new, args):
    def named(binary):
        exe = os.path.realpath(binary)  # the two executables are one program: call both "the executable"
        return {(req, sym): ("the executable" if tgt == exe else tgt)
                for req, tgt, sym in bindings([binary] + args) if req != exe}
    a, b = named(old), named(new)
    moved = [(k, a[k], b[k]) for k in a.keys() & b.keys() if a[k] != b[k]]
    bad = [m for m in moved if "the executable" in (m[1], m[2]) or
           not (weak_in(m[1], m[0][1]) and weak_in(m[2], m[0][1]))]
    print(f"{len(a)} bindings before, {len(b)} after; {len(moved)} bind to another library's copy;"
          f" {len(bad)} of them not weak in both")
    for key in sorted(a.keys() ^ b.keys())[:20]:
        print(f"  only {'before' if key in a else 'after'}: {os.path.basename(key[0])}: {key[1]}")
    for (req, sym), x, y in bad[:20]:
        print(f"  {os.path.basename(req)}: {sym}: {os.path.basename(x)} -> {os.path.basename(y)}")
    # A lazily bound symbol or two (a futex wait) may be bound in one run and not the other.
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "order":
        order(sys.argv[2:])
    elif len(sys.argv) >= 4 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], sys.argv[3], sys.argv[4:]))
    else:
        print(__doc__)
        sys.exit(2)
