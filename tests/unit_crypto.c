/* SHA-256 (FIPS 180-4 examples), HMAC-SHA-256 (RFC 4231 cases 1, 2, 6),
   constant-time compare. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"

static void hex(const uint8_t *d, size_t n, char *out) {
    size_t i;
    for (i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", d[i]);
}

static int sha_is(const void *msg, size_t len, const char *want) {
    uint8_t d[32];
    char h[65];
    rtws_sha256(msg, len, d);
    hex(d, 32, h);
    return strcmp(h, want) == 0;
}

static int hmac_is(const void *key, size_t kl, const void *msg, size_t ml, const char *want) {
    uint8_t d[32];
    char h[65];
    rtws_hmac_sha256(key, kl, msg, ml, d);
    hex(d, 32, h);
    return strcmp(h, want) == 0;
}

int main(void) {
    static char million[1000000];
    uint8_t k20[20], k131[131];
    size_t i;
    CHECK(sha_is("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    CHECK(sha_is("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    CHECK(sha_is("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
                 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    memset(million, 'a', sizeof million);
    CHECK(sha_is(million, sizeof million,
                 "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
    /* streaming boundaries: the same bytes through every padding case */
    for (i = 50; i < 70; i++) {
        uint8_t a[32], b[32];
        rtws__sha256_ctx x;
        rtws__sha256_init(&x);
        rtws__sha256_update(&x, million, i / 3);
        rtws__sha256_update(&x, million, i - i / 3);
        rtws__sha256_final(&x, a);
        rtws_sha256(million, i, b);
        CHECK_MEM(a, b, 32);
    }
    memset(k20, 0x0b, sizeof k20);
    CHECK(hmac_is(k20, 20, "Hi There", 8,
                  "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"));
    CHECK(hmac_is("Jefe", 4, "what do ya want for nothing?", 28,
                  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
    memset(k131, 0xaa, sizeof k131);
    CHECK(hmac_is(k131, 131, "Test Using Larger Than Block-Size Key - Hash Key First", 54,
                  "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"));
    CHECK(rtws_ct_equal("abcd", "abcd", 4));
    CHECK(!rtws_ct_equal("abcd", "abce", 4));
    CHECK(rtws_ct_equal("", "", 0));
    return T_END();
}
