/* base64url in the open (RFC 4648 §5, §10 vectors) and
   rtws_jwt_hs256_verify_claims (issue 13): the claims as JSON, a configured
   user-id claim, leeway at its edges, required claims, alg still pinned, and
   sign -> verify round trips. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"

static const char K[] = "k3y";
#define KL 3
static const int64_t NOW = 1700000000;

static void test_b64url_vectors(void) {
    /* RFC 4648 §10, without the padding */
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const want[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    char out[32];
    uint8_t back[32];
    size_t i;
    for (i = 0; i < 7; i++) {
        size_t n = rtws_base64url_encode((const uint8_t *)in[i], strlen(in[i]), out, sizeof out);
        CHECK_EQ(n, strlen(want[i]));
        CHECK(strcmp(out, want[i]) == 0);
        CHECK_EQ(rtws_base64url_decode(want[i], strlen(want[i]), back, sizeof back), strlen(in[i]));
        CHECK_MEM(back, in[i], strlen(in[i]));
    }
    /* the two characters that differ from the standard alphabet */
    {
        static const uint8_t b1[] = {0xfb, 0xff}, b2[] = {0xff, 0xff, 0xfe};
        CHECK_EQ(rtws_base64url_encode(b1, 2, out, sizeof out), 3);
        CHECK(strcmp(out, "-_8") == 0);
        CHECK_EQ(rtws_base64url_encode(b2, 3, out, sizeof out), 4);
        CHECK(strcmp(out, "___-") == 0);
        CHECK_EQ(rtws_base64url_decode("___-", 4, back, sizeof back), 3);
        CHECK_MEM(back, b2, 3);
        CHECK_EQ(rtws_base64url_decode("-_8", 3, back, sizeof back), 2);
        CHECK_MEM(back, b1, 2);
    }
    /* every byte value round trips */
    {
        uint8_t all[256], dec[256];
        char enc[400];
        size_t n;
        for (i = 0; i < 256; i++) all[i] = (uint8_t)i;
        n = rtws_base64url_encode(all, 256, enc, sizeof enc);
        CHECK_EQ(n, 342); /* ceil(256 * 4 / 3) */
        CHECK(strchr(enc, '+') == NULL && strchr(enc, '/') == NULL && strchr(enc, '=') == NULL);
        CHECK_EQ(rtws_base64url_decode(enc, n, dec, sizeof dec), 256);
        CHECK_MEM(dec, all, 256);
    }
}

static void test_b64url_bad(void) {
    uint8_t b[16];
    char out[8];
    size_t bad = (size_t)-1;
    CHECK_EQ(rtws_base64url_decode("Zg==", 4, b, sizeof b), bad);  /* padding refused */
    CHECK_EQ(rtws_base64url_decode("Zm8=", 4, b, sizeof b), bad);
    CHECK_EQ(rtws_base64url_decode("+/8", 3, b, sizeof b), bad);   /* standard alphabet */
    CHECK_EQ(rtws_base64url_decode("Zm 9v", 5, b, sizeof b), bad); /* whitespace */
    CHECK_EQ(rtws_base64url_decode("Z", 1, b, sizeof b), bad);     /* 4k+1 chars */
    CHECK_EQ(rtws_base64url_decode("Zm9vY", 5, b, sizeof b), bad);
    CHECK_EQ(rtws_base64url_decode("Zh", 2, b, sizeof b), bad);    /* slack bits set */
    CHECK_EQ(rtws_base64url_decode("Zm9", 3, b, sizeof b), bad);
    CHECK_EQ(rtws_base64url_decode("Zm9v\0", 5, b, sizeof b), bad);
    CHECK_EQ(rtws_base64url_decode("Zm9vYmFy", 8, b, 5), bad);     /* cap */
    CHECK_EQ(rtws_base64url_decode("Zm9vYmFy", 8, b, 6), 6);
    /* encode: cap counts the NUL */
    CHECK_EQ(rtws_base64url_encode((const uint8_t *)"foo", 3, out, 4), 0);
    CHECK_EQ(rtws_base64url_encode((const uint8_t *)"foo", 3, out, 5), 4);
    CHECK_EQ(rtws_base64url_encode((const uint8_t *)"fo", 2, out, 4), 3);
}

static rtws_err verify(const char *claims, const rtws_jwt_opts *o, rtws_jwt_claims *cl, char *json,
                       size_t jcap) {
    char tok[4200];
    size_t n = rtws_jwt_hs256_sign(claims, K, KL, tok, sizeof tok);
    if (!n) return RTWS_ERR_NOSPACE;
    return rtws_jwt_hs256_verify_claims(tok, n, K, KL, NOW, o, cl, json, jcap);
}

