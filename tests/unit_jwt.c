/* rtws_jwt_hs256_verify against hostile tokens (issue 15): the alg pinned to
   HS256, exp/nbf/iat edges and numbers at and beyond int64 (run under UBSan:
   any overflow in the time arithmetic aborts the test), bad signatures and
   bad base64url. Every token except the alg cases is signed with the right
   secret, so the case tests the claim, not the signature. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"

static const char K[] = "s3cret";
#define KL 6
static const int64_t NOW = 1700000000;

/* header and claims as given, signed with secret: any alg can be made */
static size_t make(const char *head, const char *claims, const char *secret, char *out,
                   size_t cap) {
    size_t n, k;
    uint8_t mac[32];
    n = rtws__b64url_encode((const uint8_t *)head, strlen(head), out, cap);
    out[n++] = '.';
    k = rtws__b64url_encode((const uint8_t *)claims, strlen(claims), out + n, cap - n);
    n += k;
    rtws_hmac_sha256(secret, strlen(secret), out, n, mac);
    out[n++] = '.';
    n += rtws__b64url_encode(mac, 32, out + n, cap - n);
    return n;
}

static rtws_err check(const char *claims, int64_t now, int64_t leeway) {
    char tok[1200], user[64];
    size_t n = rtws_jwt_hs256_sign(claims, K, KL, tok, sizeof tok);
    if (!n) return RTWS_ERR_NOSPACE;
    return rtws_jwt_hs256_verify(tok, n, K, KL, now, leeway, user);
}

static rtws_err check_head(const char *head) {
    char tok[1200], user[64];
    size_t n = make(head, "{\"sub\":\"u1\"}", K, tok, sizeof tok);
    return rtws_jwt_hs256_verify(tok, n, K, KL, NOW, 30, user);
}

static void test_alg(void) {
    CHECK_EQ(check_head("{\"alg\":\"HS256\",\"typ\":\"JWT\"}"), RTWS_OK);
    CHECK_EQ(check_head("{\"alg\":\"HS256\"}"), RTWS_OK);
    /* every other alg, even with a valid HMAC-SHA-256 over the same bytes */
    CHECK_EQ(check_head("{\"alg\":\"none\"}"), RTWS_ERR_INVALID);
    CHECK_EQ(check_head("{\"alg\":\"None\"}"), RTWS_ERR_INVALID);
    CHECK_EQ(check_head("{\"alg\":\"HS512\"}"), RTWS_ERR_INVALID);
    CHECK_EQ(check_head("{\"alg\":\"HS384\"}"), RTWS_ERR_INVALID);
    CHECK_EQ(check_head("{\"alg\":\"RS256\"}"), RTWS_ERR_INVALID);
    CHECK_EQ(check_head("{\"alg\":\"ES256\"}"), RTWS_ERR_INVALID);
    CHECK_EQ(check_head("{\"alg\":\"hs256\"}"), RTWS_ERR_INVALID);
    CHECK_EQ(check_head("{\"alg\":\"HS256 \"}"), RTWS_ERR_INVALID);
    CHECK_EQ(check_head("{\"alg\":[\"HS256\"]}"), RTWS_ERR_INVALID);
    CHECK_EQ(check_head("{\"typ\":\"JWT\"}"), RTWS_ERR_INVALID); /* no alg */
    CHECK_EQ(check_head("[\"HS256\"]"), RTWS_ERR_SYNTAX);
    CHECK_EQ(check_head("{\"alg\":\"HS256\""), RTWS_ERR_SYNTAX);
    /* the first "alg" counts (the JSON layer's rule for repeated keys) */
    CHECK_EQ(check_head("{\"alg\":\"none\",\"alg\":\"HS256\"}"), RTWS_ERR_INVALID);
    /* an unsigned "none" token: empty signature part */
    {
        char tok[600], user[64];
        size_t n = make("{\"alg\":\"none\"}", "{\"sub\":\"u1\"}", K, tok, sizeof tok);
        while (tok[n - 1] != '.')
            n--;
        CHECK_EQ(rtws_jwt_hs256_verify(tok, n, K, KL, NOW, 30, user), RTWS_ERR_INVALID);
        CHECK_EQ(user[0], 0);
    }
}

