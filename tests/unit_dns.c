/* tests/unit_dns.c - layer 2 dns: the query encoder (bytes checked against
   RFC 1035 §4.1 by hand), the answer parser (answers built here record by
   record: plain, CNAME chains in any order, compression, every refusal),
   the hosts file and resolv.conf readers, and rtws_dns_addr_parse against
   the C library's inet_pton over 200,000 generated strings. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"
#include <arpa/inet.h>
#include <stdlib.h>

/* ---- an answer builder ---- */
typedef struct msg {
    uint8_t b[1024];
    size_t n;
} msg;

static void put8(msg *m, unsigned v) { m->b[m->n++] = (uint8_t)v; }
static void put16(msg *m, unsigned v) {
    put8(m, v >> 8);
    put8(m, v & 0xff);
}
static void put32(msg *m, uint32_t v) {
    put16(m, v >> 16);
    put16(m, v & 0xffff);
}
static void put_name(msg *m, const char *name) { /* uncompressed, "" is the root */
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        put8(m, (unsigned)l);
        memcpy(m->b + m->n, name, l);
        m->n += l;
        name += l + (dot ? 1 : 0);
    }
    put8(m, 0);
}
/* header: id, flags (QR set by the caller), 1 question, an answers */
static void head(msg *m, unsigned id, unsigned flags, unsigned an, const char *q, unsigned qtype) {
    m->n = 0;
    put16(m, id);
    put16(m, flags);
    put16(m, 1);
    put16(m, an);
    put16(m, 0);
    put16(m, 0);
    put_name(m, q);
    put16(m, qtype);
    put16(m, 1);
}
static void rr_addr(msg *m, const char *owner, unsigned type, uint32_t ttl, const uint8_t *a) {
    size_t l = type == RTWS_DNS_A ? 4 : 16;
    put_name(m, owner);
    put16(m, type);
    put16(m, 1);
    put32(m, ttl);
    put16(m, (unsigned)l);
    memcpy(m->b + m->n, a, l);
    m->n += l;
}
static void rr_cname(msg *m, const char *owner, uint32_t ttl, const char *to) {
    size_t at;
    put_name(m, owner);
    put16(m, 5);
    put16(m, 1);
    put32(m, ttl);
    at = m->n;
    put16(m, 0);
    put_name(m, to);
    m->b[at] = (uint8_t)((m->n - at - 2) >> 8);
    m->b[at + 1] = (uint8_t)(m->n - at - 2);
}

static const uint8_t ip1[4] = {192, 0, 2, 1}, ip2[4] = {192, 0, 2, 2};
static const uint8_t ip6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

static rtws_err parse(const msg *m, unsigned id, const char *name, unsigned qtype,
                      rtws_dns_addr *out, size_t max, rtws_dns_result *r) {
    return rtws_dns_answer_parse(m->b, m->n, (uint16_t)id, name, strlen(name), qtype, out, max, r);
}

