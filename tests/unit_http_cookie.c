/* rtws_http_get_cookie: "a=1; b=2" pairs (RFC 6265 §5.4), several Cookie
   lines, quoted values, names compared exactly, empty values, whitespace,
   and absent names. Requests are parsed as a server sees them. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"
#include "t.h"

static rtws_http req;
static char head[4096];

/* the cookie name of a request with the given header lines, or a marker */
static const char *cookie(const char *lines, const char *name) {
    static char out[512];
    size_t off = 0;
    rtws_str v;
    int n = snprintf(head, sizeof head, "GET /ws HTTP/1.1\r\nHost: x\r\n%s\r\n", lines);
    if (n <= 0 || (size_t)n >= sizeof head) return "<head>";
    if (rtws_http_parse_request(head, (size_t)n, &req, 0, &off) != RTWS_OK) return "<parse>";
    if (!rtws_http_get_cookie(&req, name, &v)) return v.len == 0 && v.p ? "<absent>" : "<bad absent>";
    if (v.p < head || v.p + v.len > head + n || v.len >= sizeof out) return "<outside>";
    memcpy(out, v.p, v.len);
    out[v.len] = 0;
    return out;
}

#define C(lines, name, want) CHECK(strcmp(cookie(lines, name), want) == 0)

int main(void) {
    C("Cookie: accessToken=abc.def.ghi\r\n", "accessToken", "abc.def.ghi");
    C("Cookie: a=1; accessToken=tok; b=2\r\n", "accessToken", "tok");
    C("Cookie: a=1;accessToken=tok\r\n", "accessToken", "tok");
    C("Cookie: a=1; b=2\r\n", "b", "2");
    C("Cookie: a=1; b=2\r\n", "c", "<absent>");
    C("Cookie: a=1; b=2\r\n", "A", "<absent>"); /* names are case-sensitive */
    C("Cookie: ab=1; b=2\r\n", "b", "2");        /* no prefix match */
    C("Cookie: xa=1\r\n", "a", "<absent>");
    C("Cookie: a=\"quoted value\"\r\n", "a", "quoted value");
    C("Cookie: a=\"\r\n", "a", "\"");            /* one quote is the value */
    C("Cookie: a=; b=2\r\n", "a", "");
    C("Cookie: a=x=y\r\n", "a", "x=y");          /* '=' in the value */
    C("Cookie: flag; a=1\r\n", "a", "1");        /* a pair without '=' is passed over */
    C("Cookie: flag; a=1\r\n", "flag", "<absent>");
    C("Cookie: a=1 ; b=2\r\n", "a", "1");        /* trailing space trimmed */
    C("Cookie: a=1; a=2\r\n", "a", "1");         /* the first */
    C("Cookie: a=1\r\ncookie: b=2\r\n", "b", "2"); /* a second Cookie line, any case */
    C("X-Cookie: a=1\r\n", "a", "<absent>");
    C("", "a", "<absent>");
    C("Cookie: \r\n", "a", "<absent>");
    C("Cookie: ;;; a=1;;\r\n", "a", "1");
    return T_END();
}