static void test_exp_nbf(void) {
    /* exp: valid strictly before exp + leeway */
    CHECK_EQ(check("{\"sub\":\"u\",\"exp\":1700000001}", NOW, 0), RTWS_OK);
    CHECK_EQ(check("{\"sub\":\"u\",\"exp\":1700000000}", NOW, 0), RTWS_ERR_TIMEOUT);
    CHECK_EQ(check("{\"sub\":\"u\",\"exp\":1699999970}", NOW, 30), RTWS_ERR_TIMEOUT);
    CHECK_EQ(check("{\"sub\":\"u\",\"exp\":1699999971}", NOW, 30), RTWS_OK);
    /* nbf: valid from nbf - leeway on */
    CHECK_EQ(check("{\"sub\":\"u\",\"nbf\":1700000000}", NOW, 0), RTWS_OK);
    CHECK_EQ(check("{\"sub\":\"u\",\"nbf\":1700000001}", NOW, 0), RTWS_ERR_TIMEOUT);
    CHECK_EQ(check("{\"sub\":\"u\",\"nbf\":1700000030}", NOW, 30), RTWS_OK);
    CHECK_EQ(check("{\"sub\":\"u\",\"nbf\":1700000031}", NOW, 30), RTWS_ERR_TIMEOUT);
    /* a negative leeway is no leeway (not a tighter window, not a wrap) */
    CHECK_EQ(check("{\"sub\":\"u\",\"exp\":1700000001}", NOW, -5), RTWS_OK);
    CHECK_EQ(check("{\"sub\":\"u\",\"nbf\":1700000000}", NOW, INT64_MIN), RTWS_OK);
    /* both, and a window that closed before it opened */
    CHECK_EQ(check("{\"sub\":\"u\",\"nbf\":1699999000,\"exp\":1700000100}", NOW, 0), RTWS_OK);
    CHECK_EQ(check("{\"sub\":\"u\",\"nbf\":1700000100,\"exp\":1699999000}", NOW, 0),
             RTWS_ERR_TIMEOUT);
    /* times that are not numbers */
    CHECK_EQ(check("{\"sub\":\"u\",\"exp\":\"1800000000\"}", NOW, 0), RTWS_ERR_SYNTAX);
    CHECK_EQ(check("{\"sub\":\"u\",\"nbf\":null}", NOW, 0), RTWS_ERR_SYNTAX);
    CHECK_EQ(check("{\"sub\":\"u\",\"iat\":true}", NOW, 0), RTWS_ERR_SYNTAX);
    CHECK_EQ(check("{\"sub\":\"u\",\"exp\":[1]}", NOW, 0), RTWS_ERR_SYNTAX);
}