static void test_query(void) {
    uint8_t q[RTWS_DNS_QUERY_MAX];
    static const uint8_t want[] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 7,   'e', 'x',
                                   'a',  'm',  'p',  'l',  'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1};
    char name[300];
    size_t n;
    n = rtws_dns_query_encode(q, sizeof q, 0x1234, "example.com", 11, RTWS_DNS_A, 0);
    CHECK_EQ(n, sizeof want);
    CHECK_MEM(q, want, sizeof want);
    /* a trailing dot is the same name */
    n = rtws_dns_query_encode(q, sizeof q, 0x1234, "example.com.", 12, RTWS_DNS_A, 0);
    CHECK_EQ(n, sizeof want);
    CHECK_MEM(q, want, sizeof want);
    /* over TCP: the length first */
    n = rtws_dns_query_encode(q, sizeof q, 0x1234, "example.com", 11, RTWS_DNS_AAAA, 1);
    CHECK_EQ(n, sizeof want + 2);
    CHECK(q[0] == 0 && q[1] == sizeof want);
    CHECK_MEM(q + 2, want, sizeof want - 4);
    CHECK(q[n - 4] == 0 && q[n - 3] == 28);
    /* not host names */
    CHECK_EQ(rtws_dns_query_encode(q, sizeof q, 1, "", 0, RTWS_DNS_A, 0), 0);
    CHECK_EQ(rtws_dns_query_encode(q, sizeof q, 1, ".", 1, RTWS_DNS_A, 0), 0);
    CHECK_EQ(rtws_dns_query_encode(q, sizeof q, 1, "a..b", 4, RTWS_DNS_A, 0), 0);
    CHECK_EQ(rtws_dns_query_encode(q, sizeof q, 1, ".a", 2, RTWS_DNS_A, 0), 0);
    CHECK_EQ(rtws_dns_query_encode(q, sizeof q, 1, "a b", 3, RTWS_DNS_A, 0), 0);
    CHECK_EQ(rtws_dns_query_encode(q, sizeof q, 1, "a\0b", 3, RTWS_DNS_A, 0), 0);
    CHECK_EQ(rtws_dns_query_encode(q, sizeof q, 1, "a..", 3, RTWS_DNS_A, 0), 0);
    /* a 63-byte label passes, 64 does not */
    memset(name, 'a', 64);
    CHECK(rtws_dns_query_encode(q, sizeof q, 1, name, 63, RTWS_DNS_A, 0) == 12 + 65 + 4);
    CHECK_EQ(rtws_dns_query_encode(q, sizeof q, 1, name, 64, RTWS_DNS_A, 0), 0);
    /* 253 characters pass (255 on the wire), 254 do not */
    {
        size_t i;
        for (i = 0; i < 254; i++) name[i] = (i % 50 == 49) ? '.' : 'x';
        CHECK(rtws_dns_query_encode(q, sizeof q, 1, name, 253, RTWS_DNS_A, 1) == 2 + 12 + 255 + 4);
        name[253] = 'y';
        CHECK_EQ(rtws_dns_query_encode(q, sizeof q, 1, name, 254, RTWS_DNS_A, 0), 0);
        /* the largest query fits RTWS_DNS_QUERY_MAX; one byte less is refused */
        CHECK(2 + 12 + 255 + 4 <= RTWS_DNS_QUERY_MAX);
        CHECK_EQ(rtws_dns_query_encode(q, 2 + 12 + 255 + 3, 1, name, 253, RTWS_DNS_A, 1), 0);
    }
    CHECK_EQ(rtws_dns_query_encode(q, 10, 1, "a", 1, RTWS_DNS_A, 0), 0);
    CHECK(rtws_dns_query_encode(q, sizeof q, 1, "xn--bcher-kva_x-1.example", 25, RTWS_DNS_A, 0) > 0);
}

