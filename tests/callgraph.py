#!/usr/bin/env python3
"""tests/callgraph.py - checks the layering of rtws.h's implementation.

usage: python3 tests/callgraph.py [rtws.h] [-v]

The implementation (after `#if defined(RTWS_IMPLEMENTATION) ...`) is split at
its section banners, `/* === layer N: name === */`, which must come in layer
order (a layer may have more than one section, each with its own name, as
layer 1 has frame and deflate; a section may name the earlier sections of
its own layer). Every function defined at file scope is assigned to the section it is
defined in. A function body that names a function defined in a LATER section
(a call, or taking its address) is a violation: lower layers reach higher ones
only through tables they were given (a function pointer called through a
struct member is not a use by name, so it passes). So is naming an earlier
layer that the "calls" column of the map at the top of rtws.h does not list
(MAY_CALL below), and a socket call in layers 0-3, 6, 6a or 6b.

It also checks the declaration half: every RTWS_API function declared under
the public `layer N` banner is defined in implementation section N.

Prints every violation and ends with "N passed, M failed"; exits 1 on any
failure. ALLOWED lists (caller, callee) pairs accepted on purpose; keep it
empty unless DESIGN.md documents the exception."""
import re
import sys

# rtws_ctx_new takes the default wss:// transport from the RTWS_TLS_TRANSPORT
# macro (rtws_transport_bearssl() unless the user defines it): a configured
# default, read once per context, like RTWS_MALLOC. The macro is expanded
# below so that this one link is checked, not hidden.
ALLOWED = {("rtws_ctx_new", "rtws_transport_bearssl")}
MACROS = {"RTWS_TLS_TRANSPORT": "rtws_transport_bearssl()"}

# The "calls" column of the LAYERS map at the top of rtws.h: the earlier
# layers each layer may name. (Later ones are always refused.)
MAY_CALL = {0: set(), 1: {0}, 2: {0, 1}, 3: {0, 1, 2}, 4: {0, 1, 2, 3}, 5: {0, 1, 2, 3},
            6: {0, 1}, 7: {0, 1, 2, 3, 4, 5, 6, "6a", "6b"}}
# Sub-layers ("layer 6a: resp") sit between two numbered layers.
MAY_CALL.update({"6a": {0}, "6b": {0, 4, "6a"}})
# "Layers 0-3, 6 and 6a do no socket I/O" (6b neither): none of these in their code.
NO_SOCKETS = {0, 1, 2, 3, 6, "6a", "6b"}
SOCKET_CALLS = {"socket", "connect", "accept", "accept4", "bind", "listen", "recv", "recvfrom",
                "recvmsg", "send", "sendto", "sendmsg", "writev", "readv", "poll", "ppoll",
                "select", "epoll_create1", "epoll_ctl", "epoll_wait", "getaddrinfo",
                "setsockopt", "getsockopt", "shutdown", "getpeername", "getsockname"}

BANNER = re.compile(r"^/\* === layer (\d+[a-z]?): (\w+)")


def layer_id(text):
    """7 for "7", "6a" for a sub-layer."""
    return int(text) if text.isdigit() else text


def layer_key(layer):
    """Sort key: 6 < "6a" < "6b" < 7."""
    s = str(layer)
    return (int(s.rstrip("abcdefghijklmnopqrstuvwxyz")), s)
KEYWORDS = {"if", "while", "for", "switch", "return", "sizeof", "do", "else", "case",
            "defined", "__attribute__", "_Pragma", "__typeof__", "typeof", "alignof",
            "_Alignof", "offsetof"}