static void test_huge(void) {
    /* the probe's token: exp 2^63-1 is far future, accepted with any leeway */
    CHECK_EQ(check("{\"sub\":\"u\",\"exp\":9223372036854775807}", NOW, 30), RTWS_OK);
    CHECK_EQ(check("{\"sub\":\"u\",\"exp\":9223372036854775807}", NOW, INT64_MAX), RTWS_OK);
    CHECK_EQ(check("{\"sub\":\"u\",\"exp\":9223372036854775807}", INT64_MAX, 30), RTWS_ERR_TIMEOUT);
    CHECK_EQ(check("{\"sub\":\"u\",\"exp\":9223372036854775806}", INT64_MAX - 1, 0),
             RTWS_ERR_TIMEOUT);
    CHECK_EQ(check("{\"sub\":\"u\",\"exp\":9.223372036854775807e18}", NOW, 30), RTWS_OK);
    /* exp at the bottom: long expired, never wrapped into the future */
    CHECK_EQ(check("{\"sub\":\"u\",\"exp\":-9223372036854775808}", NOW, 30), RTWS_ERR_TIMEOUT);
    CHECK_EQ(check("{\"sub\":\"u\",\"exp\":-9223372036854775808}", INT64_MIN, INT64_MAX), RTWS_OK);
    CHECK_EQ(check("{\"sub\":\"u\",\"exp\":-1}", NOW, 30), RTWS_ERR_TIMEOUT);
    /* nbf negative or huge; now at either end */
    CHECK_EQ(check("{\"sub\":\"u\",\"nbf\":-9223372036854775808}", NOW, 30), RTWS_OK);
    CHECK_EQ(check("{\"sub\":\"u\",\"nbf\":-9223372036854775808}", INT64_MIN, 0), RTWS_OK);
    CHECK_EQ(check("{\"sub\":\"u\",\"nbf\":9223372036854775807}", NOW, 30), RTWS_ERR_TIMEOUT);
    CHECK_EQ(check("{\"sub\":\"u\",\"nbf\":9223372036854775807}", INT64_MAX, INT64_MAX), RTWS_OK);
    CHECK_EQ(check("{\"sub\":\"u\",\"nbf\":9223372036854775807}", INT64_MAX - 10, 30), RTWS_OK);
    CHECK_EQ(check("{\"sub\":\"u\",\"nbf\":-1}", NOW, 0), RTWS_OK);
    /* iat of any int64 value is fine; its form is checked */
    CHECK_EQ(check("{\"sub\":\"u\",\"iat\":9223372036854775807}", NOW, 30), RTWS_OK);
    CHECK_EQ(check("{\"sub\":\"u\",\"iat\":-9223372036854775808}", NOW, 30), RTWS_OK);
    /* out of int64 or not whole seconds: RTWS_ERR_RANGE, never accepted */
    CHECK_EQ(check("{\"sub\":\"u\",\"exp\":9223372036854775808}", NOW, 30), RTWS_ERR_RANGE);
    CHECK_EQ(check("{\"sub\":\"u\",\"exp\":99999999999999999999999}", NOW, 30), RTWS_ERR_RANGE);
    CHECK_EQ(check("{\"sub\":\"u\",\"exp\":1e30}", NOW, 30), RTWS_ERR_RANGE);
    CHECK_EQ(check("{\"sub\":\"u\",\"exp\":1e400}", NOW, 30), RTWS_ERR_RANGE);
    CHECK_EQ(check("{\"sub\":\"u\",\"exp\":1800000000.5}", NOW, 30), RTWS_ERR_RANGE);
    CHECK_EQ(check("{\"sub\":\"u\",\"nbf\":-9223372036854775809}", NOW, 30), RTWS_ERR_RANGE);
    CHECK_EQ(check("{\"sub\":\"u\",\"nbf\":-1e19}", NOW, 30), RTWS_ERR_RANGE);
    CHECK_EQ(check("{\"sub\":\"u\",\"iat\":1.5}", NOW, 30), RTWS_ERR_RANGE);
    CHECK_EQ(check("{\"sub\":\"u\",\"iat\":1e19}", NOW, 30), RTWS_ERR_RANGE);
    /* integral spellings of a fine value are fine */
    CHECK_EQ(check("{\"sub\":\"u\",\"exp\":1.8e9}", NOW, 30), RTWS_OK);
    CHECK_EQ(check("{\"sub\":\"u\",\"exp\":18000000000e-1}", NOW, 30), RTWS_OK);
}

static void test_signature(void) {
    char tok[600], user[64];
    size_t n, i;
    /* another secret, an empty one, a flipped bit in each part */
    n = rtws_jwt_hs256_sign("{\"sub\":\"u1\"}", "other", 5, tok, sizeof tok);
    CHECK_EQ(rtws_jwt_hs256_verify(tok, n, K, KL, NOW, 30, user), RTWS_ERR_INVALID);
    CHECK_EQ(user[0], 0);
    n = rtws_jwt_hs256_sign("{\"sub\":\"u1\"}", "", 0, tok, sizeof tok);
    CHECK_EQ(rtws_jwt_hs256_verify(tok, n, K, KL, NOW, 30, user), RTWS_ERR_INVALID);
    n = rtws_jwt_hs256_sign("{\"sub\":\"u1\"}", K, KL, tok, sizeof tok);
    CHECK_EQ(rtws_jwt_hs256_verify(tok, n, K, KL, NOW, 30, user), RTWS_OK);
    CHECK(strcmp(user, "u1") == 0);
    for (i = 0; i < n; i++) {
        char save = tok[i];
        if (tok[i] == '.') continue;
        tok[i] = tok[i] == 'A' ? 'B' : 'A';
        CHECK(rtws_jwt_hs256_verify(tok, n, K, KL, NOW, 30, user) != RTWS_OK);
        tok[i] = save;
    }
    /* a signature cut short, or one byte long */
    CHECK_EQ(rtws_jwt_hs256_verify(tok, n - 1, K, KL, NOW, 30, user), RTWS_ERR_SYNTAX);
    CHECK_EQ(rtws_jwt_hs256_verify(tok, n - 4, K, KL, NOW, 30, user), RTWS_ERR_SYNTAX);
    tok[n] = 'A';
    CHECK_EQ(rtws_jwt_hs256_verify(tok, n + 4, K, KL, NOW, 30, user), RTWS_ERR_SYNTAX);
    CHECK_EQ(rtws_jwt_hs256_verify(tok, n, K, KL, NOW, 30, user), RTWS_OK); /* restored */
}