static void test_answer(void) {
    msg m;
    rtws_dns_addr a[4];
    rtws_dns_result r;
    /* one A record */
    head(&m, 7, 0x8180, 1, "example.com", RTWS_DNS_A);
    rr_addr(&m, "example.com", RTWS_DNS_A, 300, ip1);
    CHECK_EQ(parse(&m, 7, "example.com", RTWS_DNS_A, a, 4, &r), RTWS_OK);
    CHECK(r.count == 1 && a[0].family == 4 && memcmp(a[0].addr, ip1, 4) == 0 && r.ttl == 300);
    CHECK(r.rcode == 0 && !r.truncated && a[0].ttl == 300);
    /* the question's case need not match ours (0x20 bit mixing servers) */
    head(&m, 7, 0x8180, 1, "ExAmPlE.CoM", RTWS_DNS_A);
    rr_addr(&m, "EXAMPLE.com", RTWS_DNS_A, 300, ip1);
    CHECK_EQ(parse(&m, 7, "example.COM.", RTWS_DNS_A, a, 4, &r), RTWS_OK);
    CHECK_EQ(r.count, 1);
    /* AAAA; two records, ttl is the smaller */
    head(&m, 9, 0x8180, 2, "h.test", RTWS_DNS_AAAA);
    rr_addr(&m, "h.test", RTWS_DNS_AAAA, 60, ip6);
    rr_addr(&m, "h.test", RTWS_DNS_AAAA, 30, ip6);
    CHECK_EQ(parse(&m, 9, "h.test", RTWS_DNS_AAAA, a, 4, &r), RTWS_OK);
    CHECK(r.count == 2 && a[1].family == 6 && memcmp(a[1].addr, ip6, 16) == 0 && r.ttl == 30);
    /* more records than room: count says so, only max written */
    head(&m, 9, 0x8180, 3, "h.test", RTWS_DNS_A);
    rr_addr(&m, "h.test", RTWS_DNS_A, 60, ip1);
    rr_addr(&m, "h.test", RTWS_DNS_A, 60, ip2);
    rr_addr(&m, "h.test", RTWS_DNS_A, 60, ip1);
    memset(a, 0xee, sizeof a);
    CHECK_EQ(parse(&m, 9, "h.test", RTWS_DNS_A, a, 1, &r), RTWS_OK);
    CHECK(r.count == 3 && memcmp(a[0].addr, ip1, 4) == 0 && a[1].family == 0xee);
    /* not ours: id, QR clear, opcode, question name, qtype, class, qdcount */
    head(&m, 9, 0x8180, 1, "h.test", RTWS_DNS_A);
    rr_addr(&m, "h.test", RTWS_DNS_A, 60, ip1);
    CHECK_EQ(parse(&m, 10, "h.test", RTWS_DNS_A, a, 4, &r), RTWS_ERR_INVALID);
    CHECK_EQ(parse(&m, 9, "g.test", RTWS_DNS_A, a, 4, &r), RTWS_ERR_INVALID);
    CHECK_EQ(parse(&m, 9, "h.test", RTWS_DNS_AAAA, a, 4, &r), RTWS_ERR_INVALID);
    CHECK_EQ(parse(&m, 9, "h.tes", RTWS_DNS_A, a, 4, &r), RTWS_ERR_INVALID);
    CHECK_EQ(parse(&m, 9, "h..test", RTWS_DNS_A, a, 4, &r), RTWS_ERR_INVALID);
    head(&m, 9, 0x0180, 1, "h.test", RTWS_DNS_A);
    rr_addr(&m, "h.test", RTWS_DNS_A, 60, ip1);
    CHECK_EQ(parse(&m, 9, "h.test", RTWS_DNS_A, a, 4, &r), RTWS_ERR_INVALID);
    head(&m, 9, 0x8980, 1, "h.test", RTWS_DNS_A); /* opcode 1 */
    CHECK_EQ(parse(&m, 9, "h.test", RTWS_DNS_A, a, 4, &r), RTWS_ERR_INVALID);
    head(&m, 9, 0x8180, 0, "h.test", RTWS_DNS_A);
    m.b[m.n - 1] = 3; /* class CH */
    CHECK_EQ(parse(&m, 9, "h.test", RTWS_DNS_A, a, 4, &r), RTWS_ERR_INVALID);
    head(&m, 9, 0x8180, 0, "h.test", RTWS_DNS_A);
    m.b[5] = 2; /* two questions */
    CHECK_EQ(parse(&m, 9, "h.test", RTWS_DNS_A, a, 4, &r), RTWS_ERR_INVALID);
    CHECK_EQ(rtws_dns_answer_parse(m.b, 11, 9, "h.test", 6, RTWS_DNS_A, a, 4, &r), RTWS_ERR_INVALID);
    /* lookup failures: NXDOMAIN, SERVFAIL, REFUSED */
    head(&m, 9, 0x8183, 0, "h.test", RTWS_DNS_A);
    CHECK_EQ(parse(&m, 9, "h.test", RTWS_DNS_A, a, 4, &r), RTWS_ERR_RESOLVE);
    CHECK(r.rcode == 3 && r.count == 0);
    head(&m, 9, 0x8182, 0, "h.test", RTWS_DNS_A);
    CHECK_EQ(parse(&m, 9, "h.test", RTWS_DNS_A, a, 4, &r), RTWS_ERR_RESOLVE);
    CHECK_EQ(r.rcode, 2);
    head(&m, 9, 0x8185, 0, "h.test", RTWS_DNS_A);
    CHECK_EQ(parse(&m, 9, "h.test", RTWS_DNS_A, a, 4, &r), RTWS_ERR_RESOLVE);
    CHECK_EQ(r.rcode, 5);
    /* no data: OK with none */
    head(&m, 9, 0x8180, 0, "h.test", RTWS_DNS_AAAA);
    CHECK_EQ(parse(&m, 9, "h.test", RTWS_DNS_AAAA, a, 4, &r), RTWS_OK);
    CHECK_EQ(r.count, 0);
    /* records of other owners, types and classes are passed over */
    head(&m, 9, 0x8180, 4, "h.test", RTWS_DNS_A);
    rr_addr(&m, "other.test", RTWS_DNS_A, 60, ip2);
    rr_addr(&m, "h.test", RTWS_DNS_AAAA, 60, ip6);
    rr_addr(&m, "h.test", RTWS_DNS_A, 60, ip2);
    m.b[m.n - 4 - 2 - 4 - 1] = 3; /* that one in class CH */
    rr_addr(&m, "h.test", RTWS_DNS_A, 60, ip1);
    CHECK_EQ(parse(&m, 9, "h.test", RTWS_DNS_A, a, 4, &r), RTWS_OK);
    CHECK(r.count == 1 && memcmp(a[0].addr, ip1, 4) == 0);
}

