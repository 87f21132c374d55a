#!/usr/bin/env bash
# rtws's DEFLATE codec (layer 1) against zlib, both ways, with inputs made at
# run time (nothing checked in): Python's zlib (compressobj(level, DEFLATED,
# -wbits)) and, when node is there, Node's zlib (deflateRawSync /
# inflateRawSync with windowBits). For levels 1, 6 and 9 and several window
# sizes: whole streams (text, JSON, random, repetitive, empty, 1 byte, 1 MiB
# mixed) and permessage-deflate's shape, messages sync-flushed with the
# 00 00 ff ff tail removed, with and without context takeover. A small driver
# (built here from rtws.h under ASan+UBSan) does rtws's half. Ends
# "N passed, M failed"; a missing python3 or node is a skip (a failure with
# RTWS_REQUIRE_ALL=1).
set -u
cd "$(dirname "$0")/.."
B=build
mkdir -p "$B"
pass=0; fail=0; skip=0
skipped() {
    if [ "${RTWS_REQUIRE_ALL:-0}" = 1 ]; then fail=$((fail + 1)); echo "FAILED: $* (missing and RTWS_REQUIRE_ALL=1)"
    else skip=$((skip + 1)); echo "skipped: $*"; fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# the driver: framed messages are a 4-byte little-endian length, then the bytes
#   D LEVEL WBITS        stdin whole -> one stream ended with RTWS_Z_FINISH
#   I WBITS              one raw stream -> its bytes (exit 0 only at RTWS_Z_END)
#   d LEVEL WBITS TAKE   framed messages -> framed sync-flushed messages, tail removed
#   i WBITS TAKE         framed messages (tail removed) -> framed plain messages
cat > "$tmp/zdrv.c" <<'EOF'
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include <stdio.h>
#include <stdlib.h>
static uint8_t *slurp(size_t *n) {
    size_t cap = 1 << 16, len = 0, r;
    uint8_t *p = (uint8_t *)malloc(cap);
    while ((r = fread(p + len, 1, cap - len, stdin)) > 0) {
        len += r;
        if (len == cap) p = (uint8_t *)realloc(p, cap *= 2);
    }
    *n = len;
    return p;
}
static void put_framed(const uint8_t *p, size_t n) {
    uint8_t h[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    fwrite(h, 1, 4, stdout);
    fwrite(p, 1, n, stdout);
}
int main(int argc, char **argv) {
    size_t n, off = 0, used, olen, cap;
    uint8_t *in = slurp(&n), *out;
    rtws_z_config c;
    char mode = argc > 1 ? argv[1][0] : '?';
    memset(&c, 0, sizeof c);
    if (mode == 'D' || mode == 'd') {
        rtws_deflate d;
        c.level = atoi(argv[2]);
        c.window_bits = (unsigned)atoi(argv[3]);
        if (rtws_deflate_init(&d, &c, NULL, 0)) return 2;
        cap = n + n / 8 + 4096;
        out = (uint8_t *)malloc(cap);
        if (mode == 'D') {
            if (rtws_deflate_compress(&d, in, n, &used, out, cap, &olen, RTWS_Z_FINISH) !=
                    RTWS_Z_END || used != n) return 3;
            fwrite(out, 1, olen, stdout);
        } else {
            while (off + 4 <= n) {
                size_t m = (size_t)in[off] | (size_t)in[off + 1] << 8 | (size_t)in[off + 2] << 16 |
                           (size_t)in[off + 3] << 24;
                off += 4;
                if (rtws_deflate_compress(&d, in + off, m, &used, out, cap, &olen,
                                          RTWS_Z_SYNC_FLUSH) != RTWS_Z_OK || used != m || olen < 4 ||
                    memcmp(out + olen - 4, "\0\0\377\377", 4) != 0)
                    return 3;
                put_framed(out, olen - 4);
                off += m;
                rtws_deflate_reset(&d, atoi(argv[4]));
            }
        }
        rtws_deflate_free(&d);
    } else if (mode == 'I' || mode == 'i') {
        rtws_inflate z;
        rtws_z_err e;
        c.window_bits = (unsigned)atoi(argv[2]);
        if (rtws_inflate_init(&z, &c, NULL, 0)) return 2;
        cap = 4 * n + 65536;
        out = (uint8_t *)malloc(cap);
        if (mode == 'I') {
            size_t o = 0;
            while ((e = rtws_inflate_feed(&z, in + off, n - off, &used, out + o, cap - o, &olen)) ==
                   RTWS_Z_FULL) {
                off += used;
                o += olen;
                out = (uint8_t *)realloc(out, cap *= 2);
            }
            olen += o;
            if (e != RTWS_Z_END) {
                fprintf(stderr, "inflate: %s\n", rtws_z_err_str(e));
                return 3;
            }
            fwrite(out, 1, olen, stdout);
        } else {
            static const uint8_t tail[4] = {0, 0, 0xFF, 0xFF};
            while (off + 4 <= n) {
                size_t m = (size_t)in[off] | (size_t)in[off + 1] << 8 | (size_t)in[off + 2] << 16 |
                           (size_t)in[off + 3] << 24, o2;
                off += 4;
                rtws_inflate_reset(&z, atoi(argv[3]));
                if (cap < 1024 * m + 65536) out = (uint8_t *)realloc(out, cap = 1024 * m + 65536);
                e = rtws_inflate_feed(&z, in + off, m, &used, out, cap, &olen);
                if (e != RTWS_Z_OK || used != m) {
                    fprintf(stderr, "inflate message: %s\n", rtws_z_err_str(e));
                    return 3;
                }
                if (rtws_inflate_feed(&z, tail, 4, &used, out + olen, cap - olen, &o2) != RTWS_Z_OK ||
                    used != 4 || o2 != 0)
                    return 3;
                put_framed(out, olen);
                off += m;
            }
        }
        rtws_inflate_free(&z);
    } else {
        return 2;
    }
    free(in);
    free(out);
    return 0;
}
EOF
if ! cc -std=c99 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -I. \
    "$tmp/zdrv.c" -o "$tmp/zdrv" 2> "$tmp/cc.log"; then
    cat "$tmp/cc.log"
    echo "0 passed, 1 failed"
    exit 1
fi

# the driver returns early on errors without freeing: no leak report then
export ASAN_OPTIONS=detect_leaks=0

# shared: deterministic inputs (python writes them, node reads them)
cat > "$tmp/inputs.py" <<'EOF'
import json, random, struct
def inputs():
    r = random.Random(18)
    words = "the socket frame message channel presence deflate window of a".split()
    text = " ".join(r.choice(words) for _ in range(20000)).encode()
    env = [json.dumps({"type": "publish", "channel": "room-%d" % r.randrange(16), "id": i,
                       "data": {"user": "u%d" % r.randrange(100), "text": "hello %d" % r.randrange(1000),
                                "ts": 1700000000000 + i * 37}}).encode() for i in range(400)]
    rnd = bytes(r.getrandbits(8) for _ in range(50000))
    rep = b"abcabcabd" * 9000
    mixed = (text * 4)[:300000] + b"\n".join(env) * 2 + rnd + rep + bytes(200000) + text
    mixed = (mixed * 2)[:1 << 20]
    return {"text": text, "json": b"\n".join(env), "random": rnd, "repeat": rep, "empty": b"",
            "one": b"x", "mixed1m": mixed}, env
def framed(msgs):
    return b"".join(struct.pack("<I", len(m)) + m for m in msgs)
def unframe(b):
    out, i = [], 0
    while i + 4 <= len(b):
        n = struct.unpack_from("<I", b, i)[0]; out.append(b[i + 4:i + 4 + n]); i += 4 + n
    return out
EOF

if command -v python3 > /dev/null && python3 -c 'import zlib' 2> /dev/null; then
    python3 - "$tmp" << 'EOF'
import subprocess, sys, zlib
tmp = sys.argv[1]
sys.path.insert(0, tmp)
from inputs import inputs, framed, unframe
data, env = inputs()
drv = tmp + "/zdrv"
p = f = 0
def check(ok, what):
    global p, f
    if ok: p += 1
    else:
        f += 1; print("FAILED:", what)
def run(args, stdin):
    r = subprocess.run([drv] + [str(a) for a in args], input=stdin, capture_output=True)
    if r.returncode: print("  driver", args, "exit", r.returncode, r.stderr.decode()[-300:])
    return r.returncode, r.stdout
for level in (1, 6, 9):
    for wbits in (9, 12, 15):
        for name, d in data.items():
            c = zlib.compressobj(level, zlib.DEFLATED, -wbits)
            z = c.compress(d) + c.flush()
            rc, out = run(["I", wbits], z)
            check(rc == 0 and out == d, f"zlib level {level} wbits {wbits} {name} -> rtws inflate")
            rc, ours = run(["D", level, wbits], d)
            ok = rc == 0
            if ok:
                try:
                    o = zlib.decompressobj(-wbits)
                    ok = o.decompress(ours) == d and o.eof and not o.unused_data
                except zlib.error as e:
                    print("  zlib:", e); ok = False
            check(ok, f"rtws level {level} wbits {wbits} {name} -> zlib inflate")
        # messages: sync flush, tail removed, with and without context takeover
        for take in (1, 0):
            c = zlib.compressobj(level, zlib.DEFLATED, -wbits)
            msgs = []
            for m in env[:150] + [b""] + env[150:200]:
                if not take: c = zlib.compressobj(level, zlib.DEFLATED, -wbits)
                z = c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH)
                assert z.endswith(b"\x00\x00\xff\xff")
                msgs.append(z[:-4])
            rc, out = run(["i", wbits, take], framed(msgs))
            check(rc == 0 and unframe(out) == env[:150] + [b""] + env[150:200],
                  f"zlib messages level {level} wbits {wbits} takeover {take} -> rtws")
            rc, out = run(["d", level, wbits, take], framed(env[:150] + [b""] + env[150:200]))
            got, ok = [], rc == 0
            o = zlib.decompressobj(-wbits)
            for z in unframe(out):
                if not take: o = zlib.decompressobj(-wbits)
                try: got.append(o.decompress(z + b"\x00\x00\xff\xff"))
                except zlib.error as e: print("  zlib:", e); ok = False; break
            check(ok and got == env[:150] + [b""] + env[150:200],
                  f"rtws messages level {level} wbits {wbits} takeover {take} -> zlib")
            if take and level == 6 and wbits == 15:
                tz = sum(len(x) for x in msgs); tr = sum(len(x) for x in unframe(out))
                print(f"  messages, takeover, level 6: zlib {tz} B, rtws {tr} B")
# window bits 8: rtws compresses for a 256-byte window, zlib inflates with one
rc, ours = run(["D", 6, 8], data["text"])
o = zlib.decompressobj(-8)
try: ok = rc == 0 and o.decompress(ours) == data["text"] and o.eof
except zlib.error as e: print("  zlib:", e); ok = False
check(ok, "rtws wbits 8 -> zlib inflate -8")
# a zlib stream with distances past a smaller window is refused
c = zlib.compressobj(9, zlib.DEFLATED, -15); z = c.compress(data["mixed1m"]) + c.flush()
rc, out = run(["I", 9], z)
check(rc == 3, "zlib wbits 15 stream -> rtws inflate wbits 9 refuses far distances")
print(f"python zlib: {p} passed, {f} failed")
open(tmp + "/py.counts", "w").write(f"{p} {f}\n")
EOF
    read -r a b < "$tmp/py.counts" 2> /dev/null || { a=0; b=1; }
    pass=$((pass + a)); fail=$((fail + b))
else
    skipped "python3 with zlib"
fi

if command -v node > /dev/null; then
    python3 -c "
import sys; sys.path.insert(0, '$tmp')
from inputs import inputs, framed
d, env = inputs()
for k, v in d.items(): open('$tmp/in.' + k, 'wb').write(v)
open('$tmp/env.framed', 'wb').write(framed(env))"
    # node compresses every input (and each message alone, sync-flushed)
    cat > "$tmp/node.js" << 'EOF'
const zlib = require('zlib'), fs = require('fs'), dir = process.argv[2], mode = process.argv[3];
const names = ['text', 'json', 'random', 'repeat', 'empty', 'one', 'mixed1m'];
const frames = b => { const o = []; for (let i = 0; i + 4 <= b.length;) { const n = b.readUInt32LE(i); o.push(b.subarray(i + 4, i + 4 + n)); i += 4 + n; } return o; };
const frame = l => Buffer.concat(l.map(m => { const h = Buffer.alloc(4); h.writeUInt32LE(m.length); return Buffer.concat([h, m]); }));
const tail = Buffer.from([0, 0, 0xff, 0xff]);
for (const level of [1, 6, 9]) for (const windowBits of [9, 15]) {
  const tag = `${level}.${windowBits}`;
  if (mode === 'compress') {
    for (const n of names) fs.writeFileSync(`${dir}/node.${n}.${tag}`, zlib.deflateRawSync(fs.readFileSync(`${dir}/in.${n}`), { level, windowBits }));
    const msgs = frames(fs.readFileSync(`${dir}/env.framed`)).map(m => zlib.deflateRawSync(m, { level, windowBits, finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, -4));
    fs.writeFileSync(`${dir}/node.msgs.${tag}`, frame(msgs));
  } else {
    let bad = 0;
    for (const n of names) {
      const ours = fs.readFileSync(`${dir}/rtws.${n}.${tag}`);
      let out; try { out = zlib.inflateRawSync(ours, { windowBits }); } catch (e) { out = null; }
      if (!out || !out.equals(fs.readFileSync(`${dir}/in.${n}`))) { bad++; console.log(`FAILED: rtws ${n} ${tag} -> node inflateRawSync`); }
    }
    const want = frames(fs.readFileSync(`${dir}/env.framed`));
    const got = frames(fs.readFileSync(`${dir}/rtws.msgs.${tag}`)).map(m => zlib.inflateRawSync(Buffer.concat([m, tail]), { windowBits, finishFlush: zlib.constants.Z_SYNC_FLUSH }));
    if (got.length !== want.length || got.some((g, i) => !g.equals(want[i]))) { bad++; console.log(`FAILED: rtws messages ${tag} -> node`); }
    console.log(`node ${tag}: ${names.length + 1 - bad} passed, ${bad} failed`);
  }
}
EOF
    if node "$tmp/node.js" "$tmp" compress; then
        for level in 1 6 9; do for wb in 9 15; do
            t=$level.$wb
            for n in text json random repeat empty one mixed1m; do
                if "$tmp/zdrv" I "$wb" < "$tmp/node.$n.$t" > "$tmp/out" && cmp -s "$tmp/out" "$tmp/in.$n"; then
                    pass=$((pass + 1))
                else fail=$((fail + 1)); echo "FAILED: node $n $t -> rtws inflate"; fi
                "$tmp/zdrv" D "$level" "$wb" < "$tmp/in.$n" > "$tmp/rtws.$n.$t" || echo "driver failed on $n $t"
            done
            if "$tmp/zdrv" i "$wb" 0 < "$tmp/node.msgs.$t" > "$tmp/out" && cmp -s "$tmp/out" "$tmp/env.framed"; then
                pass=$((pass + 1))
            else fail=$((fail + 1)); echo "FAILED: node messages $t -> rtws"; fi
            "$tmp/zdrv" d "$level" "$wb" 0 < "$tmp/env.framed" > "$tmp/rtws.msgs.$t"
        done; done
        node "$tmp/node.js" "$tmp" check > "$tmp/node.out"
        cat "$tmp/node.out"
        a=$(awk '/^node /{s += $3} END {print s + 0}' "$tmp/node.out")
        b=$(awk '/^node /{s += $5} END {print s + 0}' "$tmp/node.out")
        pass=$((pass + a)); fail=$((fail + b))
    else
        fail=$((fail + 1)); echo "FAILED: node compress step"
    fi
else
    skipped "node"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