static void test_base64url(void) {
    char tok[600], user[64];
    size_t n = rtws_jwt_hs256_sign("{\"sub\":\"u1\"}", K, KL, tok, sizeof tok);
    char *sig = strrchr(tok, '.') + 1;
    char t2[600];
    /* standard base64 characters and padding are not base64url */
    memcpy(t2, tok, n + 1);
    t2[0] = '+';
    CHECK_EQ(rtws_jwt_hs256_verify(t2, n, K, KL, NOW, 30, user), RTWS_ERR_SYNTAX);
    memcpy(t2, tok, n);
    t2[n] = '=';
    CHECK_EQ(rtws_jwt_hs256_verify(t2, n + 1, K, KL, NOW, 30, user), RTWS_ERR_SYNTAX);
    memcpy(t2, tok, n);
    t2[sig - tok] = '/';
    CHECK(rtws_jwt_hs256_verify(t2, n, K, KL, NOW, 30, user) != RTWS_OK);
    /* a NUL, a space, a non-ASCII byte inside */
    memcpy(t2, tok, n);
    t2[3] = '\0';
    CHECK_EQ(rtws_jwt_hs256_verify(t2, n, K, KL, NOW, 30, user), RTWS_ERR_SYNTAX);
    t2[3] = ' ';
    CHECK_EQ(rtws_jwt_hs256_verify(t2, n, K, KL, NOW, 30, user), RTWS_ERR_SYNTAX);
    t2[3] = (char)0xc3;
    CHECK_EQ(rtws_jwt_hs256_verify(t2, n, K, KL, NOW, 30, user), RTWS_ERR_SYNTAX);
    /* slack bits set in the last character: not the canonical encoding */
    memcpy(t2, tok, n);
    t2[n - 1] = (char)(t2[n - 1] == 'A' ? 'B' : t2[n - 1] + 1);
    CHECK(rtws_jwt_hs256_verify(t2, n, K, KL, NOW, 30, user) != RTWS_OK);
    /* empty parts, a lone dot, nothing */
    CHECK_EQ(rtws_jwt_hs256_verify("..", 2, K, KL, NOW, 30, user), RTWS_ERR_SYNTAX);
    CHECK_EQ(rtws_jwt_hs256_verify(".", 1, K, KL, NOW, 30, user), RTWS_ERR_SYNTAX);
    CHECK_EQ(rtws_jwt_hs256_verify("", 0, K, KL, NOW, 30, user), RTWS_ERR_SYNTAX);
    /* claims that are not a JSON object */
    n = make("{\"alg\":\"HS256\"}", "[1]", K, t2, sizeof t2);
    CHECK_EQ(rtws_jwt_hs256_verify(t2, n, K, KL, NOW, 30, user), RTWS_ERR_SYNTAX);
    n = make("{\"alg\":\"HS256\"}", "{\"sub\":", K, t2, sizeof t2);
    CHECK_EQ(rtws_jwt_hs256_verify(t2, n, K, KL, NOW, 30, user), RTWS_ERR_SYNTAX);
    /* 4096 bytes is the cap; 4097 is refused before anything is decoded */
    {
        static char big[4200];
        memset(big, 'a', sizeof big);
        CHECK_EQ(rtws_jwt_hs256_verify(big, 4097, K, KL, NOW, 30, user), RTWS_ERR_TOO_BIG);
        CHECK_EQ(rtws_jwt_hs256_verify(big, 4096, K, KL, NOW, 30, user), RTWS_ERR_SYNTAX);
    }
}

int main(void) {
    test_alg();
    test_exp_nbf();
    test_huge();
    test_signature();
    test_base64url();
    return T_END();
}