static void test_cname(void) {
    msg m;
    rtws_dns_addr a[4];
    rtws_dns_result r;
    /* www -> web -> host, in order */
    head(&m, 1, 0x8180, 3, "www.test", RTWS_DNS_A);
    rr_cname(&m, "www.test", 100, "web.test");
    rr_cname(&m, "web.test", 50, "host.test");
    rr_addr(&m, "host.test", RTWS_DNS_A, 200, ip2);
    CHECK_EQ(parse(&m, 1, "www.test", RTWS_DNS_A, a, 4, &r), RTWS_OK);
    CHECK(r.count == 1 && memcmp(a[0].addr, ip2, 4) == 0 && r.ttl == 50);
    /* the same chain backwards, and an address of an alias name ignored */
    head(&m, 1, 0x8180, 4, "www.test", RTWS_DNS_A);
    rr_addr(&m, "host.test", RTWS_DNS_A, 200, ip2);
    rr_cname(&m, "web.test", 50, "host.test");
    rr_addr(&m, "web.test", RTWS_DNS_A, 200, ip1);
    rr_cname(&m, "www.test", 100, "web.test");
    CHECK_EQ(parse(&m, 1, "www.test", RTWS_DNS_A, a, 4, &r), RTWS_OK);
    CHECK(r.count == 1 && memcmp(a[0].addr, ip2, 4) == 0);
    /* a CNAME whose target has no address here: none */
    head(&m, 1, 0x8180, 1, "www.test", RTWS_DNS_A);
    rr_cname(&m, "www.test", 100, "gone.test");
    CHECK_EQ(parse(&m, 1, "www.test", RTWS_DNS_A, a, 4, &r), RTWS_OK);
    CHECK_EQ(r.count, 0);
    /* a loop: refused after 8 links */
    head(&m, 1, 0x8180, 2, "a.test", RTWS_DNS_A);
    rr_cname(&m, "a.test", 1, "b.test");
    rr_cname(&m, "b.test", 1, "a.test");
    CHECK_EQ(parse(&m, 1, "a.test", RTWS_DNS_A, a, 4, &r), RTWS_ERR_SYNTAX);
    /* a CNAME whose data is not one name */
    head(&m, 1, 0x8180, 1, "a.test", RTWS_DNS_A);
    rr_cname(&m, "a.test", 1, "b.test");
    m.b[m.n - 9] = 60; /* the label length of "b" runs past the data */
    CHECK_EQ(parse(&m, 1, "a.test", RTWS_DNS_A, a, 4, &r), RTWS_ERR_SYNTAX);
}