static void test_claims_json(void) {
    static const char c[] =
        "{\"userId\":\"u-17\",\"role\":\"admin\",\"exp\":1700003600,\"iat\":1700000000,"
        "\"scopes\":[\"read\",\"write\"],\"name\":\"J\\u00f6rg\"}";
    char json[512];
    rtws_jwt_claims cl;
    rtws_jwt_opts o;
    rtws_json_tok toks[32];
    rtws_json doc;
    int v;
    memset(&o, 0, sizeof o);
    o.user_claim = "userId";
    CHECK_EQ(verify(c, &o, &cl, json, sizeof json), RTWS_OK);
    CHECK(strcmp(json, c) == 0); /* the payload, byte for byte */
    CHECK_EQ(cl.json_len, strlen(c));
    CHECK(strcmp(cl.user, "u-17") == 0);
    CHECK_EQ(cl.has, RTWS_JWT_EXP | RTWS_JWT_IAT);
    CHECK_EQ(cl.exp, 1700003600);
    CHECK_EQ(cl.iat, 1700000000);
    CHECK_EQ(cl.nbf, 0);
    /* the application reads its own claims with the JSON codec */
    CHECK_EQ(rtws_json_parse(&doc, json, cl.json_len, toks, 32, 8), RTWS_OK);
    v = rtws_json_get(&doc, 0, "role");
    CHECK(v > 0 && rtws_json_eq(&doc, v, "admin"));
    /* json too small: NOSPACE (the token did verify), "" written */
    CHECK_EQ(verify(c, &o, &cl, json, strlen(c)), RTWS_ERR_NOSPACE);
    CHECK_EQ(json[0], '\0');
    CHECK_EQ(verify(c, &o, &cl, json, strlen(c) + 1), RTWS_OK);
    /* no json buffer wanted */
    CHECK_EQ(verify(c, &o, &cl, NULL, 0), RTWS_OK);
    CHECK_EQ(cl.json_len, 0);
    /* out may be NULL */
    CHECK_EQ(verify(c, &o, NULL, NULL, 0), RTWS_OK);
}

static void test_user_claim(void) {
    rtws_jwt_claims cl;
    rtws_jwt_opts o;
    memset(&o, 0, sizeof o);
    /* default: sub, else user */
    CHECK_EQ(verify("{\"sub\":\"a\",\"user\":\"b\"}", NULL, &cl, NULL, 0), RTWS_OK);
    CHECK(strcmp(cl.user, "a") == 0);
    CHECK_EQ(verify("{\"user\":\"b\"}", NULL, &cl, NULL, 0), RTWS_OK);
    CHECK(strcmp(cl.user, "b") == 0);
    CHECK_EQ(verify("{\"userId\":\"c\"}", NULL, &cl, NULL, 0), RTWS_OK);
    CHECK_EQ(cl.user[0], '\0');
    /* configured: only that claim counts */
    o.user_claim = "userId";
    CHECK_EQ(verify("{\"sub\":\"a\",\"userId\":\"c\"}", &o, &cl, NULL, 0), RTWS_OK);
    CHECK(strcmp(cl.user, "c") == 0);
    CHECK_EQ(verify("{\"sub\":\"a\"}", &o, &cl, NULL, 0), RTWS_OK);
    CHECK_EQ(cl.user[0], '\0');
    /* an integer id is written as its digits; other types are malformed */
    CHECK_EQ(verify("{\"userId\":42}", &o, &cl, NULL, 0), RTWS_OK);
    CHECK(strcmp(cl.user, "42") == 0);
    CHECK_EQ(verify("{\"userId\":-9223372036854775808}", &o, &cl, NULL, 0), RTWS_OK);
    CHECK(strcmp(cl.user, "-9223372036854775808") == 0);
    CHECK_EQ(verify("{\"userId\":4.5}", &o, &cl, NULL, 0), RTWS_ERR_SYNTAX);
    CHECK_EQ(verify("{\"userId\":1e300}", &o, &cl, NULL, 0), RTWS_ERR_SYNTAX);
    CHECK_EQ(verify("{\"userId\":true}", &o, &cl, NULL, 0), RTWS_ERR_SYNTAX);
    CHECK_EQ(verify("{\"userId\":{\"id\":1}}", &o, &cl, NULL, 0), RTWS_ERR_SYNTAX);
    CHECK_EQ(verify("{\"userId\":\"\"}", &o, &cl, NULL, 0), RTWS_ERR_SYNTAX);
    CHECK_EQ(verify("{\"userId\":\"a\\u0000b\"}", &o, &cl, NULL, 0), RTWS_ERR_SYNTAX);
    CHECK_EQ(verify("{\"userId\":\"a\\nb\"}", &o, &cl, NULL, 0), RTWS_ERR_SYNTAX);
    CHECK_EQ(verify("{\"userId\":\"0123456789012345678901234567890123456789012345678901234567890123\"}",
                    &o, &cl, NULL, 0),
             RTWS_ERR_SYNTAX); /* 64 bytes: one too many */
    CHECK_EQ(verify("{\"userId\":\"012345678901234567890123456789012345678901234567890123456789012\"}",
                    &o, &cl, NULL, 0),
             RTWS_OK);
    CHECK_EQ(strlen(cl.user), 63);
}

