/* ws_util.h - the few helpers the bench's own C programs share: SHA-1,
   base64 and Sec-WebSocket-Accept (RFC 6455 §4.2.2), written for the bench so
   that the load generator checks servers (rtws included) with code that is
   independent of rtws.h. Everything is static; include it in one .c file. */
#ifndef WS_UTIL_H
#define WS_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static uint32_t wsu_rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void wsu_sha1_block(uint32_t h[5], const uint8_t *b) {
    uint32_t w[80], a, bb, c, d, e, t;
    int i;
    for (i = 0; i < 16; i++)
        w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 |
               (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
    for (i = 16; i < 80; i++) w[i] = wsu_rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4];
    for (i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) f = (bb & c) | (~bb & d), k = 0x5A827999u;
        else if (i < 40) f = bb ^ c ^ d, k = 0x6ED9EBA1u;
        else if (i < 60) f = (bb & c) | (bb & d) | (c & d), k = 0x8F1BBCDCu;
        else f = bb ^ c ^ d, k = 0xCA62C1D6u;
        t = wsu_rol(a, 5) + f + e + k + w[i];
        e = d, d = c, c = wsu_rol(bb, 30), bb = a, a = t;
    }
    h[0] += a, h[1] += bb, h[2] += c, h[3] += d, h[4] += e;
}

static void wsu_sha1(const uint8_t *p, size_t n, uint8_t out[20]) {
    uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
    uint8_t last[128];
    size_t i, rest, tail;
    uint64_t bits = (uint64_t)n * 8;
    for (i = 0; i + 64 <= n; i += 64) wsu_sha1_block(h, p + i);
    rest = n - i;
    memset(last, 0, sizeof last);
    memcpy(last, p + i, rest);
    last[rest] = 0x80;
    tail = rest + 1 + 8 <= 64 ? 64 : 128;
    for (i = 0; i < 8; i++) last[tail - 1 - i] = (uint8_t)(bits >> (8 * i));
    wsu_sha1_block(h, last);
    if (tail == 128) wsu_sha1_block(h, last + 64);
    for (i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

/* Writes the base64 of p[0..n) and a NUL to out (4 * ceil(n / 3) + 1 bytes). */
static void wsu_base64(const uint8_t *p, size_t n, char *out) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;
    for (i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n) v |= p[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
}

/* Sec-WebSocket-Accept for key (its base64 text, key_len bytes): 28 chars + NUL. */
static void wsu_accept(const char *key, size_t key_len, char out[29]) {
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    uint8_t buf[128], dg[20];
    if (key_len > sizeof buf - (sizeof guid - 1)) key_len = sizeof buf - (sizeof guid - 1);
    memcpy(buf, key, key_len);
    memcpy(buf + key_len, guid, sizeof guid - 1);
    wsu_sha1(buf, key_len + sizeof guid - 1, dg);
    wsu_base64(dg, 20, out);
}

/* Case-insensitive search for header name (with the colon, lower case) at the
   start of a line of the HTTP head h[0..n); returns the trimmed value and its
   length in *len, or NULL. */
static const char *wsu_header(const char *h, size_t n, const char *name, size_t *len) {
    size_t nl = strlen(name), i = 0;
    while (i < n) {
        size_t j = i, k;
        while (j < n && h[j] != '\n') j++;
        if (j - i > nl) {
            for (k = 0; k < nl; k++) {
                char ch = h[i + k];
                if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
                if (ch != name[k]) break;
            }
            if (k == nl) {
                size_t s = i + nl, e = j;
                while (s < e && (h[s] == ' ' || h[s] == '\t')) s++;
                while (e > s && (h[e - 1] == '\r' || h[e - 1] == ' ' || h[e - 1] == '\t')) e--;
                *len = e - s;
                return h + s;
            }
        }
        i = j + 1;
    }
    return NULL;
}

#endif