static void test_compression(void) {
    msg m;
    rtws_dns_addr a[4];
    rtws_dns_result r;
    size_t qname = 12, p;
    /* owner "example.com" by a pointer to the question's name */
    head(&m, 3, 0x8180, 2, "example.com", RTWS_DNS_A);
    put16(&m, 0xc000 | (unsigned)qname);
    put16(&m, RTWS_DNS_A);
    put16(&m, 1);
    put32(&m, 10);
    put16(&m, 4);
    memcpy(m.b + m.n, ip1, 4);
    m.n += 4;
    /* "www" + pointer, the CNAME of nothing asked: passed over */
    p = m.n;
    put8(&m, 3);
    memcpy(m.b + m.n, "www", 3);
    m.n += 3;
    put16(&m, 0xc000 | (unsigned)qname);
    put16(&m, RTWS_DNS_A);
    put16(&m, 1);
    put32(&m, 10);
    put16(&m, 4);
    memcpy(m.b + m.n, ip2, 4);
    m.n += 4;
    CHECK_EQ(parse(&m, 3, "example.com", RTWS_DNS_A, a, 4, &r), RTWS_OK);
    CHECK(r.count == 1 && memcmp(a[0].addr, ip1, 4) == 0);
    /* asking for the www name through the same bytes: the question differs */
    CHECK_EQ(parse(&m, 3, "www.example.com", RTWS_DNS_A, a, 4, &r), RTWS_ERR_INVALID);
    (void)p;
    /* a pointer to itself, and one pointing forward */
    head(&m, 3, 0x8180, 1, "example.com", RTWS_DNS_A);
    p = m.n;
    put16(&m, 0xc000 | (unsigned)p);
    put16(&m, RTWS_DNS_A);
    put16(&m, 1);
    put32(&m, 10);
    put16(&m, 4);
    memcpy(m.b + m.n, ip1, 4);
    m.n += 4;
    CHECK_EQ(parse(&m, 3, "example.com", RTWS_DNS_A, a, 4, &r), RTWS_ERR_SYNTAX);
    m.b[p + 1] = (uint8_t)(p + 2);
    CHECK_EQ(parse(&m, 3, "example.com", RTWS_DNS_A, a, 4, &r), RTWS_ERR_SYNTAX);
    /* the question by a pointer into the header: garbage name, not ours */
    head(&m, 3, 0x8180, 0, "example.com", RTWS_DNS_A);
    m.b[12] = 0xc0;
    m.b[13] = 2;
    CHECK_EQ(parse(&m, 3, "example.com", RTWS_DNS_A, a, 4, &r), RTWS_ERR_INVALID);
    /* label types 01 and 10 */
    head(&m, 3, 0x8180, 1, "example.com", RTWS_DNS_A);
    put8(&m, 0x41);
    CHECK_EQ(parse(&m, 3, "example.com", RTWS_DNS_A, a, 4, &r), RTWS_ERR_SYNTAX);
    m.b[m.n - 1] = 0x81;
    CHECK_EQ(parse(&m, 3, "example.com", RTWS_DNS_A, a, 4, &r), RTWS_ERR_SYNTAX);
}

static void test_malformed(void) {
    msg m;
    rtws_dns_addr a[4];
    rtws_dns_result r;
    size_t full, cut;
    head(&m, 5, 0x8180, 2, "h.test", RTWS_DNS_A);
    rr_addr(&m, "h.test", RTWS_DNS_A, 60, ip1);
    rr_addr(&m, "h.test", RTWS_DNS_A, 60, ip2);
    full = m.n;
    /* every cut of the answer section is malformed (the count promises more) */
    for (cut = 12 + 8 + 4; cut < full; cut++) {
        m.n = cut;
        if (parse(&m, 5, "h.test", RTWS_DNS_A, a, 4, &r) != RTWS_ERR_SYNTAX) {
            CHECK(0);
            break;
        }
    }
    CHECK(cut == full);
    /* ...unless TC says it was cut: then the whole records count */
    m.b[2] |= 0x02;
    m.n = full - 2;
    CHECK_EQ(parse(&m, 5, "h.test", RTWS_DNS_A, a, 4, &r), RTWS_OK);
    CHECK(r.truncated && r.count == 1 && memcmp(a[0].addr, ip1, 4) == 0);
    /* an address of the wrong length */
    m.n = full;
    m.b[2] &= (uint8_t)~0x02;
    m.b[full - 4 - 1] = 5;
    m.b[full - 4 - 2] = 0;
    m.b[m.n++] = 0;
    CHECK_EQ(parse(&m, 5, "h.test", RTWS_DNS_A, a, 4, &r), RTWS_ERR_SYNTAX);
    /* a TTL with the top bit set counts as 0 (RFC 2181 §8) */
    head(&m, 5, 0x8180, 1, "h.test", RTWS_DNS_A);
    rr_addr(&m, "h.test", RTWS_DNS_A, 0x80000000u, ip1);
    CHECK_EQ(parse(&m, 5, "h.test", RTWS_DNS_A, a, 4, &r), RTWS_OK);
    CHECK(r.count == 1 && a[0].ttl == 0 && r.ttl == 0);
    /* a 64-byte label in an owner name */
    head(&m, 5, 0x8180, 1, "h.test", RTWS_DNS_A);
    put8(&m, 64);
    memset(m.b + m.n, 'a', 64);
    m.n += 64;
    put8(&m, 0);
    CHECK_EQ(parse(&m, 5, "h.test", RTWS_DNS_A, a, 4, &r), RTWS_ERR_SYNTAX);
    /* a name over 255 bytes */
    head(&m, 5, 0x8180, 1, "h.test", RTWS_DNS_A);
    {
        int i;
        for (i = 0; i < 5; i++) {
            put8(&m, 60);
            memset(m.b + m.n, 'b', 60);
            m.n += 60;
        }
    }
    put8(&m, 0);
    CHECK_EQ(parse(&m, 5, "h.test", RTWS_DNS_A, a, 4, &r), RTWS_ERR_SYNTAX);
}

