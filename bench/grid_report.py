"""bench/grid_report.py - the tables and heatmaps of bench/grid.sh (and of
bench/run.sh's grid section): reads DIR/raw.tsv, DIR/meta.tsv and
DIR/notes.txt, prints markdown on stdout and writes CHART_DIR/grid_ratio.svg
(sizes x depths) and CHART_DIR/grid_conns_ratio.svg (connection counts),
the ratio rtws msgs/s / uWebSockets.js msgs/s per cell. The ratio is paired:
each round runs the two servers back to back (grid.sh alternates them), so
a round's ratio compares runs that met the same machine; the cell's ratio is
the median of its rounds' ratios. The machine this runs on changes speed for
seconds at a time (both servers' msg/s fall by half together and recover), and
a ratio of the two medians can then compare one server's fast rounds with the
other's slow ones; the table gives that ratio of medians as well.
Standard library only (the SVG is written by hand).

usage: python3 bench/grid_report.py DIR CHART_DIR

raw.tsv: kind size depth conns peer round msgs_per_s server_us_per_msg
server_cpu_pct errors loadgen_cpu_pct (tab-separated; empty figures and
errors=1 when the run failed)."""
import collections
import math
import os
import statistics
import sys

D, CHARTS = sys.argv[1], sys.argv[2]
os.makedirs(CHARTS, exist_ok=True)
NAMES = {"rtws": "rtws", "uws": "uWebSockets.js", "ws": "Node ws", "lws": "libwebsockets",
         "wslay": "wslay"}

data = collections.defaultdict(lambda: collections.defaultdict(list))  # (kind,size,depth,conns,peer) -> key -> []
peers, cells = [], []
rounds = collections.defaultdict(dict)  # (kind,size,depth,conns,peer) -> round -> msgs/s
with open(os.path.join(D, "raw.tsv")) as f:
    for line in f:
        r = line.rstrip("\n").split("\t")
        if len(r) == 10:
            r.append("")
        if len(r) != 11:
            continue
        kind, size, depth, conns, peer, run, mps, us, cpu, err, lcpu = r
        cell = (kind, int(size), int(depth), int(conns))
        if cell not in cells:
            cells.append(cell)
        if peer not in peers:
            peers.append(peer)
        d = data[cell + (peer,)]
        try:
            rounds[cell + (peer,)][run] = float(mps)
        except ValueError:
            pass
        for k, v in (("mps", mps), ("us", us), ("cpu", cpu), ("lcpu", lcpu)):
            try:
                d[k].append(float(v))
            except ValueError:
                pass
        try:
            d["err"].append(float(err or 0))
        except ValueError:
            d["err"].append(1)
meta = {}
if os.path.exists(os.path.join(D, "meta.tsv")):
    for line in open(os.path.join(D, "meta.tsv")):
        k, _, v = line.rstrip("\n").partition("\t")
        meta[k] = v
notes = []
if os.path.exists(os.path.join(D, "notes.txt")):
    notes = [l.strip() for l in open(os.path.join(D, "notes.txt")) if l.strip()]


def med(cell, peer, key):
    v = data[cell + (peer,)].get(key)
    return statistics.median(v) if v else None


def size_label(n):
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n >> 10} KiB"
    return f"{n} B"


def fmt(v, nd=0):
    if v is None:
        return "n/a"
    return f"{v:,.{nd}f}"


def ratio_of_medians(cell, other):
    a, b = med(cell, "rtws", "mps"), med(cell, other, "mps")
    return a / b if a and b else None


def ratio(cell, other):
    """the median over the rounds of rtws's msgs/s / the peer's in the same round"""
    if cell is None:
        return None
    a, b = rounds[cell + ("rtws",)], rounds[cell + (other,)]
    v = [a[k] / b[k] for k in a if k in b and a[k] > 0 and b[k] > 0]
    return statistics.median(v) if v else ratio_of_medians(cell, other)


others = [p for p in peers if p != "rtws"]
out = []
w = out.append
w("| | |\n|---|---|")
for k in ("date", "machine", "load_start", "load_end", "pinning", "settings", "duration_s"):
    if k in meta:
        w(f"| {k} | {meta[k]} |")
for p in peers:
    if "peer_" + p in meta:
        w(f"| {NAMES.get(p, p)} | {meta['peer_' + p]} |")
w("")
if notes:
    w("Notes from the run:\n")
    for n in notes:
        w(f"- {n}")
    w("")
if "command" in meta:
    w(f"Command: `{meta['command']}`  \nEach run: `{meta.get('loadgen', '')}`; servers: " +
      ", ".join(f"`{meta[k]}`" for k in meta if k.startswith("server_")) + "\n")