def strip_code(text):
    """Blanks comments, string and char literals and preprocessor lines,
    keeping every newline so line numbers stay right."""
    out = []
    i, n = 0, len(text)
    line_start = True
    while i < n:
        c = text[i]
        if line_start and c in " \t":
            out.append(c); i += 1; continue
        if line_start and c == "#":  # a directive, with its continuation lines
            while i < n and text[i] != "\n":
                if text[i] == "\\" and i + 1 < n and text[i + 1] == "\n":
                    out.append(" \n"); i += 2; continue
                if text.startswith("/*", i):  # a comment inside a directive
                    j = text.find("*/", i + 2)
                    j = n if j < 0 else j + 2
                    out.append("".join(ch if ch == "\n" else " " for ch in text[i:j])); i = j; continue
                out.append(" "); i += 1
            continue
        line_start = False
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j])); i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(c + " " * max(0, j - i - 2) + c); i = j
        else:
            if c == "\n":
                line_start = True
            out.append(c); i += 1
    res = "".join(out)
    assert len(res) == len(text), "strip_code must keep offsets"
    return res


def find_sections(lines, impl_start):
    """[(layer, name, first_line_index)] of the implementation banners."""
    secs = []
    for idx in range(impl_start, len(lines)):
        m = BANNER.match(lines[idx])
        if m:
            secs.append((layer_id(m.group(1)), m.group(2), idx))
    return secs