/* a query made by the encoder, turned into an answer with no records */
static void test_roundtrip(void) {
    static const char *names[] = {"localhost", "a.b.c.d.e", "x-y_z.example.org.", "A1.Test"};
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        uint8_t q[RTWS_DNS_QUERY_MAX];
        rtws_dns_result r;
        size_t n = rtws_dns_query_encode(q, sizeof q, (uint16_t)(i * 977), names[i],
                                         strlen(names[i]), RTWS_DNS_AAAA, 0);
        CHECK(n > 12);
        CHECK_EQ(rtws_dns_answer_parse(q, n, (uint16_t)(i * 977), names[i], strlen(names[i]),
                                       RTWS_DNS_AAAA, NULL, 0, &r),
                 RTWS_ERR_INVALID); /* a query is not an answer */
        q[2] |= 0x80;
        CHECK_EQ(rtws_dns_answer_parse(q, n, (uint16_t)(i * 977), names[i], strlen(names[i]),
                                       RTWS_DNS_AAAA, NULL, 0, &r),
                 RTWS_OK);
        CHECK(r.count == 0 && !r.truncated && r.rcode == 0);
    }
}

static void test_hosts(void) {
    static const char hosts[] = "# comment line\n"
                                "127.0.0.1\tlocalhost\n"
                                "::1     localhost ip6-localhost ip6-loopback\n"
                                "192.0.2.7 Build.Example.  build # the build box\n"
                                "not-an-ip  build\n"
                                "192.0.2.8 build\r\n"
                                "fe80::1%eth0 linklocal\n"
                                "# 192.0.2.9 build\n"
                                "   \n"
                                "192.0.2.10";
    rtws_dns_addr a[4];
    CHECK_EQ(rtws_dns_hosts_find(hosts, sizeof hosts - 1, "localhost", 9, 0, a, 4), 2);
    CHECK(a[0].family == 4 && a[0].addr[0] == 127 && a[0].addr[3] == 1);
    CHECK(a[1].family == 6 && a[1].addr[15] == 1 && a[1].addr[0] == 0);
    CHECK_EQ(rtws_dns_hosts_find(hosts, sizeof hosts - 1, "localhost", 9, 6, a, 4), 1);
    CHECK_EQ(a[0].family, 6);
    CHECK_EQ(rtws_dns_hosts_find(hosts, sizeof hosts - 1, "LOCALHOST.", 10, 4, a, 4), 1);
    CHECK_EQ(rtws_dns_hosts_find(hosts, sizeof hosts - 1, "build", 5, 0, a, 4), 2);
    CHECK(a[0].addr[3] == 7 && a[1].addr[3] == 8);
    CHECK_EQ(rtws_dns_hosts_find(hosts, sizeof hosts - 1, "build.example", 13, 0, a, 1), 1);
    CHECK_EQ(rtws_dns_hosts_find(hosts, sizeof hosts - 1, "box", 3, 0, a, 4), 0);
    CHECK_EQ(rtws_dns_hosts_find(hosts, sizeof hosts - 1, "linklocal", 9, 0, a, 4), 1);
    CHECK(a[0].family == 6 && a[0].addr[0] == 0xfe && a[0].addr[1] == 0x80 && a[0].addr[15] == 1);
    CHECK_EQ(rtws_dns_hosts_find(hosts, sizeof hosts - 1, "ip6-loopback", 12, 0, a, 4), 1);
    CHECK_EQ(rtws_dns_hosts_find(hosts, sizeof hosts - 1, "ip6", 3, 0, a, 4), 0);
    CHECK_EQ(rtws_dns_hosts_find(hosts, sizeof hosts - 1, "", 0, 0, a, 4), 0);
    CHECK_EQ(rtws_dns_hosts_find(NULL, 0, "localhost", 9, 0, a, 4), 0);
    /* more than max: counted, max written */
    CHECK_EQ(rtws_dns_hosts_find(hosts, sizeof hosts - 1, "build", 5, 0, a, 1), 2);
    CHECK_EQ(a[0].addr[3], 7);
}