def table(kind, title):
    cs = [c for c in cells if c[0] == kind]
    if not cs:
        return
    w(f"{title}\n")
    head = "| size | depth | conns | " + " | ".join(f"{NAMES.get(p, p)} msg/s" for p in peers)
    head += " | " + " | ".join(f"rtws ÷ {NAMES.get(p, p)} (paired) | of the medians" for p in others)
    head += " | rtws MB/s | " + " | ".join(f"{NAMES.get(p, p)} CPU µs/msg" for p in peers)
    head += " | " + " | ".join(f"CPU/msg {NAMES.get(p, p)} ÷ rtws" for p in others)
    head += " | server CPU % " + " / ".join(NAMES.get(p, p) for p in peers)
    head += " | loadgen CPU % " + " / ".join(NAMES.get(p, p) for p in peers)
    head += " | rtws runs | " + " | ".join(f"{NAMES.get(p, p)} runs" for p in others) + " | errors |"
    w(head)
    w("|" + "---|" * (head.count("|") - 1))
    for c in cs:
        _, size, depth, conns = c
        row = [size_label(size), str(depth), str(conns)]
        row += [fmt(med(c, p, "mps")) for p in peers]
        for p in others:
            row.append(f"**{ratio(c, p):.2f}**" if ratio(c, p) is not None and ratio(c, p) < 1 else
                       fmt(ratio(c, p), 2))
            row.append(fmt(ratio_of_medians(c, p), 2))
        r = med(c, "rtws", "mps")
        row.append(fmt(r * size / 1e6, 1) if r else "n/a")
        row += [fmt(med(c, p, "us"), 2) for p in peers]
        ru = med(c, "rtws", "us")
        row += [fmt(med(c, p, "us") / ru, 2) if ru and med(c, p, "us") else "n/a" for p in others]
        row.append(" / ".join(fmt(med(c, p, "cpu")) for p in peers))
        row.append(" / ".join(fmt(med(c, p, "lcpu")) for p in peers))
        row += ["; ".join(fmt(v) for v in data[c + (p,)].get("mps", [])) or "n/a" for p in peers]
        row.append(str(int(sum(sum(data[c + (p,)].get("err", [])) for p in peers))))
        w("| " + " | ".join(row) + " |")
    w("")


table("grid", "Echo grid (binary messages; msg/s = echoed messages per second, median of the rounds; "
      "ratio (paired) = median over the rounds of rtws ÷ the peer in the same round, the two "
      "runs back to back; **bold**: rtws below the peer):")
# the ratio as a size x depth matrix
gs = [c for c in cells if c[0] == "grid"]
if gs and "uws" in peers:
    depths = sorted({c[2] for c in gs})
    sizes = sorted({c[1] for c in gs})
    conns = sorted({c[3] for c in gs})
    w(f"rtws ÷ uWebSockets.js, msg/s (paired), {', '.join(map(str, conns))} connections:\n")
    w("| size | " + " | ".join(f"depth {d}" for d in depths) + " |")
    w("|---|" + "---|" * len(depths))
    for s in sizes:
        vals = []
        for d in depths:
            c = next((x for x in gs if x[1] == s and x[2] == d), None)
            r = ratio(c, "uws") if c else None
            vals.append(fmt(r, 2) + "x" if r is not None else "n/a")
        w(f"| {size_label(s)} | " + " | ".join(vals) + " |")
    w("")
table("conns", "Connection counts (64 B at depth 16, 64 KiB at depth 1):")


