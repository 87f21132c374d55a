#!/usr/bin/env python3
"""tests/api_doc.py - writes docs/API.md from rtws.h.

usage: python3 tests/api_doc.py [rtws.h] > docs/API.md

Reads the public part of the header (up to `#endif /* RTWS_H */`), splits it
at the `/* === layer N: name === */` banners and lists, layer by layer and in
header order, every RTWS_API function with its signature and the comment
block above it, and every public type and constant. rtws__ (private) names
are left out. tests/interop_api_doc.sh checks that docs/API.md is what this
script writes. Standard library only; the output depends only on rtws.h."""
import re
import sys

BANNER = re.compile(r"^/\* === layer (\d+[a-z]?): (\w+)")
BOX = re.compile(r"^/\* =+ \*/$")


def strip_comments(s):
    s = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), s, flags=re.S)
    return re.sub(r'"(\\.|[^"\\])*"', '""', s)


def read_public(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    end = next(i for i, l in enumerate(lines) if l.startswith("#endif /* RTWS_H */"))
    return lines[:end]


def version(lines):
    for l in lines:
        m = re.match(r'#define RTWS_VERSION_STRING "([^"]*)"', l)
        if m:
            return m.group(1)
    return "?"


def scan(line, in_c):
    """(has_code, brace_delta, in_c after the line) for one line, given whether
    it starts inside a /* comment."""
    code = []
    i = 0
    while i < len(line):
        if in_c:
            j = line.find("*/", i)
            if j < 0:
                return "".join(code).strip() != "", _delta(code), True
            in_c = False
            i = j + 2
        elif line.startswith("/*", i):
            in_c = True
            i += 2
        else:
            code.append(line[i])
            i += 1
    return "".join(code).strip() != "", _delta(code), in_c


def _delta(code):
    bare = re.sub(r'"(\\.|[^"\\])*"', '""', "".join(code))
    return bare.count("{") - bare.count("}")


def split_items(lines):
    """[(layer, name, [items])] where an item is (comment_lines, code_lines):
    a comment block and the declarations right below it. A blank line, or a
    comment that starts at depth 0 after code, starts the next item."""
    layers = []
    cur = None
    depth = 0
    in_c = False
    item = None   # [comment, code]
    in_lead = False  # inside a comment block that starts an item

    def flush():
        nonlocal item
        if item and cur is not None and (item[0] or item[1]):
            cur[2].append((item[0], item[1]))
        item = None

    for line in lines:
        m = BANNER.match(line)
        if m and depth == 0 and not in_c:
            flush()
            cur = (m.group(1), m.group(2), [])  # "6a" for a sub-layer
            layers.append(cur)
            continue
        if cur is None or (BOX.match(line) and depth == 0 and not in_c):
            continue
        if line.strip() == "" and depth == 0 and not in_c:
            flush()
            continue
        starts_in_c = in_c
        has_code, d, in_c = scan(line, in_c)
        if depth == 0 and not has_code and (line.lstrip().startswith("/*") or
                                            (starts_in_c and in_lead)):
            if item and item[1] and not starts_in_c:
                flush()  # a comment after code starts the next item
            if item is None:
                item = [[], []]
            item[0].append(line)
            in_lead = in_c
            continue
        in_lead = False
        if item is None:
            item = [[], []]
        item[1].append(line)
        depth += d
    flush()
    return layers


def comment_text(comment):
    """The words of a comment block, without the markers, dedented."""
    body = "\n".join(comment)
    body = re.sub(r"^\s*/\*\s?", "", body)
    body = re.sub(r"\s*\*/\s*$", "", body)
    out = [l.rstrip() for l in body.split("\n")]
    rest = [l for l in out[1:] if l.strip()]
    ind = min((len(l) - len(l.lstrip()) for l in rest), default=0)
    return [out[0].strip()] + [l[ind:] for l in out[1:]]


def statements(code_lines):
    """Splits code into top-level statements (text, is_function)."""
    text = "\n".join(code_lines)
    bare = strip_comments(text)
    out = []
    start = 0
    depth = 0
    for i, ch in enumerate(bare):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "\n" and depth == 0 and bare[start:i].lstrip().startswith("#") and \
                not bare[start:i].rstrip().endswith("\\"):
            out.append(text[start:i])
            start = i + 1
        elif ch == ";" and depth == 0 and not bare[start:i].lstrip().startswith("#"):
            j = text.find("\n", i)
            j = len(text) if j < 0 else j
            out.append(text[start:j])
            start = j + 1
    if text[start:].strip():
        out.append(text[start:])
    return [s.strip("\n") for s in out if s.strip()]


def fn_name(stmt):
    m = re.search(r"\b(rtws_\w+)\s*\(", strip_comments(stmt))
    return m.group(1) if m else None


def type_names(stmt):
    bare = strip_comments(stmt).strip()
    names = []
    if bare.startswith("#define"):
        m = re.match(r"#define\s+(\w+)", bare)
        return [m.group(1)] if m else []
    m = re.search(r"\(\s*\*\s*(\w+)\s*\)\s*\(", bare)
    if bare.startswith("typedef") and m and "{" not in bare:
        return [m.group(1)]
    m = re.search(r"\}\s*(\w+)\s*;\s*$", bare)
    if m:
        names.append(m.group(1))
    elif bare.startswith("typedef"):
        m = re.search(r"(\w+)\s*;\s*$", bare)
        if m:
            names.append(m.group(1))
    elif re.match(r"(struct|enum|union)\s+(\w+)\s*\{", bare):
        names.append(re.match(r"(struct|enum|union)\s+(\w+)", bare).group(2))
    elif bare.startswith("enum"):
        names += re.findall(r"\b(RTWS_\w+)\s*(?:=|,|\})", bare)
    return names


def anchor(name):
    return name.lower()


def linkify(text, known, self_names):
    """Backticks around rtws names, links to the functions this page lists."""
    out = []
    for part in re.split(r"(`[^`]*`)", text):
        if part.startswith("`"):
            out.append(part)
            continue
        part = part.replace("*", "\\*").replace("_\\*", "_*")

        def rep(m):
            name, paren = m.group(1), m.group(2) or ""
            if name in known and name not in self_names:
                return f"[`{name}{paren}`](#{anchor(name)})"
            return f"`{name}{paren}`"
        part = re.sub(r"\b((?:rtws|RTWS)_\w*[A-Za-z0-9])(\(\))?", rep, part)
        out.append(part)
    return "".join(out)


def render_comment(lines, known, self_names):
    """Prose for a comment: plain sentences become a paragraph; a comment with
    indented lines or lists keeps its line breaks."""
    structured = any(l.startswith((" ", "-", "\t")) for l in lines[1:] if l.strip())
    if structured:
        return ["```text"] + [l for l in lines] + ["```"]
    para = " ".join(l.strip() for l in lines if l.strip())
    return [linkify(para, known, self_names)]


def errors_table(stmt):
    rows = re.findall(r'X\((RTWS_\w+),\s*(-?\d+),\s*"((?:\\.|[^"\\])*)"\)', stmt)
    out = ["| error | value | `rtws_err_str()` |", "|---|---:|---|"]
    out += [f"| `{n}` | {v} | {t} |" for n, v, t in rows]
    return out


def normalize_fn(stmt):
    bare = strip_comments(stmt)
    bare = re.sub(r"\bRTWS_API\s+", "", bare)
    return re.sub(r"\s+", " ", bare).replace("( ", "(").replace(" )", ")").strip()


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "rtws.h"
    lines = read_public(path)
    layers = split_items(lines)
    # every public function name, for links
    known = set()
    for _, _, items in layers:
        for _, code in items:
            for s in statements(code):
                if re.search(r"\bRTWS_API\b", s):
                    known.add(fn_name(s))
    out = []
    w = out.append
    w("# rtws API reference")
    w("")
    w(f"rtws {version(lines)}. Generated from the public part of `rtws.h` by "
      "`python3 tests/api_doc.py rtws.h > docs/API.md`; do not edit by hand "
      "(`tests/interop_api_doc.sh` fails when this page and the header differ). "
      "The header is the source: every declaration below is copied from it, with "
      "the comment above it. Private names (`rtws__*`) are left out.")
    w("")
    w("Layers come in header order; each uses only the ones before it (the map is "
      "the comment at the top of `rtws.h`). Conventions: zero is success and failures "
      "are negative `rtws_err` values; `RTWS_EAGAIN` is not a failure; config "
      "structs zero-initialised mean defaults (in parentheses); input pointers are "
      "borrowed for the call; event payloads are valid until the callback returns.")
    w("")
    w("## Contents")
    w("")
    sections = []
    for lay, name, items in layers:
        fns = []
        for _, code in items:
            for s in statements(code):
                if re.search(r"\bRTWS_API\b", s):
                    fns.append(fn_name(s))
        title = f"Layer {lay}: {name}"
        sections.append((lay, name, items))
        w(f"- [{title}](#layer-{lay}-{name}) ({len(fns)} functions): " +
          ", ".join(f"[`{f}`](#{anchor(f)})" for f in fns))
    w("")
    anchors = set()
    for lay, name, items in sections:
        w(f"## Layer {lay}: {name}")
        w("")
        for comment, code in items:
            text = comment_text(comment) if comment else []
            stmts = statements(code)
            fns = [fn_name(s) for s in stmts if re.search(r"\bRTWS_API\b", s)]
            types = []
            for s in stmts:
                if not re.search(r"\bRTWS_API\b", s):
                    types += type_names(s)
            shown = [n for n in fns + types if n and not n.startswith(("rtws__", "RTWS__"))]
            if not stmts:
                if text:  # prose about the layer
                    w("\n".join(render_comment(text, known, set())))
                    w("")
                continue
            if any(s.lstrip().startswith("#define RTWS__ERRORS") for s in stmts):
                w("### Errors")
                w("")
                if text:
                    w("\n".join(render_comment(text, known, set())))
                    w("")
                w("\n".join(errors_table(stmts[0])))
                w("")
                continue
            if any("RTWS__ERRORS(" in s for s in stmts):  # enum rtws_err, from the table
                w('<a id="rtws_err"></a>')
                w("### `rtws_err`")
                w("")
                w("```c")
                w("typedef enum rtws_err { RTWS_OK = 0, RTWS_EAGAIN = -1, RTWS_ERR_INVALID = -2, "
                  "/* ... the table above */ } rtws_err;")
                w("```")
                w("")
                continue
            if not shown:
                continue  # private types, forward declarations of system structs
            private = text and text[0].startswith("Fields are private")
            for n in shown:
                if anchor(n) not in anchors:
                    anchors.add(anchor(n))
                    w(f'<a id="{anchor(n)}"></a>')
            if len(shown) > 3 and all(n.isupper() for n in shown):  # an enum of constants
                w(f"### `{shown[0]}` ... `{shown[-1]}`")
            else:
                w("### " + ", ".join(f"`{n}`" for n in shown))
            w("")
            if text:
                w("\n".join(render_comment(text, known, set(shown))))
                w("")
            w("```c")
            for s in stmts:
                if re.search(r"\bRTWS_API\b", s):
                    w(normalize_fn(s))
                elif private and re.match(r"\s*struct\s+\w+\s*\{", strip_comments(s)):
                    nm = re.match(r"\s*struct\s+(\w+)", s).group(1)
                    w(f"struct {nm} {{ /* private fields */ }};")
                elif not any(t.startswith(("rtws__", "RTWS__")) for t in type_names(s)) or \
                        not type_names(s):
                    w(s)
            w("```")
            w("")
    sys.stdout.write("\n".join(out).rstrip("\n") + "\n")


if __name__ == "__main__":
    main()