static void test_conf(void) {
    static const char conf[] = "# generated\n"
                               "search example.com\n"
                               "nameserver 192.0.2.53\n"
                               "nameserver   2001:db8::53\n"
                               "nameserver dns.example\n"
                               "nameserver fe80::53%eth0 ; link-local\n"
                               "nameserver 192.0.2.54\n"
                               "options ndots:2 timeout:3 attempts:9 rotate\n";
    rtws_dns_conf c;
    rtws_dns_conf_parse(conf, sizeof conf - 1, &c);
    CHECK_EQ(c.nservers, 3);
    CHECK(c.servers[0].family == 4 && c.servers[0].addr[3] == 53);
    CHECK(c.servers[1].family == 6 && c.servers[1].addr[1] == 0x01 && c.servers[1].addr[15] == 0x53);
    CHECK(c.servers[2].family == 6 && c.servers[2].addr[0] == 0xfe && c.servers[2].addr[15] == 0x53);
    CHECK(c.timeout_s == 3 && c.attempts == 5 && c.rotate == 1);
    rtws_dns_conf_parse(NULL, 0, &c);
    CHECK(c.nservers == 1 && c.servers[0].family == 4 && c.servers[0].addr[0] == 127 &&
          c.servers[0].addr[3] == 1);
    CHECK(c.timeout_s == 5 && c.attempts == 2 && !c.rotate);
    rtws_dns_conf_parse("options timeout:0 attempts:x\n#nameserver 1.2.3.4", 49, &c);
    CHECK(c.timeout_s == 1 && c.attempts == 2 && c.nservers == 1);
    rtws_dns_conf_parse("options timeout:99999999999", 27, &c);
    CHECK_EQ(c.timeout_s, 30);
}

/* rtws_dns_addr_parse agrees with inet_pton, except that leading zeros in
   IPv4 parts are refused (inet_aton reads them as octal) where glibc takes
   them in an IPv6 address's IPv4 tail: such strings are left out */
static void test_addr_vs_pton(void) {
    static const char alpha[] = "0123456789abcdefABCDEF:.::..0:1";
    static const char *fixed[] = {"::", "::1", "1::", "1::2", "::ffff:192.0.2.1", "1:2:3:4:5:6:7:8",
                                  "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4",
                                  "0.0.0.0", "255.255.255.255", "256.1.1.1", "1.2.3", "1.2.3.4.5",
                                  "01.2.3.4", ":::", "1:::2", "12345::", "1:2:3:4:5:6:7:8:9",
                                  "::1.2.3.4", "1.2.3.4::", "a:b:c:d:e:f:1.2.3.4", "", ":", "."};
    unsigned seed = 12345;
    size_t i, agree = 0, total = 0;
    int bad = 0;
    for (i = 0; i < sizeof fixed / sizeof fixed[0] + 200000; i++) {
        char s[48];
        size_t n, k;
        rtws_dns_addr a;
        uint8_t want[16];
        int ours, theirs, leading0 = 0;
        if (i < sizeof fixed / sizeof fixed[0]) {
            n = strlen(fixed[i]);
            memcpy(s, fixed[i], n + 1);
        } else {
            seed = seed * 1103515245u + 12345u;
            n = 1 + (seed >> 16) % 20;
            for (k = 0; k < n; k++) {
                seed = seed * 1103515245u + 12345u;
                s[k] = alpha[(seed >> 16) % (sizeof alpha - 1)];
            }
            s[n] = 0;
        }
        for (k = 0; k + 1 < n; k++)
            if (s[k] == '0' && s[k + 1] >= '0' && s[k + 1] <= '9' && (k == 0 || s[k - 1] == '.' || s[k - 1] == ':') &&
                memchr(s, '.', n))
                leading0 = 1;
        if (leading0) continue;
        ours = rtws_dns_addr_parse(s, n, &a);
        theirs = strchr(s, ':') ? inet_pton(AF_INET6, s, want) : inet_pton(AF_INET, s, want);
        total++;
        if (ours != theirs ||
            (ours && memcmp(a.addr, want, a.family == 4 ? 4u : 16u) != 0)) {
            if (bad++ < 5) fprintf(stderr, "addr_parse(\"%s\"): ours %d, inet_pton %d\n", s, ours, theirs);
        } else {
            agree++;
        }
    }
    CHECK_EQ(agree, total);
    CHECK(total > 100000);
}

int main(void) {
    test_query();
    test_answer();
    test_cname();
    test_compression();
    test_malformed();
    test_roundtrip();
    test_hosts();
    test_conf();
    test_addr_vs_pton();
    return T_END();
}