def heat_color(r):
    """white at 1.0, green above, red below; full colour at 4x either way"""
    if r is None:
        return "#dddddd"
    t = max(-1.0, min(1.0, math.log2(r) / 2.0))
    end = (26, 152, 80) if t > 0 else (215, 48, 39)
    a = abs(t)
    rgb = tuple(round(255 + (e - 255) * a) for e in end)
    return "#%02x%02x%02x" % rgb


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def heatmap(path, title, rows, cols, get, row_label, col_label):
    """rows, cols: lists of (key, label); get(rk, ck) -> (ratio, line2)"""
    cw, ch, left, top = 150, 54, 110, 70
    width = max(left + cw * len(cols) + 30, 820)
    height = top + ch * len(rows) + 80
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
         f'font-family="DejaVu Sans, Arial, sans-serif" font-size="12">',
         f'<rect width="{width}" height="{height}" fill="white"/>',
         f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">{esc(title)}</text>',
         f'<text x="{left + cw * len(cols) / 2}" y="{top - 26}" text-anchor="middle" '
         f'fill="#444">{esc(col_label)}</text>',
         f'<text x="16" y="{top + ch * len(rows) / 2}" text-anchor="middle" fill="#444" '
         f'transform="rotate(-90 16 {top + ch * len(rows) / 2})">{esc(row_label)}</text>']
    for j, (_, cl) in enumerate(cols):
        s.append(f'<text x="{left + cw * j + cw / 2}" y="{top - 8}" text-anchor="middle">{esc(cl)}</text>')
    for i, (rk, rl) in enumerate(rows):
        y = top + ch * i
        s.append(f'<text x="{left - 8}" y="{y + ch / 2 + 4}" text-anchor="end">{esc(rl)}</text>')
        for j, (ck, _) in enumerate(cols):
            x = left + cw * j
            r, line2 = get(rk, ck)
            s.append(f'<rect x="{x}" y="{y}" width="{cw}" height="{ch}" fill="{heat_color(r)}" '
                     f'stroke="white" stroke-width="2"/>')
            s.append(f'<text x="{x + cw / 2}" y="{y + 24}" text-anchor="middle" font-size="16" '
                     f'font-weight="bold">{"n/a" if r is None else f"{r:.2f}x"}</text>')
            s.append(f'<text x="{x + cw / 2}" y="{y + 42}" text-anchor="middle" font-size="10" '
                     f'fill="#333">{esc(line2)}</text>')
    ly = top + ch * len(rows) + 22
    for k, r in enumerate((0.25, 0.5, 1.0, 2.0, 4.0)):
        x = left + k * 70
        s.append(f'<rect x="{x}" y="{ly}" width="60" height="16" fill="{heat_color(r)}" stroke="#999"/>')
        s.append(f'<text x="{x + 30}" y="{ly + 30}" text-anchor="middle" font-size="10">{r:g}x</text>')
    s.append(f'<text x="{left + 5 * 70 + 6}" y="{ly + 12}" font-size="10" fill="#444">rtws msg/s ÷ '
             f'uWebSockets.js msg/s, median of the rounds\' ratios (above 1: rtws ahead)</text>')
    when = meta.get("date", "")
    s.append(f'<text x="{left}" y="{height - 8}" font-size="10" fill="#666">{esc(when)}; '
             f'{esc(meta.get("settings", ""))}; bench/grid.sh</text>')
    s.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(s) + "\n")


def kmsg(v):
    if v is None:
        return "n/a"
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k" if v >= 1e3 else f"{v:.0f}"


if gs and "uws" in peers:
    depths = sorted({c[2] for c in gs})
    sizes = sorted({c[1] for c in gs})
    nconn = ", ".join(map(str, sorted({c[3] for c in gs})))

    def g(s_, d_):
        c = next((x for x in gs if x[1] == s_ and x[2] == d_), None)
        if not c:
            return None, ""
        return ratio(c, "uws"), f"{kmsg(med(c, 'rtws', 'mps'))} vs {kmsg(med(c, 'uws', 'mps'))} msg/s"
    heatmap(os.path.join(CHARTS, "grid_ratio.svg"),
            f"Echo, binary, {nconn} connections: rtws ÷ uWebSockets.js (msg/s)",
            [(s_, size_label(s_)) for s_ in sizes], [(d_, f"depth {d_}") for d_ in depths], g,
            "message size", "messages in flight per connection")
    w("![grid ratio](charts/grid_ratio.svg)\n")
cs = [c for c in cells if c[0] == "conns"]
if cs and "uws" in peers:
    kinds = sorted({(c[1], c[2]) for c in cs})
    counts = sorted({c[3] for c in cs})

    def g2(k, n):
        c = next((x for x in cs if (x[1], x[2]) == k and x[3] == n), None)
        if not c:
            return None, ""
        return ratio(c, "uws"), f"{kmsg(med(c, 'rtws', 'mps'))} vs {kmsg(med(c, 'uws', 'mps'))} msg/s"
    heatmap(os.path.join(CHARTS, "grid_conns_ratio.svg"),
            "Echo, binary, by connection count: rtws ÷ uWebSockets.js (msg/s)",
            [(k, f"{size_label(k[0])} x{k[1]}") for k in kinds], [(n, f"{n} conns") for n in counts], g2,
            "size x depth", "connections")
    w("![connections ratio](charts/grid_conns_ratio.svg)\n")
# the goal line for bench/report.py: every cell of the grid >= 1.0x uWebSockets.js
with open(os.path.join(D, "goals.tsv"), "w") as f:
    allc = [c for c in cells if ratio(c, "uws") is not None] if "uws" in peers else []
    if allc:
        low = min(allc, key=lambda c: ratio(c, "uws"))
        below = sum(1 for c in allc if ratio(c, "uws") < 1.0)
        f.write(f"every grid cell: rtws >= 1.0x uWebSockets.js msg/s\t"
                f"lowest {ratio(low, 'uws'):.2f}x ({size_label(low[1])} x depth {low[2]} x {low[3]} conns); "
                f"{below} of {len(allc)} cells below 1.0\t{'met' if below == 0 else 'NOT met'}\n")
print("\n".join(out))