static void test_leeway(void) {
    rtws_jwt_opts o;
    char c[128];
    memset(&o, 0, sizeof o);
    /* exp: valid while now < exp + leeway */
    snprintf(c, sizeof c, "{\"sub\":\"u\",\"exp\":%lld}", (long long)(NOW + 1));
    CHECK_EQ(verify(c, &o, NULL, NULL, 0), RTWS_OK);
    snprintf(c, sizeof c, "{\"sub\":\"u\",\"exp\":%lld}", (long long)NOW);
    CHECK_EQ(verify(c, &o, NULL, NULL, 0), RTWS_ERR_TIMEOUT);
    o.leeway_s = 10;
    snprintf(c, sizeof c, "{\"sub\":\"u\",\"exp\":%lld}", (long long)(NOW - 9));
    CHECK_EQ(verify(c, &o, NULL, NULL, 0), RTWS_OK);
    snprintf(c, sizeof c, "{\"sub\":\"u\",\"exp\":%lld}", (long long)(NOW - 10));
    CHECK_EQ(verify(c, &o, NULL, NULL, 0), RTWS_ERR_TIMEOUT);
    /* nbf: valid once now + leeway >= nbf */
    snprintf(c, sizeof c, "{\"sub\":\"u\",\"nbf\":%lld}", (long long)(NOW + 10));
    CHECK_EQ(verify(c, &o, NULL, NULL, 0), RTWS_OK);
    snprintf(c, sizeof c, "{\"sub\":\"u\",\"nbf\":%lld}", (long long)(NOW + 11));
    CHECK_EQ(verify(c, &o, NULL, NULL, 0), RTWS_ERR_TIMEOUT);
    /* a negative leeway counts as none; a huge one saturates */
    o.leeway_s = -100;
    snprintf(c, sizeof c, "{\"sub\":\"u\",\"exp\":%lld}", (long long)NOW);
    CHECK_EQ(verify(c, &o, NULL, NULL, 0), RTWS_ERR_TIMEOUT);
    o.leeway_s = INT64_MAX;
    CHECK_EQ(verify("{\"sub\":\"u\",\"exp\":9223372036854775807}", &o, NULL, NULL, 0), RTWS_OK);
    CHECK_EQ(verify("{\"sub\":\"u\",\"nbf\":9223372036854775807}", &o, NULL, NULL, 0), RTWS_OK);
    /* malformed times are malformed whatever the leeway */
    CHECK_EQ(verify("{\"sub\":\"u\",\"exp\":\"soon\"}", &o, NULL, NULL, 0), RTWS_ERR_SYNTAX);
    CHECK_EQ(verify("{\"sub\":\"u\",\"iat\":1.5}", &o, NULL, NULL, 0), RTWS_ERR_RANGE);
}

static void test_required(void) {
    static const char *const need_exp[] = {"exp", NULL};
    static const char *const need_two[] = {"exp", "role", NULL};
    rtws_jwt_opts o;
    memset(&o, 0, sizeof o);
    o.required = need_exp;
    CHECK_EQ(verify("{\"sub\":\"u\"}", &o, NULL, NULL, 0), RTWS_ERR_INVALID);
    CHECK_EQ(verify("{\"sub\":\"u\",\"exp\":1800000000}", &o, NULL, NULL, 0), RTWS_OK);
    o.required = need_two;
    CHECK_EQ(verify("{\"sub\":\"u\",\"exp\":1800000000}", &o, NULL, NULL, 0), RTWS_ERR_INVALID);
    CHECK_EQ(verify("{\"sub\":\"u\",\"exp\":1800000000,\"role\":null}", &o, NULL, NULL, 0), RTWS_OK);
}

/* a token with any header, signed with the right key */
static size_t make(const char *head, const char *claims, char *out, size_t cap) {
    size_t n, k;
    uint8_t mac[32];
    n = rtws_base64url_encode((const uint8_t *)head, strlen(head), out, cap);
    out[n++] = '.';
    k = rtws_base64url_encode((const uint8_t *)claims, strlen(claims), out + n, cap - n);
    n += k;
    rtws_hmac_sha256(K, KL, out, n, mac);
    out[n++] = '.';
    n += rtws_base64url_encode(mac, 32, out + n, cap - n);
    return n;
}