def functions(code, line_of):
    """Yields (name, start_offset, body_start, body_end) for every function
    definition at brace depth 0 of the stripped code."""
    depth = 0
    stmt_start = 0
    i, n = 0, len(code)
    while i < n:
        c = code[i]
        if c == "{":
            if depth == 0:
                head = code[stmt_start:i]
                m = re.search(r"([A-Za-z_]\w*)\s*\(([^;{}]*)\)\s*$", head)
                # not `= {` (an initializer) nor struct/enum/union bodies
                if m and "=" not in head[head.rfind(")") if ")" in head else 0:] and \
                        not re.search(r"\b(struct|enum|union)\s+\w*\s*$", head):
                    start = i
                    d = 0
                    j = i
                    while j < n:
                        if code[j] == "{":
                            d += 1
                        elif code[j] == "}":
                            d -= 1
                            if d == 0:
                                break
                        j += 1
                    yield m.group(1), stmt_start + m.start(1), start, j
                    i = j + 1
                    stmt_start = i
                    continue
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                stmt_start = i + 1
        elif c == ";" and depth == 0:
            stmt_start = i + 1
        i += 1


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    verbose = "-v" in sys.argv
    path = args[0] if args else "rtws.h"
    text = open(path, encoding="utf-8").read()
    for macro, expansion in MACROS.items():  # uses only: the #define line stays
        text = re.sub(r"(?<!define )\b%s\b" % macro, expansion, text)
    lines = text.split("\n")
    passed = failed = 0

    def fail(msg):
        nonlocal failed
        failed += 1
        print("FAIL:", msg)

    impl_start = next((i for i, l in enumerate(lines)
                       if l.startswith("#if defined(RTWS_IMPLEMENTATION)") and "RTWS__IMPLEMENTED" in l),
                      None)
    pub_end = next((i for i, l in enumerate(lines) if l.startswith("#endif /* RTWS_H */")), None)
    if impl_start is None or pub_end is None:
        fail("no public part or no implementation found in " + path)
        print(f"{passed} passed, {failed} failed")
        return 1
    secs = find_sections(lines, impl_start)
    layers = [s[0] for s in secs]
    if not secs:
        fail("no `/* === layer N: name` banners in the implementation")
    elif layers != sorted(layers, key=layer_key) or len(set((s[0], s[1]) for s in secs)) != len(secs):
        fail("implementation banners out of layer order: " +
             ", ".join(f"{l} {nm}" for l, nm, _ in secs))
    else:
        passed += 1
    # declaration banners (public part) must name the same layers
    decl = [(layer_id(m.group(1)), m.group(2), i) for i, l in enumerate(lines[:pub_end])
            for m in [BANNER.match(l)] if m]
    if [(l, nm) for l, nm, _ in decl] != [(l, nm) for l, nm, _ in secs]:
        fail("declaration banners " + str([(l, nm) for l, nm, _ in decl]) +
             " differ from implementation banners " + str([(l, nm) for l, nm, _ in secs]))
    else:
        passed += 1

    code = strip_code(text)
    # offset -> line number
    starts = [0]
    for l in lines:
        starts.append(starts[-1] + len(l) + 1)

    def line_no(off):
        lo, hi = 0, len(starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if starts[mid] <= off:
                lo = mid
            else:
                hi = mid - 1
        return lo  # 0-based

    def section_of(line):
        cur = None
        for k, (lay, nm, idx) in enumerate(secs):
            if idx <= line:
                cur = k
        return cur

    impl_off = starts[impl_start]
    defs = {}    # name -> set of section indexes
    bodies = []  # (name, section, body_start, body_end, line)
    for name, off, b0, b1 in functions(code[impl_off:], None):
        ln = line_no(impl_off + off)
        s = section_of(ln)
        if s is None:
            continue  # before the first banner: macro helpers
        defs.setdefault(name, set()).add(s)
        bodies.append((name, s, impl_off + b0, impl_off + b1, ln))
    if verbose:
        for k, (lay, nm, idx) in enumerate(secs):
            print(f"section {lay} {nm} (line {idx + 1}): "
                  f"{sum(1 for b in bodies if b[1] == k)} functions")

    ident = re.compile(r"(->|\.)?\s*\b([A-Za-z_]\w*)\b(\s*\()?")
    violations = 0
    seen = set()
    for name, s, b0, b1, ln in bodies:
        for m in ident.finditer(code, b0, b1):
            if m.group(1) or m.group(2) in KEYWORDS:
                continue  # a member (table call) or a keyword
            callee = m.group(2)
            if m.group(3) and callee in SOCKET_CALLS and secs[s][0] in NO_SOCKETS and \
                    (name, callee) not in seen:
                seen.add((name, callee))
                violations += 1
                print(f"FAIL: rtws.h:{line_no(m.start(2)) + 1}: {name} (layer {secs[s][0]} "
                      f"{secs[s][1]}) calls {callee}(): layers 0-3, 6, 6a and 6b do no socket I/O")
                continue
            if callee not in defs or callee == name:
                continue
            target = min(defs[callee])
            if target == s or (name, callee) in ALLOWED:
                continue
            if target < s:
                lay_from, lay_to = secs[s][0], secs[target][0]
                if lay_from in MAY_CALL and lay_to != lay_from and lay_to not in MAY_CALL[lay_from] and \
                        (name, callee) not in seen:
                    seen.add((name, callee))
                    violations += 1
                    print(f"FAIL: rtws.h:{line_no(m.start(2)) + 1}: {name} (layer {lay_from} "
                          f"{secs[s][1]}) calls {callee} (layer {lay_to} {secs[target][1]}), "
                          f"not in its calls column of the LAYERS map")
                continue
            key = (name, callee)
            if key in seen:
                continue
            seen.add(key)
            violations += 1
            how = "calls" if m.group(3) else "names"
            lay_from, nm_from = secs[s][0], secs[s][1]
            lay_to, nm_to = secs[target][0], secs[target][1]
            print(f"FAIL: rtws.h:{line_no(m.start(2)) + 1}: {name} (layer {lay_from} {nm_from}) "
                  f"{how} {callee} (layer {lay_to} {nm_to}, defined later)")
    if violations:
        failed += violations
    else:
        passed += 1

    # every public function is defined in the section of the layer it is declared in
    pub = strip_code("\n".join(lines[:pub_end]))
    mism = 0
    for m in re.finditer(r"\bRTWS_API\b[^;]*?\b(rtws_\w+)\s*\(", pub):
        ln = pub.count("\n", 0, m.start())
        dl = None
        for lay, nm, idx in decl:
            if idx <= ln:
                dl = (lay, nm)
        fn = m.group(1)
        if fn not in defs:
            fail(f"rtws.h:{ln + 1}: {fn} is declared but no definition was found")
            mism += 1
            continue
        where = {(secs[k][0], secs[k][1]) for k in defs[fn]}
        if dl not in where:
            fail(f"rtws.h:{ln + 1}: {fn} is declared under layer {dl[0]} {dl[1]} but defined in " +
                 ", ".join(f"layer {a} {b}" for a, b in sorted(where)))
            mism += 1
    if not mism:
        passed += 1
    print(f"{len(bodies)} functions in {len(secs)} sections; "
          f"{violations} layering violation(s)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
