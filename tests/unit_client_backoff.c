/* Layer 4 (rtws_client): the reconnect schedule as a pure function.
   rtws_client_backoff_delay(cfg, attempt, r) over every jitter mode, the
   minimum delay, overflow edges, and the schedules of the seed systems
   (docs/GUIDE.md, "Reconnect schedules"), without any randomness. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"

static rtws_client_config cfg_of(uint32_t base, uint32_t factor, uint32_t mx, uint32_t mn,
                                 rtws_jitter j) {
    rtws_client_config c;
    memset(&c, 0, sizeof c);
    c.backoff_base_ms = base;
    c.backoff_factor = factor;
    c.backoff_max_ms = mx;
    c.backoff_min_ms = mn;
    c.jitter = j;
    return c;
}

/* A small deterministic generator to sweep r across its range. */
static uint32_t next_r(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void test_defaults(void) {
    rtws_client_config c;
    uint32_t n;
    memset(&c, 0, sizeof c);
    /* zero config: base 1000, factor 2, cap 60000, full jitter, no minimum */
    CHECK_EQ(rtws_client_backoff_bound(&c, 1), 1000);
    CHECK_EQ(rtws_client_backoff_bound(&c, 2), 2000);
    CHECK_EQ(rtws_client_backoff_bound(&c, 6), 32000);
    CHECK_EQ(rtws_client_backoff_bound(&c, 7), 60000);
    CHECK_EQ(rtws_client_backoff_bound(&c, 1000), 60000);
    CHECK_EQ(rtws_client_backoff_delay(&c, 1, 0), 0);
    CHECK_EQ(rtws_client_backoff_delay(&c, 1, 1000), 1000);
    CHECK_EQ(rtws_client_backoff_delay(&c, 1, 1001), 0); /* r mod 1001 */
    CHECK_EQ(rtws_client_backoff_delay(&c, 1, 523), 523);
    CHECK_EQ(rtws_client_backoff_delay(&c, 2, 2001 * 7 + 5), 5);
    CHECK_EQ(rtws_client_backoff_delay(&c, 1, UINT32_MAX), UINT32_MAX % 1001u);
    for (n = 1; n < 12; n++) {
        uint32_t s = 12345u + n, i, b = rtws_client_backoff_bound(&c, n);
        for (i = 0; i < 1000; i++) CHECK(rtws_client_backoff_delay(&c, n, next_r(&s)) <= b);
    }
}

static void test_full(void) {
    rtws_client_config c = cfg_of(1000, 2, 60000, 250, RTWS_JITTER_FULL);
    uint32_t s = 99, i, lo_seen = 0, hi_seen = 0;
    /* full with a minimum: uniform in [min, bound] */
    CHECK_EQ(rtws_client_backoff_delay(&c, 1, 0), 250);
    CHECK_EQ(rtws_client_backoff_delay(&c, 1, 750), 1000);
    CHECK_EQ(rtws_client_backoff_delay(&c, 1, 751), 250);
    CHECK_EQ(rtws_client_backoff_delay(&c, 3, 3750), 4000);
    for (i = 0; i < 20000; i++) {
        uint32_t d = rtws_client_backoff_delay(&c, 2, next_r(&s));
        CHECK(d >= 250 && d <= 2000);
        lo_seen |= d < 400;
        hi_seen |= d > 1850;
    }
    CHECK(lo_seen && hi_seen); /* the whole range is used */
    /* a minimum above the bound raises it: the delay is the minimum */
    c.backoff_min_ms = 5000;
    CHECK_EQ(rtws_client_backoff_delay(&c, 1, 0), 5000);
    CHECK_EQ(rtws_client_backoff_delay(&c, 1, 123456), 5000);
    CHECK_EQ(rtws_client_backoff_delay(&c, 4, 0), 5000);    /* bound 8000: [5000, 8000] */
    CHECK_EQ(rtws_client_backoff_delay(&c, 4, 3000), 8000);
    CHECK_EQ(rtws_client_backoff_delay(&c, 4, 3001), 5000);
}

static void test_equal(void) {
    rtws_client_config c = cfg_of(1000, 2, 60000, 0, RTWS_JITTER_EQUAL);
    uint32_t s = 7, i;
    /* equal: uniform in [bound/2, bound] */
    CHECK_EQ(rtws_client_backoff_delay(&c, 1, 0), 500);
    CHECK_EQ(rtws_client_backoff_delay(&c, 1, 500), 1000);
    CHECK_EQ(rtws_client_backoff_delay(&c, 1, 501), 500);
    CHECK_EQ(rtws_client_backoff_delay(&c, 7, 0), 30000);
    CHECK_EQ(rtws_client_backoff_delay(&c, 7, 30000), 60000);
    for (i = 0; i < 20000; i++) {
        uint32_t n = 1 + i % 9, b = rtws_client_backoff_bound(&c, n);
        uint32_t d = rtws_client_backoff_delay(&c, n, next_r(&s));
        CHECK(d >= b / 2 && d <= b);
    }
    /* an odd bound: [3, 7] */
    c = cfg_of(7, 1, 100, 0, RTWS_JITTER_EQUAL);
    CHECK_EQ(rtws_client_backoff_delay(&c, 1, 0), 3);
    CHECK_EQ(rtws_client_backoff_delay(&c, 1, 4), 7);
    /* the minimum wins over bound/2 when larger */
    c = cfg_of(1000, 2, 60000, 800, RTWS_JITTER_EQUAL);
    CHECK_EQ(rtws_client_backoff_delay(&c, 1, 0), 800);
    CHECK_EQ(rtws_client_backoff_delay(&c, 1, 200), 1000);
    CHECK_EQ(rtws_client_backoff_delay(&c, 2, 0), 1000); /* bound 2000: 1000 > 800 */
}

static void test_none(void) {
    rtws_client_config c = cfg_of(500, 3, 10000, 0, RTWS_JITTER_NONE);
    uint32_t s = 5, i;
    CHECK_EQ(rtws_client_backoff_delay(&c, 1, 0), 500);
    CHECK_EQ(rtws_client_backoff_delay(&c, 2, 0), 1500);
    CHECK_EQ(rtws_client_backoff_delay(&c, 3, 0), 4500);
    CHECK_EQ(rtws_client_backoff_delay(&c, 4, 0), 10000);
    for (i = 0; i < 1000; i++) /* r does not matter */
        CHECK_EQ(rtws_client_backoff_delay(&c, 3, next_r(&s)), 4500);
    c.backoff_min_ms = 2000;
    CHECK_EQ(rtws_client_backoff_delay(&c, 1, 77), 2000);
    CHECK_EQ(rtws_client_backoff_delay(&c, 3, 77), 4500);
}

static void test_edges(void) {
    /* huge factor and cap: no overflow in the bound or in hi - lo + 1 */
    rtws_client_config c = cfg_of(UINT32_MAX, UINT32_MAX, UINT32_MAX, 0, RTWS_JITTER_FULL);
    CHECK_EQ(rtws_client_backoff_bound(&c, 1), UINT32_MAX);
    CHECK_EQ(rtws_client_backoff_bound(&c, UINT32_MAX), UINT32_MAX);
    CHECK_EQ(rtws_client_backoff_delay(&c, 5, UINT32_MAX), UINT32_MAX);
    CHECK_EQ(rtws_client_backoff_delay(&c, 5, 17), 17);
    c = cfg_of(3, UINT32_MAX, 4000000000u, 0, RTWS_JITTER_NONE);
    CHECK_EQ(rtws_client_backoff_delay(&c, 2, 0), 4000000000u);
    CHECK_EQ(rtws_client_backoff_delay(&c, 60, 0), 4000000000u);
    c = cfg_of(1000, 2, 60000, UINT32_MAX, RTWS_JITTER_EQUAL);
    CHECK_EQ(rtws_client_backoff_delay(&c, 3, 999), UINT32_MAX);
    /* attempt 0 is treated as the first */
    c = cfg_of(1000, 2, 60000, 0, RTWS_JITTER_NONE);
    CHECK_EQ(rtws_client_backoff_delay(&c, 0, 0), 1000);
}

/* The seed systems' schedules, each from one config (GUIDE.md's table). */
static void test_seeds(void) {
    static const uint32_t clarity[] = {2000, 4000, 8000, 16000, 32000};
    static const uint32_t kull[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000, 60000};
    rtws_client_config c;
    uint32_t i;
    /* CLARITY Pulse: 2, 4, 8, 16, 32 s, then give up (max_attempts 5) */
    c = cfg_of(2000, 2, 32000, 0, RTWS_JITTER_NONE);
    c.max_attempts = 5;
    for (i = 0; i < 5; i++) CHECK_EQ(rtws_client_backoff_delay(&c, i + 1, 0xdeadbeef), clarity[i]);
    /* Kull: 1 s doubling to 60 s, at most 10 attempts */
    c = cfg_of(1000, 2, 60000, 0, RTWS_JITTER_NONE);
    c.max_attempts = 10;
    for (i = 0; i < 10; i++) CHECK_EQ(rtws_client_backoff_delay(&c, i + 1, 0x12345678), kull[i]);
    /* Phase 20: every 3 s, 5 attempts */
    c = cfg_of(3000, 1, 3000, 0, RTWS_JITTER_NONE);
    c.max_attempts = 5;
    for (i = 0; i < 5; i++) CHECK_EQ(rtws_client_backoff_delay(&c, i + 1, i * 7919u), 3000);
    /* factor 1 with full jitter and a 1 s floor: [1000, 3000] every time */
    c.jitter = RTWS_JITTER_FULL;
    c.backoff_min_ms = 1000;
    for (i = 0; i < 5000; i++) {
        uint32_t d = rtws_client_backoff_delay(&c, 1 + i % 5, i * 2654435761u);
        CHECK(d >= 1000 && d <= 3000);
    }
}

int main(void) {
    test_defaults();
    test_full();
    test_equal();
    test_none();
    test_edges();
    test_seeds();
    return T_END();
}