static void test_alg_pinned(void) {
    static const char *const heads[] = {"{\"alg\":\"none\"}", "{\"alg\":\"HS512\"}",
                                        "{\"alg\":\"RS256\"}", "{\"alg\":\"hs256\"}",
                                        "{\"typ\":\"JWT\"}", "{\"alg\":[\"HS256\"]}"};
    char tok[512];
    rtws_jwt_claims cl;
    char json[64];
    size_t i, n;
    for (i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        n = make(heads[i], "{\"sub\":\"u\"}", tok, sizeof tok);
        CHECK_EQ(rtws_jwt_hs256_verify_claims(tok, n, K, KL, NOW, NULL, &cl, json, sizeof json),
                 RTWS_ERR_INVALID);
        CHECK_EQ(json[0], '\0'); /* nothing of a refused token is handed out */
        CHECK_EQ(cl.user[0], '\0');
    }
    n = make("{\"alg\":\"HS256\"}", "{\"sub\":\"u\"}", tok, sizeof tok);
    CHECK_EQ(rtws_jwt_hs256_verify_claims(tok, n, K, KL, NOW, NULL, &cl, json, sizeof json), RTWS_OK);
    /* wrong key, flipped signature, padding, '+' in a segment */
    CHECK_EQ(rtws_jwt_hs256_verify_claims(tok, n, "k3z", 3, NOW, NULL, &cl, NULL, 0), RTWS_ERR_INVALID);
    tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
    CHECK(rtws_jwt_hs256_verify_claims(tok, n, K, KL, NOW, NULL, &cl, NULL, 0) != RTWS_OK);
    n = make("{\"alg\":\"HS256\"}", "{\"sub\":\"u\"}", tok, sizeof tok);
    memcpy(tok + n, "=", 2);
    CHECK_EQ(rtws_jwt_hs256_verify_claims(tok, n + 1, K, KL, NOW, NULL, &cl, NULL, 0), RTWS_ERR_SYNTAX);
}

static void test_round_trip(void) {
    /* sign -> verify keeps every byte of the claims, including non-ASCII text */
    static const char *const claims[] = {
        "{}", "{\"sub\":\"x\"}", "{\"sub\":\"\xc3\xa9t\xc3\xa9\",\"n\":[1,2,{\"a\":null}]}",
        "{\"sub\":\"u\",\"exp\":1700000001,\"nbf\":1699999999,\"iat\":1699999999}"};
    char tok[1024], json[512];
    rtws_jwt_claims cl;
    size_t i, n;
    for (i = 0; i < 4; i++) {
        n = rtws_jwt_hs256_sign(claims[i], K, KL, tok, sizeof tok);
        CHECK(n > 0);
        CHECK_EQ(rtws_jwt_hs256_verify_claims(tok, n, K, KL, NOW, NULL, &cl, json, sizeof json), RTWS_OK);
        CHECK(strcmp(json, claims[i]) == 0);
    }
    CHECK_EQ(cl.has, RTWS_JWT_EXP | RTWS_JWT_NBF | RTWS_JWT_IAT);
    CHECK_EQ(cl.nbf, 1699999999);
    /* the old entry point agrees */
    {
        char user[64];
        n = rtws_jwt_hs256_sign(claims[2], K, KL, tok, sizeof tok);
        CHECK_EQ(rtws_jwt_hs256_verify(tok, n, K, KL, NOW, 0, user), RTWS_OK);
        CHECK(strcmp(user, "\xc3\xa9t\xc3\xa9") == 0);
    }
    /* claims that are not JSON, or not an object, are refused */
    n = rtws_jwt_hs256_sign("{\"sub\":", K, KL, tok, sizeof tok);
    CHECK_EQ(rtws_jwt_hs256_verify_claims(tok, n, K, KL, NOW, NULL, &cl, NULL, 0), RTWS_ERR_SYNTAX);
    n = rtws_jwt_hs256_sign("[1]", K, KL, tok, sizeof tok);
    CHECK_EQ(rtws_jwt_hs256_verify_claims(tok, n, K, KL, NOW, NULL, &cl, NULL, 0), RTWS_ERR_SYNTAX);
    /* sign: cap too small is 0, never a cut token */
    CHECK_EQ(rtws_jwt_hs256_sign("{\"sub\":\"x\"}", K, KL, tok, 40), 0);
}

int main(void) {
    test_b64url_vectors();
    test_b64url_bad();
    test_claims_json();
    test_user_claim();
    test_leeway();
    test_required();
    test_alg_pinned();
    test_round_trip();
    return T_END();
}
