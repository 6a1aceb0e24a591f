#!/usr/bin/env python3
"""What the bytes of a wasm module are (docs/footprint.md): section sizes, and, when the module
keeps its name section (the `wasm-names` profile: tests/bench/footprint.sh builds it), the
largest functions and the code size per crate. Reads the module itself (no twiggy needed);
names are demangled with c++filt when it is installed.

Usage: wasm_size.py MODULE.wasm [--top N]
       wasm_size.py --strip IN.wasm OUT.wasm   (copy without custom sections: names, debug info,
       producers; what tests/tools/build-wasm.sh does when binaryen's wasm-opt is missing)"""
import argparse
import re
import shutil
import subprocess
import sys
from collections import Counter

SECTIONS = {0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory",
            6: "global", 7: "export", 8: "start", 9: "elem", 10: "code", 11: "data",
            12: "datacount"}


def leb(buf, i):
    out, shift = 0, 0
    while True:
        b = buf[i]
        i += 1
        out |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return out, i


def parse(buf):
    """(section sizes, [code body sizes by defined function], {function index: name},
    number of imported functions)."""
    i, sizes, bodies, names, imported = 8, Counter(), [], {}, 0
    while i < len(buf):
        sid, i = buf[i], i + 1
        size, i = leb(buf, i)
        end = i + size
        name = SECTIONS.get(sid, str(sid))
        if sid == 0:
            n, j = leb(buf, i)
            cname = buf[j:j + n].decode(errors="replace")
            name = f"custom:{cname}"
            if cname == "name":
                names = parse_names(buf, j + n, end)
        elif sid == 2:
            imported = count_func_imports(buf, i)
        elif sid == 10:
            count, j = leb(buf, i)
            for _ in range(count):
                body, k = leb(buf, j)
                bodies.append(k - j + body)
                j = k + body
        sizes[name] += end - i
        i = end
    return sizes, bodies, names, imported


def count_func_imports(buf, i):
    count, i = leb(buf, i)
    funcs = 0
    for _ in range(count):
        for _ in range(2):  # module, field
            n, i = leb(buf, i)
            i += n
        kind, i = buf[i], i + 1
        if kind == 0:
            funcs += 1
            _, i = leb(buf, i)
        elif kind == 1:  # table: reftype, limits
            i += 1
            flags, i = leb(buf, i)
            _, i = leb(buf, i)
            if flags & 1:
                _, i = leb(buf, i)
        elif kind == 2:  # memory: limits
            flags, i = leb(buf, i)
            _, i = leb(buf, i)
            if flags & 1:
                _, i = leb(buf, i)
        elif kind == 3:  # global: type, mutability
            i += 2
        else:  # tag
            i += 1
            _, i = leb(buf, i)
    return funcs


def parse_names(buf, i, end):
    names = {}
    while i < end:
        sub, i = buf[i], i + 1
        size, i = leb(buf, i)
        if sub == 1:
            count, j = leb(buf, i)
            for _ in range(count):
                idx, j = leb(buf, j)
                n, j = leb(buf, j)
                names[idx] = buf[j:j + n].decode(errors="replace")
                j += n
        i += size
    return names


def demangle(names):
    if not shutil.which("c++filt") or not names:
        return names
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True,
                         text=True).stdout.splitlines()
    return [re.sub(r"::h[0-9a-f]{16}$", "", n) for n in out] if len(out) == len(names) else names


def crate_of(name):
    """The crate a (demangled) function belongs to: the first path segment, looking through
    `<T as Trait>` to T, and through `impl` wrappers."""
    n = name.lstrip("<&*").replace("mut ", "").replace("dyn ", "").replace("impl ", "")
    m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", n)
    return m.group(0) if m else name[:20]


def strip(src, dst):
    with open(src, "rb") as f:
        buf = f.read()
    out, i = bytearray(buf[:8]), 8
    while i < len(buf):
        start, sid = i, buf[i]
        size, j = leb(buf, i + 1)
        i = j + size
        if sid != 0:
            out += buf[start:i]
    with open(dst, "wb") as f:
        f.write(out)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--strip":
        strip(sys.argv[2], sys.argv[3])
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("module")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    with open(args.module, "rb") as f:
        buf = f.read()
    sizes, bodies, names, imported = parse(buf)
    print(f"{args.module}: {len(buf)} bytes, {len(bodies)} functions")
    for name, size in sizes.most_common():
        print(f"  {name:20} {size:9}")
    if not names:
        print("(no name section: build with the wasm-names profile for functions and crates)")
        return 0
    raw = [names.get(imported + k, f"func{imported + k}") for k in range(len(bodies))]
    pretty = demangle(raw)
    crates, funcs = Counter(), Counter()
    for name, size in zip(pretty, bodies):
        crates[crate_of(name)] += size
        funcs[name] += size
    total = sum(bodies)
    print(f"\ncode by crate (first path segment; generic code counts where it is defined):")
    for crate, size in crates.most_common(args.top):
        print(f"  {size:9} {100 * size / total:5.1f}%  {crate}")
    print(f"\nlargest functions:")
    for name, size in funcs.most_common(args.top):
        print(f"  {size:9}  {name[:150]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
