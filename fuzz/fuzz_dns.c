/* fuzz/fuzz_dns.c - layer 2 dns. The input is an answer, read as the answer
   to the question it carries itself (so the parser gets past the question
   check and into the records): byte 0 picks the qtype (bit 0: AAAA) and the
   room for addresses (bits 1-3); the rest is the message, from an exact-size
   copy so ASan sees over-reads. The result is one of the documented errors,
   the count does not depend on the room, no more than the room is written,
   and every address has the family asked. The same bytes are also a hosts
   file, a resolv.conf (its limits hold), an address compared with
   inet_pton (leading zeros aside), and a name: a query made of it and turned
   into an answer parses with no records. */
#include "fuzz.h"
#include <arpa/inet.h>

/* the question's name, uncompressed, as text; 0 when there is none */
static size_t question_name(const uint8_t *m, size_t n, char *out) {
    size_t p = 12, k = 0;
    while (p < n && m[p] && m[p] < 64) {
        size_t l = m[p];
        if (p + 1 + l > n || k + l + 1 >= 256) return 0;
        if (k) out[k++] = '.';
        memcpy(out + k, m + p + 1, l);
        k += l;
        p += 1 + l;
    }
    out[k] = 0;
    return k;
}

static void check_answer(const uint8_t *m, size_t n, unsigned qtype, size_t room) {
    char name[256];
    rtws_dns_addr out[9];
    rtws_dns_result r, r0;
    size_t i, nl = question_name(m, n, name);
    uint16_t id = (uint16_t)(n >= 2 ? (unsigned)m[0] << 8 | m[1] : 0u);
    rtws_err e, e0;
    if (!nl) return;
    memset(out, 0xA5, sizeof out);
    e = rtws_dns_answer_parse(m, n, id, name, nl, qtype, out, room, &r);
    FUZZ_CHECK(e == RTWS_OK || e == RTWS_ERR_INVALID || e == RTWS_ERR_RESOLVE || e == RTWS_ERR_SYNTAX);
    e0 = rtws_dns_answer_parse(m, n, id, name, nl, qtype, NULL, 0, &r0);
    FUZZ_CHECK(e0 == e && r0.count == r.count && r0.rcode == r.rcode && r0.truncated == r.truncated);
    for (i = 0; i < 9; i++) { /* past the room: untouched (before it, on an error: undefined) */
        if (i < room && i < r.count && e == RTWS_OK)
            FUZZ_CHECK(out[i].family == (qtype == RTWS_DNS_A ? 4 : 6));
        else if (i >= room)
            FUZZ_CHECK(out[i].family == 0xA5);
    }
    if (e == RTWS_ERR_RESOLVE) FUZZ_CHECK(r.rcode != 0);
    if (e == RTWS_OK) FUZZ_CHECK(r.rcode == 0);
}

static void check_texts(const char *s, size_t n) {
    rtws_dns_conf c;
    rtws_dns_addr a[4], b;
    size_t i, k;
    rtws_dns_conf_parse(s, n, &c);
    FUZZ_CHECK(c.nservers >= 1 && c.nservers <= 3);
    FUZZ_CHECK(c.timeout_s >= 1 && c.timeout_s <= 30 && c.attempts >= 1 && c.attempts <= 5);
    for (i = 0; i < c.nservers; i++) FUZZ_CHECK(c.servers[i].family == 4 || c.servers[i].family == 6);
    k = rtws_dns_hosts_find(s, n, "localhost", 9, 0, a, 4);
    for (i = 0; i < k && i < 4; i++) FUZZ_CHECK(a[i].family == 4 || a[i].family == 6);
    FUZZ_CHECK(rtws_dns_hosts_find(s, n, "localhost", 9, 4, NULL, 0) +
                   rtws_dns_hosts_find(s, n, "localhost", 9, 6, NULL, 0) == k);
    /* an address, against the C library */
    if (n < 64 && !memchr(s, 0, n)) {
        char z[64];
        uint8_t want[16];
        int lead0 = 0, ours, theirs;
        memcpy(z, s, n);
        z[n] = 0;
        for (i = 0; i + 1 < n; i++)
            if (z[i] == '0' && z[i + 1] >= '0' && z[i + 1] <= '9' &&
                (i == 0 || z[i - 1] == '.' || z[i - 1] == ':'))
                lead0 = 1;
        ours = rtws_dns_addr_parse(z, n, &b);
        theirs = memchr(z, ':', n) ? inet_pton(AF_INET6, z, want) : inet_pton(AF_INET, z, want);
        if (!lead0 || !memchr(z, '.', n)) {
            FUZZ_CHECK(ours == theirs);
            if (ours) FUZZ_CHECK(memcmp(b.addr, want, b.family == 4 ? 4u : 16u) == 0);
        }
    }
    /* a name */
    {
        uint8_t q[RTWS_DNS_QUERY_MAX];
        rtws_dns_result r;
        size_t qn = rtws_dns_query_encode(q, sizeof q, 0xBEEF, s, n, RTWS_DNS_AAAA, 0);
        if (qn) {
            FUZZ_CHECK(qn >= 12 + 2 + 4 && qn <= RTWS_DNS_QUERY_MAX - 2);
            q[2] |= 0x80;
            FUZZ_CHECK(rtws_dns_answer_parse(q, qn, 0xBEEF, s, n, RTWS_DNS_AAAA, NULL, 0, &r) == RTWS_OK);
            FUZZ_CHECK(r.count == 0 && !r.truncated);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    uint8_t *m;
    if (n < 1) return 0;
    m = (uint8_t *)malloc(n - 1 ? n - 1 : 1);
    FUZZ_CHECK(m != NULL);
    if (n > 1) memcpy(m, d + 1, n - 1);
    check_answer(m, n - 1, (d[0] & 1) ? RTWS_DNS_AAAA : RTWS_DNS_A, (size_t)(d[0] >> 1 & 7));
    check_texts((const char *)m, n - 1);
    free(m);
    return 0;
}
