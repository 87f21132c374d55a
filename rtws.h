/* rtws.h - v1.0.0 - RFC 6455 WebSockets for C99 and C++ - MIT (text at end of file)

   Do this in one .c file:    #define RTWS_IMPLEMENTATION
                              #include "rtws.h"
   Other files include "rtws.h" without the define. With RTWS_STATIC every
   function is static to that one translation unit.

   CONFIGURATION (macros; define before including the implementation)
     RTWS_MALLOC(n) / RTWS_REALLOC(p, n) / RTWS_FREE(p)
                        default allocator, all three or none (default: libc)
     RTWS_ASSERT(x)     checks caller bugs only, never wire bytes (default: assert)
     RTWS_API           linkage of public functions (default: extern)
     RTWS_STATIC        make every function static
     RTWS_NO_SYSTEM_RANDOM  leave out the getrandom()/dev/urandom source
                        (Windows: RtlGenRandom); then rtws_config.random must be set
     RTWS_NO_EPOLL      rtws_ctx_run_once() uses poll(2) on Linux too
     RTWS_DNS_SYSTEM    client connects resolve names with the system's blocking
                        getaddrinfo() (rtws_ctx_config.dns_system = 1 for every
                        context) instead of rtws's resolver on the loop
     RTWS_USE_BEARSSL   wss:// for both roles through BearSSL (link -lbearssl)

   SWITCHES leave parts out (miniaudio's MA_NO_* way). They remove the
   declarations as well as the code, so a call to a part left out fails to
   compile (or, in C, to link) instead of failing at run time: define the same
   switches wherever rtws.h is included. Types stay declared.
     RTWS_NO_HOST       layers 4 and 5: rtws_ctx_*, rtws_conn_get_fd/_ctx/_peer,
                        rtws_client_*, rtws_tls_*, and of layer 7 rtws_rt_* and
                        rtws_router_install (the router's handle_* and run_timers
                        entry points stay). Left: the sans-I/O core, layers 0-3
                        and 6. No <sys/socket.h>, <poll.h> or <netdb.h> is
                        included; the system random source (layer 0) still
                        includes <fcntl.h>, <unistd.h> and <sys/random.h> unless
                        RTWS_NO_SYSTEM_RANDOM is defined too.
     RTWS_NO_JSON       layer 6 (rtws_json_*, and rtws_time_format_iso of layer
                        0, which its %T uses), and with it layer 7: it implies
                        RTWS_NO_REALTIME (the router, its client and JWT speak JSON)
     RTWS_NO_REALTIME   layer 7: rtws_router_*, rtws_rt_*, rtws_jwt_*
     RTWS_NO_REDIS      layers 6a and 6b: the RESP codec (rtws_resp_*) and the
                        Redis connection (rtws_redis_*). RTWS_NO_HOST and
                        RTWS_NO_CLIENT leave out layer 6b and rtws_stream_*
                        too (the codec stays)
     RTWS_NO_CLIENT     rtws_conn_start, the 101 check (rtws_http_parse_response),
                        rtws_url_*, rtws_ctx_connect/_connect_addr, rtws_client_*,
                        rtws_rt_*. A client-role rtws_conn can no longer start.
     RTWS_NO_SERVER     the answer to an upgrade (rtws_http_parse_request, the
                        request readers rtws_http_get_query, _get_cookie and
                        _match,
                        rtws_http_check_upgrade, 101 and error replies, on_http
                        and on_accept), rtws_ctx_listen/_listen_tls and accept,
                        rtws_router_*. A server-role rtws_conn fails its handshake
                        with RTWS_ERR_INVALID.
     RTWS_NO_DEFLATE    the DEFLATE codec of layer 1: rtws_inflate_*,
                        rtws_deflate_*, rtws_z_err_str, rtws_pmd_parse; and
                        with it permessage-deflate on connections
                        (rtws_conn_get_deflate; the deflate_* fields of
                        rtws_config stay and are ignored)
     RTWS_NO_THREADS    cross-thread posting (rtws_ctx_post, _post_owned,
                        _post_close, rtws_ctx_get_post_stats): no atomics, no
                        wake-up fd. Without it posting needs the GCC/Clang
                        __atomic builtins or MSVC's Interlocked* (and eventfd
                        on Linux, a pipe on other POSIX systems, a loopback
                        socket pair on Windows); no pthread library is needed.
     Refused with an #error: RTWS_NO_CLIENT with RTWS_NO_SERVER (nothing could
     open a connection) and RTWS_NO_HOST with RTWS_USE_BEARSSL (TLS runs on
     the host's sockets). With RTWS_USE_BEARSSL, RTWS_NO_CLIENT leaves out the
     trust anchors and certificate validation, RTWS_NO_SERVER the server
     credentials.

   QUICK START: see README.md (a whole server and a whole client).

   LAYERS, in header order. Each layer has two banners spelled alike,
   "=== layer N: name ===": search for "layer 3: conn" and the first hit is
   where its declarations start, the second where its code starts. A layer
   calls only the layers named in its "calls" column, never a later one by
   name; a later layer's service is reached through a table of function
   pointers it was given (tests/callgraph.py checks this).
     layer        what                                                calls
     0 base       errors, allocator hooks, SHA-1, SHA-256, HMAC,      libc
                  base64, clock, random source
     1 frame      RFC 6455 §5 frame header decode/encode, masking,    0
                  UTF-8 validation, close codes, a whole-frame parser
     1 deflate    RFC 1951 raw inflate/deflate, streaming (RFC 7692)  0
     2 handshake  HTTP/1.1 upgrade request/response parse and build   0-1
                  (§4), Sec-WebSocket-Accept, ws:// URL parsing
     2 dns        A/AAAA query encoder and answer parser (RFC 1035),  0-1
                  hosts and resolv.conf readers (client side)
     3 conn       the sans-I/O connection: bytes in -> events out,    0-2
                  calls -> bytes out, timers run from now_ms
     4 host       sockets: listen/accept/connect, pollfd export or    0-3, and 5 only
                  per-fd readiness, timers, the reconnecting client   through the
                  rtws_client; rtws_transport, the table it drives    transport table
                  every socket through (open, read, writev, flush,    (the wss://
                  pending, wants, release, version, error_text), and  default comes
                  its plain TCP implementation                        from the macro
                                                                      RTWS_TLS_TRANSPORT)
     5 tls        the BearSSL transport (RTWS_USE_BEARSSL): wss://    0-3
                  for both roles; your own TLS is another table
     6 json       strict RFC 8259 parser into caller tokens, writer   0-1
                  into a caller buffer (docs/JSON.md)
     6a resp      RESP2/RESP3 reply parser into typed nodes (zero-    0
                  copy, with limits), command encoder (RTWS_NO_REDIS)
     6b redis     a Redis connection on the context's loop (an        0, 4, 6a
                  rtws_stream): AUTH, SELECT, pipelining, pub/sub,
                  reconnect (RTWS_NO_REDIS; needs the host, client)
     7 realtime   router (channels, presence, history, sessions,      0-6
                  auth) and its client rtws_rt (docs/PROTOCOL.md)
   Layers 0-3, 6 and 6a do no socket I/O: bytes and now_ms come in as arguments,
   bytes and events go out, so each is tested and fuzzed without a socket.
   Layer 6b makes no socket call either: its bytes move through the host's
   rtws_stream.
   Two base functions touch the system, and only when called:
   rtws_time_now_ms()/rtws_time_wall_ms() read the clock, and
   rtws_random_system() reads getrandom(), falling back to /dev/urandom
   (Windows: QueryPerformanceCounter and RtlGenRandom). It
   is the default of rtws_config.random (mask keys, Sec-WebSocket-Key, TLS
   seeding) and rtws_router_config.random (session ids); with
   RTWS_NO_SYSTEM_RANDOM it is left out and those must be set. Layer 4 and
   the transports of layer 5 are the only code that touches a socket; a
   program with its own sockets feeds layer 3.

   MEMORY AND OWNERSHIP
     The caller owns every rtws_conn (stack, static, its own pool). The library
     owns the buffers inside it, allocated through rtws_config.allocator or
     RTWS_MALLOC and friends. Input pointers are borrowed for the duration of a
     call. Event payloads are valid until the callback returns.

   ERRORS
     Zero is success, failures are negative rtws_err values, and
     rtws_err_str() names the setting to change. RTWS_EAGAIN is not a failure.
     A fatal connection error is sticky until rtws_conn_reset().

   THREADS AND REENTRANCY
     No globals, no threads, no signals. One rtws_conn is used by one thread at a
     time. Any API may be called from inside an event callback, including
     rtws_conn_close() and rtws_conn_free() on the connection that fired it.
     A context is driven by one thread (its loop); other threads hand it
     messages and closes with rtws_ctx_post*() (layer 4), the only functions
     that may be called from any thread.

   LIMITS: every buffer has a cap in rtws_config (see rtws_config below).

   TLS: optional, see layer 5 below (rtws_ctx_listen_tls, rtws_tls_client_config).

   WINDOWS (7 and later, Winsock 2; mingw-w64 or MSVC): link ws2_32 (MSVC
   does through a pragma). The int socket of the API (rtws_conn_get_fd,
   on_socket, handle_readable) is the SOCKET's value, -1 for none; the
   detail of RTWS_ERR_IO is a WSAGetLastError() code, its text the system's
   (FormatMessage); rtws_ctx_run_once waits with WSAPoll, and each context
   calls WSAStartup once (WSACleanup in rtws_ctx_free); names resolve on
   the loop with the adapters' DNS servers (GetAdaptersAddresses, from
   iphlpapi.dll loaded at run time). See docs/GUIDE.md, "Platforms".
*/
#ifndef RTWS_H
#define RTWS_H

/* The implementation needs POSIX (clock_gettime, getaddrinfo). Under -std=c99
   glibc and musl hide it unless it is asked for before their first header is
   read, so rtws.h asks when it comes first. When a libc header came first
   (their <features.h> has run: __GLIBC__ or _FEATURES_H), asking now is too
   late and would end in implicit-declaration errors deep in the header; say
   so instead. macOS and the BSDs show POSIX and their own calls by default,
   and asking for POSIX alone there would hide what they add (SO_NOSIGPIPE,
   the u_int types of their network headers): nothing is asked there. */
#if defined(RTWS_IMPLEMENTATION) && !defined(_POSIX_C_SOURCE) && !defined(_GNU_SOURCE) &&          \
    !defined(_DEFAULT_SOURCE) && !defined(_WIN32) && !defined(__APPLE__) &&                        \
    !defined(__FreeBSD__) && !defined(__NetBSD__) && !defined(__OpenBSD__) &&                      \
    !defined(__DragonFly__)
#if defined(__GLIBC__) || defined(_FEATURES_H)
#error "rtws.h: a libc header (<stdio.h>, <stdint.h>, ...) was included before the implementation under strict C (-std=c99), so POSIX is hidden. Make the RTWS_IMPLEMENTATION define and the include of rtws.h come first in this file, or compile it with -D_POSIX_C_SOURCE=200809L (or -D_GNU_SOURCE, or -std=gnu99)."
#endif
#define _POSIX_C_SOURCE 200809L
#endif

#define RTWS_VERSION_MAJOR 1
#define RTWS_VERSION_MINOR 0
#define RTWS_VERSION_PATCH 0
#define RTWS_VERSION_STRING "1.0.0"

#include <stddef.h>
#include <stdint.h>

#ifndef RTWS_API
#if defined(RTWS_STATIC) && (defined(__GNUC__) || defined(__clang__))
#define RTWS_API __attribute__((unused)) static
#elif defined(RTWS_STATIC)
#define RTWS_API static
#else
#define RTWS_API extern
#endif
#endif

/* Switches (see CONFIGURATION): what they imply and what they refuse. */
#if defined(RTWS_NO_JSON) && !defined(RTWS_NO_REALTIME)
#define RTWS_NO_REALTIME /* layer 7 parses and writes JSON */
#endif
#if defined(RTWS_NO_CLIENT) && defined(RTWS_NO_SERVER)
#error "rtws: RTWS_NO_CLIENT and RTWS_NO_SERVER together leave no way to open a connection; keep one role (for frames, HTTP and JSON alone, link with -ffunction-sections -Wl,--gc-sections instead)"
#endif
#if defined(_WIN32) && defined(RTWS_USE_BEARSSL)
#error "rtws: the BearSSL transport is not ported to Windows yet (it calls POSIX send/recv and reads errno); give rtws_ctx_config.tls_transport a TLS of your own there"
#endif
#if defined(RTWS_NO_HOST) && defined(RTWS_USE_BEARSSL)
#error "rtws: RTWS_USE_BEARSSL needs the host layer (TLS runs on its sockets); remove RTWS_NO_HOST, or run your own TLS and feed its plaintext to rtws_conn_recv"
#endif
/* private: the parts of layer 7 that are built */
#if !defined(RTWS_NO_REALTIME) && !defined(RTWS_NO_SERVER)
#define RTWS__HAVE_ROUTER 1
#endif
#if !defined(RTWS_NO_REALTIME) && !defined(RTWS_NO_CLIENT) && !defined(RTWS_NO_HOST)
#define RTWS__HAVE_RT 1
#endif
/* the router's Redis engine: layer 6b must be built */
#if defined(RTWS__HAVE_ROUTER) && !defined(RTWS_NO_REDIS) && !defined(RTWS_NO_HOST) && \
    !defined(RTWS_NO_CLIENT)
#define RTWS__HAVE_RENGINE 1
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================== */
/* === layer 0: base ====================================================== */
/* ======================================================================== */

/* One table expands into both enum rtws_err and rtws_err_str(). */
#define RTWS__ERRORS(X)                                                                            \
    X(RTWS_OK, 0, "ok")                                                                            \
    X(RTWS_EAGAIN, -1, "need more input or output space")                                          \
    X(RTWS_ERR_INVALID, -2, "invalid argument or call in the wrong state")                         \
    X(RTWS_ERR_NOMEM, -3, "allocation failed (see rtws_config.allocator)")                         \
    X(RTWS_ERR_PROTOCOL, -4, "peer violated RFC 6455")                                             \
    X(RTWS_ERR_TOO_BIG, -5, "message exceeds rtws_config.max_message or max_frame")                \
    X(RTWS_ERR_UTF8, -6, "text is not valid UTF-8")                                                \
    X(RTWS_ERR_HANDSHAKE, -7, "opening handshake failed (see the error event's status)")           \
    X(RTWS_ERR_TIMEOUT, -8, "timed out (see rtws_config.*_timeout_ms)")                            \
    X(RTWS_ERR_CLOSED, -9, "connection is closing or closed")                                      \
    X(RTWS_ERR_LIMIT, -10, "queue full or memory budget spent (see rtws_config.max_send_queue, .budget, rtws_ctx_config.post_queue_max)") \
    X(RTWS_ERR_RANDOM, -11, "random source failed (see rtws_config.random)")                       \
    X(RTWS_ERR_SYNTAX, -12, "malformed input")                                                     \
    X(RTWS_ERR_DEPTH, -13, "nesting deeper than the limit")                                        \
    X(RTWS_ERR_NOSPACE, -14, "caller buffer or token array too small")                             \
    X(RTWS_ERR_RANGE, -15, "number out of range")                                                  \
    X(RTWS_ERR_IO, -16, "socket error (see the error event's detail: errno)")                      \
    X(RTWS_ERR_RESOLVE, -17, "host name did not resolve")                                          \
    X(RTWS_ERR_URL, -18, "malformed URL (ws://host[:port]/path)")                                  \
    X(RTWS_ERR_TLS, -19, "TLS failed (see the error event's detail) or not built in (RTWS_USE_BEARSSL)") \
    X(RTWS_ERR_ABNORMAL, -20, "connection lost without a close handshake")                      \
    X(RTWS_ERR_MESSAGE_TIMEOUT, -21, "a message arrived too slowly (see rtws_config.message_timeout_ms)") \
    X(RTWS_ERR_PROXY, -22, "the HTTP proxy refused the tunnel (the error event's status: 407 wants credentials in rtws_client_opts.proxy) or failed") \
    X(RTWS_ERR_REDIRECTS, -23, "too many redirects (see rtws_client_opts.max_redirects)") \
    X(RTWS_ERR_REDIRECT_LOOP, -24, "redirected back to a URL already asked") \
    X(RTWS_ERR_DOWNGRADE, -25, "redirected from wss:// to ws:// (see rtws_client_opts.allow_downgrade)")

typedef enum rtws_err {
#define RTWS__ENUM(name, value, text) name = value,
    RTWS__ERRORS(RTWS__ENUM)
#undef RTWS__ENUM
        RTWS_ERR_LAST_ = -26
} rtws_err;

/* A static string for any rtws_err (unknown values give "unknown error"). */
RTWS_API const char *rtws_err_str(int err);
/* RTWS_VERSION_STRING of the implementation that was compiled. */
RTWS_API const char *rtws_version(void);

typedef enum rtws_role { RTWS_ROLE_DEFAULT = 0, RTWS_CLIENT = 1, RTWS_SERVER = 2 } rtws_role;

/* Memory hooks; all zero means RTWS_MALLOC/RTWS_REALLOC/RTWS_FREE. realloc
   and free receive the pointer the allocator returned; free accepts NULL. */
typedef struct rtws_allocator {
    void *(*alloc)(size_t size, void *user);
    void *(*realloc)(void *ptr, size_t size, void *user);
    void (*free)(void *ptr, void *user);
    void *user;
} rtws_allocator;

/* Fills buf with len bytes from a cryptographic source; returns 0 on success.
   Used for masking keys and Sec-WebSocket-Key (RFC 6455 §5.3, §10.3). */
typedef int (*rtws_random_fn)(void *buf, size_t len, void *user);

/* getrandom(2), falling back to /dev/urandom (Windows: RtlGenRandom, from
   advapi32). Returns 0 or -1. */
RTWS_API int rtws_random_system(void *buf, size_t len, void *user);
/* Monotonic milliseconds (CLOCK_MONOTONIC); the value to pass as now_ms. */
RTWS_API uint64_t rtws_time_now_ms(void);
/* Milliseconds since 1970 (CLOCK_REALTIME), for timestamps people read. */
RTWS_API uint64_t rtws_time_wall_ms(void);
#if !defined(RTWS_NO_JSON) /* (its users: the JSON writer's %T, the router) */
/* Writes ms (milliseconds since 1970, UTC) as ISO 8601, e.g.
   "2026-12-06T07:15:19.123Z", NUL-terminated; returns its length (24), 0
   when cap < 25, ms is negative or past year 9999. */
RTWS_API size_t rtws_time_format_iso(int64_t ms, char *out, size_t cap);
#endif
/* Milliseconds from now until deadline, clamped to [0, INT32_MAX]; -1 when the
   deadline is UINT64_MAX (none), which is what poll() takes as "forever". */
RTWS_API int rtws_time_until_ms(uint64_t deadline_ms, uint64_t now_ms);

RTWS_API void rtws_sha1(const void *data, size_t len, uint8_t out[20]);
/* SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104), for HS256 tokens. */
RTWS_API void rtws_sha256(const void *data, size_t len, uint8_t out[32]);
RTWS_API void rtws_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                               uint8_t out[32]);
/* 1 when a[0..n) equals b[0..n), in time that depends on n only. */
RTWS_API int rtws_ct_equal(const void *a, const void *b, size_t n);
/* Standard base64 with padding. encode writes 4*ceil(len/3) chars plus a NUL
   and returns the length without the NUL, or 0 when cap is too small. */
RTWS_API size_t rtws_base64_encode(const uint8_t *in, size_t len, char *out, size_t cap);
/* Strict: padding required, no whitespace. Returns the decoded length, or
   (size_t)-1 for bad input or too small a cap. */
RTWS_API size_t rtws_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap);
/* base64url (RFC 4648 §5: '-' and '_' for '+' and '/'), unpadded as JWTs and
   URLs use it (RFC 7515 §2). encode writes ceil(4*len/3) chars plus a NUL and
   returns the length without the NUL, or 0 when cap is too small. decode
   refuses '=' padding, whitespace, the standard alphabet's '+' and '/', a
   length of 4k+1 and nonzero unused bits (so each value has one encoding);
   it returns the decoded length, or (size_t)-1 for bad input or too small a
   cap. Neither runs in constant time. */
RTWS_API size_t rtws_base64url_encode(const uint8_t *in, size_t len, char *out, size_t cap);
RTWS_API size_t rtws_base64url_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* A memory budget: bytes in use against a cap, kept by whatever charges it
   (a context's send queues and receive buffers, a router's channels,
   history and sessions) so that one number bounds them all. Plain data for
   one thread, like everything else; zeroed means unlimited. */
typedef struct rtws_budget {
    size_t limit;      /* bytes (0: unlimited; used and peak are kept anyway) */
    size_t used, peak; /* bytes charged now, and the most ever */
    /* Asked by rtws_budget_make_room() to give back at least need bytes
       (the host closes the largest send queues with 1013). NULL: none. */
    void (*reclaim)(struct rtws_budget *b, size_t need, void *user);
    void *reclaim_user;
    int in_reclaim_; /* private: reclaim is running (what it closes does not ask again) */
} rtws_budget;
/* Pressure levels of rtws_budget_get_level(), the order in which work is
   refused as used nears the limit (docs/GUIDE.md "Memory budget"). */
enum {
    RTWS_BUDGET_OK = 0,           /* below 3/4 of the limit, or no limit */
    RTWS_BUDGET_NO_NEW = 1,       /* from 3/4: new channels are refused */
    RTWS_BUDGET_SHED_HISTORY = 2, /* from 7/8: history stops growing, oldest goes first */
    RTWS_BUDGET_FULL = 3          /* at the limit: the largest send queues are closed */
};
RTWS_API void rtws_budget_init(rtws_budget *b, size_t limit);
/* Accounts n more (or fewer) bytes; never refuses: callers ask first. */
RTWS_API void rtws_budget_charge(rtws_budget *b, size_t n);
RTWS_API void rtws_budget_credit(rtws_budget *b, size_t n);
/* 1 when n more bytes fit under the limit, asking reclaim first when they
   do not; 0 when they still do not. Called from inside the reclaim (by
   what it closes) it does not ask it again. */
RTWS_API int rtws_budget_make_room(rtws_budget *b, size_t n);
RTWS_API unsigned rtws_budget_get_level(const rtws_budget *b);

/* ======================================================================== */
/* === layer 1: frame ===================================================== */
/* ======================================================================== */

typedef enum rtws_opcode {
    RTWS_OP_CONT = 0x0,
    RTWS_OP_TEXT = 0x1,
    RTWS_OP_BINARY = 0x2,
    RTWS_OP_CLOSE = 0x8,
    RTWS_OP_PING = 0x9,
    RTWS_OP_PONG = 0xA
} rtws_opcode;

/* RFC 6455 §7.4.1 status codes. */
enum {
    RTWS_CLOSE_NORMAL = 1000,
    RTWS_CLOSE_GOING_AWAY = 1001,
    RTWS_CLOSE_PROTOCOL_ERROR = 1002,
    RTWS_CLOSE_UNSUPPORTED = 1003,
    RTWS_CLOSE_NO_STATUS = 1005,   /* never on the wire: close frame had no code */
    RTWS_CLOSE_ABNORMAL = 1006,    /* never on the wire: TCP ended without close */
    RTWS_CLOSE_INVALID_DATA = 1007,
    RTWS_CLOSE_POLICY = 1008,
    RTWS_CLOSE_TOO_BIG = 1009,
    RTWS_CLOSE_EXTENSION = 1010,
    RTWS_CLOSE_INTERNAL = 1011,
    RTWS_CLOSE_TRY_AGAIN = 1013
};

#define RTWS_FRAME_HEADER_MAX 14 /* 2 + 8 length + 4 mask */

typedef struct rtws_frame_header {
    uint8_t fin;      /* 1 when this is the last frame of a message */
    uint8_t rsv;      /* RSV1..3 as bits 2..0; nonzero is a protocol error here */
    uint8_t opcode;   /* rtws_opcode (or an unknown value, reported as error) */
    uint8_t masked;   /* 1 when a masking key follows */
    uint8_t mask[4];  /* masking key when masked */
    uint64_t len;     /* payload length */
    size_t header_len; /* bytes the header took on the wire (2..14) */
} rtws_frame_header;

/* Decodes one frame header from p[0..n). Returns RTWS_OK (h filled),
   RTWS_EAGAIN (the header is longer than n) or RTWS_ERR_PROTOCOL (64-bit
   length with the top bit set, or a length not in its minimal form). It checks
   only the encoding; rtws_frame_header_check() applies the rules of a role. */
RTWS_API rtws_err rtws_frame_header_decode(const uint8_t *p, size_t n, rtws_frame_header *h);

/* RFC 6455 §5.1-5.5 rules for a frame received by role (RTWS_SERVER expects
   masked frames, RTWS_CLIENT unmasked), given whether a fragmented message is
   in progress. Returns RTWS_OK or RTWS_ERR_PROTOCOL; max_frame (0: none) gives
   RTWS_ERR_TOO_BIG. */
RTWS_API rtws_err rtws_frame_header_check(const rtws_frame_header *h, rtws_role role, int in_message,
                                   uint64_t max_frame);

/* Encodes a header for a payload of len bytes into out (RTWS_FRAME_HEADER_MAX
   bytes). mask is NULL for an unmasked frame (server role). Returns bytes written. */
RTWS_API size_t rtws_frame_header_encode(uint8_t *out, int fin, rtws_opcode op, uint64_t len,
                                         const uint8_t mask[4]);

/* XORs p[0..n) with key, starting at key position pos (0..3), a machine word at a
   time. Returns the key position for the next byte, so a payload can be
   unmasked in pieces: pos = rtws_frame_mask(p, n, key, pos). */
RTWS_API size_t rtws_frame_mask(uint8_t *p, size_t n, const uint8_t key[4], size_t pos);

/* Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing
   above U+10FFFF). state starts at 0 and is 0 again at every complete code point.
   Returns RTWS_OK or RTWS_ERR_UTF8, with *bad_off set to the offset in p of the
   first byte that cannot be part of valid UTF-8 (fail-fast). At the end of a
   message a nonzero state means a truncated sequence. */
RTWS_API rtws_err rtws_utf8_validate(uint32_t *state, const uint8_t *p, size_t n,
                                     size_t *bad_off);

/* RFC 6455 §7.4: 1 when code may be sent in a close frame. */
RTWS_API int rtws_close_code_valid(unsigned code);

/* A whole-frame parser for callers that frame without rtws_conn: it walks a
   byte stream fed in pieces of any size (even one byte), unmasks payloads in
   place and reports each payload piece. Control-frame and message rules follow
   role. rtws_conn runs the same parser on its receive buffer: the frame
   being read (rtws__frame_rx) and the steps that begin and unmask a frame
   are shared, and since rtws_conn holds a header whole in its buffer, only
   this streaming form keeps a header buffer. Its state is private
   (rtws_frame_piece says what a caller reads). */
typedef struct rtws__frame_rx { /* the frame being read: 24 bytes */
    uint64_t len;             /* payload length */
    uint64_t done;            /* payload bytes already unmasked (key position: done & 3) */
    uint8_t mask[4];          /* masking key when masked */
    uint8_t fin, rsv, opcode, masked; /* as in rtws_frame_header */
} rtws__frame_rx;
typedef struct rtws__frame_parser_priv {
    rtws__frame_rx rx;
    rtws_frame_header h;      /* rx's header, for rtws_frame_piece.h */
    uint64_t max_frame;       /* 0: no cap */
    rtws_role role;
    rtws_err err;             /* sticky error, RTWS_OK until one */
    uint8_t hbuf[RTWS_FRAME_HEADER_MAX]; /* a header that came in pieces */
    uint8_t hlen;             /* header bytes buffered */
    uint8_t have_h;           /* 1 from a header's end to the end of its payload */
    uint8_t in_message;       /* 1 inside a fragmented data message */
    uint8_t rsv_ok;           /* rtws_frame_parser_set_rsv */
} rtws__frame_parser_priv;
typedef struct rtws_frame_parser {
    rtws__frame_parser_priv priv_; /* private */
} rtws_frame_parser;

typedef struct rtws_frame_piece {
    const rtws_frame_header *h; /* the frame the piece belongs to */
    uint8_t *data;              /* unmasked payload bytes (inside the caller's input) */
    size_t len;
    int frame_start;            /* 1 on the first piece of a frame (may be empty) */
    int frame_end;              /* 1 on the last piece of a frame */
} rtws_frame_piece;

RTWS_API void rtws_frame_parser_init(rtws_frame_parser *p, rtws_role role, uint64_t max_frame);
/* RSV bits (as in rtws_frame_header.rsv: RSV1 = 4) that the first frame of a
   data message may carry, for an extension both ends agreed on
   (permessage-deflate, RFC 7692: 4). 0 after init: any RSV bit is a protocol
   error. piece->h->rsv reports the bits a frame carried. */
RTWS_API void rtws_frame_parser_set_rsv(rtws_frame_parser *p, unsigned rsv_first);
/* Consumes bytes from data[0..len), stopping after at most one piece. On
   RTWS_OK *piece describes payload bytes (unmasked in place in data) and *used
   says how many input bytes were consumed; call again with the rest. Returns
   RTWS_EAGAIN when all input was consumed without completing a piece,
   RTWS_ERR_PROTOCOL or RTWS_ERR_TOO_BIG (sticky) for a bad frame. */
RTWS_API rtws_err rtws_frame_parser_feed(rtws_frame_parser *p, uint8_t *data, size_t len, size_t *used,
                                  rtws_frame_piece *piece);

/* ======================================================================== */
/* === layer 1: deflate =================================================== */
/* ======================================================================== */
#if !defined(RTWS_NO_DEFLATE)

/* RFC 1951 DEFLATE without zlib, for permessage-deflate (RFC 7692): raw
   streams (no zlib or gzip wrapper), sans-I/O like the rest. Both directions
   take input in pieces of any size and write into a caller buffer; all state
   lives in the object and in one memory block per stream, given by the
   caller (rtws_inflate_mem_size / rtws_deflate_mem_size bytes, aligned like
   malloc's) or allocated once at init through cfg.allocator; nothing is
   allocated per call or per message. The window persists across calls and
   across rtws_*_reset(z, 1) (context takeover); rtws_*_reset(z, 0) forgets it
   (no_context_takeover). RTWS_NO_DEFLATE leaves this section out.

   permessage-deflate with these: the sender compresses a message with
   RTWS_Z_SYNC_FLUSH and removes the 4 bytes 00 00 ff ff the output ends with;
   the receiver feeds the payload and then those 4 bytes, and calls
   rtws_inflate_reset(z, takeover) before each message (which also restarts
   the max_output count). */

/* One table expands into both enum rtws_z_err and rtws_z_err_str(). Positive
   values are progress, not failures; each failure names what broke. */
#define RTWS__Z_ERRORS(X)                                                                          \
    X(RTWS_Z_OK, 0, "ok: all input consumed")                                                      \
    X(RTWS_Z_FULL, 1, "output buffer full: call again with more room")                             \
    X(RTWS_Z_END, 2, "end of stream: the final block is complete")                                 \
    X(RTWS_Z_ERR_INVALID, -1, "invalid argument (window_bits, level, flush, memory)")              \
    X(RTWS_Z_ERR_NOMEM, -2, "allocation failed (see rtws_z_config.allocator)")                     \
    X(RTWS_Z_ERR_BLOCK_TYPE, -3, "deflate: reserved block type 3")                                 \
    X(RTWS_Z_ERR_STORED_LEN, -4, "deflate: stored block LEN is not the complement of NLEN")        \
    X(RTWS_Z_ERR_TABLE_SIZE, -5, "deflate: more than 286 length or 30 distance codes")             \
    X(RTWS_Z_ERR_CODE_LENGTHS, -6, "deflate: code length repeat with no previous or past the end") \
    X(RTWS_Z_ERR_TREE_OVER, -7, "deflate: oversubscribed Huffman code")                            \
    X(RTWS_Z_ERR_TREE_INCOMPLETE, -8, "deflate: incomplete Huffman code")                          \
    X(RTWS_Z_ERR_NO_END, -9, "deflate: no code for end-of-block")                                  \
    X(RTWS_Z_ERR_SYMBOL, -10, "deflate: invalid length or distance symbol (286-287, 30-31)")       \
    X(RTWS_Z_ERR_DISTANCE, -11, "deflate: distance too far back (before the data or the window)")  \
    X(RTWS_Z_ERR_LIMIT, -12, "inflated output exceeds rtws_z_config.max_output")

typedef enum rtws_z_err {
#define RTWS__ENUM(name, value, text) name = value,
    RTWS__Z_ERRORS(RTWS__ENUM)
#undef RTWS__ENUM
        RTWS_Z_ERR_LAST_ = -13
} rtws_z_err;

/* A static string for any rtws_z_err ("unknown deflate status" otherwise). */
RTWS_API const char *rtws_z_err_str(int err);

/* Effort of the compressor: 1 (fast, greedy, short hash chains) to 9 (best,
   lazy matching, long chains); 0 means RTWS_Z_DEFAULT. */
enum { RTWS_Z_FAST = 1, RTWS_Z_DEFAULT = 6, RTWS_Z_BEST = 9 };
/* flush argument of rtws_deflate_compress. */
typedef enum rtws_z_flush {
    RTWS_Z_NO_FLUSH = 0,   /* keep data back for better compression */
    RTWS_Z_SYNC_FLUSH = 1, /* everything out, then an empty stored block (00 00 ff ff) */
    RTWS_Z_FINISH = 2      /* everything out in a final block (BFINAL) */
} rtws_z_flush;

typedef struct rtws_z_config {
    unsigned window_bits;     /* log2 of the window, 8..15 (15): RFC 7692's *_max_window_bits */
    int level;                /* compressor effort 1..9 (RTWS_Z_DEFAULT); inflate ignores it */
    uint64_t max_output;      /* inflate: bytes a stream may produce (0: no limit) */
    rtws_allocator allocator; /* for the memory block when none is given (RTWS_MALLOC and friends) */
} rtws_z_config;

/* Private state; read nothing here (the functions below say what to read). */
typedef struct rtws__inflate_priv {
    uint32_t *ltab, *dtab;  /* decoding tables (in the memory block) */
    uint8_t *win;           /* the window: 1 << wbits bytes, circular */
    void *mem;              /* the memory block, freed by rtws_inflate_free when own_mem */
    rtws_allocator allocator;
    uint64_t max_output, total_out, bitbuf;
    unsigned bitcnt, wbits, whave, wnext;
    unsigned len, dist, extra, rep, nlen, ndist, ncode, have;
    int state, err, final, fixed, own_mem;
    uint8_t lens[320];      /* code lengths of the dynamic block being read */
} rtws__inflate_priv;
typedef struct rtws_inflate {
    rtws__inflate_priv priv_; /* private */
} rtws_inflate;

typedef struct rtws__deflate_priv {
    uint8_t *win;           /* 2 * wbuf bytes (+ padding): history and lookahead */
    uint16_t *head, *prev;  /* hash chains: 1 << hbits heads, wbuf links */
    uint16_t *sym_d;        /* the block's symbols: distance (0: literal) ... */
    uint8_t *sym_lc;        /* ... and literal or length - 3 */
    uint8_t *pend;          /* encoded output not yet handed out */
    void *mem;
    rtws_allocator allocator;
    uint64_t bitbuf;
    long block_start;       /* window offset of the block's first byte; -1: slid out */
    unsigned bitcnt, wbits, wbuf, hbits, max_dist, floor;
    unsigned clean;         /* chain links and window bytes below this are set */
    unsigned good, lazy, nice, chain;
    unsigned strstart, lookahead, match_len, match_start, match_avail;
    unsigned nsym, pend_len, pend_out;
    int level, err, flushed, finished, own_mem;
    uint32_t lfreq[286], dfreq[30];
    uint16_t lcodes[288], dcodes[30];
    uint8_t llens[288], dlens[30];
} rtws__deflate_priv;
typedef struct rtws_deflate {
    rtws__deflate_priv priv_; /* private */
} rtws_deflate;

/* Bytes of the memory block an inflater needs for cfg (NULL: defaults):
   12,832 for the tables plus the window (32,768 at window_bits 15). The
   object itself is sizeof(rtws_inflate), under 500 bytes. */
RTWS_API size_t rtws_inflate_mem_size(const rtws_z_config *cfg);
/* Sets up z for a raw DEFLATE stream. mem (mem_len >= rtws_inflate_mem_size,
   aligned like malloc's) is used as given and must outlive z; with mem NULL
   the block is allocated once through cfg->allocator. cfg NULL: defaults.
   Returns RTWS_Z_OK, RTWS_Z_ERR_INVALID or RTWS_Z_ERR_NOMEM. */
RTWS_API rtws_z_err rtws_inflate_init(rtws_inflate *z, const rtws_z_config *cfg, void *mem,
                                      size_t mem_len);
/* Inflates in[0..in_len) into out[0..out_cap), resuming at any bit where the
   last call stopped. *in_used and *out_len say how much was read and written.
   Returns RTWS_Z_OK (all input used; feed more), RTWS_Z_FULL (out is full:
   call again, with the rest of the input, once out is drained), RTWS_Z_END
   (the final block ended; *in_used stops right after it; later calls return
   RTWS_Z_END until a reset) or an error, sticky until rtws_inflate_reset. With
   max_output set, at most that many bytes come out before RTWS_Z_ERR_LIMIT. */
RTWS_API rtws_z_err rtws_inflate_feed(rtws_inflate *z, const uint8_t *in, size_t in_len,
                                      size_t *in_used, uint8_t *out, size_t out_cap,
                                      size_t *out_len);
/* Starts a new stream (and a new max_output count), clearing any error.
   keep_window 1 keeps the window for back-references (context takeover). */
RTWS_API void rtws_inflate_reset(rtws_inflate *z, int keep_window);
/* Frees the block if init allocated it. z may be inited again afterwards. */
RTWS_API void rtws_inflate_free(rtws_inflate *z);

/* Bytes of the memory block a compressor needs for cfg (NULL: defaults):
   at window_bits 15, 65,552 window + 65,536 hash heads + 65,536 chain links
   + 24,576 symbols + 33,792 output = 254,992 (smaller windows need less).
   The object itself is sizeof(rtws_deflate), about 2.4 KB. Setting up clears
   only the hash heads (64 KiB from window_bits 13 up, 2 KiB at 8): the rest is
   written as data arrives, so a small window makes a cheap compressor. */
RTWS_API size_t rtws_deflate_mem_size(const rtws_z_config *cfg);
/* Sets up d for a raw DEFLATE stream at cfg->level with back-references of
   at most 1 << cfg->window_bits bytes. mem and cfg as for rtws_inflate_init. */
RTWS_API rtws_z_err rtws_deflate_init(rtws_deflate *d, const rtws_z_config *cfg, void *mem,
                                      size_t mem_len);
/* Compresses in[0..in_len) into out[0..out_cap). Input is taken into the
   window as room allows (*in_used); output held back for a later block stays
   inside until a flush. With RTWS_Z_SYNC_FLUSH or RTWS_Z_FINISH, once all the
   input is taken everything is written, ending with 00 00 ff ff (sync) or a
   final block. Returns RTWS_Z_OK (input taken and, with a flush, all of it
   written), RTWS_Z_FULL (out is full: call again with the rest of the input
   and the same flush), RTWS_Z_END (after RTWS_Z_FINISH completed; until a
   reset) or RTWS_Z_ERR_INVALID. Each call that returns RTWS_Z_OK with a flush
   has written one complete flush, even with no input (an empty message). */
RTWS_API rtws_z_err rtws_deflate_compress(rtws_deflate *d, const uint8_t *in, size_t in_len,
                                          size_t *in_used, uint8_t *out, size_t out_cap,
                                          size_t *out_len, rtws_z_flush flush);
/* Starts a new stream. keep_window 1 (context takeover) lets the next data
   refer back to the data already flushed; unflushed data is dropped, and
   then the window is forgotten too, since the peer never saw it. */
RTWS_API void rtws_deflate_reset(rtws_deflate *d, int keep_window);
/* Frees the block if init allocated it. */
RTWS_API void rtws_deflate_free(rtws_deflate *d);


/* RFC 7692 §7 parameters of permessage-deflate, as parsed from a
   Sec-WebSocket-Extensions value by rtws_pmd_parse. */
typedef enum rtws_pmd_status {
    RTWS_PMD_OK = 0,            /* usable as far as the RFC's rules go */
    RTWS_PMD_UNKNOWN_PARAM = 1, /* a parameter RFC 7692 does not define: decline it */
    RTWS_PMD_BAD_VALUE = 2,     /* a value where none is allowed, none where one is
                                   required, or not 8..15 without leading zeros */
    RTWS_PMD_DUPLICATE = 3      /* the same parameter twice */
} rtws_pmd_status;
#define RTWS_PMD_BITS_ANY 1 /* client_max_window_bits offered without a value */
typedef struct rtws_pmd_offer {
    rtws_pmd_status status;
    uint8_t server_no_context_takeover; /* 1 when present */
    uint8_t client_no_context_takeover;
    uint8_t server_max_window_bits;     /* 0: absent, else 8..15 */
    uint8_t client_max_window_bits;     /* 0: absent, RTWS_PMD_BITS_ANY, else 8..15 */
} rtws_pmd_offer;

/* Parses one Sec-WebSocket-Extensions value (join several header lines with
   ", " first) by RFC 6455 §9.1's grammar: extensions separated by commas,
   parameters by semicolons, values tokens or quoted strings whose unescaped
   text is a token, optional whitespace around the separators, empty list
   elements skipped. Every "permessage-deflate" element (in order, the
   client's preference) fills offers[] up to max (*count says how many there
   were, also beyond max); other extensions are checked and skipped. A
   response (is_response 1) must give client_max_window_bits a value.
   Returns RTWS_OK, or RTWS_ERR_SYNTAX with *err_off (may be NULL) at the
   first byte that breaks the grammar; value is only read during the call. */
RTWS_API rtws_err rtws_pmd_parse(const char *value, size_t len, int is_response,
                                 rtws_pmd_offer *offers, size_t max, size_t *count,
                                 size_t *err_off);

#endif /* RTWS_NO_DEFLATE */

/* ======================================================================== */
/* === layer 2: handshake ================================================= */
/* ======================================================================== */

typedef struct rtws_str {
    const char *p; /* not NUL-terminated; points into the parsed buffer */
    size_t len;
} rtws_str;

typedef struct rtws_header {
    rtws_str name, value; /* value without surrounding whitespace */
} rtws_header;

#define RTWS_MAX_HEADERS 64

/* A parsed HTTP/1.1 request (server side) or response (client side). All
   strings point into the buffer that was parsed and live as long as it does. */
typedef struct rtws_http {
    rtws_str method;  /* request */
    rtws_str target;  /* request: path and query as sent */
    rtws_str path;    /* request: target before '?' */
    rtws_str query;   /* request: after '?' (without it), empty when none */
    int minor;        /* HTTP/1.x */
    int status;       /* response status code */
    rtws_str reason;  /* response reason phrase */
    rtws_header headers[RTWS_MAX_HEADERS];
    size_t nheaders;
    size_t size;      /* bytes of the head, through the blank line */
    rtws_str body;    /* request: the Content-Length body handed to on_http (see
                         rtws_config.max_http_body); empty otherwise */
} rtws_http;

/* Finds the end of an HTTP head ("\r\n\r\n") in buf[0..len) without re-scanning:
   *scanned (start 0) remembers how far earlier calls looked. Returns the head
   size, or 0 when it is not complete yet. */
RTWS_API size_t rtws_http_head_end(const char *buf, size_t len, size_t *scanned);

/* Parses a complete request head (buf[0..len) as found by rtws_http_head_end).
   Returns RTWS_OK, or RTWS_ERR_SYNTAX with *err_off at the byte that broke it,
   or RTWS_ERR_LIMIT with more than max_headers (<= RTWS_MAX_HEADERS) headers. */
#if !defined(RTWS_NO_SERVER)
RTWS_API rtws_err rtws_http_parse_request(const char *buf, size_t len, rtws_http *req,
                                          size_t max_headers, size_t *err_off);
#endif
/* The same for a response head ("HTTP/1.1 101 Switching Protocols"). */
#if !defined(RTWS_NO_CLIENT)
RTWS_API rtws_err rtws_http_parse_response(const char *buf, size_t len, rtws_http *res,
                                           size_t max_headers, size_t *err_off);
#endif
/* First header named name (case-insensitive), or NULL. */
RTWS_API const rtws_str *rtws_http_get_header(const rtws_http *m, const char *name);
/* 1 when a comma-separated header named name holds token (case-insensitive),
   across repeated headers of that name too. */
RTWS_API int rtws_http_has_token(const rtws_http *m, const char *name, const char *token);
/* The first query parameter of req named name, percent-decoded (RFC 3986
   §2.1; '+' is a space, as HTML forms send it) into out and NUL-terminated;
   names are compared after decoding too, case-sensitively. *len (may be NULL)
   gets the value's length: the value may hold a NUL byte (%00). Returns 1 when
   found ("name=" and a bare "name" are found with length 0), 0 when absent,
   RTWS_ERR_SYNTAX when the value has a bad escape ("%zz", "%4", a '%' at the
   end), RTWS_ERR_NOSPACE when out cannot hold the value and its NUL (out may
   be NULL to ask for the length only). Other parameters' bad escapes are
   skipped, not errors. */
#if !defined(RTWS_NO_SERVER)
RTWS_API int rtws_http_get_query(const rtws_http *req, const char *name, char *out, size_t cap,
                                 size_t *len);
#endif
/* The first cookie named name (case-sensitive) in the request's Cookie
   headers (RFC 6265 §5.4: "a=1; b=2", every Cookie line searched in order).
   *value points into the parsed buffer, without the double quotes a value
   may be wrapped in; cookie values are not decoded (their meaning is the
   application's). Returns 1 when found (an empty value too), else 0. */
#if !defined(RTWS_NO_SERVER)
RTWS_API int rtws_http_get_cookie(const rtws_http *req, const char *name, rtws_str *value);
/* Matches a request against a route pattern: "GET /ws/connection/{id}/health".
   The method before the space is compared exactly; "*" or no method (the
   pattern starts with '/') takes any. The path (req->path: the query is not
   part of it) must equal the pattern byte for byte, except that "{name}",
   which must be a whole segment, captures one non-empty segment (no '/')
   into params[0..n_params) in order, raw (percent-decoding is the caller's:
   a segment may hold %2F). No allocation. Returns how many parameters it
   captured (0: a match without any), or -1: no match, or a pattern with
   more parameters than n_params, a '{' without '}', or "{...}" that is not
   a whole segment. A trailing '/' counts: "/a/" does not match "/a". */
RTWS_API int rtws_http_match(const rtws_http *req, const char *pattern, rtws_str *params,
                             size_t n_params);
#endif

/* Sec-WebSocket-Accept for a key (RFC 6455 §4.2.2): base64(sha1(key + GUID)),
   28 characters plus a NUL in out. */
RTWS_API void rtws_upgrade_accept_key(const char *key, size_t key_len, char out[29]);

#if !defined(RTWS_NO_SERVER)
/* What a server decided about an upgrade request. */
typedef struct rtws_upgrade {
    int status;                /* 101 when accepted; else 400, 403, 426, ... */
    const char *reason;        /* short text for the error body */
    rtws_str key;              /* Sec-WebSocket-Key as sent */
    rtws_str protocols;        /* Sec-WebSocket-Protocol as sent (may be empty) */
    rtws_str origin;           /* Origin as sent (may be empty) */
} rtws_upgrade;

/* RFC 6455 §4.2.1 checks of a parsed request: GET, HTTP/1.1 or later, one
   Host, Upgrade: websocket, Connection with the Upgrade token, one key that
   decodes to 16 bytes, version 13 (else status 426). Fills *u and returns its status. */
RTWS_API int rtws_http_check_upgrade(const rtws_http *req, rtws_upgrade *u);
#endif /* !RTWS_NO_SERVER */

#if !defined(RTWS_NO_CLIENT)
/* A parsed WebSocket URL (RFC 6455 §3: ws://host[:port][/path][?query]).
   Every string points into the parsed input and lives as long as it does;
   an empty one points at the place it would have been (never NULL unless
   the input was). */
typedef struct rtws_url {
    rtws_str scheme;    /* as written: ws, wss, http or https, in any case (RFC 3986 §3.1) */
    rtws_str host;      /* as written: a name, an IPv4 address, or an IPv6 address
                           without its brackets and zone */
    rtws_str zone;      /* IPv6 zone id (eth0 of [fe80::1%25eth0]), empty when none */
    rtws_str path;      /* from the first '/' to '?' or the end; empty when the URL
                           has none (the request then asks for "/") */
    rtws_str query;     /* after '?', without it; empty when none */
    rtws_str target;    /* path and ?query as written, to the end of the input (the
                           request target, once "/" is put before it when path is empty) */
    uint16_t port;      /* the URL's port, else 80 (ws, http) or 443 (wss, https) */
    int port_explicit;  /* 1 when the URL names a port (even the default one) */
    int tls;            /* 1 for wss and https */
    int ipv6;           /* 1 when host was a bracketed IPv6 literal */
    const char *error;  /* NULL on success; on RTWS_ERR_URL a static sentence naming
                           what is wrong (see rtws_url_parse) */
} rtws_url;

/* Parses url[0..len) without I/O, allocation or a NUL terminator (it never
   reads url[len]). Returns RTWS_OK, or RTWS_ERR_URL with out->error set and
   *err_off (may be NULL) at the offending byte (len when the URL ended too
   soon). http and https are accepted, as the WHATWG WebSocket API and HTTP
   redirects use them; rtws_ctx_connect takes only ws and wss. Refused, each with
   its own out->error:
   - a space, control character, byte >= 0x7F, or a '#' anywhere (RFC 6455
     §3 forbids fragments); these are looked for first, over the whole input
   - a missing scheme, a scheme other than ws/wss/http/https, no "//" after it
   - userinfo (user@host): nothing is done with it and it leaks credentials
   - an empty host, a host over 255 bytes, a name with other characters than
     letters, digits and - . _ ~ (no percent-encoding), a host of only digits
     and dots that is not four decimal numbers 0-255 without leading zeros
   - an IPv6 literal that is unterminated, malformed (RFC 4291 §2.2 text form,
     IPv4 tail allowed), an IPvFuture ([v1.x]), or an IPv6 address without
     brackets; junk after the ']'
   - a zone (RFC 6874: "%25" then the id; a bare '%' is also taken) that is
     empty, over 63 bytes or has other characters than letters, digits, - . _ ~
   - an empty port after ':', a port with a non-digit, a port of 0 or > 65535
   - a '%' in the path or query not followed by two hex digits
   Other printable characters in path and query pass as they are. */
RTWS_API rtws_err rtws_url_parse(const char *url, size_t len, rtws_url *out, size_t *err_off);
/* Writes the Host header value for u into buf, NUL-terminated: the host
   (in brackets for IPv6, without the zone: RFC 6874 §4), then ":port" when
   the port is not the scheme's default. Returns its length; when that is
   >= cap the value did not fit and buf holds "" (when cap > 0). */
RTWS_API size_t rtws_url_host_header(const rtws_url *u, char *buf, size_t cap);
/* Writes the request target ("/" when path is empty, then ?query) the same
   way, returning its length. */
RTWS_API size_t rtws_url_target(const rtws_url *u, char *buf, size_t cap);
/* Resolves a redirect's Location ref[0..len) against base (a URL that
   rtws_url_parse takes) into out, NUL-terminated, as a ws:// or wss:// URL:
   an absolute URL (http maps to ws, https to wss), "//host/path" (base's
   scheme), "/path", "?query", or a path relative to base's directory, with
   "." and ".." segments removed (RFC 3986 §5.2); a "#fragment" is dropped.
   Returns RTWS_OK with *out_len (may be NULL) set, RTWS_ERR_URL when base or
   the result is not a URL rtws_url_parse takes, or RTWS_ERR_NOSPACE when
   out is too small. */
RTWS_API rtws_err rtws_url_resolve(const char *base, const char *ref, size_t len, char *out,
                                   size_t cap, size_t *out_len);
/* 1 when host[0..host_len) at port is listed in no_proxy (the no_proxy
   variable's syntax: entries split by commas or spaces; "*" matches every
   host; an entry matches the host itself and, with or without a leading
   ".", every name under it; "host:port" and "[v6]:port" match that port
   only; IPv6 literals with or without brackets; case-insensitive). No CIDR
   ranges. host is without brackets; no_proxy may be NULL (0). */
RTWS_API int rtws_proxy_bypass(const char *no_proxy, const char *host, size_t host_len,
                               unsigned port);
#endif /* !RTWS_NO_CLIENT */

/* ======================================================================== */
/* === layer 2: dns ======================================================= */
/* ======================================================================== */
/* The sans-I/O half of name resolution: an A/AAAA query encoder and answer
   parser (RFC 1035, RFC 3596), and readers for the hosts file and
   resolv.conf texts (the caller reads the files). No sockets: the host
   sends the query over UDP (TCP when the answer came truncated) and hands
   the reply back. Client side only (RTWS_NO_CLIENT leaves it out). */
#if !defined(RTWS_NO_CLIENT)
#define RTWS_DNS_A 1u     /* qtype: IPv4 address */
#define RTWS_DNS_AAAA 28u /* qtype: IPv6 address */
#define RTWS_DNS_UDP_MAX 512u   /* the largest answer over UDP without EDNS */
#define RTWS_DNS_QUERY_MAX 274u /* the largest query: 2 + 12 + 255 + 4 bytes, a NUL spare */

/* One address: family 4 (addr[0..4)) or 6 (addr[0..16)), network order. */
typedef struct rtws_dns_addr {
    uint8_t family;
    uint8_t addr[16];
    uint32_t ttl; /* seconds the answer may be kept (0 from the hosts file) */
} rtws_dns_addr;

/* Writes a recursive (RD) query with one question, name[0..len) of type
   qtype (RTWS_DNS_A or _AAAA, class IN), into out[0..cap): with tcp set, after
   the two-byte length a TCP query needs (RFC 1035 §4.2.2). The name must be
   a host name: labels of 1-63 letters, digits, '-' or '_', 253 characters at
   most, one trailing dot allowed (an IP literal is not looked up: resolve it
   without DNS). Returns the bytes written, or 0 for a name that is not one or
   cap < RTWS_DNS_QUERY_MAX short of the need. */
RTWS_API size_t rtws_dns_query_encode(uint8_t *out, size_t cap, uint16_t id, const char *name,
                                      size_t len, unsigned qtype, int tcp);

typedef struct rtws_dns_result {
    unsigned rcode;  /* the answer's RCODE: 0 none, 2 server failure, 3 no such name, 5 refused */
    int truncated;   /* TC was set: ask again over TCP for the whole answer */
    size_t count;    /* addresses found: more than max means only max were written */
    uint32_t ttl;    /* the smallest TTL on the way (CNAMEs and addresses) */
} rtws_dns_result;

/* Reads msg[0..len) (a UDP datagram, or a TCP answer without its length) as
   the answer to the query rtws_dns_query_encode made with id, name and qtype:
   the id, QR, opcode and the one question (name compared without case) must
   match, or it is RTWS_ERR_INVALID: not ours (late, or spoofed), keep
   waiting. Follows CNAMEs from the name (8 at most) and writes the records
   of type qtype owned by the last name, in answer order, to out[0..max).
   Returns RTWS_OK (res->count 0: the name has no such address), RTWS_ERR_RESOLVE
   when the RCODE says the lookup failed (res->rcode), or RTWS_ERR_SYNTAX for
   a malformed message (a name pointer that does not point back, a label or
   name too long, a record past the end, an address of the wrong length).
   A truncated answer gives RTWS_OK with res->truncated and the records that
   were whole. res is filled in every case; out[0..max) holds addresses only
   on RTWS_OK (nothing past max is ever written). */
RTWS_API rtws_err rtws_dns_answer_parse(const uint8_t *msg, size_t len, uint16_t id,
                                        const char *name, size_t name_len, unsigned qtype,
                                        rtws_dns_addr *out, size_t max, rtws_dns_result *res);

/* Finds name[0..name_len) in a hosts file's text (lines of an address and its
   names; '#' starts a comment; names compared without case or trailing dot)
   and writes the addresses of family 4, 6 or either (0) in file order to
   out[0..max). Returns how many there are (more than max: only max written).
   Lines with an address that does not parse are skipped, as the C library does. */
RTWS_API size_t rtws_dns_hosts_find(const char *text, size_t len, const char *name,
                                    size_t name_len, int family, rtws_dns_addr *out, size_t max);

/* What resolv.conf says, as far as a resolver of A/AAAA needs it. */
typedef struct rtws_dns_conf {
    rtws_dns_addr servers[3]; /* "nameserver" lines, the first three (port 53) */
    size_t nservers;          /* none listed: 127.0.0.1, as the C library does */
    unsigned timeout_s;       /* "options timeout:n": per try, 5 by default, 1-30 */
    unsigned attempts;        /* "options attempts:n": rounds over the servers, 2 by default, 1-5 */
    int rotate;               /* "options rotate": start each query at the next server */
} rtws_dns_conf;

/* Parses resolv.conf's text (NULL/0: the defaults). Unknown lines and options
   are ignored; a nameserver that is not an IPv4 or IPv6 address (a zone
   "%eth0" is dropped) is skipped. */
RTWS_API void rtws_dns_conf_parse(const char *text, size_t len, rtws_dns_conf *conf);

/* Parses an IPv4 (dotted decimal, four parts) or IPv6 (RFC 4291 §2.2 text
   form) address s[0..n) into *a (ttl 0). Returns 1, or 0 when it is neither. */
RTWS_API int rtws_dns_addr_parse(const char *s, size_t n, rtws_dns_addr *a);
#endif /* !RTWS_NO_CLIENT */

/* ======================================================================== */
/* === layer 3: conn ====================================================== */
/* ======================================================================== */

typedef struct rtws_conn rtws_conn;

typedef enum rtws_event_type {
    RTWS_EV_OPEN = 1,  /* handshake done: open.protocol is the subprotocol chosen */
    RTWS_EV_MESSAGE,   /* a whole message (or a piece, in stream mode): message */
    RTWS_EV_PING,      /* a ping arrived (the pong is already queued): ping */
    RTWS_EV_PONG,      /* a pong arrived: pong, with rtt_ms when it answers our ping */
    RTWS_EV_CLOSE,     /* the connection is closed: close.code, reason, clean */
    RTWS_EV_ERROR      /* error.err says why; a CLOSE event follows when fatal */
} rtws_event_type;

/* Events are typed by kind, as SDL_Event is: switch on ev->type, then read
   the member of that name (ev->message.data, ev->close.code). Every pointer
   in an event is valid until the callback returns. */
typedef struct rtws_open_event {
    rtws_event_type type;  /* RTWS_EV_OPEN */
    rtws_str protocol;     /* the subprotocol (empty when none) */
} rtws_open_event;

typedef struct rtws_message_event {
    rtws_event_type type;  /* RTWS_EV_MESSAGE */
    rtws_opcode opcode;    /* RTWS_OP_TEXT or RTWS_OP_BINARY */
    const uint8_t *data;   /* the payload (text is valid UTF-8) */
    size_t len;
    int first, fin;        /* stream mode: first and last piece of a message;
                              both 1 for a whole message */
} rtws_message_event;

typedef struct rtws_control_event {
    rtws_event_type type;  /* RTWS_EV_PING or RTWS_EV_PONG */
    const uint8_t *data;   /* the payload (<= 125 bytes) */
    size_t len;
    uint32_t rtt_ms;       /* PONG matched: the round trip of our ping, else 0 */
    int matched;           /* PONG: 1 when it answers one of our pings, a heartbeat
                              or one from rtws_conn_ping (then rtt_ms is its round
                              trip, which may be 0 on a fast link) */
} rtws_control_event;

typedef struct rtws_close_event {
    rtws_event_type type;  /* RTWS_EV_CLOSE */
    unsigned code;         /* status code (1005 none, 1006 abnormal) */
    const char *reason;    /* UTF-8, not NUL-terminated; NULL when reason_len is 0 */
    size_t reason_len;
    int clean;             /* 1 when the close handshake completed */
    int by_peer;           /* 1 when the peer started the close */
} rtws_close_event;

typedef struct rtws_error_event {
    rtws_event_type type;  /* RTWS_EV_ERROR */
    rtws_err err;          /* rtws_err_str(err) says what to change */
    int status;            /* RTWS_ERR_HANDSHAKE: the HTTP status (client: the peer's) */
    int detail;            /* the code from below the connection: errno for
                              RTWS_ERR_IO, the TLS code for RTWS_ERR_TLS
                              (rtws_tls_err_str), else 0; always 0 from a
                              connection fed directly (layer 3 alone) */
    const char *detail_text; /* text of detail (strerror's, rtws_tls_err_str's), or
                                NULL; valid until the callback returns */
} rtws_error_event;

typedef union rtws_event {
    rtws_event_type type;  /* every member starts with it */
    rtws_open_event open;
    rtws_message_event message;
    rtws_control_event ping, pong;
    rtws_close_event close;
    rtws_error_event error;
} rtws_event;

typedef void (*rtws_event_fn)(rtws_conn *c, const rtws_event *ev, void *user);

/* Server-side decision about a request, called before the 101 is sent. Set
   *protocol to one of the offered subprotocols (or leave it NULL), or return
   an HTTP status >= 400 (e.g. 401, 403) to refuse; return 0 to accept. */
typedef int (*rtws_accept_fn)(rtws_conn *c, const rtws_http *req, const char **protocol,
                              void *user);

/* The answer to a plain HTTP request (not an upgrade). body and headers are
   copied before the hook returns to rtws. */
typedef struct rtws_http_reply {
    int status;               /* e.g. 200, 404 */
    const char *content_type; /* ("text/plain; charset=utf-8") */
    const void *body;
    size_t body_len;
    const char *headers;      /* extra "Name: value\r\n" lines, or NULL */
} rtws_http_reply;

/* Server: a request without "Upgrade: websocket" (say GET /status or a page,
   or a POST, PUT or DELETE: any method). Fill *reply and return 1 to answer it
   (the connection then closes), or return 0 to go on with the upgrade checks
   (which answer 426). A body sent with Content-Length is read first, up to
   rtws_config.max_http_body, and is req->body; one over the cap is answered
   413, a chunked one (Transfer-Encoding) 411 and an invalid or conflicting
   Content-Length 400, without calling the hook. The body must arrive within
   handshake_timeout_ms like the head; "Expect: 100-continue" is answered
   with a 100 when the body is not there yet. */
typedef int (*rtws_http_fn)(rtws_conn *c, const rtws_http *req, rtws_http_reply *reply,
                            void *user);

/* Zero-initialised means defaults (in parentheses). */
typedef struct rtws_config {
    rtws_role role;                 /* (RTWS_CLIENT) */
    size_t max_frame;               /* payload bytes of one frame (16 MiB) */
    size_t max_message;             /* bytes of a reassembled message (16 MiB) */
    size_t max_fragments;           /* frames in one message, empty ones too (131072) */
    size_t max_handshake;           /* bytes of the HTTP head (8 KiB) */
    size_t max_headers;             /* headers in the HTTP head (64, at most RTWS_MAX_HEADERS) */
    size_t max_http_body;           /* server: bytes of a plain request's body read for
                                       on_http (64 KiB); more: 413, chunked: 411 */
    size_t max_send_queue;          /* unsent data bytes before sends fail (64 MiB) */
    rtws_budget *budget;            /* charged with the unsent bytes and the receive
                                       buffers; what does not fit asks its reclaim, then
                                       fails RTWS_ERR_LIMIT (a receive buffer: the
                                       connection closes with 1013) (NULL: none; a
                                       context sets its own) */
    uint32_t handshake_timeout_ms;  /* opening handshake deadline (10000) */
    uint32_t close_timeout_ms;      /* close handshake deadline (5000) */
    uint32_t ping_interval_ms;      /* ping after this much silence (30000); set
                                       heartbeat_off to disable */
    uint32_t pong_timeout_ms;       /* fail when nothing arrives this long after
                                       a ping (60000) */
    int heartbeat_off;              /* 1: no automatic pings, no pong timeout */
    uint32_t idle_timeout_ms;       /* close with 1001 after this long without a
                                       data message from the peer (0: off); pings
                                       and pongs don't count, so a peer that only
                                       answers the heartbeat is idle */
    uint32_t message_timeout_ms;    /* slow senders: a data message must be whole
                                       this long after its first byte arrived,
                                       and any frame too (a control frame between
                                       fragments is no progress); else the
                                       connection fails with close code 1008 and
                                       RTWS_ERR_MESSAGE_TIMEOUT (0: off) */
    int stream;                     /* 1: deliver message pieces as they arrive */
    int no_utf8_check;              /* 1: skip UTF-8 validation of text (not RFC) */
    /* permessage-deflate (RFC 7692, docs/GUIDE.md "Compression"): offered by
       a client and accepted by a server unless deflate_off or RTWS_NO_DEFLATE.
       "Own" is what we send, "peer" what the other side sends. */
    int deflate_off;                /* 1: neither offer nor accept it */
    size_t deflate_threshold;       /* messages shorter than this go uncompressed (64) */
    int deflate_level;              /* compressor effort 1..9 (1: fast; 6: zlib's default) */
    unsigned deflate_window_bits;   /* our compressor's window, 8..15 (15): its memory */
    unsigned deflate_peer_window_bits; /* the largest window the peer may use, 9..15 (15):
                                       our inflater's memory; a server declines an offer
                                       that cannot be limited to it */
    int deflate_own_no_takeover;    /* 1: our messages are compressed each on its own */
    int deflate_peer_no_takeover;   /* 1: require the same of the peer's messages */
    int deflate_takeover;           /* server: 1 keeps our compression window per
                                       connection (better ratio, ~260 KB a
                                       connection at 15 bits); 0: each of our
                                       messages on its own, the compressor lent
                                       from the context's pool for that message
                                       only (none on an idle connection) */
    const char *const *allowed_origins; /* server: NULL-terminated list; NULL: any */
    rtws_event_fn on_event;         /* events of every connection */
    rtws_accept_fn on_accept;       /* server: accept/refuse/pick subprotocol */
    rtws_http_fn on_http;           /* server: plain HTTP requests (none: 426) */
    void *user;                     /* passed to the callbacks */
    rtws_random_fn random;          /* (rtws_random_system) */
    void *random_user;
    rtws_allocator allocator;       /* (RTWS_MALLOC and friends) */
} rtws_config;

/* Client handshake parameters; strings are copied during the call. */
typedef struct rtws_client_opts {
    const char *host;          /* Host header value, with :port when not default */
    const char *path;          /* request target, "/" when NULL; may hold ?query */
    const char *protocols;     /* Sec-WebSocket-Protocol offer, e.g. "chat, superchat" */
    const char *origin;        /* Origin header, or NULL */
    const char *authorization; /* Authorization header value, or NULL */
    const char *extra_headers; /* raw "Name: value\r\n" lines, or NULL */
    /* Through an HTTP proxy, as rtws_conn_start sees it: tunnel is the
       "host:port" to CONNECT to (IPv6 in brackets) and proxy_authorization
       that request's Proxy-Authorization value ("Basic ..."), or NULL. The
       upgrade request waits for the proxy's 2xx (other answers fail with
       RTWS_ERR_PROXY, the proxy's status in the error event's status).
       rtws_ctx_connect sets both itself from proxy below. */
    const char *tunnel;
    const char *proxy_authorization;
    /* rtws_ctx_connect and rtws_client only (docs/GUIDE.md "Proxies and
       redirects"): */
    const char *proxy;         /* http://[user:pass@]host[:port] (port 80 when none;
                                  user and pass percent-decoded, sent as Basic),
                                  for ws:// and wss:// (TLS inside the tunnel) */
    int proxy_from_env;        /* 1: when proxy is NULL, take http_proxy (ws://) or
                                  https_proxy (wss://), else all_proxy, lower case
                                  first; and go direct when no_proxy (else
                                  NO_PROXY) lists the host (rtws_proxy_bypass),
                                  whichever proxy was chosen */
    unsigned max_redirects;    /* 301/302/307/308 followed per connect (5) */
    int redirects_off;         /* 1: none followed; a 3xx is RTWS_ERR_HANDSHAKE */
    int allow_downgrade;       /* 1: follow a redirect from wss:// to ws:// */
} rtws_client_opts;

typedef enum rtws_conn_state {
    RTWS_STATE_IDLE = 0,      /* initialised; server waits for a request */
    RTWS_STATE_HANDSHAKE,     /* opening handshake in progress */
    RTWS_STATE_OPEN,
    RTWS_STATE_CLOSING,       /* close frame sent or received, waiting for the other */
    RTWS_STATE_CLOSED         /* done: flush output, then close the socket */
} rtws_conn_state;

enum { RTWS_WANT_READ = 1, RTWS_WANT_WRITE = 2, RTWS_WANT_CLOSE = 4 };

/* One piece of pending output (POSIX struct iovec has the same members). */
typedef struct rtws_iov {
    const void *base;
    size_t len;
} rtws_iov;

/* A reference-counted block of output bytes, opaque: a frame shared by many
   connections (rtws_shared_new) is one of these too. */
typedef struct rtws_shared rtws_shared;
typedef struct rtws_shared rtws__chunk; /* private name of the same block */
typedef struct rtws__seg {
    rtws__chunk *chunk;
    const uint8_t *p;
    size_t len;
} rtws__seg;

/* h.opcode of a server connection whose request went to on_http: it never
   opens, so its h is free (no wire opcode is above 15) */
#define RTWS__OP_PLAIN_HTTP 0xFFu

/* rtws_conn's cbits */
#define RTWS__C_CFG_OWN 1u    /* cfg is c's own copy */
#define RTWS__C_CLOSED_EVT 2u /* the CLOSE event went out */
#define RTWS__C_WROTE 4u      /* bytes went out since the host's last timer pass */
#define RTWS__C_WANT_CLOSE 8u /* the socket should close once the output is written */
#define RTWS__C_NOTIFY 16u    /* a host's connection: io_->notify hears that output was
                                 queued or the state ended */

/* The connection's state, in the header only so that callers can place an
   rtws_conn anywhere (stack, static, their own pool): read it through the
   functions below, never directly. */
typedef struct rtws__conn_priv {
    const rtws_config *cfg;       /* effective config (defaults filled): the context's
                                     shared one, or a copy of the connection's own */
    rtws_event_fn on_event;       /* cfg->on_event and cfg->user, or rtws_conn_set_handler's */
    void *user;
    uint64_t now;                 /* latest now_ms seen */
    uint64_t hs_deadline;         /* opening handshake; 0 until the first call. Once open:
                                     when the frame or message in progress must be
                                     whole (message_timeout_ms; 0: none in progress) */
    uint64_t close_deadline;      /* close handshake; 0 none (the host's lingering socket,
                                     closed, keeps its own deadline here) */
    uint64_t last_rx, ping_at;    /* heartbeat */
    uint16_t close_code;          /* code of the close we sent */
    uint8_t state;                /* rtws_conn_state */
    int8_t err;                   /* rtws_err: sticky fatal error */
    uint8_t close_sent, close_recvd, opened, eof;
    uint8_t depth, freed, in_recv, ping_out, drop_input;
    uint8_t rborrow;              /* rbuf is the caller's (rtws_conn_recv_inplace) */
    uint8_t cbits;                /* RTWS__C_*: flags of few uses, one byte for all keeps
                                     rtws_conn within 384 bytes */
    uint8_t zpark;                /* permessage-deflate parked by the idle trim (its state
                                     freed): the windows agreed, rx | tx << 4; 0 not */
    /* receive side: unread bytes are rbuf[rstart..rend) */
    uint8_t *rbuf;
    size_t rcap, rstart, rend;
    union { /* the handshake's, then once opened the open connection's (no byte to spare) */
        size_t hs_scanned;        /* how far rtws_http_head_end looked */
        struct rtws__pmd *pmd;    /* permessage-deflate state, NULL when not agreed */
        size_t zw;                /* while zpark: runs << 2 | rx_takeover << 1 | tx_takeover */
    } hx;
    uint32_t rhint, roffer;       /* bytes to offer per read (<= 1 MiB), and what the
                                     last offer was (saturated) */
    rtws__frame_rx h;             /* the frame parser's state: current frame when have_h;
                                     h.done payload bytes of it unmasked and checked */
    uint8_t have_h, whole, msg_op, stream_first; /* msg_op | RTWS__MSG_Z: compressed */
    uint32_t utf8;                /* UTF-8 state of the text message in progress */
    size_t mtotal, nfrag;         /* bytes and frames of the message in progress */
    uint8_t *mbuf;                /* reassembly buffer */
    size_t mcap;
    /* send side: a queue of segments, control frames ahead at frame boundaries */
    rtws__seg *segs;              /* seg_inline until more are queued at once */
    uint32_t segcap, seghead, nseg;
    uint32_t head_left;           /* bytes of the HTTP head (101/request) not yet written:
                                     control frames may only follow it */
    rtws__seg seg_inline[1];
    size_t head_off;              /* bytes of segs[seghead] already written */
    size_t qbytes;                /* bytes in segs, head_off included */
    rtws__chunk *spare;
    uint8_t send_op;              /* opcode of a fragmented send in progress */
    uint8_t pong_len, ping_len;   /* pending control frames: pongs waiting in ctl->pongq,
                                     and our ping's payload length + 1 (0 none) */
    uint32_t send_utf8;
    struct rtws__ctl *ctl;        /* control-frame buffers, allocated when first needed */
    uint16_t cout_len, cout_off;
    uint32_t rtt_last, rtt_min, rtt_n; /* our heartbeat ping's payload is ping_at */
    uint64_t rtt_sum, last_msg_rx;
    uint64_t msgs_in, msgs_out, bytes_in, bytes_out, opened_at;
    char *hs;                     /* client: accept value + offered protocols; server: protocol */
    void *data;
    void *ext_;                   /* realtime layer: its per-connection state */
    struct rtws__conn_io *io_;    /* host layer: its buffer pool and direct writes, or NULL */
} rtws__conn_priv;

struct rtws_conn {
    rtws__conn_priv priv_; /* private */
};

/* Prepares c for role cfg->role. The config is copied (one allocation of
   sizeof(rtws_config), released by rtws_conn_free; the connections of a
   context share the context's copy instead). When that allocation fails,
   every later call reports RTWS_ERR_NOMEM. A server waits for the request; a
   client calls rtws_conn_start(). No buffer is allocated yet.
   c must stay at the same address until rtws_conn_free() (it points into itself). */
RTWS_API void rtws_conn_init(rtws_conn *c, const rtws_config *cfg);
/* Releases every buffer. Inside a callback of c the release happens when the
   outer rtws call returns; c's own memory must stay valid until then. */
RTWS_API void rtws_conn_free(rtws_conn *c);
/* rtws_conn_free() then rtws_conn_init() with the same config. */
RTWS_API void rtws_conn_reset(rtws_conn *c);
/* The effective config, defaults filled in. */
RTWS_API const rtws_config *rtws_conn_get_config(const rtws_conn *c);
RTWS_API rtws_conn_state rtws_conn_get_state(const rtws_conn *c);
RTWS_API rtws_err rtws_conn_get_error(const rtws_conn *c);
RTWS_API void rtws_conn_set_data(rtws_conn *c, void *data);
/* Sends the events of c alone to fn (instead of cfg.on_event). */
RTWS_API void rtws_conn_set_handler(rtws_conn *c, rtws_event_fn fn, void *user);

/* Counters of one connection (data messages and their payload bytes). */
typedef struct rtws_conn_stats {
    uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
    uint64_t opened_at_ms;   /* now_ms of the OPEN event; 0 when never opened */
    uint64_t last_msg_ms;    /* now_ms of the last data message received (of the OPEN
                                event until one arrives): what idle_timeout_ms counts from */
    uint32_t rtt_last_ms, rtt_min_ms, rtt_avg_ms, rtt_samples; /* round trips of our
                                  pings: heartbeats and rtws_conn_ping's */
    rtws_err last_error;
    size_t buffered;         /* bytes waiting in c now: unread input, unsent output */
    size_t buffer_cap;       /* bytes of buffers c holds now (receive, reassembly, its
                                own output chunks, the spare one): what rtws_conn_trim
                                gives back; shared frames are not counted */
    uint64_t deflate_runs;   /* messages our compressor ran on (permessage-deflate),
                                shrunk or not, while the connection is open; a
                                shared frame's compressed copy counts on the
                                connection that made it only */
} rtws_conn_stats;
RTWS_API void rtws_conn_get_stats(const rtws_conn *c, rtws_conn_stats *st);
RTWS_API void *rtws_conn_get_data(const rtws_conn *c);

/* Client: queues the upgrade request (random 16-byte key). */
#if !defined(RTWS_NO_CLIENT)
RTWS_API rtws_err rtws_conn_start(rtws_conn *c, const rtws_client_opts *opts,
                                         uint64_t now_ms);
#endif

/* Feeds bytes received from the peer. Consumes all len bytes (*used, when not
   NULL, says how many; fewer only on a fatal error) and delivers events before
   returning. Returns RTWS_OK, RTWS_EAGAIN (waiting for more) or the sticky fatal
   error. data is only read during the call. */
RTWS_API rtws_err rtws_conn_recv(rtws_conn *c, const void *data, size_t len, uint64_t now_ms,
                                 size_t *used);
/* Zero-copy receive: space inside the connection's buffer to read() into
   (at least min_len bytes when min_len > 0, else what the next frame needs
   and at least 1 KiB, more while reads keep filling it), then
   rtws_conn_recv_commit() with the count read. */
RTWS_API uint8_t *rtws_conn_recv_buf(rtws_conn *c, size_t min_len, size_t *cap);
RTWS_API rtws_err rtws_conn_recv_commit(rtws_conn *c, size_t n, uint64_t now_ms);
/* Like rtws_conn_recv, for bytes in a buffer the caller may lend writable for
   the call (say one read buffer shared by every connection of a loop): frames
   are unmasked and delivered in place, and only an incomplete tail is copied
   into the connection's own buffer. A connection that holds no partial frame
   then keeps no receive buffer at all. Falls back to rtws_conn_recv's copy
   when c already has a buffer. */
RTWS_API rtws_err rtws_conn_recv_inplace(rtws_conn *c, void *buf, size_t len, uint64_t now_ms);
/* The peer's side of TCP ended (read returned 0 or an error). */
RTWS_API void rtws_conn_recv_eof(rtws_conn *c, uint64_t now_ms);
/* Releases receive and reassembly buffers while no message is in progress
   (an idle connection then holds only its struct). Buffers are kept between
   messages whatever their size, so a busy connection allocates nothing per
   message: call this when c goes quiet (the host does after
   rtws_ctx_config.trim_ms without input). */
RTWS_API void rtws_conn_trim(rtws_conn *c);

/* Pending output, lent until the next rtws call on c: one contiguous piece. */
RTWS_API const uint8_t *rtws_conn_out(rtws_conn *c, size_t *len);
/* Pending output as up to max pieces for writev(); returns the count. */
RTWS_API int rtws_conn_out_iov(rtws_conn *c, rtws_iov *iov, int max);
/* Acknowledges n bytes of the output last lent as written. */
RTWS_API void rtws_conn_out_done(rtws_conn *c, size_t n);
/* Bytes waiting to be written (data and control). */
RTWS_API size_t rtws_conn_out_pending(const rtws_conn *c);

/* RTWS_WANT_READ/WRITE/CLOSE: what the host should do with the socket.
   WANT_CLOSE alone: all output is written and the socket should be closed. */
RTWS_API unsigned rtws_conn_want(const rtws_conn *c);
/* Timers: handshake and close timeouts, heartbeat. */
RTWS_API void rtws_conn_run_timers(rtws_conn *c, uint64_t now_ms);
/* The next time rtws_conn_run_timers() has work, or UINT64_MAX. */
RTWS_API uint64_t rtws_conn_get_deadline(const rtws_conn *c);

/* Sends a whole message; RTWS_ERR_UTF8 for invalid text, RTWS_ERR_LIMIT when
   the send queue is full, RTWS_ERR_CLOSED after a close. data is copied, or,
   for a frame of 64 KiB and up with nothing queued on a connection of the
   host (layer 4, plain TCP), written to the socket at once and only the part
   the socket did not take is copied (under 256 KiB once per connection in a
   pass of the loop: the frames after it are batched); either way data is not
   read after the call returns. */
RTWS_API rtws_err rtws_conn_send(rtws_conn *c, rtws_opcode op, const void *data, size_t len);
RTWS_API rtws_err rtws_conn_send_text(rtws_conn *c, const char *text, size_t len);
RTWS_API rtws_err rtws_conn_send_binary(rtws_conn *c, const void *data, size_t len);
/* Flags of rtws_conn_send_flags. */
enum { RTWS_SEND_UNCOMPRESSED = 1 /* never compress this message (say, already compressed
                                     data, or a secret beside attacker-chosen text) */ };
/* rtws_conn_send with flags. With permessage-deflate agreed, a whole message
   of deflate_threshold bytes or more is compressed (RSV1 set) unless
   RTWS_SEND_UNCOMPRESSED is given; frames of rtws_conn_send_frame always go
   uncompressed (shared frames: rtws_conn_send_shared). */
RTWS_API rtws_err rtws_conn_send_flags(rtws_conn *c, rtws_opcode op, const void *data,
                                       size_t len, unsigned flags);
#if !defined(RTWS_NO_DEFLATE)
/* 1 when permessage-deflate is in force on c (open), with the agreed
   parameters in *agreed (may be NULL; status RTWS_PMD_OK; window bits 15 for
   a side that set none); else 0. */
RTWS_API int rtws_conn_get_deflate(const rtws_conn *c, rtws_pmd_offer *agreed);
#endif
/* One frame of a fragmented message: op is TEXT/BINARY for the first frame,
   RTWS_OP_CONT for the rest; fin on the last. Text is validated across frames. */
RTWS_API rtws_err rtws_conn_send_frame(rtws_conn *c, rtws_opcode op, const void *data,
                                       size_t len, int fin);
/* A frame encoded once and queued to many server-role connections without a
   copy (server frames are unmasked, so every peer gets the same bytes): a
   broadcast costs one encode and one reference per peer. alloc is the
   allocator of the connections it goes to (NULL: RTWS_MALLOC). With
   permessage-deflate a connection may get a compressed copy instead (see
   rtws_conn_send_shared). The references are not atomic: a shared frame is
   used on one thread (a context's loop), like its connections. */
RTWS_API rtws_shared *rtws_shared_new(const rtws_allocator *alloc, rtws_opcode op,
                                      const void *data, size_t len);
/* Queues s on c (RTWS_ERR_INVALID for a client-role c); c holds a reference
   until the bytes are written. With permessage-deflate agreed on c and a
   payload of its deflate_threshold or more, c gets the message compressed
   (RSV1): without our context takeover (a server's default) a copy
   compressed once and kept with s for every later connection whose window
   fits it (docs/GUIDE.md "Compression"), freed with the last queue holding
   it; with deflate_takeover = 1, compressed for c alone by its own
   compressor. The counters count the payload as sent; the queue and budget
   the bytes queued. */
RTWS_API rtws_err rtws_conn_send_shared(rtws_conn *c, rtws_shared *s);
/* RTWS_SEND_UNCOMPRESSED: s goes out as it is to every connection (0: as
   rtws_conn_send_shared says). */
RTWS_API void rtws_shared_set_flags(rtws_shared *s, unsigned flags);
/* Drops the caller's reference (the first one, from rtws_shared_new). */
RTWS_API void rtws_shared_release(rtws_shared *s);
/* The payload of s, for keeping it (e.g. in a history). */
RTWS_API const uint8_t *rtws_shared_get_payload(const rtws_shared *s, size_t *len);

/* Ping with up to 125 bytes; queued ahead of data at the next frame boundary.
   A ping not yet written is replaced by the next one. The payload goes out as
   given; the connection remembers when it was queued (its latest now_ms; a
   context's connection: the loop's) and a checksum of the payload, for the
   4 newest pings waiting for their pong. The first pong with the same
   payload gives the round trip (the PONG event's matched and rtt_ms, and the
   stats) and forgets the older ones, which a peer answering in order would
   have answered first and one answering only the latest never will; so
   distinct payloads (a counter) always measure right, equal ones measure
   from the oldest waiting. A server connection keeps its control block
   (about 1 KiB) while one of these pings waits. */
RTWS_API rtws_err rtws_conn_ping(rtws_conn *c, const void *data, size_t len);
/* Starts the close handshake after the queued data: code 0 sends no code;
   reason (<= 123 bytes of UTF-8) may be NULL. */
RTWS_API rtws_err rtws_conn_close(rtws_conn *c, unsigned code, const char *reason);

#if !defined(RTWS_NO_HOST)
/* ======================================================================== */
/* === layer 4: host ====================================================== */
/* ======================================================================== */

/* The only layer that touches sockets: listeners, accepted and outgoing
   connections, non-blocking, IPv4 and IPv6, driven by the caller's loop.
   Events of every connection go to conn.on_event of the context's config. */
struct pollfd;
struct sockaddr;
typedef struct rtws_ctx rtws_ctx;

/* epoll/kqueue style: called when the events wanted on fd change
   (RTWS_WANT_READ | RTWS_WANT_WRITE), and with want 0 just before fd closes. */
typedef void (*rtws_socket_fn)(rtws_ctx *ctx, int fd, unsigned want, void *user);

/* ---- transports: what carries a connection's bytes over its socket ----

   The host drives every socket through a table of functions: plain TCP
   (rtws_transport_tcp()) for ws://, BearSSL (rtws_transport_bearssl(),
   layer 5) or your own TLS for wss://. The host owns the socket (connect,
   accept, poll, shutdown, close); the transport moves bytes over it and may
   keep state per socket, which the host allocates with the socket
   (state_size bytes, zeroed, aligned for any type). Every function gets
   that state and the non-blocking socket. A transport of your own is used
   by listeners of rtws_ctx_listen_transport() and, as
   rtws_ctx_config.tls_transport, by wss:// connects (and by
   rtws_ctx_listen_tls when it has server_new); see tests/e2e_transport.c. */

/* What read, writev and flush return besides a byte count. */
enum {
    RTWS_IO_AGAIN = -1, /* nothing now: the socket would block (the host asks wants) */
    RTWS_IO_ERRNO = -2, /* the socket failed, *detail is errno: RTWS_ERR_IO */
    RTWS_IO_FAIL = -3   /* the transport failed, *detail is its own code (error_text):
                           RTWS_ERR_TLS, the code in the event's tls_error */
};

struct rtws_tls_client_config;
struct rtws_tls_server_config;

/* What open learns about a new socket; lives during the call. */
typedef struct rtws_transport_open {
    void *shared;            /* accepted: the listener's (rtws_ctx_listen_transport's
                                argument, or server_new's); client: the context's
                                (client_new's, else rtws_ctx_config.tls_transport_user) */
    const char *server_name; /* client: the URL's host without its zone (SNI, name
                                check); NULL for an accepted socket */
    const rtws_config *conn; /* the connection's config (allocator, random); lives
                                as long as the context */
} rtws_transport_open;

typedef struct rtws_transport {
    const char *name;  /* "tcp", "bearssl", ... */
    size_t state_size; /* bytes of state per socket (0: none, state is NULL) */
    /* Readies state for a client socket (before it connects) or an accepted
       one. RTWS_OK, or an error with *detail: a connect then fails with it
       (RTWS_ERR_TLS: rtws_ctx_get_tls_error() says detail), an accepted
       socket gets an RTWS_EV_ERROR and closes. release follows either way. */
    rtws_err (*open)(void *state, const rtws_transport_open *in, int *detail);
    /* Up to len bytes of the peer's data into buf: how many (> 0), 0 at the
       end of the stream, or RTWS_IO_*. */
    long (*read)(void *state, int fd, void *buf, size_t len, int *detail);
    /* Takes the connection's bytes from n > 0 pieces, in order: how many it
       took (> 0; fewer than all: the socket is full), or RTWS_IO_*. */
    long (*writev)(void *state, int fd, const rtws_iov *iov, int n, int *detail);
    /* The connection has nothing more to write: send what the transport still
       holds (a partial TLS record, handshake records). 0 when all went out,
       or RTWS_IO_*. NULL: it holds nothing. */
    long (*flush)(void *state, int fd, int *detail);
    /* Nonzero when the transport holds input no poll() would announce
       (decrypted bytes, the end of the stream): the host reads at once.
       NULL: never. */
    size_t (*pending)(void *state);
    /* The socket events to wait for (RTWS_WANT_READ | RTWS_WANT_WRITE) given
       the connection's; RTWS_WANT_CLOSE when the socket may shut down. When
       the connection says RTWS_WANT_CLOSE, a transport with a last word (TLS
       close_notify) starts it here and asks for WRITE until it is out. Not
       called while connecting or after the stream ended. NULL: conn_want. */
    unsigned (*wants)(void *state, int fd, unsigned conn_want);
    /* Frees what state holds; the socket closes right after. NULL: nothing. */
    void (*release)(void *state);
    /* The protocol version once established (0x0303: TLS 1.2), else 0
       (rtws_conn_get_tls_version). NULL: 0. */
    unsigned (*version)(const void *state);
    /* A static text for a code it put in *detail with RTWS_IO_FAIL or open. */
    const char *(*error_text)(int detail);
    /* Optional, so rtws_ctx_listen_tls() and wss:// connects take the layer 5
       configs: server_new makes a listener's shared state from cfg (may be
       NULL), client_new the context's for its wss:// connects (cfg is
       rtws_ctx_config.tls, may be NULL, outlives the context). RTWS_OK or an
       error with *detail (rtws_ctx_get_tls_error()). server_free runs when
       the listener closes (sockets accepted there may live on: count
       references in open/release), client_free when the context is freed. */
    rtws_err (*server_new)(const struct rtws_tls_server_config *cfg, const rtws_allocator *a,
                           void **shared, int *detail);
    void (*server_free)(void *shared);
    rtws_err (*client_new)(const struct rtws_tls_client_config *cfg, const rtws_allocator *a,
                           void **shared, int *detail);
    void (*client_free)(void *shared);
} rtws_transport;

/* Plain TCP: recv and sendmsg, no state. */
RTWS_API const rtws_transport *rtws_transport_tcp(void);

/* A message or close posted from another thread (rtws_ctx_post*) that was
   not handed to its connection; see rtws_ctx_config.on_post_dropped. */
typedef struct rtws_post_dropped {
    uint64_t conn_id;    /* the id it was posted to (rtws_conn_get_id) */
    rtws_opcode op;      /* RTWS_OP_TEXT or _BINARY; RTWS_OP_CLOSE for a posted close */
    const uint8_t *data; /* the payload (a close: its reason), valid until the
                            callback returns */
    size_t len;
    unsigned code;       /* a close: its code */
    rtws_err err;        /* RTWS_ERR_CLOSED: no such connection any more, or it
                            is not open (closing, or still in its handshake),
                            or the context is being freed; else what
                            rtws_conn_send/_close said (RTWS_ERR_LIMIT: its
                            send queue is full) */
} rtws_post_dropped;

typedef struct rtws_ctx_config {
    rtws_config conn;          /* template for every connection (role set per socket) */
    size_t max_connections;    /* 0: unlimited; sockets over it are closed at once */
    size_t memory_budget;      /* bytes of every connection's send queue and receive
                                  buffers, plus an installed router's channels, history
                                  and sessions (0: unlimited). Near it new channels are
                                  refused, then history shrinks, then the largest send
                                  queues are closed with 1013 (docs/GUIDE.md) */
    uint32_t timer_ms;         /* timer granularity: a deadline is served at most this
                                  late, and timer passes are at least this far apart (100) */
    uint32_t linger_ms;        /* a closing socket drains input this long (2000) */
    uint32_t trim_ms;          /* a connection quiet this long gives its buffers back
                                  (rtws_conn_trim), so idle ones cost only their
                                  struct (1000) */
    size_t buffer_pool;        /* big buffers (64 KiB and up: receive, reassembly and
                                  output of big messages) that connections give back
                                  are kept for reuse by any connection of the context,
                                  up to this many bytes, and freed after trim_ms
                                  without use (32 MiB); a busy server then allocates
                                  nothing per big message */
    int buffer_pool_off;       /* 1: no pool; big buffers go back to the allocator (and
                                  no compressor is lent per message) */
    int backlog;               /* listen(2) backlog (SOMAXCONN) */
    rtws_socket_fn on_socket;  /* NULL for the pollfd style */
    void *socket_user;
    const struct rtws_tls_client_config *tls; /* wss:// clients (layer 5); NULL: defaults
                                                 (verify against the system bundle) */
    const rtws_transport *tls_transport; /* wss:// connects and rtws_ctx_listen_tls; NULL:
                                            RTWS_TLS_TRANSPORT (BearSSL when built with
                                            RTWS_USE_BEARSSL, else none: RTWS_ERR_TLS) */
    void *tls_transport_user;  /* open's shared for wss:// clients when tls_transport
                                  has no client_new (e.g. your SSL_CTX) */
    /* called with every timer pass (at least once a second); the realtime
       router keeps its sessions and deadlines with it */
    void (*on_tick)(rtws_ctx *ctx, uint64_t now_ms, void *user);
    void *tick_user;
    /* Sending from other threads (rtws_ctx_post): the queue's bound in
       messages; 0 leaves posting off (RTWS_ERR_INVALID) and makes no wake-up fd */
    size_t post_queue_max;
    size_t post_queue_max_bytes; /* and in payload bytes (16 MiB) */
    /* on the loop's thread, for each posted message or close that was not
       handed to its connection; NULL: they are only counted */
    void (*on_post_dropped)(rtws_ctx *ctx, const rtws_post_dropped *d, void *user);
    void *post_user;
    /* Name resolution of client connects, on the loop (docs/GUIDE.md "Name
       resolution"). The strings are the caller's and must outlive ctx. */
    int dns_system;            /* 1: the system's getaddrinfo(), which blocks the loop
                                  (the default when built with RTWS_DNS_SYSTEM) */
    const char *dns_conf;      /* resolv.conf text used instead of /etc/resolv.conf
                                  (nameserver lines, options timeout: and attempts:);
                                  NULL: the file (Windows: the adapters' servers,
                                  rtws_dns_conf_system) */
    unsigned dns_port;         /* the name servers' port (53) */
    uint32_t dns_timeout_ms;   /* each try waits this long (0: resolv.conf's timeout) */
    unsigned dns_attempts;     /* rounds over the servers (0: resolv.conf's attempts) */
    const char *dns_hosts;     /* hosts-file text used instead of the file ("": none) */
} rtws_ctx_config;

/* NULL when out of memory. The config is copied. With post_queue_max set
   the wake-up fd of posting is made here (on_socket hears of it at once). */
RTWS_API rtws_ctx *rtws_ctx_new(const rtws_ctx_config *cfg);
/* Closes every socket at once (no close handshake: see rtws_ctx_shutdown) and
   frees everything. NULL: nothing. */
RTWS_API void rtws_ctx_free(rtws_ctx *ctx);
/* Listens on host ("127.0.0.1", "::1", "localhost"; NULL or "" for every
   address, dual-stack where the OS allows) and port (0: the OS picks; the
   port is stored in *bound_port when not NULL). Blocking name resolution. */
#if !defined(RTWS_NO_SERVER)
RTWS_API rtws_err rtws_ctx_listen(rtws_ctx *ctx, const char *host, int port, int *bound_port);
/* rtws_ctx_listen() whose accepted sockets speak through transport t (NULL:
   plain TCP). shared goes to t->open for each of them; t and shared are the
   caller's and must outlive the listener and every socket accepted there.
   RTWS_ERR_INVALID when t lacks open, read or writev. */
RTWS_API rtws_err rtws_ctx_listen_transport(rtws_ctx *ctx, const char *host, int port,
                                            const rtws_transport *t, void *shared,
                                            int *bound_port);
/* rtws_ctx_listen() for wss://, through the context's TLS transport
   (rtws_ctx_config.tls_transport, by default BearSSL: layer 5). The chain and
   key are read and checked now (the key must match the certificate) and
   shared by every connection accepted there; the config is not kept. ws://
   and wss:// listeners may share a context. RTWS_ERR_TLS: see
   rtws_ctx_get_tls_error(). */
RTWS_API rtws_err rtws_ctx_listen_tls(rtws_ctx *ctx, const char *host, int port,
                                      const struct rtws_tls_server_config *tls,
                                      int *bound_port);
#endif
/* Why the last TLS setup of ctx failed (rtws_ctx_listen_tls, or loading trust
   anchors at a wss:// connect that returned RTWS_ERR_TLS); 0 when none did. */
RTWS_API int rtws_ctx_get_tls_error(const rtws_ctx *ctx);
/* The TLS version of an established wss:// connection (0x0303: TLS 1.2),
   0 for ws:// or before the TLS handshake completes. */
RTWS_API unsigned rtws_conn_get_tls_version(const rtws_conn *c);
#if !defined(RTWS_NO_CLIENT)
/* Starts a client connection to url (ws://host[:port][/path][?query]; IPv6
   literals as ws://[::1]:8080/, with a zone as ws://[fe80::1%25eth0]/).
   The url is read by rtws_url_parse, whose out->error says why one is
   refused (RTWS_ERR_URL); http:// and https:// are refused here too. It
   returns at once: a host name is resolved on the loop (the hosts file,
   then DNS to the resolv.conf servers; see rtws_ctx_config.dns_* and
   docs/GUIDE.md "Name resolution"), and a name that does not resolve is an
   error event RTWS_ERR_RESOLVE (detail: the DNS RCODE or 0, detail_text:
   why) instead of a NULL return; IP literals and the hosts file answer at
   once; rtws_ctx_config.dns_system (or RTWS_DNS_SYSTEM) asks the blocking
   getaddrinfo() instead. The addresses are tried IPv6 first, the families
   in turn, as a race (Happy Eyeballs, RFC 8305): the next one starts when
   the newest attempt has not connected within 250 ms, or at once when an
   attempt fails; the first to connect wins, the others are closed (the
   pollfd export lists each attempt). opts may be NULL; its host and
   path are taken from the url when NULL (rtws_url_host_header and
   rtws_url_target). Resolution, connect and handshake together are bounded
   by conn.handshake_timeout_ms. Returns the connection (events follow on
   conn.on_event) or NULL with *err set (RTWS_ERR_RESOLVE only for an IP
   literal that does not parse, or a host that is no DNS name). */
RTWS_API rtws_conn *rtws_ctx_connect(rtws_ctx *ctx, const char *url, const rtws_client_opts *opts,
                                 uint64_t now_ms, rtws_err *err);
/* The same to an address already resolved (opts->host is required). */
RTWS_API rtws_conn *rtws_ctx_connect_addr(rtws_ctx *ctx, const struct sockaddr *addr, size_t addrlen,
                                      const rtws_client_opts *opts, uint64_t now_ms,
                                      rtws_err *err);
/* The system's resolver settings, those a connect without
   rtws_ctx_config.dns_conf uses, into *conf: /etc/resolv.conf on POSIX; on
   Windows the DNS servers of the network adapters that are up, from
   GetAdaptersAddresses (iphlpapi.dll, loaded at run time: nothing more to
   link), the first three (link-local and the fec0:: placeholders skipped),
   with resolv.conf's default timeout and attempts. Reading allocates from a
   (NULL: RTWS_MALLOC). Returns how many servers the system named; with 0,
   conf holds the defaults (127.0.0.1), and on Windows connects then ask the
   system's blocking getaddrinfo() instead. */
RTWS_API size_t rtws_dns_conf_system(rtws_dns_conf *conf, const rtws_allocator *a);
#endif /* !RTWS_NO_CLIENT */

/* Style 1, poll(2): returns n, the number of sockets of the context
   (listeners, the wake-up fd of posting and the attempts of a client racing
   its addresses included), and writes one pollfd per socket into
   fds[0 .. min(n, cap)); nothing is written past fds[cap - 1], and fds may be
   NULL when cap is 0. When n > cap the array was short: it holds the first
   cap sockets only, and the others would not be polled. Grow it to at least
   n entries and call again before polling, so that n <= cap and the n
   entries go to poll() and rtws_ctx_service(). The caller may append its own
   fds after them. */
RTWS_API int rtws_ctx_fill_pollfds(rtws_ctx *ctx, struct pollfd *fds, int cap);
/* Milliseconds until the next timer, for poll's timeout (-1: none). */
RTWS_API int rtws_ctx_get_timeout_ms(rtws_ctx *ctx, uint64_t now_ms);
/* Handles the revents of the first n pollfds (those rtws_ctx_fill_pollfds filled),
   then timers. fds the context does not know are skipped. */
RTWS_API void rtws_ctx_service(rtws_ctx *ctx, const struct pollfd *fds, int n, uint64_t now_ms);
/* Style 1 in one call: wait for at most max_ms, then service. Returns the
   number of sockets still open (listeners included, the wake-up fd of
   posting not), or -1 on a wait error.
   On Linux it waits with epoll (define RTWS_NO_EPOLL for poll), so a crowd
   of idle sockets costs nothing per wake-up. */
RTWS_API int rtws_ctx_run_once(rtws_ctx *ctx, int max_ms);

/* Style 2, readiness per fd (epoll, kqueue, io_uring, a game loop). */
RTWS_API void rtws_ctx_handle_readable(rtws_ctx *ctx, int fd, uint64_t now_ms);
RTWS_API void rtws_ctx_handle_writable(rtws_ctx *ctx, int fd, uint64_t now_ms);
/* Timers, and writes of output queued outside callbacks. Call it when
   rtws_ctx_get_timeout_ms() says, and after sending from outside a callback. */
RTWS_API void rtws_ctx_run_timers(rtws_ctx *ctx, uint64_t now_ms);

/* Stops listening and starts the close handshake on every connection (code,
   reason as rtws_conn_close). Keep running the loop until rtws_ctx_get_conn_count()
   is 0 or your deadline passes, then rtws_ctx_free(). */
RTWS_API void rtws_ctx_shutdown(rtws_ctx *ctx, unsigned code, const char *reason, uint64_t now_ms);
/* A program's whole loop: rtws_ctx_run_once until rtws_ctx_stop() is called,
   then rtws_ctx_shutdown(1001 "going away") and the loop again until every
   connection has closed or drain_ms has passed. Returns 0, or -1 when a wait
   failed (the loop stops there, without the shutdown). It keeps running
   while nothing is open (a client between reconnects has no socket); only
   the stop ends it. Then call rtws_ctx_free(). */
RTWS_API int rtws_ctx_run(rtws_ctx *ctx, int drain_ms);
/* Makes rtws_ctx_run return as described. Safe from a callback, from another
   thread and from a signal handler (it sets a flag and, when posting is on,
   writes the wake-up fd): a signal interrupts the wait at once; from another
   thread the loop sees it within a second (at once with posting on). A stop
   asked before rtws_ctx_run starts makes it shut down at once. */
RTWS_API void rtws_ctx_stop(rtws_ctx *ctx);
/* A server program's main loop in one call: rtws_ctx_listen(host, port),
   then "listening on HOST:PORT\n" on stdout (flushed; HOST as given, "*"
   for every address; PORT the one bound, so port 0 shows what the system
   picked), SIGINT and SIGTERM made to call
   rtws_ctx_stop (SIGPIPE ignored where it exists), rtws_ctx_run(drain_ms),
   and the signal dispositions put back as they were. Returns RTWS_OK once
   stopped; the listen's error (with "cannot listen on HOST:PORT: why" on
   stderr, nothing run) or RTWS_ERR_IO (a wait failed). The signals reach
   the context most recently given to rtws_ctx_serve: one per process at a
   time. The context is the caller's to free. */
#if !defined(RTWS_NO_SERVER)
RTWS_API rtws_err rtws_ctx_serve(rtws_ctx *ctx, const char *host, int port, int drain_ms);
#endif
/* Connections in their handshake, open or closing; listeners and plain HTTP
   requests (those handed to on_http, the one being answered too) are not
   counted. */
RTWS_API size_t rtws_ctx_get_conn_count(const rtws_ctx *ctx);
/* Of those, the WebSocket connections (open or closing): not the sockets
   still in their handshake, nor plain HTTP requests being answered. */
RTWS_API size_t rtws_ctx_get_ws_count(const rtws_ctx *ctx);

/* Counters of a whole context: connections now and since creation, and the
   data messages and bytes of every connection, closed ones included. */
typedef struct rtws_ctx_stats {
    size_t active;                /* as rtws_ctx_get_conn_count */
    uint64_t accepted, connected; /* server sockets accepted, client connections started */
    uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
    size_t memory_used, memory_peak, memory_budget; /* the context's rtws_budget */
} rtws_ctx_stats;
RTWS_API void rtws_ctx_get_stats(const rtws_ctx *ctx, rtws_ctx_stats *st);
/* The context's memory budget (limit rtws_ctx_config.memory_budget): the
   application may charge its own buffers to it too. */
RTWS_API rtws_budget *rtws_ctx_get_budget(rtws_ctx *ctx);

/* For connections the context owns: its socket, its context, and the peer
   address as "ip:port" ("[ip]:port" for IPv6) written to buf. */
RTWS_API int rtws_conn_get_fd(const rtws_conn *c);
RTWS_API rtws_ctx *rtws_conn_get_ctx(const rtws_conn *c);
RTWS_API size_t rtws_conn_get_peer(const rtws_conn *c, char *buf, size_t cap);
/* The connection's id within its context, for rtws_ctx_post from other
   threads: nonzero, and not given to another connection of the context
   until 2^32 more have opened; 0 when the context has posting off
   (rtws_ctx_config.post_queue_max) or does not own c. An id outlives its
   connection safely: posts to it are dropped. */
RTWS_API uint64_t rtws_conn_get_id(const rtws_conn *c);

/* ---- sending from other threads ----

   A context runs on one thread (its loop). Any other thread may hand it
   messages and closes for its connections, addressed by rtws_conn_get_id()
   (a pointer could be freed by the loop meanwhile). Posting is on when
   rtws_ctx_config.post_queue_max is set: the context then owns a wake-up fd
   (eventfd on Linux, a pipe elsewhere, on Windows the read end of a
   loopback TCP pair), listed by rtws_ctx_fill_pollfds,
   waited on by rtws_ctx_run_once and reported to on_socket like any socket.
   A post queues the message and wakes the loop, which hands it to the
   connection (rtws_conn_send, rtws_conn_close) at the start of its next
   pass: rtws_ctx_service, rtws_ctx_run_once, rtws_ctx_run_timers, or
   rtws_ctx_handle_readable of the wake-up fd. Posts of one thread reach a
   connection in the order they were made; the loop takes no lock (an
   atomic load when nothing was posted). A post to a connection that is
   gone or closing is dropped, counted and reported to on_post_dropped on
   the loop's thread, as is one the connection refuses.

   Only these functions may be called from other threads, and only between
   rtws_ctx_new and rtws_ctx_free: stop (join) the producers before freeing
   the context; a post after (or during) rtws_ctx_free is undefined. The
   allocator (rtws_config.allocator or RTWS_MALLOC) is called from the
   posting threads, so it must be thread-safe (libc's is). */

/* Called on the loop's thread when the bytes of rtws_ctx_post_owned are no
   longer needed (sent, copied or dropped). */
typedef void (*rtws_post_free_fn)(void *data, void *user);

/* Counters of posting (rtws_ctx_get_post_stats); read them on the loop's thread. */
typedef struct rtws_post_stats {
    uint64_t refused;   /* posts refused with RTWS_ERR_LIMIT */
    uint64_t taken;     /* posts the loop took from the queue */
    uint64_t delivered; /* of those, handed to their connection */
    uint64_t dropped;   /* of those, reported to on_post_dropped */
    uint64_t wakeups;   /* times the loop read its wake-up fd */
    uint64_t batches;   /* passes that found the queue non-empty */
    size_t queued;      /* in the queue now */
} rtws_post_stats;

#if !defined(RTWS_NO_THREADS) /* the functions; the types above stay */

/* Queues a copy of a whole TEXT or BINARY message for connection conn_id.
   RTWS_OK: queued (sent or reported dropped later); RTWS_ERR_LIMIT: the
   queue holds post_queue_max messages or post_queue_max_bytes bytes (try
   again after the loop ran; rtws_ctx_get_post_stats counts refusals);
   RTWS_ERR_UTF8: invalid text; RTWS_ERR_INVALID: posting is off, or a bad
   op; RTWS_ERR_NOMEM. data is read during the call only. */
RTWS_API rtws_err rtws_ctx_post(rtws_ctx *ctx, uint64_t conn_id, rtws_opcode op, const void *data,
                                size_t len);
/* The same without the copy: data is handed over when RTWS_OK is returned,
   and free_fn(data, free_user) is called on the loop's thread once the
   connection has taken the bytes or the message was dropped (free_fn may be
   NULL). On any other return data stays the caller's. */
RTWS_API rtws_err rtws_ctx_post_owned(rtws_ctx *ctx, uint64_t conn_id, rtws_opcode op, void *data,
                                      size_t len, rtws_post_free_fn free_fn, void *free_user);
/* Queues rtws_conn_close(code, reason) for connection conn_id, after the
   messages this thread posted before. Arguments are checked now (an
   invalid code or reason: RTWS_ERR_INVALID); reason is copied. Counts as
   one message of the queue. */
RTWS_API rtws_err rtws_ctx_post_close(rtws_ctx *ctx, uint64_t conn_id, unsigned code,
                                      const char *reason);
/* The counters of posting, on the loop's thread (zeros when posting is off). */
RTWS_API void rtws_ctx_get_post_stats(const rtws_ctx *ctx, rtws_post_stats *st);
#endif /* !RTWS_NO_THREADS */
#if !defined(RTWS_NO_CLIENT)
/* A client of rtws_ctx_connect: the URL of its request, after the redirects
   followed (ws:// or wss://; valid until the connection is freed or follows
   another redirect). NULL for other connections. */
RTWS_API const char *rtws_conn_get_url(const rtws_conn *c);
#endif

#if !defined(RTWS_NO_CLIENT)
/* A client that stays connected: reconnects with exponential backoff (full
   jitter by default) after any unclean close or failed attempt, queues messages sent
   while offline (bounded, with optional time-to-live) and sends them, in
   order, right after the next open. Timers run in the context's loop. */
typedef enum rtws_client_state {
    RTWS_CLIENT_CONNECTING = 1, /* attempt under way (attempt in the state event) */
    RTWS_CLIENT_OPEN,
    RTWS_CLIENT_CLOSING,        /* rtws_client_close() waits for the close handshake */
    RTWS_CLIENT_CLOSED,         /* closed on request: no reconnect */
    RTWS_CLIENT_RECONNECTING,   /* waiting delay_ms before attempt */
    RTWS_CLIENT_FAILED          /* gave up: max_attempts, a policy close, or refresh said stop */
} rtws_client_state;

typedef struct rtws_client rtws_client;

/* The reconnecting client's events: its own kinds, beside (not inside) the
   connection's. Pointers are valid until the callback returns. */
typedef enum rtws_client_event_type {
    RTWS_CLIENT_EV_CONN = 1, /* an event of the live connection: conn */
    RTWS_CLIENT_EV_STATE,    /* the client entered a state: state */
    RTWS_CLIENT_EV_DROPPED   /* a queued message was dropped: dropped */
} rtws_client_event_type;

typedef struct rtws_client_conn_event {
    rtws_client_event_type type; /* RTWS_CLIENT_EV_CONN */
    rtws_conn *conn;             /* the live connection */
    const rtws_event *event;     /* its event (OPEN, MESSAGE, ..., CLOSE) */
} rtws_client_conn_event;

typedef struct rtws_client_state_event {
    rtws_client_event_type type; /* RTWS_CLIENT_EV_STATE */
    rtws_client_state state;     /* the state entered */
    uint32_t attempt;            /* CONNECTING, RECONNECTING: attempt (1, 2, ...), else 0 */
    uint32_t delay_ms;           /* RECONNECTING: the wait before the attempt */
    rtws_err reason;             /* the last connection's error (RTWS_ERR_ABNORMAL for
                                    an unclean close), RTWS_OK when none */
    unsigned code;               /* the last connection's close code, 0 when none */
} rtws_client_state_event;

typedef struct rtws_client_dropped_event {
    rtws_client_event_type type; /* RTWS_CLIENT_EV_DROPPED */
    rtws_opcode opcode;          /* of the message dropped */
    const uint8_t *data;
    size_t len;
    rtws_err err;                /* why: RTWS_ERR_TIMEOUT (ttl), RTWS_ERR_LIMIT (full
                                    queue, drop oldest), RTWS_ERR_CLOSED (cleared),
                                    or the error of sending it */
} rtws_client_dropped_event;

typedef union rtws_client_event {
    rtws_client_event_type type; /* every member starts with it */
    rtws_client_conn_event conn;
    rtws_client_state_event state;
    rtws_client_dropped_event dropped;
} rtws_client_event;

typedef void (*rtws_client_event_fn)(rtws_client *cl, const rtws_client_event *ev, void *user);

/* Called before every reconnect attempt: may change *url and *opts (a fresh
   bearer token, headers, query). The strings must stay valid until the next
   call or rtws_client_free(). Return nonzero to give up (FAILED). */
typedef int (*rtws_client_refresh_fn)(rtws_client *cl, const char **url, rtws_client_opts *opts,
                                      void *user);

/* How the wait before a reconnect is drawn from its bound (see
   rtws_client_backoff_delay). */
typedef enum rtws_jitter {
    RTWS_JITTER_FULL = 0, /* uniform in [min, bound]: a crowd of clients spreads out */
    RTWS_JITTER_EQUAL,    /* uniform in [max(min, bound/2), bound] */
    RTWS_JITTER_NONE      /* exactly the bound: a fixed schedule (2, 4, 8 s...) */
} rtws_jitter;

typedef struct rtws_client_config {
    const char *url;              /* ws://host[:port]/path?query (copied) */
    rtws_client_opts opts;        /* protocols, origin, headers; must outlive the client
                                     (rtws_client_set_opts takes copies instead) */
    rtws_client_event_fn on_event; /* connection, state and dropped events */
    void *user;
    uint32_t backoff_base_ms;     /* bound of the first delay (1000) */
    uint32_t backoff_factor;      /* the bound grows by this per attempt (2; 1: constant) */
    uint32_t backoff_max_ms;      /* bound cap (60000) */
    uint32_t backoff_min_ms;      /* no delay is shorter (0); raises a smaller bound */
    rtws_jitter jitter;           /* (RTWS_JITTER_FULL) */
    uint32_t max_attempts;        /* reconnect attempts in a row, without a stable
                                     connection, before FAILED (0: unlimited) */
    uint32_t stable_ms;           /* open this long resets the backoff (10000) */
    int reconnect_on_policy;      /* 1: reconnect after a server close with 1008 or
                                     4000-4999 too (0: those are final, FAILED) */
    size_t queue_max_msgs;        /* offline queue bound (1000) */
    size_t queue_max_bytes;       /* offline queue bound (1 MiB) */
    int queue_drop_oldest;        /* 1: a full queue drops its oldest (DROPPED event);
                                     0: rtws_client_send returns RTWS_ERR_LIMIT */
    rtws_client_refresh_fn refresh;
} rtws_client_config;

typedef struct rtws_client_stats {
    rtws_conn_stats total;             /* all connections so far, the live one included */
    uint32_t reconnects;          /* attempts after the first (restarts included) */
    uint32_t restarts;            /* rtws_client_restart calls */
    uint64_t connected_since_ms;  /* open time of the live connection, 0 when offline */
    uint64_t uptime_ms;           /* summed open time of all connections */
    rtws_err last_error;
    unsigned last_close_code;
} rtws_client_stats;

/* Starts connecting at once. Returns NULL with *err on a bad config/url or
   no memory (name resolution failures are retried like any failed attempt). */
RTWS_API rtws_client *rtws_client_new(rtws_ctx *ctx, const rtws_client_config *cfg,
                                      uint64_t now_ms, rtws_err *err);
/* Sends now when open (RTWS_ERR_LIMIT when the socket queue is full), else
   queues a copy; ttl_ms > 0 drops it (DROPPED, RTWS_ERR_TIMEOUT) if it is
   still queued that long. RTWS_ERR_CLOSED after CLOSED/FAILED. */
RTWS_API rtws_err rtws_client_send(rtws_client *cl, rtws_opcode op, const void *data, size_t len,
                                   uint32_t ttl_ms);
/* A clean close requested by the application: no reconnect afterwards. */
RTWS_API rtws_err rtws_client_close(rtws_client *cl, unsigned code, const char *reason);
/* Drops the queue (a DROPPED event for each message). */
RTWS_API void rtws_client_clear_queue(rtws_client *cl);
/* Messages (and bytes, when not NULL) waiting in the offline queue. */
RTWS_API size_t rtws_client_get_queued(const rtws_client *cl, size_t *bytes);
RTWS_API rtws_client_state rtws_client_get_state(const rtws_client *cl);
/* The live connection, or NULL. */
RTWS_API rtws_conn *rtws_client_get_conn(const rtws_client *cl);
RTWS_API void rtws_client_get_stats(const rtws_client *cl, rtws_client_stats *st, uint64_t now_ms);
/* Stops everything (an open connection gets a 1001 close) and frees cl. */
RTWS_API void rtws_client_free(rtws_client *cl);
/* Connects again now, from any state, as a fresh start: the attempt count
   (max_attempts, the backoff) starts over, refresh is not called for this
   first attempt, and stats, the offline queue and the URL/opts are kept.
     CLOSED, FAILED   connects (CONNECTING state event, attempt 0);
     RECONNECTING     the wait is cut short;
     CONNECTING       the attempt under way is abandoned for a new one;
     OPEN             the connection gets a 1000 close ("restart") that ends
                      in the background: no more events of it reach the
                      client; its counters so far stay in the stats;
     CLOSING          the closing connection ends in the background.
   Returns RTWS_OK, RTWS_ERR_CLOSED after rtws_client_free, or the error
   that left the client FAILED at once (RTWS_ERR_URL, RTWS_ERR_TLS). */
RTWS_API rtws_err rtws_client_restart(rtws_client *cl, uint64_t now_ms);
/* Replaces the URL (copied; RTWS_ERR_URL when not ws:// or wss://). Any
   live connection or attempt under way is left alone: the next attempt
   (reconnect or rtws_client_restart) uses it; refresh gets it as *url. */
RTWS_API rtws_err rtws_client_set_url(rtws_client *cl, const char *url);
/* Replaces cfg.opts (protocols, origin, authorization, extra headers, host,
   path, proxy), copying every string: opts need not outlive the call. NULL clears
   them all. Takes effect like rtws_client_set_url. RTWS_ERR_NOMEM keeps the
   old ones. */
RTWS_API rtws_err rtws_client_set_opts(rtws_client *cl, const rtws_client_opts *opts);
/* Restore messages: the state a server keeps per connection and loses with
   it (subscriptions, presence, a resume request, in the application's own
   protocol), kept by the client under a key and sent again on every open,
   before the offline queue and before the OPEN state event, in the order the
   keys were first set. Setting a key sends its message at once when OPEN
   (an error then keeps nothing and is returned) and replaces an older one in
   place; keys are 1-255 bytes, and the restore messages' bytes together are
   bounded by queue_max_bytes, apart from the queue (RTWS_ERR_LIMIT). A restore message the
   new connection refuses is reported as RTWS_CLIENT_EV_DROPPED and kept.
   Kept across rtws_client_restart, set_url and set_opts. */
RTWS_API rtws_err rtws_client_set_restore(rtws_client *cl, const char *key, rtws_opcode op,
                                          const void *data, size_t len);
/* Forgets key's restore message (nothing is sent); RTWS_ERR_INVALID when
   there is none. */
RTWS_API rtws_err rtws_client_clear_restore(rtws_client *cl, const char *key);
/* Delay bound before reconnect attempt n (1, 2, ...): min(max, base * factor^(n-1)). */
RTWS_API uint32_t rtws_client_backoff_bound(const rtws_client_config *cfg, uint32_t attempt);
/* The wait before reconnect attempt n (1, 2, ...) given a random value r
   (the client draws r from rtws_config.random). With hi = max(min_ms, bound(n))
   and lo = min_ms (FULL), max(min_ms, hi / 2) (EQUAL) or hi (NONE):
       delay = lo + r mod (hi - lo + 1), in ms.
   Pure: the same inputs give the same delay. */
RTWS_API uint32_t rtws_client_backoff_delay(const rtws_client_config *cfg, uint32_t attempt,
                                            uint32_t r);
#endif /* !RTWS_NO_CLIENT */

#if !defined(RTWS_NO_CLIENT)
/* ---- raw streams: a TCP connection whose bytes the caller handles ----

   Another kind of socket on the context, for protocols that are not
   WebSocket (rtws_redis, layer 6b, is one): the host connects it without
   blocking (name resolution excepted), polls it with the rest
   (rtws_ctx_run_once, rtws_ctx_fill_pollfds, on_socket), reads and writes it
   through plain TCP, and runs its timer. Streams do not count in
   rtws_ctx_get_conn_count() and are left alone by rtws_ctx_shutdown(). Free
   every stream before its context. */
typedef struct rtws_stream rtws_stream;

typedef enum rtws_stream_event_type {
    RTWS_STREAM_EV_OPEN = 1, /* connected: write away */
    RTWS_STREAM_EV_DATA,     /* bytes arrived: data, len; set consumed */
    RTWS_STREAM_EV_CLOSE,    /* the connection ended or failed to start: err,
                                detail; rtws_stream_connect may start another */
    RTWS_STREAM_EV_TIMER     /* the time set with rtws_stream_set_timer came */
} rtws_stream_event_type;

typedef struct rtws_stream_event {
    rtws_stream_event_type type;
    uint64_t now_ms;
    const uint8_t *data; /* DATA: every byte received and not consumed yet, oldest
                            first; valid until the callback returns */
    size_t len;
    size_t consumed;     /* DATA: the callback sets how many of the first bytes it
                            used (0 at entry); the rest come again, with more */
    rtws_err err;        /* CLOSE: RTWS_ERR_ABNORMAL (the peer closed), RTWS_ERR_IO
                            (detail: errno), RTWS_ERR_TIMEOUT (connect_timeout_ms,
                            resolution included), RTWS_ERR_RESOLVE (the host name
                            did not resolve; detail: the DNS RCODE or 0),
                            RTWS_ERR_TOO_BIG (max_input), RTWS_ERR_NOMEM */
    int detail;
    const char *detail_text; /* CLOSE: why, in words (RTWS_ERR_RESOLVE: "name: no
                                such name", "...: timed out waiting for the name
                                server"), or NULL; valid until the callback returns */
} rtws_stream_event;

typedef void (*rtws_stream_fn)(rtws_stream *st, rtws_stream_event *ev, void *user);

typedef struct rtws_stream_config {
    const char *host;            /* name or address (copied) */
    int port;
    rtws_stream_fn on_event;
    void *user;
    uint32_t connect_timeout_ms; /* (5000) */
    size_t max_input;            /* unconsumed input kept (1 GiB + 64 KiB) */
    size_t max_output;           /* unsent output (256 MiB): reserve fails above it */
} rtws_stream_config;

/* A stream of ctx, not connected yet. NULL with *err on no memory or a bad
   config (RTWS_ERR_INVALID: no host or on_event, port out of 1-65535). */
RTWS_API rtws_stream *rtws_stream_new(rtws_ctx *ctx, const rtws_stream_config *cfg, rtws_err *err);
/* Starts connecting; a host name is resolved on the loop as for
   rtws_ctx_connect (a failed lookup: the CLOSE event, RTWS_ERR_RESOLVE).
   RTWS_OK: an OPEN or a CLOSE event follows from the loop. RTWS_ERR_RESOLVE
   (a host that is neither an address nor a DNS name), RTWS_ERR_IO,
   RTWS_ERR_NOMEM: no event follows. RTWS_ERR_INVALID while a connection is under way or open.
   Output written before OPEN waits for it; a new connection starts with
   empty input and output. */
RTWS_API rtws_err rtws_stream_connect(rtws_stream *st, uint64_t now_ms);
/* Room for n more bytes of output at the end of what is queued, or NULL
   (no connection: RTWS_ERR_CLOSED; over max_output or no memory). Valid
   until the next call on st; nothing is sent until rtws_stream_commit. */
RTWS_API uint8_t *rtws_stream_reserve(rtws_stream *st, size_t n);
/* Queues n bytes written at rtws_stream_reserve's pointer; they go out from
   the loop (at the end of the current callback, or at the next
   rtws_ctx_get_timeout_ms/run_once when called from outside). */
RTWS_API void rtws_stream_commit(rtws_stream *st, size_t n);
/* reserve, copy and commit. RTWS_ERR_CLOSED without a connection,
   RTWS_ERR_LIMIT over max_output, RTWS_ERR_NOMEM. */
RTWS_API rtws_err rtws_stream_write(rtws_stream *st, const void *data, size_t len);
/* Bytes queued and not yet taken by the socket. */
RTWS_API size_t rtws_stream_get_pending(const rtws_stream *st);
/* 1 while connected (after OPEN, before CLOSE), else 0. */
RTWS_API int rtws_stream_is_open(const rtws_stream *st);
/* Calls on_event with TIMER once, at at_ms or soon after (0: no timer). */
RTWS_API void rtws_stream_set_timer(rtws_stream *st, uint64_t at_ms);
/* Drops the connection at once, unsent output included; no CLOSE event. */
RTWS_API void rtws_stream_close(rtws_stream *st);
/* Closes and frees st; no more events. Allowed inside its own callback. */
RTWS_API void rtws_stream_free(rtws_stream *st);
#endif /* !RTWS_NO_CLIENT */

/* ---- a program's command line ----

   "--name value" options and flags from a table, with the usage written
   from it: how rtws's example programs read theirs. */
typedef struct rtws_opt {
    const char *name;  /* "--port" */
    const char *arg;   /* the value's name in the usage ("P"); NULL: a flag, no value */
    const char *value; /* in: the default (NULL: none); out: the value given ("1": a flag) */
    long min, max;     /* min < max: the value is a whole number in [min, max] */
    const char *help;  /* the option's line in the usage */
    int required;      /* it must be given (or have a default) */
    long num;          /* out: the value as a number, when min < max */
} rtws_opt;
/* Reads argv[1 .. argc) against opts[0 .. n): each argument is one of the
   names, followed by its value unless it is a flag. Returns 0 with every
   value (and num) set; 1 after "--help" or "-h", having written the usage to
   stdout; -1 on a command line it refuses (an unknown name, a missing value,
   a number that is not one or out of range, a required option missing),
   having written why and the usage to stderr. The usage: "usage: PROG
   [--name ARG]...", then about (may be NULL), then one line per option with
   its help and default. A default that is not a number in range is refused
   like a given value. Exit with 0 on 1 and 2 on -1, as rtws's programs do. */
RTWS_API int rtws_opts_parse(rtws_opt *opts, size_t n, int argc, char **argv, const char *about);
/* rtws_opts_parse's rule for a number, for a value a program reads itself:
   1 when s is a whole decimal number in [min, max] (an optional sign, then
   digits, nothing before or after), stored in *out; else 0, *out untouched. */
RTWS_API int rtws_opt_number(const char *s, long min, long max, long *out);

/* ======================================================================== */
/* === layer 5: tls ======================================================= */
/* ======================================================================== */

/* wss:// for both roles through BearSSL, on the same sockets and loop: define
   RTWS_USE_BEARSSL where the implementation is compiled and link -lbearssl.
   Without it the header needs nothing beyond libc, a wss:// URL fails with
   RTWS_ERR_TLS and rtws_ctx_listen_tls() returns RTWS_ERR_TLS. TLS 1.2 only,
   renegotiation off. A failed TLS handshake or record arrives as an
   RTWS_EV_ERROR with error.err RTWS_ERR_TLS and error.detail, a BearSSL code
   (BR_ERR_*, e.g. BR_ERR_X509_EXPIRED = 54) or one of these: */
enum {
    RTWS_TLS_ERR_NOT_BUILT = -1,    /* built without RTWS_USE_BEARSSL (no TLS transport) */
    RTWS_TLS_ERR_READ = -2,         /* a certificate, key or CA file could not be read */
    RTWS_TLS_ERR_PEM = -3,          /* malformed PEM */
    RTWS_TLS_ERR_NO_CERT = -4,      /* no usable certificate in the input */
    RTWS_TLS_ERR_NO_KEY = -5,       /* no usable RSA or EC private key in the input */
    RTWS_TLS_ERR_KEY_MISMATCH = -6, /* the private key does not belong to the certificate */
    RTWS_TLS_ERR_NO_ANCHORS = -7,   /* no trust anchor could be loaded */
    RTWS_TLS_ERR_TRUNCATED = -8     /* the peer closed during the TLS handshake */
};

/* A static string naming a BearSSL error code (BR_ERR_*, including received
   and sent alerts) or an RTWS_TLS_ERR_ code. */
RTWS_API const char *rtws_tls_err_str(int tls_error);

/* BearSSL as an rtws_transport (layer 4); NULL when built without
   RTWS_USE_BEARSSL. Its shared state comes from server_new/client_new, so it
   is used through rtws_ctx_listen_tls() and wss:// URLs rather than directly.

   YOUR OWN TLS (OpenSSL, mbedTLS, ...): write an rtws_transport whose state
   is your per-connection object (e.g. an SSL *): open makes it (SSL_new on
   in->shared, your SSL_CTX; SSL_set_tlsext_host_name for a client), read
   and writev map SSL_read/SSL_write onto the RTWS_IO_* codes (WANT_READ/
   WANT_WRITE: RTWS_IO_AGAIN, remembering which one wants reports next),
   pending says SSL_pending, wants sends close_notify (SSL_shutdown) when
   the connection says RTWS_WANT_CLOSE, release frees. Then
     servers: rtws_ctx_listen_transport(ctx, host, port, &mine, my_ssl_ctx, &port);
     clients: cfg.tls_transport = &mine; cfg.tls_transport_user = my_ssl_ctx;
              rtws_ctx_connect(ctx, "wss://host/", ...);
   With server_new/client_new taking rtws_tls_server_config/_client_config,
   rtws_ctx_listen_tls() works through it too. To make it the default of every
   context, define RTWS_TLS_TRANSPORT (an expression, e.g. my_tls()) where
   the implementation is compiled. */
RTWS_API const rtws_transport *rtws_transport_bearssl(void);
#ifndef RTWS_TLS_TRANSPORT
#define RTWS_TLS_TRANSPORT rtws_transport_bearssl() /* rtws_ctx_config.tls_transport's default */
#endif

/* Certificate validation time, for devices without a clock: days since
   1 January of year 0 (proleptic Gregorian; 1970-01-01 is day 719528) and
   seconds since midnight, UTC. Return 0, or nonzero when the time is
   unknown (validation then fails with BR_ERR_X509_TIME_UNKNOWN). */
typedef int (*rtws_tls_time_fn)(uint32_t *days, uint32_t *seconds, void *user);

/* The client side, rtws_ctx_config.tls (the pointer and what it points to
   must outlive the context). Zero means: verify the server's chain against
   the system bundle, its name against the URL's host (sent as SNI; an IP
   literal must be an iPAddress subjectAltName), and its dates against the
   system clock. Trust anchors are loaded at the first wss:// connect. */
typedef struct rtws_tls_client_config {
    const char *ca_file;     /* PEM bundle (/etc/ssl/certs/ca-certificates.crt) */
    const char *ca_pem;      /* trust anchors in memory, PEM (or one DER
                                certificate); used instead of ca_file */
    size_t ca_pem_len;       /* 0: strlen(ca_pem) */
    rtws_tls_time_fn time;   /* (the system clock) */
    void *time_user;
    int tls_insecure_skip_verify; /* 1: accept ANY certificate (no chain, name or
                                     date check): anyone on the path can read and
                                     change the traffic. For tests only. */
} rtws_tls_client_config;

/* The server side: certificate chain and private key, PEM from files or
   memory (one DER certificate or key is accepted too). */
typedef struct rtws_tls_server_config {
    const char *cert_file;   /* PEM: the server's certificate first, then intermediates */
    const char *key_file;    /* PEM: its private key, RSA or EC (PKCS#1, SEC 1 or
                                PKCS#8), unencrypted */
    const char *cert_pem;    /* the chain in memory, used when cert_file is NULL */
    size_t cert_pem_len;     /* 0: strlen(cert_pem) */
    const char *key_pem;     /* the key in memory, used when key_file is NULL */
    size_t key_pem_len;      /* 0: strlen(key_pem) */
} rtws_tls_server_config;

/* rtws_ctx_listen_tls(), rtws_ctx_get_tls_error() and
   rtws_conn_get_tls_version() are host functions (layer 4) that go through
   the context's TLS transport; they are declared with the host. */
#endif /* !RTWS_NO_HOST */

#if !defined(RTWS_NO_JSON)
/* ======================================================================== */
/* === layer 6: json ====================================================== */
/* ======================================================================== */

/* RFC 8259 JSON, strict, with no allocation. rtws_json_parse() fills a caller
   array of tokens in document order: a container is followed by its whole
   subtree, and an object's children alternate key (a STRING token flagged
   RTWS_JSON_KEY) and value. Tokens hold offsets into the caller's text, which
   must stay alive and unchanged while they are used. The parser is iterative:
   open containers are linked through parent indexes, so no input can make it
   recurse. The writer builds JSON into a caller buffer. See docs/JSON.md. */
typedef enum rtws_json_type {
    RTWS_JSON_NONE = 0,
    RTWS_JSON_OBJECT,
    RTWS_JSON_ARRAY,
    RTWS_JSON_STRING,
    RTWS_JSON_NUMBER,
    RTWS_JSON_TRUE,
    RTWS_JSON_FALSE,
    RTWS_JSON_NULL
} rtws_json_type;

#define RTWS_JSON_ESCAPED 0x01u /* string: holds backslash escapes (see rtws_json_unescape) */
#define RTWS_JSON_KEY 0x02u     /* string: an object key; its value is the next token */
#define RTWS_JSON_FRAC 0x04u    /* number: has a fraction or an exponent */

#define RTWS_JSON_DEPTH 256        /* default parser nesting limit, and the writer's limit */
#define RTWS_JSON_COUNT_DEPTH 8192 /* nesting a parse can follow once tokens run out */

typedef struct rtws_json_tok {
    uint8_t type;   /* rtws_json_type */
    uint8_t flags;  /* RTWS_JSON_ESCAPED, RTWS_JSON_KEY, RTWS_JSON_FRAC */
    uint32_t start; /* byte offset in the text; strings: just after the opening quote */
    uint32_t len;   /* bytes; strings: without the quotes, still escaped;
                       containers: from the bracket through the closing bracket */
    uint32_t size;  /* object: number of keys; array: number of elements; else 0 */
    uint32_t next;  /* index of the first token after this value's subtree */
    int32_t parent; /* index of the enclosing object or array; -1 at the top */
} rtws_json_tok;

/* A parsed document. Read the fields; rtws_json_parse() sets them all. */
typedef struct rtws_json {
    const char *text;    /* the input, borrowed */
    size_t len;
    rtws_json_tok *toks; /* the caller's token array */
    size_t cap;
    size_t count;        /* tokens filled; after RTWS_ERR_NOSPACE, tokens the input needs */
    size_t err_off;      /* byte offset where the input broke (or the tokens ran out) */
    const char *err;     /* static reason, "" on success */
} rtws_json;

/* Parses text[0..len) (no NUL needed) into toks[0..cap). max_depth limits
   nesting ("[1]" is depth 1; 0 means RTWS_JSON_DEPTH). Returns:
     RTWS_OK           count tokens filled. With toks == NULL nothing is filled
                       and count is the number of tokens the text needs.
     RTWS_ERR_NOSPACE  the text is valid but needs count > cap tokens.
     RTWS_ERR_SYNTAX   not RFC 8259 JSON (also: empty, trailing characters).
     RTWS_ERR_UTF8     invalid UTF-8 in a string, or a lone surrogate escape.
     RTWS_ERR_DEPTH    nesting deeper than max_depth; or, once tokens have run
                       out, more than RTWS_JSON_COUNT_DEPTH levels to follow.
     RTWS_ERR_TOO_BIG  len above 4 GiB - 1 (token offsets are 32-bit).
   On every error err_off and err say where and why, and count is 0. */
RTWS_API rtws_err rtws_json_parse(rtws_json *doc, const char *text, size_t len,
                                  rtws_json_tok *toks, size_t cap, unsigned max_depth);

/* Token i, or NULL when i is not a filled token. */
RTWS_API const rtws_json_tok *rtws_json_tok_at(const rtws_json *doc, int i);
/* The value of the first key equal to key in object obj, or -1. */
RTWS_API int rtws_json_get(const rtws_json *doc, int obj, const char *key);
/* First child of a container (an object's first key), or -1. */
RTWS_API int rtws_json_child(const rtws_json *doc, int i);
/* The next sibling of i, or -1. For a key it is the next key, so
   for (k = rtws_json_child(d, o); k >= 0; k = rtws_json_next(d, k)) sees
   every key k of object o, with its value at k + 1. O(1) per step. */
RTWS_API int rtws_json_next(const rtws_json *doc, int i);
/* Element n of array arr, or -1. O(n). */
RTWS_API int rtws_json_at(const rtws_json *doc, int arr, size_t n);
/* The JSON text of value i (strings with their quotes), valid as long as the
   text; *len gets its length. For forwarding a value without re-encoding. */
RTWS_API const char *rtws_json_raw(const rtws_json *doc, int i, size_t *len);
/* 1 when string token i decodes to exactly str[0..n), else 0. Compares escapes
   in place ("\u0061" equals "a"), without a buffer. eq takes a C string. */
RTWS_API int rtws_json_eqn(const rtws_json *doc, int i, const char *str, size_t n);
RTWS_API int rtws_json_eq(const rtws_json *doc, int i, const char *str);
/* Decodes string token i into buf as UTF-8 plus a NUL (the text may hold
   more NULs, from \u0000; use *len). *len gets the decoded length without the
   NUL; a cap of tok.len + 1 always suffices. RTWS_ERR_NOSPACE when cap is too
   small (*len still tells the length), RTWS_ERR_INVALID when i is not a string. */
RTWS_API rtws_err rtws_json_unescape(const rtws_json *doc, int i, char *buf, size_t cap,
                                     size_t *len);
/* Number token i as an int64. Any spelling of an integral value is accepted
   ("12", "1.2e1", "1200e-2", "-0.0"). RTWS_ERR_RANGE, *out untouched, when the
   value is outside int64 or not integral ("1.5"); RTWS_ERR_INVALID when i is
   not a number. */
RTWS_API rtws_err rtws_json_int64(const rtws_json *doc, int i, int64_t *out);
/* Number token i as the nearest double (rounding is the C library's strtod,
   correct in glibc and musl; digits past the 780th only decide ties, so any
   length works; no locale dependence). Underflow gives 0 or a subnormal;
   overflow gives RTWS_ERR_RANGE with *out = +-HUGE_VAL. */
RTWS_API rtws_err rtws_json_double(const rtws_json *doc, int i, double *out);
/* Member key of object obj, read in one call (-1, a missing member and a
   member of the wrong type are all "absent"). get_str decodes a string into
   out[0..cap) with a NUL and returns its length (>= 0), or
   RTWS_ERR_INVALID (absent, or not a string), RTWS_ERR_NOSPACE (len + 1 > cap)
   or RTWS_ERR_SYNTAX (it holds U+0000, so it cannot be a C string); on any
   error out gets "" when cap > 0. get_int64 follows rtws_json_int64 (and
   gives RTWS_ERR_INVALID when absent or not a number). get_bool returns 1 for
   true, 0 for false, and dflt for anything else. */
RTWS_API int rtws_json_get_str(const rtws_json *doc, int obj, const char *key, char *out,
                               size_t cap);
RTWS_API rtws_err rtws_json_get_int64(const rtws_json *doc, int obj, const char *key,
                                      int64_t *out);
RTWS_API int rtws_json_get_bool(const rtws_json *doc, int obj, const char *key, int dflt);

/* The writer: JSON into buf[0..cap), commas automatic. Every call returns the
   writer's error state: the first error sticks, and later calls do nothing
   but return it. RTWS_ERR_NOSPACE is softer: output stops but len keeps
   counting, so rtws_json_writer_finish() tells the size needed (buf NULL and
   cap 0 measure). Misuse (a key outside an object, a value in an object
   without a key, a second top-level value, an unbalanced end) gives
   RTWS_ERR_INVALID; nesting beyond RTWS_JSON_DEPTH, RTWS_ERR_DEPTH. Fields are
   private; buf is borrowed until the last call. */
typedef struct rtws__json_writer_priv {
    char *buf;
    size_t cap;
    size_t len;
    rtws_err err;
    unsigned depth;
    unsigned flags;
    uint8_t obj[RTWS_JSON_DEPTH / 8];
} rtws__json_writer_priv;
typedef struct rtws_json_writer {
    rtws__json_writer_priv priv_; /* private */
} rtws_json_writer;

RTWS_API void rtws_json_writer_init(rtws_json_writer *w, char *buf, size_t cap);
RTWS_API rtws_err rtws_json_write_object(rtws_json_writer *w);     /* { */
RTWS_API rtws_err rtws_json_write_object_end(rtws_json_writer *w); /* } */
RTWS_API rtws_err rtws_json_write_array(rtws_json_writer *w);      /* [ */
RTWS_API rtws_err rtws_json_write_array_end(rtws_json_writer *w);  /* ] */
/* Strings are UTF-8 (RTWS_ERR_UTF8 otherwise, RFC 3629 rules); '"', '\\' and
   every byte below 0x20 are escaped, everything else is copied. */
RTWS_API rtws_err rtws_json_write_key(rtws_json_writer *w, const char *key, size_t len);
RTWS_API rtws_err rtws_json_write_string(rtws_json_writer *w, const char *s, size_t len);
RTWS_API rtws_err rtws_json_write_int64(rtws_json_writer *w, int64_t v);
/* The shortest of %.15g, %.16g, %.17g that reads back as v; NaN and
   infinities have no JSON form and give RTWS_ERR_RANGE. */
RTWS_API rtws_err rtws_json_write_double(rtws_json_writer *w, double v);
RTWS_API rtws_err rtws_json_write_bool(rtws_json_writer *w, int v);
RTWS_API rtws_err rtws_json_write_null(rtws_json_writer *w);
/* Copies one JSON value as it is, after checking it with rtws_json_parse()
   (its error is returned and sticks). */
RTWS_API rtws_err rtws_json_write_raw(rtws_json_writer *w, const char *json, size_t len);
/* Copies value i of a parsed document as it is, without checking again. */
RTWS_API rtws_err rtws_json_write_tok(rtws_json_writer *w, const rtws_json *doc, int i);
/* One member of the object being written: write_key(key) then the value.
   key (and s) are NUL-terminated; NULL gives RTWS_ERR_INVALID. raw is checked
   as by rtws_json_write_raw, tok copied as by rtws_json_write_tok. Errors
   stick as for the calls they stand for. */
RTWS_API rtws_err rtws_json_write_str_field(rtws_json_writer *w, const char *key, const char *s);
RTWS_API rtws_err rtws_json_write_int64_field(rtws_json_writer *w, const char *key, int64_t v);
RTWS_API rtws_err rtws_json_write_bool_field(rtws_json_writer *w, const char *key, int v);
RTWS_API rtws_err rtws_json_write_raw_field(rtws_json_writer *w, const char *key,
                                            const char *json, size_t len);
RTWS_API rtws_err rtws_json_write_tok_field(rtws_json_writer *w, const char *key,
                                            const rtws_json *doc, int i);
/* Writes several values at once, as fmt describes them, with the calls
   above: "{type:%s, data:{id:%i, tags:[%s,%s]}, ok:%b}". In fmt, '{' '}' '['
   ']' open and close; where a key is due (inside an object) comes a bare name
   (any bytes but whitespace , : ? { } [ ] % " ') or %k (a const char *), then
   ':', then the value: a container, a literal ('text' without quotes in it,
   a number, true, false, null), or one of
     %s  const char * (NUL-terminated)   %S  const char *, size_t (length)
     %d  int            %i  int64_t        %u  uint64_t      %z  size_t
     %f  double         %b  int (bool)     %r  const char *, size_t (raw JSON,
     checked)           %t  const rtws_json *, int (a value of a document)
     %T  int64_t, milliseconds since 1970: that time as an ISO 8601 UTC string
         (rtws_time_format_iso).
   A NULL string or raw, a negative token index or a time before 1970 or
   after 9999 writes null; with '?'
   before the ':' ("metric?:%s") the member is left out instead. Spaces and
   commas between items are skipped. fmt may start inside what earlier calls
   opened and leave it open. A fmt it cannot read gives RTWS_ERR_INVALID
   (sticky); the arguments must match it, as for printf. Returns the
   writer's error state. */
RTWS_API rtws_err rtws_json_write_fmt(rtws_json_writer *w, const char *fmt, ...);
/* One whole JSON text from fmt (as rtws_json_write_fmt's, e.g. "{type:%s,
   n:%d}") in buf[0..cap), NUL-terminated: its length; 0 when it does not fit
   in cap - 1 bytes, fmt cannot be read or leaves something open. */
RTWS_API size_t rtws_json_fmt(char *buf, size_t cap, const char *fmt, ...);
/* Checks the document is complete, NUL-terminates it when there is room and
   sets *len (may be NULL) to its length (without the NUL) - or, after
   RTWS_ERR_NOSPACE, to the length needed. */
RTWS_API rtws_err rtws_json_writer_finish(rtws_json_writer *w, size_t *len);
#endif /* !RTWS_NO_JSON */

#if !defined(RTWS_NO_REDIS)
/* ======================================================================== */
/* === layer 6a: resp ===================================================== */
/* ======================================================================== */

/* RESP, the Redis serialization protocol (RESP2, and the RESP3 types),
   sans-I/O like the frame and JSON codecs: commands are encoded into a
   caller buffer, replies are parsed from bytes into a tree of typed nodes
   whose strings point into those bytes (zero-copy). */

typedef enum rtws_resp_type {
    RTWS_RESP_NONE = 0,
    RTWS_RESP_STRING,    /* +OK: simple string (str, len) */
    RTWS_RESP_ERROR,     /* -ERR ...: error (str, len); also RESP3's !len bulk error */
    RTWS_RESP_INTEGER,   /* :42 (integer) */
    RTWS_RESP_BULK,      /* $3 foo: bulk string (str, len: binary, may hold NUL) */
    RTWS_RESP_NIL,       /* $-1, *-1 (RESP2's null bulk and null array) and RESP3's _ */
    RTWS_RESP_ARRAY,     /* *n: n elements (elem[0 .. n)) */
    RTWS_RESP_MAP,       /* %n: n pairs, elem[2i] the key, elem[2i+1] its value */
    RTWS_RESP_SET,       /* ~n: n elements */
    RTWS_RESP_PUSH,      /* >n: n elements, out of band (pub/sub messages in RESP3) */
    RTWS_RESP_DOUBLE,    /* ,1.5: str holds the text ("1.5", "inf", "-inf", "nan") */
    RTWS_RESP_BOOL,      /* #t / #f: integer 1 / 0 */
    RTWS_RESP_BIGNUM,    /* (123...: str holds the digits, with an optional '-' */
    RTWS_RESP_VERBATIM   /* =n txt:...: format "txt" or "mkd", str after the colon */
} rtws_resp_type;

/* One node of a parsed reply. Strings point into the bytes given to
   rtws_resp_parse and are not NUL-terminated; elem points into the parser.
   Both live until the next rtws_resp_parse/_reset/_free of that parser, and
   only while the caller keeps those bytes unchanged. */
typedef struct rtws_resp_reply {
    rtws_resp_type type;
    const char *str;                     /* STRING, ERROR, BULK, DOUBLE, BIGNUM, VERBATIM */
    size_t len;
    int64_t integer;                     /* INTEGER; BOOL: 1 or 0 */
    size_t n;                            /* ARRAY, SET, PUSH: elements; MAP: pairs */
    const struct rtws_resp_reply *elem;  /* ARRAY, SET, PUSH: n nodes; MAP: 2n */
    char format[4];                      /* VERBATIM: "txt", "mkd", NUL-terminated */
} rtws_resp_reply;

/* Why a reply was refused: rtws_resp_get_error(), rtws_resp_error_str(). */
typedef enum rtws_resp_error {
    RTWS_RESP_E_NONE = 0,
    RTWS_RESP_E_TYPE,       /* the first byte of a value is no RESP type */
    RTWS_RESP_E_CRLF,       /* a line does not end in CR LF (a lone CR or LF, or a
                               bulk string not followed by CR LF) */
    RTWS_RESP_E_LENGTH,     /* a length is not a decimal number */
    RTWS_RESP_E_NEGATIVE,   /* a length below -1, or -1 where null is not allowed */
    RTWS_RESP_E_INTEGER,    /* an integer is malformed or overflows int64 */
    RTWS_RESP_E_BOOL,       /* a boolean is not #t or #f */
    RTWS_RESP_E_DOUBLE,     /* a double is malformed */
    RTWS_RESP_E_BIGNUM,     /* a big number is not [-]digits */
    RTWS_RESP_E_NULL,       /* a RESP3 null (_) has content */
    RTWS_RESP_E_VERBATIM,   /* a verbatim string lacks its "xxx:" format prefix */
    RTWS_RESP_E_STREAMED,   /* a RESP3 streamed string or aggregate (? length):
                               not supported */
    RTWS_RESP_E_LINE,       /* a line is longer than max_line (limit) */
    RTWS_RESP_E_BULK,       /* a bulk string is longer than max_bulk (limit) */
    RTWS_RESP_E_AGGREGATE,  /* an aggregate has more than max_elements (limit) */
    RTWS_RESP_E_ELEMENTS,   /* the reply has more than max_elements nodes (limit) */
    RTWS_RESP_E_DEPTH,      /* nesting deeper than max_depth (limit) */
    RTWS_RESP_E_SIZE,       /* the reply is longer than max_reply bytes (limit) */
    RTWS_RESP_E_NOMEM       /* the node array could not grow (allocator) */
} rtws_resp_error;

/* Limits of one parser; zero means the default in parentheses. */
typedef struct rtws_resp_config {
    size_t max_bulk;       /* bytes of one bulk, verbatim or bulk error (512 MiB,
                              Redis's own proto-max-bulk-len) */
    size_t max_line;       /* bytes of one simple string, error or number line (64 KiB) */
    size_t max_elements;   /* nodes of one reply, and elements of one aggregate (1 Mi) */
    size_t max_reply;      /* bytes of one whole reply (1 GiB) */
    uint32_t max_depth;    /* nesting of aggregates (32; at most RTWS_RESP_MAX_DEPTH) */
    rtws_allocator allocator; /* for the node array */
} rtws_resp_config;

#define RTWS_RESP_MAX_DEPTH 64 /* the highest max_depth */
typedef struct rtws_resp_parser {
    struct {
        rtws_resp_config cfg;
        rtws_resp_reply *nodes; /* the tree of the last reply, nodes[0] the root */
        size_t cap, nnodes;
        size_t pos;             /* bytes of the reply under way scanned so far */
        size_t count;           /* nodes the reply under way will need */
        uint32_t depth;         /* open aggregates */
        uint32_t top;           /* values still wanted at the top level (attributes add) */
        size_t rem[RTWS_RESP_MAX_DEPTH]; /* elements left per open aggregate */
        rtws_resp_error error;
        size_t err_off;
        rtws_err err;           /* sticky until rtws_resp_reset */
    } priv_;
} rtws_resp_parser;

/* cfg may be NULL (defaults). RTWS_ERR_INVALID when max_depth is above
   RTWS_RESP_MAX_DEPTH. Allocates nothing until the first reply. */
RTWS_API rtws_err rtws_resp_init(rtws_resp_parser *p, const rtws_resp_config *cfg);
RTWS_API void rtws_resp_free(rtws_resp_parser *p);
/* Forgets the reply under way and any error (the node array is kept). */
RTWS_API void rtws_resp_reset(rtws_resp_parser *p);
/* Parses one reply from data, the bytes not consumed yet: every call passes
   them from the first unconsumed byte, the bytes of earlier calls again
   (unchanged) followed by any new ones. Scanning resumes where the last call
   stopped, so a reply arriving in many pieces costs its length once.
     RTWS_OK       a whole reply: *used is its length, rtws_resp_get_reply()
                   the tree; the next call starts after those bytes.
     RTWS_EAGAIN   not complete yet (*used = 0): call again with more.
     RTWS_ERR_SYNTAX, RTWS_ERR_TOO_BIG (E_LINE, E_BULK, E_AGGREGATE,
     E_ELEMENTS, E_SIZE), RTWS_ERR_DEPTH, RTWS_ERR_NOMEM: sticky until
                   rtws_resp_reset; rtws_resp_get_error() says what and
                   rtws_resp_get_error_offset() where. */
RTWS_API rtws_err rtws_resp_parse(rtws_resp_parser *p, const void *data, size_t len,
                                  size_t *used);
/* The reply of the last RTWS_OK (lifetime: see rtws_resp_reply), else NULL. */
RTWS_API const rtws_resp_reply *rtws_resp_get_reply(const rtws_resp_parser *p);
RTWS_API rtws_resp_error rtws_resp_get_error(const rtws_resp_parser *p);
/* Offset in data of the byte that broke the reply. */
RTWS_API size_t rtws_resp_get_error_offset(const rtws_resp_parser *p);
RTWS_API const char *rtws_resp_error_str(rtws_resp_error e);
RTWS_API const char *rtws_resp_type_str(rtws_resp_type t);

/* Encodes a command, an array of argc bulk strings (argv[i], lens[i] bytes;
   lens NULL: each argv[i] is NUL-terminated), into buf when it fits in cap.
   Returns the length of the encoding either way, like snprintf: a result
   above cap means nothing was written (call again with a bigger buffer);
   0 when argc < 1. buf may be NULL when cap is 0. */
RTWS_API size_t rtws_resp_encode_command(void *buf, size_t cap, int argc,
                                         const char *const *argv, const size_t *lens);
#endif /* !RTWS_NO_REDIS */

#if !defined(RTWS_NO_REDIS) && !defined(RTWS_NO_HOST) && !defined(RTWS_NO_CLIENT)
/* ======================================================================== */
/* === layer 6b: redis ==================================================== */
/* ======================================================================== */

/* A Redis connection on the caller's loop: an rtws_stream (layer 4) of the
   context, speaking RESP (layer 6a). Commands are pipelined: each is sent at
   once (or, while not connected, queued and sent after the next connect) and
   its reply goes to its own callback, in order. AUTH (password, or ACL user
   and password) and SELECT run first on every connection. A dropped
   connection fails the commands sent on it (their callbacks get the error)
   and reconnects with backoff (rtws_client_backoff_delay); commands not yet
   sent wait for it. A subscriber connection (cfg.subscriber) carries
   SUBSCRIBE, PSUBSCRIBE and SSUBSCRIBE (and, with cfg.resp3, any command),
   delivers messages to cfg.on_message and subscribes again after every
   reconnect. RESP2, or RESP3 with cfg.resp3 (pushes become messages). Free
   every rtws_redis before its context. */
typedef struct rtws_redis rtws_redis;

/* The parts of redis://[user:pass@]host[:port][/db], pointing into the URL
   (not NUL-terminated; user and password taken as written, no %-decoding).
   IPv6 hosts in brackets ([::1]) come without them. */
typedef struct rtws_redis_url {
    const char *host;
    size_t host_len;
    int port;             /* (6379) */
    const char *user;     /* NULL when absent (redis://:pass@host) */
    size_t user_len;
    const char *password; /* NULL when absent */
    size_t password_len;
    int db;               /* (0) */
} rtws_redis_url;

/* RTWS_OK, or RTWS_ERR_URL (not redis://, no host, a bad port or db);
   rediss:// gives RTWS_ERR_TLS (not supported yet). */
RTWS_API rtws_err rtws_redis_url_parse(const char *url, rtws_redis_url *out);

typedef enum rtws_redis_state {
    RTWS_REDIS_CONNECTING = 1, /* connecting, then AUTH and SELECT */
    RTWS_REDIS_OPEN,           /* ready: queued commands went out */
    RTWS_REDIS_RECONNECTING,   /* waiting before the next attempt */
    RTWS_REDIS_CLOSED          /* rtws_redis_free */
} rtws_redis_state;

typedef enum rtws_redis_sub_kind {
    RTWS_REDIS_CHANNEL = 0, /* SUBSCRIBE */
    RTWS_REDIS_PATTERN,     /* PSUBSCRIBE */
    RTWS_REDIS_SHARD        /* SSUBSCRIBE (Redis 7) */
} rtws_redis_sub_kind;

typedef enum rtws_redis_msg_type {
    RTWS_REDIS_MESSAGE = 1, /* a message: channel, data (pattern set for PATTERN) */
    RTWS_REDIS_SUBSCRIBED,  /* the server confirmed a subscription: channel, count */
    RTWS_REDIS_UNSUBSCRIBED,/* ... its end: channel, count */
    RTWS_REDIS_ERROR,       /* the server refused one: data is its error text */
    RTWS_REDIS_PUSH         /* another RESP3 push: reply */
} rtws_redis_msg_type;

/* Pointers are valid until the callback returns. */
typedef struct rtws_redis_message {
    rtws_redis_msg_type type;
    rtws_redis_sub_kind kind;      /* MESSAGE, SUBSCRIBED, UNSUBSCRIBED */
    const char *pattern;           /* MESSAGE of a PATTERN subscription, else NULL */
    size_t pattern_len;
    const char *channel;
    size_t channel_len;
    const char *data;
    size_t len;
    int64_t count;                 /* SUBSCRIBED, UNSUBSCRIBED: subscriptions left */
    const rtws_resp_reply *reply;  /* the whole reply */
} rtws_redis_message;

/* reply: the command's reply (a RTWS_RESP_ERROR one is the server's error:
   WRONGTYPE ...), with err RTWS_OK; or NULL with err when it has none: the
   connection dropped after the command was sent (RTWS_ERR_ABNORMAL,
   RTWS_ERR_IO, RTWS_ERR_TIMEOUT, RTWS_ERR_PROTOCOL: a reply that is not RESP)
   or rtws_redis_free came first (RTWS_ERR_CLOSED). reply lives until the
   callback returns. */
typedef void (*rtws_redis_reply_fn)(rtws_redis *r, const rtws_resp_reply *reply, rtws_err err,
                                    void *user);

typedef struct rtws_redis_config {
    const char *url;             /* redis://[user:pass@]host[:port][/db] (copied) */
    const char *username;        /* when not NULL, instead of the URL's (copied) */
    const char *password;        /* when not NULL, instead of the URL's (copied) */
    int subscriber;              /* 1: a subscriber connection (rtws_redis_subscribe) */
    int resp3;                   /* 1: HELLO 3 (with the AUTH) starts each connection:
                                    RESP3 replies (maps, sets, doubles...), pub/sub
                                    messages as pushes, so a subscriber connection
                                    takes commands too */
    void (*on_message)(rtws_redis *r, const rtws_redis_message *m, void *user);
    /* the connection entered a state; err: why the last one ended (RTWS_OK
       when none): as for rtws_redis_reply_fn, or RTWS_ERR_HANDSHAKE when
       AUTH or SELECT failed (rtws_redis_get_error_text) */
    void (*on_state)(rtws_redis *r, rtws_redis_state state, rtws_err err, void *user);
    void *user;
    uint32_t backoff_base_ms;    /* first reconnect wait bound (100) */
    uint32_t backoff_factor;     /* (2) */
    uint32_t backoff_max_ms;     /* (5000) */
    uint32_t backoff_min_ms;     /* (0) */
    rtws_jitter jitter;          /* (RTWS_JITTER_FULL) */
    uint32_t connect_timeout_ms; /* (5000) */
    size_t max_pending;          /* commands waiting for a reply or a connection
                                    (1 Mi): rtws_redis_command says RTWS_ERR_LIMIT */
    size_t max_output;           /* bytes of commands not sent yet (256 MiB) */
    rtws_resp_config resp;       /* limits of each reply */
} rtws_redis_config;

/* Starts connecting at once. NULL with *err: RTWS_ERR_URL/_TLS (the URL),
   RTWS_ERR_INVALID, RTWS_ERR_NOMEM. Resolution and connect failures are
   retried with backoff. */
RTWS_API rtws_redis *rtws_redis_new(rtws_ctx *ctx, const rtws_redis_config *cfg, uint64_t now_ms,
                                    rtws_err *err);
/* Sends a command of argc strings (argv[i], lens[i] bytes; lens NULL: NUL-
   terminated), or queues it until the connection is ready; cb (may be NULL)
   gets its reply. RTWS_ERR_LIMIT (max_pending, max_output), RTWS_ERR_INVALID
   (argc < 1, or a subscriber connection without resp3), RTWS_ERR_NOMEM. */
RTWS_API rtws_err rtws_redis_command(rtws_redis *r, int argc, const char *const *argv,
                                     const size_t *lens, rtws_redis_reply_fn cb, void *user);
/* Subscriber connections: adds a subscription (kept across reconnects) and
   sends it when connected. RTWS_ERR_INVALID on a command connection. */
RTWS_API rtws_err rtws_redis_subscribe(rtws_redis *r, rtws_redis_sub_kind kind, const char *name,
                                       size_t len);
RTWS_API rtws_err rtws_redis_unsubscribe(rtws_redis *r, rtws_redis_sub_kind kind,
                                         const char *name, size_t len);
RTWS_API rtws_redis_state rtws_redis_get_state(const rtws_redis *r);
/* Commands waiting for their reply or for the connection. */
RTWS_API size_t rtws_redis_get_pending(const rtws_redis *r);
/* The server's error text that failed the last handshake ("" when none). */
RTWS_API const char *rtws_redis_get_error_text(const rtws_redis *r);
/* Every command waiting gets RTWS_ERR_CLOSED; then the connection closes and
   r is freed. Allowed inside r's callbacks. */
RTWS_API void rtws_redis_free(rtws_redis *r);
#endif /* !RTWS_NO_REDIS && !RTWS_NO_HOST && !RTWS_NO_CLIENT */

#if !defined(RTWS_NO_REALTIME)
/* ======================================================================== */
/* === layer 7: realtime ================================================== */
/* ======================================================================== */

/* The router: channels with sequence numbers and bounded history, presence,
   acked and de-duplicated publishes, sessions that survive reconnects, auth
   and limits, and a status page, over JSON text messages (docs/PROTOCOL.md).
   It is plain data and functions: it acts on rtws_conn events handed to it
   and takes the time as an argument. rtws_router_install() wires it into a
   host context. */
#if defined(RTWS__HAVE_ROUTER)
typedef struct rtws_router rtws_router;

enum { RTWS_ACT_SUBSCRIBE = 1, RTWS_ACT_PUBLISH, RTWS_ACT_PRESENCE };
/* The router's close code for a token that expired and was not renewed
   within token_grace_ms (RFC 6455 §7.4.2: 4000-4999 are private use). */
enum { RTWS_CLOSE_TOKEN_EXPIRED = 4001 };

/* Checks a token (from "Authorization: Bearer", ?token=, or an auth message).
   Writes the user id to user_id (printable, <= 63 bytes) and returns 0 to accept. */
typedef int (*rtws_auth_fn)(rtws_router *r, rtws_conn *c, const char *token, size_t len,
                            char user_id[64], void *user);
/* Access control: return 0 to allow action (RTWS_ACT_*) on channel. */
typedef int (*rtws_authorize_fn)(rtws_router *r, rtws_conn *c, const char *user_id, int action,
                                 const char *channel, void *user);
/* Messages that are not protocol messages (other types, non-JSON, binary). */
typedef void (*rtws_router_msg_fn)(rtws_router *r, rtws_conn *c, const rtws_event *ev,
                                   void *user);
/* Every publish, after its seq is set: e.g. forward to a broker. msg is the
   whole "message" JSON as sent to subscribers. */
typedef void (*rtws_publish_fn)(rtws_router *r, const char *channel, uint64_t seq,
                                const char *msg, size_t len, void *user);

/* Toolkit use (docs/PROTOCOL.md "Toolkit use"): an application with its own
   wire protocol sees every message first and drives channels, history,
   presence and identities through the server-side API below. */
enum { RTWS_ROUTER_PASS = 0, RTWS_ROUTER_HANDLED = 1 };
/* Sees every message of a connection first (after the rate limit), text or
   binary. Return RTWS_ROUTER_HANDLED when the application took care of it,
   RTWS_ROUTER_PASS to let the built-in protocol (or on_message) have it.
   ev->message.data is valid until it returns; any server-side call is allowed. */
typedef int (*rtws_router_recv_fn)(rtws_router *r, rtws_conn *c, const rtws_event *ev,
                                   void *user);
/* A user's presence in a channel changed: status "joined", "left", or one set
   with rtws_router_set_presence / a "presence" message. */
typedef void (*rtws_router_presence_fn)(rtws_router *r, const char *channel, const char *user_id,
                                        const char *status, void *user);
/* Adds fields to the status JSON: w is inside its top-level object, so write
   keys and values (rtws_json_write_key and friends). Called again, from the
   start, when the reply needed a bigger buffer: write the same each time. */
typedef void (*rtws_router_status_fn)(rtws_router *r, rtws_json_writer *w, void *user);

/* An own protocol's message types (docs/PROTOCOL.md "Message-type table").
   A text message on an endpoint with handlers (and the built-in protocol off)
   that on_receive passed is parsed once (at most max_tokens tokens, into the
   router's token buffer: no allocation per message), its type field read, and
   the handler of that type called with the parsed document (valid until it
   returns; msg->toks[0] is the top-level object). */
typedef void (*rtws_router_handler_fn)(rtws_router *r, rtws_conn *c, const rtws_json *msg,
                                       void *user);
enum { RTWS_ROUTER_BEFORE_AUTH = 1 }; /* handler flag: allowed before authentication */
typedef struct rtws_router_handler {
    const char *type;          /* the type field's value, e.g. "subscribe" */
    rtws_router_handler_fn fn; /* NULL: the type is accepted and ignored */
    unsigned flags;            /* RTWS_ROUTER_BEFORE_AUTH */
} rtws_router_handler;
/* A message the handler table refused, or an auth message that failed; code
   is one of "invalid_message" (not a JSON object with a string type field:
   binary, malformed, too many tokens, a type over 64 bytes),
   "unknown_message_type" (message: the type), "authentication_required"
   (auth_required on, not authenticated yet: any type but auth_type and those
   with RTWS_ROUTER_BEFORE_AUTH, unknown ones too), "authentication_failed" and
   "connection_limit_exceeded" (the auth message: a bad token; the user has
   max_conns_per_user). message is a short English text. The application
   writes its own error shape; after the three authentication codes the
   router closes the connection with auth_close_code (if still open). */
typedef void (*rtws_router_error_fn)(rtws_router *r, rtws_conn *c, const char *code,
                                     const char *message, void *user);

/* One WebSocket path served by the router. Every endpoint shares the router's
   channels, users, sessions and limits; zero fields take the router's. */
typedef struct rtws_router_endpoint {
    const char *path;                /* e.g. "/ws/chat" (required; borrowed for the
                                        router's lifetime) */
    rtws_router_recv_fn on_receive;  /* (cfg.on_receive) */
    rtws_router_msg_fn on_message;   /* (cfg.on_message) */
    int builtin_protocol_off;        /* 1: this endpoint speaks the application's
                                        protocol (cfg.builtin_protocol_off also turns it off) */
    int auth_required;               /* 1: connections here must authenticate
                                        (cfg.auth_required also requires it) */
    void *user;                      /* (cfg.user) */
    uint32_t rate_per_s;             /* this endpoint's rate limit per connection (0: the
                                        router's rate_per_s, rate_burst and rate_abuse) */
    uint32_t rate_burst;             /* (2 * rate_per_s; 0 with rate_per_s 0: cfg's) */
    uint32_t rate_abuse;             /* (cfg.rate_abuse) */
    rtws_router_msg_fn on_rate_limited; /* (cfg.on_rate_limited) */
    /* the message-type table (with builtin_protocol_off; on_message then sees
       nothing): handlers[0..n_handlers), borrowed like path (NULL: cfg's) */
    const rtws_router_handler *handlers;
    size_t n_handlers;
    const char *type_field;          /* the member naming the type (cfg's; NULL: "type") */
    rtws_router_error_fn on_error;   /* refused messages (cfg.on_error; NULL: dropped) */
    /* The auth message: of type auth_type ("": none), its token in the
       string member auth_token_field ("token"), checked by
       rtws_router_authenticate (again later: a renewal or another user). On
       success auth_type's handler (if in the table) is called; on failure
       on_error with "authentication_failed" or "connection_limit_exceeded".
       Unset (NULL, 0), these three take cfg's. */
    const char *auth_type;
    const char *auth_token_field;
    uint16_t auth_close_code;        /* after an authentication error (0: 1008;
                                        1: left open) */
} rtws_router_endpoint;

typedef struct rtws_router_config {
    const char *path;            /* WebSocket path (NULL: any path upgrades) */
    const char *status_path;     /* plain GET answered with JSON stats ("/ws/status") */
    const void *jwt_secret;      /* built-in HS256 check of tokens (NULL: none) */
    size_t jwt_secret_len;
    const char *jwt_user_claim;  /* the claim naming the user ("sub", else "user") */
    int32_t jwt_leeway_s;        /* clock skew allowed on exp and nbf (30; negative: 0) */
    uint32_t token_grace_ms;     /* a built-in token's exp passing on an open connection
                                    sends "token_expired", then this long for an auth
                                    with a fresh token, else close 4001 (30000) */
    rtws_auth_fn auth;           /* custom token check, used instead of the JWT one */
    int auth_required;           /* 1: every connection must authenticate */
    uint32_t auth_timeout_ms;    /* ...within this long after open, else 1008 (10000) */
    rtws_authorize_fn authorize; /* NULL: everything allowed */
    rtws_router_msg_fn on_message;
    rtws_publish_fn on_publish;
    rtws_event_fn on_event;      /* also sees every connection event (optional); at the
                                    close, before the router forgets the connection */
    rtws_http_fn on_http;        /* other plain HTTP requests (a page) */
    void *user;                  /* last argument of the hooks */
    size_t history;              /* messages kept per channel (1000) */
    uint32_t session_ttl_ms;     /* a session outlives its last connection (120000) */
    uint32_t dedupe_ms;          /* publish ids remembered per session (60000) */
    size_t dedupe_max;           /* ...at most this many per session (1024) */
    size_t max_channels;         /* channels per connection (100) */
    size_t max_channels_total;   /* channels that exist at once (10000) */
    size_t max_user_channels;    /* channels created by one user that still exist (1000,
                                    at most 65535); a subscribe or publish that would
                                    create a channel over either cap gets "limit_reached" */
    uint32_t channel_ttl_ms;     /* a channel without subscribers is forgotten, history
                                    and seq with it, this long after its last publish or
                                    its last subscriber left (300000) */
    size_t memory_budget;        /* bytes of channels, history and sessions (0: unlimited),
                                    and of the send queues of connections whose
                                    rtws_config.budget is rtws_router_get_budget(). When
                                    installed in a context with a memory_budget, that one
                                    is charged instead (docs/GUIDE.md "Memory budget") */
    size_t max_conns_per_user;   /* (0: unlimited) */
    size_t max_data;             /* bytes of a publish's data (65536) */
    uint32_t rate_per_s;         /* messages per second per connection (0: off) */
    uint32_t rate_burst;         /* bucket size (2 * rate_per_s) */
    uint32_t rate_abuse;         /* rate-limited messages before close 1008 (20) */
    rtws_router_msg_fn on_rate_limited; /* a message refused by the rate limit, on an
                                    endpoint with the built-in protocol off (ev: the
                                    message), so the application can answer in its own
                                    protocol; it is not handed to on_receive (NULL: dropped
                                    silently). The built-in protocol sends "rate_limited" */
    uint32_t heartbeat_ms;       /* advertised in welcome (30000) */
    size_t max_tokens;           /* JSON tokens of one message (16384) */
    size_t max_presence;         /* presence is tracked and broadcast in channels of up
                                    to this many users (1000); above it joins and leaves
                                    are not announced (they would cost N^2) and
                                    "subscribed" carries only the member count */
    rtws_random_fn random;       /* session and anonymous ids (rtws_random_system) */
    void *random_user;
    rtws_allocator allocator;
    int64_t wall_offset_ms;      /* added to now_ms for "ts"/"time" (install sets it) */
    rtws_router_recv_fn on_receive;   /* sees every message first (NULL: none) */
    int builtin_protocol_off;    /* 1: the router sends nothing of its own (no welcome,
                                    replies, errors or presence messages); messages the
                                    hook passes go to on_message, else are dropped */
    /* The application's message-type table and its auth message, as in
       rtws_router_endpoint (there: each endpoint's own; an endpoint that
       leaves one of these unset takes it from here) */
    const rtws_router_handler *handlers;
    size_t n_handlers;
    const char *type_field;
    rtws_router_error_fn on_error;
    const char *auth_type;
    const char *auth_token_field;
    uint16_t auth_close_code;
    rtws_router_presence_fn on_presence; /* presence changes (NULL: none) */
    rtws_router_status_fn on_status;     /* extra status fields (NULL: none) */
    int status_off;              /* 1: no status page (status_path goes to on_http) */
    const rtws_router_endpoint *endpoints; /* several paths, each with its own hooks */
    size_t n_endpoints;          /* (0: one endpoint, path and the hooks above) */
    /* The engine: where seq numbers, history and publish ids live and how
       publishes reach the subscribers of other nodes. NULL redis_url: the
       memory engine (one process). A redis:// URL: the Redis engine
       (docs/PROTOCOL.md "Cluster"; left out with RTWS_NO_REDIS, RTWS_NO_HOST
       or RTWS_NO_CLIENT, where rtws_router_new then returns NULL): every
       router with the same URL and prefix is one node of a cluster. It
       connects once installed in a context (rtws_router_install), from the
       context's first event or tick. */
    const char *redis_url;       /* redis://[user:pass@]host[:port][/db] (copied) */
    const char *redis_prefix;    /* prefix of the keys and pub/sub channels ("rtws") */
    uint32_t redis_node_ttl_ms;  /* presence across nodes: each node renews a heartbeat
                                    key of this lifetime every third of it (at least
                                    every 1 s: the router's timers); the users of a node
                                    whose key lapsed (killed, cut off) leave every
                                    channel's presence, "left" announced once, within
                                    this long plus one such period (15000: 20 s) */
} rtws_router_config;

RTWS_API rtws_router *rtws_router_new(const rtws_router_config *cfg);
/* Releases everything. Connections still open no longer reach the router
   (their event handler is cleared): close or free them next. NULL: nothing. */
RTWS_API void rtws_router_free(rtws_router *r);
/* Points cfg's conn.on_event/on_accept/on_http/user and on_tick at r, and
   sets the wall clock offset. Call before rtws_ctx_new(cfg). */
#if !defined(RTWS_NO_HOST)
RTWS_API void rtws_router_install(rtws_router *r, rtws_ctx_config *cfg);

/* ---- a server's command line ----

   The options every rtws server takes, read with rtws_opts_parse into the
   configurations: --host H, --port P, then the limits below, each written
   into the field it names; then the program's own options (own[0 ..
   n_own), their value and num set as by rtws_opts_parse). A field's value on
   entry is its option's default, shown in the usage (0: the library's
   default, shown as that number); a field is written only when its option is
   given. Numbers are checked against each option's range.
     --max-connections N      cfg->max_connections (0: no limit)
     --idle-timeout-ms MS     cfg->conn.idle_timeout_ms (0: off)
     --ping-interval-ms MS    cfg->conn.ping_interval_ms (0: heartbeat_off)
     --handshake-timeout-ms MS  cfg->conn.handshake_timeout_ms
     --message-timeout-ms MS  cfg->conn.message_timeout_ms (0: off)
     --max-message BYTES      cfg->conn.max_message (and max_frame when larger)
   and, when rc is not NULL, the router's:
     --jwt-secret S           rc->jwt_secret, jwt_secret_len (not with rc->auth)
     --auth-timeout-ms MS     rc->auth_timeout_ms
     --token-grace-ms MS      rc->token_grace_ms (not with rc->auth)
     --max-per-user N         rc->max_conns_per_user (0: no limit)
     --max-channels N         rc->max_channels (per connection)
     --history N              rc->history (messages kept per channel)
     --rate N                 rc->rate_per_s (messages a second per connection;
                              0: off)
     --redis URL              rc->redis_url (a node of a cluster)
   The strings stored are argv's. Returns 0, 1 after --help (the usage on
   stdout) or -1 (why and the usage on stderr), as rtws_opts_parse. */
typedef struct rtws_server_opts {
    const char *host;   /* --host H: in, the default (NULL: "127.0.0.1"); out, the value */
    int port;           /* --port P, 0 .. 65535 (0: the OS picks): in, the default; out */
    int need_secret;    /* 1: --jwt-secret must be given (with rc) */
    rtws_opt *own;      /* the program's own options, after the shared ones */
    size_t n_own;
} rtws_server_opts;
RTWS_API int rtws_server_opts_parse(rtws_server_opts *o, rtws_ctx_config *cfg,
                                    rtws_router_config *rc, int argc, char **argv,
                                    const char *about);
#endif

/* The sans-I/O entry points install() wires up: */
RTWS_API void rtws_router_handle_event(rtws_router *r, rtws_conn *c, const rtws_event *ev,
                                   uint64_t now_ms);
RTWS_API int rtws_router_handle_accept(rtws_router *r, rtws_conn *c, const rtws_http *req,
                                   uint64_t now_ms);
RTWS_API int rtws_router_handle_http(rtws_router *r, rtws_conn *c, const rtws_http *req,
                                 rtws_http_reply *reply, uint64_t now_ms);
RTWS_API void rtws_router_run_timers(rtws_router *r, uint64_t now_ms);

/* Server-side publish (from application code or a broker). data is JSON
   (NULL: null); from NULL means "server". Returns the seq, 0 on error. With
   the Redis engine Redis assigns the seq later: UINT64_MAX says the publish
   went to Redis (0: refused, Redis is unreachable). */
RTWS_API uint64_t rtws_router_publish(rtws_router *r, const char *channel, const char *event,
                                      const char *data, size_t data_len, const char *from,
                                      uint64_t now_ms);
/* The user id of a router connection, or NULL. */
RTWS_API const char *rtws_router_get_user(const rtws_router *r, const rtws_conn *c);
/* The claims of a router connection: those of the token it authenticated
   with (the built-in HS256 check: the JWT payload as JSON text), or those
   given to rtws_router_set_identity; NUL-terminated, *len their length when
   len is not NULL; NULL when there are none. Valid until the connection
   authenticates again, gets a new identity, or closes. */
RTWS_API const char *rtws_router_get_claims(const rtws_router *r, const rtws_conn *c, size_t *len);
/* Sends one protocol error to c (code from the fixed list, see PROTOCOL.md). */
RTWS_API rtws_err rtws_router_send_error(rtws_router *r, rtws_conn *c, const char *code,
                                    const char *message, const char *id);

typedef struct rtws_router_stats {
    size_t active_connections, users_online, channels, subscriptions, sessions;
    uint64_t total_connections, messages_in, messages_out, publishes;
    size_t memory_used, memory_peak, memory_budget; /* the budget the router charges */
    size_t memory_router;        /* of which its channels, history and sessions */
    size_t history_bytes;        /* bytes of the messages kept in history */
    uint64_t channels_expired;   /* forgotten after channel_ttl_ms without subscribers */
    uint64_t history_shed;       /* history messages dropped early for the budget */
    uint64_t refused_overloaded, refused_rate; /* "overloaded" and "rate_limited" sent */
    int engine_redis;            /* 1: the Redis engine */
    int redis_up;                /* 1: both Redis connections are open */
    uint64_t redis_outages;      /* times a Redis connection was lost */
    uint64_t refused_redis;      /* publishes refused ("overloaded") while Redis was down */
} rtws_router_stats;
RTWS_API void rtws_router_get_stats(const rtws_router *r, rtws_router_stats *st);
/* The budget the router charges: its own (limit memory_budget), or once
   installed in a context with a memory_budget, the context's. Without a
   host, point the rtws_config.budget of the router's connections at it so
   their send queues count too (and free them before the router). */
RTWS_API rtws_budget *rtws_router_get_budget(rtws_router *r);

/* ---- server-side API, callable from any hook or from the application's
   loop; c is a connection the router accepted (else RTWS_ERR_INVALID). ---- */

/* A connection's id: unique within the router, never reused, from 1 (0: not
   a router connection). Fits in URLs as a decimal number. */
RTWS_API uint64_t rtws_router_get_conn_id(const rtws_router *r, const rtws_conn *c);
/* The open connection with that id, or NULL. */
RTWS_API rtws_conn *rtws_router_find_conn(const rtws_router *r, uint64_t id);
/* The endpoint c came in on: its index in cfg.endpoints (0 without endpoints),
   -1 when c is not a router connection. */
RTWS_API int rtws_router_get_conn_endpoint(const rtws_router *r, const rtws_conn *c);
/* Calls fn for every open connection, or only those of user_id (not NULL),
   or only the subscribers of channel (not NULL), or both filters at once.
   fn returns 0 to go on, anything else to stop. fn may send to, close,
   subscribe or unsubscribe the connection it was given, not free others.
   Returns how many connections fn was called for. */
RTWS_API size_t rtws_router_foreach_conn(rtws_router *r, const char *user_id,
                                         const char *channel,
                                         int (*fn)(rtws_router *r, rtws_conn *c, void *user),
                                         void *user);
/* Subscribes c to channel (created when missing), as a "subscribe" message
   would but without the authorize hook and without any reply: the
   application answers in its protocol. Presence is joined (on_presence; a
   "presence" message to built-in protocol subscribers). RTWS_OK (also when
   already subscribed), RTWS_ERR_INVALID (bad channel name, not a router
   connection), RTWS_ERR_LIMIT (max_channels or max_channels_total),
   RTWS_ERR_NOMEM. */
RTWS_API rtws_err rtws_router_subscribe(rtws_router *r, rtws_conn *c, const char *channel);
/* RTWS_OK, or RTWS_ERR_INVALID when c is not subscribed to channel. */
RTWS_API rtws_err rtws_router_unsubscribe(rtws_router *r, rtws_conn *c, const char *channel);
/* 1 when c is subscribed to channel. */
RTWS_API int rtws_router_is_subscribed(const rtws_router *r, const rtws_conn *c,
                                       const char *channel);
/* Publishes payload exactly as given (the application's own envelope; opcode
   RTWS_OP_TEXT or RTWS_OP_BINARY) to every subscriber of channel, encoded
   once, and keeps it in the history under the next seq. To put the seq in
   the payload, take rtws_router_get_seq(r, channel) + 1 just before: nothing
   else publishes in between. Returns the seq, 0 on error (bad channel name
   or opcode, invalid UTF-8 text, no memory). */
RTWS_API uint64_t rtws_router_publish_raw(rtws_router *r, const char *channel, int opcode,
                                          const void *payload, size_t len, uint64_t now_ms);
/* Publish ids of the application's protocol, de-duplicated per session as
   the built-in "publish" is (dedupe_ms, dedupe_max): find_id says whether
   c's session saw id (1 to 64 bytes) within the window and gives its seq
   (then ack again, do not publish); remember_id records it after the
   publish. find_id: 1 seen, 0 not; remember_id: RTWS_OK or RTWS_ERR_INVALID. */
RTWS_API int rtws_router_find_id(const rtws_router *r, const rtws_conn *c, const char *id,
                                 size_t id_len, uint64_t now_ms, uint64_t *seq);
RTWS_API rtws_err rtws_router_remember_id(rtws_router *r, rtws_conn *c, const char *id,
                                          size_t id_len, uint64_t seq, uint64_t now_ms);
/* The channel's latest seq (0: none yet, or no such channel). */
RTWS_API uint64_t rtws_router_get_seq(const rtws_router *r, const char *channel);
/* Sends one message to c, to every connection of user_id, or (skip aside) to
   every subscriber of channel without a seq or history. A connection whose
   queue is full is closed with 1013 ("slow consumer"). Each returns how many
   connections it was queued on (send_to_conn: RTWS_OK or an rtws_err). */
RTWS_API rtws_err rtws_router_send_to_conn(rtws_router *r, rtws_conn *c, int opcode,
                                           const void *payload, size_t len);
RTWS_API size_t rtws_router_send_to_user(rtws_router *r, const char *user_id, int opcode,
                                         const void *payload, size_t len);
RTWS_API size_t rtws_router_send_to_channel(rtws_router *r, const char *channel, int opcode,
                                            const void *payload, size_t len,
                                            const rtws_conn *skip);
/* Sends one message once to every subscriber of any of channels[0..n) (a
   connection on several of them gets it once; NULL names are skipped),
   skip aside, without a seq or history. Returns how many connections it
   was queued on. */
RTWS_API size_t rtws_router_send_to_channels(rtws_router *r, const char *const *channels,
                                             size_t n, int opcode, const void *payload,
                                             size_t len, const rtws_conn *skip);
/* Closes every open connection of user_id with code and reason (as
   rtws_conn_close), e.g. to log a user out everywhere or ask its clients to
   reconnect (1012). Returns how many it closed. */
RTWS_API size_t rtws_router_close_user(rtws_router *r, const char *user_id, unsigned code,
                                       const char *reason);
/* Sets c's identity after the application authenticated it (its own auth
   message; any time after c's open event): user_id (1 to 63 printable bytes), and claims (any bytes, e.g.
   JSON; NULL: none), copied and kept with c (rtws_router_get_claims). From
   then on c counts as authenticated (auth_required, auth_timeout_ms), toward
   max_conns_per_user, in presence and in its user's sessions; a ?session= of
   the same user is resumed; the claims count toward the router's memory
   budget. Call it before subscribing c: RTWS_ERR_INVALID
   when c has subscriptions or user_id is bad, RTWS_ERR_LIMIT when the user
   has max_conns_per_user connections already (c stays as it was),
   RTWS_ERR_NOMEM. With the Redis engine that count is this node's; the
   cluster's is asked next, and over it c is closed with 1008. */
RTWS_API rtws_err rtws_router_set_identity(rtws_router *r, rtws_conn *c, const char *user_id,
                                           const char *claims, size_t claims_len);
/* The application's own auth message, checked as the router checks its
   "auth": token (len bytes, at most 4096) goes to cfg.auth, else the
   built-in HS256 check (jwt_secret, jwt_user_claim, jwt_leeway_s); then c
   gets its identity as by rtws_router_set_identity, with the token's claims
   (rtws_router_get_claims), and its exp is watched: token_grace_ms after
   it the connection is closed with RTWS_CLOSE_TOKEN_EXPIRED unless a fresh
   token of the same user came in (the built-in protocol also sends
   "token_expired"; an endpoint with it off is sent nothing). RTWS_OK;
   RTWS_ERR_INVALID (token refused, or not a router connection, or a new
   user on a connection with subscriptions); RTWS_ERR_LIMIT
   (max_conns_per_user); RTWS_ERR_NOMEM. */
RTWS_API rtws_err rtws_router_authenticate(rtws_router *r, rtws_conn *c, const char *token,
                                           size_t len);
/* The session id of c ("" before its open). */
RTWS_API const char *rtws_router_get_session(const rtws_router *r, const rtws_conn *c);
/* Sets the presence status of c's user in channel (1 to 32 bytes, not
   "joined" or "left"); c must be subscribed. RTWS_OK or RTWS_ERR_INVALID. */
RTWS_API rtws_err rtws_router_set_presence(rtws_router *r, rtws_conn *c, const char *channel,
                                           const char *status);
/* Calls fn (when not NULL) for each user present in channel with its status
   and its number of connections there; returns the number of users. With
   the Redis engine: the users on every node as this node last heard them,
   for channels with subscribers on this node, conns being this node's. */
RTWS_API size_t rtws_router_get_presence(const rtws_router *r, const char *channel,
                                         void (*fn)(const char *user_id, const char *status,
                                                    size_t conns, void *user),
                                         void *user);
/* A message kept in a channel's history: payload as subscribers got it. */
typedef void (*rtws_router_history_fn)(rtws_router *r, const char *channel, uint64_t seq,
                                       int opcode, const uint8_t *payload, size_t len,
                                       void *user);
/* Calls fn, oldest first, for the kept messages after since_seq, at most the
   last last_n of them (0: no limit). RTWS_OK; RTWS_ERR_RANGE when messages
   after since_seq (of the last last_n, when given) are no longer kept, or
   since_seq is ahead of the channel (fn is then called for none: the client
   must resync from rtws_router_get_seq). So since_seq 0 with last_n N gives
   the last N, or all there are when fewer were published: "the recent ones",
   e.g. a chat's history on join. fn must not publish to the same channel. */
RTWS_API rtws_err rtws_router_get_history(rtws_router *r, const char *channel, uint64_t since_seq,
                                          size_t last_n, rtws_router_history_fn fn, void *user);
/* rtws_router_get_history into a JSON writer: each kept text message, a JSON
   value (the application's envelopes, or the built-in "message"s), written
   as one value where w stands (inside an array the caller opened); binary
   ones are left out. A text message that is not JSON makes w's error
   RTWS_ERR_SYNTAX. Returns what rtws_router_get_history returns. */
RTWS_API rtws_err rtws_router_write_history(rtws_router *r, const char *channel,
                                            uint64_t since_seq, size_t last_n,
                                            rtws_json_writer *w);
/* Queues the kept messages after since_seq on c, sharing their encoded
   frames (resume without copies). RTWS_OK, RTWS_ERR_RANGE as above (nothing
   sent), RTWS_ERR_LIMIT when c's queue filled (c is closed with 1013). */
RTWS_API rtws_err rtws_router_replay(rtws_router *r, rtws_conn *c, const char *channel,
                                     uint64_t since_seq);
/* The health word of the status page ("ok"; e.g. "degraded"): up to 31
   bytes, copied. */
RTWS_API void rtws_router_set_health(rtws_router *r, const char *word);
#endif /* RTWS__HAVE_ROUTER */

/* HS256 JSON Web Token check (RFC 7519/7515): alg must be HS256 ("none" and
   every other alg are refused), the signature is compared in constant time,
   exp and nbf (seconds) are checked against now_s with leeway_s (a negative
   leeway counts as 0) without overflow: exp 2^63-1 never expires. exp, nbf
   and iat must be whole seconds within int64. The "sub" claim (or "user") is
   copied to user. Returns RTWS_OK, RTWS_ERR_SYNTAX (malformed, or a time
   claim that is not a number), RTWS_ERR_RANGE (a time claim that is not a
   whole number within int64), RTWS_ERR_INVALID (bad alg or signature),
   RTWS_ERR_TIMEOUT (expired or not yet valid), RTWS_ERR_TOO_BIG (token over
   4 KiB). */
RTWS_API rtws_err rtws_jwt_hs256_verify(const char *token, size_t len, const void *secret,
                                        size_t secret_len, int64_t now_s, int64_t leeway_s,
                                        char user[64]);
/* Signs claims_json into a token (for tests and tools). Returns its length,
   0 when cap is too small. */
RTWS_API size_t rtws_jwt_hs256_sign(const char *claims_json, const void *secret,
                                    size_t secret_len, char *out, size_t cap);

/* Options of rtws_jwt_hs256_verify_claims; zeroed means the defaults. */
typedef struct rtws_jwt_opts {
    const char *user_claim;      /* the claim naming the user ("userId"); NULL: "sub",
                                    else "user", as rtws_jwt_hs256_verify does */
    int64_t leeway_s;            /* clock skew allowed on exp and nbf (0; negative: 0) */
    const char *const *required; /* NULL-terminated claim names that must be present
                                    ("exp" makes tokens without one fail), or NULL */
} rtws_jwt_opts;

enum { RTWS_JWT_EXP = 1, RTWS_JWT_NBF = 2, RTWS_JWT_IAT = 4 };

/* What a verified token says. */
typedef struct rtws_jwt_claims {
    char user[64];          /* the user claim: a string, or an integer's digits; "" absent */
    int64_t exp, nbf, iat;  /* seconds since 1970, set when has holds their bit */
    unsigned has;           /* RTWS_JWT_EXP | RTWS_JWT_NBF | RTWS_JWT_IAT */
    size_t json_len;        /* bytes of the claims JSON written to json, without the NUL */
} rtws_jwt_claims;

/* rtws_jwt_hs256_verify with the claims: alg pinned to HS256 as there, the
   user id from opts->user_claim, exp and nbf checked with opts->leeway_s (opts
   NULL: defaults). The whole claims object (the decoded payload, which parsed
   as strict JSON, <= 3072 bytes) is copied NUL-terminated to json when json is
   not NULL, for the application's own claims (role, scopes); *out is filled on
   success. Returns what rtws_jwt_hs256_verify returns, and RTWS_ERR_INVALID
   when a required claim is missing, RTWS_ERR_SYNTAX when the user claim is not
   a string of 1-63 printable bytes or an integer, RTWS_ERR_NOSPACE when
   json_cap is too small for the claims (the token did verify). */
RTWS_API rtws_err rtws_jwt_hs256_verify_claims(const char *token, size_t len, const void *secret,
                                               size_t secret_len, int64_t now_s,
                                               const rtws_jwt_opts *opts, rtws_jwt_claims *out,
                                               char *json, size_t json_cap);


/* The realtime client: channels on top of rtws_client. It keeps its
   subscriptions, its session and the last seq seen per channel; after every
   reconnect it resumes the session (?session=), resubscribes with since,
   sets again the presence status it set in each channel, and resends
   every publish not acked yet (same ids: the server de-duplicates),
   so the application sees each message once, in order, across reconnects.
   Publishes go out strictly in order, no faster than the rate limit the
   welcome announces; one refused with "rate_limited" or "overloaded" is
   sent again, with everything after it, once retry_after_ms has passed, on
   the live connection. When the client ends for good (a 1008 close with
   reconnect_on_policy off, max_attempts, rtws_client_close) each publish
   not acked is reported to on_error with code "unsent" and kept
   (rtws_rt_get_unacked). */
#if defined(RTWS__HAVE_RT)
typedef struct rtws_rt rtws_rt;

typedef struct rtws_rt_message {
    const char *channel;
    const char *event;        /* "message", "typing", ... */
    const char *data;         /* the raw JSON value (not NUL-terminated) */
    size_t data_len;
    const char *from;         /* user id of the publisher */
    uint64_t seq;
    int64_t ts;               /* server time, ms since 1970 */
    int reset;                /* 1: the messages up to seq are gone (history
                                 ran out); data is NULL */
} rtws_rt_message;

typedef void (*rtws_rt_msg_fn)(rtws_rt *rt, const rtws_rt_message *m, void *user);

typedef struct rtws_rt_config {
    rtws_client_config client; /* url, backoff, limits; on_event and refresh are the
                                  realtime client's own: use the fields below */
    const char *token;         /* sent in an "auth" message after every welcome */
    rtws_client_event_fn on_event; /* the client's events (cl is rtws_rt_get_client(rt));
                                      text messages go to the handlers, not here */
    rtws_rt_msg_fn on_message; /* channels subscribed without a handler */
    void (*on_presence)(rtws_rt *rt, const char *channel, const char *user_id,
                        const char *status, void *user);
    void (*on_ack)(rtws_rt *rt, const char *id, uint64_t seq, void *user);
    void (*on_error)(rtws_rt *rt, const char *code, const char *message, const char *id,
                     void *user);
    void (*on_welcome)(rtws_rt *rt, const char *user_id, const char *session, int resumed,
                       void *user);
    /* Every text message rtws_rt does not handle itself: a type outside
       PROTOCOL.md's server messages (a toolkit server's own), or text that
       is not a JSON object with a string type. type is that string, unescaped
       ("" when there is none or it is over 127 bytes); json/len the whole
       message (not NUL-terminated), valid until it returns. NULL: dropped. */
    void (*on_unknown)(rtws_rt *rt, const char *type, const char *json, size_t len,
                       void *user);
    size_t max_unacked;        /* publishes waiting for their ack (1000) */
    void *user;
} rtws_rt_config;

RTWS_API rtws_rt *rtws_rt_new(rtws_ctx *ctx, const rtws_rt_config *cfg, uint64_t now_ms,
                              rtws_err *err);
RTWS_API void rtws_rt_free(rtws_rt *rt);
/* Subscribes (now, or at the next welcome) and keeps the subscription across
   reconnects. handler NULL: cfg.on_message. */
RTWS_API rtws_err rtws_rt_subscribe(rtws_rt *rt, const char *channel, rtws_rt_msg_fn handler,
                                    void *handler_user);
/* rtws_rt_subscribe resuming from since_seq, the last seq the application
   has of channel (persisted across restarts, say): the messages after it are
   replayed once each, or a reset message comes when the history no longer
   has them; from then on the seq is tracked as usual. On a channel already
   subscribed it asks again from since_seq. RTWS_ERR_INVALID over INT64_MAX. */
RTWS_API rtws_err rtws_rt_subscribe_since(rtws_rt *rt, const char *channel, uint64_t since_seq,
                                          rtws_rt_msg_fn handler, void *handler_user);
RTWS_API rtws_err rtws_rt_unsubscribe(rtws_rt *rt, const char *channel);
/* Publishes data (JSON text; NULL: null) with a fresh id, copied into *id_out
   when not NULL (32 bytes); sent in order, paced, and resent after
   reconnects until acked. RTWS_ERR_LIMIT when max_unacked publishes wait,
   RTWS_ERR_CLOSED when the client has ended for good. */
RTWS_API rtws_err rtws_rt_publish(rtws_rt *rt, const char *channel, const char *event,
                                  const char *data, size_t len, char *id_out);
/* Sets this user's presence status in a channel ("away", "typing", ...;
   1 to 32 bytes, not "joined" or "left": RTWS_ERR_INVALID). On a channel
   subscribed with rtws_rt_subscribe it is kept: sent now when the channel is
   live, else after its next subscribe (set while offline, the latest status
   wins), and sent again after every reconnect. On another channel it is sent
   once (RTWS_EAGAIN while offline) and the server answers not_subscribed. */
RTWS_API rtws_err rtws_rt_set_presence(rtws_rt *rt, const char *channel, const char *status);
/* Last seq delivered on channel (0: none). */
RTWS_API uint64_t rtws_rt_get_last_seq(const rtws_rt *rt, const char *channel);
/* Publishes not acked yet. */
RTWS_API size_t rtws_rt_get_unacked(const rtws_rt *rt);
/* User id and session from the last welcome ("" before the first). */
RTWS_API const char *rtws_rt_get_user(const rtws_rt *rt);
RTWS_API const char *rtws_rt_get_session(const rtws_rt *rt);
RTWS_API rtws_client *rtws_rt_get_client(const rtws_rt *rt);
#endif /* RTWS__HAVE_RT */
#endif /* !RTWS_NO_REALTIME */

#ifdef __cplusplus
}
#endif
#endif /* RTWS_H */

/* ======================================================================== */
/* implementation                                                           */
/* ======================================================================== */
#if defined(RTWS_IMPLEMENTATION) && !defined(RTWS__IMPLEMENTED)
#define RTWS__IMPLEMENTED

/* Private, for tests (tests/interop_bsdsim.sh): build on Linux the code paths
   of a system without Linux's extras, as on macOS and the BSDs -- poll(2)
   instead of epoll, a pipe instead of an eventfd, /dev/urandom instead of
   getrandom(), no MSG_NOSIGNAL (so SO_NOSIGPIPE is asked for on every
   socket; Linux refuses the option, and the test programs ignore SIGPIPE). */
#if defined(RTWS__SIMULATE_BSD)
#ifndef RTWS_NO_EPOLL
#define RTWS_NO_EPOLL
#endif
#define RTWS__NO_EVENTFD 1
#define RTWS__NO_GETRANDOM 1
#define RTWS__NO_MSG_NOSIGNAL 1
#endif

#include <string.h>

#if defined(__GLIBC__) && !defined(_POSIX_C_SOURCE)
#error "rtws needs POSIX: make rtws.h the first include of this file, or compile it with -D_POSIX_C_SOURCE=200809L (or -D_GNU_SOURCE, or -std=gnu99)"
#endif

#if defined(RTWS_MALLOC) && defined(RTWS_REALLOC) && defined(RTWS_FREE)
#elif !defined(RTWS_MALLOC) && !defined(RTWS_REALLOC) && !defined(RTWS_FREE)
#include <stdlib.h>
#define RTWS_MALLOC(n) malloc(n)
#define RTWS_REALLOC(p, n) realloc(p, n)
#define RTWS_FREE(p) free(p)
#if defined(__GLIBC__) && !defined(RTWS_NO_MALLOC_TRIM)
#include <malloc.h>
/* glibc keeps freed heap memory unless asked: the host asks once a burst
   of big buffers is over (rtws__timers) */
#define RTWS__MALLOC_TRIM() ((void)malloc_trim(0))
#endif
#else
#error "define RTWS_MALLOC, RTWS_REALLOC and RTWS_FREE all together, or none of them"
#endif

#ifndef RTWS_ASSERT
#include <assert.h>
#define RTWS_ASSERT(x) assert(x)
#endif

#define RTWS__DEF(v, d) ((v) ? (v) : (d))
#define RTWS__MIN(a, b) ((a) < (b) ? (a) : (b))
#define RTWS__MAX(a, b) ((a) > (b) ? (a) : (b))
#define RTWS__GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* === layer 0: base ====================================================== */

#if defined(_WIN32)
/* Windows 7 and later. The clock is QueryPerformanceCounter, the random
   source RtlGenRandom (SystemFunction036 of advapi32.dll, linked by default
   by mingw-w64 and through the pragma below by MSVC); layer 4 adds Winsock 2. */
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0601 /* Windows 7: WSAPoll, inet_ntop */
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN /* keeps the old <winsock.h> out: layer 4 includes <winsock2.h> */
#endif
#include <windows.h>
#if !defined(RTWS_NO_SYSTEM_RANDOM)
#include <ntsecapi.h> /* RtlGenRandom */
#if defined(_MSC_VER)
#pragma comment(lib, "advapi32.lib")
#endif
#endif
#elif !defined(RTWS_NO_SYSTEM_RANDOM)
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 25)) &&        \
    !defined(RTWS__NO_GETRANDOM) /* elsewhere (macOS, the BSDs, musl): /dev/urandom */
#define RTWS__HAVE_GETRANDOM 1
#include <sys/random.h>
#endif
#endif
#include <time.h>

RTWS_API const char *rtws_err_str(int err) {
    switch (err) {
#define RTWS__CASE(name, value, text)                                                              \
    case value:                                                                                    \
        return text;
        RTWS__ERRORS(RTWS__CASE)
#undef RTWS__CASE
    default:
        return "unknown error";
    }
}

RTWS_API const char *rtws_version(void) { return RTWS_VERSION_STRING; }

static void *rtws__alloc(const rtws_allocator *a, size_t n) {
    return a->alloc ? a->alloc(n, a->user) : RTWS_MALLOC(n);
}
static void *rtws__realloc(const rtws_allocator *a, void *p, size_t n) {
    return a->realloc ? a->realloc(p, n, a->user) : RTWS_REALLOC(p, n);
}
static void rtws__free(const rtws_allocator *a, void *p) {
    if (!p) return;
    if (a->free)
        a->free(p, a->user);
    else
        RTWS_FREE(p);
}

/* The one way a buffer grows. Makes room for need elements of elem bytes in
   the block *p, which has room for *cap: the new capacity is twice the old
   one, at least 16 and at least need, at most max. RTWS_ERR_TOO_BIG when
   need exceeds max (or need * elem exceeds SIZE_MAX), checked before any
   allocation; RTWS_ERR_NOMEM when the allocator fails. On failure *p and
   *cap are unchanged and the block is still valid. Pass the address of a
   void * (not a cast T **): void *q = buf; rtws__grow(a, &q, ...); buf = q. */
static size_t rtws__grow_cap(size_t cap, size_t need, size_t max) {
    size_t ncap = cap > max / 2 ? max : cap * 2;
    if (ncap < 16) ncap = max < 16 ? max : 16;
    return ncap < need ? need : ncap;
}
static rtws_err rtws__grow(const rtws_allocator *a, void **p, size_t *cap, size_t need,
                           size_t elem, size_t max) {
    size_t ncap;
    void *np;
    if (need <= *cap) return RTWS_OK;
    if (max > SIZE_MAX / elem) max = SIZE_MAX / elem;
    if (need > max) return RTWS_ERR_TOO_BIG;
    ncap = rtws__grow_cap(*cap, need, max);
    np = *p ? rtws__realloc(a, *p, ncap * elem) : rtws__alloc(a, ncap * elem);
    if (!np) return RTWS_ERR_NOMEM;
    *p = np;
    *cap = ncap;
    return RTWS_OK;
}

#if !defined(RTWS_NO_SYSTEM_RANDOM)
RTWS_API int rtws_random_system(void *buf, size_t len, void *user) {
    uint8_t *p = (uint8_t *)buf;
    (void)user;
#if defined(_WIN32)
    while (len > 0) {
        ULONG n = len > 0x10000000u ? 0x10000000u : (ULONG)len;
        if (!RtlGenRandom(p, n)) return -1;
        p += n;
        len -= n;
    }
    return 0;
#else
#if defined(RTWS__HAVE_GETRANDOM)
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        p += n;
        len -= (size_t)n;
    }
    if (len == 0) return 0;
#endif
    {
        int fd = open("/dev/urandom", O_RDONLY);
        if (fd < 0) return -1;
        while (len > 0) {
            ssize_t n = read(fd, p, len);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            p += n;
            len -= (size_t)n;
        }
        close(fd);
    }
    return len == 0 ? 0 : -1;
#endif /* _WIN32 */
}
#endif

#if defined(_WIN32)
RTWS_API uint64_t rtws_time_now_ms(void) {
    LARGE_INTEGER c, f;
    uint64_t t, hz;
    QueryPerformanceCounter(&c);
    QueryPerformanceFrequency(&f); /* fixed at boot; never 0 on Windows XP and later */
    t = (uint64_t)c.QuadPart;
    hz = (uint64_t)f.QuadPart;
    return t / hz * 1000u + t % hz * 1000u / hz;
}

RTWS_API uint64_t rtws_time_wall_ms(void) {
    FILETIME ft; /* 100 ns units since 1601-01-01 */
    GetSystemTimeAsFileTime(&ft);
    return (((uint64_t)ft.dwHighDateTime << 32 | ft.dwLowDateTime) / 10000u) - 11644473600000u;
}
#else
RTWS_API uint64_t rtws_time_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

RTWS_API uint64_t rtws_time_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
#endif

RTWS_API int rtws_time_until_ms(uint64_t deadline_ms, uint64_t now_ms) {
    if (deadline_ms == UINT64_MAX) return -1;
    if (deadline_ms <= now_ms) return 0;
    if (deadline_ms - now_ms > (uint64_t)INT32_MAX) return INT32_MAX;
    return (int)(deadline_ms - now_ms);
}

#if !defined(RTWS_NO_JSON)
/* Days since 1970-01-01 to a proleptic Gregorian date counted in 400-year
   eras of 146097 days, with years starting in March so that the leap day
   comes last (the civil_from_days method, H. Hinnant). */
RTWS_API size_t rtws_time_format_iso(int64_t ms, char *out, size_t cap) {
    int64_t days, sod, z, era, doe, yoe, y, doy, mp, d, m;
    int64_t f[7];
    static const char lay[] = "0000-00-00T00:00:00.000Z";
    static const unsigned char width[7] = {4, 2, 2, 2, 2, 2, 3};
    size_t i, k = 0, j;
    if (cap < 25 || ms < 0) return 0;
    days = ms / 86400000;
    sod = ms % 86400000;
    z = days + 719468;
    era = z / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2) y++;
    if (y > 9999) return 0;
    f[0] = y, f[1] = m, f[2] = d, f[3] = sod / 3600000, f[4] = sod / 60000 % 60;
    f[5] = sod / 1000 % 60, f[6] = sod % 1000;
    memcpy(out, lay, sizeof lay);
    for (i = 0; i < 7; i++) { /* each field right-aligned in its digits of lay */
        k += width[i];
        for (j = 0; j < width[i]; j++, f[i] /= 10) out[k - 1 - j] = (char)('0' + f[i] % 10);
        k++; /* the separator */
    }
    return 24;
}
#endif /* !RTWS_NO_JSON */

/* SHA-1 (FIPS 180-4); only the handshake's Sec-WebSocket-Accept needs it. */
static uint32_t rtws__rol(uint32_t x, unsigned n) { return (x << n) | (x >> (32 - n)); }

static void rtws__sha1_block(uint32_t st[5], const uint8_t *b) {
    uint32_t w[80], a = st[0], bb = st[1], c = st[2], d = st[3], e = st[4], f, k, t;
    unsigned i;
    for (i = 0; i < 16; i++)
        w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 |
               (uint32_t)b[4 * i + 2] << 8 | (uint32_t)b[4 * i + 3];
    for (; i < 80; i++) w[i] = rtws__rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    for (i = 0; i < 80; i++) {
        if (i < 20) {
            f = (bb & c) | (~bb & d);
            k = 0x5A827999u;
        } else if (i < 40) {
            f = bb ^ c ^ d;
            k = 0x6ED9EBA1u;
        } else if (i < 60) {
            f = (bb & c) | (bb & d) | (c & d);
            k = 0x8F1BBCDCu;
        } else {
            f = bb ^ c ^ d;
            k = 0xCA62C1D6u;
        }
        t = rtws__rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rtws__rol(bb, 30);
        bb = a;
        a = t;
    }
    st[0] += a;
    st[1] += bb;
    st[2] += c;
    st[3] += d;
    st[4] += e;
}

RTWS_API void rtws_sha1(const void *data, size_t len, uint8_t out[20]) {
    uint32_t st[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
    const uint8_t *p = (const uint8_t *)data;
    uint8_t blk[64];
    uint64_t bits = (uint64_t)len * 8u;
    size_t i, rest;
    for (; len >= 64; p += 64, len -= 64) rtws__sha1_block(st, p);
    rest = len;
    memset(blk, 0, sizeof blk);
    if (rest) memcpy(blk, p, rest);
    blk[rest] = 0x80;
    if (rest >= 56) {
        rtws__sha1_block(st, blk);
        memset(blk, 0, sizeof blk);
    }
    for (i = 0; i < 8; i++) blk[63 - i] = (uint8_t)(bits >> (8 * i));
    rtws__sha1_block(st, blk);
    for (i = 0; i < 20; i++) out[i] = (uint8_t)(st[i / 4] >> (24 - 8 * (i % 4)));
}

static const uint32_t rtws__k256[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u,
    0xab1c5ed5u, 0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu,
    0x9bdc06a7u, 0xc19bf174u, 0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu,
    0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau, 0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u,
    0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu,
    0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u, 0xa2bfe8a1u, 0xa81a664bu,
    0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u, 0x19a4c116u,
    0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u,
    0xc67178f2u};

static uint32_t rtws__ror(uint32_t x, unsigned n) { return (x >> n) | (x << (32 - n)); }

static void rtws__sha256_block(uint32_t st[8], const uint8_t *b) {
    uint32_t w[64], v[8], t1, t2;
    unsigned i;
    for (i = 0; i < 16; i++)
        w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 |
               (uint32_t)b[4 * i + 2] << 8 | (uint32_t)b[4 * i + 3];
    for (; i < 64; i++) {
        uint32_t s0 = rtws__ror(w[i - 15], 7) ^ rtws__ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rtws__ror(w[i - 2], 17) ^ rtws__ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    for (i = 0; i < 8; i++) v[i] = st[i];
    for (i = 0; i < 64; i++) {
        uint32_t S1 = rtws__ror(v[4], 6) ^ rtws__ror(v[4], 11) ^ rtws__ror(v[4], 25);
        uint32_t ch = (v[4] & v[5]) ^ (~v[4] & v[6]);
        uint32_t S0 = rtws__ror(v[0], 2) ^ rtws__ror(v[0], 13) ^ rtws__ror(v[0], 22);
        uint32_t mj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
        t1 = v[7] + S1 + ch + rtws__k256[i] + w[i];
        t2 = S0 + mj;
        v[7] = v[6];
        v[6] = v[5];
        v[5] = v[4];
        v[4] = v[3] + t1;
        v[3] = v[2];
        v[2] = v[1];
        v[1] = v[0];
        v[0] = t1 + t2;
    }
    for (i = 0; i < 8; i++) st[i] += v[i];
}

/* Streaming SHA-256: HMAC hashes key pad and message without a copy. */
typedef struct rtws__sha256_ctx {
    uint32_t st[8];
    uint8_t buf[64];
    uint64_t total;
} rtws__sha256_ctx;

static void rtws__sha256_init(rtws__sha256_ctx *x) {
    static const uint32_t iv[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                   0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
    memcpy(x->st, iv, sizeof iv);
    x->total = 0;
}

static void rtws__sha256_update(rtws__sha256_ctx *x, const void *data, size_t len) {
    const uint8_t *p = (const uint8_t *)data;
    size_t have = (size_t)(x->total % 64);
    x->total += len;
    if (have) {
        size_t k = 64 - have < len ? 64 - have : len;
        memcpy(x->buf + have, p, k);
        p += k;
        len -= k;
        if (have + k < 64) return;
        rtws__sha256_block(x->st, x->buf);
    }
    for (; len >= 64; p += 64, len -= 64) rtws__sha256_block(x->st, p);
    if (len) memcpy(x->buf, p, len);
}

static void rtws__sha256_final(rtws__sha256_ctx *x, uint8_t out[32]) {
    uint64_t bits = x->total * 8u;
    size_t have = (size_t)(x->total % 64), i;
    x->buf[have++] = 0x80;
    if (have > 56) {
        memset(x->buf + have, 0, 64 - have);
        rtws__sha256_block(x->st, x->buf);
        have = 0;
    }
    memset(x->buf + have, 0, 56 - have);
    for (i = 0; i < 8; i++) x->buf[63 - i] = (uint8_t)(bits >> (8 * i));
    rtws__sha256_block(x->st, x->buf);
    for (i = 0; i < 32; i++) out[i] = (uint8_t)(x->st[i / 4] >> (24 - 8 * (i % 4)));
}

RTWS_API void rtws_sha256(const void *data, size_t len, uint8_t out[32]) {
    rtws__sha256_ctx x;
    rtws__sha256_init(&x);
    rtws__sha256_update(&x, data, len);
    rtws__sha256_final(&x, out);
}

RTWS_API void rtws_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                               uint8_t out[32]) {
    uint8_t k[64], pad[64], inner[32];
    rtws__sha256_ctx x;
    size_t i;
    memset(k, 0, sizeof k);
    if (key_len > 64) rtws_sha256(key, key_len, k); /* RFC 2104: long keys are hashed */
    else if (key_len) memcpy(k, key, key_len);
    for (i = 0; i < 64; i++) pad[i] = (uint8_t)(k[i] ^ 0x36);
    rtws__sha256_init(&x);
    rtws__sha256_update(&x, pad, 64);
    rtws__sha256_update(&x, msg, msg_len);
    rtws__sha256_final(&x, inner);
    for (i = 0; i < 64; i++) pad[i] = (uint8_t)(k[i] ^ 0x5c);
    rtws__sha256_init(&x);
    rtws__sha256_update(&x, pad, 64);
    rtws__sha256_update(&x, inner, 32);
    rtws__sha256_final(&x, out);
}

RTWS_API int rtws_ct_equal(const void *a, const void *b, size_t n) {
    const volatile uint8_t *x = (const volatile uint8_t *)a, *y = (const volatile uint8_t *)b;
    uint8_t d = 0;
    size_t i;
    for (i = 0; i < n; i++) d = (uint8_t)(d | (x[i] ^ y[i]));
    return d == 0;
}

static const char rtws__b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The encoder of both alphabets (the caller checked cap): abc is the
   alphabet, pad 1 pads the last group with '=' (RFC 4648 §4), 0 does not
   (base64url as JWT uses it, §5). */
static size_t rtws__b64_encode(const uint8_t *in, size_t len, char *out, const char *abc,
                               int pad) {
    size_t i, o = 0;
    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
        out[o++] = abc[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0u);
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        if (i + 1 < len) out[o++] = abc[(v >> 6) & 63];
        else if (pad) out[o++] = '=';
        if (pad) out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

RTWS_API size_t rtws_base64_encode(const uint8_t *in, size_t len, char *out, size_t cap) {
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3) return 0;
    if (cap < (len + 2) / 3 * 4 + 1) return 0;
    return rtws__b64_encode(in, len, out, rtws__b64, 1);
}

static int rtws__b64val(char ch) {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

RTWS_API size_t rtws_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap) {
    size_t i, o = 0;
    if (len % 4) return (size_t)-1;
    for (i = 0; i < len; i += 4) {
        int v[4], j, pad = 0;
        uint32_t w;
        for (j = 0; j < 4; j++) {
            if (in[i + (size_t)j] == '=' && i + 4 == len && j >= 2) {
                v[j] = 0;
                pad++;
            } else {
                if (pad) return (size_t)-1; /* '=' only at the very end */
                v[j] = rtws__b64val(in[i + (size_t)j]);
                if (v[j] < 0) return (size_t)-1;
            }
        }
        w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        /* unused bits in the last group must be zero, so each value has one encoding */
        if ((pad == 1 && (w & 0xFF)) || (pad == 2 && (w & 0xFFFF))) return (size_t)-1;
        if (o + 3 - (size_t)pad > cap) return (size_t)-1;
        out[o++] = (uint8_t)(w >> 16);
        if (pad < 2) out[o++] = (uint8_t)(w >> 8);
        if (pad < 1) out[o++] = (uint8_t)w;
    }
    return o;
}

static const char rtws__b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

RTWS_API size_t rtws_base64url_encode(const uint8_t *in, size_t len, char *out, size_t cap) {
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3) return 0;
    if (cap < len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0) + 1) return 0;
    return rtws__b64_encode(in, len, out, rtws__b64url, 0);
}

RTWS_API size_t rtws_base64url_decode(const char *in, size_t len, uint8_t *out, size_t cap) {
    size_t i, o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (i = 0; i < len; i++) {
        char ch = in[i];
        int v;
        if (ch == '+' || ch == '/') return (size_t)-1;
        if (ch == '-') ch = '+';
        else if (ch == '_') ch = '/';
        v = rtws__b64val(ch);
        if (v < 0) return (size_t)-1;
        acc = (acc << 6 | (uint32_t)v) & 0xFFFFu;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap) return (size_t)-1;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (len % 4 == 1 || (acc & ((1u << bits) - 1))) return (size_t)-1; /* no slack bits */
    return o;
}

/* ---- memory budget ---- */

RTWS_API void rtws_budget_init(rtws_budget *b, size_t limit) {
    memset(b, 0, sizeof *b);
    b->limit = limit;
}

RTWS_API void rtws_budget_charge(rtws_budget *b, size_t n) {
    b->used = n > SIZE_MAX - b->used ? SIZE_MAX : b->used + n;
    if (b->used > b->peak) b->peak = b->used;
}

RTWS_API void rtws_budget_credit(rtws_budget *b, size_t n) {
    RTWS_ASSERT(n <= b->used); /* gave back more than was charged */
    b->used = n > b->used ? 0 : b->used - n;
}

static int rtws__budget_fits(const rtws_budget *b, size_t n) {
    return !b->limit || (b->used <= b->limit && n <= b->limit - b->used);
}

RTWS_API int rtws_budget_make_room(rtws_budget *b, size_t n) {
    if (rtws__budget_fits(b, n)) return 1;
    if (b->reclaim && !b->in_reclaim_) {
        b->in_reclaim_ = 1;
        b->reclaim(b, n, b->reclaim_user);
        b->in_reclaim_ = 0;
    }
    return rtws__budget_fits(b, n);
}

RTWS_API unsigned rtws_budget_get_level(const rtws_budget *b) {
    size_t l = b->limit;
    if (!l) return RTWS_BUDGET_OK;
    if (b->used >= l) return RTWS_BUDGET_FULL;
    if (b->used >= l - l / 8) return RTWS_BUDGET_SHED_HISTORY;
    if (b->used >= l - l / 4) return RTWS_BUDGET_NO_NEW;
    return RTWS_BUDGET_OK;
}

/* === layer 1: frame ===================================================== */

/* The frame parser's one decoder and one rule set: rtws_frame_header_decode
   and rtws_frame_header_check run them on an rtws_frame_header,
   rtws_frame_parser_feed and rtws_conn (layer 3) through rtws__frame_begin
   on the frame they read. */
static rtws_err rtws__frame_decode(const uint8_t *p, size_t n, rtws__frame_rx *f, size_t *header_len) {
    size_t need = 2;
    uint64_t len;
    if (n < 2) return RTWS_EAGAIN;
    f->fin = (uint8_t)(p[0] >> 7);
    f->rsv = (uint8_t)((p[0] >> 4) & 7);
    f->opcode = (uint8_t)(p[0] & 15);
    f->masked = (uint8_t)(p[1] >> 7);
    len = p[1] & 127u;
    if (len == 126) need += 2;
    else if (len == 127) need += 8;
    if (f->masked) need += 4;
    if (n < need) return RTWS_EAGAIN;
    if (len == 126) {
        len = (uint64_t)p[2] << 8 | p[3];
        if (len < 126) return RTWS_ERR_PROTOCOL; /* §5.2: the minimal number of bytes MUST be used */
    } else if (len == 127) {
        unsigned i;
        len = 0;
        for (i = 0; i < 8; i++) len = len << 8 | p[2 + i];
        if (len >> 63) return RTWS_ERR_PROTOCOL; /* §5.2: the most significant bit MUST be 0 */
        if (len <= 0xFFFF) return RTWS_ERR_PROTOCOL;
    }
    if (f->masked) memcpy(f->mask, p + need - 4, 4);
    else memset(f->mask, 0, 4);
    f->len = len;
    *header_len = need;
    return RTWS_OK;
}

/* RSV bits in rsv_ok are allowed on the first frame of a data message (an
   extension's: permessage-deflate's RSV1 is 4). */
static rtws_err rtws__frame_check(const rtws__frame_rx *f, rtws_role role, int in_message,
                                  uint64_t max_frame, unsigned rsv_ok) {
    /* §5.2: RSV bits only for an extension that was negotiated */
    if (f->rsv && ((f->rsv & ~rsv_ok) || (f->opcode != RTWS_OP_TEXT && f->opcode != RTWS_OP_BINARY)))
        return RTWS_ERR_PROTOCOL;
    /* §5.1: a client masks every frame, a server masks none */
    if (role == RTWS_SERVER ? !f->masked : f->masked) return RTWS_ERR_PROTOCOL;
    switch (f->opcode) {
    case RTWS_OP_CONT:
        if (!in_message) return RTWS_ERR_PROTOCOL;
        break;
    case RTWS_OP_TEXT:
    case RTWS_OP_BINARY:
        if (in_message) return RTWS_ERR_PROTOCOL; /* §5.4: a new message inside one */
        break;
    case RTWS_OP_CLOSE:
    case RTWS_OP_PING:
    case RTWS_OP_PONG:
        /* §5.5: control frames are <= 125 bytes and never fragmented */
        if (!f->fin || f->len > 125) return RTWS_ERR_PROTOCOL;
        return RTWS_OK;
    default:
        return RTWS_ERR_PROTOCOL; /* reserved opcodes 3-7, 0xB-0xF */
    }
    if (max_frame && f->len > max_frame) return RTWS_ERR_TOO_BIG;
    return RTWS_OK;
}

RTWS_API rtws_err rtws_frame_header_decode(const uint8_t *p, size_t n, rtws_frame_header *h) {
    rtws__frame_rx f;
    size_t hl = 0;
    rtws_err e = rtws__frame_decode(p, n, &f, &hl);
    if (e != RTWS_OK) return e;
    h->fin = f.fin;
    h->rsv = f.rsv;
    h->opcode = f.opcode;
    h->masked = f.masked;
    memcpy(h->mask, f.mask, 4);
    h->len = f.len;
    h->header_len = hl;
    return RTWS_OK;
}

RTWS_API rtws_err rtws_frame_header_check(const rtws_frame_header *h, rtws_role role, int in_message,
                                   uint64_t max_frame) {
    rtws__frame_rx f;
    f.len = h->len;
    f.done = 0;
    memcpy(f.mask, h->mask, 4);
    f.fin = h->fin;
    f.rsv = h->rsv;
    f.opcode = h->opcode;
    f.masked = h->masked;
    return rtws__frame_check(&f, role, in_message, max_frame, 0);
}

RTWS_API size_t rtws_frame_header_encode(uint8_t *out, int fin, rtws_opcode op, uint64_t len,
                                         const uint8_t mask[4]) {
    size_t n = 2;
    out[0] = (uint8_t)((fin ? 0x80 : 0) | ((unsigned)op & 15u));
    if (len < 126) {
        out[1] = (uint8_t)len;
    } else if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        unsigned i;
        out[1] = 127;
        for (i = 0; i < 8; i++) out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        out[1] |= 0x80;
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

/* §5.3: octet i of the payload is XORed with octet i mod 4 of the key. The
   bulk runs on 8-byte words (memcpy loads compile to plain moves, unaligned
   ones included, and let the compiler vectorise); only the last 0-7 bytes
   go byte by byte. */
RTWS_API size_t rtws_frame_mask(uint8_t *p, size_t n, const uint8_t key[4], size_t pos) {
    uint8_t k[8];
    uint64_t kw;
    size_t i;
    pos &= 3;
    if (n >= 8) { /* unaligned 8-byte loads are fine: memcpy makes them legal */
        for (i = 0; i < 8; i++) k[i] = key[(pos + i) & 3];
        memcpy(&kw, k, 8);
        for (; n >= 32; n -= 32, p += 32) {
            uint64_t w0, w1, w2, w3;
            memcpy(&w0, p, 8);
            memcpy(&w1, p + 8, 8);
            memcpy(&w2, p + 16, 8);
            memcpy(&w3, p + 24, 8);
            w0 ^= kw;
            w1 ^= kw;
            w2 ^= kw;
            w3 ^= kw;
            memcpy(p, &w0, 8);
            memcpy(p + 8, &w1, 8);
            memcpy(p + 16, &w2, 8);
            memcpy(p + 24, &w3, 8);
        }
        for (; n >= 8; n -= 8, p += 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            w ^= kw;
            memcpy(p, &w, 8);
        }
    }
    while (n--) {
        *p++ ^= key[pos];
        pos = (pos + 1) & 3;
    }
    return pos;
}

/* UTF-8 state: 0 between code points, else (bytes still needed) << 16 |
   (lowest allowed next byte) << 8 | (highest allowed next byte). */
#define RTWS__UTF8_BAD 0xFFFFFFFFu
#define RTWS__UTF8_ST(need, lo, hi) ((uint32_t)(need) << 16 | (uint32_t)(lo) << 8 | (uint32_t)(hi))

/* RFC 3629 §4: the state after each kind of first byte. The first
   continuation byte's range rules out overlongs, surrogates and code points
   above U+10FFFF. */
static const uint32_t rtws__utf8_first[8] = {
    RTWS__UTF8_BAD,                /* 0: 80-BF (continuations), C0, C1 (overlong), F5-FF */
    RTWS__UTF8_ST(1, 0x80, 0xBF),  /* 1: C2-DF */
    RTWS__UTF8_ST(2, 0xA0, 0xBF),  /* 2: E0, not E0 80-9F (overlong) */
    RTWS__UTF8_ST(2, 0x80, 0xBF),  /* 3: E1-EC, EE, EF */
    RTWS__UTF8_ST(2, 0x80, 0x9F),  /* 4: ED, not ED A0-BF (surrogates) */
    RTWS__UTF8_ST(3, 0x90, 0xBF),  /* 5: F0, not F0 80-8F (overlong) */
    RTWS__UTF8_ST(3, 0x80, 0xBF),  /* 6: F1-F3 */
    RTWS__UTF8_ST(3, 0x80, 0x8F)}; /* 7: F4, not F4 90-BF (above U+10FFFF) */
/* The kind of each byte 80-FF */
static const uint8_t rtws__utf8_kind[128] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 80-8F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 90-9F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* A0-AF */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* B0-BF */
    0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* C0-CF */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* D0-DF */
    2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 3, 3,  /* E0-EF */
    5, 6, 6, 6, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}; /* F0-FF */

/* The one definition of valid UTF-8 in rtws: the state after byte b in state
   st, or RTWS__UTF8_BAD. rtws_utf8_validate() runs it over a stream, the
   JSON parser and writer over each run of non-ASCII text (rtws__utf8_span).
   inline: the validator takes a step per byte, and without the hint gcc -O2
   may keep it out of line (it did with RTWS_STATIC), which made non-ASCII
   text validate several times slower. */
static inline uint32_t rtws__utf8_step(uint32_t st, unsigned b) {
    if (!st) return b < 0x80 ? 0 : rtws__utf8_first[rtws__utf8_kind[b - 0x80]];
    if (b < ((st >> 8) & 0xFF) || b > (st & 0xFF)) return RTWS__UTF8_BAD;
    st -= 1u << 16;
    return (st >> 16) ? RTWS__UTF8_ST(st >> 16, 0x80, 0xBF) : 0;
}

/* Length of the longest prefix of p[0..e) made of whole, valid code points
   above U+007F; 0 when the code point at p is invalid, cut off by e or ASCII.
   A call takes a whole run of non-ASCII text. Kept out of line: inlined, it
   cost the JSON parser registers (and time) on plain ASCII too. */
#if !defined(RTWS_NO_JSON) /* its only user */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static size_t rtws__utf8_span(const uint8_t *p, const uint8_t *e) {
    const uint8_t *q = p, *cp = p; /* cp: where the code point in progress starts */
    uint32_t st = 0;
    for (; q < e; q++) {
        if (!st) {
            if (*q < 0x80) return (size_t)(q - p);
            cp = q;
        }
        st = rtws__utf8_step(st, *q);
        if (st == RTWS__UTF8_BAD) return (size_t)(cp - p);
    }
    return (size_t)((st ? cp : q) - p);
}
#endif

RTWS_API rtws_err rtws_utf8_validate(uint32_t *state, const uint8_t *p, size_t n,
                                     size_t *bad_off) {
    uint32_t st = *state, next;
    size_t i = 0;
    while (i < n) {
        if (st == 0 && p[i] < 0x80) {
            /* ASCII fast path, 16 bytes at a time */
            while (i + 16 <= n) {
                uint64_t w, w2;
                memcpy(&w, p + i, 8);
                memcpy(&w2, p + i + 8, 8);
                if ((w | w2) & 0x8080808080808080ull) break;
                i += 16;
            }
            while (i < n && p[i] < 0x80) i++;
            continue;
        }
        next = rtws__utf8_step(st, p[i]);
        if (next == RTWS__UTF8_BAD) {
            *state = st;
            if (bad_off) *bad_off = i;
            return RTWS_ERR_UTF8;
        }
        st = next;
        i++;
    }
    *state = st;
    return RTWS_OK;
}

RTWS_API int rtws_close_code_valid(unsigned code) {
    /* §7.4.1/§7.4.2 and the IANA registry: 1000-1003, 1007-1011 (1012-1014 are
       registered since), 3000-4999 for libraries and applications. 1004-1006
       and 1015 must never be sent; 0-999 and the rest of 1000-2999 are not used. */
    if (code >= 1000 && code <= 1003) return 1;
    if (code >= 1007 && code <= 1014) return 1;
    return code >= 3000 && code <= 4999;
}

/* The frame parser's two steps, run by rtws_frame_parser_feed and by
   rtws_conn (layer 3) alike. Begins the frame whose header starts at p[0..n):
   decodes it into *f and applies the rules of role (RSV bits in rsv_ok
   allowed on the first frame of a data message: an extension's); on RTWS_OK
   the header took *header_len bytes and f's payload starts. Returns
   RTWS_EAGAIN while the header is incomplete, else what rtws_frame_header_decode
   or rtws_frame_header_check return. */
static rtws_err rtws__frame_begin(rtws__frame_rx *f, const uint8_t *p, size_t n, rtws_role role,
                                  int in_message, uint64_t max_frame, unsigned rsv_ok,
                                  size_t *header_len) {
    rtws_err e = rtws__frame_decode(p, n, f, header_len);
    if (e != RTWS_OK) return e;
    f->done = 0;
    return rtws__frame_check(f, role, in_message, max_frame, rsv_ok);
}

/* Unmasks the next n payload bytes p[0..n) of f (n no more than
   f->len - f->done). */
static void rtws__frame_unmask(rtws__frame_rx *f, uint8_t *p, size_t n) {
    if (f->masked) rtws_frame_mask(p, n, f->mask, (size_t)f->done & 3u);
    f->done += n;
}

RTWS_API void rtws_frame_parser_init(rtws_frame_parser *fp, rtws_role role, uint64_t max_frame) {
    rtws__frame_parser_priv *p = &fp->priv_;
    memset(p, 0, sizeof *p);
    p->role = role == RTWS_SERVER ? RTWS_SERVER : RTWS_CLIENT;
    p->max_frame = max_frame;
}

RTWS_API void rtws_frame_parser_set_rsv(rtws_frame_parser *fp, unsigned rsv_first) {
    fp->priv_.rsv_ok = (uint8_t)(rsv_first & 7u);
}

RTWS_API rtws_err rtws_frame_parser_feed(rtws_frame_parser *fp, uint8_t *data, size_t len, size_t *used,
                                  rtws_frame_piece *piece) {
    rtws__frame_parser_priv *p = &fp->priv_;
    size_t off = 0, take;
    *used = 0;
    memset(piece, 0, sizeof *piece);
    if (p->err) return p->err; /* sticky */
    if (!p->have_h) {
        rtws_err e;
        size_t hl = 0;
        if (p->hlen == 0 && rtws__frame_begin(&p->rx, data, len, p->role, p->in_message, p->max_frame,
                                              p->rsv_ok, &hl) == RTWS_OK) {
            off = hl; /* the whole header in data: no copy */
        } else {
            /* buffer just enough header bytes: never more than the header needs */
            for (;;) {
                if (off == len) {
                    *used = off;
                    return RTWS_EAGAIN;
                }
                p->hbuf[p->hlen++] = data[off++];
                e = rtws__frame_begin(&p->rx, p->hbuf, p->hlen, p->role, p->in_message, p->max_frame,
                                      p->rsv_ok, &hl);
                if (e == RTWS_OK) break;
                if (e != RTWS_EAGAIN) {
                    p->err = e;
                    *used = off;
                    return e;
                }
            }
            p->hlen = 0;
        }
        p->have_h = 1;
        p->h.fin = p->rx.fin;
        p->h.rsv = p->rx.rsv;
        p->h.opcode = p->rx.opcode;
        p->h.masked = p->rx.masked;
        memcpy(p->h.mask, p->rx.mask, 4);
        p->h.len = p->rx.len;
        p->h.header_len = hl;
        if (p->rx.opcode < 8) p->in_message = !p->rx.fin;
        piece->frame_start = 1;
    }
    take = (size_t)RTWS__MIN((uint64_t)(len - off), p->rx.len - p->rx.done);
    piece->h = &p->h;
    piece->data = data + off;
    piece->len = take;
    rtws__frame_unmask(&p->rx, data + off, take);
    off += take;
    if (p->rx.done == p->rx.len) {
        piece->frame_end = 1;
        p->have_h = 0;
    }
    *used = off;
    if (!piece->frame_start && piece->len == 0 && !piece->frame_end) return RTWS_EAGAIN;
    return RTWS_OK;
}

/* === layer 1: deflate =================================================== */
#if !defined(RTWS_NO_DEFLATE)

RTWS_API const char *rtws_z_err_str(int err) {
    switch (err) {
#define RTWS__CASE(name, value, text)                                                              \
    case value:                                                                                    \
        return text;
        RTWS__Z_ERRORS(RTWS__CASE)
#undef RTWS__CASE
    default:
        return "unknown deflate status";
    }
}

/* RFC 1951 §3.2.5: base and extra bits of length symbols 257..285 and of
   distance symbols 0..29; §3.2.7: the order code-length code lengths come in. */
static const uint16_t rtws__z_lbase[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,
                                           15, 17, 19, 23, 27, 31, 35, 43, 51,  59,
                                           67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t rtws__z_lext[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                         2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t rtws__z_dbase[30] = {1,    2,    3,    4,    5,    7,     9,     13,
                                           17,   25,   33,   49,   65,   97,    129,   193,
                                           257,  385,  513,  769,  1025, 1537,  2049,  3073,
                                           4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t rtws__z_dext[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                         6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
static const uint8_t rtws__z_clorder[19] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                            11, 4,  12, 3, 13, 2, 14, 1, 15};

static int rtws__z_wbits_ok(const rtws_z_config *cfg) {
    return !cfg || cfg->window_bits == 0 || (cfg->window_bits >= 8 && cfg->window_bits <= 15);
}
static unsigned rtws__z_wbits(const rtws_z_config *cfg) {
    return cfg && cfg->window_bits ? cfg->window_bits : 15;
}
static unsigned rtws__z_rev(unsigned code, unsigned len) { /* len 1..16 */
    code = ((code & 0x5555u) << 1) | ((code >> 1) & 0x5555u);
    code = ((code & 0x3333u) << 2) | ((code >> 2) & 0x3333u);
    code = ((code & 0x0F0Fu) << 4) | ((code >> 4) & 0x0F0Fu);
    code = ((code & 0x00FFu) << 8) | ((code >> 8) & 0x00FFu);
    return code >> (16 - len);
}
static uint64_t rtws__z_load64(const uint8_t *p) {
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

/* --- inflate -------------------------------------------------------------- */

/* A decoding table entry: bits 0-7 the bits it consumes, 8-15 what it is
   (RTWS__Z_LIT: a literal or code-length symbol; RTWS__Z_BASE + n: a length or
   distance base with n extra bits; RTWS__Z_LINK + n: a second-level table of
   n index bits; end of block; invalid), 16-31 the value. Codes up to ROOT
   bits long resolve with one lookup; longer ones take a second. */
#define RTWS__Z_LIT 0u
#define RTWS__Z_BASE 16u
#define RTWS__Z_LINK 64u
#define RTWS__Z_EOB 96u
#define RTWS__Z_BAD 128u
#define RTWS__Z_E(op, bits, val) ((uint32_t)(val) << 16 | (uint32_t)(op) << 8 | (uint32_t)(bits))
#define RTWS__Z_LROOT 10u
#define RTWS__Z_DROOT 8u
/* Worst cases: a second-level table of 2^k entries needs at least k + 1 codes
   below it, so 286 codes fill at most 1024 + 47 * 32 + 8 entries and 30 codes
   at most 256 + 3 * 128 + 32 (checked while building, never trusted). */
#define RTWS__Z_LCAP 2536u
#define RTWS__Z_DCAP 672u
enum { RTWS__Z_KCL, RTWS__Z_KLIT, RTWS__Z_KDIST };

static uint32_t rtws__z_entry(int kind, unsigned sym, unsigned bits) {
    if (kind == RTWS__Z_KCL) return RTWS__Z_E(RTWS__Z_LIT, bits, sym);
    if (kind == RTWS__Z_KDIST)
        return sym < 30 ? RTWS__Z_E(RTWS__Z_BASE + rtws__z_dext[sym], bits, rtws__z_dbase[sym])
                        : RTWS__Z_E(RTWS__Z_BAD, bits, 0);
    if (sym < 256) return RTWS__Z_E(RTWS__Z_LIT, bits, sym);
    if (sym == 256) return RTWS__Z_E(RTWS__Z_EOB, bits, 0);
    if (sym < 286)
        return RTWS__Z_E(RTWS__Z_BASE + rtws__z_lext[sym - 257], bits, rtws__z_lbase[sym - 257]);
    return RTWS__Z_E(RTWS__Z_BAD, bits, 0);
}

/* Builds the canonical Huffman decoding table (RFC 1951 §3.2.2) for lens[0..n)
   into tab (cap entries, root index bits). A code must be complete, except
   that a single code of one bit (lengths and distances) and no code at all
   (distances: a block of literals only) are allowed, as zlib allows. */
static rtws_z_err rtws__z_build(uint32_t *tab, unsigned cap, const uint8_t *lens, unsigned n,
                                unsigned root, int kind) {
    unsigned count[16], offs[16], len, sym, i, maxlen = 0, used = 1u << root, code = 0, k, cur;
    uint16_t sorted[320];
    uint8_t pmax[1u << RTWS__Z_LROOT];
    int left = 1;
    memset(count, 0, sizeof count);
    for (sym = 0; sym < n; sym++) count[lens[sym]]++;
    for (len = 1; len < 16; len++) {
        if (count[len]) maxlen = len;
        left = left * 2 - (int)count[len];
        if (left < 0) return RTWS_Z_ERR_TREE_OVER;
    }
    /* a complete code fills every entry: only the allowed incomplete ones
       (one code, or none) leave entries that must read as invalid */
    if (left > 0)
        for (i = 0; i < used; i++) tab[i] = RTWS__Z_E(RTWS__Z_BAD, root, 0);
    if (maxlen == 0) return kind == RTWS__Z_KDIST ? RTWS_Z_OK : RTWS_Z_ERR_TREE_INCOMPLETE;
    if (left > 0 && (kind == RTWS__Z_KCL || maxlen != 1)) return RTWS_Z_ERR_TREE_INCOMPLETE;
    offs[1] = 0;
    for (len = 1; len < 15; len++) offs[len + 1] = offs[len] + count[len];
    for (sym = 0; sym < n; sym++)
        if (lens[sym]) sorted[offs[lens[sym]]++] = (uint16_t)sym;
    /* pass 1: the longest code under each root prefix sizes its subtable */
    memset(pmax, 0, maxlen > root ? sizeof pmax : 0);
    len = 0;
    for (i = 0; maxlen > root && i < n - count[0]; i++) {
        unsigned l = lens[sorted[i]];
        if (len) code <<= l - len;
        len = l;
        if (l > root) {
            unsigned p = rtws__z_rev(code, l) & ((1u << root) - 1);
            if (pmax[p] < l) pmax[p] = (uint8_t)l;
        }
        code++;
    }
    /* pass 2: fill. The root table grows with the code length: each code of
       length l <= root is stored once, in a table of 2^l entries, which is
       then doubled (copied after itself) until it has the next length's
       size; a code's copies are where the bits beyond it vary */
    code = 0; /* bit-reversed here: a longer code only adds zeros at its top */
    cur = RTWS__MIN(lens[sorted[0]], root);
    for (i = 0; i < n - count[0]; i++) {
        unsigned s = sorted[i], l = lens[s], r = code;
        uint32_t e;
        for (; cur < l && cur < root; cur++) memcpy(tab + (1u << cur), tab, sizeof *tab << cur);
        if (l <= root) {
            tab[r] = rtws__z_entry(kind, s, l);
        } else {
            unsigned p = r & ((1u << root) - 1), sub = (pmax[p] & 15u) - root, base;
            if (!(pmax[p] & 16u)) { /* its subtable is not made yet */
                pmax[p] |= 16u;
                if (used + (1u << sub) > cap) return RTWS_Z_ERR_TREE_OVER; /* cannot happen */
                tab[p] = RTWS__Z_E(RTWS__Z_LINK + sub, root, used);
                for (k = 0; left > 0 && k < (1u << sub); k++)
                    tab[used + k] = RTWS__Z_E(RTWS__Z_BAD, sub, 0);
                used += 1u << sub;
            }
            base = tab[p] >> 16;
            e = rtws__z_entry(kind, s, l - root);
            for (k = r >> root; k < (1u << sub); k += 1u << (l - root)) tab[base + k] = e;
        }
        /* the next code: plus one, the carry running down the reversed bits */
        for (k = 1u << (l - 1); code & k; k >>= 1) {
        }
        code = k ? (code & (k - 1)) + k : 0;
    }
    for (; cur < root; cur++) memcpy(tab + (1u << cur), tab, sizeof *tab << cur);
    return RTWS_Z_OK;
}

/* The fixed code of RFC 1951 §3.2.6 */
static void rtws__z_fixed(rtws__inflate_priv *s) {
    unsigned i;
    for (i = 0; i < 288; i++) s->lens[i] = (uint8_t)(i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8);
    (void)rtws__z_build(s->ltab, RTWS__Z_LCAP, s->lens, 288, RTWS__Z_LROOT, RTWS__Z_KLIT);
    for (i = 0; i < 32; i++) s->lens[i] = 5;
    (void)rtws__z_build(s->dtab, RTWS__Z_DCAP, s->lens, 32, RTWS__Z_DROOT, RTWS__Z_KDIST);
    s->fixed = 1;
}

RTWS_API size_t rtws_inflate_mem_size(const rtws_z_config *cfg) {
    return (RTWS__Z_LCAP + RTWS__Z_DCAP) * sizeof(uint32_t) + ((size_t)1 << rtws__z_wbits(cfg));
}

enum {
    RTWS__ZI_HEAD, RTWS__ZI_STORED, RTWS__ZI_COPYRAW, RTWS__ZI_TABLE, RTWS__ZI_CLENS,
    RTWS__ZI_LENS, RTWS__ZI_LEN, RTWS__ZI_LIT, RTWS__ZI_LENEXT, RTWS__ZI_DIST,
    RTWS__ZI_DISTEXT, RTWS__ZI_COPY, RTWS__ZI_DONE
};

RTWS_API rtws_z_err rtws_inflate_init(rtws_inflate *z, const rtws_z_config *cfg, void *mem,
                                      size_t mem_len) {
    rtws__inflate_priv *s = &z->priv_;
    size_t need = rtws_inflate_mem_size(cfg);
    memset(z, 0, sizeof *z);
    if (!rtws__z_wbits_ok(cfg) || (mem && (mem_len < need || ((uintptr_t)mem & 3))))
        return RTWS_Z_ERR_INVALID;
    if (cfg) s->allocator = cfg->allocator;
    if (!mem) {
        mem = rtws__alloc(&s->allocator, need);
        if (!mem) return RTWS_Z_ERR_NOMEM;
        s->own_mem = 1;
    }
    s->mem = mem;
    s->ltab = (uint32_t *)mem;
    s->dtab = s->ltab + RTWS__Z_LCAP;
    s->win = (uint8_t *)(s->dtab + RTWS__Z_DCAP);
    s->wbits = rtws__z_wbits(cfg);
    s->max_output = cfg ? cfg->max_output : 0;
    rtws_inflate_reset(z, 0);
    return RTWS_Z_OK;
}

RTWS_API void rtws_inflate_reset(rtws_inflate *z, int keep_window) {
    rtws__inflate_priv *s = &z->priv_;
    s->state = RTWS__ZI_HEAD;
    s->err = 0;
    s->final = 0;
    s->bitbuf = 0;
    s->bitcnt = 0;
    s->total_out = 0;
    s->rep = 0;
    if (!keep_window) s->whave = s->wnext = 0;
}

RTWS_API void rtws_inflate_free(rtws_inflate *z) {
    rtws__inflate_priv *s = &z->priv_;
    if (s->own_mem) rtws__free(&s->allocator, s->mem);
    memset(z, 0, sizeof *z);
}

/* The last n bytes written to out this call join the window. */
static void rtws__z_keep(rtws__inflate_priv *s, const uint8_t *out, size_t n) {
    size_t w = (size_t)1 << s->wbits, first;
    if (n >= w) {
        memcpy(s->win, out + n - w, w);
        s->wnext = 0;
        s->whave = (unsigned)w;
        return;
    }
    first = RTWS__MIN(n, w - s->wnext);
    memcpy(s->win + s->wnext, out, first);
    memcpy(s->win, out + first, n - first);
    s->wnext = (unsigned)((s->wnext + n) & (w - 1));
    s->whave = (unsigned)RTWS__MIN((size_t)s->whave + n, w);
}

/* Copies min(len, room) bytes of a match at distance dist to op and returns
   that count; out is where this call's output began, and what lies further
   back comes from the window kept from earlier calls. */
static size_t rtws__z_match(const rtws__inflate_priv *s, const uint8_t *out, uint8_t *op,
                            size_t room, size_t len, size_t dist) {
    size_t n = RTWS__MIN(len, room), done = 0, made = (size_t)(op - out);
    if (dist > made) {
        size_t w = (size_t)1 << s->wbits, back = dist - made;
        size_t from = (s->wnext + w - back) & (w - 1);
        size_t first;
        done = RTWS__MIN(back, n);
        first = RTWS__MIN(done, w - from);
        memcpy(op, s->win + from, first);
        memcpy(op + first, s->win, done - first);
    }
    if (done < n) {
        const uint8_t *src = op + done - dist; /* at or after out: checked by the caller */
        uint8_t *dst = op + done;
        if (dist >= n - done)
            memcpy(dst, src, n - done);
        else /* overlapping: a byte at a time repeats the pattern */
            for (; done < n; done++) *dst++ = *src++;
    }
    return n;
}

RTWS_API rtws_z_err rtws_inflate_feed(rtws_inflate *z, const uint8_t *in, size_t in_len,
                                      size_t *in_used, uint8_t *out, size_t out_cap,
                                      size_t *out_len) {
    rtws__inflate_priv *s = &z->priv_;
    uint8_t none = 0;
    const uint8_t *ip, *iend;
    uint8_t *op, *oend;
    uint64_t bb = s->bitbuf;
    unsigned bc = s->bitcnt;
    int limited = 0;
    rtws_z_err r = RTWS_Z_OK;
    const unsigned lmask = (1u << RTWS__Z_LROOT) - 1, dmask = (1u << RTWS__Z_DROOT) - 1;
    *in_used = 0;
    *out_len = 0;
    if (!s->win || (!in && in_len) || (!out && out_cap)) return RTWS_Z_ERR_INVALID;
    if (!in) in = &none; /* no pointer arithmetic on NULL */
    if (!out) out = &none;
    ip = in;
    iend = in + in_len;
    op = out;
    if (s->err) return (rtws_z_err)s->err;
    if (s->state == RTWS__ZI_DONE) return RTWS_Z_END;
    if (s->max_output && s->max_output - s->total_out <= out_cap) {
        out_cap = (size_t)(s->max_output - s->total_out);
        limited = 1;
    }
    oend = out + out_cap;
#define RTWS__Z_NEED(n)                                                                            \
    while (bc < (n)) {                                                                             \
        if (ip == iend) goto need_input;                                                           \
        bb |= (uint64_t)*ip++ << bc;                                                               \
        bc += 8;                                                                                   \
    }
#define RTWS__Z_BITS(n) ((unsigned)(bb & ((1ull << (n)) - 1)))
#define RTWS__Z_DROP(n) (bb >>= (n), bc -= (n))
#define RTWS__Z_FAIL(e)                                                                            \
    do {                                                                                           \
        r = (e);                                                                                   \
        goto fail;                                                                                 \
    } while (0)
    for (;;) {
        switch (s->state) {
        case RTWS__ZI_HEAD:
            if (s->final) {
                size_t back = RTWS__MIN((size_t)(bc >> 3), (size_t)(ip - in));
                ip -= back; /* give back whole bytes read past the end */
                bc -= (unsigned)back * 8;
                bb &= (1ull << bc) - 1;
                s->state = RTWS__ZI_DONE;
                r = RTWS_Z_END;
                goto out;
            }
            RTWS__Z_NEED(3);
            s->final = (int)(bb & 1);
            switch (RTWS__Z_BITS(3) >> 1) {
            case 0:
                RTWS__Z_DROP(3);
                RTWS__Z_DROP(bc & 7);
                s->state = RTWS__ZI_STORED;
                break;
            case 1:
                RTWS__Z_DROP(3);
                if (!s->fixed) rtws__z_fixed(s);
                s->state = RTWS__ZI_LEN;
                break;
            case 2:
                RTWS__Z_DROP(3);
                s->state = RTWS__ZI_TABLE;
                break;
            default:
                RTWS__Z_FAIL(RTWS_Z_ERR_BLOCK_TYPE);
            }
            break;
        case RTWS__ZI_STORED:
            RTWS__Z_NEED(32);
            if ((bb & 0xFFFF) != ((~bb >> 16) & 0xFFFF)) RTWS__Z_FAIL(RTWS_Z_ERR_STORED_LEN);
            s->len = (unsigned)(bb & 0xFFFF);
            RTWS__Z_DROP(32);
            s->state = RTWS__ZI_COPYRAW;
            /* fall through */
        case RTWS__ZI_COPYRAW:
            while (s->len && bc >= 8) {
                if (op == oend) goto full;
                *op++ = (uint8_t)bb;
                RTWS__Z_DROP(8);
                s->len--;
            }
            if (s->len) {
                size_t n = RTWS__MIN((size_t)s->len, RTWS__MIN((size_t)(iend - ip), (size_t)(oend - op)));
                memcpy(op, ip, n);
                op += n;
                ip += n;
                s->len -= (unsigned)n;
                if (s->len) {
                    if (op == oend) goto full;
                    goto need_input;
                }
            }
            s->state = RTWS__ZI_HEAD;
            break;
        case RTWS__ZI_TABLE:
            RTWS__Z_NEED(14);
            s->nlen = 257 + RTWS__Z_BITS(5);
            s->ndist = 1 + ((unsigned)(bb >> 5) & 31);
            s->ncode = 4 + ((unsigned)(bb >> 10) & 15);
            RTWS__Z_DROP(14);
            if (s->nlen > 286 || s->ndist > 30) RTWS__Z_FAIL(RTWS_Z_ERR_TABLE_SIZE);
            s->have = 0;
            s->fixed = 0;
            memset(s->lens, 0, 19);
            s->state = RTWS__ZI_CLENS;
            /* fall through */
        case RTWS__ZI_CLENS:
            while (s->have < s->ncode) {
                RTWS__Z_NEED(3);
                s->lens[rtws__z_clorder[s->have++]] = (uint8_t)RTWS__Z_BITS(3);
                RTWS__Z_DROP(3);
            }
            /* the code-length code borrows the distance table until the lengths are read */
            r = rtws__z_build(s->dtab, RTWS__Z_DCAP, s->lens, 19, 7, RTWS__Z_KCL);
            if (r != RTWS_Z_OK) goto fail;
            s->have = 0;
            s->rep = 0;
            s->state = RTWS__ZI_LENS;
            /* fall through */
        case RTWS__ZI_LENS:
            while (s->have < s->nlen + s->ndist) {
                unsigned sym, nb, cnt, val;
                if (bc < 16 && iend - ip >= 8) { /* 56 bits or more at once */
                    bb |= rtws__z_load64(ip) << bc;
                    ip += (63 - bc) >> 3;
                    bc |= 56;
                }
                if (!s->rep) {
                    uint32_t e;
                    for (;;) {
                        e = s->dtab[bb & 127];
                        if ((e & 0xFF) <= bc) break;
                        if (ip == iend) goto need_input;
                        bb |= (uint64_t)*ip++ << bc;
                        bc += 8;
                    }
                    RTWS__Z_DROP(e & 0xFF);
                    sym = e >> 16;
                    if (sym < 16) {
                        s->lens[s->have++] = (uint8_t)sym;
                        continue;
                    }
                    s->rep = sym;
                }
                sym = s->rep;
                nb = sym == 16 ? 2 : sym == 17 ? 3 : 7;
                RTWS__Z_NEED(nb);
                cnt = (sym == 18 ? 11 : 3) + RTWS__Z_BITS(nb);
                RTWS__Z_DROP(nb);
                if (sym == 16 && s->have == 0) RTWS__Z_FAIL(RTWS_Z_ERR_CODE_LENGTHS);
                val = sym == 16 ? s->lens[s->have - 1] : 0;
                if (s->have + cnt > s->nlen + s->ndist) RTWS__Z_FAIL(RTWS_Z_ERR_CODE_LENGTHS);
                memset(s->lens + s->have, (int)val, cnt);
                s->have += cnt;
                s->rep = 0;
            }
            if (!s->lens[256]) RTWS__Z_FAIL(RTWS_Z_ERR_NO_END);
            r = rtws__z_build(s->ltab, RTWS__Z_LCAP, s->lens, s->nlen, RTWS__Z_LROOT, RTWS__Z_KLIT);
            if (r != RTWS_Z_OK) goto fail;
            r = rtws__z_build(s->dtab, RTWS__Z_DCAP, s->lens + s->nlen, s->ndist, RTWS__Z_DROOT,
                              RTWS__Z_KDIST);
            if (r != RTWS_Z_OK) goto fail;
            s->state = RTWS__ZI_LEN;
            /* fall through */
        case RTWS__ZI_LEN: {
            uint32_t e;
            unsigned o;
            /* fast loop: whole symbols, while 8 input bytes and 258 + 8 output bytes remain */
            while (iend - ip >= 8 && oend - op >= 266) {
                size_t len, dist;
                bb |= rtws__z_load64(ip) << bc;
                ip += (63 - bc) >> 3;
                bc |= 56;
                e = s->ltab[bb & lmask];
                o = (e >> 8) & 0xFF;
                if (o >= RTWS__Z_LINK && o < RTWS__Z_EOB) {
                    RTWS__Z_DROP(RTWS__Z_LROOT);
                    e = s->ltab[(e >> 16) + (unsigned)(bb & ((1u << (o - RTWS__Z_LINK)) - 1))];
                    o = (e >> 8) & 0xFF;
                }
                RTWS__Z_DROP(e & 0xFF);
                if (o == RTWS__Z_LIT) {
                    *op++ = (uint8_t)(e >> 16);
                    continue;
                }
                if (o == RTWS__Z_EOB) {
                    s->state = RTWS__ZI_HEAD;
                    break;
                }
                if (o >= RTWS__Z_BAD) RTWS__Z_FAIL(RTWS_Z_ERR_SYMBOL);
                len = (e >> 16) + RTWS__Z_BITS(o - RTWS__Z_BASE);
                RTWS__Z_DROP(o - RTWS__Z_BASE);
                e = s->dtab[bb & dmask];
                o = (e >> 8) & 0xFF;
                if (o >= RTWS__Z_LINK && o < RTWS__Z_EOB) {
                    RTWS__Z_DROP(RTWS__Z_DROOT);
                    e = s->dtab[(e >> 16) + (unsigned)(bb & ((1u << (o - RTWS__Z_LINK)) - 1))];
                    o = (e >> 8) & 0xFF;
                }
                RTWS__Z_DROP(e & 0xFF);
                if (o >= RTWS__Z_BAD) RTWS__Z_FAIL(RTWS_Z_ERR_SYMBOL);
                dist = (e >> 16) + RTWS__Z_BITS(o - RTWS__Z_BASE);
                RTWS__Z_DROP(o - RTWS__Z_BASE);
                if (dist > ((size_t)1 << s->wbits) || dist > s->whave + (size_t)(op - out))
                    RTWS__Z_FAIL(RTWS_Z_ERR_DISTANCE);
                if (dist <= (size_t)(op - out) && dist >= 8) {
                    const uint8_t *src = op - dist;
                    uint8_t *end = op + len;
                    do { /* 8 at a time: may write up to 7 bytes past end, inside oend */
                        memcpy(op, src, 8);
                        op += 8;
                        src += 8;
                    } while (op < end);
                    op = end;
                } else {
                    op += rtws__z_match(s, out, op, len, len, dist);
                }
            }
            { /* give back whole bytes the fast loop read ahead */
                size_t back = RTWS__MIN((size_t)(bc >> 3), (size_t)(ip - in));
                ip -= back;
                bc -= (unsigned)back * 8;
                bb &= (1ull << bc) - 1;
            }
            if (s->state != RTWS__ZI_LEN) break; /* end of block in the fast loop */
            for (;;) { /* one symbol, a byte of input at a time */
                e = s->ltab[bb & lmask];
                o = (e >> 8) & 0xFF;
                if (o >= RTWS__Z_LINK && o < RTWS__Z_EOB) {
                    if (bc >= RTWS__Z_LROOT) {
                        uint32_t e2 = s->ltab[(e >> 16) + (unsigned)((bb >> RTWS__Z_LROOT) &
                                                                     ((1u << (o - RTWS__Z_LINK)) - 1))];
                        if (RTWS__Z_LROOT + (e2 & 0xFF) <= bc) {
                            RTWS__Z_DROP(RTWS__Z_LROOT);
                            e = e2;
                            o = (e >> 8) & 0xFF;
                            break;
                        }
                    }
                } else if ((e & 0xFF) <= bc) {
                    break;
                }
                if (ip == iend) goto need_input;
                bb |= (uint64_t)*ip++ << bc;
                bc += 8;
            }
            RTWS__Z_DROP(e & 0xFF);
            if (o == RTWS__Z_LIT) {
                s->len = e >> 16;
                s->state = RTWS__ZI_LIT;
                break;
            }
            if (o == RTWS__Z_EOB) {
                s->state = RTWS__ZI_HEAD;
                break;
            }
            if (o >= RTWS__Z_BAD) RTWS__Z_FAIL(RTWS_Z_ERR_SYMBOL);
            s->len = e >> 16;
            s->extra = o - RTWS__Z_BASE;
            s->state = RTWS__ZI_LENEXT;
            break;
        }
        case RTWS__ZI_LIT:
            if (op == oend) goto full;
            *op++ = (uint8_t)s->len;
            s->state = RTWS__ZI_LEN;
            break;
        case RTWS__ZI_LENEXT:
            RTWS__Z_NEED(s->extra);
            s->len += RTWS__Z_BITS(s->extra);
            RTWS__Z_DROP(s->extra);
            s->state = RTWS__ZI_DIST;
            /* fall through */
        case RTWS__ZI_DIST: {
            uint32_t e;
            unsigned o;
            for (;;) {
                e = s->dtab[bb & dmask];
                o = (e >> 8) & 0xFF;
                if (o >= RTWS__Z_LINK && o < RTWS__Z_EOB) {
                    if (bc >= RTWS__Z_DROOT) {
                        uint32_t e2 = s->dtab[(e >> 16) + (unsigned)((bb >> RTWS__Z_DROOT) &
                                                                     ((1u << (o - RTWS__Z_LINK)) - 1))];
                        if (RTWS__Z_DROOT + (e2 & 0xFF) <= bc) {
                            RTWS__Z_DROP(RTWS__Z_DROOT);
                            e = e2;
                            o = (e >> 8) & 0xFF;
                            break;
                        }
                    }
                } else if ((e & 0xFF) <= bc) {
                    break;
                }
                if (ip == iend) goto need_input;
                bb |= (uint64_t)*ip++ << bc;
                bc += 8;
            }
            RTWS__Z_DROP(e & 0xFF);
            if (o >= RTWS__Z_BAD) RTWS__Z_FAIL(RTWS_Z_ERR_SYMBOL);
            s->dist = e >> 16;
            s->extra = o - RTWS__Z_BASE;
            s->state = RTWS__ZI_DISTEXT;
        }
            /* fall through */
        case RTWS__ZI_DISTEXT:
            RTWS__Z_NEED(s->extra);
            s->dist += RTWS__Z_BITS(s->extra);
            RTWS__Z_DROP(s->extra);
            if (s->dist > (1u << s->wbits) || s->dist > s->whave + (size_t)(op - out))
                RTWS__Z_FAIL(RTWS_Z_ERR_DISTANCE);
            s->state = RTWS__ZI_COPY;
            /* fall through */
        case RTWS__ZI_COPY:
            while (s->len) {
                size_t n;
                if (op == oend) goto full;
                n = rtws__z_match(s, out, op, (size_t)(oend - op), s->len, s->dist);
                op += n;
                s->len -= (unsigned)n;
            }
            s->state = RTWS__ZI_LEN;
            break;
        default:
            RTWS__Z_FAIL(RTWS_Z_ERR_INVALID);
        }
    }
full:
    r = limited ? RTWS_Z_ERR_LIMIT : RTWS_Z_FULL;
    if (r == RTWS_Z_ERR_LIMIT) s->err = r;
    goto out;
need_input:
    r = RTWS_Z_OK;
    goto out;
fail:
    s->err = r;
out:
    rtws__z_keep(s, out, (size_t)(op - out));
    s->total_out += (uint64_t)(op - out);
    s->bitbuf = bb;
    s->bitcnt = bc;
    *in_used = (size_t)(ip - in);
    *out_len = (size_t)(op - out);
    return r;
#undef RTWS__Z_NEED
#undef RTWS__Z_BITS
#undef RTWS__Z_DROP
#undef RTWS__Z_FAIL
}

/* --- deflate -------------------------------------------------------------- */

#define RTWS__Z_MIN_LOOKAHEAD 262u /* a longest match plus the next hash: 258 + 3 + 1 */
#define RTWS__Z_SYMS 8192u         /* symbols per block */
/* A block is written only when it is no bigger than its fixed-code form,
   which takes at most 31 bits a symbol (8 + 5 + 5 + 13), so this holds a
   block, the end-of-block code, the bits of the last one, and a flush. */
#define RTWS__Z_PEND (RTWS__Z_SYMS * 4u + 1024u)

/* zlib's tuning of the ten levels (good, lazy, nice, chain): levels 1-3
   take the first match found (lazy: longest match inserted into the hash),
   4-9 look one byte ahead for a longer one */
static const uint16_t rtws__z_levels[10][4] = {
    {8, 16, 128, 128}, {4, 4, 8, 4},       {4, 5, 16, 8},     {4, 6, 32, 32},
    {4, 4, 16, 16},    {8, 16, 32, 32},    {8, 16, 128, 128}, {8, 32, 128, 256},
    {32, 128, 258, 1024}, {32, 258, 258, 4096}};

static unsigned rtws__z_wbuf(unsigned wbits) { return wbits < 13 ? 8192u : 1u << wbits; }
static unsigned rtws__z_hbits(unsigned wbits) { return wbits < 13 ? wbits + 2 : 15; }

RTWS_API size_t rtws_deflate_mem_size(const rtws_z_config *cfg) {
    unsigned wb = rtws__z_wbits(cfg), wbuf = rtws__z_wbuf(wb);
    return ((size_t)1 << rtws__z_hbits(wb)) * 2 + (size_t)wbuf * 2 + RTWS__Z_SYMS * 3u +
           (size_t)wbuf * 2 + 16 + RTWS__Z_PEND;
}

/* The canonical codes of RFC 1951 §3.2.2 for lens[0..n), bit-reversed for
   writing (a Huffman code goes out most significant bit first). */
static void rtws__z_canon(const uint8_t *lens, unsigned n, uint16_t *codes) {
    unsigned cnt[16], next[16], code = 0, len, i;
    memset(cnt, 0, sizeof cnt);
    for (i = 0; i < n; i++) cnt[lens[i]]++;
    cnt[0] = 0;
    for (len = 1; len < 16; len++) next[len] = code = (code + cnt[len - 1]) << 1;
    for (i = 0; i < n; i++)
        codes[i] = lens[i] ? (uint16_t)rtws__z_rev(next[lens[i]]++, lens[i]) : 0;
}

/* Code lengths (at most limit bits) of a Huffman code for freq[0..n), and
   their canonical codes, bit-reversed for writing (RFC 1951 §3.2.2). Fewer
   than two symbols in use get two codes of one bit, as decoders expect. */
static void rtws__z_huff(const uint32_t *freq, unsigned n, unsigned limit, uint8_t *lens,
                         uint16_t *codes) {
    uint16_t sym[288], parent[576];
    uint32_t w[576];
    unsigned cnt[300], nsym = 0, i, j, k, a, b, len, maxd = 0, maxf = 0;
    memset(cnt, 0, sizeof cnt);
    for (i = 0; i < n; i++) {
        lens[i] = 0;
        if (freq[i]) sym[nsym++] = (uint16_t)i;
        if (freq[i] > maxf) maxf = freq[i];
    }
    for (i = 0; nsym < 2; i++)
        if (!freq[i]) sym[nsym++] = (uint16_t)i;
    for (k = 0; k == 0 || (maxf >> k); k += 6) { /* stable sort by frequency, 6 bits a pass */
        unsigned at[65];
        memset(at, 0, sizeof at);
        for (i = 0; i < nsym; i++) at[((freq[sym[i]] >> k) & 63) + 1]++;
        for (i = 1; i < 65; i++) at[i] += at[i - 1];
        for (i = 0; i < nsym; i++) parent[at[(freq[sym[i]] >> k) & 63]++] = sym[i];
        memcpy(sym, parent, nsym * sizeof sym[0]);
    }
    /* two queues: leaves in order, then internal nodes in the order made */
    for (i = 0; i < nsym; i++) w[i] = freq[sym[i]] ? freq[sym[i]] : 1;
    for (i = 0, j = nsym, k = nsym; k < 2 * nsym - 1; k++) {
        a = (i < nsym && (j >= k || w[i] <= w[j])) ? i++ : j++;
        b = (i < nsym && (j >= k || w[i] <= w[j])) ? i++ : j++;
        w[k] = w[a] + w[b];
        parent[a] = parent[b] = (uint16_t)k;
    }
    w[2 * nsym - 2] = 0; /* w becomes the depth */
    for (k = 2 * nsym - 2; k-- > 0;) {
        w[k] = w[parent[k]] + 1;
        if (k < nsym) {
            cnt[w[k]]++;
            if (w[k] > maxd) maxd = w[k];
        }
    }
    /* too deep: move pairs up (JPEG's Annex K.3 adjustment, Kraft sum kept) */
    for (i = maxd; i > limit; i--) {
        while (cnt[i] > 0) {
            j = i - 2;
            while (j > 0 && cnt[j] == 0) j--;
            cnt[i] -= 2;
            cnt[i - 1] += 1;
            cnt[j + 1] += 2;
            cnt[j] -= 1;
        }
    }
    /* the least frequent symbols get the longest codes */
    for (len = RTWS__MIN(maxd, limit), k = 0; len > 0; len--)
        for (i = 0; i < cnt[len]; i++) lens[sym[k++]] = (uint8_t)len;
    rtws__z_canon(lens, n, codes);
}

/* floor(log2(v)), v >= 1 */
static unsigned rtws__z_log2(unsigned v) {
#if defined(__GNUC__) || defined(__clang__)
    return 31u - (unsigned)__builtin_clz(v);
#else
    unsigned k = 0;
    while (v >>= 1) k++;
    return k;
#endif
}
/* RFC 1951 §3.2.5 by arithmetic, no tables to set up: the length symbol
   (minus 257) of a length l + 3, and the distance symbol of a distance.
   From 8 on, four length symbols (two distance ones) share each power of 2. */
static unsigned rtws__z_lsym(unsigned l) {
    unsigned k;
    if (l < 8) return l;
    if (l == 255) return 28;
    k = rtws__z_log2(l);
    return 4 * k - 4 + ((l >> (k - 2)) & 3);
}
static unsigned rtws__z_dsym(unsigned dist) {
    unsigned d = dist - 1, k;
    if (d < 4) return d;
    k = rtws__z_log2(d);
    return 2 * k + ((d >> (k - 1)) & 1);
}
/* The fixed code of a literal/length symbol (§3.2.6), bit-reversed for
   writing, with its length in bits 16-19. */
static unsigned rtws__z_fixed_code(unsigned c) {
    if (c < 144) return rtws__z_rev(0x30 + c, 8) | 8u << 16;
    if (c < 256) return rtws__z_rev(0x190 + c - 144, 9) | 9u << 16;
    if (c < 280) return rtws__z_rev(c - 256, 7) | 7u << 16;
    return rtws__z_rev(0xC0 + c - 280, 8) | 8u << 16;
}

RTWS_API rtws_z_err rtws_deflate_init(rtws_deflate *d, const rtws_z_config *cfg, void *mem,
                                      size_t mem_len) {
    rtws__deflate_priv *s = &d->priv_;
    size_t need = rtws_deflate_mem_size(cfg);
    int level = cfg && cfg->level ? cfg->level : RTWS_Z_DEFAULT;
    uint8_t *p;
    memset(d, 0, sizeof *d);
    if (!rtws__z_wbits_ok(cfg) || level < 1 || level > 9 ||
        (mem && (mem_len < need || ((uintptr_t)mem & 3))))
        return RTWS_Z_ERR_INVALID;
    if (cfg) s->allocator = cfg->allocator;
    if (!mem) {
        mem = rtws__alloc(&s->allocator, need);
        if (!mem) return RTWS_Z_ERR_NOMEM;
        s->own_mem = 1;
    }
    s->mem = mem;
    s->wbits = rtws__z_wbits(cfg);
    s->wbuf = rtws__z_wbuf(s->wbits);
    s->hbits = rtws__z_hbits(s->wbits);
    /* a match reaches back at most the window, and never past what a slide keeps */
    s->max_dist = RTWS__MIN(1u << s->wbits, s->wbuf - RTWS__Z_MIN_LOOKAHEAD);
    s->level = level;
    s->good = rtws__z_levels[level][0];
    s->lazy = rtws__z_levels[level][1];
    s->nice = rtws__z_levels[level][2];
    s->chain = rtws__z_levels[level][3];
    s->head = (uint16_t *)mem;
    s->prev = s->head + ((size_t)1 << s->hbits);
    s->sym_d = s->prev + s->wbuf;
    p = (uint8_t *)(s->sym_d + RTWS__Z_SYMS);
    s->sym_lc = p;
    s->win = p + RTWS__Z_SYMS;
    s->pend = s->win + (size_t)s->wbuf * 2 + 16;
    /* only the heads are cleared (by the reset): chain links and window
       bytes are set as data arrives (clean), so setting up costs little
       more for a small window (a small message) than for none */
    rtws_deflate_reset(d, 0);
    return RTWS_Z_OK;
}

RTWS_API void rtws_deflate_reset(rtws_deflate *d, int keep_window) {
    rtws__deflate_priv *s = &d->priv_;
    if (s->nsym || s->lookahead || s->match_avail || s->bitcnt || s->pend_out < s->pend_len)
        keep_window = 0; /* data the peer never saw is not history */
    s->strstart += s->lookahead;
    s->lookahead = 0;
    if (!keep_window) s->floor = s->strstart;
    if (!keep_window && (s->strstart == 0 || s->strstart >= s->wbuf)) {
        /* new, or nothing to keep: start (over) at 1, 0 being no position
           in the chains, with the heads cleared; cheaper than sliding window
           and chains later, and every message then starts alike */
        memset(s->head, 0, ((size_t)1 << s->hbits) * 2);
        s->strstart = s->floor = 1;
    }
    s->block_start = (long)s->strstart;
    s->nsym = 0;
    s->match_len = 2;
    s->match_avail = 0;
    s->bitbuf = 0;
    s->bitcnt = 0;
    s->pend_len = s->pend_out = 0;
    s->err = 0;
    s->flushed = 0;
    s->finished = 0;
    memset(s->lfreq, 0, sizeof s->lfreq);
    memset(s->dfreq, 0, sizeof s->dfreq);
}

RTWS_API void rtws_deflate_free(rtws_deflate *d) {
    rtws__deflate_priv *s = &d->priv_;
    if (s->own_mem) rtws__free(&s->allocator, s->mem);
    memset(d, 0, sizeof *d);
}

static void rtws__z_put(rtws__deflate_priv *s, unsigned v, unsigned n) {
    s->bitbuf |= (uint64_t)v << s->bitcnt;
    s->bitcnt += n;
    if (s->bitcnt >= 32) {
        uint8_t *p = s->pend + s->pend_len;
        p[0] = (uint8_t)s->bitbuf;
        p[1] = (uint8_t)(s->bitbuf >> 8);
        p[2] = (uint8_t)(s->bitbuf >> 16);
        p[3] = (uint8_t)(s->bitbuf >> 24);
        s->pend_len += 4;
        s->bitbuf >>= 32;
        s->bitcnt -= 32;
    }
}
/* Pads to a byte boundary with zero bits and moves every whole byte out. */
static void rtws__z_align(rtws__deflate_priv *s) {
    while (s->bitcnt > 0) {
        s->pend[s->pend_len++] = (uint8_t)s->bitbuf;
        s->bitbuf >>= 8;
        s->bitcnt = s->bitcnt > 8 ? s->bitcnt - 8 : 0;
    }
    s->bitbuf = 0;
}

/* The block's symbols and its end, in the dynamic code of s (fixed 0) or
   the fixed one. */
static void rtws__z_write_syms(rtws__deflate_priv *s, int fixed) {
    unsigned i;
    for (i = 0; i <= s->nsym; i++) {
        unsigned dist = i < s->nsym ? s->sym_d[i] : 0, c = i < s->nsym ? s->sym_lc[i] : 256, l = 0;
        if (dist) {
            l = rtws__z_lsym(c);
            c = 257 + l;
        }
        if (fixed) {
            unsigned f = rtws__z_fixed_code(c);
            rtws__z_put(s, f & 0xFFFF, f >> 16);
        } else {
            rtws__z_put(s, s->lcodes[c], s->llens[c]);
        }
        if (dist) {
            unsigned ds = rtws__z_dsym(dist), len = s->sym_lc[i];
            if (rtws__z_lext[l]) rtws__z_put(s, len + 3 - rtws__z_lbase[l], rtws__z_lext[l]);
            if (fixed)
                rtws__z_put(s, rtws__z_rev(ds, 5), 5);
            else
                rtws__z_put(s, s->dcodes[ds], s->dlens[ds]);
            if (rtws__z_dext[ds]) rtws__z_put(s, dist - rtws__z_dbase[ds], rtws__z_dext[ds]);
        }
    }
}

/* Ends the block of the nsym symbols collected, in the smallest of its three
   forms: stored (when its bytes are still in the window), fixed or dynamic
   Huffman (RFC 1951 §3.2.3-3.2.7). */
static void rtws__z_block(rtws__deflate_priv *s, int final) {
    unsigned i, hlit, hdist, hclen, nrle = 0, bits_extra = 0;
    uint8_t lens[316], rle[316], rlex[316], cl_lens[19];
    uint16_t cl_codes[19];
    uint32_t cl_freq[19];
    uint64_t dyn, fix, stored = UINT64_MAX;
    size_t raw = 0;
    s->lfreq[256]++;
    /* extra bits cost the same in both Huffman forms */
    for (i = 0; i < 29; i++) bits_extra += s->lfreq[257 + i] * rtws__z_lext[i];
    for (i = 0; i < 30; i++) bits_extra += s->dfreq[i] * rtws__z_dext[i];
    rtws__z_huff(s->lfreq, 286, 15, s->llens, s->lcodes);
    rtws__z_huff(s->dfreq, 30, 15, s->dlens, s->dcodes);
    for (hlit = 286; hlit > 257 && !s->llens[hlit - 1]; hlit--) {
    }
    for (hdist = 30; hdist > 1 && !s->dlens[hdist - 1]; hdist--) {
    }
    memcpy(lens, s->llens, hlit);
    memcpy(lens + hlit, s->dlens, hdist);
    memset(cl_freq, 0, sizeof cl_freq);
    for (i = 0; i < hlit + hdist;) { /* run-length code the lengths (§3.2.7) */
        unsigned v = lens[i], run = 1;
        while (i + run < hlit + hdist && lens[i + run] == v) run++;
        if (v == 0 && run >= 3) {
            run = RTWS__MIN(run, 138u);
            rle[nrle] = (uint8_t)(run >= 11 ? 18 : 17);
            rlex[nrle++] = (uint8_t)(run >= 11 ? run - 11 : run - 3);
        } else if (v != 0 && run >= 4) {
            rle[nrle] = (uint8_t)v;
            rlex[nrle++] = 0;
            cl_freq[v]++;
            run = RTWS__MIN(run - 1, 6u);
            rle[nrle] = 16;
            rlex[nrle++] = (uint8_t)(run - 3);
            run++;
        } else {
            rle[nrle] = (uint8_t)v;
            rlex[nrle++] = 0;
            run = 1;
        }
        cl_freq[rle[nrle - 1]]++;
        i += run;
    }
    rtws__z_huff(cl_freq, 19, 7, cl_lens, cl_codes);
    for (hclen = 19; hclen > 4 && !cl_lens[rtws__z_clorder[hclen - 1]]; hclen--) {
    }
    dyn = 3 + 14 + 3 * (uint64_t)hclen + bits_extra;
    for (i = 0; i < nrle; i++)
        dyn += cl_lens[rle[i]] + (rle[i] == 16 ? 2u : rle[i] == 17 ? 3u : rle[i] == 18 ? 7u : 0u);
    fix = 3 + (uint64_t)bits_extra;
    for (i = 0; i < 286; i++) {
        dyn += (uint64_t)s->lfreq[i] * s->llens[i];
        fix += (uint64_t)s->lfreq[i] * (i < 144 ? 8u : i < 256 ? 9u : i < 280 ? 7u : 8u);
    }
    for (i = 0; i < 30; i++) {
        dyn += (uint64_t)s->dfreq[i] * s->dlens[i];
        fix += (uint64_t)s->dfreq[i] * 5;
    }
    if (s->block_start >= 0) {
        raw = s->strstart - s->match_avail - (size_t)s->block_start;
        /* per 65535-byte piece: 3 header bits, padding, LEN and NLEN, the bytes */
        stored = (raw / 65535 + 1) * (3 + 7 + 32) + raw * 8;
    }
    if (raw > 0 && stored < fix && stored < dyn) {
        const uint8_t *p = s->win + s->block_start;
        do {
            size_t n = RTWS__MIN(raw, (size_t)65535);
            rtws__z_put(s, (final && n == raw) ? 1u : 0u, 3);
            rtws__z_align(s);
            s->pend[s->pend_len++] = (uint8_t)n;
            s->pend[s->pend_len++] = (uint8_t)(n >> 8);
            s->pend[s->pend_len++] = (uint8_t)~n;
            s->pend[s->pend_len++] = (uint8_t)(~n >> 8);
            memcpy(s->pend + s->pend_len, p, n);
            s->pend_len += (unsigned)n;
            p += n;
            raw -= n;
        } while (raw > 0);
    } else if (fix <= dyn) {
        rtws__z_put(s, final ? 3u : 2u, 3);
        rtws__z_write_syms(s, 1);
    } else {
        rtws__z_put(s, final ? 5u : 4u, 3);
        rtws__z_put(s, hlit - 257, 5);
        rtws__z_put(s, hdist - 1, 5);
        rtws__z_put(s, hclen - 4, 4);
        for (i = 0; i < hclen; i++) rtws__z_put(s, cl_lens[rtws__z_clorder[i]], 3);
        for (i = 0; i < nrle; i++) {
            rtws__z_put(s, cl_codes[rle[i]], cl_lens[rle[i]]);
            if (rle[i] >= 16) rtws__z_put(s, rlex[i], rle[i] == 16 ? 2u : rle[i] == 17 ? 3u : 7u);
        }
        rtws__z_write_syms(s, 0);
    }
    s->nsym = 0;
    s->block_start = (long)(s->strstart - s->match_avail);
    memset(s->lfreq, 0, sizeof s->lfreq);
    memset(s->dfreq, 0, sizeof s->dfreq);
}

static unsigned rtws__z_hash(const rtws__deflate_priv *s, unsigned pos) {
    const uint8_t *p = s->win + pos;
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
    return (v * 0x9E3779B1u) >> (32 - s->hbits);
}
/* Puts pos at the head of its hash chain; returns the previous head. */
static unsigned rtws__z_insert(rtws__deflate_priv *s, unsigned pos) {
    unsigned h = rtws__z_hash(s, pos), cur = s->head[h];
    s->prev[pos & (s->wbuf - 1)] = (uint16_t)cur;
    s->head[h] = (uint16_t)pos;
    return cur;
}

/* The longest match for strstart along the chain from cur that beats best
   (and is at most the lookahead); sets match_start when it finds one. */
static unsigned rtws__z_longest(rtws__deflate_priv *s, unsigned cur, unsigned best) {
    const uint8_t *scan = s->win + s->strstart;
    unsigned max_len = RTWS__MIN(258u, s->lookahead), chain = s->chain;
    unsigned nice = RTWS__MIN(s->nice, max_len);
    unsigned lim = s->strstart > s->max_dist ? s->strstart - s->max_dist : 0;
    if (lim < s->floor) lim = s->floor;
    if (best >= s->good) chain >>= 2;
    if (best >= max_len) return best;
    while (cur > 0 && cur >= lim && cur < s->strstart) {
        const uint8_t *m = s->win + cur;
        if (m[best] == scan[best] && m[0] == scan[0] && m[1] == scan[1]) {
            unsigned len = 0;
            while (len < max_len) {
                uint64_t x = rtws__z_load64(m + len) ^ rtws__z_load64(scan + len);
                if (x) {
#if defined(__GNUC__) || defined(__clang__)
                    len += (unsigned)__builtin_ctzll(x) >> 3;
#else
                    while (!(x & 0xFF)) {
                        x >>= 8;
                        len++;
                    }
#endif
                    break;
                }
                len += 8;
            }
            if (len > max_len) len = max_len;
            if (len > best) {
                best = len;
                s->match_start = cur;
                if (len >= nice) break;
            }
        }
        if (--chain == 0) break;
        {
            unsigned nx = s->prev[cur & (s->wbuf - 1)];
            if (nx >= cur) break;
            cur = nx;
        }
    }
    return best;
}

static void rtws__z_lit(rtws__deflate_priv *s, unsigned c) {
    s->sym_d[s->nsym] = 0;
    s->sym_lc[s->nsym++] = (uint8_t)c;
    s->lfreq[c]++;
}
static void rtws__z_pair(rtws__deflate_priv *s, unsigned len, unsigned dist) {
    s->sym_d[s->nsym] = (uint16_t)dist;
    s->sym_lc[s->nsym++] = (uint8_t)(len - 3);
    s->lfreq[257 + rtws__z_lsym(len - 3)]++;
    s->dfreq[rtws__z_dsym(dist)]++;
}

/* LZ77 over the window until the lookahead runs short (to zero when
   flushing). Returns 1 when the block's symbol buffer is full. */
static int rtws__z_lz77(rtws__deflate_priv *s, int flush) {
    for (;;) {
        unsigned cur = 0, len;
        if (s->lookahead < RTWS__Z_MIN_LOOKAHEAD && (!flush || s->lookahead == 0)) break;
        if (s->nsym >= RTWS__Z_SYMS) return 1;
        if (s->lookahead >= 3) cur = rtws__z_insert(s, s->strstart);
        if (s->level <= 3) { /* greedy */
            len = cur ? rtws__z_longest(s, cur, 2) : 2;
            if (len >= 3) {
                unsigned end = s->strstart + s->lookahead, i;
                rtws__z_pair(s, len, s->strstart - s->match_start);
                if (len <= s->lazy)
                    for (i = 1; i < len && s->strstart + i + 3 <= end; i++)
                        (void)rtws__z_insert(s, s->strstart + i);
                s->strstart += len;
                s->lookahead -= len;
            } else {
                rtws__z_lit(s, s->win[s->strstart]);
                s->strstart++;
                s->lookahead--;
            }
            continue;
        }
        { /* lazy: emit the previous match unless this position has a longer one */
            unsigned prev_len = s->match_len, prev_start = s->match_start;
            s->match_len = 2;
            if (cur && prev_len < s->lazy) {
                s->match_len = rtws__z_longest(s, cur, prev_len < 2 ? 2 : prev_len);
                if (s->match_len <= prev_len) {
                    s->match_len = 2;
                    s->match_start = prev_start;
                } else if (s->match_len == 3 && s->strstart - s->match_start > 4096) {
                    s->match_len = 2; /* a far 3-byte match costs more than 3 literals */
                }
            }
            if (prev_len >= 3 && s->match_len <= prev_len) {
                unsigned end = s->strstart + s->lookahead, p;
                rtws__z_pair(s, prev_len, s->strstart - 1 - prev_start);
                /* strstart - 1 .. strstart + prev_len - 2 are covered; strstart is hashed */
                for (p = s->strstart + 1; p < s->strstart - 1 + prev_len; p++)
                    if (p + 3 <= end) (void)rtws__z_insert(s, p);
                s->lookahead -= prev_len - 1;
                s->strstart += prev_len - 1;
                s->match_avail = 0;
                s->match_len = 2;
            } else if (s->match_avail) {
                rtws__z_lit(s, s->win[s->strstart - 1]);
                s->strstart++;
                s->lookahead--;
            } else {
                s->match_avail = 1;
                s->strstart++;
                s->lookahead--;
            }
        }
    }
    if (flush && s->match_avail) {
        if (s->nsym >= RTWS__Z_SYMS) return 1;
        rtws__z_lit(s, s->win[s->strstart - 1]);
        s->match_avail = 0;
    }
    return 0;
}

/* Moves the upper half of the window down when the lookahead reaches the end. */
static void rtws__z_slide(rtws__deflate_priv *s) {
    unsigned w = s->wbuf, i, n = 1u << s->hbits;
    memmove(s->win, s->win + w, w);
    s->strstart -= w;
    s->floor = s->floor > w ? s->floor - w : 0;
    s->match_start = s->match_start > w ? s->match_start - w : 0;
    s->block_start = s->block_start >= (long)w ? s->block_start - (long)w : -1;
    for (i = 0; i < n; i++) s->head[i] = (uint16_t)(s->head[i] >= w ? s->head[i] - w : 0);
    for (i = 0; i < w; i++) s->prev[i] = (uint16_t)(s->prev[i] >= w ? s->prev[i] - w : 0);
}

RTWS_API rtws_z_err rtws_deflate_compress(rtws_deflate *d, const uint8_t *in, size_t in_len,
                                          size_t *in_used, uint8_t *out, size_t out_cap,
                                          size_t *out_len, rtws_z_flush flush) {
    rtws__deflate_priv *s = &d->priv_;
    uint8_t none = 0;
    const uint8_t *ip, *iend;
    uint8_t *op, *oend;
    rtws_z_err r;
    *in_used = 0;
    *out_len = 0;
    if (!s->win || (!in && in_len) || (!out && out_cap) || (unsigned)flush > RTWS_Z_FINISH)
        return RTWS_Z_ERR_INVALID;
    if (!in) in = &none; /* no pointer arithmetic on NULL */
    if (!out) out = &none;
    ip = in;
    iend = in + in_len;
    op = out;
    oend = out + out_cap;
    if (s->finished) return RTWS_Z_END;
    for (;;) {
        size_t n = RTWS__MIN((size_t)(s->pend_len - s->pend_out), (size_t)(oend - op));
        memcpy(op, s->pend + s->pend_out, n);
        op += n;
        s->pend_out += (unsigned)n;
        if (s->pend_out < s->pend_len) {
            r = RTWS_Z_FULL;
            break;
        }
        s->pend_len = s->pend_out = 0;
        if (s->flushed) { /* a flush is written out in full */
            s->flushed = 0;
            if (flush == RTWS_Z_FINISH) s->finished = 1;
            r = flush == RTWS_Z_FINISH ? RTWS_Z_END : RTWS_Z_OK;
            break;
        }
        if (ip < iend) {
            size_t room;
            if (s->strstart >= 2 * s->wbuf - RTWS__Z_MIN_LOOKAHEAD) rtws__z_slide(s);
            room = 2 * (size_t)s->wbuf - s->strstart - s->lookahead;
            n = RTWS__MIN(room, (size_t)(iend - ip));
            memcpy(s->win + s->strstart + s->lookahead, ip, n);
            ip += n;
            s->lookahead += (unsigned)n;
            { /* the bytes a match compare may read past the data; chain links
                 of positions new since init */
                unsigned end = s->strstart + s->lookahead, top = RTWS__MIN(end, s->wbuf);
                memset(s->win + end, 0, 8);
                if (top > s->clean) {
                    memset(s->prev + s->clean, 0, (size_t)(top - s->clean) * 2);
                    s->clean = top;
                }
            }
        }
        if (rtws__z_lz77(s, ip == iend && flush != RTWS_Z_NO_FLUSH)) {
            rtws__z_block(s, 0);
            continue;
        }
        if (ip < iend) continue;
        if (flush == RTWS_Z_NO_FLUSH) {
            r = RTWS_Z_OK;
            break;
        }
        if (s->nsym || flush == RTWS_Z_FINISH) rtws__z_block(s, flush == RTWS_Z_FINISH);
        if (flush == RTWS_Z_SYNC_FLUSH) { /* empty stored block: 00 00 ff ff once aligned */
            rtws__z_put(s, 0, 3);
            rtws__z_align(s);
            s->pend[s->pend_len++] = 0;
            s->pend[s->pend_len++] = 0;
            s->pend[s->pend_len++] = 0xFF;
            s->pend[s->pend_len++] = 0xFF;
        } else {
            rtws__z_align(s);
        }
        s->flushed = 1;
    }
    *in_used = (size_t)(ip - in);
    *out_len = (size_t)(op - out);
    return r;
}


/* --- RFC 7692 parameters ------------------------------------------------- */

static int rtws__pmd_tchar(char c) { /* RFC 7230 §3.2.6 tchar */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}
static size_t rtws__pmd_ws(const char *p, size_t i, size_t n) {
    while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
    return i;
}
static int rtws__pmd_is(const char *p, size_t n, const char *name) { /* case-insensitive */
    size_t i;
    for (i = 0; i < n; i++) {
        char a = p[i], b = name[i];
        if (!b) return 0;
        if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
        if (a != b) return 0;
    }
    return name[n] == 0;
}
/* window bits: "8".."15", no leading zero; 0 otherwise */
static uint8_t rtws__pmd_bits(const char *v, size_t n) {
    if (n == 1 && v[0] >= '8' && v[0] <= '9') return (uint8_t)(v[0] - '0');
    if (n == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5') return (uint8_t)(10 + v[1] - '0');
    return 0;
}

RTWS_API rtws_err rtws_pmd_parse(const char *value, size_t len, int is_response,
                                 rtws_pmd_offer *offers, size_t max, size_t *count,
                                 size_t *err_off) {
    size_t i = 0, found = 0;
    *count = 0;
    for (;;) {
        size_t t0, t1;
        int pmd;
        rtws_pmd_offer o;
        memset(&o, 0, sizeof o);
        i = rtws__pmd_ws(value, i, len);
        if (i < len && value[i] == ',') { /* an empty list element */
            i++;
            continue;
        }
        if (i == len) break;
        for (t0 = i; i < len && rtws__pmd_tchar(value[i]); i++) {
        }
        if (i == t0) goto syntax;
        pmd = rtws__pmd_is(value + t0, i - t0, "permessage-deflate");
        for (;;) { /* ; name [= value] */
            char vbuf[16];
            size_t n0, n1, vn = 0;
            int has_value = 0, too_long = 0;
            i = rtws__pmd_ws(value, i, len);
            if (i == len || value[i] == ',') break;
            if (value[i] != ';') goto syntax;
            i = rtws__pmd_ws(value, i + 1, len);
            for (n0 = i; i < len && rtws__pmd_tchar(value[i]); i++) {
            }
            if (i == n0) goto syntax;
            n1 = i;
            i = rtws__pmd_ws(value, i, len);
            if (i < len && value[i] == '=') {
                has_value = 1;
                i = rtws__pmd_ws(value, i + 1, len);
                if (i < len && value[i] == '"') { /* quoted-string, unescaped into vbuf */
                    for (i++;; i++) {
                        char c;
                        if (i == len) goto syntax;
                        c = value[i];
                        if (c == '"') break;
                        if (c == '\\') {
                            if (++i == len) goto syntax;
                            c = value[i];
                        }
                        /* RFC 6455 §9.1: the unescaped value must be a token */
                        if (!rtws__pmd_tchar(c)) goto syntax;
                        if (vn < sizeof vbuf) vbuf[vn++] = c;
                        else too_long = 1;
                    }
                    i++;
                    if (vn == 0) goto syntax;
                } else {
                    for (t1 = i; i < len && rtws__pmd_tchar(value[i]); i++) {
                        if (vn < sizeof vbuf) vbuf[vn++] = value[i];
                        else too_long = 1;
                    }
                    if (i == t1) goto syntax;
                }
            }
            if (!pmd || o.status != RTWS_PMD_OK) continue; /* checked, not interpreted */
            if (rtws__pmd_is(value + n0, n1 - n0, "server_no_context_takeover") ||
                rtws__pmd_is(value + n0, n1 - n0, "client_no_context_takeover")) {
                uint8_t *f = value[n0] == 's' || value[n0] == 'S' ? &o.server_no_context_takeover
                                                                   : &o.client_no_context_takeover;
                if (*f) o.status = RTWS_PMD_DUPLICATE;
                else if (has_value) o.status = RTWS_PMD_BAD_VALUE;
                *f = 1;
            } else if (rtws__pmd_is(value + n0, n1 - n0, "server_max_window_bits") ||
                       rtws__pmd_is(value + n0, n1 - n0, "client_max_window_bits")) {
                int server = value[n0] == 's' || value[n0] == 'S';
                uint8_t *f = server ? &o.server_max_window_bits : &o.client_max_window_bits;
                uint8_t bits = has_value && !too_long ? rtws__pmd_bits(vbuf, vn) : 0;
                if (*f) o.status = RTWS_PMD_DUPLICATE;
                else if (has_value && !bits) o.status = RTWS_PMD_BAD_VALUE;
                /* a value is required, except in a client's client_max_window_bits */
                else if (!has_value && (server || is_response)) o.status = RTWS_PMD_BAD_VALUE;
                *f = bits ? bits : (uint8_t)RTWS_PMD_BITS_ANY;
            } else {
                o.status = RTWS_PMD_UNKNOWN_PARAM;
            }
        }
        if (pmd) {
            if (found < max) offers[found] = o;
            found++;
        }
        if (i < len) i++; /* the comma */
    }
    *count = found;
    return RTWS_OK;
syntax:
    if (err_off) *err_off = i;
    *count = 0;
    return RTWS_ERR_SYNTAX;
}

#endif /* RTWS_NO_DEFLATE */

/* === layer 2: handshake ================================================= */

RTWS_API size_t rtws_http_head_end(const char *buf, size_t len, size_t *scanned) {
    /* resume 3 bytes back so a CRLFCRLF split across calls is still seen */
    size_t i = *scanned > 3 ? *scanned - 3 : 0;
    for (; i + 4 <= len; i++) {
        const char *q = (const char *)memchr(buf + i, '\r', len - i);
        if (!q) {
            i = len;
            break;
        }
        i = (size_t)(q - buf);
        if (i + 4 <= len && q[1] == '\n' && q[2] == '\r' && q[3] == '\n') {
            *scanned = i + 4;
            return i + 4;
        }
    }
    *scanned = len;
    return 0;
}

static int rtws__is_tchar(unsigned char ch) {
    /* RFC 9110 §5.6.2 token characters */
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return 1;
    return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static int rtws__lower(int ch) { return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch; }

static int rtws__str_ieq(rtws_str s, const char *z) {
    size_t i;
    for (i = 0; i < s.len; i++)
        if (!z[i] || rtws__lower((unsigned char)s.p[i]) != rtws__lower((unsigned char)z[i]))
            return 0;
    return z[i] == '\0';
}

/* Parses the header lines of a head from buf[off..len) into m. */
static rtws_err rtws__http_headers(const char *buf, size_t len, size_t off, rtws_http *m,
                                   size_t max_headers, size_t *err_off) {
    if (max_headers == 0 || max_headers > RTWS_MAX_HEADERS) max_headers = RTWS_MAX_HEADERS;
    m->nheaders = 0;
    for (;;) {
        size_t ns, ne, vs, ve;
        if (off + 2 > len) goto bad;
        if (buf[off] == '\r' && buf[off + 1] == '\n') {
            m->size = off + 2;
            return RTWS_OK;
        }
        ns = off;
        while (off < len && rtws__is_tchar((unsigned char)buf[off])) off++;
        ne = off;
        if (ne == ns || off >= len || buf[off] != ':') goto bad; /* also rejects obs-fold */
        off++;
        while (off < len && (buf[off] == ' ' || buf[off] == '\t')) off++;
        vs = off;
        while (off < len && buf[off] != '\r') {
            unsigned char ch = (unsigned char)buf[off];
            if ((ch < 0x20 && ch != '\t') || ch == 0x7F) goto bad;
            off++;
        }
        if (off + 1 >= len || buf[off + 1] != '\n') goto bad;
        ve = off;
        while (ve > vs && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t')) ve--;
        off += 2;
        if (m->nheaders == max_headers) {
            *err_off = ns;
            return RTWS_ERR_LIMIT;
        }
        m->headers[m->nheaders].name.p = buf + ns;
        m->headers[m->nheaders].name.len = ne - ns;
        m->headers[m->nheaders].value.p = buf + vs;
        m->headers[m->nheaders].value.len = ve - vs;
        m->nheaders++;
    }
bad:
    *err_off = off;
    return RTWS_ERR_SYNTAX;
}

/* "HTTP/1.x" at buf[off..]; returns the minor version or -1 */
static int rtws__http_version(const char *buf, size_t len, size_t off) {
    if (off + 8 > len || memcmp(buf + off, "HTTP/1.", 7) != 0) return -1;
    if (buf[off + 7] < '0' || buf[off + 7] > '9') return -1;
    return buf[off + 7] - '0';
}

#if !defined(RTWS_NO_SERVER) /* the request: a server reads it */
RTWS_API rtws_err rtws_http_parse_request(const char *buf, size_t len, rtws_http *req,
                                          size_t max_headers, size_t *err_off) {
    size_t off = 0, s, q;
    size_t dummy;
    if (!err_off) err_off = &dummy;
    memset(req, 0, sizeof *req);
    while (off < len && rtws__is_tchar((unsigned char)buf[off])) off++;
    if (off == 0 || off >= len || buf[off] != ' ') goto bad;
    req->method.p = buf;
    req->method.len = off;
    s = ++off;
    while (off < len && (unsigned char)buf[off] > 0x20 && buf[off] != 0x7F) off++;
    if (off == s || off >= len || buf[off] != ' ') goto bad;
    req->target.p = buf + s;
    req->target.len = off - s;
    for (q = s; q < off && buf[q] != '?'; q++) {
    }
    req->path.p = buf + s;
    req->path.len = q - s;
    req->query.p = q < off ? buf + q + 1 : buf + off;
    req->query.len = q < off ? off - q - 1 : 0;
    off++;
    req->minor = rtws__http_version(buf, len, off);
    if (req->minor < 0) goto bad;
    off += 8;
    if (off + 2 > len || buf[off] != '\r' || buf[off + 1] != '\n') goto bad;
    return rtws__http_headers(buf, len, off + 2, req, max_headers, err_off);
bad:
    *err_off = off;
    return RTWS_ERR_SYNTAX;
}
#endif /* !RTWS_NO_SERVER */

#if !defined(RTWS_NO_CLIENT) /* the response: a client reads it */
RTWS_API rtws_err rtws_http_parse_response(const char *buf, size_t len, rtws_http *res,
                                           size_t max_headers, size_t *err_off) {
    size_t off = 0, s;
    size_t dummy;
    if (!err_off) err_off = &dummy;
    memset(res, 0, sizeof *res);
    res->minor = rtws__http_version(buf, len, 0);
    if (res->minor < 0) goto bad;
    off = 8;
    if (off + 4 > len || buf[off] != ' ') goto bad;
    off++;
    for (s = off; off < s + 3; off++) {
        if (buf[off] < '0' || buf[off] > '9') goto bad;
        res->status = res->status * 10 + (buf[off] - '0');
    }
    /* RFC 9112 §4: exactly three digits, then a space (an empty reason
       without the space is tolerated) */
    if (off < len && buf[off] == ' ') off++;
    else if (off >= len || buf[off] != '\r') goto bad;
    s = off;
    while (off < len && buf[off] != '\r') {
        unsigned char ch = (unsigned char)buf[off];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7F) goto bad;
        off++;
    }
    if (off + 2 > len || buf[off + 1] != '\n') goto bad;
    res->reason.p = buf + s;
    res->reason.len = off - s;
    return rtws__http_headers(buf, len, off + 2, res, max_headers, err_off);
bad:
    *err_off = off;
    return RTWS_ERR_SYNTAX;
}
#endif /* !RTWS_NO_CLIENT */

RTWS_API const rtws_str *rtws_http_get_header(const rtws_http *m, const char *name) {
    size_t i;
    for (i = 0; i < m->nheaders; i++)
        if (rtws__str_ieq(m->headers[i].name, name)) return &m->headers[i].value;
    return NULL;
}

/* 1 when the comma list s holds token (case-insensitive, whitespace trimmed) */
static int rtws__list_has(rtws_str s, const char *token) {
    size_t i = 0;
    while (i < s.len) {
        size_t a, b;
        rtws_str t;
        while (i < s.len && (s.p[i] == ' ' || s.p[i] == '\t' || s.p[i] == ',')) i++;
        a = i;
        while (i < s.len && s.p[i] != ',') i++;
        b = i;
        while (b > a && (s.p[b - 1] == ' ' || s.p[b - 1] == '\t')) b--;
        t.p = s.p + a;
        t.len = b - a;
        if (t.len && rtws__str_ieq(t, token)) return 1;
    }
    return 0;
}

RTWS_API int rtws_http_has_token(const rtws_http *m, const char *name, const char *token) {
    size_t i;
    for (i = 0; i < m->nheaders; i++)
        if (rtws__str_ieq(m->headers[i].name, name) && rtws__list_has(m->headers[i].value, token))
            return 1;
    return 0;
}

#if !defined(RTWS_NO_SERVER) /* readers of a request */
static int rtws__pct_hex(int ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes p[0..n) ('+' as a space) into out[0..cap) when out is not
   NULL. Returns the decoded length, or (size_t)-1 for a bad escape. */
static size_t rtws__pct_decode(const char *p, size_t n, char *out, size_t cap) {
    size_t i, o = 0;
    for (i = 0; i < n; i++, o++) {
        int ch = (unsigned char)p[i];
        if (ch == '%') {
            int hi, lo;
            if (n - i < 3) return (size_t)-1; /* "%" or "%4" at the end */
            hi = rtws__pct_hex((unsigned char)p[i + 1]);
            lo = rtws__pct_hex((unsigned char)p[i + 2]);
            if (hi < 0 || lo < 0) return (size_t)-1;
            ch = hi << 4 | lo;
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (out && o < cap) out[o] = (char)ch;
    }
    return o;
}

RTWS_API int rtws_http_get_cookie(const rtws_http *req, const char *name, rtws_str *value) {
    size_t h, nl = strlen(name);
    value->p = "";
    value->len = 0;
    for (h = 0; h < req->nheaders; h++) {
        const char *p = req->headers[h].value.p, *end = p + req->headers[h].value.len;
        if (!rtws__str_ieq(req->headers[h].name, "Cookie")) continue;
        while (p < end) {
            const char *e = (const char *)memchr(p, ';', (size_t)(end - p)), *eq, *v, *ve;
            if (!e) e = end;
            while (p < e && (*p == ' ' || *p == '\t')) p++;
            eq = (const char *)memchr(p, '=', (size_t)(e - p));
            if (eq && (size_t)(eq - p) == nl && memcmp(p, name, nl) == 0) {
                v = eq + 1;
                ve = e;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
                if (ve - v >= 2 && *v == '"' && ve[-1] == '"') v++, ve--;
                value->p = v;
                value->len = (size_t)(ve - v);
                return 1;
            }
            p = e + 1;
        }
    }
    return 0;
}

RTWS_API int rtws_http_get_query(const rtws_http *req, const char *name, char *out, size_t cap,
                                 size_t *len) {
    const char *q = req->query.p;
    size_t i = 0, n = req->query.len, nl = strlen(name);
    if (len) *len = 0;
    if (out && cap) out[0] = '\0';
    while (i < n) {
        size_t s = i, k, e, vl;
        char key[256];
        while (i < n && q[i] != '&') i++;
        e = i++;
        for (k = s; k < e && q[k] != '='; k++) {
        }
        if (k == s) continue; /* "&&" or "=v" */
        /* the name, decoded; one longer than any name compared is no match */
        if (k - s > 3 * sizeof key) continue;
        vl = rtws__pct_decode(q + s, k - s, key, sizeof key);
        if (vl != nl || vl > sizeof key || memcmp(key, name, nl) != 0) continue;
        vl = k < e ? rtws__pct_decode(q + k + 1, e - k - 1, NULL, 0) : 0;
        if (vl == (size_t)-1) return RTWS_ERR_SYNTAX;
        if (len) *len = vl;
        if (!out) return 1;
        if (cap < vl + 1) return RTWS_ERR_NOSPACE;
        if (k < e) rtws__pct_decode(q + k + 1, e - k - 1, out, cap);
        out[vl] = '\0';
        return 1;
    }
    return 0;
}

RTWS_API int rtws_http_match(const rtws_http *req, const char *pattern, rtws_str *params,
                             size_t n_params) {
    const char *p = pattern, *sp, *path = req->path.p, *end = req->path.p + req->path.len;
    size_t n = 0;
    if (!p) return -1;
    sp = *p == '/' ? NULL : strchr(p, ' ');
    if (sp) { /* the method */
        size_t ml = (size_t)(sp - p);
        if (!(ml == 1 && *p == '*') &&
            (ml != req->method.len || !req->method.p || memcmp(p, req->method.p, ml) != 0))
            return -1;
        p = sp + 1;
    } else if (*p != '/') {
        return -1;
    }
    if (!path) path = end = "";
    while (*p) {
        if (*p == '{') {
            const char *e = strchr(p, '}'), *seg = path;
            if (!e || p[-1] != '/' || (e[1] && e[1] != '/') || n >= n_params) return -1;
            while (path < end && *path != '/') path++;
            if (path == seg) return -1; /* an empty segment */
            params[n].p = seg;
            params[n++].len = (size_t)(path - seg);
            p = e + 1;
        } else {
            if (path == end || *path != *p) return -1;
            path++;
            p++;
        }
    }
    return path == end ? (int)n : -1;
}
#endif /* !RTWS_NO_SERVER */

RTWS_API void rtws_upgrade_accept_key(const char *key, size_t key_len, char out[29]) {
    uint8_t buf[64 + 36], dig[20];
    if (key_len > 64) key_len = 64; /* callers pass checked 24-byte keys */
    memcpy(buf, key, key_len);
    memcpy(buf + key_len, RTWS__GUID, 36);
    rtws_sha1(buf, key_len + 36, dig);
    rtws_base64_encode(dig, 20, out, 29);
}

#if !defined(RTWS_NO_SERVER)
/* 1 when a header named name appears more than once */
static int rtws__http_repeated(const rtws_http *m, const char *name) {
    size_t i, n = 0;
    for (i = 0; i < m->nheaders; i++) n += (size_t)rtws__str_ieq(m->headers[i].name, name);
    return n > 1;
}

RTWS_API int rtws_http_check_upgrade(const rtws_http *req, rtws_upgrade *u) {
    const rtws_str *v;
    uint8_t raw[18];
    memset(u, 0, sizeof *u);
    u->status = 400;
    if (req->method.len != 3 || memcmp(req->method.p, "GET", 3) != 0) { /* case-sensitive */
        u->status = 405;
        u->reason = "the WebSocket handshake must use GET";
        return u->status;
    }
    if (req->minor < 1) {
        u->reason = "HTTP/1.1 or later is required";
        return u->status;
    }
    if (!rtws_http_get_header(req, "Host")) {
        u->reason = "missing Host header";
        return u->status;
    }
    /* RFC 9112 §3.2 (Host) and RFC 6455 §11.3.1 (the key): exactly one */
    if (rtws__http_repeated(req, "Host") || rtws__http_repeated(req, "Sec-WebSocket-Key")) {
        u->reason = "repeated Host or Sec-WebSocket-Key header";
        return u->status;
    }
    if (!rtws_http_has_token(req, "Upgrade", "websocket")) {
        u->status = 426;
        u->reason = "missing Upgrade: websocket";
        return u->status;
    }
    if (!rtws_http_has_token(req, "Connection", "Upgrade")) {
        u->reason = "Connection header lacks the Upgrade token";
        return u->status;
    }
    v = rtws_http_get_header(req, "Sec-WebSocket-Version");
    if (!v || v->len != 2 || v->p[0] != '1' || v->p[1] != '3') {
        u->status = 426; /* §4.4: answer with the versions we speak */
        u->reason = "unsupported Sec-WebSocket-Version (13 is)";
        return u->status;
    }
    v = rtws_http_get_header(req, "Sec-WebSocket-Key");
    if (!v || v->len != 24 || rtws_base64_decode(v->p, v->len, raw, sizeof raw) != 16) {
        u->reason = "Sec-WebSocket-Key must be base64 of 16 bytes";
        return u->status;
    }
    u->key = *v;
    v = rtws_http_get_header(req, "Sec-WebSocket-Protocol");
    if (v) u->protocols = *v;
    v = rtws_http_get_header(req, "Origin");
    if (v) u->origin = *v;
    u->status = 101;
    u->reason = "Switching Protocols";
    return u->status;
}
#endif /* !RTWS_NO_SERVER */

#if !defined(RTWS_NO_CLIENT)
/* ---- URLs (RFC 3986 §3, RFC 6455 §3, RFC 6874) ---- */

static int rtws__hexval(int ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    ch = rtws__lower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* RFC 3986 §2.3 unreserved: what a host name or a zone id may hold here */
static int rtws__is_unreserved(int ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

static rtws_err rtws__url_fail(rtws_url *u, size_t *err_off, size_t off, const char *why) {
    u->error = why;
    if (err_off) *err_off = off;
    return RTWS_ERR_URL;
}

/* s[0..n) as four decimal numbers 0-255 without leading zeros (a leading 0
   means octal to inet_aton). Returns 1, or 0 with *bad at the wrong byte. */
static int rtws__url_ipv4(const char *s, size_t n, size_t *bad) {
    size_t i = 0;
    int part;
    for (part = 0; part < 4; part++) {
        size_t st = i;
        unsigned v = 0;
        if (part > 0) {
            if (i >= n || s[i] != '.') break;
            st = ++i;
        }
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            v = v * 10 + (unsigned)(s[i] - '0');
            if (v > 255 || (i > st && s[st] == '0')) break;
            i++;
        }
        if (i == st || (i < n && s[i] >= '0' && s[i] <= '9')) break;
    }
    *bad = i;
    return part == 4 && i == n;
}

/* RFC 4291 §2.2 text form in s[0..n): up to eight groups of 1-4 hex digits,
   one "::" for a run of zero groups, the last two groups may be an IPv4
   address. Returns NULL, or the reason with *bad at the wrong byte. */
static const char *rtws__url_ipv6(const char *s, size_t n, size_t *bad) {
    size_t i = 0, bad4;
    int groups = 0, gap = 0;
    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        gap = 1;
        i = 2;
    }
    while (i < n) {
        size_t st = i;
        while (i < n && i - st < 5 && rtws__hexval((unsigned char)s[i]) >= 0) i++;
        if (i < n && s[i] == '.') { /* IPv4 tail */
            if (!rtws__url_ipv4(s + st, n - st, &bad4)) {
                *bad = st + bad4;
                return "bad IPv4 address (four decimal numbers 0-255, no leading zeros)";
            }
            groups += 2;
            i = n;
            break;
        }
        if (i == st) {
            *bad = i;
            return "malformed IPv6 address";
        }
        if (i - st > 4) {
            *bad = st + 4;
            return "IPv6 group of more than 4 hex digits";
        }
        groups++;
        if (i == n) break;
        if (s[i] != ':' || i + 1 == n) {
            *bad = i;
            return "malformed IPv6 address";
        }
        if (s[++i] == ':') {
            if (gap) {
                *bad = i;
                return "more than one '::' in an IPv6 address";
            }
            gap = 1;
            i++;
        }
    }
    if (gap ? groups > 7 : groups != 8) {
        *bad = n;
        return "IPv6 address with the wrong number of 16-bit groups";
    }
    return NULL;
}

/* [addr%25zone] with s at the '[' and e the end of the authority; sets
   u->host, u->zone, u->ipv6 and returns the offset after ']' */
static rtws_err rtws__url_bracket(const char *url, size_t s, size_t e, rtws_url *u,
                                  size_t *err_off, size_t *after) {
    size_t rb, a = s + 1, ae, zs, i, bad = 0;
    const char *why;
    for (rb = a; rb < e && url[rb] != ']'; rb++) {
    }
    if (rb == e)
        return rtws__url_fail(u, err_off, e, "unterminated IPv6 literal ('[' without ']')");
    if (a < rb && (url[a] == 'v' || url[a] == 'V'))
        return rtws__url_fail(u, err_off, a, "IPvFuture literals ([v1.x]) are not supported");
    for (ae = a; ae < rb && url[ae] != '%'; ae++) {
    }
    if (ae == a) return rtws__url_fail(u, err_off, a, "empty host");
    if ((why = rtws__url_ipv6(url + a, ae - a, &bad)) != NULL)
        return rtws__url_fail(u, err_off, a + bad, why);
    zs = rb;
    if (ae < rb) { /* RFC 6874 §2: "%25" then the id; a bare '%' is taken too */
        zs = ae + 1;
        if (zs + 2 <= rb && url[zs] == '2' && url[zs + 1] == '5') zs += 2;
        if (zs == rb) return rtws__url_fail(u, err_off, zs, "empty IPv6 zone id");
        if (rb - zs > 63) return rtws__url_fail(u, err_off, zs + 63, "IPv6 zone id over 63 bytes");
        for (i = zs; i < rb; i++)
            if (!rtws__is_unreserved((unsigned char)url[i]))
                return rtws__url_fail(u, err_off, i,
                                      "character not allowed in an IPv6 zone id "
                                      "(letters, digits, - . _ ~)");
    }
    u->host.p = url + a;
    u->host.len = ae - a;
    u->zone.p = url + zs;
    u->zone.len = rb - zs;
    u->ipv6 = 1;
    if (rb + 1 < e && url[rb + 1] != ':')
        return rtws__url_fail(u, err_off, rb + 1, "expected ':', '/', '?' or the end after ']'");
    *after = rb + 1;
    return RTWS_OK;
}

/* a host name or IPv4 address in url[s..e) */
static rtws_err rtws__url_name(const char *url, size_t s, size_t e, rtws_url *u, size_t *err_off) {
    size_t i, bad;
    int numeric = 1;
    if (e == s) return rtws__url_fail(u, err_off, s, "empty host");
    if (e - s > 255) return rtws__url_fail(u, err_off, s + 255, "host longer than 255 bytes");
    for (i = s; i < e; i++) {
        unsigned char ch = (unsigned char)url[i];
        if (!rtws__is_unreserved(ch))
            return rtws__url_fail(u, err_off, i,
                                  "character not allowed in a host name (letters, digits, "
                                  "- . _ ~)");
        if (ch != '.' && (ch < '0' || ch > '9')) numeric = 0;
    }
    /* no DNS name is all digits, so this is meant as an IPv4 address; odd
       forms (127.1, 0x7f.1, 010.0.0.1) mean different things to different
       resolvers and are refused */
    if (numeric && !rtws__url_ipv4(url + s, e - s, &bad))
        return rtws__url_fail(u, err_off, s + bad,
                              "bad IPv4 address (four decimal numbers 0-255, no leading zeros)");
    u->host.p = url + s;
    u->host.len = e - s;
    u->zone.p = url + e;
    u->zone.len = 0;
    return RTWS_OK;
}

/* ":port" at url[s..e) (s at the ':') */
static rtws_err rtws__url_port(const char *url, size_t s, size_t e, rtws_url *u, size_t *err_off) {
    size_t i;
    uint32_t v = 0;
    if (s + 1 == e) return rtws__url_fail(u, err_off, e, "empty port after ':'");
    for (i = s + 1; i < e; i++) {
        if (url[i] == ':' && !u->ipv6)
            return rtws__url_fail(u, err_off, i,
                                  "more than one ':' after the host (IPv6 addresses go in "
                                  "brackets: ws://[::1]:8080/)");
        if (url[i] < '0' || url[i] > '9')
            return rtws__url_fail(u, err_off, i, "port is not a decimal number");
        v = v * 10 + (uint32_t)(url[i] - '0');
        if (v > 65535) return rtws__url_fail(u, err_off, i, "port out of range (1-65535)");
    }
    if (v == 0) return rtws__url_fail(u, err_off, s + 1, "port out of range (1-65535)");
    u->port = (uint16_t)v;
    u->port_explicit = 1;
    return RTWS_OK;
}

RTWS_API rtws_err rtws_url_parse(const char *url, size_t len, rtws_url *u, size_t *err_off) {
    size_t i, colon, auth, ae, hs_end, q;
    rtws_err e;
    memset(u, 0, sizeof *u);
    u->scheme.p = u->host.p = u->zone.p = u->path.p = u->query.p = u->target.p = url;
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)url[i];
        if (ch <= 0x20 || ch >= 0x7F)
            return rtws__url_fail(u, err_off, i, "space, control character or non-ASCII byte");
        if (ch == '#')
            return rtws__url_fail(u, err_off, i, "fragment (#) in a WebSocket URL (RFC 6455 §3)");
    }
    /* RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
    for (colon = 0; colon < len; colon++) {
        int ch = (unsigned char)url[colon];
        if (ch == ':' && colon > 0) break;
        if (!((rtws__lower(ch) >= 'a' && rtws__lower(ch) <= 'z') ||
              (colon > 0 && ((ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == '.'))))
            return rtws__url_fail(u, err_off, colon, "missing scheme (ws:// or wss://)");
    }
    if (colon == len) return rtws__url_fail(u, err_off, len, "missing scheme (ws:// or wss://)");
    u->scheme.len = colon;
    if (rtws__str_ieq(u->scheme, "wss") || rtws__str_ieq(u->scheme, "https")) u->tls = 1;
    else if (!rtws__str_ieq(u->scheme, "ws") && !rtws__str_ieq(u->scheme, "http"))
        return rtws__url_fail(u, err_off, 0, "unsupported scheme (ws, wss, http or https)");
    u->port = u->tls ? 443 : 80;
    auth = colon + 3;
    if (auth > len || url[colon + 1] != '/' || url[colon + 2] != '/')
        return rtws__url_fail(u, err_off, colon + 1, "expected // after the scheme");
    for (ae = auth; ae < len && url[ae] != '/' && url[ae] != '?'; ae++)
        if (url[ae] == '@')
            return rtws__url_fail(u, err_off, ae, "userinfo (user@host) is not supported");
    if (auth < ae && url[auth] == '[') {
        if ((e = rtws__url_bracket(url, auth, ae, u, err_off, &hs_end)) != RTWS_OK) return e;
    } else {
        for (hs_end = auth; hs_end < ae && url[hs_end] != ':'; hs_end++) {
        }
        if ((e = rtws__url_name(url, auth, hs_end, u, err_off)) != RTWS_OK) return e;
    }
    if (hs_end < ae && (e = rtws__url_port(url, hs_end, ae, u, err_off)) != RTWS_OK) return e;
    for (i = ae; i < len; i++)
        if (url[i] == '%' && (i + 2 >= len || rtws__hexval((unsigned char)url[i + 1]) < 0 ||
                              rtws__hexval((unsigned char)url[i + 2]) < 0))
            return rtws__url_fail(u, err_off, i,
                                  "'%' not followed by two hex digits in the path or query");
    for (q = ae; q < len && url[q] != '?'; q++) {
    }
    u->path.p = url + ae;
    u->path.len = q - ae;
    u->query.p = url + (q < len ? q + 1 : len);
    u->query.len = q < len ? len - q - 1 : 0;
    u->target.p = url + ae;
    u->target.len = len - ae;
    if (err_off) *err_off = 0;
    return RTWS_OK;
}

/* appends s[0..n) at buf + off when it fits with a NUL after it */
static size_t rtws__url_put(char *buf, size_t cap, size_t off, const char *s, size_t n) {
    if (off + n < cap) memcpy(buf + off, s, n);
    return off + n;
}

static size_t rtws__url_end(char *buf, size_t cap, size_t n) {
    if (n < cap) buf[n] = '\0';
    else if (cap) buf[0] = '\0';
    return n;
}

RTWS_API size_t rtws_url_host_header(const rtws_url *u, char *buf, size_t cap) {
    char port[6];
    size_t n = 0, k = sizeof port;
    unsigned v = u->port;
    if (u->ipv6) n = rtws__url_put(buf, cap, n, "[", 1);
    n = rtws__url_put(buf, cap, n, u->host.p, u->host.len);
    if (u->ipv6) n = rtws__url_put(buf, cap, n, "]", 1);
    if (u->port != (u->tls ? 443 : 80)) {
        do {
            port[--k] = (char)('0' + v % 10);
        } while ((v /= 10) != 0);
        n = rtws__url_put(buf, cap, n, ":", 1);
        n = rtws__url_put(buf, cap, n, port + k, sizeof port - k);
    }
    return rtws__url_end(buf, cap, n);
}

RTWS_API size_t rtws_url_target(const rtws_url *u, char *buf, size_t cap) {
    size_t n = 0;
    if (u->path.len == 0) n = rtws__url_put(buf, cap, n, "/", 1);
    n = rtws__url_put(buf, cap, n, u->target.p, u->target.len);
    return rtws__url_end(buf, cap, n);
}

static int rtws__ieqn(const char *a, const char *b, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (rtws__lower((unsigned char)a[i]) != rtws__lower((unsigned char)b[i])) return 0;
    return 1;
}

/* RFC 3986 §5.2.4 on p[0..len) (a path starting with '/'), in place: the
   result is never longer. Returns its length. */
static size_t rtws__url_dots(char *p, size_t len) {
    size_t r = 0, w = 0;
    while (r < len) {
        size_t s = r + 1, e = s;
        while (e < len && p[e] != '/') e++;
        if (e - s == 2 && p[s] == '.' && p[s + 1] == '.') {
            while (w > 0 && p[--w] != '/') {
            }
            if (e == len) p[w++] = '/';
        } else if (e - s == 1 && p[s] == '.') {
            if (e == len) p[w++] = '/';
        } else {
            memmove(p + w, p + r, e - r);
            w += e - r;
        }
        r = e;
    }
    if (w == 0) p[w++] = '/';
    return w;
}

RTWS_API rtws_err rtws_url_resolve(const char *base, const char *ref, size_t len, char *out,
                                   size_t cap, size_t *out_len) {
    rtws_url b, u;
    size_t i, n = 0, p0, pe, qlen;
    const char *scheme, *auth;
    if (out_len) *out_len = 0;
    if (cap) out[0] = '\0';
    if (!base || !ref || rtws_url_parse(base, strlen(base), &b, NULL) != RTWS_OK)
        return RTWS_ERR_URL;
    for (i = 0; i < len && ref[i] != '#'; i++) {
    }
    len = i; /* the fragment is the client's own business (RFC 9110 §10.2.2) */
    for (i = 0; i < len; i++) {
        char ch = (char)rtws__lower((unsigned char)ref[i]);
        if (!((ch >= 'a' && ch <= 'z') || (i && ((ch >= '0' && ch <= '9') || ch == '+' ||
                                                 ch == '-' || ch == '.'))))
            break;
    }
    scheme = b.tls ? "wss" : "ws";
    if (i > 0 && i < len && ref[i] == ':') { /* absolute */
        if ((i == 2 && rtws__ieqn(ref, "ws", 2)) || (i == 4 && rtws__ieqn(ref, "http", 4)))
            scheme = "ws";
        else if ((i == 3 && rtws__ieqn(ref, "wss", 3)) || (i == 5 && rtws__ieqn(ref, "https", 5)))
            scheme = "wss";
        else
            return RTWS_ERR_URL;
        n = rtws__url_put(out, cap, n, scheme, strlen(scheme));
        n = rtws__url_put(out, cap, n, ref + i, len - i);
    } else if (len >= 2 && ref[0] == '/' && ref[1] == '/') { /* network-path */
        n = rtws__url_put(out, cap, n, scheme, strlen(scheme));
        n = rtws__url_put(out, cap, n, ":", 1);
        n = rtws__url_put(out, cap, n, ref, len);
    } else {
        auth = b.scheme.p + b.scheme.len + 3; /* "://" follows the scheme */
        n = rtws__url_put(out, cap, n, scheme, strlen(scheme));
        n = rtws__url_put(out, cap, n, "://", 3);
        n = rtws__url_put(out, cap, n, auth, (size_t)(b.target.p - auth));
        if (len == 0) {
            n = rtws__url_put(out, cap, n, "/", b.path.len ? 0 : 1);
            n = rtws__url_put(out, cap, n, b.target.p, b.target.len);
        } else if (ref[0] == '/') {
            n = rtws__url_put(out, cap, n, ref, len);
        } else {
            size_t dir = b.path.len;
            if (ref[0] == '?') { /* the base's path, a new query */
                n = rtws__url_put(out, cap, n, "/", b.path.len ? 0 : 1);
            } else { /* the base's directory, then ref */
                while (dir > 0 && b.path.p[dir - 1] != '/') dir--;
                n = rtws__url_put(out, cap, n, "/", dir ? 0 : 1);
            }
            n = rtws__url_put(out, cap, n, b.path.p, dir);
            n = rtws__url_put(out, cap, n, ref, len);
        }
    }
    if (n >= cap) {
        if (cap) out[0] = '\0';
        return RTWS_ERR_NOSPACE;
    }
    out[n] = '\0';
    /* the path: from the first '/' after "scheme://" to '?' or the end */
    p0 = strlen(scheme) + 3;
    while (p0 < n && out[p0] != '/' && out[p0] != '?') p0++;
    if (p0 < n && out[p0] == '/') {
        pe = p0;
        while (pe < n && out[pe] != '?') pe++;
        qlen = n - pe;
        i = rtws__url_dots(out + p0, pe - p0);
        memmove(out + p0 + i, out + pe, qlen);
        n = p0 + i + qlen;
        out[n] = '\0';
    }
    if (rtws_url_parse(out, n, &u, NULL) != RTWS_OK) {
        out[0] = '\0';
        return RTWS_ERR_URL;
    }
    if (out_len) *out_len = n;
    return RTWS_OK;
}

RTWS_API int rtws_proxy_bypass(const char *no_proxy, const char *host, size_t host_len,
                               unsigned port) {
    const char *p = no_proxy;
    if (!p || !host) return 0;
    if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') host++, host_len -= 2;
    while (*p) {
        const char *h, *e, *colon = NULL;
        size_t hl, k, ncolon = 0;
        unsigned long eport = 0;
        int has_port = 0, bad = 0;
        while (*p == ',' || *p == ' ' || *p == '\t') p++;
        for (e = p; *e && *e != ',' && *e != ' ' && *e != '\t'; e++)
            if (*e == ':') ncolon++, colon = e;
        h = p;
        hl = (size_t)(e - p);
        p = e;
        if (hl == 0) continue;
        if (hl == 1 && h[0] == '*') return 1;
        if (h[0] == '[') { /* [v6] or [v6]:port */
            const char *rb = (const char *)memchr(h, ']', hl);
            if (!rb) continue;
            colon = rb + 1 < e && rb[1] == ':' ? rb + 1 : NULL;
            if (rb + 1 < e && !colon) continue;
            hl = (size_t)(rb - h) - 1;
            h++;
        } else if (ncolon == 1) {
            hl = (size_t)(colon - h);
        } else {
            colon = NULL; /* a bare IPv6 literal: no port */
        }
        if (colon) {
            has_port = 1;
            if (colon + 1 == e) bad = 1;
            for (k = 1; colon + k < e && !bad; k++) {
                if (colon[k] < '0' || colon[k] > '9' || eport > 65535) bad = 1;
                else eport = eport * 10 + (unsigned long)(colon[k] - '0');
            }
            if (bad || eport > 65535) continue;
        }
        if (hl >= 2 && h[0] == '*' && h[1] == '.') h++, hl--; /* "*.example.com" */
        if (hl && h[0] == '.') h++, hl--;
        if (!hl || (has_port && eport != port)) continue;
        if (host_len == hl && rtws__ieqn(host, h, hl)) return 1;
        if (host_len > hl && host[host_len - hl - 1] == '.' &&
            rtws__ieqn(host + host_len - hl, h, hl))
            return 1;
    }
    return 0;
}
#endif /* !RTWS_NO_CLIENT */

/* === layer 2: dns ======================================================= */
#if !defined(RTWS_NO_CLIENT)

/* a host name's length without one trailing dot, or 0 when it is not one */
static size_t rtws__dns_name_ok(const char *name, size_t len) {
    size_t i, label = 0;
    if (len && name[len - 1] == '.') len--;
    if (!len || len > 253) return 0;
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch == '.') {
            if (!label) return 0;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                   ch == '-' || ch == '_') {
            if (++label > 63) return 0;
        } else {
            return 0;
        }
    }
    return label ? len : 0;
}

RTWS_API size_t rtws_dns_query_encode(uint8_t *out, size_t cap, uint16_t id, const char *name,
                                      size_t len, unsigned qtype, int tcp) {
    size_t n = tcp ? 2u : 0u, i, st;
    len = rtws__dns_name_ok(name, len);
    if (!len || cap < n + 12 + len + 2 + 4 || qtype > 0xffff) return 0;
    out[n] = (uint8_t)(id >> 8);
    out[n + 1] = (uint8_t)id;
    out[n + 2] = 0x01; /* RD: recursion desired */
    memset(out + n + 3, 0, 9);
    out[n + 5] = 1; /* QDCOUNT */
    n += 12;
    for (st = 0; st <= len; st = i + 1) { /* "a.bc" -> 1 a 2 b c 0 */
        for (i = st; i < len && name[i] != '.'; i++) {
        }
        out[n++] = (uint8_t)(i - st);
        memcpy(out + n, name + st, i - st);
        n += i - st;
    }
    out[n++] = 0;
    out[n++] = (uint8_t)(qtype >> 8);
    out[n++] = (uint8_t)qtype;
    out[n++] = 0;
    out[n++] = 1; /* class IN */
    if (tcp) {
        out[0] = (uint8_t)((n - 2) >> 8);
        out[1] = (uint8_t)(n - 2);
    }
    return n;
}

/* Reads the name at msg[*off] into text "a.b" (lowercase, no trailing dot,
   NUL-terminated in buf[256]) and moves *off past it. Compression pointers
   must point before the name that holds them (so they cannot loop). */
static rtws_err rtws__dns_name(const uint8_t *msg, size_t len, size_t *off, char *buf) {
    size_t p = *off, n = 0, limit = *off, end = 0;
    int jumped = 0;
    for (;;) {
        unsigned l;
        if (p >= len) return RTWS_ERR_SYNTAX;
        l = msg[p];
        if ((l & 0xc0) == 0xc0) {
            size_t to;
            if (p + 1 >= len) return RTWS_ERR_SYNTAX;
            to = ((size_t)(l & 0x3f) << 8) | msg[p + 1];
            if (to >= limit) return RTWS_ERR_SYNTAX; /* forward or self: refused */
            if (!jumped) end = p + 2;
            jumped = 1;
            limit = to;
            p = to;
            continue;
        }
        if (l & 0xc0) return RTWS_ERR_SYNTAX; /* 0x40, 0x80: no such label types */
        if (!l) break;
        if (p + 1 + l > len || n + l + 1 > 255) return RTWS_ERR_SYNTAX;
        if (n) buf[n++] = '.';
        {
            unsigned k;
            for (k = 0; k < l; k++) buf[n++] = (char)rtws__lower(msg[p + 1 + k]);
        }
        p += 1 + l;
    }
    buf[n] = 0;
    *off = jumped ? end : p + 1;
    return RTWS_OK;
}

/* name[0..len) (trailing dot ignored) equals the lowercase text t */
static int rtws__dns_name_is(const char *name, size_t len, const char *t) {
    if (len && name[len - 1] == '.') len--;
    return strlen(t) == len && rtws__ieqn(name, t, len);
}

RTWS_API rtws_err rtws_dns_answer_parse(const uint8_t *msg, size_t len, uint16_t id,
                                        const char *name, size_t name_len, unsigned qtype,
                                        rtws_dns_addr *out, size_t max, rtws_dns_result *res) {
    char owner[256], target[256], alias[256];
    size_t off = 12, an, i, first, alen = qtype == RTWS_DNS_A ? 4u : 16u;
    unsigned cnames = 0;
    rtws_err e;
    memset(res, 0, sizeof *res);
    res->ttl = UINT32_MAX;
    if (len < 12 || !rtws__dns_name_ok(name, name_len)) return RTWS_ERR_INVALID;
    if (((unsigned)msg[0] << 8 | msg[1]) != id || !(msg[2] & 0x80) || (msg[2] & 0x78) ||
        msg[4] != 0 || msg[5] != 1)
        return RTWS_ERR_INVALID; /* not an answer to this query */
    if ((e = rtws__dns_name(msg, len, &off, owner)) != RTWS_OK) return RTWS_ERR_INVALID;
    if (off + 4 > len || !rtws__dns_name_is(name, name_len, owner) ||
        ((unsigned)msg[off] << 8 | msg[off + 1]) != qtype || msg[off + 2] != 0 || msg[off + 3] != 1)
        return RTWS_ERR_INVALID;
    off += 4;
    res->truncated = (msg[2] & 0x02) != 0;
    res->rcode = msg[3] & 0x0f;
    if (res->rcode) {
        res->ttl = 0;
        return RTWS_ERR_RESOLVE;
    }
    an = (size_t)msg[6] << 8 | msg[7];
    first = off;
    memcpy(target, owner, strlen(owner) + 1);
    /* CNAMEs first (a chain may come in any order): one pass per link */
    for (;;) {
        int moved = 0;
        off = first;
        for (i = 0; i < an; i++) {
            size_t rd;
            unsigned type, rdlen;
            uint32_t ttl;
            if ((e = rtws__dns_name(msg, len, &off, owner)) != RTWS_OK || off + 10 > len) {
                if (res->truncated) break; /* records cut off: keep the whole ones */
                return RTWS_ERR_SYNTAX;
            }
            type = (unsigned)msg[off] << 8 | msg[off + 1];
            ttl = (uint32_t)msg[off + 4] << 24 | (uint32_t)msg[off + 5] << 16 |
                  (uint32_t)msg[off + 6] << 8 | msg[off + 7];
            if (ttl > 0x7fffffffu) ttl = 0; /* RFC 2181 §8 */
            rdlen = (unsigned)msg[off + 8] << 8 | msg[off + 9];
            rd = off + 10;
            if (rd + rdlen > len) {
                if (res->truncated) break;
                return RTWS_ERR_SYNTAX;
            }
            off = rd + rdlen;
            if (msg[rd - 8] != 0 || msg[rd - 7] != 1 || strcmp(owner, target) != 0) continue;
            if (type == 5 && !moved) { /* CNAME: follow it */
                size_t q = rd;
                if (rtws__dns_name(msg, rd + rdlen, &q, alias) != RTWS_OK || q != rd + rdlen)
                    return RTWS_ERR_SYNTAX;
                if (++cnames > 8) return RTWS_ERR_SYNTAX;
                memcpy(target, alias, strlen(alias) + 1);
                if (ttl < res->ttl) res->ttl = ttl;
                moved = 1;
            } else if (type == qtype && !moved) {
                if (rdlen != alen) return RTWS_ERR_SYNTAX;
                if (res->count < max) {
                    rtws_dns_addr *a = &out[res->count];
                    memset(a, 0, sizeof *a);
                    a->family = (uint8_t)(alen == 4 ? 4 : 6);
                    memcpy(a->addr, msg + rd, alen);
                    a->ttl = ttl;
                }
                res->count++;
                if (ttl < res->ttl) res->ttl = ttl;
            }
        }
        if (!moved) break;
        res->count = 0; /* addresses of a name that turned out to be an alias */
    }
    if (res->ttl == UINT32_MAX) res->ttl = 0;
    return RTWS_OK;
}

RTWS_API int rtws_dns_addr_parse(const char *s, size_t n, rtws_dns_addr *a) {
    size_t bad = 0, i = 0;
    memset(a, 0, sizeof *a);
    if (n && memchr(s, ':', n) == NULL) {
        unsigned part = 0, v = 0;
        if (!rtws__url_ipv4(s, n, &bad)) return 0;
        for (i = 0; i <= n; i++) {
            if (i == n || s[i] == '.') {
                a->addr[part++] = (uint8_t)v;
                v = 0;
            } else {
                v = v * 10 + (unsigned)(s[i] - '0');
            }
        }
        a->family = 4;
        return 1;
    }
    if (!n || rtws__url_ipv6(s, n, &bad) != NULL) return 0;
    {
        uint8_t hi[16];
        size_t nh = 0, nl = 0, *cnt = &nh;
        uint8_t *dst = hi, lo[16];
        if (n >= 2 && s[0] == ':' && s[1] == ':') {
            i = 2;
            dst = lo;
            cnt = &nl;
        }
        while (i < n) {
            size_t st = i;
            unsigned v = 0;
            while (i < n && s[i] != ':' && s[i] != '.') v = v * 16 + (unsigned)rtws__hexval((unsigned char)s[i++]);
            if (i < n && s[i] == '.') { /* the IPv4 tail (already checked) */
                rtws_dns_addr four;
                rtws_dns_addr_parse(s + st, n - st, &four);
                memcpy(dst + *cnt, four.addr, 4);
                *cnt += 4;
                break;
            }
            dst[(*cnt)++] = (uint8_t)(v >> 8);
            dst[(*cnt)++] = (uint8_t)v;
            if (i < n && ++i < n && s[i] == ':') { /* "::" */
                i++;
                dst = lo;
                cnt = &nl;
            }
        }
        memcpy(a->addr, hi, nh);
        memcpy(a->addr + 16 - nl, lo, nl);
    }
    a->family = 6;
    return 1;
}

/* The next whitespace-separated word of a line: [*w, *w + *wn) */
static int rtws__dns_word(const char *t, size_t e, size_t *i, size_t *w, size_t *wn) {
    while (*i < e && (t[*i] == ' ' || t[*i] == '\t' || t[*i] == '\r')) (*i)++;
    *w = *i;
    while (*i < e && t[*i] != ' ' && t[*i] != '\t' && t[*i] != '\r') (*i)++;
    *wn = *i - *w;
    return *wn != 0;
}

/* The end of the line at b (before its comment, if any) and the next line's start */
static size_t rtws__dns_line(const char *t, size_t len, size_t b, const char *comment, size_t *next) {
    size_t e = b;
    while (e < len && t[e] != '\n') e++;
    *next = e < len ? e + 1 : e;
    {
        size_t c;
        for (c = b; c < e; c++)
            if (t[c] && strchr(comment, t[c])) return c;
    }
    return e;
}

RTWS_API size_t rtws_dns_hosts_find(const char *text, size_t len, const char *name,
                                    size_t name_len, int family, rtws_dns_addr *out, size_t max) {
    size_t b = 0, next, found = 0;
    if (name_len && name[name_len - 1] == '.') name_len--;
    if (!name_len) return 0;
    for (; b < len; b = next) {
        size_t e = rtws__dns_line(text, len, b, "#", &next), i = b, w, wn;
        rtws_dns_addr a;
        if (!rtws__dns_word(text, e, &i, &w, &wn)) continue;
        {
            const char *pc = (const char *)memchr(text + w, '%', wn); /* fe80::1%eth0 */
            if (!rtws_dns_addr_parse(text + w, pc ? (size_t)(pc - (text + w)) : wn, &a)) continue;
        }
        if (family && a.family != family) continue;
        while (rtws__dns_word(text, e, &i, &w, &wn)) {
            if (text[w + wn - 1] == '.') wn--;
            if (wn == name_len && rtws__ieqn(text + w, name, wn)) {
                if (found < max) out[found] = a;
                found++;
                break;
            }
        }
    }
    return found;
}

static unsigned rtws__dns_opt(const char *s, size_t n, unsigned lo, unsigned hi, unsigned dflt) {
    unsigned v = 0;
    size_t i;
    if (!n) return dflt;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return dflt;
        if (v < 1000) v = v * 10 + (unsigned)(s[i] - '0');
    }
    return v < lo ? lo : v > hi ? hi : v;
}

/* rtws_dns_conf_parse; returns how many nameservers the text named (0: the
   default 127.0.0.1 is in conf) */
static size_t rtws__dns_conf_read(const char *text, size_t len, rtws_dns_conf *conf) {
    size_t b = 0, next;
    memset(conf, 0, sizeof *conf);
    conf->timeout_s = 5;
    conf->attempts = 2;
    for (; text && b < len; b = next) {
        size_t e = rtws__dns_line(text, len, b, "#;", &next), i = b, w, wn;
        if (!rtws__dns_word(text, e, &i, &w, &wn)) continue;
        if (wn == 10 && memcmp(text + w, "nameserver", 10) == 0) {
            const char *pc;
            if (conf->nservers >= 3 || !rtws__dns_word(text, e, &i, &w, &wn)) continue;
            pc = (const char *)memchr(text + w, '%', wn);
            if (rtws_dns_addr_parse(text + w, pc ? (size_t)(pc - (text + w)) : wn,
                                    &conf->servers[conf->nservers]))
                conf->nservers++;
        } else if (wn == 7 && memcmp(text + w, "options", 7) == 0) {
            while (rtws__dns_word(text, e, &i, &w, &wn)) {
                if (wn > 8 && memcmp(text + w, "timeout:", 8) == 0)
                    conf->timeout_s = rtws__dns_opt(text + w + 8, wn - 8, 1, 30, 5);
                else if (wn > 9 && memcmp(text + w, "attempts:", 9) == 0)
                    conf->attempts = rtws__dns_opt(text + w + 9, wn - 9, 1, 5, 2);
                else if (wn == 6 && memcmp(text + w, "rotate", 6) == 0)
                    conf->rotate = 1;
            }
        }
    }
    if (!conf->nservers) {
        conf->servers[0].family = 4;
        conf->servers[0].addr[0] = 127;
        conf->servers[0].addr[3] = 1;
        conf->nservers = 1;
        return 0;
    }
    return conf->nservers;
}

RTWS_API void rtws_dns_conf_parse(const char *text, size_t len, rtws_dns_conf *conf) {
    (void)rtws__dns_conf_read(text, len, conf);
}
#endif /* !RTWS_NO_CLIENT */

/* === layer 3: conn ====================================================== */

struct rtws_shared {
    size_t refs, cap, len;   /* the bytes follow the struct */
    size_t payload;          /* shared frames: payload bytes (for the counters) */
    rtws_allocator alloc;    /* shared frames: the allocator that frees it */
    int shared;
    unsigned zflags;         /* shared frames: RTWS_SEND_UNCOMPRESSED, RTWS__SH_NOGAIN;
                                a compressed copy: its window bits */
    struct rtws_shared *zv;  /* a shared frame's compressed copies (rtws__shared_z), a
                                list through znext; a copy's frame is zup (NULL once
                                the frame is freed: the copy lives on while queued) */
    struct rtws_shared *znext, *zup;
};
#define RTWS__SH_NOGAIN 0x100u /* compressing it did not shrink it: nobody tries again */
#define RTWS__CHUNK_DATA(ch) ((uint8_t *)((ch) + 1))
#define RTWS__CHUNK_SIZE 16384u   /* small frames are packed into chunks this big */
#define RTWS__RBUF_MIN 1024u      /* first receive buffer; reads grow while they fill it */
#define RTWS__READ_MAX 1048576u   /* ...up to this much offered per read (reads that
                                     take several large frames at once: half the
                                     calls, and one wake-up's work batched) */
#define RTWS__RBUF_KEEP 65536u    /* receive-buffer slack beyond the frame being read */
#ifndef RTWS__POOL_MIN /* (the conn fuzzers lower both, to reach these paths) */
#define RTWS__POOL_MIN 65536u     /* blocks this big or bigger go to the host's pool */
#endif
#ifndef RTWS__DIRECT_MIN
#define RTWS__DIRECT_MIN 65536u   /* frames this big are offered to the host's direct write
                                     (smaller ones gain less from the copy saved than they
                                     lose to a syscall per message) */
#endif
#ifndef RTWS__DIRECT_ALWAYS
#define RTWS__DIRECT_ALWAYS 262144u /* ...and from this size on every time; below it the
                                       host takes one per connection and pass, and the
                                       frames after it are batched (rtws__sock_direct) */
#endif

/* ---- buffer pool ----
   Large blocks (receive, reassembly and output buffers of big messages) that
   a connection gives back are kept here, up to a byte budget, for the next
   connection (or the same one) that needs one: a busy server then neither
   returns big blocks to the C library nor asks for them again per message,
   which costs heap shrinking, TLB flushes and page faults on fresh pages.
   Only rtws__pool_trim returns them. The host owns one per context. */
typedef struct rtws__pblk {
    struct rtws__pblk *next;
    size_t cap;
} rtws__pblk;

typedef struct rtws__pool {
    rtws_allocator alloc;     /* the allocator of every block it holds */
    size_t budget, bytes;     /* bytes held never exceed budget (0: keeps nothing) */
    size_t nblk;
    size_t released;          /* bytes of big blocks given to the allocator since the
                                 host last asked the C library to give memory back */
    uint64_t uses;            /* takes and gives so far (the host's trim watches it) */
    rtws__pblk *head;
} rtws__pool;

/* What the host lends a connection: its pool, and a write straight to the
   socket for a big frame when nothing is queued (returns the bytes written,
   0 when none could be). */
typedef struct rtws__conn_io {
    rtws__pool *pool;
    size_t (*write)(rtws_conn *c, const rtws_iov *iov, int n);
    /* A client's 301/302/307/308 with Location loc[0..len) (NULL: none):
       RTWS_OK when the host follows it (the connection then goes quiet, the
       host starts it over), RTWS_EAGAIN to leave it (RTWS_ERR_HANDSHAKE with
       the status), or the error to fail with. NULL: never followed. */
    rtws_err (*redirect)(rtws_conn *c, int status, const char *loc, size_t len);
    /* Output was queued or the state ended, on a connection with RTWS__C_NOTIFY */
    void (*notify)(rtws_conn *c);
} rtws__conn_io;

static void rtws__notify(rtws_conn *c) {
    if (c->priv_.cbits & RTWS__C_NOTIFY) c->priv_.io_->notify(c);
}

/* A block of at least min bytes from p (its size in *cap), or NULL: the
   smallest that fits, and none over 4 times min (a 16 MiB block does not
   become a 64 KiB read buffer). */
static void *rtws__pool_take(rtws__pool *p, size_t min, size_t *cap) {
    rtws__pblk **best = NULL, **it;
    rtws__pblk *b;
    if (!p || !p->head || min < RTWS__POOL_MIN) return NULL;
    for (it = &p->head; *it; it = &(*it)->next)
        if ((*it)->cap >= min && (*it)->cap / 4 <= min && (!best || (*it)->cap < (*best)->cap))
            best = it;
    if (!best) return NULL;
    b = *best;
    *best = b->next;
    p->bytes -= b->cap;
    p->nblk--;
    p->uses++;
    *cap = b->cap;
    return b;
}

/* Gives block b of cap bytes (allocated through a) to p, or frees it: no
   pool, a small block, or one that would take p over its budget. */
static void rtws__pool_give(rtws__pool *p, const rtws_allocator *a, void *b, size_t cap) {
    rtws__pblk *k = (rtws__pblk *)b;
    if (!b) return;
    if (!p || cap < RTWS__POOL_MIN || cap > p->budget - p->bytes || p->bytes > p->budget) {
        if (p && cap >= RTWS__POOL_MIN) p->released += cap;
        rtws__free(a, b);
        return;
    }
    k->cap = cap;
    k->next = p->head;
    p->head = k;
    p->bytes += cap;
    p->nblk++;
    p->uses++;
}

#if !defined(RTWS_NO_HOST) /* only the host owns a pool */
/* Returns every block to the allocator. */
static void rtws__pool_trim(rtws__pool *p) {
    while (p->head) {
        rtws__pblk *k = p->head;
        p->head = k->next;
        rtws__free(&p->alloc, k);
    }
    p->released += p->bytes;
    p->bytes = p->nblk = 0;
}
#endif

static rtws__pool *rtws__conn_pool(const rtws_conn *c) {
    return c->priv_.io_ ? c->priv_.io_->pool : NULL;
}
#if !defined(RTWS_NO_DEFLATE)
/* Codecs may be lent for one message and given back (a pool that keeps
   nothing, the host's buffer_pool_off, only counts what goes back) */
static int rtws__conn_lends(const rtws_conn *c) {
    return c->priv_.io_ && c->priv_.io_->pool && c->priv_.io_->pool->budget;
}
#endif
/* A buffer c no longer needs: to the pool when big, else freed. */
static void rtws__buf_drop(rtws_conn *c, void *b, size_t cap) {
    rtws__pool_give(rtws__conn_pool(c), &c->priv_.cfg->allocator, b, cap);
}

/* rtws__grow for a receive buffer of c (rbuf, mbuf): an empty one first
   looks in the pool. What it adds is charged to cfg.budget, which is asked
   for the room first: RTWS_ERR_LIMIT when the budget has none (its reclaim
   could not make it), and nothing changes. */
static rtws_err rtws__buf_grow(rtws_conn *c, uint8_t **buf, size_t *cap, size_t need,
                               size_t max) {
    rtws_budget *b = c->priv_.cfg->budget;
    size_t old = *cap;
    void *nb = *buf;
    rtws_err e;
    if (need <= old) return RTWS_OK;
    if (!nb && need <= max) {
        size_t pcap = 0;
        rtws__pool *pool = rtws__conn_pool(c);
        void *pb = rtws__pool_take(pool, RTWS__MAX(need, (size_t)16), &pcap);
        if (pb) {
            if (b && !rtws_budget_make_room(b, pcap)) {
                rtws__pool_give(pool, &c->priv_.cfg->allocator, pb, pcap);
                return RTWS_ERR_LIMIT;
            }
            if (b) rtws_budget_charge(b, pcap);
            *buf = (uint8_t *)pb;
            *cap = pcap;
            return RTWS_OK;
        }
    }
    if (b && need <= max && !rtws_budget_make_room(b, rtws__grow_cap(old, need, max) - old))
        return RTWS_ERR_LIMIT;
    e = rtws__grow(&c->priv_.cfg->allocator, &nb, cap, need, 1, max);
    if (e != RTWS_OK) return e;
    *buf = (uint8_t *)nb;
    if (b) rtws_budget_charge(b, *cap - old);
    return RTWS_OK;
}
/* A receive buffer c no longer holds: its bytes go back to cfg.budget. */
static void rtws__rx_drop(rtws_conn *c, uint8_t *buf, size_t cap) {
    if (buf && c->priv_.cfg->budget) rtws_budget_credit(c->priv_.cfg->budget, cap);
    rtws__buf_drop(c, buf, cap);
}

static void rtws__config_defaults(rtws_config *c) {
    if (c->role != RTWS_SERVER) c->role = RTWS_CLIENT;
    c->max_frame = RTWS__DEF(c->max_frame, (size_t)16 << 20);
    c->max_message = RTWS__DEF(c->max_message, (size_t)16 << 20);
    c->max_fragments = RTWS__DEF(c->max_fragments, (size_t)1 << 17);
    c->max_handshake = RTWS__DEF(c->max_handshake, (size_t)8192);
    c->max_http_body = RTWS__DEF(c->max_http_body, (size_t)65536);
    c->max_headers = RTWS__DEF(c->max_headers, (size_t)64);
    if (c->max_headers > RTWS_MAX_HEADERS) c->max_headers = RTWS_MAX_HEADERS;
    c->max_send_queue = RTWS__DEF(c->max_send_queue, (size_t)64 << 20);
    c->handshake_timeout_ms = RTWS__DEF(c->handshake_timeout_ms, 10000u);
    c->close_timeout_ms = RTWS__DEF(c->close_timeout_ms, 5000u);
    c->ping_interval_ms = RTWS__DEF(c->ping_interval_ms, 30000u);
    c->pong_timeout_ms = RTWS__DEF(c->pong_timeout_ms, 60000u);
    c->deflate_threshold = RTWS__DEF(c->deflate_threshold, (size_t)64);
    c->deflate_level = c->deflate_level < 1 ? 1 : c->deflate_level > 9 ? 9 : c->deflate_level;
    c->deflate_window_bits = c->deflate_window_bits ? c->deflate_window_bits : 15;
    if (c->deflate_window_bits < 8) c->deflate_window_bits = 8;
    if (c->deflate_window_bits > 15) c->deflate_window_bits = 15;
    c->deflate_peer_window_bits = c->deflate_peer_window_bits ? c->deflate_peer_window_bits : 15;
    if (c->deflate_peer_window_bits < 9) c->deflate_peer_window_bits = 9;
    if (c->deflate_peer_window_bits > 15) c->deflate_peer_window_bits = 15;
#if !defined(RTWS_NO_SYSTEM_RANDOM)
    if (!c->random) c->random = rtws_random_system;
#endif
}

/* What a connection points at when it has no config (its copy could not be
   allocated, or it was released): never written. */
static rtws_config rtws__cfg_none;

/* cfg has its defaults filled and outlives c (the host's per-context copy). */
static void rtws__conn_init_shared(rtws_conn *c, const rtws_config *cfg) {
    memset(c, 0, sizeof *c);
    c->priv_.cfg = cfg;
    c->priv_.on_event = cfg->on_event;
    c->priv_.user = cfg->user;
    c->priv_.state = cfg->role == RTWS_SERVER ? RTWS_STATE_HANDSHAKE : RTWS_STATE_IDLE;
    c->priv_.rhint = RTWS__RBUF_MIN;
}

RTWS_API void rtws_conn_init(rtws_conn *c, const rtws_config *cfg) {
    rtws_allocator a;
    rtws_config *own;
    memset(&a, 0, sizeof a);
    if (cfg) a = cfg->allocator;
    own = (rtws_config *)rtws__alloc(&a, sizeof *own);
    if (!own) { /* every later call reports the sticky RTWS_ERR_NOMEM */
        rtws__conn_init_shared(c, &rtws__cfg_none);
        c->priv_.err = RTWS_ERR_NOMEM;
        c->priv_.state = RTWS_STATE_CLOSED;
        c->priv_.drop_input = 1;
        return;
    }
    if (cfg) *own = *cfg;
    else memset(own, 0, sizeof *own);
    rtws__config_defaults(own);
    rtws__conn_init_shared(c, own);
    c->priv_.cbits |= RTWS__C_CFG_OWN;
}

/* Buffers for control frames: only a connection that pings, answers a ping
   or masks (the client role) needs them, so an idle server connection's
   struct stays small. */
#define RTWS__PONGQ_MAX 16     /* pings answered one by one while the answers wait... */
#define RTWS__PONGQ_BYTES 384  /* ...in this many bytes; beyond, the newest answer gives way */
#define RTWS__UPING_MAX 4      /* rtws_conn_ping's pings remembered for their round trip */
typedef struct rtws__ctl {
    uint8_t ping_buf[125];
    uint8_t pongq[RTWS__PONGQ_BYTES]; /* payloads of the pings to answer, oldest first, each
                                         [len][bytes]; c->priv_.pong_len of them */
    uint16_t pongq_used;
    uint8_t cout[2 * RTWS_FRAME_HEADER_MAX + 250]; /* control frames going out now */
    uint8_t keys[64];                              /* masking keys, refilled from cfg.random */
    uint8_t keys_used;
    uint8_t uping_n, uping_staged; /* rtws_conn_ping's pings waiting for a pong, oldest
                                      first; 1: the newest is still in ping_buf */
    uint32_t uping_sum[RTWS__UPING_MAX]; /* checksum of each one's payload... */
    uint64_t uping_at[RTWS__UPING_MAX];  /* ...and the now_ms it was queued at */
} rtws__ctl;

static rtws__ctl *rtws__ctl_get(rtws_conn *c) {
    if (!c->priv_.ctl) {
        c->priv_.ctl = (rtws__ctl *)rtws__alloc(&c->priv_.cfg->allocator, sizeof *c->priv_.ctl);
        if (c->priv_.ctl) {
            c->priv_.ctl->keys_used = sizeof c->priv_.ctl->keys;
            c->priv_.ctl->uping_n = c->priv_.ctl->uping_staged = 0;
        }
    }
    return c->priv_.ctl;
}

/* Frees a shared frame or a compressed copy of one, with no references
   left. Copies hang off their frame without a reference (the queues that
   hold one keep it): a copy leaves its frame's list when freed, and a frame
   freed first leaves its copies to their queues. */
static void rtws__shared_free(rtws__chunk *s) {
    rtws_allocator a = s->alloc;
    rtws__chunk *v, **p;
    if (s->zup) {
        for (p = &s->zup->zv; *p != s; p = &(*p)->znext) {}
        *p = s->znext;
    }
    for (v = s->zv; v; v = v->znext) v->zup = NULL;
    rtws__free(&a, s);
}

static void rtws__chunk_unref(rtws_conn *c, rtws__chunk *ch) {
    if (--ch->refs) return;
    if (ch->shared) {
        rtws__shared_free(ch);
        return;
    }
    if ((ch->cap >= RTWS__CHUNK_SIZE || c->priv_.msgs_out > 2) &&
        (!c->priv_.spare || c->priv_.spare->cap < ch->cap)) {
        /* keep the biggest recent one for the next send, whatever its size:
           no malloc per message; rtws_conn_trim gives it back. Not a small
           one before the third message: a connection that says hello (the
           101, a welcome, a reply or two) and goes quiet keeps nothing, so
           the chunk is reused at once by the next connection instead of
           leaving a hole among long-lived records until the trim */
        if (c->priv_.spare) rtws__buf_drop(c, c->priv_.spare, sizeof *ch + c->priv_.spare->cap);
        ch->refs = 1;
        ch->len = 0;
        c->priv_.spare = ch;
        return;
    }
    rtws__buf_drop(c, ch, sizeof *ch + ch->cap);
}

/* ---- permessage-deflate (RFC 7692): the state ---- */

#define RTWS__MSG_Z 0x40u /* msg_op bit: the message in progress is compressed */
#if !defined(RTWS_NO_DEFLATE)
/* An agreed permessage-deflate, behind c->priv_.hx.pmd once open. Each
   direction's codec is allocated at its first compressed message (a
   connection that only receives small messages never holds a compressor):
   an inflater is 480 bytes and a 13-45 KiB block, a compressor 2.4 KiB and a
   93-249 KiB block (rtws_inflate_mem_size, rtws_deflate_mem_size), plus the
   buffer a compressed message is written into before it is queued. All of it
   is charged to cfg.budget; rtws_conn_trim frees the buffer, and each codec
   whose window need not outlive a message. */
typedef struct rtws__pmd {
    rtws_inflate *inf;    /* with its memory block after it, or NULL */
    rtws_deflate *def;
    uint8_t *zbuf;        /* the compressed message being sent */
    size_t zcap;
    uint32_t inf_size, def_size; /* codec blocks, at most some 250 KiB: 32 bits keep
                                    the state kept by every idle connection at 64 bytes */
    uint64_t zin;         /* compressed bytes of the message being read */
    uint8_t rx_bits, tx_bits; /* the windows agreed: the peer's, ours */
    uint8_t rx_takeover, tx_takeover;
    uint8_t rx_fresh;     /* a compressed message starts: reset the inflater */
    uint8_t inf_lent;     /* inf is a block lent from the pool for this message */
    uint64_t runs;        /* rtws_conn_stats.deflate_runs (kept here: no byte of an
                             rtws_conn without the extension is spent on it) */
} rtws__pmd;

/* Memory of the connection's own, charged to cfg.budget (make_room first). */
static void *rtws__pmd_alloc(rtws_conn *c, size_t n) {
    rtws_budget *b = c->priv_.cfg->budget;
    void *p;
    if (b && !rtws_budget_make_room(b, n)) return NULL;
    p = rtws__alloc(&c->priv_.cfg->allocator, n);
    if (p && b) rtws_budget_charge(b, n);
    return p;
}
static void rtws__pmd_give(rtws_conn *c, void *p, size_t n) {
    if (!p) return;
    rtws__free(&c->priv_.cfg->allocator, p);
    if (c->priv_.cfg->budget) rtws_budget_credit(c->priv_.cfg->budget, n);
}

/* Codec memory for one message (no context takeover) when the host lent a
   pool: taken from it and given back after the message, so an idle
   connection holds none and a server holds about one codec per message in
   flight instead of one per connection (~300 KB each at 15 bits; a lent
   compressor's window is only as big as its message, so a small message
   sets up a small one). */
static void *rtws__pmd_lend(rtws_conn *c, size_t need, size_t *cap) {
    void *b;
    if (need < RTWS__POOL_MIN) need = RTWS__POOL_MIN; /* small ones would not go back */
    if ((b = rtws__pool_take(rtws__conn_pool(c), need, cap)) != NULL) return b;
    *cap = need;
    return rtws__alloc(&c->priv_.cfg->allocator, need);
}

/* What rtws_conn_trim may give back (the small state itself stays). */
static size_t rtws__pmd_mem(const rtws__pmd *z) {
    return (z->inf_lent ? 0 : z->inf_size) + z->def_size + z->zcap;
}

/* Frees what rtws_conn_trim may: the send buffer, and the codecs that keep
   no window between messages (all of it with all 1). */
static void rtws__pmd_trim(rtws_conn *c, rtws__pmd *z, int all) {
    rtws__pmd_give(c, z->zbuf, z->zcap);
    z->zbuf = NULL;
    z->zcap = 0;
    if (z->inf && z->inf_lent) {
        rtws__buf_drop(c, z->inf, z->inf_size);
        z->inf = NULL;
        z->inf_size = 0;
        z->inf_lent = 0;
    } else if (z->inf && (all || !z->rx_takeover)) {
        rtws__pmd_give(c, z->inf, z->inf_size);
        z->inf = NULL;
        z->inf_size = 0;
    }
    if (z->def && (all || !z->tx_takeover)) {
        rtws__pmd_give(c, z->def, z->def_size);
        z->def = NULL;
        z->def_size = 0;
    }
}

#endif /* !RTWS_NO_DEFLATE */

static void rtws__segs_free(rtws_conn *c) {
    if (c->priv_.segs != c->priv_.seg_inline) rtws__free(&c->priv_.cfg->allocator, c->priv_.segs);
    c->priv_.segs = NULL;
    c->priv_.segcap = c->priv_.seghead = 0;
}

static void rtws__release(rtws_conn *c) {
    const rtws_allocator *a = &c->priv_.cfg->allocator;
    size_t i;
    if (c->priv_.cfg->budget) rtws_budget_credit(c->priv_.cfg->budget, c->priv_.qbytes);
    for (i = 0; i < c->priv_.nseg; i++) rtws__chunk_unref(c, c->priv_.segs[(c->priv_.seghead + i) & (c->priv_.segcap - 1)].chunk);
    if (c->priv_.spare) rtws__buf_drop(c, c->priv_.spare, sizeof *c->priv_.spare + c->priv_.spare->cap);
    rtws__segs_free(c);
    if (!c->priv_.rborrow) rtws__rx_drop(c, c->priv_.rbuf, c->priv_.rcap);
    rtws__rx_drop(c, c->priv_.mbuf, c->priv_.mcap);
#if !defined(RTWS_NO_DEFLATE)
    if (c->priv_.zpark) { /* nothing allocated */
        c->priv_.zpark = 0;
        c->priv_.hx.pmd = NULL;
    } else if (c->priv_.opened && c->priv_.hx.pmd) { /* once open, hx is the pmd state */
        rtws__pmd_trim(c, c->priv_.hx.pmd, 1);
        rtws__pmd_give(c, c->priv_.hx.pmd, sizeof *c->priv_.hx.pmd);
        c->priv_.hx.pmd = NULL;
    }
#endif
    rtws__free(a, c->priv_.hs);
    rtws__free(a, c->priv_.ctl);
    if (c->priv_.cbits & RTWS__C_CFG_OWN) { /* the allocator lives in the copy being freed */
        rtws_allocator own = c->priv_.cfg->allocator;
        rtws__free(&own, (void *)(uintptr_t)c->priv_.cfg);
        c->priv_.cfg = &rtws__cfg_none;
        c->priv_.cbits &= (uint8_t)~RTWS__C_CFG_OWN;
    }
    c->priv_.ctl = NULL;
    c->priv_.pong_len = c->priv_.ping_len = 0;
    c->priv_.cout_len = c->priv_.cout_off = 0;
    c->priv_.spare = NULL;
    c->priv_.segs = NULL;
    c->priv_.rbuf = c->priv_.mbuf = NULL;
    c->priv_.hs = NULL;
    c->priv_.nseg = c->priv_.segcap = c->priv_.seghead = 0;
    c->priv_.qbytes = c->priv_.head_off = 0;
    c->priv_.rcap = c->priv_.rstart = c->priv_.rend = c->priv_.mcap = 0;
}

RTWS_API void rtws_conn_free(rtws_conn *c) {
    if ((c->priv_.cbits & RTWS__C_NOTIFY) && !c->priv_.freed) {
        c->priv_.freed = 1; /* the host closes the socket and releases c */
        c->priv_.state = RTWS_STATE_CLOSED;
        rtws__notify(c);
        return;
    }
    if (c->priv_.depth) { /* inside a callback: finish when the outer call returns */
        c->priv_.freed = 1;
        c->priv_.state = RTWS_STATE_CLOSED;
        return;
    }
    rtws__release(c);
    c->priv_.freed = 1;
    c->priv_.state = RTWS_STATE_CLOSED;
}

RTWS_API void rtws_conn_reset(rtws_conn *c) {
    rtws_config cfg = *c->priv_.cfg;
    const rtws_config *shared = (c->priv_.cbits & RTWS__C_CFG_OWN) ? NULL : c->priv_.cfg;
    rtws_event_fn fn = c->priv_.on_event;
    void *user = c->priv_.user, *data = c->priv_.data;
    rtws__release(c);
    if (shared) rtws__conn_init_shared(c, shared);
    else rtws_conn_init(c, &cfg);
    c->priv_.on_event = fn;
    c->priv_.user = user;
    c->priv_.data = data;
}

RTWS_API const rtws_config *rtws_conn_get_config(const rtws_conn *c) { return c->priv_.cfg; }
RTWS_API rtws_conn_state rtws_conn_get_state(const rtws_conn *c) { return (rtws_conn_state)c->priv_.state; }
RTWS_API rtws_err rtws_conn_get_error(const rtws_conn *c) { return (rtws_err)c->priv_.err; }
RTWS_API void rtws_conn_set_data(rtws_conn *c, void *data) { c->priv_.data = data; }
RTWS_API void rtws_conn_set_handler(rtws_conn *c, rtws_event_fn fn, void *user) {
    c->priv_.on_event = fn;
    c->priv_.user = user;
}

/* Bytes of the buffers c holds (rtws_conn_stats.buffer_cap): what a memory
   budget of the host counts per connection. */
static size_t rtws__conn_buffer_cap(const rtws_conn *c) {
    size_t n = (c->priv_.rborrow ? 0 : c->priv_.rcap) + c->priv_.mcap, i;
    if (c->priv_.spare) n += sizeof *c->priv_.spare + c->priv_.spare->cap;
    if (c->priv_.ctl) n += sizeof *c->priv_.ctl;
#if !defined(RTWS_NO_DEFLATE)
    if (c->priv_.opened && !c->priv_.zpark && c->priv_.hx.pmd) n += rtws__pmd_mem(c->priv_.hx.pmd);
#endif
    if (c->priv_.segs && c->priv_.segs != c->priv_.seg_inline) n += c->priv_.segcap * sizeof *c->priv_.segs;
    for (i = 0; i < c->priv_.nseg; i++) {
        const rtws__chunk *ch = c->priv_.segs[(c->priv_.seghead + i) & (c->priv_.segcap - 1)].chunk;
        /* a chunk shared with other connections, or spanning several
           segments, is counted where it starts only */
        if (!ch->shared && (i == 0 || c->priv_.segs[(c->priv_.seghead + i - 1) & (c->priv_.segcap - 1)].chunk != ch))
            n += sizeof *ch + ch->cap;
    }
    return n;
}

RTWS_API void rtws_conn_get_stats(const rtws_conn *c, rtws_conn_stats *st) {
    memset(st, 0, sizeof *st);
    st->msgs_in = c->priv_.msgs_in;
    st->msgs_out = c->priv_.msgs_out;
    st->bytes_in = c->priv_.bytes_in;
    st->bytes_out = c->priv_.bytes_out;
    st->opened_at_ms = c->priv_.opened_at;
    st->last_msg_ms = c->priv_.opened ? RTWS__MAX(c->priv_.last_msg_rx, c->priv_.opened_at) : 0;
    st->rtt_last_ms = c->priv_.rtt_last;
    st->rtt_min_ms = c->priv_.rtt_min;
    st->rtt_samples = c->priv_.rtt_n;
    st->rtt_avg_ms = c->priv_.rtt_n ? (uint32_t)(c->priv_.rtt_sum / c->priv_.rtt_n) : 0;
    st->last_error = (rtws_err)c->priv_.err;
    st->buffered = (c->priv_.rend - c->priv_.rstart) + rtws_conn_out_pending(c);
    st->buffer_cap = rtws__conn_buffer_cap(c);
#if !defined(RTWS_NO_DEFLATE)
    st->deflate_runs = c->priv_.zpark                      ? (uint64_t)(c->priv_.hx.zw >> 2)
                       : c->priv_.opened && c->priv_.hx.pmd ? c->priv_.hx.pmd->runs
                                                             : 0;
#endif
}
RTWS_API void *rtws_conn_get_data(const rtws_conn *c) { return c->priv_.data; }

/* Every public call that may fire callbacks is bracketed by enter/leave, so a
   callback may free the connection: the release waits for the outermost leave. */
static void rtws__enter(rtws_conn *c, uint64_t now) {
    c->priv_.depth++;
    if (now > c->priv_.now) c->priv_.now = now;
    if (!c->priv_.hs_deadline && c->priv_.state <= RTWS_STATE_HANDSHAKE)
        c->priv_.hs_deadline = c->priv_.now + c->priv_.cfg->handshake_timeout_ms;
}
static void rtws__leave(rtws_conn *c) {
    if (--c->priv_.depth == 0 && c->priv_.freed) rtws__release(c);
}

static void rtws__emit(rtws_conn *c, rtws_event *ev) {
    if (!c->priv_.on_event || c->priv_.freed) return;
    c->priv_.depth++;
    c->priv_.on_event(c, ev, c->priv_.user);
    c->priv_.depth--;
}

static void rtws__event_init(rtws_event *ev, rtws_event_type type) {
    memset(ev, 0, sizeof *ev);
    ev->type = type;
}

static void rtws__emit_close(rtws_conn *c, unsigned code, const uint8_t *reason, size_t len,
                             int clean, int by_peer) {
    rtws_event ev;
    if ((c->priv_.cbits & RTWS__C_CLOSED_EVT) || !c->priv_.opened) return;
    c->priv_.cbits |= RTWS__C_CLOSED_EVT;
    rtws__event_init(&ev, RTWS_EV_CLOSE);
    ev.close.code = code;
    ev.close.reason = len ? (const char *)reason : NULL;
    ev.close.reason_len = len;
    ev.close.clean = clean;
    ev.close.by_peer = by_peer;
    rtws__emit(c, &ev);
}

static void rtws__emit_error(rtws_conn *c, rtws_err err, int status) {
    rtws_event ev;
    rtws__event_init(&ev, RTWS_EV_ERROR);
    ev.error.err = err;
    ev.error.status = status; /* detail stays 0: only the host and TLS code have one */
    rtws__emit(c, &ev);
}

/* ---- output queue ---- */

static int rtws__segs_reserve(rtws_conn *c) {
    if (!c->priv_.segs) { /* a quiet connection queues a frame or two: no allocation */
        c->priv_.segs = c->priv_.seg_inline;
        c->priv_.segcap = 1;
        c->priv_.seghead = 0;
    }
    if (c->priv_.nseg == c->priv_.segcap) {
        uint32_t ncap = c->priv_.segcap * 4, i;
        rtws__seg *ns = (rtws__seg *)rtws__alloc(&c->priv_.cfg->allocator, ncap * sizeof *ns);
        if (!ns) return 0;
        for (i = 0; i < c->priv_.nseg; i++) ns[i] = c->priv_.segs[(c->priv_.seghead + i) & (c->priv_.segcap - 1)];
        if (c->priv_.segs != c->priv_.seg_inline) rtws__free(&c->priv_.cfg->allocator, c->priv_.segs);
        c->priv_.segs = ns;
        c->priv_.segcap = ncap;
        c->priv_.seghead = 0;
    }
    return 1;
}

/* Space for n more output bytes at the end of the queue: the tail chunk when
   it has room and is ours alone, else a new chunk. Returns where to write. */
static uint8_t *rtws__out_reserve(rtws_conn *c, size_t n, rtws__chunk **chp) {
    rtws__chunk *ch = NULL;
    if (c->priv_.nseg) {
        rtws__seg *t = &c->priv_.segs[(c->priv_.seghead + c->priv_.nseg - 1) & (c->priv_.segcap - 1)];
        ch = t->chunk;
        if (ch->refs != 1 || ch->cap - ch->len < n || t->p + t->len != RTWS__CHUNK_DATA(ch) + ch->len)
            ch = NULL;
    }
    if (!ch) {
        if (!rtws__segs_reserve(c)) return NULL;
        if (c->priv_.spare && c->priv_.spare->cap >= n) {
            ch = c->priv_.spare;
            c->priv_.spare = NULL;
        } else {
            /* a small write with nothing queued (the 101, a welcome, an
               occasional message, a close) gets a small chunk, kept as the
               spare once data flows; writes that queue up get the packing size */
            size_t cap = n <= RTWS__CHUNK_SIZE ? RTWS__CHUNK_SIZE : n;
            if (n <= 512 && !c->priv_.nseg && !c->priv_.spare) cap = 512;
            size_t got = 0;
            if (cap > SIZE_MAX - sizeof *ch) return NULL;
            ch = (rtws__chunk *)rtws__pool_take(rtws__conn_pool(c), sizeof *ch + cap, &got);
            if (ch) cap = got - sizeof *ch;
            else ch = (rtws__chunk *)rtws__alloc(&c->priv_.cfg->allocator, sizeof *ch + cap);
            if (!ch) return NULL;
            memset(ch, 0, sizeof *ch);
            ch->refs = 1;
            ch->cap = cap;
        }
        c->priv_.segs[(c->priv_.seghead + c->priv_.nseg) & (c->priv_.segcap - 1)].chunk = ch;
        c->priv_.segs[(c->priv_.seghead + c->priv_.nseg) & (c->priv_.segcap - 1)].p = RTWS__CHUNK_DATA(ch) + ch->len;
        c->priv_.segs[(c->priv_.seghead + c->priv_.nseg) & (c->priv_.segcap - 1)].len = 0;
        c->priv_.nseg++;
    }
    *chp = ch;
    return RTWS__CHUNK_DATA(ch) + ch->len;
}

static void rtws__out_commit(rtws_conn *c, rtws__chunk *ch, size_t n) {
    rtws__seg *t = &c->priv_.segs[(c->priv_.seghead + c->priv_.nseg - 1) & (c->priv_.segcap - 1)];
    ch->len += n;
    t->len += n;
    c->priv_.qbytes += n;
    if (c->priv_.cfg->budget) rtws_budget_charge(c->priv_.cfg->budget, n);
    rtws__notify(c);
}

static int rtws__mask_key(rtws_conn *c, uint8_t key[4]) {
    rtws__ctl *k = rtws__ctl_get(c);
    if (!k) return 0;
    if (k->keys_used + 4 > (int)sizeof k->keys) {
        if (!c->priv_.cfg->random || c->priv_.cfg->random(k->keys, sizeof k->keys, c->priv_.cfg->random_user) != 0)
            return 0;
        k->keys_used = 0;
    }
    memcpy(key, k->keys + k->keys_used, 4);
    k->keys_used = (uint8_t)(k->keys_used + 4);
    return 1;
}

static void rtws__seg_pop(rtws_conn *c);

/* The host may write a frame directly: it lent a write, and nothing is queued
   or staged ahead of the frame (no data, control frame or HTTP head). */
static int rtws__direct_ok(const rtws_conn *c) {
    return c->priv_.io_ && c->priv_.io_->write && !c->priv_.head_off && !c->priv_.head_left &&
           c->priv_.cout_off == c->priv_.cout_len && !c->priv_.pong_len && !c->priv_.ping_len &&
           !c->priv_.eof && !c->priv_.freed && c->priv_.segs[c->priv_.seghead].len == 0;
}

/* Writes one frame into the data queue; client frames get a fresh mask key.
   rsv: the RSV bits of byte 0 (0x40: RSV1, a compressed message). */
static rtws_err rtws__queue_frame_rsv(rtws_conn *c, int fin, rtws_opcode op, const void *data,
                                      size_t len, uint8_t rsv) {
    uint8_t key[4], *w;
    rtws__chunk *ch;
    size_t hl;
    int client = c->priv_.cfg->role == RTWS_CLIENT;
    if (len > SIZE_MAX - RTWS_FRAME_HEADER_MAX) return RTWS_ERR_TOO_BIG;
    if (client && !rtws__mask_key(c, key)) return RTWS_ERR_RANDOM;
    w = rtws__out_reserve(c, RTWS_FRAME_HEADER_MAX + len, &ch);
    if (!w) return RTWS_ERR_NOMEM;
    hl = rtws_frame_header_encode(w, fin, op, len, client ? key : NULL);
    w[0] |= rsv;
    if (!client && len >= RTWS__DIRECT_MIN && c->priv_.nseg == 1 && rtws__direct_ok(c)) {
        /* nothing else queued: the host writes the frame straight from the
           caller's bytes, and only what the socket did not take is copied
           (the space stays reserved, so nothing can fail after a part went) */
        rtws_iov v[2];
        size_t sent;
        v[0].base = w;
        v[0].len = hl;
        v[1].base = data;
        v[1].len = len;
        sent = c->priv_.io_->write(c, v, 2);
        if (sent) c->priv_.cbits |= RTWS__C_WROTE;
        if (sent >= hl + len) { /* all of it: the chunk goes back as the spare */
            rtws__seg_pop(c);
            return RTWS_OK;
        }
        if (sent > hl) memcpy(w + sent, (const uint8_t *)data + (sent - hl), hl + len - sent);
        else memcpy(w + hl, data, len);
        rtws__out_commit(c, ch, hl + len);
        c->priv_.head_off = sent; /* a started frame: control frames wait for its end */
        return RTWS_OK;
    }
    if (len) memcpy(w + hl, data, len);
    if (client && len) rtws_frame_mask(w + hl, len, key, 0);
    rtws__out_commit(c, ch, hl + len);
    return RTWS_OK;
}

static rtws_err rtws__queue_frame(rtws_conn *c, int fin, rtws_opcode op, const void *data,
                                  size_t len) {
    return rtws__queue_frame_rsv(c, fin, op, data, len, 0);
}

static void rtws__seg_pop(rtws_conn *c) {
    rtws__seg *s = &c->priv_.segs[c->priv_.seghead];
    c->priv_.qbytes -= s->len;
    if (c->priv_.cfg->budget) rtws_budget_credit(c->priv_.cfg->budget, s->len);
    rtws__chunk_unref(c, s->chunk);
    c->priv_.seghead = (c->priv_.seghead + 1) & (c->priv_.segcap - 1);
    c->priv_.nseg--;
    c->priv_.head_off = 0;
}

/* Drops queued data that has not started to go out (failing the connection). */
static void rtws__drop_unsent(rtws_conn *c) {
    while (c->priv_.nseg > (c->priv_.head_off ? 1u : 0u)) {
        size_t last = (c->priv_.seghead + c->priv_.nseg - 1) & (c->priv_.segcap - 1);
        c->priv_.qbytes -= c->priv_.segs[last].len;
        if (c->priv_.cfg->budget) rtws_budget_credit(c->priv_.cfg->budget, c->priv_.segs[last].len);
        rtws__chunk_unref(c, c->priv_.segs[last].chunk);
        c->priv_.nseg--;
    }
    c->priv_.pong_len = c->priv_.ping_len = 0;
}

/* Queues the answer to a ping (§5.5.2): every ping gets its pong, in order,
   while RTWS__PONGQ_MAX answers in RTWS__PONGQ_BYTES wait. Beyond that the
   newest waiting answers give way to this one, so a flood (or a peer that
   never reads) costs no memory and the latest ping is still answered, which
   is all §5.5.3 asks. */
static void rtws__pong_push(rtws_conn *c, const uint8_t *p, size_t n) {
    rtws__ctl *k = c->priv_.ctl;
    if (!c->priv_.pong_len) k->pongq_used = 0;
    if (c->priv_.pong_len >= RTWS__PONGQ_MAX || k->pongq_used + 1 + n > sizeof k->pongq) {
        size_t off = 0, keep = 0; /* the oldest answers that leave room for this one */
        while (keep < c->priv_.pong_len && keep + 1 < RTWS__PONGQ_MAX &&
               off + 1u + k->pongq[off] + 1 + n <= sizeof k->pongq) {
            off += 1u + k->pongq[off];
            keep++;
        }
        k->pongq_used = (uint16_t)off;
        c->priv_.pong_len = (uint8_t)keep;
    }
    k->pongq[k->pongq_used] = (uint8_t)n;
    memcpy(k->pongq + k->pongq_used + 1, p, n);
    k->pongq_used = (uint16_t)(k->pongq_used + 1 + n);
    c->priv_.pong_len++;
}

/* Pending pongs and ping move into cout when the data queue is at a frame
   boundary (every segment holds whole frames), so heartbeats pass a full data
   queue. Pongs go oldest first, as many as cout takes; the rest follow at the
   next boundary once these are written. */
static void rtws__promote_control(rtws_conn *c) {
    size_t n = 0;
    int client = c->priv_.cfg->role == RTWS_CLIENT;
    rtws__ctl *k = c->priv_.ctl;
    if (c->priv_.cout_off < c->priv_.cout_len || c->priv_.head_off || c->priv_.head_left) return;
    if (!c->priv_.pong_len && !c->priv_.ping_len) return;
    if (c->priv_.pong_len) {
        size_t off = 0;
        while (c->priv_.pong_len) {
            uint8_t key[4];
            size_t len = k->pongq[off];
            if (n + RTWS_FRAME_HEADER_MAX + len > sizeof k->cout) break;
            if (client && !rtws__mask_key(c, key)) break;
            n += rtws_frame_header_encode(k->cout + n, 1, RTWS_OP_PONG, len, client ? key : NULL);
            memcpy(k->cout + n, k->pongq + off + 1, len);
            if (client) rtws_frame_mask(k->cout + n, len, key, 0);
            n += len;
            off += 1 + len;
            c->priv_.pong_len--;
        }
        memmove(k->pongq, k->pongq + off, k->pongq_used - off);
        k->pongq_used = (uint16_t)(k->pongq_used - off);
    }
    if (c->priv_.ping_len && n + RTWS_FRAME_HEADER_MAX + (size_t)c->priv_.ping_len - 1 <= sizeof k->cout) {
        uint8_t key[4];
        size_t len = (size_t)c->priv_.ping_len - 1;
        if (!client || rtws__mask_key(c, key)) {
            n += rtws_frame_header_encode(k->cout + n, 1, RTWS_OP_PING, len, client ? key : NULL);
            memcpy(k->cout + n, k->ping_buf, len);
            if (client) rtws_frame_mask(k->cout + n, len, key, 0);
            n += len;
            c->priv_.ping_len = 0;
            k->uping_staged = 0;
        }
    }
    c->priv_.cout_len = (uint16_t)n;
    c->priv_.cout_off = 0;
}

RTWS_API int rtws_conn_out_iov(rtws_conn *c, rtws_iov *iov, int max) {
    int n = 0;
    size_t i;
    if (c->priv_.freed || c->priv_.eof) return 0;
    rtws__promote_control(c);
    if (c->priv_.cout_off < c->priv_.cout_len && n < max) {
        iov[n].base = c->priv_.ctl->cout + c->priv_.cout_off;
        iov[n].len = (size_t)(c->priv_.cout_len - c->priv_.cout_off);
        n++;
    }
    for (i = 0; i < c->priv_.nseg && n < max; i++) {
        const rtws__seg *s = &c->priv_.segs[(c->priv_.seghead + i) & (c->priv_.segcap - 1)];
        size_t skip = i == 0 ? c->priv_.head_off : 0;
        if (s->len == skip) continue;
        iov[n].base = s->p + skip;
        iov[n].len = s->len - skip;
        n++;
    }
    return n;
}

RTWS_API const uint8_t *rtws_conn_out(rtws_conn *c, size_t *len) {
    rtws_iov v;
    if (rtws_conn_out_iov(c, &v, 1) != 1) {
        *len = 0;
        return NULL;
    }
    *len = v.len;
    return (const uint8_t *)v.base;
}

RTWS_API void rtws_conn_out_done(rtws_conn *c, size_t n) {
    if (n) c->priv_.cbits |= RTWS__C_WROTE;
    if (c->priv_.cout_off < c->priv_.cout_len) {
        size_t k = RTWS__MIN(n, (size_t)(c->priv_.cout_len - c->priv_.cout_off));
        c->priv_.cout_off = (uint16_t)(c->priv_.cout_off + k);
        n -= k;
        if (c->priv_.cout_off == c->priv_.cout_len) {
            c->priv_.cout_off = c->priv_.cout_len = 0;
            /* a server's control block only stages frames: it goes back as
               soon as they are out, so a heartbeat round over thousands of
               idle connections holds one block at a time, not one each (a
               client keeps its block for the batched masking keys) */
            if (c->priv_.cfg->role != RTWS_CLIENT && !c->priv_.pong_len && !c->priv_.ping_len &&
                !c->priv_.ctl->uping_n) {
                rtws__free(&c->priv_.cfg->allocator, c->priv_.ctl);
                c->priv_.ctl = NULL;
            }
        }
    }
    c->priv_.head_left -= (uint32_t)RTWS__MIN(n, (size_t)c->priv_.head_left);
    while (n && c->priv_.nseg) {
        rtws__seg *s = &c->priv_.segs[c->priv_.seghead];
        size_t k = RTWS__MIN(n, s->len - c->priv_.head_off);
        c->priv_.head_off += k;
        n -= k;
        if (c->priv_.head_off == s->len) rtws__seg_pop(c);
    }
    RTWS_ASSERT(n == 0); /* acknowledged more than was lent */
    while (c->priv_.nseg && c->priv_.segs[c->priv_.seghead].len == c->priv_.head_off) rtws__seg_pop(c);
}

/* Bytes of the pongs owed: their frames, each its payload and a header of at
   most 6 bytes (pongq keeps a length byte per payload: 1 + 5). */
static size_t rtws__pongs_pending(const rtws_conn *c) {
    return c->priv_.pong_len ? (size_t)c->priv_.ctl->pongq_used + 5u * c->priv_.pong_len : 0;
}

RTWS_API size_t rtws_conn_out_pending(const rtws_conn *c) {
    size_t n = (size_t)(c->priv_.cout_len - c->priv_.cout_off) + c->priv_.qbytes - c->priv_.head_off;
    n += rtws__pongs_pending(c);
    if (c->priv_.ping_len) n += (size_t)c->priv_.ping_len + 5;
    return n;
}

/* ---- closing ---- */

static rtws_err rtws__queue_close(rtws_conn *c, unsigned code, const char *reason, size_t rlen) {
    uint8_t p[125];
    size_t n = 0;
    if (code) {
        p[0] = (uint8_t)(code >> 8);
        p[1] = (uint8_t)code;
        n = 2;
        if (rlen > 123) rlen = 123;
        if (rlen) memcpy(p + 2, reason, rlen);
        n += rlen;
    }
    c->priv_.close_sent = 1;
    c->priv_.close_code = (uint16_t)code;
    if (c->priv_.cfg->budget) /* asked, never refused: c's last frames (c is not shed now) */
        rtws_budget_make_room(c->priv_.cfg->budget, n + 6 + rtws__pongs_pending(c));
    /* nothing may follow a close frame (§5.5.1): the answers to pings that
       came before go into the queue ahead of it, so they leave the same
       whether the host drained between the pings and the close or not; a
       heartbeat ping of ours is dropped (its answer could never arrive) */
    if (c->priv_.pong_len) {
        const rtws__ctl *k = c->priv_.ctl;
        size_t off = 0;
        while (c->priv_.pong_len) {
            size_t len = k->pongq[off];
            if (rtws__queue_frame(c, 1, RTWS_OP_PONG, k->pongq + off + 1, len) != RTWS_OK) break;
            off += 1 + len;
            c->priv_.pong_len--;
        }
    }
    c->priv_.pong_len = c->priv_.ping_len = 0;
    return rtws__queue_frame(c, 1, RTWS_OP_CLOSE, p, n);
}

/* The connection is over: the host flushes what is queued, then closes. */
static void rtws__finish(rtws_conn *c) {
    c->priv_.state = RTWS_STATE_CLOSED;
    c->priv_.cbits |= RTWS__C_WANT_CLOSE;
    c->priv_.drop_input = 1;
    rtws__notify(c);
    if (!c->priv_.close_deadline || c->priv_.close_deadline > c->priv_.now + c->priv_.cfg->close_timeout_ms)
        c->priv_.close_deadline = c->priv_.now + c->priv_.cfg->close_timeout_ms;
}

/* RFC 6455 §7.1.7 "Fail the WebSocket Connection": report, send a close with
   the code when the connection was open, then close without waiting for the
   peer's. What was queued before (say, the echo of the valid message ahead
   of the bad frame) still goes out first, within close_timeout_ms. */
static void rtws__fail(rtws_conn *c, rtws_err err, unsigned code) {
    if (c->priv_.state == RTWS_STATE_CLOSED) return;
    c->priv_.err = (int8_t)err;
    rtws__emit_error(c, err, 0);
    if (c->priv_.opened && !c->priv_.close_sent) {
        rtws__queue_close(c, code, NULL, 0);
    }
    rtws__emit_close(c, c->priv_.opened && code ? code : (unsigned)RTWS_CLOSE_ABNORMAL, NULL, 0, 0, 0);
    rtws__finish(c);
}

/* A receive buffer could not grow: the memory budget had no room (1013,
   try again later) or the allocator failed (1011). */
static void rtws__fail_grow(rtws_conn *c, rtws_err e) {
    rtws__enter(c, c->priv_.now);
    if (e == RTWS_ERR_LIMIT) rtws__fail(c, RTWS_ERR_LIMIT, RTWS_CLOSE_TRY_AGAIN);
    else rtws__fail(c, RTWS_ERR_NOMEM, RTWS_CLOSE_INTERNAL);
    rtws__leave(c);
}

/* ---- opening handshake ---- */

static rtws_err rtws__queue_bytes(rtws_conn *c, const char *s, size_t n) {
    rtws__chunk *ch;
    uint8_t *w;
    if (c->priv_.cfg->budget) /* asked, never refused: a handshake's or HTTP answer */
        rtws_budget_make_room(c->priv_.cfg->budget, n);
    w = rtws__out_reserve(c, n, &ch);
    if (!w) return RTWS_ERR_NOMEM;
    memcpy(w, s, n);
    rtws__out_commit(c, ch, n);
    return RTWS_OK;
}

static size_t rtws__cat(char *dst, size_t off, size_t cap, const char *s, size_t n) {
    if (off < cap && n <= cap - off) memcpy(dst + off, s, n);
    return off + n; /* the caller checks off <= cap */
}
#define RTWS__CATZ(dst, off, cap, z) rtws__cat(dst, off, cap, z, strlen(z))

#if !defined(RTWS_NO_SERVER) || !defined(RTWS_NO_DEFLATE)
/* appends v in decimal (status lines, Content-Length, window bits) */
static size_t rtws__cat_dec(char *dst, size_t off, size_t cap, size_t v) {
    char d[24];
    size_t k = sizeof d;
    do {
        d[--k] = (char)('0' + v % 10);
    } while ((v /= 10) != 0);
    return rtws__cat(dst, off, cap, d + k, sizeof d - k);
}
#endif

#if !defined(RTWS_NO_SERVER) /* error replies */
static const char *rtws__status_text(int status) {
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return status >= 500 ? "Internal Server Error" : "Error";
    }
}

/* "HTTP/1.1 NNN text" at the start of head; returns its length */
static size_t rtws__status_line(char *head, size_t cap, int status, const char *text) {
    size_t n = RTWS__CATZ(head, 0, cap, "HTTP/1.1 ");
    n = rtws__cat_dec(head, n, cap, (size_t)status);
    n = rtws__cat(head, n, cap, " ", 1);
    return RTWS__CATZ(head, n, cap, text);
}

/* Refuses the upgrade with an HTTP error and a short text body. */
static void rtws__refuse(rtws_conn *c, int status, const char *reason) {
    char head[512];
    size_t n;
    if (status < 400 || status > 599) status = 500;
    if (!reason) reason = rtws__status_text(status);
    n = rtws__status_line(head, sizeof head, status, rtws__status_text(status));
    n = RTWS__CATZ(head, n, sizeof head, "\r\nContent-Type: text/plain\r\nConnection: close\r\n");
    if (status == 426) n = RTWS__CATZ(head, n, sizeof head, "Sec-WebSocket-Version: 13\r\n");
    n = RTWS__CATZ(head, n, sizeof head, "Content-Length: ");
    n = rtws__cat_dec(head, n, sizeof head, strlen(reason) + 1);
    n = RTWS__CATZ(head, n, sizeof head, "\r\n\r\n");
    n = RTWS__CATZ(head, n, sizeof head, reason);
    n = rtws__cat(head, n, sizeof head, "\n", 1);
    if (n <= sizeof head) rtws__queue_bytes(c, head, n);
    c->priv_.err = RTWS_ERR_HANDSHAKE;
    rtws__emit_error(c, RTWS_ERR_HANDSHAKE, status);
    rtws__finish(c);
}
#else /* RTWS_NO_SERVER: a server-role connection fails at its request */
static void rtws__refuse(rtws_conn *c, int status, const char *reason) {
    (void)status, (void)reason;
    c->priv_.err = RTWS_ERR_INVALID;
    rtws__emit_error(c, RTWS_ERR_INVALID, 0);
    rtws__finish(c);
}
#endif /* !RTWS_NO_SERVER */

static int rtws__valid_token_list(const char *s) {
    for (; *s; s++)
        if (!rtws__is_tchar((unsigned char)*s) && *s != ',' && *s != ' ') return 0;
    return 1;
}

static void rtws__open(rtws_conn *c) {
    rtws_event ev;
    c->priv_.state = RTWS_STATE_OPEN;
    c->priv_.opened = 1;
    c->priv_.last_rx = c->priv_.last_msg_rx = c->priv_.now;
    c->priv_.opened_at = c->priv_.now ? c->priv_.now : 1;
    c->priv_.ping_at = 0;
    c->priv_.hs_deadline = 0; /* from now on: the message deadline */
    rtws__event_init(&ev, RTWS_EV_OPEN);
    if (c->priv_.cfg->role == RTWS_SERVER && c->priv_.hs) {
        ev.open.protocol.p = c->priv_.hs;
        ev.open.protocol.len = strlen(c->priv_.hs);
    } else if (c->priv_.cfg->role == RTWS_CLIENT && c->priv_.hs && c->priv_.hs[29]) {
        ev.open.protocol.p = c->priv_.hs + 29 + strlen(c->priv_.hs + 29) + 1;
        ev.open.protocol.len = strlen(ev.open.protocol.p);
    }
    rtws__emit(c, &ev);
}

/* ---- permessage-deflate (RFC 7692): negotiation ---- */

#if !defined(RTWS_NO_DEFLATE)
static size_t rtws__pmd_num(char *out, size_t n, size_t cap, const char *name, unsigned v) {
    return rtws__cat_dec(out, RTWS__CATZ(out, n, cap, name), cap, v);
}

/* A new state with the agreed parameters, or NULL (no memory or budget:
   the extension is then declined, or the client fails). */
static rtws__pmd *rtws__pmd_new(rtws_conn *c, unsigned rx_bits, unsigned tx_bits, int rx_takeover,
                                int tx_takeover) {
    rtws__pmd *z = (rtws__pmd *)rtws__pmd_alloc(c, sizeof *z);
    if (!z) return NULL;
    memset(z, 0, sizeof *z);
    z->rx_bits = (uint8_t)rx_bits;
    z->tx_bits = (uint8_t)tx_bits;
    z->rx_takeover = (uint8_t)rx_takeover;
    z->tx_takeover = (uint8_t)tx_takeover;
    return z;
}

/* An idle connection's state is parked: the trim frees it (64 bytes of
   every idle connection that agreed the extension) and keeps what outlives a
   message in c (zpark, hx.zw); rtws__pmd_wake makes it again for the next
   compressed message. Only a state that the trim left without codec or
   buffer, and whose count fits, is parked. */
static void rtws__pmd_park(rtws_conn *c) {
    rtws__pmd *z = c->priv_.hx.pmd;
    if (z->inf || z->def || z->zbuf || z->rx_bits > 15 || z->tx_bits > 15 ||
        !(z->rx_bits | z->tx_bits) || z->runs > SIZE_MAX >> 2)
        return;
    c->priv_.zpark = (uint8_t)(z->rx_bits | z->tx_bits << 4);
    c->priv_.hx.zw = (size_t)z->runs << 2 | (size_t)z->rx_takeover << 1 | (size_t)z->tx_takeover;
    rtws__pmd_give(c, z, sizeof *z);
}
/* The state, made again when parked; NULL when that fails (memory, budget). */
static rtws__pmd *rtws__pmd_wake(rtws_conn *c) {
    size_t w = c->priv_.hx.zw;
    rtws__pmd *z;
    if (!c->priv_.zpark) return c->priv_.hx.pmd;
    z = rtws__pmd_new(c, c->priv_.zpark & 15u, (unsigned)c->priv_.zpark >> 4, (int)(w >> 1 & 1u),
                      (int)(w & 1u));
    if (!z) return NULL;
    z->runs = w >> 2;
    z->rx_fresh = 1; /* the parked connection was between messages */
    c->priv_.zpark = 0;
    c->priv_.hx.pmd = z;
    return z;
}
/* The agreed parameters (windows, takeovers) into *p, parked or not; 0 when
   the extension was not agreed. */
static int rtws__pmd_params(const rtws_conn *c, rtws__pmd *p) {
    if (c->priv_.zpark) {
        p->rx_bits = (uint8_t)(c->priv_.zpark & 15u);
        p->tx_bits = (uint8_t)(c->priv_.zpark >> 4);
        p->rx_takeover = (uint8_t)(c->priv_.hx.zw >> 1 & 1u);
        p->tx_takeover = (uint8_t)(c->priv_.hx.zw & 1u);
        return 1;
    }
    if (!c->priv_.hx.pmd) return 0;
    p->rx_bits = c->priv_.hx.pmd->rx_bits;
    p->tx_bits = c->priv_.hx.pmd->tx_bits;
    p->rx_takeover = c->priv_.hx.pmd->rx_takeover;
    p->tx_takeover = c->priv_.hx.pmd->tx_takeover;
    return 1;
}

#if !defined(RTWS_NO_SERVER)
/* Server: the first permessage-deflate offer of req that can be honoured, in
   the client's order (RFC 7692 §5, §7.1). An offer is declined when a
   parameter is unknown, malformed or repeated (rtws_pmd_parse), or when it
   cannot be limited to deflate_peer_window_bits (no client_max_window_bits).
   The answer's parameters: server_no_context_takeover when offered,
   deflate_own_no_takeover or not deflate_takeover (§7.1.1.1);
   client_no_context_takeover when offered or deflate_peer_no_takeover
   (§7.1.1.2); server_max_window_bits,
   at most the offer's, when offered or ours is under 15 (§7.1.2.1);
   client_max_window_bits only when offered and we limit it (§7.1.2.2).
   Writes the header line into out (*n advanced) and returns the state, or
   NULL when nothing was agreed (a list that does not parse declines all). */
static rtws__pmd *rtws__pmd_accept(rtws_conn *c, const rtws_http *req, char *out, size_t *n,
                                   size_t cap) {
    const rtws_config *cfg = c->priv_.cfg;
    size_t h;
    if (cfg->deflate_off) return NULL;
    for (h = 0; h < req->nheaders; h++) {
        rtws_pmd_offer offers[8];
        size_t count = 0, i;
        if (!rtws__str_ieq(req->headers[h].name, "Sec-WebSocket-Extensions")) continue;
        if (rtws_pmd_parse(req->headers[h].value.p, req->headers[h].value.len, 0, offers, 8,
                           &count, NULL) != RTWS_OK)
            continue;
        for (i = 0; i < count && i < 8; i++) {
            const rtws_pmd_offer *o = &offers[i];
            unsigned own = cfg->deflate_window_bits, peer = cfg->deflate_peer_window_bits;
            unsigned tx = o->server_max_window_bits && o->server_max_window_bits < own
                              ? o->server_max_window_bits : own;
            unsigned rx = o->client_max_window_bits > RTWS_PMD_BITS_ANY ? o->client_max_window_bits : 15;
            int tx_nt = o->server_no_context_takeover || cfg->deflate_own_no_takeover ||
                        !cfg->deflate_takeover;
            /* not asked unasked: RFC 7692 §7.1.1.2 allows it, but Chromium
               then drops the extension (measured: tests/interop_browser.sh) */
            int rx_nt = o->client_no_context_takeover || cfg->deflate_peer_no_takeover;
            rtws__pmd *z;
            if (o->status != RTWS_PMD_OK) continue;
            if (rx > peer && !o->client_max_window_bits) continue; /* cannot limit it */
            if (rx > peer) rx = peer;
            z = rtws__pmd_new(c, rx, tx, !rx_nt, !tx_nt);
            if (!z) return NULL;
            *n = RTWS__CATZ(out, *n, cap, "\r\nSec-WebSocket-Extensions: permessage-deflate");
            if (tx_nt) *n = RTWS__CATZ(out, *n, cap, "; server_no_context_takeover");
            if (rx_nt) *n = RTWS__CATZ(out, *n, cap, "; client_no_context_takeover");
            if (o->server_max_window_bits || tx < 15)
                *n = rtws__pmd_num(out, *n, cap, "; server_max_window_bits=", tx);
            if (o->client_max_window_bits && rx < 15)
                *n = rtws__pmd_num(out, *n, cap, "; client_max_window_bits=", rx);
            return z;
        }
    }
    return NULL;
}
#endif

#if !defined(RTWS_NO_CLIENT)
/* Non-empty elements of an extension list (its commas are separators once
   rtws_pmd_parse has accepted it: a value is a token). */
static size_t rtws__ext_elements(const rtws_str *v) {
    size_t i, n = 0;
    int any = 0;
    for (i = 0; i <= v->len; i++) {
        if (i == v->len || v->p[i] == ',') {
            n += (size_t)any;
            any = 0;
        } else if (v->p[i] != ' ' && v->p[i] != '\t') {
            any = 1;
        }
    }
    return n;
}

/* Client: the offer, "Sec-WebSocket-Extensions: ...\r\n" (n unchanged when
   deflate_off). client_max_window_bits without a value says we take any
   limit the server sets; the rest asks for what the config wants. */
static size_t rtws__pmd_offer(const rtws_config *cfg, char *out, size_t n, size_t cap) {
    if (cfg->deflate_off) return n;
    n = RTWS__CATZ(out, n, cap, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits");
    if (cfg->deflate_peer_window_bits < 15)
        n = rtws__pmd_num(out, n, cap, "; server_max_window_bits=", cfg->deflate_peer_window_bits);
    if (cfg->deflate_own_no_takeover) n = RTWS__CATZ(out, n, cap, "; client_no_context_takeover");
    if (cfg->deflate_peer_no_takeover) n = RTWS__CATZ(out, n, cap, "; server_no_context_takeover");
    return RTWS__CATZ(out, n, cap, "\r\n");
}

/* Client: checks the server's Sec-WebSocket-Extensions against our offer
   (RFC 7692 §5, §7.1): exactly one element, permessage-deflate, every
   parameter known, well-formed and once; server_max_window_bits and
   server_no_context_takeover present when we asked for them, the window no
   larger than asked. Returns 0 with *out set (NULL: no extension), -1 for a
   response to fail the connection on, -2 when out of memory. */
static int rtws__pmd_response(rtws_conn *c, const rtws_http *res, rtws__pmd **out) {
    const rtws_config *cfg = c->priv_.cfg;
    rtws_pmd_offer o;
    size_t h, total = 0, elements = 0;
    unsigned tx, rx;
    *out = NULL;
    memset(&o, 0, sizeof o);
    for (h = 0; h < res->nheaders; h++) {
        size_t count = 0;
        if (!rtws__str_ieq(res->headers[h].name, "Sec-WebSocket-Extensions")) continue;
        if (rtws_pmd_parse(res->headers[h].value.p, res->headers[h].value.len, 1, &o, 1, &count,
                           NULL) != RTWS_OK)
            return -1;
        total += count;
        elements += rtws__ext_elements(&res->headers[h].value);
    }
    if (!elements) return 0;
    if (cfg->deflate_off || total != 1 || elements != 1 || o.status != RTWS_PMD_OK) return -1;
    if (cfg->deflate_peer_window_bits < 15 &&
        (!o.server_max_window_bits || o.server_max_window_bits > cfg->deflate_peer_window_bits))
        return -1;
    if (cfg->deflate_peer_no_takeover && !o.server_no_context_takeover) return -1;
    rx = o.server_max_window_bits ? o.server_max_window_bits : 15;
    tx = cfg->deflate_window_bits;
    if (o.client_max_window_bits && o.client_max_window_bits < tx) tx = o.client_max_window_bits;
    *out = rtws__pmd_new(c, rx, tx, !o.server_no_context_takeover,
                         !(o.client_no_context_takeover || cfg->deflate_own_no_takeover));
    return *out ? 0 : -2;
}
#endif
#endif /* !RTWS_NO_DEFLATE */

static int rtws__has_crlf(const char *s) { return s && strpbrk(s, "\r\n") != NULL; }

#if !defined(RTWS_NO_SERVER) /* the server handshake */
/* Answers a plain HTTP request with what the on_http hook gave. */
static void rtws__http_answer(rtws_conn *c, const rtws_http *req, const rtws_http_reply *r) {
    char head[1024];
    size_t n;
    const char *ct = r->content_type ? r->content_type : "text/plain; charset=utf-8";
    int status = r->status >= 100 && r->status <= 599 ? r->status : 500;
    int is_head = rtws__str_ieq(req->method, "HEAD");
    n = rtws__status_line(head, sizeof head, status,
                          status == 200 ? "OK" : rtws__status_text(status));
    n = RTWS__CATZ(head, n, sizeof head, "\r\nContent-Type: ");
    if (rtws__has_crlf(ct)) ct = "application/octet-stream";
    n = RTWS__CATZ(head, n, sizeof head, ct);
    n = RTWS__CATZ(head, n, sizeof head, "\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: ");
    n = rtws__cat_dec(head, n, sizeof head, r->body_len);
    n = RTWS__CATZ(head, n, sizeof head, "\r\n");
    if (r->headers) n = RTWS__CATZ(head, n, sizeof head, r->headers);
    n = RTWS__CATZ(head, n, sizeof head, "\r\n");
    if (n > sizeof head || rtws__queue_bytes(c, head, n) != RTWS_OK ||
        (!is_head && r->body_len &&
         rtws__queue_bytes(c, (const char *)r->body, r->body_len) != RTWS_OK)) {
        rtws__drop_unsent(c);
        rtws__refuse(c, 500, "reply too large");
        return;
    }
    rtws__finish(c);
}

/* The body of a plain request for on_http (RFC 9112 §6): its Content-Length
   in *blen (0: none). Returns 0, or the status to refuse with: 411 for
   Transfer-Encoding (chunked is not decoded), 400 for a Content-Length that
   is not digits or differs between repeats, 413 over max_http_body. */
static int rtws__http_body_len(const rtws_http *req, size_t cap, size_t *blen) {
    size_t i, j, seen = 0;
    *blen = 0;
    if (rtws_http_get_header(req, "Transfer-Encoding")) return 411;
    for (i = 0; i < req->nheaders; i++) {
        const rtws_str *v = &req->headers[i].value;
        size_t x = 0;
        if (!rtws__str_ieq(req->headers[i].name, "Content-Length")) continue;
        if (!v->len) return 400;
        for (j = 0; j < v->len; j++) {
            if (v->p[j] < '0' || v->p[j] > '9') return 400; /* also "1, 1" */
            if (x > (SIZE_MAX - 9) / 10) return 413;
            x = x * 10 + (size_t)(v->p[j] - '0');
        }
        if (seen++ && x != *blen) return 400;
        *blen = x;
    }
    return *blen > cap ? 413 : 0;
}

/* Answers the request head hp[0..head), avail bytes of which are here (the
   head and what follows it). Returns 0, having done nothing, when the body
   of a plain request is not all here yet: h.len then holds the bytes the
   head and body need (the frame header is unused until the open), and
   hs_scanned the head's. */
static int rtws__server_handshake(rtws_conn *c, const char *hp, size_t head, size_t avail) {
    rtws_http req;
    rtws_upgrade u;
    size_t off = 0, n = 0;
    const char *proto = NULL;
    char resp[768];
    int status;
    struct rtws__pmd *pmd = NULL;
    {
        rtws_err pe = rtws_http_parse_request(hp, head, &req,
                                              c->priv_.cfg->max_headers, &off);
        if (pe == RTWS_ERR_LIMIT) {
            rtws__refuse(c, 431, "too many header fields");
            return 1;
        }
        if (pe != RTWS_OK) {
            rtws__refuse(c, 400, "malformed HTTP request");
            return 1;
        }
    }
    if (c->priv_.cfg->on_http && !rtws_http_has_token(&req, "Upgrade", "websocket")) {
        rtws_http_reply r;
        int handled;
        size_t blen;
        status = rtws__http_body_len(&req, c->priv_.cfg->max_http_body, &blen);
        if (status) {
            rtws__refuse(c, status, status == 413   ? "request body exceeds the limit (max_http_body)"
                                    : status == 411 ? "chunked request bodies are not supported"
                                                    : "invalid Content-Length");
            return 1;
        }
        if (blen > avail - head) {
            /* RFC 9110 §10.1.1: a client that waits for leave to send its
               body (curl does above 1 KiB) gets it at once, not after its timeout */
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            if (!c->priv_.h.len && rtws_http_has_token(&req, "Expect", "100-continue") &&
                rtws__queue_bytes(c, cont, sizeof cont - 1) != RTWS_OK) {
                rtws__fail(c, RTWS_ERR_NOMEM, 0);
                return 1;
            }
            c->priv_.h.len = head + blen;
            c->priv_.hx.hs_scanned = head;
            return 0;
        }
        c->priv_.h.len = 0;
        req.body.p = hp + head;
        req.body.len = blen;
        memset(&r, 0, sizeof r);
        c->priv_.h.opcode = RTWS__OP_PLAIN_HTTP; /* never a WebSocket: the host stops counting it */
        rtws__notify(c);
        c->priv_.depth++;
        handled = c->priv_.cfg->on_http(c, &req, &r, c->priv_.user);
        c->priv_.depth--;
        if (c->priv_.freed) return 1;
        if (handled) {
            rtws__http_answer(c, &req, &r);
            return 1;
        }
    }
    status = rtws_http_check_upgrade(&req, &u);
    if (status != 101) {
        rtws__refuse(c, status, u.reason);
        return 1;
    }
    if (c->priv_.cfg->allowed_origins) {
        /* cross-site WebSocket hijacking: browsers send Origin and let any page
           connect to any host, loopback included */
        const char *const *o = c->priv_.cfg->allowed_origins;
        for (; *o; o++)
            if (u.origin.len && rtws__str_ieq(u.origin, *o)) break;
        if (!*o) {
            rtws__refuse(c, 403, "origin not allowed");
            return 1;
        }
    }
    if (c->priv_.cfg->on_accept) {
        int r;
        c->priv_.depth++;
        r = c->priv_.cfg->on_accept(c, &req, &proto, c->priv_.user);
        c->priv_.depth--;
        if (c->priv_.freed) return 1;
        if (r) {
            rtws__refuse(c, r, NULL);
            return 1;
        }
        if (proto && (!*proto || strlen(proto) > 256 || !rtws__valid_token_list(proto))) {
            rtws__refuse(c, 500, "invalid subprotocol chosen");
            return 1;
        }
    }
    n = RTWS__CATZ(resp, n, sizeof resp,
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: ");
    {
        char acc[29];
        rtws_upgrade_accept_key(u.key.p, u.key.len, acc);
        n = rtws__cat(resp, n, sizeof resp, acc, 28);
    }
    if (proto) {
        size_t pl = strlen(proto);
        n = RTWS__CATZ(resp, n, sizeof resp, "\r\nSec-WebSocket-Protocol: ");
        n = rtws__cat(resp, n, sizeof resp, proto, pl);
        c->priv_.hs = (char *)rtws__alloc(&c->priv_.cfg->allocator, pl + 1);
        if (!c->priv_.hs) {
            rtws__fail(c, RTWS_ERR_NOMEM, 0);
            return 1;
        }
        memcpy(c->priv_.hs, proto, pl + 1);
    }
#if !defined(RTWS_NO_DEFLATE)
    pmd = rtws__pmd_accept(c, &req, resp, &n, sizeof resp);
#endif
    n = RTWS__CATZ(resp, n, sizeof resp, "\r\n\r\n");
    c->priv_.head_left = (uint32_t)RTWS__MIN(n, (size_t)UINT32_MAX);
    if (n > sizeof resp || rtws__queue_bytes(c, resp, n) != RTWS_OK) {
#if !defined(RTWS_NO_DEFLATE)
        if (pmd) rtws__pmd_give(c, pmd, sizeof *pmd);
#endif
        rtws__fail(c, RTWS_ERR_NOMEM, 0);
        return 1;
    }
    c->priv_.hx.pmd = pmd; /* the head is done with hx */
    rtws__open(c);
    return 1;
}
#else
static int rtws__server_handshake(rtws_conn *c, const char *hp, size_t head, size_t avail) {
    (void)hp, (void)head, (void)avail;
    rtws__refuse(c, 0, NULL);
    return 1;
}
#endif /* !RTWS_NO_SERVER */

/* The upgrade request held back behind a proxy's CONNECT, "" when none. */
static char *rtws__held_request(const rtws_conn *c) {
    char *offer = c->priv_.hs + 29;
    return offer + 2 * (strlen(offer) + 1);
}

/* 1 while a client waits for its proxy's answer to the CONNECT. */
static int rtws__tunneling(const rtws_conn *c) {
    return c->priv_.cfg->role == RTWS_CLIENT && c->priv_.state == RTWS_STATE_HANDSHAKE &&
           c->priv_.hs && *rtws__held_request(c);
}

#if !defined(RTWS_NO_CLIENT) /* the client handshake */
/* appends the header line "name: value\r\n" (name given with its ": ") */
static size_t rtws__cat_header(char *dst, size_t off, size_t cap, const char *name,
                               const char *value) {
    off = RTWS__CATZ(dst, off, cap, name);
    off = RTWS__CATZ(dst, off, cap, value);
    return rtws__cat(dst, off, cap, "\r\n", 2);
}

RTWS_API rtws_err rtws_conn_start(rtws_conn *c, const rtws_client_opts *o,
                                         uint64_t now_ms) {
    uint8_t raw[16];
    char key[25], *req;
    size_t n = 0, cap, plen;
    const char *path = o && o->path && *o->path ? o->path : "/";
    rtws_err e = RTWS_OK;
    if (c->priv_.cfg->role != RTWS_CLIENT || c->priv_.state != RTWS_STATE_IDLE || !o || !o->host ||
        !*o->host)
        return RTWS_ERR_INVALID;
    if (rtws__has_crlf(o->host) || rtws__has_crlf(path) || strchr(path, ' ') ||
        rtws__has_crlf(o->origin) || rtws__has_crlf(o->authorization) ||
        (o->protocols && (!rtws__valid_token_list(o->protocols) || !*o->protocols)))
        return RTWS_ERR_INVALID;
    if (o->extra_headers && *o->extra_headers) {
        /* whole "Name: value\r\n" lines, no bare CR or LF, no blank line */
        const char *s = o->extra_headers;
        size_t len = strlen(s), i;
        if (len < 2 || s[len - 2] != '\r' || s[len - 1] != '\n' || strstr(s, "\r\n\r\n") ||
            s[0] == '\r')
            return RTWS_ERR_INVALID;
        for (i = 0; i < len; i++)
            if ((s[i] == '\r' && s[i + 1] != '\n') || (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')))
                return RTWS_ERR_INVALID;
    }
    if (o->tunnel && (!*o->tunnel || rtws__has_crlf(o->tunnel) || strchr(o->tunnel, ' ') ||
                      rtws__has_crlf(o->proxy_authorization)))
        return RTWS_ERR_INVALID;
    rtws__enter(c, now_ms);
    c->priv_.hs_deadline = c->priv_.now + c->priv_.cfg->handshake_timeout_ms;
    if (!c->priv_.cfg->random || c->priv_.cfg->random(raw, sizeof raw, c->priv_.cfg->random_user) != 0) {
        e = RTWS_ERR_RANDOM;
        goto out;
    }
    rtws_base64_encode(raw, 16, key, sizeof key);
    plen = o->protocols ? strlen(o->protocols) : 0;
    cap = 256 + strlen(path) + strlen(o->host) + plen + (o->origin ? strlen(o->origin) : 0) +
          (o->authorization ? strlen(o->authorization) : 0) +
          (o->extra_headers ? strlen(o->extra_headers) : 0) +
          (o->tunnel ? 2 * strlen(o->tunnel) : 0) +
          (o->proxy_authorization ? strlen(o->proxy_authorization) : 0) + 160;
    /* c->priv_.hs = expected accept (28 chars + NUL), the offered protocols,
       room for the one picked, then the upgrade request held back while a
       proxy tunnel is being set up ("" when none: rtws__tunneling) */
    c->priv_.hs = (char *)rtws__alloc(&c->priv_.cfg->allocator,
                                      29 + 2 * (plen + 1) + (o->tunnel ? cap : 1));
    if (!c->priv_.hs) {
        e = RTWS_ERR_NOMEM;
        goto out;
    }
    rtws_upgrade_accept_key(key, 24, c->priv_.hs);
    memcpy(c->priv_.hs + 29, o->protocols ? o->protocols : "", plen + 1);
    c->priv_.hs[29 + 2 * (plen + 1)] = '\0';
    req = (char *)rtws__alloc(&c->priv_.cfg->allocator, cap);
    if (!req) {
        e = RTWS_ERR_NOMEM;
        goto out;
    }
    n = RTWS__CATZ(req, n, cap, "GET ");
    n = RTWS__CATZ(req, n, cap, path);
    n = RTWS__CATZ(req, n, cap, " HTTP/1.1\r\n");
    n = rtws__cat_header(req, n, cap, "Host: ", o->host);
    n = RTWS__CATZ(req, n, cap, "Upgrade: websocket\r\nConnection: Upgrade\r\n");
    n = rtws__cat_header(req, n, cap, "Sec-WebSocket-Key: ", key);
    n = RTWS__CATZ(req, n, cap, "Sec-WebSocket-Version: 13\r\n");
    if (plen) n = rtws__cat_header(req, n, cap, "Sec-WebSocket-Protocol: ", o->protocols);
    if (o->origin) n = rtws__cat_header(req, n, cap, "Origin: ", o->origin);
    if (o->authorization) n = rtws__cat_header(req, n, cap, "Authorization: ", o->authorization);
#if !defined(RTWS_NO_DEFLATE)
    n = rtws__pmd_offer(c->priv_.cfg, req, n, cap);
#endif
    if (o->extra_headers) n = RTWS__CATZ(req, n, cap, o->extra_headers);
    n = RTWS__CATZ(req, n, cap, "\r\n");
    if (o->tunnel && n >= cap) {
        n = cap + 1; /* did not fit: RTWS_ERR_NOMEM below */
    } else if (o->tunnel) { /* CONNECT first (RFC 9110 §9.3.6), the upgrade after its 2xx */
        memcpy(c->priv_.hs + 29 + 2 * (plen + 1), req, n);
        c->priv_.hs[29 + 2 * (plen + 1) + n] = '\0';
        n = 0;
        n = RTWS__CATZ(req, n, cap, "CONNECT ");
        n = RTWS__CATZ(req, n, cap, o->tunnel);
        n = RTWS__CATZ(req, n, cap, " HTTP/1.1\r\n");
        n = rtws__cat_header(req, n, cap, "Host: ", o->tunnel);
        if (o->proxy_authorization)
            n = rtws__cat_header(req, n, cap, "Proxy-Authorization: ", o->proxy_authorization);
        n = RTWS__CATZ(req, n, cap, "\r\n");
    }
    c->priv_.head_left = (uint32_t)RTWS__MIN(n, (size_t)UINT32_MAX);
    e = n <= cap ? rtws__queue_bytes(c, req, n) : RTWS_ERR_NOMEM;
    rtws__free(&c->priv_.cfg->allocator, req);
    if (e == RTWS_OK) c->priv_.state = RTWS_STATE_HANDSHAKE;
out:
    rtws__leave(c);
    return e;
}

static void rtws__client_fail(rtws_conn *c, rtws_err err, int status) {
    c->priv_.err = (int8_t)err;
    rtws__emit_error(c, err, status);
    rtws__finish(c);
}

/* The proxy's answer: a 2xx opens the tunnel and lets the upgrade request go. */
static void rtws__tunnel_answer(rtws_conn *c, const char *hp, size_t head) {
    rtws_http res;
    size_t off;
    char *req = rtws__held_request(c);
    rtws_err e;
    if (rtws_http_parse_response(hp, head, &res, c->priv_.cfg->max_headers, &off) != RTWS_OK) {
        rtws__client_fail(c, RTWS_ERR_PROXY, 0);
        return;
    }
    if (res.status < 200 || res.status > 299) {
        rtws__client_fail(c, RTWS_ERR_PROXY, res.status);
        return;
    }
    c->priv_.hx.hs_scanned = 0; /* the next head is the server's */
    off = strlen(req);
    c->priv_.head_left = (uint32_t)RTWS__MIN(off, (size_t)UINT32_MAX);
    e = rtws__queue_bytes(c, req, off);
    req[0] = '\0'; /* the tunnel is up */
    if (e != RTWS_OK) rtws__client_fail(c, e, 0);
}

static void rtws__client_handshake(rtws_conn *c, const char *hp, size_t head) {
    rtws_http res;
    size_t off;
    const rtws_str *v;
    struct rtws__pmd *pmd = NULL;
    if (rtws__tunneling(c)) {
        rtws__tunnel_answer(c, hp, head);
        return;
    }
    if (rtws_http_parse_response(hp, head, &res,
                                 c->priv_.cfg->max_headers, &off) != RTWS_OK) {
        rtws__client_fail(c, RTWS_ERR_HANDSHAKE, 0);
        return;
    }
    if ((res.status == 301 || res.status == 302 || res.status == 307 || res.status == 308) &&
        c->priv_.io_ && c->priv_.io_->redirect) {
        const rtws_str *loc = rtws_http_get_header(&res, "Location");
        rtws_err e = c->priv_.io_->redirect(c, res.status, loc ? loc->p : NULL, loc ? loc->len : 0);
        if (e == RTWS_OK) { /* followed: quiet until the host starts c over */
            c->priv_.drop_input = 1;
            return;
        }
        if (e != RTWS_EAGAIN) {
            rtws__client_fail(c, e, res.status);
            return;
        }
    }
    if (res.status != 101) {
        rtws__client_fail(c, RTWS_ERR_HANDSHAKE, res.status);
        return;
    }
    v = rtws_http_get_header(&res, "Sec-WebSocket-Accept");
    if (!rtws_http_has_token(&res, "Upgrade", "websocket") ||
        !rtws_http_has_token(&res, "Connection", "Upgrade") || !v || v->len != 28 ||
        memcmp(v->p, c->priv_.hs, 28) != 0)
        goto bad;
#if !defined(RTWS_NO_DEFLATE)
    {
        int r = rtws__pmd_response(c, &res, &pmd);
        if (r == -2) {
            rtws__client_fail(c, RTWS_ERR_NOMEM, 101);
            return;
        }
        if (r) goto bad;
    }
#else
    if (rtws_http_get_header(&res, "Sec-WebSocket-Extensions")) goto bad;
#endif
    v = rtws_http_get_header(&res, "Sec-WebSocket-Protocol");
    {
        /* after the offer: the protocol the server picked (empty when none) */
        char *offer = c->priv_.hs + 29, *pick = offer + strlen(offer) + 1;
        if (v) {
            rtws_str offered;
            offered.p = offer;
            offered.len = strlen(offer);
            if (!v->len || v->len > offered.len) goto bad;
            memcpy(pick, v->p, v->len);
            pick[v->len] = '\0';
            if (!rtws__list_has(offered, pick)) goto bad;
        } else {
            pick[0] = '\0';
        }
    }
    c->priv_.hx.pmd = pmd; /* the head is done with hx */
    rtws__open(c);
    return;
bad:
#if !defined(RTWS_NO_DEFLATE)
    if (pmd) rtws__pmd_give(c, pmd, sizeof *pmd);
#endif
    rtws__client_fail(c, RTWS_ERR_HANDSHAKE, 101);
}
#else /* RTWS_NO_CLIENT: unreachable, nothing starts a client-role connection */
static void rtws__client_handshake(rtws_conn *c, const char *hp, size_t head) {
    (void)hp, (void)head;
    c->priv_.err = RTWS_ERR_INVALID;
    rtws__emit_error(c, RTWS_ERR_INVALID, 0);
    rtws__finish(c);
}
#endif /* !RTWS_NO_CLIENT */

/* ---- receive side ---- */

/* Contiguous bytes the current unit needs at rstart next: a handshake head,
   a frame header, a control frame, or a whole single-frame message (delivered
   from rbuf without a copy). Other payloads stream through. A whole message
   gets room as its bytes arrive (a read more than what is there), never its
   declared length at once: a header announcing 16 MiB followed by one
   byte costs a small buffer, not 16 MiB. */
static size_t rtws__rneed(const rtws_conn *c) {
    size_t have = c->priv_.rend - c->priv_.rstart;
    if (c->priv_.state <= RTWS_STATE_HANDSHAKE) { /* grow as the head does, up to its cap */
        size_t want = have + 1024;
        if (c->priv_.h.len) return (size_t)c->priv_.h.len; /* a plain request's head and body */
        return want < c->priv_.cfg->max_handshake + 1 ? want : c->priv_.cfg->max_handshake + 1;
    }
    if (!c->priv_.have_h) return RTWS_FRAME_HEADER_MAX;
    if (c->priv_.h.opcode >= 8) return (size_t)c->priv_.h.len;
    if (c->priv_.whole) /* the buffer doubles when a read does not fit (rtws__grow) */
        return (size_t)RTWS__MIN(c->priv_.h.len, (uint64_t)have + RTWS__RBUF_MIN);
    return 1;
}

/* Makes room for at least want more bytes after rend, within the caps. */
static int rtws__rreserve(rtws_conn *c, size_t want) {
    size_t used = c->priv_.rend - c->priv_.rstart, need, limit;
    rtws_err e;
    limit = RTWS__DEF(c->priv_.cfg->max_message, 1) + RTWS_FRAME_HEADER_MAX;
    if (c->priv_.cfg->max_handshake + 1 > limit) limit = c->priv_.cfg->max_handshake + 1;
    if (c->priv_.h.len && c->priv_.state <= RTWS_STATE_HANDSHAKE && c->priv_.h.len > limit)
        limit = (size_t)c->priv_.h.len; /* <= max_handshake + max_http_body */
    limit += RTWS__RBUF_KEEP;
    if (want > limit - used) want = limit - used;
    if (c->priv_.rcap - c->priv_.rend >= want) return 1;
    if (c->priv_.rstart && c->priv_.rcap - used >= want) {
        memmove(c->priv_.rbuf, c->priv_.rbuf + c->priv_.rstart, used);
        c->priv_.rend = used;
        c->priv_.rstart = 0;
        return 1;
    }
    need = RTWS__MAX(used + want, RTWS__MIN((size_t)RTWS__RBUF_MIN, limit));
    if (c->priv_.rstart) {
        memmove(c->priv_.rbuf, c->priv_.rbuf + c->priv_.rstart, used);
        c->priv_.rend = used;
        c->priv_.rstart = 0;
    }
    e = rtws__buf_grow(c, &c->priv_.rbuf, &c->priv_.rcap, need, limit);
    if (e == RTWS_ERR_LIMIT) rtws__fail_grow(c, e); /* the caller's NOMEM is then a no-op */
    return e == RTWS_OK;
}

RTWS_API uint8_t *rtws_conn_recv_buf(rtws_conn *c, size_t min_len, size_t *cap) {
    size_t want, need, have;
    *cap = 0;
    if (c->priv_.freed || c->priv_.rborrow) return NULL;
    need = rtws__rneed(c);
    have = c->priv_.rend - c->priv_.rstart;
    want = need > have ? need - have : 0;
    if (want < min_len) want = min_len;
    if (want < c->priv_.rhint) want = c->priv_.rhint;
    if (!rtws__rreserve(c, want)) return NULL;
    *cap = c->priv_.rcap - c->priv_.rend;
    c->priv_.roffer = (uint32_t)RTWS__MIN(*cap, (size_t)UINT32_MAX);
    return c->priv_.rbuf + c->priv_.rend;
}

static inline void rtws__deliver(rtws_conn *c, rtws_opcode op, const uint8_t *p, size_t n, int first,
                          int fin) {
    rtws_event ev;
    c->priv_.bytes_in += n;
    if (fin) c->priv_.msgs_in++;
    if (fin) c->priv_.hs_deadline = 0; /* the message is whole: its clock stops */
    c->priv_.last_msg_rx = c->priv_.now;
    rtws__event_init(&ev, RTWS_EV_MESSAGE);
    ev.message.opcode = op;
    ev.message.data = p;
    ev.message.len = n;
    ev.message.first = first;
    ev.message.fin = fin;
    rtws__emit(c, &ev);
}

/* Our heartbeat ping carries the time it was sent (ping_at), big-endian. */
static int rtws__hb_payload_is(uint64_t ping_at, const uint8_t *p) {
    unsigned i;
    for (i = 0; i < 8; i++)
        if (p[i] != (uint8_t)(ping_at >> (56 - 8 * i))) return 0;
    return 1;
}

/* One round trip of our ping sent at `at`: into the stats, and returned. */
static uint32_t rtws__rtt_add(rtws_conn *c, uint64_t at) {
    uint32_t rtt = (uint32_t)RTWS__MIN(c->priv_.now > at ? c->priv_.now - at : 0, (uint64_t)UINT32_MAX);
    c->priv_.rtt_last = rtt;
    if (!c->priv_.rtt_n || rtt < c->priv_.rtt_min) c->priv_.rtt_min = rtt;
    c->priv_.rtt_n++;
    c->priv_.rtt_sum += rtt;
    return rtt;
}

/* Checksum of a ping payload (FNV-1a over the length and the bytes): what
   rtws_conn_ping remembers to match the pong, instead of up to 125 bytes. */
static uint32_t rtws__ping_sum(const uint8_t *p, size_t n) {
    uint32_t h = 2166136261u ^ (uint32_t)n;
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

static void rtws__on_control(rtws_conn *c, uint8_t *p, size_t n) {
    rtws_event ev;
    switch (c->priv_.h.opcode) {
    case RTWS_OP_PING:
        /* §5.5.2: a pong with the same payload, for every ping up to a bound
           (rtws__pong_push); none once our close is sent (§5.5.1) */
        if (!c->priv_.close_sent && rtws__ctl_get(c)) {
            rtws__pong_push(c, p, n);
            rtws__notify(c);
        }
        rtws__event_init(&ev, RTWS_EV_PING);
        ev.ping.data = p;
        ev.ping.len = n;
        rtws__emit(c, &ev);
        break;
    case RTWS_OP_PONG:
        rtws__event_init(&ev, RTWS_EV_PONG);
        ev.pong.data = p;
        ev.pong.len = n;
        if (c->priv_.ping_out && n == 8 && rtws__hb_payload_is(c->priv_.ping_at, p)) {
            c->priv_.ping_out = 0;
            ev.pong.rtt_ms = rtws__rtt_add(c, c->priv_.ping_at);
            ev.pong.matched = 1;
        } else if (c->priv_.ctl && c->priv_.ctl->uping_n) {
            rtws__ctl *k = c->priv_.ctl;
            uint32_t sum = rtws__ping_sum(p, n);
            unsigned i;
            for (i = 0; i < k->uping_n && k->uping_sum[i] != sum; i++) {}
            if (i < k->uping_n - (unsigned)k->uping_staged) { /* a ping not sent yet has no answer */
                ev.pong.rtt_ms = rtws__rtt_add(c, k->uping_at[i]);
                ev.pong.matched = 1;
                /* this one and every older one are done */
                memmove(k->uping_sum, k->uping_sum + i + 1, (k->uping_n - i - 1) * sizeof *k->uping_sum);
                memmove(k->uping_at, k->uping_at + i + 1, (k->uping_n - i - 1) * sizeof *k->uping_at);
                k->uping_n = (uint8_t)(k->uping_n - i - 1);
            }
        }
        rtws__emit(c, &ev);
        break;
    default: { /* RTWS_OP_CLOSE, §5.5.1 and §7.4 */
        unsigned code = RTWS_CLOSE_NO_STATUS;
        uint32_t st = 0;
        if (n == 1) {
            rtws__fail(c, RTWS_ERR_PROTOCOL, RTWS_CLOSE_PROTOCOL_ERROR);
            return;
        }
        if (n >= 2) {
            code = (unsigned)p[0] << 8 | p[1];
            if (!rtws_close_code_valid(code)) {
                rtws__fail(c, RTWS_ERR_PROTOCOL, RTWS_CLOSE_PROTOCOL_ERROR);
                return;
            }
            if (rtws_utf8_validate(&st, p + 2, n - 2, NULL) != RTWS_OK || st) {
                rtws__fail(c, RTWS_ERR_UTF8, RTWS_CLOSE_INVALID_DATA);
                return;
            }
        }
        c->priv_.close_recvd = 1;
        if (!c->priv_.close_sent) {
            /* echo the code (§5.5.1) after what is already queued */
            rtws__queue_close(c, code == RTWS_CLOSE_NO_STATUS ? 0 : code, NULL, 0);
            rtws__emit_close(c, code, n > 2 ? p + 2 : NULL, n > 2 ? n - 2 : 0, 1, 1);
        } else {
            rtws__emit_close(c, code, n > 2 ? p + 2 : NULL, n > 2 ? n - 2 : 0, 1, 0);
        }
        c->priv_.state = RTWS_STATE_CLOSED;
        c->priv_.drop_input = 1;
        /* §7.1.1: the server closes TCP first; a client waits for that, with
           a deadline */
        c->priv_.close_deadline = c->priv_.now + c->priv_.cfg->close_timeout_ms;
        if (c->priv_.cfg->role == RTWS_SERVER) c->priv_.cbits |= RTWS__C_WANT_CLOSE;
    }
    }
}

/* Unmasks and checks newly arrived payload bytes p[0..n) of the current frame. */
static int rtws__payload(rtws_conn *c, uint8_t *p, size_t n) {
    rtws__frame_unmask(&c->priv_.h, p, n);
    if (c->priv_.msg_op == RTWS_OP_TEXT && c->priv_.h.opcode < 8 && !c->priv_.cfg->no_utf8_check) {
        size_t bad;
        if (rtws_utf8_validate(&c->priv_.utf8, p, n, &bad) != RTWS_OK) {
            rtws__fail(c, RTWS_ERR_UTF8, RTWS_CLOSE_INVALID_DATA); /* fail fast */
            return 0;
        }
    }
    return 1;
}

static int rtws__utf8_end_ok(rtws_conn *c) {
    if (c->priv_.msg_op == RTWS_OP_TEXT && c->priv_.utf8 && !c->priv_.cfg->no_utf8_check) {
        rtws__fail(c, RTWS_ERR_UTF8, RTWS_CLOSE_INVALID_DATA);
        return 0;
    }
    return 1;
}

/* ---- permessage-deflate: messages (RFC 7692 §6, §7.2) ---- */
#if !defined(RTWS_NO_DEFLATE)
static const uint8_t rtws__pmd_tail[4] = {0, 0, 0xff, 0xff};

/* RSV1 of a data frame header: with the extension agreed the frame parser
   allows it on the first frame of a message, where it marks a compressed
   message (§6); on a continuation or control frame, or without the
   extension, the parser fails the frame with 1002. Called for an accepted
   header with RSV bits: returns RTWS__MSG_Z. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline)) /* off the uncompressed path: inlined, it cost it registers */
#endif
static uint8_t rtws__pmd_rsv(rtws_conn *c) {
    if (!c->priv_.zpark) c->priv_.hx.pmd->rx_fresh = 1; /* else rtws__pmd_wake sets it */
    return RTWS__MSG_Z;
}

static int rtws__pmd_inf_init(rtws_conn *c, rtws__pmd *z) {
    rtws_z_config zc;
    size_t off = (sizeof(rtws_inflate) + 15) & ~(size_t)15, mem, cap;
    int lend = !z->rx_takeover && rtws__conn_lends(c);
    void *b;
    memset(&zc, 0, sizeof zc);
    /* zlib's compressor turns a window of 8 bits into 9: read with 9 at least */
    zc.window_bits = z->rx_bits < 9 ? 9u : z->rx_bits;
    zc.max_output = c->priv_.cfg->max_message;
    mem = rtws_inflate_mem_size(&zc);
    cap = off + mem;
    b = lend ? rtws__pmd_lend(c, off + mem, &cap) : rtws__pmd_alloc(c, off + mem);
    if (!b) return 0;
    if (rtws_inflate_init((rtws_inflate *)b, &zc, (uint8_t *)b + off, mem) != RTWS_Z_OK) {
        if (lend) rtws__buf_drop(c, b, cap);
        else rtws__pmd_give(c, b, off + mem);
        return 0;
    }
    z->inf = (rtws_inflate *)b;
    z->inf_size = (uint32_t)cap;
    z->inf_lent = (uint8_t)lend;
    return 1;
}

/* Inflates in[0..n) into mbuf after mtotal: the whole message up to
   max_message (mbuf may grow to one byte more, so that the inflater's own
   max_output count is what stops a bomb, with 1009, after max_message bytes
   of output), or in stream mode pieces of up to 64 KiB delivered as mbuf
   fills. Text is checked as it comes out. tail: in is the 00 00 ff ff put
   back after the last frame, which a stream already ended (BFINAL) ignores.
   Returns 0 when c failed (or was freed by a callback). */
static int rtws__pmd_inflate(rtws_conn *c, rtws__pmd *z, const uint8_t *in, size_t n, int tail) {
    const rtws_config *cfg = c->priv_.cfg;
    int text = (c->priv_.msg_op & ~RTWS__MSG_Z) == RTWS_OP_TEXT && !cfg->no_utf8_check;
    size_t lim = cfg->stream ? RTWS__MIN(cfg->max_message, (size_t)65536) : cfg->max_message;
    if (lim < SIZE_MAX && !cfg->stream) lim++;
    for (;;) {
        size_t used = 0, out = 0;
        rtws_z_err r;
        if (c->priv_.mtotal == c->priv_.mcap) {
            if (cfg->stream && c->priv_.mcap >= lim && c->priv_.mtotal) {
                int first = c->priv_.stream_first;
                c->priv_.stream_first = 0;
                rtws__deliver(c, (rtws_opcode)(c->priv_.msg_op & ~RTWS__MSG_Z), c->priv_.mbuf,
                              c->priv_.mtotal, first, 0);
                c->priv_.mtotal = 0;
                if (c->priv_.freed) return 0;
            } else {
                rtws_err e = rtws__buf_grow(c, &c->priv_.mbuf, &c->priv_.mcap,
                                            RTWS__MAX(c->priv_.mtotal + 1, RTWS__MIN((size_t)4096, lim)),
                                            lim);
                if (e != RTWS_OK) {
                    rtws__fail_grow(c, e);
                    return 0;
                }
            }
        }
        r = rtws_inflate_feed(z->inf, in, n, &used, c->priv_.mbuf + c->priv_.mtotal,
                              c->priv_.mcap - c->priv_.mtotal, &out);
        if (text && out &&
            rtws_utf8_validate(&c->priv_.utf8, c->priv_.mbuf + c->priv_.mtotal, out, NULL) != RTWS_OK) {
            rtws__fail(c, RTWS_ERR_UTF8, RTWS_CLOSE_INVALID_DATA);
            return 0;
        }
        c->priv_.mtotal += out;
        in += used;
        n -= used;
        if (r == RTWS_Z_FULL) continue;
        if (r == RTWS_Z_OK || (r == RTWS_Z_END && (tail || !n))) return 1;
        /* data after the final block, or a corrupt stream: the payload is
           not what RFC 7692 allows (1007); a bomb: too big (1009) */
        if (r == RTWS_Z_ERR_LIMIT) rtws__fail(c, RTWS_ERR_TOO_BIG, RTWS_CLOSE_TOO_BIG);
        else if (r == RTWS_Z_ERR_NOMEM) rtws__fail(c, RTWS_ERR_NOMEM, RTWS_CLOSE_INTERNAL);
        else rtws__fail(c, RTWS_ERR_PROTOCOL, RTWS_CLOSE_INVALID_DATA);
        return 0;
    }
}

/* Compressed payload bytes p[0..k) (already unmasked) of the message in
   progress; at its end the tail goes in, the text is checked whole and the
   message is delivered. Returns 0 when c failed or was freed. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline)) /* off the uncompressed path: inlined, it cost it registers */
#endif
static int rtws__pmd_recv(rtws_conn *c, const uint8_t *p, size_t k, int msg_end) {
    rtws__pmd *z = rtws__pmd_wake(c);
    const rtws_config *cfg = c->priv_.cfg;
    rtws_opcode op = (rtws_opcode)(c->priv_.msg_op & ~RTWS__MSG_Z);
    if (!z) {
        rtws__fail(c, RTWS_ERR_NOMEM, RTWS_CLOSE_TRY_AGAIN);
        return 0;
    }
    if (z->rx_fresh) {
        if (!z->inf && !rtws__pmd_inf_init(c, z)) {
            rtws__fail(c, RTWS_ERR_NOMEM, RTWS_CLOSE_TRY_AGAIN);
            return 0;
        }
        rtws_inflate_reset(z->inf, z->rx_takeover);
        z->zin = 0;
        z->rx_fresh = 0;
    }
    /* input that inflates to nothing (empty blocks) is bounded too */
    z->zin += k;
    if (z->zin > (uint64_t)cfg->max_message * 2 + 1024) {
        rtws__fail(c, RTWS_ERR_TOO_BIG, RTWS_CLOSE_TOO_BIG);
        return 0;
    }
    if (k && !rtws__pmd_inflate(c, z, p, k, 0)) return 0;
    if (!msg_end) return 1;
    if (!rtws__pmd_inflate(c, z, rtws__pmd_tail, 4, 1)) return 0;
    if (z->inf_lent) { /* the window is not kept: back to the pool before the callback */
        rtws__buf_drop(c, z->inf, z->inf_size);
        z->inf = NULL;
        z->inf_size = 0;
        z->inf_lent = 0;
    }
    if (op == RTWS_OP_TEXT && c->priv_.utf8 && !cfg->no_utf8_check) {
        rtws__fail(c, RTWS_ERR_UTF8, RTWS_CLOSE_INVALID_DATA);
        return 0;
    }
    c->priv_.msg_op = 0;
    rtws__deliver(c, op, c->priv_.mbuf, c->priv_.mtotal, cfg->stream ? c->priv_.stream_first : 1, 1);
    if (cfg->stream) c->priv_.mtotal = 0;
    return !c->priv_.freed;
}

static int rtws__pmd_def_init(rtws_conn *c, rtws__pmd *z) {
    rtws_z_config zc;
    size_t off = (sizeof(rtws_deflate) + 15) & ~(size_t)15, mem;
    void *b;
    memset(&zc, 0, sizeof zc);
    zc.window_bits = z->tx_bits;
    zc.level = c->priv_.cfg->deflate_level;
    mem = rtws_deflate_mem_size(&zc);
    b = rtws__pmd_alloc(c, off + mem);
    if (!b) return 0;
    if (rtws_deflate_init((rtws_deflate *)b, &zc, (uint8_t *)b + off, mem) != RTWS_Z_OK) {
        rtws__pmd_give(c, b, off + mem);
        return 0;
    }
    z->def = (rtws_deflate *)b;
    z->def_size = (uint32_t)(off + mem);
    return 1;
}

/* The send buffer grown to at least need bytes, its contents kept. */
static int rtws__pmd_zgrow(rtws_conn *c, rtws__pmd *z, size_t need) {
    size_t cap = z->zcap;
    void *p = z->zbuf;
    rtws_budget *b = c->priv_.cfg->budget;
    if (need <= cap) return 1;
    if (need < cap * 2) need = cap * 2;
    if (b && !rtws_budget_make_room(b, need - cap)) return 0;
    if (rtws__grow(&c->priv_.cfg->allocator, &p, &cap, need, 1, SIZE_MAX) != RTWS_OK) return 0;
    if (b) rtws_budget_charge(b, cap - z->zcap);
    z->zbuf = (uint8_t *)p;
    z->zcap = cap;
    return 1;
}

/* rtws__pmd_send without context takeover and with a pool: the compressor
   and the output buffer are lent for this message only. The output has room
   for the worst case (stored blocks); a message that does not shrink, or
   memory that cannot be had, goes out uncompressed. */
static rtws_err rtws__pmd_send_lent(rtws_conn *c, rtws__pmd *z, rtws_opcode op, const void *data,
                                    size_t len) {
    rtws_z_config zc;
    size_t off = (sizeof(rtws_deflate) + 15) & ~(size_t)15, mem, dcap = 0, zcap = 0, used = 0,
           zlen = 0;
    void *d;
    uint8_t *zb;
    rtws_err e;
    memset(&zc, 0, sizeof zc);
    /* a window no bigger than the message: back-references reach no
       further anyway, and the block to set up (hash heads) is smaller */
    zc.window_bits = 8;
    while (zc.window_bits < z->tx_bits && ((size_t)1 << zc.window_bits) < len) zc.window_bits++;
    zc.level = c->priv_.cfg->deflate_level;
    mem = rtws_deflate_mem_size(&zc);
    if (len > SIZE_MAX / 2 - 4096) return rtws__queue_frame(c, 1, op, data, len);
    d = rtws__pmd_lend(c, off + mem, &dcap);
    zb = (uint8_t *)rtws__pmd_lend(c, len + len / 8 + 64, &zcap);
    e = RTWS_EAGAIN; /* not compressed (yet) */
    if (d && zb && rtws_deflate_init((rtws_deflate *)d, &zc, (uint8_t *)d + off, mem) == RTWS_Z_OK &&
        ++z->runs && rtws_deflate_compress((rtws_deflate *)d, (const uint8_t *)data, len, &used, zb, zcap, &zlen,
                              RTWS_Z_SYNC_FLUSH) == RTWS_Z_OK &&
        used == len && zlen >= 4 && memcmp(zb + zlen - 4, rtws__pmd_tail, 4) == 0 && zlen - 4 < len)
        e = rtws__queue_frame_rsv(c, 1, op, zb, zlen - 4, 0x40);
    if (d) rtws__buf_drop(c, d, dcap);
    if (zb) rtws__buf_drop(c, zb, zcap);
    return e == RTWS_EAGAIN ? rtws__queue_frame(c, 1, op, data, len) : e;
}

/* A whole message, compressed into one frame with RSV1 (§7.2.1: a sync
   flush, its 00 00 ff ff taken off). Without context takeover the
   compressor starts over after each message, and a message that did not
   shrink goes out as it is; with it, the window carries on (after a failure
   it is forgotten: the peer never saw that message). When the compressor or
   its buffer cannot be had (memory, budget) the message goes uncompressed. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline)) /* off the uncompressed path: inlined, it cost it registers */
#endif
static rtws_err rtws__pmd_send(rtws_conn *c, rtws_opcode op, const void *data, size_t len) {
    rtws__pmd *z = rtws__pmd_wake(c);
    const uint8_t *in = (const uint8_t *)data;
    size_t zlen = 0, off = 0;
    rtws_err e;
    if (!z) return rtws__queue_frame(c, 1, op, data, len);
    if (!z->tx_takeover && rtws__conn_lends(c)) return rtws__pmd_send_lent(c, z, op, data, len);
    if ((!z->def && !rtws__pmd_def_init(c, z)) ||
        (len < SIZE_MAX / 2 && !rtws__pmd_zgrow(c, z, len + len / 8 + 64)))
        return rtws__queue_frame(c, 1, op, data, len);
    z->runs++;
    for (;;) {
        size_t used = 0, out = 0;
        rtws_z_err r = rtws_deflate_compress(z->def, in + off, len - off, &used, z->zbuf + zlen,
                                             z->zcap - zlen, &out, RTWS_Z_SYNC_FLUSH);
        off += used;
        zlen += out;
        if (r == RTWS_Z_OK) break;
        if (r != RTWS_Z_FULL || z->zcap > SIZE_MAX / 2 || !rtws__pmd_zgrow(c, z, z->zcap * 2)) {
            rtws_deflate_reset(z->def, 0);
            return RTWS_ERR_NOMEM;
        }
    }
    if (zlen < 4 || memcmp(z->zbuf + zlen - 4, rtws__pmd_tail, 4) != 0) {
        rtws_deflate_reset(z->def, 0); /* not a sync flush: never sent */
        return RTWS_ERR_INVALID;
    }
    zlen -= 4;
    if (!z->tx_takeover) {
        rtws_deflate_reset(z->def, 0);
        if (zlen >= len) return rtws__queue_frame(c, 1, op, data, len);
    }
    e = rtws__queue_frame_rsv(c, 1, op, z->zbuf, zlen, 0x40);
    if (e != RTWS_OK) rtws_deflate_reset(z->def, 0);
    return e;
}

/* The compressed copy of shared frame s for c, whose own messages go without
   context takeover: made by the first connection that needs it (compressor
   and buffer lent as in rtws__pmd_send_lent, at c's level, the copy in s's
   allocator) and found by the later ones. Its window is c's, or less for a
   message shorter than c's window: distances within such a message fit any
   window that holds the whole message, so connections that agreed different
   server_max_window_bits share one copy when the message fits theirs. Returns
   s when the message did not shrink (marked: nobody tries again) or memory
   could not be had (the next connection tries again). */
static rtws__chunk *rtws__shared_z(rtws_conn *c, unsigned tx_bits, rtws__chunk *s) {
    rtws_z_config zc;
    size_t off = (sizeof(rtws_deflate) + 15) & ~(size_t)15, mem, dcap = 0, zcap = 0, used = 0,
           zlen = 0, len = s->payload, hl;
    const uint8_t *pl = RTWS__CHUNK_DATA(s) + (s->len - len);
    uint8_t hdr[RTWS_FRAME_HEADER_MAX];
    unsigned bits = 8;
    rtws__chunk *v;
    void *d;
    uint8_t *zb;
    rtws__pmd *z;
    while (bits < tx_bits && ((size_t)1 << bits) < len) bits++;
    for (v = s->zv; v; v = v->znext)
        if (v->zflags == bits) return v;
    if (len > SIZE_MAX / 2 - 4096 || !(z = rtws__pmd_wake(c))) return s;
    memset(&zc, 0, sizeof zc);
    zc.window_bits = bits;
    zc.level = c->priv_.cfg->deflate_level;
    mem = rtws_deflate_mem_size(&zc);
    d = rtws__pmd_lend(c, off + mem, &dcap);
    zb = (uint8_t *)rtws__pmd_lend(c, len + len / 8 + 64, &zcap);
    if (d && zb && rtws_deflate_init((rtws_deflate *)d, &zc, (uint8_t *)d + off, mem) == RTWS_Z_OK) {
        z->runs++;
        if (rtws_deflate_compress((rtws_deflate *)d, pl, len, &used, zb, zcap, &zlen,
                                  RTWS_Z_SYNC_FLUSH) == RTWS_Z_OK &&
            used == len && zlen >= 4 && memcmp(zb + zlen - 4, rtws__pmd_tail, 4) == 0) {
            zlen -= 4;
            if (zlen >= len) s->zflags |= RTWS__SH_NOGAIN;
            else {
                hl = rtws_frame_header_encode(hdr, 1, (rtws_opcode)(RTWS__CHUNK_DATA(s)[0] & 0x0f),
                                              zlen, NULL);
                hdr[0] |= 0x40; /* RSV1: compressed (RFC 7692 §6) */
                if ((v = (rtws__chunk *)rtws__alloc(&s->alloc, sizeof *v + hl + zlen)) != NULL) {
                    memset(v, 0, sizeof *v);
                    v->cap = v->len = hl + zlen;
                    v->payload = len;
                    v->alloc = s->alloc;
                    v->shared = 1;
                    v->zflags = bits;
                    v->zup = s;
                    v->znext = s->zv;
                    s->zv = v;
                    memcpy(RTWS__CHUNK_DATA(v), hdr, hl);
                    memcpy(RTWS__CHUNK_DATA(v) + hl, zb, zlen);
                }
            }
        }
    }
    if (d) rtws__buf_drop(c, d, dcap);
    if (zb) rtws__buf_drop(c, zb, zcap);
    return v ? v : s;
}
#endif /* !RTWS_NO_DEFLATE */

/* A request head over max_handshake (RFC 9112 §3, RFC 9110 §15.5.15): 414
   when the request line alone does not fit (no line end within the limit),
   else 431 for the header fields. */
static void rtws__refuse_head(rtws_conn *c, const uint8_t *p, size_t len) {
    if (!memchr(p, '\n', RTWS__MIN(len, c->priv_.cfg->max_handshake)))
        rtws__refuse(c, 414, "request line exceeds the limit (max_handshake)");
    else
        rtws__refuse(c, 431, "request head exceeds the limit (max_handshake)");
}

/* Parses and acts on whatever complete units rbuf holds. */
static void rtws__process(rtws_conn *c) {
    while (!c->priv_.freed && !c->priv_.drop_input) {
        size_t avail = c->priv_.rend - c->priv_.rstart;
        uint8_t *p = c->priv_.rbuf + c->priv_.rstart;
        if (c->priv_.state == RTWS_STATE_HANDSHAKE) {
            /* waiting for a plain request's body (h.len): the head ended at hs_scanned */
            size_t head = c->priv_.h.len ? c->priv_.hx.hs_scanned
                                         : rtws_http_head_end((const char *)p, avail, &c->priv_.hx.hs_scanned);
            if (!head) {
                if (avail > c->priv_.cfg->max_handshake) {
                    if (c->priv_.cfg->role == RTWS_SERVER) {
                        rtws__refuse_head(c, p, avail);
                    } else {
                        c->priv_.err = RTWS_ERR_HANDSHAKE;
                        rtws__emit_error(c, RTWS_ERR_HANDSHAKE, 0);
                        rtws__finish(c);
                    }
                }
                return;
            }
            if (head > c->priv_.cfg->max_handshake) {
                if (c->priv_.cfg->role == RTWS_SERVER) rtws__refuse_head(c, p, head);
                else rtws__finish(c);
                return;
            }
            if (c->priv_.h.len > avail) return; /* the rest of the body */
            c->priv_.rstart += head; /* the head stays readable in rbuf during the call */
            if (c->priv_.cfg->role != RTWS_SERVER) {
                rtws__client_handshake(c, (const char *)p, head);
            } else if (!rtws__server_handshake(c, (const char *)p, head, avail)) {
                c->priv_.rstart -= head; /* nothing done: read the body first */
                return;
            }
            continue;
        }
        if (c->priv_.state != RTWS_STATE_OPEN && c->priv_.state != RTWS_STATE_CLOSING) return;
        if (!c->priv_.have_h) {
            /* the frame parser's first step (rtws_frame_parser_feed's): the
               buffer holds a header whole before it is read */
            size_t hl = 0;
            unsigned rsv_ok = 0; /* permessage-deflate's RSV1 */
            uint8_t z = 0;       /* RTWS__MSG_Z: a compressed message starts */
            rtws_err e;
#if !defined(RTWS_NO_DEFLATE)
            if (c->priv_.zpark || c->priv_.hx.pmd) rsv_ok = 4;
#endif
            e = rtws__frame_begin(&c->priv_.h, p, avail, c->priv_.cfg->role, c->priv_.msg_op != 0,
                                  c->priv_.cfg->max_frame, rsv_ok, &hl);
            if (e == RTWS_EAGAIN) break;
#if !defined(RTWS_NO_DEFLATE)
            if (e == RTWS_OK && c->priv_.h.rsv) z = rtws__pmd_rsv(c);
#endif
            if (e == RTWS_OK && c->priv_.h.opcode < 8) {
                /* caps checked before any byte of the payload is stored */
                if (c->priv_.h.opcode != RTWS_OP_CONT) {
                    c->priv_.msg_op = (uint8_t)(c->priv_.h.opcode | z);
                    c->priv_.mtotal = 0;
                    c->priv_.nfrag = 0;
                    c->priv_.utf8 = 0;
                    c->priv_.stream_first = 1;
                }
                /* a compressed message's limit applies to its inflated size,
                   counted as it inflates (rtws__pmd_recv) */
                if (++c->priv_.nfrag > c->priv_.cfg->max_fragments ||
                    (c->priv_.msg_op < RTWS__MSG_Z &&
                     c->priv_.h.len > (uint64_t)(c->priv_.cfg->max_message - c->priv_.mtotal)))
                    e = RTWS_ERR_TOO_BIG;
                c->priv_.whole = (uint8_t)(c->priv_.h.fin && c->priv_.nfrag == 1 &&
                                           !c->priv_.cfg->stream && c->priv_.msg_op < RTWS__MSG_Z);
            }
            if (e != RTWS_OK) {
                rtws__fail(c, e, e == RTWS_ERR_TOO_BIG ? RTWS_CLOSE_TOO_BIG
                                                        : RTWS_CLOSE_PROTOCOL_ERROR);
                return;
            }
            c->priv_.rstart += hl;
            c->priv_.have_h = 1;
            continue;
        }
        if (c->priv_.h.opcode >= 8) {
            size_t n = (size_t)c->priv_.h.len;
            if (avail < n) break;
            rtws__frame_unmask(&c->priv_.h, p, n);
            c->priv_.rstart += n;
            c->priv_.have_h = 0;
            if (!c->priv_.msg_op) c->priv_.hs_deadline = 0; /* not inside a message: done */
            rtws__on_control(c, p, n);
            continue;
        }
        if (c->priv_.whole) {
            size_t n = (size_t)c->priv_.h.len, k = RTWS__MIN(avail, n), done = (size_t)c->priv_.h.done;
            if (k > done && !rtws__payload(c, p + done, k - done)) return;
            if (k < n) break;
            if (!rtws__utf8_end_ok(c)) return;
            c->priv_.rstart += n;
            c->priv_.have_h = 0;
            c->priv_.msg_op = 0;
            rtws__deliver(c, (rtws_opcode)c->priv_.h.opcode, p, n, 1, 1);
            continue;
        }
        {
            size_t rem = (size_t)(c->priv_.h.len - c->priv_.h.done), k = RTWS__MIN(avail, rem);
            int frame_end = k == rem, msg_end = frame_end && c->priv_.h.fin;
            if (k == 0 && !frame_end) break;
            if (c->priv_.msg_op >= RTWS__MSG_Z) { /* compressed */
#if !defined(RTWS_NO_DEFLATE)
                rtws__frame_unmask(&c->priv_.h, p, k);
                c->priv_.rstart += k;
                if (frame_end) c->priv_.have_h = 0;
                if (!rtws__pmd_recv(c, p, k, msg_end)) return;
#endif
                continue;
            }
            if (!rtws__payload(c, p, k)) return;
            c->priv_.rstart += k;
            if (frame_end) c->priv_.have_h = 0;
            if (msg_end && !rtws__utf8_end_ok(c)) return;
            if (c->priv_.cfg->stream) {
                uint8_t op = c->priv_.msg_op;
                int first = c->priv_.stream_first;
                c->priv_.mtotal += k;
                if (msg_end) c->priv_.msg_op = 0;
                if (k || msg_end) {
                    c->priv_.stream_first = 0;
                    rtws__deliver(c, (rtws_opcode)op, p, k, first, msg_end);
                }
                continue;
            }
            if (k) {
                if (c->priv_.mtotal + k > c->priv_.mcap) {
                    /* max_message was checked at the frame header */
                    size_t need = RTWS__MAX(c->priv_.mtotal + k, RTWS__MIN((size_t)4096, c->priv_.cfg->max_message));
                    rtws_err e = rtws__buf_grow(c, &c->priv_.mbuf, &c->priv_.mcap, need,
                                                c->priv_.cfg->max_message);
                    if (e != RTWS_OK) {
                        rtws__fail_grow(c, e);
                        return;
                    }
                }
                memcpy(c->priv_.mbuf + c->priv_.mtotal, p, k);
                c->priv_.mtotal += k;
            }
            if (msg_end) {
                uint8_t op = c->priv_.msg_op;
                c->priv_.msg_op = 0;
                rtws__deliver(c, (rtws_opcode)op, c->priv_.mbuf, c->priv_.mtotal, 1, 1);
            }
        }
    }
    /* buffers stay, whatever their size, for the next message: a busy
       connection allocates nothing per message; rtws_conn_trim (the host's,
       when the connection goes quiet) gives them back */
    if (!c->priv_.freed && c->priv_.rstart == c->priv_.rend) c->priv_.rstart = c->priv_.rend = 0;
}

RTWS_API rtws_err rtws_conn_recv_commit(rtws_conn *c, size_t n, uint64_t now_ms) {
    rtws_err e;
    if (c->priv_.freed) return RTWS_ERR_CLOSED;
    if (c->priv_.in_recv) return RTWS_ERR_INVALID; /* no recursive feeding from a callback */
    RTWS_ASSERT(n <= c->priv_.rcap - c->priv_.rend);     /* committed more than recv_buf lent */
    rtws__enter(c, now_ms);
    c->priv_.in_recv = 1;
    if (c->priv_.state == RTWS_STATE_IDLE) {
        c->priv_.err = RTWS_ERR_INVALID; /* a client must call rtws_conn_start first */
        c->priv_.in_recv = 0;
        rtws__leave(c);
        return RTWS_ERR_INVALID;
    }
    if (n) c->priv_.last_rx = c->priv_.now;
    if (n && c->priv_.roffer) { /* a read into our offer: adapt the next offer */
        if (n == c->priv_.roffer && c->priv_.rhint < RTWS__READ_MAX) c->priv_.rhint *= 2; /* filled: grow */
        else if (n < c->priv_.rhint / 4 && c->priv_.rhint > RTWS__RBUF_MIN) c->priv_.rhint /= 2;
    }
    if (c->priv_.drop_input) {
        n = 0; /* §1.4: after the close handshake, data is ignored */
    }
    c->priv_.rend += n;
    if (!c->priv_.drop_input) rtws__process(c);
    if (c->priv_.drop_input && !c->priv_.freed) c->priv_.rstart = c->priv_.rend = 0;
    /* a frame or message left incomplete starts its clock (message_timeout_ms);
       rtws__process stops it when one completes */
    if (!c->priv_.hs_deadline && c->priv_.state == RTWS_STATE_OPEN && c->priv_.cfg->message_timeout_ms &&
        (c->priv_.have_h || c->priv_.msg_op || c->priv_.rstart != c->priv_.rend))
        c->priv_.hs_deadline = c->priv_.now + c->priv_.cfg->message_timeout_ms;
    c->priv_.in_recv = 0;
    if (c->priv_.freed) e = RTWS_ERR_CLOSED;
    else if (c->priv_.err) e = (rtws_err)c->priv_.err;
    else if (c->priv_.state == RTWS_STATE_HANDSHAKE || c->priv_.have_h || c->priv_.msg_op || c->priv_.rstart != c->priv_.rend)
        e = RTWS_EAGAIN; /* in the middle of a head, frame or message */
    else e = RTWS_OK;
    rtws__leave(c);
    return e;
}

RTWS_API rtws_err rtws_conn_recv(rtws_conn *c, const void *data, size_t len, uint64_t now_ms,
                                 size_t *used) {
    const uint8_t *d = (const uint8_t *)data;
    size_t done = 0;
    rtws_err e = c->priv_.err ? (rtws_err)c->priv_.err : RTWS_EAGAIN;
    if (used) *used = 0;
    if (c->priv_.freed) return RTWS_ERR_CLOSED;
    if (c->priv_.in_recv) return RTWS_ERR_INVALID;
    if (len == 0) return e;
    if (c->priv_.state == RTWS_STATE_HANDSHAKE && c->priv_.rstart == c->priv_.rend && !c->priv_.drop_input && !c->priv_.err) {
        /* a whole HTTP head in one piece with nothing buffered: handled from
           the caller's bytes, so a connection that then stays quiet never
           allocates a receive buffer */
        size_t scanned = 0, head = rtws_http_head_end((const char *)d, len, &scanned);
        if (head && head <= c->priv_.cfg->max_handshake) {
            rtws__enter(c, now_ms);
            c->priv_.in_recv = 1;
            c->priv_.last_rx = c->priv_.now;
            done = head;
            if (c->priv_.cfg->role != RTWS_SERVER) rtws__client_handshake(c, (const char *)d, head);
            else if (!rtws__server_handshake(c, (const char *)d, head, len)) done = 0; /* body: buffer */
            c->priv_.in_recv = 0;
            e = c->priv_.err ? (rtws_err)c->priv_.err : RTWS_OK;
            rtws__leave(c);
            if (c->priv_.freed) {
                if (used) *used = done;
                return RTWS_ERR_CLOSED;
            }
        }
    }
    while (done < len) {
        size_t cap, k;
        uint8_t *buf;
        if (c->priv_.drop_input || c->priv_.err) {
            done = len; /* ignored: the connection is closing or failed */
            break;
        }
        buf = rtws_conn_recv_buf(c, RTWS__MIN(len - done, (size_t)1 << 20), &cap);
        if (!buf || !cap) {
            rtws__enter(c, now_ms);
            rtws__fail(c, RTWS_ERR_NOMEM, RTWS_CLOSE_INTERNAL); /* or failed already: LIMIT */
            rtws__leave(c);
            e = c->priv_.err ? (rtws_err)c->priv_.err : RTWS_ERR_NOMEM;
            break;
        }
        k = RTWS__MIN(cap, len - done);
        memcpy(buf, d + done, k);
        done += k;
        c->priv_.roffer = 0; /* a copy, not a read: no read-size growth */
        e = rtws_conn_recv_commit(c, k, now_ms);
        if (c->priv_.freed) break;
    }
    if (used) *used = done;
    if (c->priv_.freed) return RTWS_ERR_CLOSED;
    return c->priv_.err ? (rtws_err)c->priv_.err : e;
}

/* rtws_conn_recv_inplace, and the host's reads into its scratch buffers:
   with own set, c's own receive buffer may exist if it holds nothing (it is
   set aside for the call and kept; the host's connections only, whose
   release never runs inside the call). */
/* 1 when rtws__recv_lent may handle bytes in the caller's buffer: c is open
   and well, not inside its own receive, holds no lent buffer, and either has
   no buffer of its own or (own) one that holds nothing, not even a header. */
static int rtws__can_lend(const rtws_conn *c, int own) {
    if (c->priv_.rbuf && (!own || c->priv_.rstart != c->priv_.rend || c->priv_.have_h)) return 0;
    return !c->priv_.rborrow && !c->priv_.in_recv && c->priv_.state == RTWS_STATE_OPEN &&
           !c->priv_.drop_input && !c->priv_.err;
}

static rtws_err rtws__recv_lent(rtws_conn *c, void *buf, size_t len, uint64_t now_ms, int own) {
    rtws_err e;
    size_t left, owncap = c->priv_.rcap;
    uint8_t *ownbuf = c->priv_.rbuf;
    const uint8_t *tail;
    if (!len || !rtws__can_lend(c, own)) return rtws_conn_recv(c, buf, len, now_ms, NULL);
    c->priv_.rbuf = (uint8_t *)buf; /* lent for this call: never freed, grown or kept */
    c->priv_.rcap = len;
    c->priv_.rstart = c->priv_.rend = 0;
    c->priv_.roffer = 0; /* not an offer of ours: no read-size growth */
    c->priv_.rborrow = 1;
    e = rtws_conn_recv_commit(c, len, now_ms);
    left = c->priv_.rend - c->priv_.rstart;
    tail = c->priv_.rbuf ? c->priv_.rbuf + c->priv_.rstart : NULL;
    c->priv_.rbuf = ownbuf; /* NULL unless own */
    c->priv_.rcap = ownbuf ? owncap : 0;
    c->priv_.rstart = c->priv_.rend = 0;
    c->priv_.rborrow = 0;
    if (left && tail && !c->priv_.freed && !c->priv_.drop_input) { /* an incomplete unit: keep it */
        size_t need = rtws__rneed(c);
        if (!rtws__rreserve(c, need > left ? need : left)) {
            rtws__enter(c, now_ms);
            rtws__fail(c, RTWS_ERR_NOMEM, RTWS_CLOSE_INTERNAL); /* or failed already: LIMIT */
            rtws__leave(c);
            return c->priv_.err ? (rtws_err)c->priv_.err : RTWS_ERR_NOMEM;
        }
        memcpy(c->priv_.rbuf, tail, left);
        c->priv_.rend = left;
    }
    return e;
}

RTWS_API rtws_err rtws_conn_recv_inplace(rtws_conn *c, void *buf, size_t len, uint64_t now_ms) {
    return rtws__recv_lent(c, buf, len, now_ms, 0);
}

RTWS_API void rtws_conn_recv_eof(rtws_conn *c, uint64_t now_ms) {
    if (c->priv_.freed) return;
    rtws__enter(c, now_ms);
    c->priv_.eof = 1;
    if (c->priv_.state != RTWS_STATE_CLOSED) {
        c->priv_.err = rtws__tunneling(c)                         ? RTWS_ERR_PROXY
                       : c->priv_.state <= RTWS_STATE_HANDSHAKE ? RTWS_ERR_HANDSHAKE
                                                                : RTWS_ERR_ABNORMAL;
        rtws__emit_error(c, (rtws_err)c->priv_.err, 0);
        rtws__emit_close(c, RTWS_CLOSE_ABNORMAL, NULL, 0, 0, 0);
    }
    c->priv_.state = RTWS_STATE_CLOSED;
    c->priv_.cbits |= RTWS__C_WANT_CLOSE;
    c->priv_.drop_input = 1;
    rtws__leave(c);
}

RTWS_API void rtws_conn_trim(rtws_conn *c) {
    if (c->priv_.have_h || c->priv_.msg_op || c->priv_.rstart != c->priv_.rend || c->priv_.rborrow) return;
    rtws__rx_drop(c, c->priv_.rbuf, c->priv_.rcap);
    rtws__rx_drop(c, c->priv_.mbuf, c->priv_.mcap);
    if (c->priv_.spare) rtws__buf_drop(c, c->priv_.spare, sizeof *c->priv_.spare + c->priv_.spare->cap);
    c->priv_.rbuf = c->priv_.mbuf = NULL;
    c->priv_.spare = NULL;
    c->priv_.rcap = c->priv_.rstart = c->priv_.rend = c->priv_.mcap = 0;
    c->priv_.rhint = RTWS__RBUF_MIN; /* quiet now: the next burst starts small */
    if (!c->priv_.nseg) rtws__segs_free(c);
#if !defined(RTWS_NO_DEFLATE)
    if (c->priv_.opened && !c->priv_.zpark && c->priv_.hx.pmd) {
        rtws__pmd_trim(c, c->priv_.hx.pmd, 0);
        rtws__pmd_park(c);
    }
#endif
    if (c->priv_.ctl && !c->priv_.pong_len && !c->priv_.ping_len && !c->priv_.ctl->uping_n &&
        c->priv_.cout_off == c->priv_.cout_len) {
        rtws__free(&c->priv_.cfg->allocator, c->priv_.ctl);
        c->priv_.ctl = NULL;
    }
}

RTWS_API unsigned rtws_conn_want(const rtws_conn *c) {
    unsigned w = 0;
    int pending = rtws_conn_out_pending(c) > 0;
    if (c->priv_.freed || c->priv_.eof) return c->priv_.freed ? 0u : (unsigned)RTWS_WANT_CLOSE;
    if (c->priv_.state == RTWS_STATE_IDLE) return 0;
    if (pending) w |= RTWS_WANT_WRITE;
    if (c->priv_.cbits & RTWS__C_WANT_CLOSE) return pending ? w : (unsigned)RTWS_WANT_CLOSE;
    return w | RTWS_WANT_READ;
}

/* Heartbeat and idle deadlines of an open connection. */
static uint64_t rtws__open_deadline(const rtws_conn *c) {
    uint64_t d = UINT64_MAX;
    if (!c->priv_.cfg->heartbeat_off) {
        uint64_t base = c->priv_.last_rx > c->priv_.ping_at ? c->priv_.last_rx : c->priv_.ping_at;
        if (c->priv_.ping_out && c->priv_.last_rx <= c->priv_.ping_at) d = c->priv_.ping_at + c->priv_.cfg->pong_timeout_ms;
        else d = base + c->priv_.cfg->ping_interval_ms;
    }
    if (c->priv_.cfg->idle_timeout_ms && c->priv_.last_msg_rx + c->priv_.cfg->idle_timeout_ms < d)
        d = c->priv_.last_msg_rx + c->priv_.cfg->idle_timeout_ms;
    if (c->priv_.hs_deadline && c->priv_.hs_deadline < d) d = c->priv_.hs_deadline; /* message */
    return d;
}

RTWS_API uint64_t rtws_conn_get_deadline(const rtws_conn *c) {
    uint64_t d = UINT64_MAX;
    if (c->priv_.freed || c->priv_.eof) return d;
    if (c->priv_.state <= RTWS_STATE_HANDSHAKE && c->priv_.state != RTWS_STATE_IDLE) {
        d = c->priv_.hs_deadline ? c->priv_.hs_deadline : c->priv_.now;
    } else if (c->priv_.close_sent || c->priv_.state == RTWS_STATE_CLOSED) {
        if (c->priv_.close_deadline) d = c->priv_.close_deadline;
    } else if (c->priv_.state == RTWS_STATE_OPEN) {
        d = rtws__open_deadline(c);
    }
    return d;
}

RTWS_API void rtws_conn_run_timers(rtws_conn *c, uint64_t now_ms) {
    if (c->priv_.freed) return;
    rtws__enter(c, now_ms);
    now_ms = c->priv_.now;
    if (c->priv_.state == RTWS_STATE_HANDSHAKE) {
        if (now_ms >= c->priv_.hs_deadline) {
            c->priv_.err = RTWS_ERR_TIMEOUT;
            rtws__emit_error(c, RTWS_ERR_TIMEOUT, 0);
            rtws__drop_unsent(c);
            rtws__finish(c);
            c->priv_.close_deadline = now_ms; /* nothing worth flushing */
        }
    } else if (c->priv_.close_sent || c->priv_.state == RTWS_STATE_CLOSED) {
        if (c->priv_.close_deadline && now_ms >= c->priv_.close_deadline) {
            if (!c->priv_.close_recvd && c->priv_.state != RTWS_STATE_CLOSED) {
                c->priv_.err = RTWS_ERR_TIMEOUT; /* our close was never answered */
                rtws__emit_error(c, RTWS_ERR_TIMEOUT, 0);
                rtws__emit_close(c, RTWS_CLOSE_ABNORMAL, NULL, 0, 0, 0);
            }
            c->priv_.state = RTWS_STATE_CLOSED;
            c->priv_.eof = 1; /* give up on the peer: close now, unsent output dropped */
            c->priv_.cbits |= RTWS__C_WANT_CLOSE;
            c->priv_.drop_input = 1;
        }
    } else if (c->priv_.state == RTWS_STATE_OPEN && c->priv_.hs_deadline && now_ms >= c->priv_.hs_deadline) {
        /* a slow sender: a message (or frame) still incomplete message_timeout_ms
           after its first byte, however steadily bytes or pongs trickle in */
        rtws__fail(c, RTWS_ERR_MESSAGE_TIMEOUT, RTWS_CLOSE_POLICY);
    } else if (c->priv_.state == RTWS_STATE_OPEN && c->priv_.cfg->idle_timeout_ms && !c->priv_.close_sent &&
               now_ms >= c->priv_.last_msg_rx + c->priv_.cfg->idle_timeout_ms) {
        rtws_conn_close(c, RTWS_CLOSE_GOING_AWAY, "idle timeout");
    } else if (c->priv_.state == RTWS_STATE_OPEN && !c->priv_.cfg->heartbeat_off) {
        uint64_t base = c->priv_.last_rx > c->priv_.ping_at ? c->priv_.last_rx : c->priv_.ping_at;
        if (c->priv_.ping_out && c->priv_.last_rx <= c->priv_.ping_at) {
            if (now_ms >= c->priv_.ping_at + c->priv_.cfg->pong_timeout_ms) {
                /* nothing at all since our ping: the peer or the path is dead */
                c->priv_.err = RTWS_ERR_TIMEOUT;
                rtws__emit_error(c, RTWS_ERR_TIMEOUT, 0);
                rtws__drop_unsent(c);
                rtws__emit_close(c, RTWS_CLOSE_ABNORMAL, NULL, 0, 0, 0);
                rtws__finish(c);
                c->priv_.eof = 1;
            }
        } else if (now_ms >= base + c->priv_.cfg->ping_interval_ms) {
            unsigned i;
            if (rtws__ctl_get(c)) { /* payload: now_ms, big-endian */
                rtws__ctl *k = c->priv_.ctl;
                if (k->uping_staged) k->uping_n--; /* an unsent rtws_conn_ping gives way */
                k->uping_staged = 0;
                for (i = 0; i < 8; i++) k->ping_buf[i] = (uint8_t)(now_ms >> (56 - 8 * i));
                c->priv_.ping_len = 9;
            }
            c->priv_.ping_out = 1;
            c->priv_.ping_at = now_ms;
            rtws__notify(c);
        }
    }
    rtws__leave(c);
}

/* ---- sending ---- */

static rtws_err rtws__send_check(rtws_conn *c, size_t len) {
    if (c->priv_.freed) return RTWS_ERR_CLOSED;
    if (c->priv_.state != RTWS_STATE_OPEN || c->priv_.close_sent) return RTWS_ERR_CLOSED;
    if (c->priv_.qbytes - c->priv_.head_off > c->priv_.cfg->max_send_queue ||
        len > c->priv_.cfg->max_send_queue - (c->priv_.qbytes - c->priv_.head_off))
        return RTWS_ERR_LIMIT;
    /* the memory budget: its reclaim closes the largest queues (maybe c's);
       the frame's header is asked for too */
    if (c->priv_.cfg->budget &&
        !rtws_budget_make_room(c->priv_.cfg->budget, len > SIZE_MAX - RTWS_FRAME_HEADER_MAX
                                                         ? SIZE_MAX
                                                         : len + RTWS_FRAME_HEADER_MAX))
        return RTWS_ERR_LIMIT;
    if (c->priv_.close_sent) return RTWS_ERR_CLOSED;
    return RTWS_OK;
}

#if !defined(RTWS_NO_HOST) || defined(RTWS__HAVE_ROUTER) /* their reclaim hooks */
/* Memory budget: drops c's data not yet started and closes it with 1013,
   the slow consumer's close. Returns the bytes given back. */
static size_t rtws__conn_shed(rtws_conn *c) {
    size_t before = c->priv_.qbytes;
    if (c->priv_.freed || c->priv_.state != RTWS_STATE_OPEN || c->priv_.close_sent) return 0;
    rtws__drop_unsent(c);
    rtws_conn_close(c, RTWS_CLOSE_TRY_AGAIN, "memory budget");
    return before > c->priv_.qbytes ? before - c->priv_.qbytes : 0;
}

/* The bytes c holds unsent that shedding it would give back (0: not open). */
static size_t rtws__conn_sheddable(const rtws_conn *c) {
    if (c->priv_.freed || c->priv_.state != RTWS_STATE_OPEN || c->priv_.close_sent) return 0;
    return c->priv_.qbytes - (c->priv_.nseg && c->priv_.head_off ? c->priv_.segs[c->priv_.seghead].len : 0);
}
#endif

static rtws_err rtws__send(rtws_conn *c, rtws_opcode op, const void *data, size_t len, int fin,
                           unsigned flags) {
    rtws_err e = rtws__send_check(c, len);
    uint32_t st;
    if (e) return e;
    if (len && !data) return RTWS_ERR_INVALID;
    if (op == RTWS_OP_CONT ? !c->priv_.send_op : (op != RTWS_OP_TEXT && op != RTWS_OP_BINARY) || c->priv_.send_op)
        return RTWS_ERR_INVALID;
    st = op == RTWS_OP_CONT ? c->priv_.send_utf8 : 0;
    if ((op == RTWS_OP_TEXT || c->priv_.send_op == RTWS_OP_TEXT) &&
        (rtws_utf8_validate(&st, (const uint8_t *)data, len, NULL) != RTWS_OK || (fin && st)))
        return RTWS_ERR_UTF8;
#if !defined(RTWS_NO_DEFLATE)
    if ((c->priv_.zpark || c->priv_.hx.pmd) && !(flags & RTWS_SEND_UNCOMPRESSED) &&
        len >= c->priv_.cfg->deflate_threshold)
        e = rtws__pmd_send(c, op, data, len); /* (a whole message: flags say so) */
    else
#else
    (void)flags;
#endif
        e = rtws__queue_frame(c, fin, op, data, len);
    if (e) return e;
    c->priv_.bytes_out += len;
    if (fin) c->priv_.msgs_out++;
    c->priv_.send_utf8 = st;
    c->priv_.send_op = fin ? 0 : (op == RTWS_OP_CONT ? c->priv_.send_op : (uint8_t)op);
    return RTWS_OK;
}

RTWS_API rtws_err rtws_conn_send_frame(rtws_conn *c, rtws_opcode op, const void *data,
                                       size_t len, int fin) {
    return rtws__send(c, op, data, len, fin, RTWS_SEND_UNCOMPRESSED);
}

RTWS_API rtws_err rtws_conn_send_flags(rtws_conn *c, rtws_opcode op, const void *data,
                                       size_t len, unsigned flags) {
    if (op != RTWS_OP_TEXT && op != RTWS_OP_BINARY) return RTWS_ERR_INVALID;
    return rtws__send(c, op, data, len, 1, flags);
}
RTWS_API rtws_err rtws_conn_send(rtws_conn *c, rtws_opcode op, const void *data, size_t len) {
    return rtws_conn_send_flags(c, op, data, len, 0);
}
RTWS_API rtws_err rtws_conn_send_text(rtws_conn *c, const char *text, size_t len) {
    return rtws__send(c, RTWS_OP_TEXT, text, len, 1, 0);
}
RTWS_API rtws_err rtws_conn_send_binary(rtws_conn *c, const void *data, size_t len) {
    return rtws__send(c, RTWS_OP_BINARY, data, len, 1, 0);
}

#if !defined(RTWS_NO_DEFLATE)
RTWS_API int rtws_conn_get_deflate(const rtws_conn *c, rtws_pmd_offer *agreed) {
    rtws__pmd z;
    if (!c->priv_.opened || c->priv_.freed || !rtws__pmd_params(c, &z)) return 0;
    if (agreed) {
        int server = c->priv_.cfg->role == RTWS_SERVER;
        memset(agreed, 0, sizeof *agreed);
        agreed->server_no_context_takeover = (uint8_t)!(server ? z.tx_takeover : z.rx_takeover);
        agreed->client_no_context_takeover = (uint8_t)!(server ? z.rx_takeover : z.tx_takeover);
        agreed->server_max_window_bits = server ? z.tx_bits : z.rx_bits;
        agreed->client_max_window_bits = server ? z.rx_bits : z.tx_bits;
    }
    return 1;
}
#endif

RTWS_API rtws_shared *rtws_shared_new(const rtws_allocator *alloc, rtws_opcode op,
                                      const void *data, size_t len) {
    rtws_allocator a;
    rtws__chunk *ch;
    size_t hl;
    uint8_t hdr[RTWS_FRAME_HEADER_MAX];
    if (alloc) a = *alloc;
    else memset(&a, 0, sizeof a);
    if ((op != RTWS_OP_TEXT && op != RTWS_OP_BINARY) || (len && !data) ||
        len > SIZE_MAX - sizeof *ch - RTWS_FRAME_HEADER_MAX)
        return NULL;
    hl = rtws_frame_header_encode(hdr, 1, op, len, NULL);
    ch = (rtws__chunk *)rtws__alloc(&a, sizeof *ch + hl + len);
    if (!ch) return NULL;
    memset(ch, 0, sizeof *ch);
    ch->refs = 1;
    ch->cap = ch->len = hl + len;
    ch->payload = len;
    ch->alloc = a;
    ch->shared = 1;
    memcpy(RTWS__CHUNK_DATA(ch), hdr, hl);
    if (len) memcpy(RTWS__CHUNK_DATA(ch) + hl, data, len);
    return ch;
}

RTWS_API const uint8_t *rtws_shared_get_payload(const rtws_shared *s, size_t *len) {
    *len = s->payload;
    return (const uint8_t *)(s + 1) + (s->len - s->payload);
}

RTWS_API void rtws_shared_release(rtws_shared *s) {
    if (s && --s->refs == 0) rtws__shared_free(s);
}

RTWS_API void rtws_shared_set_flags(rtws_shared *s, unsigned flags) {
    s->zflags = (s->zflags & ~(unsigned)RTWS_SEND_UNCOMPRESSED) | (flags & RTWS_SEND_UNCOMPRESSED);
}

RTWS_API rtws_err rtws_conn_send_shared(rtws_conn *c, rtws_shared *s) {
    rtws_err e;
    rtws__chunk *q = s;
#if !defined(RTWS_NO_DEFLATE)
    rtws__pmd zp;
#endif
    if (c->priv_.cfg->role != RTWS_SERVER || !s || s->zup || c->priv_.send_op) return RTWS_ERR_INVALID;
    e = rtws__send_check(c, s->len);
    if (e) return e;
    if (!rtws__segs_reserve(c)) return RTWS_ERR_NOMEM;
#if !defined(RTWS_NO_DEFLATE)
    if (!(s->zflags & (RTWS_SEND_UNCOMPRESSED | RTWS__SH_NOGAIN)) &&
        s->payload >= c->priv_.cfg->deflate_threshold && rtws__pmd_params(c, &zp)) {
        if (zp.tx_takeover) {
            /* our window is kept: only this connection's compressor can
               continue it, so the message is compressed for c alone */
            e = rtws__pmd_send(c, (rtws_opcode)(RTWS__CHUNK_DATA(s)[0] & 0x0f),
                               RTWS__CHUNK_DATA(s) + (s->len - s->payload), s->payload);
            if (e) return e;
            c->priv_.msgs_out++;
            c->priv_.bytes_out += s->payload;
            return RTWS_OK;
        }
        q = rtws__shared_z(c, zp.tx_bits, s);
    }
#endif
    q->refs++;
    c->priv_.segs[(c->priv_.seghead + c->priv_.nseg) & (c->priv_.segcap - 1)].chunk = q;
    c->priv_.segs[(c->priv_.seghead + c->priv_.nseg) & (c->priv_.segcap - 1)].p = RTWS__CHUNK_DATA(q);
    c->priv_.segs[(c->priv_.seghead + c->priv_.nseg) & (c->priv_.segcap - 1)].len = q->len;
    c->priv_.nseg++;
    c->priv_.qbytes += q->len;
    if (c->priv_.cfg->budget) rtws_budget_charge(c->priv_.cfg->budget, q->len);
    c->priv_.msgs_out++;
    c->priv_.bytes_out += s->payload;
    rtws__notify(c);
    return RTWS_OK;
}

RTWS_API rtws_err rtws_conn_ping(rtws_conn *c, const void *data, size_t len) {
    rtws__ctl *k;
    if (c->priv_.freed || c->priv_.state != RTWS_STATE_OPEN || c->priv_.close_sent) return RTWS_ERR_CLOSED;
    if (len > 125 || (len && !data)) return RTWS_ERR_INVALID;
    if (!(k = rtws__ctl_get(c))) return RTWS_ERR_NOMEM;
    rtws__notify(c); /* first: a context brings now up to date */
    if (k->uping_staged) k->uping_n--;         /* the unsent one is replaced */
    if (k->uping_n == RTWS__UPING_MAX) {       /* the oldest gives way */
        memmove(k->uping_sum, k->uping_sum + 1, (RTWS__UPING_MAX - 1) * sizeof *k->uping_sum);
        memmove(k->uping_at, k->uping_at + 1, (RTWS__UPING_MAX - 1) * sizeof *k->uping_at);
        k->uping_n--;
    }
    k->uping_sum[k->uping_n] = rtws__ping_sum((const uint8_t *)data, len);
    k->uping_at[k->uping_n] = c->priv_.now;
    k->uping_n++;
    k->uping_staged = 1;
    if (len) memcpy(k->ping_buf, data, len);
    c->priv_.ping_len = (uint8_t)(len + 1);
    return RTWS_OK;
}

RTWS_API rtws_err rtws_conn_close(rtws_conn *c, unsigned code, const char *reason) {
    size_t rlen = reason ? strlen(reason) : 0;
    uint32_t st = 0;
    rtws_err e;
    if (c->priv_.freed) return RTWS_ERR_CLOSED;
    if (code && !rtws_close_code_valid(code)) return RTWS_ERR_INVALID;
    if (rlen > 123 || (rlen && !code) ||
        rtws_utf8_validate(&st, (const uint8_t *)reason, rlen, NULL) != RTWS_OK || st)
        return RTWS_ERR_INVALID;
    if (c->priv_.state == RTWS_STATE_IDLE || c->priv_.state == RTWS_STATE_HANDSHAKE) {
        rtws__drop_unsent(c);
        rtws__finish(c); /* nothing was open: just end it */
        c->priv_.close_deadline = c->priv_.now;
        return RTWS_OK;
    }
    if (c->priv_.state != RTWS_STATE_OPEN || c->priv_.close_sent) return RTWS_ERR_CLOSED;
    e = rtws__queue_close(c, code, reason, rlen);
    if (e) return e;
    c->priv_.state = RTWS_STATE_CLOSING;
    c->priv_.close_deadline = c->priv_.now + c->priv_.cfg->close_timeout_ms;
    return RTWS_OK;
}

#if !defined(RTWS_NO_HOST) /* host and tls */

/* === layer 4: host ====================================================== */

/* The system's sockets behind a few private names (rtws__os_*, RTWS__E*), so
   the code below reads the same on POSIX and on Windows. A socket is an int
   in the API and the tables (rtws_conn_get_fd, byfd); on Windows that int is
   the SOCKET's value (Winsock handles fit in 32 bits: OpenSSL's SSL_set_fd
   relies on the same), INVALID_SOCKET becomes -1. Error codes (the detail of
   RTWS_ERR_IO) are errno on POSIX, WSAGetLastError() on Windows. */
#include <signal.h> /* rtws_ctx_serve */
#if defined(_WIN32)
#if _WIN32_WINNT < 0x0600
#error "rtws: the host layer needs WSAPoll (Windows Vista and later): define _WIN32_WINNT as 0x0601 or higher before including <windows.h>, or define RTWS_NO_HOST"
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#if !defined(RTWS_NO_CLIENT)
#include <iphlpapi.h> /* the types of GetAdaptersAddresses (loaded at run time) */
#endif
#include <errno.h>
#include <stdio.h>
#if defined(_MSC_VER)
#pragma comment(lib, "ws2_32.lib")
#endif
#define RTWS__SOCKERR() WSAGetLastError()
#define RTWS__WOULDBLOCK(e) ((e) == WSAEWOULDBLOCK)
#define RTWS__INPROGRESS(e) ((e) == WSAEWOULDBLOCK || (e) == WSAEINPROGRESS)
#define RTWS__EALREADY WSAEALREADY
#define RTWS__EINTR WSAEINTR
#define RTWS__ECONNRESET WSAECONNRESET
#define RTWS__ECONNABORTED WSAECONNABORTED
#define RTWS__ECONNREFUSED WSAECONNREFUSED
#define RTWS__ENOMEM WSAENOBUFS
#define RTWS__SOCK(fd) ((SOCKET)(intptr_t)(fd)) /* -1 -> INVALID_SOCKET */
static int rtws__os_fd(SOCKET s) { return s == INVALID_SOCKET ? -1 : (int)s; }
static int rtws__os_socket(int af, int type, int proto) {
    return rtws__os_fd(socket(af, type, proto));
}
static int rtws__os_accept(int fd, struct sockaddr *a, socklen_t *len) {
    return rtws__os_fd(accept(RTWS__SOCK(fd), a, len));
}
static int rtws__os_bind(int fd, const struct sockaddr *a, size_t len) {
    return bind(RTWS__SOCK(fd), a, (int)len);
}
static int rtws__os_listen(int fd, int backlog) { return listen(RTWS__SOCK(fd), backlog); }
static int rtws__os_connect(int fd, const struct sockaddr *a, socklen_t len) {
    return connect(RTWS__SOCK(fd), a, len);
}
static int rtws__os_getsockname(int fd, struct sockaddr *a, socklen_t *len) {
    return getsockname(RTWS__SOCK(fd), a, len);
}
static int rtws__os_setsockopt(int fd, int level, int name, const void *v, size_t len) {
    return setsockopt(RTWS__SOCK(fd), level, name, (const char *)v, (int)len);
}
static int rtws__os_getsockopt(int fd, int level, int name, void *v, socklen_t *len) {
    return getsockopt(RTWS__SOCK(fd), level, name, (char *)v, len);
}
static long rtws__os_recv(int fd, void *buf, size_t len) {
    return recv(RTWS__SOCK(fd), (char *)buf, len > INT32_MAX ? INT32_MAX : (int)len, 0);
}
#define rtws__os_send(fd, buf, len) send(RTWS__SOCK(fd), (const char *)(buf), (int)(len), 0) /* small */
#define rtws__os_close(fd) closesocket(RTWS__SOCK(fd))
#define rtws__os_shutdown_wr(fd) shutdown(RTWS__SOCK(fd), SD_SEND)
#define RTWS__PFD_FD(fd) RTWS__SOCK(fd) /* struct pollfd's fd is a SOCKET */
#define RTWS__PFD_INT(s) rtws__os_fd(s)
#define rtws__os_poll(fds, n, ms) WSAPoll((fds), (ULONG)(n), (ms))
/* The system's text for a Winsock code, into buf (cap bytes). */
static const char *rtws__os_strerror(int code, char *buf, size_t cap) {
    DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL,
                             (DWORD)code, 0, buf, (DWORD)cap, NULL);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
                     buf[n - 1] == '.'))
        n--;
    if (n == 0) snprintf(buf, cap, "Winsock error %d", code);
    else buf[n] = 0;
    return buf;
}
#else
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#define RTWS__SOCKERR() errno
#define RTWS__WOULDBLOCK(e) ((e) == EAGAIN || (e) == EWOULDBLOCK)
#define RTWS__INPROGRESS(e) ((e) == EINPROGRESS)
#define RTWS__EALREADY EALREADY
#define RTWS__EINTR EINTR
#define RTWS__ECONNRESET ECONNRESET
#define RTWS__ECONNABORTED ECONNABORTED
#define RTWS__ECONNREFUSED ECONNREFUSED
#define RTWS__ENOMEM ENOMEM
#define rtws__os_socket socket
#define rtws__os_accept accept
#define rtws__os_bind bind
#define rtws__os_listen listen
#define rtws__os_connect connect
#define rtws__os_getsockname getsockname
#define rtws__os_setsockopt setsockopt
#define rtws__os_getsockopt getsockopt
#define rtws__os_recv(fd, buf, len) recv((fd), (buf), (len), 0)
#define rtws__os_send(fd, buf, len) send((fd), (buf), (len), MSG_NOSIGNAL)
#define rtws__os_close(fd) close(fd)
#define rtws__os_shutdown_wr(fd) shutdown((fd), SHUT_WR)
#define RTWS__PFD_FD(fd) (fd)
#define RTWS__PFD_INT(fd) (fd)
#define rtws__os_poll(fds, n, ms) poll((fds), (nfds_t)(n), (ms))
#define rtws__os_strerror(code, buf, cap) ((void)(buf), (void)(cap), strerror(code))
#endif
#if defined(__linux__) && !defined(RTWS_NO_EPOLL)
#include <sys/epoll.h>
#define RTWS__EPOLL 1 /* rtws_ctx_run_once waits with epoll: no walk over every socket */
#endif

/* A write to a socket the peer closed must give EPIPE, not SIGPIPE: Linux
   and the BSDs take MSG_NOSIGNAL on each send; macOS has no such flag but
   SO_NOSIGPIPE, set on every socket (rtws__set_nonblock). A system with
   neither raises SIGPIPE, which the program must then ignore. msg_iovlen is
   a size_t in glibc (and bionic), an int in POSIX, musl, macOS and the BSDs. */
#if defined(RTWS__NO_MSG_NOSIGNAL) && defined(MSG_NOSIGNAL)
#undef MSG_NOSIGNAL
#endif
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif
#if defined(SO_NOSIGPIPE)
#define RTWS__SO_NOSIGPIPE SO_NOSIGPIPE
#elif defined(RTWS__SIMULATE_BSD)
#define RTWS__SO_NOSIGPIPE 0x1022 /* macOS's number; Linux answers ENOPROTOOPT */
#elif defined(__APPLE__) && !defined(RTWS_NO_HOST)
#error "rtws: SO_NOSIGPIPE is hidden (a _POSIX_C_SOURCE without _DARWIN_C_SOURCE?): define _DARWIN_C_SOURCE too, or a closed peer would raise SIGPIPE"
#endif
#if defined(__GLIBC__) || defined(__BIONIC__)
#define RTWS__IOVLEN(n) ((size_t)(n))
#else
#define RTWS__IOVLEN(n) ((int)(n))
#endif

typedef union rtws__addr {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
} rtws__addr;

#define RTWS__MAX_ALT 4 /* addresses a client tries, from getaddrinfo */
#define RTWS__SCRATCH 8192u
#define RTWS__BIG_MAX ((size_t)2 << 20) /* the largest big scratch buffer */
#define RTWS__TRIM_RELEASED ((size_t)8 << 20) /* big blocks freed before the C library
                                                  is asked to give memory back */

typedef struct rtws__sock {
    rtws_conn conn; /* first: a host rtws_conn * is a rtws__sock * */
    rtws_ctx *ctx;
    struct rtws__sock *next_dirty;
    rtws__addr *alt;             /* client: further addresses to try */
    int fd;
    uint32_t index;              /* in ctx->socks */
    rtws__addr peer;
    uint8_t http_counted;        /* counted in ctx->nhttp (a plain HTTP request) */
    uint8_t connecting, lingering, dirty, dead, listener, nalt, ialt, registered;
    uint8_t xport;               /* 1: an rtws__xsock, a transport other than plain TCP */
    uint8_t watched;             /* events last reported through on_socket */
    uint8_t kind;                /* RTWS__SOCK_WAKER: the wake-up fd of posting (listener
                                    is set too); RTWS__SOCK_ROUTED: alt is the alt of an
                                    rtws__route (rtws__route_of); RTWS__SOCK_RAW: an
                                    rtws__rsock, an rtws_stream's socket (conn unused);
                                    RTWS__SOCK_DIRECT: a direct write went out in this
                                    pass. One byte for all keeps the struct within 456 bytes */
} rtws__sock;
#define RTWS__SOCK_WAKER 1u
#define RTWS__SOCK_ROUTED 2u
#define RTWS__SOCK_RAW 4u
#define RTWS__SOCK_DIRECT 8u

/* The socket of a raw stream (rtws_stream). */
typedef struct rtws__rsock {
    rtws__sock s;                /* first: an rtws__sock * is an rtws__rsock * */
    struct rtws_stream *stream;  /* NULL once the stream let go of it */
} rtws__rsock;
#define RTWS__STREAM(s) (((rtws__rsock *)(s))->stream)

/* raw streams (rtws_stream), defined at the end of this layer */
static void rtws__stream_ready(rtws__sock *s, int readable, int writable, uint64_t now);
static int rtws__stream_flush(rtws__sock *s);
static void rtws__stream_settle(rtws__sock *s);
static void rtws__streams_timers(rtws_ctx *ctx, uint64_t now, uint64_t *next);
static void rtws__streams_sweep(rtws_ctx *ctx);
static void rtws__streams_free(rtws_ctx *ctx);

/* A socket whose bytes go through a transport other than plain TCP (wss://,
   the user's own): the transport's state follows, at RTWS__XSTATE. Plain
   sockets keep their size. */
typedef struct rtws__xsock {
    rtws__sock s;                /* first: an rtws__sock * is an rtws__xsock * */
    const rtws_transport *tp;
    void *shared;                /* listeners: what open gets for each accepted socket */
    int owns_shared;             /* listeners: server_new made it, server_free ends it */
} rtws__xsock;
#define RTWS__XSTATE ((sizeof(rtws__xsock) + 15) & ~(size_t)15)

/* A name being resolved on the loop for a client of rtws_ctx_connect (the
   route's dns): the socket's fd is the query's (UDP, or TCP after a truncated
   answer) until the addresses are known. Index 0 is A, 1 is AAAA. */
#if !defined(RTWS_NO_CLIENT)
typedef struct rtws__dns {
    char name[256];
    size_t name_len;
    unsigned port;                /* the connect's, for the addresses found */
    rtws_dns_conf conf;
    unsigned dport;               /* the servers' port */
    uint32_t try_ms;              /* how long each try waits */
    unsigned tries, ntries;       /* tries made, allowed (attempts x servers) */
    uint64_t deadline;            /* of the try under way */
    int tcp;                      /* the fd is TCP: a truncated answer asked again */
    int tcp_up;                   /* its connect completed */
    int refused, servfail;        /* what servers said, for the error at the end */
    uint16_t id[2];
    uint8_t state[2];             /* 0 waiting, 1 answered, 2 truncated */
    rtws_dns_addr got[2][RTWS__MAX_ALT];
    size_t ngot[2];
    uint8_t q[2 * RTWS_DNS_QUERY_MAX]; /* TCP: the queries still to send */
    size_t qlen;
    uint8_t *in;                  /* TCP: the answer so far (2 + 65535 bytes) */
    size_t inlen;
} rtws__dns;
#endif

/* How a client of rtws_ctx_connect reaches its server: the URL asked now,
   the proxy on the way, and the redirects followed so far. */
typedef struct rtws__route {
    rtws__addr alt[RTWS__MAX_ALT]; /* first: the socket's alt points here (no pointer
                                    of its own keeps rtws__sock small) */
    char *url;                   /* the URL of the request under way (rtws_conn_get_url) */
    char *next;                  /* a redirect taken: the URL to start over at */
    char *seen;                  /* every URL asked, each NUL-terminated: loops */
    size_t seen_len;
    unsigned hops, max_hops;     /* redirects followed; the limit (0: none followed) */
    int allow_downgrade;
    int tls_wait;                /* wss:// through a proxy: the transport opens once the
                                    tunnel is up (CONNECT answered), before the upgrade */
    char *strs;                  /* copies of the caller's option strings */
    char *hop;                   /* this hop's tunnel, Proxy-Authorization, Host, target,
                                    server name */
    rtws_client_opts opts;       /* the caller's, pointing into strs */
    const char *sni;             /* tls_wait: the server name, in hop */
    char first_host[256 + 8];    /* "host:port" of the first URL: Authorization goes
                                    to it only (lower case) */
    struct rtws__dns *dns;       /* the name being resolved, else NULL */
    uint64_t attempt_at;         /* when the connect to the current address began */
    int race_fd[RTWS__MAX_ALT];  /* earlier attempts, still connecting (Happy Eyeballs):
                                    the socket's fd is the newest */
    uint8_t race_alt[RTWS__MAX_ALT]; /* their address (index in alt) */
    uint8_t race_w[RTWS__MAX_ALT];   /* the events watched on them */
    uint8_t nrace;
} rtws__route;

/* The route of a client of rtws_ctx_connect, else NULL. */
static rtws__route *rtws__route_of(const rtws__sock *s) {
    return s->kind & RTWS__SOCK_ROUTED ? (rtws__route *)(void *)s->alt : NULL;
}

static void rtws__route_free(const rtws_allocator *a, rtws__route *r) {
    if (!r) return;
#if !defined(RTWS_NO_CLIENT)
    if (r->dns) rtws__free(a, r->dns->in);
#endif
    rtws__free(a, r->dns);
    rtws__free(a, r->url);
    rtws__free(a, r->next);
    rtws__free(a, r->seen);
    rtws__free(a, r->strs);
    rtws__free(a, r->hop);
    rtws__free(a, r);
}
#if !defined(RTWS_NO_CLIENT)
static rtws_err rtws__sock_redirect(rtws_conn *c, int status, const char *loc, size_t len);
static void rtws__route_restart(struct rtws__sock *s, uint64_t now);
static int rtws__route_tls(struct rtws__sock *s);
static unsigned rtws__dns_want(const rtws__sock *s);
static uint64_t rtws__route_deadline(const rtws__sock *s, uint64_t d);
static void rtws__race_end(struct rtws__sock *s);
#endif


struct rtws_ctx {
    rtws_ctx_config cfg;
    rtws__sock **socks;          /* listeners and connections */
    size_t nsocks, capsocks, nconns;
    size_t nhttp;                /* of nconns, plain HTTP requests (not WebSockets) */
    rtws__sock **byfd;           /* fd -> socket */
    size_t capfd;
    rtws__sock *dirty;           /* sockets with output or state to act on */
    struct pollfd *pfds;         /* rtws_ctx_run_once */
    size_t cappfds;
    uint64_t now, next_scan;
    int in_call;
    int shutting_down;
    struct rtws_client *clients;  /* reconnecting clients, for their timers */
    size_t ndead;                 /* sockets and clients waiting for the sweep */
    uint8_t *scratch;             /* RTWS__SCRATCH bytes: reads of connections with nothing
                                     buffered (rtws_conn_recv_inplace) */
    uint8_t *big;                 /* big_cap bytes: reads of connections whose big receive
                                     buffer holds nothing (rtws__big_scratch) */
    size_t big_cap;
    uint64_t big_at;              /* its last use: freed after trim_ms unused */
    uint64_t mtrim_at;            /* the last ask to the C library to give memory back */
    uint32_t mtrims;              /* asks so far */
    int scratch_busy;             /* a read is being handled in it (a nested call reads
                                     into the connection's own buffer) */
    int epfd, epoll_on;           /* rtws_ctx_run_once's epoll set (Linux) */
    rtws_ctx_stats totals;        /* of destroyed connections, and the counts */
    rtws_config conn_cfg[2];      /* cfg.conn with defaults, server and client role: every
                                     connection points at one (none keeps a copy) */
    rtws__pool pool;              /* big buffers for reuse (cfg.buffer_pool) */
    rtws__conn_io io;             /* what every connection gets: the pool, direct writes */
    uint64_t pool_uses, pool_at;  /* pool.uses at the last timer pass that saw it change */
    const rtws_transport *tls_tp; /* wss://: cfg.tls_transport or RTWS_TLS_TRANSPORT (NULL: none) */
    void *tls_client;             /* tls_tp's client_new state, made at the first wss:// connect */
    int tls_error;                /* why the last TLS setup failed (rtws_ctx_get_tls_error) */
    rtws_budget budget;           /* cfg.memory_budget over every connection */
    struct rtws_stream *streams;  /* raw streams, for their timers */
    struct rtws__postq *post;     /* cross-thread posting, NULL when off */
    volatile int stop_asked;      /* rtws_ctx_stop: rtws_ctx_run should shut down */
};

/* Marks s for the sweep at the end of the current call (counting, so the
   sweep costs nothing when there is nothing to release). */
static void rtws__kill(rtws__sock *s) {
    if (!s->dead) s->ctx->ndead++;
    s->dead = 1;
}

/* ---- plain TCP, the transport of ws:// ---- */

static rtws_err rtws__tcp_open(void *state, const rtws_transport_open *in, int *detail) {
    (void)state, (void)in, (void)detail;
    return RTWS_OK;
}

static long rtws__tcp_read(void *state, int fd, void *buf, size_t len, int *detail) {
    long r;
    int e;
    (void)state;
    do r = (long)rtws__os_recv(fd, buf, len);
    while (r < 0 && RTWS__SOCKERR() == RTWS__EINTR);
    if (r >= 0) return r;
    e = RTWS__SOCKERR();
    if (RTWS__WOULDBLOCK(e)) return RTWS_IO_AGAIN;
    if (e == RTWS__ECONNRESET) return 0; /* the end of the stream: the connection says 1006 */
    *detail = e;
    return RTWS_IO_ERRNO;
}

#if defined(_WIN32)
/* WSASend takes the pieces as WSABUFs (ULONG lengths): at most 2^31 - 1
   bytes in all, so the count fits the long it returns. */
static long rtws__tcp_writev(void *state, int fd, const rtws_iov *iov, int n, int *detail) {
    WSABUF wb[16];
    DWORD sent = 0;
    size_t room = 0x7fffffffu;
    int i, e;
    (void)state;
    if (n > 16) n = 16;
    for (i = 0; i < n && room > 0; i++) {
        size_t l = iov[i].len < room ? iov[i].len : room;
        wb[i].buf = (CHAR *)(uintptr_t)iov[i].base;
        wb[i].len = (ULONG)l;
        room -= l;
    }
    if (WSASend(RTWS__SOCK(fd), wb, (DWORD)i, &sent, 0, NULL, NULL) == 0) return (long)sent;
    e = WSAGetLastError();
    if (e == WSAEWOULDBLOCK) return RTWS_IO_AGAIN;
    *detail = e;
    return RTWS_IO_ERRNO;
}
#else
static long rtws__tcp_writev(void *state, int fd, const rtws_iov *iov, int n, int *detail) {
    struct iovec io[16];
    struct msghdr mh;
    ssize_t w;
    int i;
    (void)state;
    if (n > 16) n = 16;
    for (i = 0; i < n; i++) {
        io[i].iov_base = (void *)(uintptr_t)iov[i].base;
        io[i].iov_len = iov[i].len;
    }
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = io;
    mh.msg_iovlen = RTWS__IOVLEN(n);
    do w = sendmsg(fd, &mh, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w >= 0) return (long)w;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return RTWS_IO_AGAIN;
    *detail = errno;
    return RTWS_IO_ERRNO;
}
#endif

static const rtws_transport rtws__tcp = {
    "tcp", 0, rtws__tcp_open, rtws__tcp_read, rtws__tcp_writev, NULL, NULL, NULL, NULL, NULL,
    NULL,  NULL, NULL, NULL, NULL};

RTWS_API const rtws_transport *rtws_transport_tcp(void) { return &rtws__tcp; }

static const rtws_transport *rtws__tp(const rtws__sock *s) {
    return s->xport ? ((const rtws__xsock *)s)->tp : &rtws__tcp;
}
/* The transport's state of s, NULL for plain TCP. */
static void *rtws__tstate(rtws__sock *s) {
    return s->xport && ((const rtws__xsock *)s)->tp->state_size ? (uint8_t *)s + RTWS__XSTATE
                                                                 : NULL;
}

static void rtws__sock_notify(rtws_conn *c);

/* rtws__conn_io.write: a big frame with nothing queued goes out now, from
   the sender's bytes. Plain TCP only (a transport may stage records); an
   error is left for the next flush to find and report. */
static size_t rtws__sock_direct(rtws_conn *c, const rtws_iov *iov, int n) {
    rtws__sock *s = (rtws__sock *)c;
    int detail = 0;
    long w;
    if (s->xport || s->connecting || s->lingering || s->dead || s->fd < 0) return 0;
    /* once per pass: the frames that follow in the same pass (a client with
       several messages in flight) are copied and go out together in the
       flush's one writev, rather than a syscall each */
    if ((s->kind & RTWS__SOCK_DIRECT) && n == 2 && iov[1].len < RTWS__DIRECT_ALWAYS) return 0;
    w = rtws__tcp_writev(NULL, s->fd, iov, n, &detail);
    s->kind |= RTWS__SOCK_DIRECT;
    rtws__sock_notify(c); /* the end of the pass clears it (rtws__flush_dirty) */
    return w > 0 ? (size_t)w : 0;
}

static void rtws__sock_notify(rtws_conn *c) {
    rtws__sock *s = (rtws__sock *)c;
    if (s->ctx->now > c->priv_.now) c->priv_.now = s->ctx->now; /* rtws_conn_ping's stamp */
    if (c->priv_.h.opcode == RTWS__OP_PLAIN_HTTP && !c->priv_.have_h && !s->http_counted) {
        s->http_counted = 1;
        s->ctx->nhttp++;
    }
    if (!s->dirty) {
        s->dirty = 1;
        s->next_dirty = s->ctx->dirty;
        s->ctx->dirty = s;
    }
}

static int rtws__set_nonblock(int fd) {
#if defined(_WIN32)
    u_long on = 1;
    if (ioctlsocket(RTWS__SOCK(fd), (long)FIONBIO, &on) != 0) return -1;
    SetHandleInformation((HANDLE)RTWS__SOCK(fd), HANDLE_FLAG_INHERIT, 0); /* FD_CLOEXEC */
    return 0;
#else
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
#ifdef RTWS__SO_NOSIGPIPE
    {
        int one = 1; /* fails harmlessly on the wake-up pipe (not a socket) */
        setsockopt(fd, SOL_SOCKET, RTWS__SO_NOSIGPIPE, &one, sizeof one);
    }
#endif
    return 0;
#endif /* _WIN32 */
}

#ifdef RTWS__EPOLL
static void rtws__epoll_set(rtws_ctx *ctx, int fd, unsigned old, unsigned want) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = (want & RTWS_WANT_READ ? (uint32_t)EPOLLIN : 0u) |
                (want & RTWS_WANT_WRITE ? (uint32_t)EPOLLOUT : 0u);
    ev.data.fd = fd;
    epoll_ctl(ctx->epfd, !old ? EPOLL_CTL_ADD : !want ? EPOLL_CTL_DEL : EPOLL_CTL_MOD, fd, &ev);
}
#endif

static void rtws__watch(rtws__sock *s, unsigned want) {
    rtws_ctx *ctx = s->ctx;
    unsigned old = s->watched;
    if (old == want) return;
    s->watched = (uint8_t)want;
    if (ctx->cfg.on_socket) ctx->cfg.on_socket(ctx, s->fd, want, ctx->cfg.socket_user);
#ifdef RTWS__EPOLL
    if (ctx->epoll_on) rtws__epoll_set(ctx, s->fd, old, want);
#endif
}

/* The budget is over its limit: close the connections with the largest
   unsent queues (1013, their unsent data dropped) until need bytes fit. */
static void rtws__ctx_reclaim(rtws_budget *b, size_t need, void *user) {
    rtws_ctx *ctx = (rtws_ctx *)user;
    while (b->limit && (b->used > b->limit || need > b->limit - b->used)) {
        rtws__sock *big = NULL;
        size_t most = 0, i;
        for (i = 0; i < ctx->nsocks; i++) {
            rtws__sock *s = ctx->socks[i];
            size_t q = s->listener || s->dead || (s->kind & RTWS__SOCK_RAW) ? 0 : rtws__conn_sheddable(&s->conn);
            if (q > most) {
                most = q;
                big = s;
            }
        }
        if (!big || !rtws__conn_shed(&big->conn)) return;
    }
}

static rtws_err rtws__post_init(rtws_ctx *ctx);
static int rtws__post_serial(rtws_ctx *ctx, int fd);
static void rtws__post_run(rtws_ctx *ctx);
static void rtws__post_free(rtws_ctx *ctx);
RTWS_API rtws_ctx *rtws_ctx_new(const rtws_ctx_config *cfg) {
    rtws_ctx *ctx;
    rtws_allocator a;
    memset(&a, 0, sizeof a);
    if (cfg) a = cfg->conn.allocator;
    ctx = (rtws_ctx *)rtws__alloc(&a, sizeof *ctx);
    if (!ctx) return NULL;
#if defined(_WIN32)
    { /* once per context, undone by rtws_ctx_free (Winsock counts them) */
        WSADATA wsa;
        if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) {
            rtws__free(&a, ctx);
            return NULL;
        }
    }
#endif
    memset(ctx, 0, sizeof *ctx);
    if (cfg) ctx->cfg = *cfg;
    ctx->cfg.timer_ms = RTWS__DEF(ctx->cfg.timer_ms, 100u);
    ctx->cfg.linger_ms = RTWS__DEF(ctx->cfg.linger_ms, 2000u);
    ctx->cfg.trim_ms = RTWS__DEF(ctx->cfg.trim_ms, 1000u);
    ctx->cfg.buffer_pool = RTWS__DEF(ctx->cfg.buffer_pool, (size_t)32 << 20);
#if defined(RTWS_DNS_SYSTEM)
    ctx->cfg.dns_system = 1; /* getaddrinfo() for every name (blocking) */
#endif
    ctx->pool.alloc = a;
    ctx->pool.budget = ctx->cfg.buffer_pool_off ? 0 : ctx->cfg.buffer_pool;
    ctx->io.pool = &ctx->pool; /* off: budget 0, it keeps nothing, but counts what goes back */
    ctx->io.write = rtws__sock_direct;
    ctx->io.notify = rtws__sock_notify;
#if !defined(RTWS_NO_CLIENT)
    ctx->io.redirect = rtws__sock_redirect;
#else
    ctx->io.redirect = NULL;
#endif
    ctx->scratch = (uint8_t *)rtws__alloc(&a, RTWS__SCRATCH); /* NULL: buffers per connection */
    ctx->cfg.backlog = RTWS__DEF(ctx->cfg.backlog, SOMAXCONN);
    ctx->conn_cfg[0] = ctx->conn_cfg[1] = ctx->cfg.conn;
    ctx->conn_cfg[0].role = RTWS_SERVER;
    ctx->conn_cfg[1].role = RTWS_CLIENT;
    rtws__config_defaults(&ctx->conn_cfg[0]);
    rtws__config_defaults(&ctx->conn_cfg[1]);
    ctx->tls_tp = ctx->cfg.tls_transport ? ctx->cfg.tls_transport : RTWS_TLS_TRANSPORT;
    rtws_budget_init(&ctx->budget, ctx->cfg.memory_budget);
    ctx->budget.reclaim = rtws__ctx_reclaim;
    ctx->budget.reclaim_user = ctx;
    ctx->conn_cfg[0].budget = ctx->conn_cfg[1].budget = &ctx->budget;
    if (ctx->cfg.post_queue_max && rtws__post_init(ctx) != RTWS_OK) {
        rtws_ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Makes ctx->byfd[fd] addressable. */
static int rtws__fd_slot(rtws_ctx *ctx, int fd) {
    size_t old = ctx->capfd;
    void *nb = ctx->byfd;
    if ((size_t)fd < old) return 1;
    if (rtws__grow(&ctx->cfg.conn.allocator, &nb, &ctx->capfd, RTWS__MAX((size_t)fd + 1, 256u),
                   sizeof(rtws__sock *), SIZE_MAX) != RTWS_OK)
        return 0;
    ctx->byfd = (rtws__sock **)nb;
    memset(ctx->byfd + old, 0, (ctx->capfd - old) * sizeof *ctx->byfd);
    return 1;
}

static int rtws__add_sock(rtws_ctx *ctx, rtws__sock *s) {
    const rtws_allocator *a = &ctx->cfg.conn.allocator;
    if (ctx->nsocks == ctx->capsocks) {
        void *ns = ctx->socks;
        if (rtws__grow(a, &ns, &ctx->capsocks, RTWS__MAX(ctx->nsocks + 1, 64u),
                       sizeof(rtws__sock *), SIZE_MAX) != RTWS_OK)
            return 0;
        ctx->socks = (rtws__sock **)ns;
    }
    if (!rtws__fd_slot(ctx, s->fd)) return 0;
    if (!s->listener && !rtws__post_serial(ctx, s->fd)) return 0;
    s->ctx = ctx;
    s->registered = 1;
    s->index = (uint32_t)ctx->nsocks; /* below the fd limit */

    ctx->socks[ctx->nsocks++] = s;
    ctx->byfd[s->fd] = s;
    if (!s->listener && !(s->kind & RTWS__SOCK_RAW)) ctx->nconns++;
    return 1;
}

/* Closes the socket and releases everything of s. */
static void rtws__destroy(rtws__sock *s) {
    rtws_ctx *ctx = s->ctx;
    const rtws_allocator *a = &ctx->cfg.conn.allocator;
    size_t i = s->index;
    rtws__watch(s, 0);
    if (s->xport) {
        rtws__xsock *x = (rtws__xsock *)s;
        if (!s->listener && x->tp->release) x->tp->release(rtws__tstate(s));
        if (s->listener && x->owns_shared && x->tp->server_free) x->tp->server_free(x->shared);
    }
    if (s->fd >= 0) {
        ctx->byfd[s->fd] = NULL;
        rtws__os_close(s->fd);
    }
    ctx->socks[i] = ctx->socks[--ctx->nsocks];
    ctx->socks[i]->index = (uint32_t)i;
    if (!s->listener && !(s->kind & RTWS__SOCK_RAW)) {
        if (s->conn.priv_.opened && !(s->conn.priv_.cbits & RTWS__C_CLOSED_EVT) && !s->conn.priv_.freed) {
            /* closed without a close handshake (rtws_ctx_free): say so, so
               whatever keeps state per connection (the router) lets go */
            rtws__enter(&s->conn, ctx->now);
            rtws__emit_close(&s->conn, RTWS_CLOSE_ABNORMAL, NULL, 0, 0, 0);
            s->conn.priv_.depth--;
        }
        ctx->nconns--;
        if (s->http_counted) ctx->nhttp--;
        ctx->totals.msgs_in += s->conn.priv_.msgs_in;
        ctx->totals.msgs_out += s->conn.priv_.msgs_out;
        ctx->totals.bytes_in += s->conn.priv_.bytes_in;
        ctx->totals.bytes_out += s->conn.priv_.bytes_out;
        s->conn.priv_.cbits &= (uint8_t)~RTWS__C_NOTIFY;
        s->conn.priv_.depth = 0;
        rtws_conn_free(&s->conn);
    }
#if !defined(RTWS_NO_CLIENT)
    if (s->kind & RTWS__SOCK_ROUTED) rtws__race_end(s);
#endif
    if (s->kind & RTWS__SOCK_ROUTED) rtws__route_free(a, rtws__route_of(s));
    else rtws__free(a, s->alt);
    rtws__free(a, s);
}

/* Decides what a socket needs next: destroy, linger, or new interest. */
/* An open connection holding buffers it could give back when quiet. */
static int rtws__holds_buffers(const rtws_conn *c) {
    return (c->priv_.rbuf || c->priv_.mbuf || c->priv_.spare || c->priv_.segs || c->priv_.ctl) && !c->priv_.nseg && c->priv_.state == RTWS_STATE_OPEN;
}

/* The next time the timer scan has work for s. */
static uint64_t rtws__sock_deadline(const rtws__sock *s) {
    uint64_t d;
    if (s->lingering) return s->conn.priv_.close_deadline;
    d = rtws_conn_get_deadline(&s->conn);
    if (rtws__holds_buffers(&s->conn) && s->conn.priv_.last_rx + s->ctx->cfg.trim_ms < d)
        d = s->conn.priv_.last_rx + s->ctx->cfg.trim_ms;
#if !defined(RTWS_NO_CLIENT)
    if (s->connecting && (s->kind & RTWS__SOCK_ROUTED)) d = rtws__route_deadline(s, d);
#endif
    return d;
}

static void rtws__settle_state(rtws__sock *s, uint64_t now);
static void rtws__do_read(rtws__sock *s, uint64_t now);
/* After any event on s: its interest, and an earlier timer pass if needed. */
static void rtws__settle(rtws__sock *s, uint64_t now) {
    if (s->kind & RTWS__SOCK_RAW) {
        rtws__stream_settle(s);
        return;
    }
    rtws__settle_state(s, now);
    if (!s->dead && !s->listener) {
        uint64_t d = rtws__sock_deadline(s);
        /* as in rtws__timers: a deadline already due is served by the next
           pass, at most timer_ms away, not by a pass on every call */
        if (d < now + s->ctx->cfg.timer_ms) d = now + s->ctx->cfg.timer_ms;
#if defined(_WIN32) /* a connect's failure is found by the pass (rtws__win_connects) */
        if (s->connecting) d = now + s->ctx->cfg.timer_ms;
#endif
        if (d < s->ctx->next_scan) s->ctx->next_scan = d;
    }
}

static void rtws__settle_state(rtws__sock *s, uint64_t now) {
    rtws_conn *c = &s->conn;
    unsigned want;
    if (s->dead || s->listener) return;
#if !defined(RTWS_NO_CLIENT)
    if ((s->kind & RTWS__SOCK_ROUTED) && rtws__route_of(s)->next && !c->priv_.depth && !c->priv_.in_recv) {
        rtws__route_restart(s, now); /* a redirect was taken: start over there */
        if (s->dead) return;
    }
#endif
    if (s->xport && !s->connecting && !s->lingering && !c->priv_.eof && !c->priv_.drop_input && !c->priv_.freed) {
        const rtws_transport *tp = rtws__tp(s);
        /* input the transport holds (decrypted bytes, the end of the
           stream) would never wake poll(): hand it over now */
        if (tp->pending && tp->pending(rtws__tstate(s))) {
            rtws__do_read(s, now);
            if (s->dead) return;
        }
    }
    if (c->priv_.freed && !s->lingering) {
        rtws__kill(s);
        return;
    }
    want = rtws_conn_want(c);
    if (s->lingering) {
        if (now >= s->conn.priv_.close_deadline) rtws__kill(s);
        return;
    }
    if (s->xport && !s->connecting && !c->priv_.eof && !c->priv_.freed && rtws__tp(s)->wants)
        want = rtws__tp(s)->wants(rtws__tstate(s), s->fd, want); /* records, close_notify */
    if (want == RTWS_WANT_CLOSE) {
        if (c->priv_.eof || s->connecting) {
            rtws__kill(s);
            return;
        }
        /* half-close and drain what the peer still sends, so our last bytes
           (a close frame) are not lost to a reset */
        rtws__os_shutdown_wr(s->fd);
        s->lingering = 1;
        s->conn.priv_.close_deadline = now + s->ctx->cfg.linger_ms;
        rtws__watch(s, RTWS_WANT_READ);
        return;
    }
    if (s->connecting) want = RTWS_WANT_WRITE;
#if !defined(RTWS_NO_CLIENT)
    if (s->connecting && (s->kind & RTWS__SOCK_ROUTED) && rtws__route_of(s)->dns)
        want = rtws__dns_want(s); /* still resolving: the query's socket */
#endif
    rtws__watch(s, want & (RTWS_WANT_READ | RTWS_WANT_WRITE));
}

/* The socket failed under the connection: report, and end it at once. */
static void rtws__host_fail(rtws__sock *s, rtws_err err, int detail, const char *detail_text) {
    rtws_event ev;
    rtws_conn *c = &s->conn;
    if (c->priv_.state == RTWS_STATE_CLOSED) return;
    rtws__event_init(&ev, RTWS_EV_ERROR);
    ev.error.err = err;
    ev.error.detail = detail;
    ev.error.detail_text = detail_text;
    c->priv_.err = (int8_t)err;
    rtws__enter(c, s->ctx->now);
    rtws__emit(c, &ev);
    rtws__emit_close(c, RTWS_CLOSE_ABNORMAL, NULL, 0, 0, 0);
    c->priv_.state = RTWS_STATE_CLOSED;
    c->priv_.eof = 1;
    c->priv_.cbits |= RTWS__C_WANT_CLOSE;
    c->priv_.drop_input = 1;
    rtws__leave(c);
}

/* The transport's text for a code it reported, or NULL. */
static const char *rtws__tp_text(const rtws_transport *tp, int detail) {
    return tp && tp->error_text ? tp->error_text(detail) : NULL;
}

static void rtws__host_error(rtws__sock *s, rtws_err err, int sys_errno) {
    char text[256]; /* Windows: FormatMessage's text */
    rtws__host_fail(s, err, sys_errno,
                    sys_errno ? rtws__os_strerror(sys_errno, text, sizeof text) : NULL);
}

/* A transport's read, writev or flush failed (RTWS_IO_ERRNO or RTWS_IO_FAIL). */
static void rtws__transport_fail(rtws__sock *s, long r, int detail) {
    if (r == RTWS_IO_ERRNO) {
        rtws__host_error(s, RTWS_ERR_IO, detail);
        return;
    }
    s->conn.priv_.eof = 1; /* nothing more can be sent or received */
    rtws__host_fail(s, RTWS_ERR_TLS, detail, rtws__tp_text(rtws__tp(s), detail));
}

/* Writes what the connection has queued; returns 0 when all went out. */
static int rtws__flush(rtws__sock *s) {
    rtws_conn *c = &s->conn;
    const rtws_transport *tp = rtws__tp(s);
    long w;
    int detail = 0;
    if (s->kind & RTWS__SOCK_RAW) return rtws__stream_flush(s);
    if (s->connecting || s->lingering || c->priv_.freed) return 0;
#if !defined(RTWS_NO_CLIENT)
    if ((s->kind & RTWS__SOCK_ROUTED) && rtws__route_of(s)->tls_wait && !rtws__tunneling(c) && !c->priv_.drop_input) {
        if (!rtws__route_tls(s)) return 0;
        tp = rtws__tp(s);
    }
#endif
    for (;;) {
        rtws_iov v[16];
        size_t total = 0;
        int i, n = rtws_conn_out_iov(c, v, 16);
        if (n == 0) {
            if (!tp->flush) return 0;
            w = tp->flush(rtws__tstate(s), s->fd, &detail); /* a partial record, say */
            if (w >= 0) return 0;
            break;
        }
        for (i = 0; i < n; i++) total += v[i].len;
        w = tp->writev(rtws__tstate(s), s->fd, v, n, &detail);
        if (w < 0) break;
        rtws_conn_out_done(c, (size_t)w);
        if ((size_t)w < total) return 1; /* the kernel buffer is full */
    }
    if (w == RTWS_IO_AGAIN) return 1;
    rtws__transport_fail(s, w, detail);
    return 0;
}

/* The context's big scratch buffer, of at least want bytes (grown to it,
   whole 64 KiB), or NULL when it cannot be had. */
static uint8_t *rtws__big_scratch(rtws_ctx *ctx, size_t want, uint64_t now) {
    if (ctx->big_cap < want) {
        size_t cap = (want + 65535u) & ~(size_t)65535u;
        uint8_t *b = (uint8_t *)rtws__alloc(&ctx->pool.alloc, cap);
        if (!b) return NULL;
        rtws__free(&ctx->pool.alloc, ctx->big);
        ctx->big = b;
        ctx->big_cap = cap;
    }
    ctx->big_at = now;
    return ctx->big;
}

/* A read of r bytes into the big scratch buffer's cap adapts c's offer as
   reads into its own buffer do (rtws_conn_recv_commit): one that fills the
   buffer asks for twice as much next time (else a frame cut at the
   buffer's end costs a copy of its head and a read for its tail, the
   pattern of 64 KiB echoes two in flight with a 128 KiB buffer: reads of
   128 KiB and of 28 bytes taking turns), one that takes under a quarter of
   the offer asks for half. */
static void rtws__lent_hint(rtws_conn *c, size_t r, size_t cap) {
    if (r == cap && c->priv_.rhint < RTWS__READ_MAX)
        c->priv_.rhint = (uint32_t)RTWS__MIN(cap * 2, (size_t)RTWS__READ_MAX);
    else if (r < c->priv_.rhint / 4 && c->priv_.rhint > RTWS__RBUF_MIN)
        c->priv_.rhint /= 2;
}

static void rtws__do_read(rtws__sock *s, uint64_t now) {
    rtws_conn *c = &s->conn;
    const rtws_transport *tp = rtws__tp(s);
    void *st = rtws__tstate(s);
    int budget = 8; /* reads per readiness, so one busy peer cannot starve the rest */
    while (budget-- > 0 && !s->dead) {
        uint8_t *buf;
        size_t cap;
        long r;
        int detail = 0, scratch = 0;
        if ((s->kind & RTWS__SOCK_ROUTED) && (rtws__route_of(s)->next ||
                          (rtws__route_of(s)->tls_wait && !rtws__tunneling(c))))
            return; /* a redirect to follow, or TLS to start first (rtws__settle_state) */
        if (s->lingering || c->priv_.drop_input || c->priv_.freed) {
            char sink[4096]; /* the raw socket: nothing more is decoded */
            long n = (long)rtws__os_recv(s->fd, sink, sizeof sink);
            if (n > 0) continue;
            if (n < 0 && RTWS__SOCKERR() == RTWS__EINTR) continue;
            if (n < 0 && RTWS__WOULDBLOCK(RTWS__SOCKERR())) return;
            if (s->lingering || c->priv_.freed) rtws__kill(s);
            else rtws_conn_recv_eof(c, now);
            return;
        }
        if (!c->priv_.rbuf && s->ctx->scratch && !s->ctx->scratch_busy) {
            /* nothing buffered: read into the context's scratch buffer and
               handle it there, so a quiet connection (and most handshakes)
               never needs a receive buffer of its own */
            buf = s->ctx->scratch;
            cap = RTWS__SCRATCH;
            scratch = 1;
        } else if (c->priv_.rbuf && rtws__can_lend(c, 1) && !s->ctx->scratch_busy &&
                   c->priv_.rcap >= RTWS__POOL_MIN && c->priv_.rcap <= RTWS__BIG_MAX &&
                   (buf = rtws__big_scratch(s->ctx, RTWS__MAX(c->priv_.rcap, (size_t)c->priv_.rhint),
                                            now)) != NULL) {
            /* a big buffer of its own that holds nothing: read into the
               context's one big scratch buffer instead, which the last read
               left in the cache (a thousand connections' own buffers are
               not), and keep only an incomplete frame's tail */
            cap = s->ctx->big_cap;
            scratch = 2;
        } else if (!(buf = rtws_conn_recv_buf(c, 0, &cap))) {
            rtws__host_error(s, RTWS_ERR_NOMEM, 0);
            return;
        }
        r = tp->read(st, s->fd, buf, cap, &detail);
        if (r > 0) {
            if (scratch) {
                if (scratch == 2) rtws__lent_hint(c, (size_t)r, cap);
                s->ctx->scratch_busy = 1;
                rtws__recv_lent(c, buf, (size_t)r, now, scratch == 2);
                s->ctx->scratch_busy = 0;
            } else {
                rtws_conn_recv_commit(c, (size_t)r, now);
            }
            if ((size_t)r < cap) return; /* drained: spare the call that would block */
            continue;
        }
        if (r == RTWS_IO_AGAIN) return;
        if (r == 0) rtws_conn_recv_eof(c, now);
        else rtws__transport_fail(s, r, detail);
        return;
    }
}

static void rtws__clients_sweep(rtws_ctx *ctx);
static void rtws__sweep(rtws_ctx *ctx) {
    size_t i = 0;
    if (!ctx->ndead) return;
    ctx->ndead = 0;
    rtws__clients_sweep(ctx);
    rtws__streams_sweep(ctx);
    while (i < ctx->nsocks) {
        if (ctx->socks[i]->dead) rtws__destroy(ctx->socks[i]);
        else i++;
    }
}

/* Acts on every socket that queued output or changed state. */
static void rtws__flush_dirty(rtws_ctx *ctx, uint64_t now) {
    while (ctx->dirty) {
        rtws__sock *s = ctx->dirty;
        ctx->dirty = s->next_dirty;
        s->dirty = 0;
        s->next_dirty = NULL;
        s->kind &= (uint8_t)~RTWS__SOCK_DIRECT;
        if (!s->dead) {
            rtws__flush(s);
            rtws__settle(s, now);
        }
    }
}

static void rtws__begin(rtws_ctx *ctx, uint64_t now) {
    ctx->in_call++;
    if (now > ctx->now) ctx->now = now;
}
static void rtws__end(rtws_ctx *ctx) {
    rtws__flush_dirty(ctx, ctx->now);
    if (--ctx->in_call == 0) rtws__sweep(ctx);
}

#if !defined(RTWS_NO_SERVER) /* listen, accept */
static void rtws__accept(rtws_ctx *ctx, rtws__sock *l, uint64_t now) {
    const rtws__xsock *lx = (const rtws__xsock *)l; /* when l->xport */
    int n;
    for (n = 0; n < 256; n++) {
        rtws__addr peer;
        socklen_t plen = sizeof peer;
        rtws__sock *s;
        size_t size = sizeof *s;
        int one = 1, fd = rtws__os_accept(l->fd, &peer.sa, &plen);
        if (fd < 0) {
            int e = RTWS__SOCKERR();
            if (e == RTWS__EINTR || e == RTWS__ECONNABORTED) continue;
            return; /* EAGAIN, or EMFILE and the like: try again at the next readiness */
        }
        if (rtws__set_nonblock(fd) != 0 || ctx->shutting_down ||
            (ctx->cfg.max_connections && ctx->nconns >= ctx->cfg.max_connections)) {
            rtws__os_close(fd);
            continue;
        }
        rtws__os_setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (l->xport) size = RTWS__XSTATE + lx->tp->state_size;
        s = (rtws__sock *)rtws__alloc(&ctx->cfg.conn.allocator, size);
        if (!s) {
            rtws__os_close(fd);
            continue;
        }
        memset(s, 0, size);
        if (l->xport) {
            s->xport = 1;
            ((rtws__xsock *)s)->tp = lx->tp;
        }
        s->fd = fd;
        s->peer = peer;
        rtws__conn_init_shared(&s->conn, &ctx->conn_cfg[0]);
        s->conn.priv_.cbits |= RTWS__C_NOTIFY;
        s->conn.priv_.io_ = &ctx->io;
        if (!rtws__add_sock(ctx, s)) {
            rtws__os_close(fd);
            rtws__free(&ctx->cfg.conn.allocator, s);
            continue;
        }
        ctx->totals.accepted++;
        if (l->xport) {
            rtws_transport_open in;
            int detail = 0;
            rtws_err e;
            in.shared = lx->shared;
            in.server_name = NULL;
            in.conn = s->conn.priv_.cfg;
            e = lx->tp->open(rtws__tstate(s), &in, &detail);
            if (e != RTWS_OK) { /* an ERROR event, then close */
                s->conn.priv_.eof = 1;
                rtws__host_fail(s, e, detail, rtws__tp_text(lx->tp, detail));
            }
        }
        rtws_conn_run_timers(&s->conn, now); /* starts the handshake deadline */
        rtws__settle(s, now);
    }
}

/* tp: the transport of accepted sockets; shared: what its open gets, ended
   by server_free with the listener when owned (not when listening fails) */
static rtws_err rtws__listen(rtws_ctx *ctx, const char *host, int port, int *bound_port,
                             const rtws_transport *tp, void *shared, int owned) {
    struct addrinfo hints, *res = NULL, *ai;
    char ps[16];
    int fd = -1, one = 1;
    rtws__sock *s;
    size_t size = tp == &rtws__tcp ? sizeof *s : sizeof(rtws__xsock);
    rtws_err e = RTWS_ERR_IO;
    if (port < 0 || port > 65535) return RTWS_ERR_INVALID;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(ps, sizeof ps, "%d", port);
    if (!host || !*host) {
        host = "::"; /* dual-stack: IPv6 with V6ONLY off also takes IPv4 */
        hints.ai_flags |= AI_NUMERICHOST;
    }
    if (getaddrinfo(host, ps, &hints, &res) != 0) {
        if (strcmp(host, "::") != 0) return RTWS_ERR_RESOLVE;
        hints.ai_flags = AI_PASSIVE;
        if (getaddrinfo(NULL, ps, &hints, &res) != 0) return RTWS_ERR_RESOLVE;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = rtws__os_socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
#if defined(_WIN32) /* there SO_REUSEADDR would let another socket take the port over */
        rtws__os_setsockopt(fd, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, &one, sizeof one);
#else
        rtws__os_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
#endif
        if (ai->ai_family == AF_INET6) {
            int v6only = strcmp(host, "::") == 0 ? 0 : 1;
            rtws__os_setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
        }
        if (rtws__set_nonblock(fd) == 0 && rtws__os_bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            rtws__os_listen(fd, ctx->cfg.backlog) == 0)
            break;
        rtws__os_close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) return e;
    s = (rtws__sock *)rtws__alloc(&ctx->cfg.conn.allocator, size);
    if (!s) {
        rtws__os_close(fd);
        return RTWS_ERR_NOMEM;
    }
    memset(s, 0, size);
    s->fd = fd;
    s->listener = 1;
    if (tp != &rtws__tcp) {
        rtws__xsock *x = (rtws__xsock *)s;
        s->xport = 1;
        x->tp = tp;
        x->shared = shared;
    }
    {
        socklen_t alen = sizeof s->peer;
        rtws__os_getsockname(fd, &s->peer.sa, &alen);
    }
    if (!rtws__add_sock(ctx, s)) {
        rtws__os_close(fd);
        rtws__free(&ctx->cfg.conn.allocator, s);
        return RTWS_ERR_NOMEM;
    }
    if (s->xport) ((rtws__xsock *)s)->owns_shared = owned;
    rtws__watch(s, RTWS_WANT_READ);
    if (bound_port)
        *bound_port = ntohs(s->peer.sa.sa_family == AF_INET6 ? s->peer.in6.sin6_port
                                                               : s->peer.in4.sin_port);
    return RTWS_OK;
}

RTWS_API rtws_err rtws_ctx_listen(rtws_ctx *ctx, const char *host, int port, int *bound_port) {
    return rtws__listen(ctx, host, port, bound_port, &rtws__tcp, NULL, 0);
}

RTWS_API rtws_err rtws_ctx_listen_transport(rtws_ctx *ctx, const char *host, int port,
                                            const rtws_transport *t, void *shared,
                                            int *bound_port) {
    if (!t) t = &rtws__tcp;
    if (!t->open || !t->read || !t->writev) return RTWS_ERR_INVALID;
    return rtws__listen(ctx, host, port, bound_port, t, shared, 0);
}

/* rtws_ctx_listen() for wss://, through the context's TLS transport. */
RTWS_API rtws_err rtws_ctx_listen_tls(rtws_ctx *ctx, const char *host, int port,
                                      const struct rtws_tls_server_config *tls,
                                      int *bound_port) {
    const rtws_transport *tp = ctx->tls_tp;
    void *shared = NULL;
    int detail = RTWS_TLS_ERR_NOT_BUILT;
    rtws_err e = RTWS_ERR_TLS;
    if (tp && tp->server_new) e = tp->server_new(tls, &ctx->cfg.conn.allocator, &shared, &detail);
    if (e != RTWS_OK) {
        ctx->tls_error = detail;
        return e;
    }
    e = rtws__listen(ctx, host, port, bound_port, tp, shared, 1);
    if (e != RTWS_OK && tp->server_free) tp->server_free(shared);
    return e;
}

#else /* RTWS_NO_SERVER: there are no listeners */
static void rtws__accept(rtws_ctx *ctx, rtws__sock *l, uint64_t now) {
    (void)ctx, (void)l, (void)now;
}
#endif /* !RTWS_NO_SERVER */

RTWS_API int rtws_ctx_get_tls_error(const rtws_ctx *ctx) {
    return ctx->tls_tp ? ctx->tls_error : RTWS_TLS_ERR_NOT_BUILT;
}

#if !defined(RTWS_NO_CLIENT) /* outgoing connections */
static int rtws__start_connect(rtws__sock *s, const rtws__addr *a) {
    int one = 1;
    socklen_t len = a->sa.sa_family == AF_INET6 ? sizeof a->in6 : sizeof a->in4;
    if (s->fd >= 0) {
        if (s->registered) s->ctx->byfd[s->fd] = NULL;
        rtws__watch(s, 0);
        rtws__os_close(s->fd);
    }
    s->fd = rtws__os_socket(a->sa.sa_family, SOCK_STREAM, 0);
    if (s->fd < 0) return RTWS__SOCKERR();
    s->peer = *a;
    if (rtws__set_nonblock(s->fd) != 0) return RTWS__SOCKERR();
    rtws__os_setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    s->watched = 0;
    if (rtws__os_connect(s->fd, &a->sa, len) == 0) {
        s->connecting = 0;
    } else if (RTWS__INPROGRESS(RTWS__SOCKERR()) || RTWS__SOCKERR() == RTWS__EINTR) {
        s->connecting = 1;
    } else {
        return RTWS__SOCKERR();
    }
    return 0;
}

static uint64_t *rtws__attempt_at(rtws__sock *s);
/* Tries the client's next address; 0 when a connect is under way. */
static int rtws__next_addr(rtws__sock *s) {
    int err = RTWS__ECONNREFUSED;
    while (s->ialt < s->nalt) {
        rtws_ctx *ctx = s->ctx;
        if (s->kind & (RTWS__SOCK_ROUTED | RTWS__SOCK_RAW)) *rtws__attempt_at(s) = ctx->now;
        err = rtws__start_connect(s, &s->alt[s->ialt++]);
        if (s->fd >= 0 && s->registered) {
            if (!rtws__fd_slot(ctx, s->fd)) return RTWS__ENOMEM;
            ctx->byfd[s->fd] = s;
        }
        if (err == 0) return 0;
    }
    return err;
}

/* ---- name resolution on the loop (docs/GUIDE.md "Name resolution") ----

   A client of rtws_ctx_connect (or an rtws_stream) whose host is a name to
   look up in DNS keeps a rtws__dns in its route (its stream); its socket's fd
   is the query's until the addresses are known, then rtws__next_addr
   connects as for any address. */
static rtws__dns **rtws__stream_dns(rtws__sock *s);
static void rtws__stream_resolve_fail(rtws__sock *s, rtws_err err, int detail, const char *text);
/* Where s keeps its lookup (*: NULL when none under way). */
static rtws__dns **rtws__dns_slot(rtws__sock *s) {
    return s->kind & RTWS__SOCK_RAW ? rtws__stream_dns(s) : &rtws__route_of(s)->dns;
}

/* s failed to connect (err, detail: errno or RCODE, text): the error event
   (an rtws_stream: its CLOSE event), then s ends. */
static void rtws__connect_fail(rtws__sock *s, rtws_err err, int detail, const char *text) {
    s->connecting = 0;
    if (s->kind & RTWS__SOCK_RAW) {
        rtws__stream_resolve_fail(s, err, detail, text);
        return;
    }
    rtws__host_fail(s, err, detail, text);
    rtws__kill(s);
}

/* a: family 4 or 6 with port, as a socket address */
static void rtws__dns_sockaddr(const rtws_dns_addr *a, unsigned port, rtws__addr *out) {
    uint8_t *pp;
    memset(out, 0, sizeof *out);
    if (a->family == 6) {
        out->in6.sin6_family = AF_INET6;
        memcpy(&out->in6.sin6_addr, a->addr, 16);
        pp = (uint8_t *)&out->in6.sin6_port;
    } else {
        out->in4.sin_family = AF_INET;
        memcpy(&out->in4.sin_addr, a->addr, 4);
        pp = (uint8_t *)&out->in4.sin_port;
    }
    pp[0] = (uint8_t)(port >> 8);
    pp[1] = (uint8_t)port;
}

/* The addresses a[0..n) in the order they are tried: IPv6 first, then the
   families in turn (RFC 8305 §4), at most RTWS__MAX_ALT; returns how many. */
static int rtws__dns_order(const rtws_dns_addr *a, size_t n, unsigned port, rtws__addr *out) {
    size_t i6 = 0, i4 = 0;
    int k = 0, six = 1;
    while (k < RTWS__MAX_ALT) {
        size_t *i = six ? &i6 : &i4;
        uint8_t fam = six ? 6 : 4;
        while (*i < n && a[*i].family != fam) (*i)++;
        if (*i < n) rtws__dns_sockaddr(&a[(*i)++], port, &out[k++]);
        else if ((six ? i4 : i6) >= n) break; /* neither family has more */
        six = !six;
    }
    return k;
}

/* Puts fd (-1: none) in place of s's socket, the old one closed. 0 when the
   tables could not take it (fd closed). */
static int rtws__sock_refd(rtws__sock *s, int fd) {
    rtws_ctx *ctx = s->ctx;
    if (s->fd >= 0) {
        if (s->registered) ctx->byfd[s->fd] = NULL;
        rtws__watch(s, 0);
        rtws__os_close(s->fd);
    }
    s->fd = fd;
    s->watched = 0;
    if (fd >= 0 && s->registered) {
        if (!rtws__fd_slot(ctx, fd) || !rtws__post_serial(ctx, fd)) {
            rtws__os_close(fd);
            s->fd = -1;
            return 0;
        }
        ctx->byfd[fd] = s;
    }
    return 1;
}

/* Starts the next try: the queries not answered yet go to the next server
   over a fresh UDP socket (a new source port from the system) with fresh
   random ids. 0 when no try is left or none could start. */
static int rtws__dns_try(rtws__sock *s, uint64_t now) {
    rtws__dns *d = *rtws__dns_slot(s);
    const rtws_config *cc = &s->ctx->conn_cfg[1];
    while (d->tries < d->ntries) {
        const rtws_dns_addr *sv = &d->conf.servers[d->tries++ % d->conf.nservers];
        uint8_t q[RTWS_DNS_QUERY_MAX];
        rtws__addr a;
        socklen_t len;
        int fd, i;
        rtws__dns_sockaddr(sv, d->dport, &a);
        len = sv->family == 6 ? sizeof a.in6 : sizeof a.in4;
        fd = rtws__os_socket(a.sa.sa_family, SOCK_DGRAM, 0);
        if (fd < 0) continue;
        if (rtws__set_nonblock(fd) != 0 || rtws__os_connect(fd, &a.sa, len) != 0) {
            rtws__os_close(fd);
            continue;
        }
        if (!rtws__sock_refd(s, fd)) return 0;
        d->tcp = d->tcp_up = 0;
        d->qlen = d->inlen = 0;
        d->deadline = now + d->try_ms;
        for (i = 0; i < 2; i++) {
            uint8_t r[2] = {0, 0};
            size_t n;
            if (d->state[i] == 1 || fd < 0) continue;
            d->state[i] = 0;
            if (!cc->random || cc->random(r, 2, cc->random_user) != 0) {
                uint32_t x = (uint32_t)now * 2654435761u + (uint32_t)d->tries * 40503u + (uint32_t)i;
                r[0] = (uint8_t)(x >> 24), r[1] = (uint8_t)(x >> 16);
            }
            d->id[i] = (uint16_t)(r[0] << 8 | r[1]);
            n = rtws_dns_query_encode(q, sizeof q, d->id[i], d->name, d->name_len,
                                      i ? RTWS_DNS_AAAA : RTWS_DNS_A, 0);
            if (rtws__os_send(fd, q, n) < 0 && !RTWS__WOULDBLOCK(RTWS__SOCKERR())) {
                /* (a datagram lost is a try timed out) refused at once (on
                   loopback the ICMP comes back before the next send) */
                if (RTWS__SOCKERR() == RTWS__ECONNREFUSED) d->refused = 1;
                fd = -1;
            }
        }
        if (fd >= 0) return 1;
    }
    return 0;
}

/* The truncated answers asked again over TCP to the same server. */
static int rtws__dns_tcp(rtws__sock *s, uint64_t now) {
    rtws__dns *d = *rtws__dns_slot(s);
    const rtws_dns_addr *sv = &d->conf.servers[(d->tries - 1) % d->conf.nservers];
    rtws__addr a;
    socklen_t len;
    int fd, i;
    if (!d->in && !(d->in = (uint8_t *)rtws__alloc(&s->ctx->cfg.conn.allocator, 2 + 65535)))
        return 0;
    rtws__dns_sockaddr(sv, d->dport, &a);
    len = sv->family == 6 ? sizeof a.in6 : sizeof a.in4;
    fd = rtws__os_socket(a.sa.sa_family, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    d->tcp_up = 0;
    if (rtws__set_nonblock(fd) == 0 && rtws__os_connect(fd, &a.sa, len) == 0) {
        d->tcp_up = 1;
    } else if (!RTWS__INPROGRESS(RTWS__SOCKERR()) && RTWS__SOCKERR() != RTWS__EINTR) {
        rtws__os_close(fd);
        return 0;
    }
    if (!rtws__sock_refd(s, fd)) return 0;
    d->tcp = 1;
    d->qlen = d->inlen = 0;
    for (i = 0; i < 2; i++)
        if (d->state[i] == 2)
            d->qlen += rtws_dns_query_encode(d->q + d->qlen, sizeof d->q - d->qlen, d->id[i],
                                             d->name, d->name_len,
                                             i ? RTWS_DNS_AAAA : RTWS_DNS_A, 1);
    d->deadline = now + d->try_ms;
    return 1;
}

static unsigned rtws__dns_want(const rtws__sock *s) {
    const rtws__dns *d = *rtws__dns_slot((rtws__sock *)(uintptr_t)s);
    if (!d->tcp) return RTWS_WANT_READ;
    if (!d->tcp_up) return RTWS_WANT_WRITE;
    return d->qlen ? (unsigned)(RTWS_WANT_READ | RTWS_WANT_WRITE) : (unsigned)RTWS_WANT_READ;
}

/* The name did not resolve: an error event (RTWS_ERR_RESOLVE, detail: the
   RCODE when a server gave one, text: why), then the close. */
static void rtws__dns_fail(rtws__sock *s, const char *why, int rcode) {
    char text[320];
    snprintf(text, sizeof text, "%s: %s", (*rtws__dns_slot(s))->name, why);
    rtws__connect_fail(s, RTWS_ERR_RESOLVE, rcode, text);
}

/* The addresses are known: connect to them in turn. */
static void rtws__dns_finish(rtws__sock *s) {
    rtws__dns *d = *rtws__dns_slot(s);
    rtws_dns_addr all[2 * RTWS__MAX_ALT];
    int err;
    memcpy(all, d->got[1], d->ngot[1] * sizeof *all);
    memcpy(all + d->ngot[1], d->got[0], d->ngot[0] * sizeof *all);
    s->nalt = (uint8_t)rtws__dns_order(all, d->ngot[0] + d->ngot[1], d->port, s->alt);
    s->ialt = 0;
    rtws__free(&s->ctx->cfg.conn.allocator, d->in);
    rtws__free(&s->ctx->cfg.conn.allocator, d);
    *rtws__dns_slot(s) = NULL;
    err = rtws__next_addr(s);
    if (err) {
        char text[256];
        rtws__connect_fail(s, RTWS_ERR_IO, err, rtws__os_strerror(err, text, sizeof text));
    }
}

/* This try is over without an answer that ends the lookup: the next one,
   else the addresses found so far, else the error. */
static void rtws__dns_next(rtws__sock *s, uint64_t now) {
    rtws__dns *d = *rtws__dns_slot(s);
    if (d->ngot[0] + d->ngot[1] > 0) rtws__dns_finish(s);
    else if (!rtws__dns_try(s, now))
        rtws__dns_fail(s, d->refused ? "refused by the name server"
                          : d->servfail ? "name server failure"
                                        : "timed out waiting for the name server", 0);
}

/* A reply: an answer to one of the queries, or not ours (ignored). 1 when
   the lookup moved on (s's fd or state changed). */
static int rtws__dns_answer(rtws__sock *s, const uint8_t *msg, size_t len, uint64_t now) {
    rtws__dns *d = *rtws__dns_slot(s);
    int i;
    for (i = 0; i < 2; i++) {
        rtws_dns_result res;
        rtws_dns_addr got[RTWS__MAX_ALT];
        rtws_err e;
        if (d->state[i] == 1 || (d->tcp && d->state[i] != 2)) continue;
        e = rtws_dns_answer_parse(msg, len, d->id[i], d->name, d->name_len,
                                  i ? RTWS_DNS_AAAA : RTWS_DNS_A, got, RTWS__MAX_ALT, &res);
        if (e == RTWS_ERR_INVALID || e == RTWS_ERR_SYNTAX) continue; /* not ours: wait on */
        if (e == RTWS_ERR_RESOLVE) {
            if (res.rcode == 3) {
                rtws__dns_fail(s, "no such name", 3);
                return 1;
            }
            if (res.rcode == 5) d->refused = 1;
            else d->servfail = 1;
            rtws__dns_next(s, now); /* the next server */
            return 1;
        }
        if (res.truncated && !d->tcp) {
            d->state[i] = 2;
        } else {
            d->state[i] = 1;
            d->ngot[i] = RTWS__MIN(res.count, (size_t)RTWS__MAX_ALT);
            memcpy(d->got[i], got, d->ngot[i] * sizeof *got);
        }
        if (!d->state[0] || !d->state[1]) return 0;
        if (d->state[0] == 2 || d->state[1] == 2) {
            if (d->tcp) return 0;
            if (!rtws__dns_tcp(s, now)) rtws__dns_next(s, now);
            return 1;
        }
        if (d->ngot[0] + d->ngot[1] == 0) rtws__dns_fail(s, "the name has no address", 0);
        else rtws__dns_finish(s);
        return 1;
    }
    return 0;
}

/* The query's socket is ready. */
static void rtws__dns_ready(rtws__sock *s, int readable, int writable, uint64_t now) {
    rtws__dns *d = *rtws__dns_slot(s);
    int k;
    if (d->tcp && !d->tcp_up) {
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (!readable && !writable) return;
        if (rtws__os_getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
            soerr = RTWS__SOCKERR();
        if (RTWS__INPROGRESS(soerr) || soerr == RTWS__EALREADY) return;
        if (soerr) {
            if (soerr == RTWS__ECONNREFUSED) d->refused = 1;
            rtws__dns_next(s, now);
            return;
        }
        d->tcp_up = 1;
    }
    if (d->tcp) {
        while (d->qlen) {
            long w = rtws__os_send(s->fd, d->q, d->qlen);
            if (w < 0 && (RTWS__WOULDBLOCK(RTWS__SOCKERR()) || RTWS__SOCKERR() == RTWS__EINTR))
                break;
            if (w <= 0) {
                rtws__dns_next(s, now);
                return;
            }
            memmove(d->q, d->q + w, d->qlen - (size_t)w);
            d->qlen -= (size_t)w;
        }
        for (k = 0; k < 64; k++) {
            long r = rtws__os_recv(s->fd, d->in + d->inlen, 2 + 65535 - d->inlen);
            if (r < 0 && (RTWS__WOULDBLOCK(RTWS__SOCKERR()) || RTWS__SOCKERR() == RTWS__EINTR))
                return;
            if (r <= 0) { /* closed or failed before the answers */
                rtws__dns_next(s, now);
                return;
            }
            d->inlen += (size_t)r;
            while (d->inlen >= 2) {
                size_t m = (size_t)d->in[0] << 8 | d->in[1];
                if (d->inlen < 2 + m) break;
                if (rtws__dns_answer(s, d->in + 2, m, now)) return;
                memmove(d->in, d->in + 2 + m, d->inlen - 2 - m);
                d->inlen -= 2 + m;
            }
        }
        return;
    }
    for (k = 0; k < 64; k++) { /* UDP: every datagram waiting */
        uint8_t buf[2048];
        long r = rtws__os_recv(s->fd, buf, sizeof buf);
        if (r < 0) {
            int e = RTWS__SOCKERR();
            if (RTWS__WOULDBLOCK(e) || e == RTWS__EINTR) return;
            if (e == RTWS__ECONNREFUSED || e == RTWS__ECONNRESET) d->refused = 1; /* ICMP */
            rtws__dns_next(s, now);
            return;
        }
        if (rtws__dns_answer(s, buf, (size_t)r, now)) return;
    }
}

/* ---- Happy Eyeballs (RFC 8305 §5) ----
   A client of rtws_ctx_connect tries its addresses (IPv6 first, the
   families in turn: rtws__dns_order) as a race: when the attempt under way
   has not connected within the Connection Attempt Delay (250 ms), it is
   held (the route keeps its fd, still watched, still in byfd) and the next
   address starts on the socket; an attempt that fails starts the next at
   once. The first attempt to connect wins and becomes the socket's fd; the
   others are closed. An rtws_stream's socket steps through its addresses
   one at a time (the first is given up after 250 ms, later ones when they
   fail). */
#define RTWS__ATTEMPT_DELAY_MS 250u
static uint64_t *rtws__attempt_at(rtws__sock *s);

static void rtws__watch_fd(rtws_ctx *ctx, int fd, unsigned old, unsigned want) {
    if (old == want) return;
    if (ctx->cfg.on_socket) ctx->cfg.on_socket(ctx, fd, want, ctx->cfg.socket_user);
#ifdef RTWS__EPOLL
    if (ctx->epoll_on) rtws__epoll_set(ctx, fd, old, want);
#endif
}

/* Forgets held attempt i of s; its fd is closed unless keep. */
static int rtws__race_take(rtws__sock *s, unsigned i, int keep) {
    rtws_ctx *ctx = s->ctx;
    rtws__route *r = rtws__route_of(s);
    int fd = r->race_fd[i];
    if (!keep) {
        rtws__watch_fd(ctx, fd, r->race_w[i], 0);
        if ((size_t)fd < ctx->capfd && ctx->byfd[fd] == s) ctx->byfd[fd] = NULL;
        rtws__os_close(fd);
    }
    r->nrace--;
    r->race_fd[i] = r->race_fd[r->nrace];
    r->race_alt[i] = r->race_alt[r->nrace];
    r->race_w[i] = r->race_w[r->nrace];
    return fd;
}

static void rtws__race_end(rtws__sock *s) {
    rtws__route *r = rtws__route_of(s);
    while (r->nrace) rtws__race_take(s, r->nrace - 1u, 0);
}

/* Closes the attempt on s's fd (it failed, or another won). */
static void rtws__race_close_fd(rtws__sock *s) {
    if (s->fd < 0) return;
    rtws__watch(s, 0);
    if (s->registered && (size_t)s->fd < s->ctx->capfd && s->ctx->byfd[s->fd] == s)
        s->ctx->byfd[s->fd] = NULL;
    rtws__os_close(s->fd);
    s->fd = -1;
}

/* Held attempt i becomes s's fd (the attempt there is closed). */
static void rtws__race_promote(rtws__sock *s, unsigned i) {
    rtws__route *r = rtws__route_of(s);
    unsigned w = r->race_w[i], ai = r->race_alt[i];
    rtws__race_close_fd(s);
    s->fd = rtws__race_take(s, i, 1);
    s->watched = (uint8_t)w;
    s->peer = s->alt[ai];
}

/* The next address joins the race: the attempt under way is held, the next
   starts on s. A failure ends s (with the last error) when no attempt is left. */
static void rtws__race_step(rtws__sock *s) {
    rtws__route *r = rtws__route_of(s);
    int err;
    if (s->fd >= 0 && r->nrace < RTWS__MAX_ALT) {
        r->race_fd[r->nrace] = s->fd;
        r->race_alt[r->nrace] = (uint8_t)(s->ialt - 1u);
        r->race_w[r->nrace] = s->watched;
        r->nrace++;
        s->fd = -1;
        s->watched = 0;
    }
    err = rtws__next_addr(s);
    if (!err) return;
    if (r->nrace) { /* none left to start: the held ones race on */
        rtws__race_close_fd(s);
        rtws__race_promote(s, r->nrace - 1u);
        return;
    }
    {
        char text[256];
        rtws__connect_fail(s, RTWS_ERR_IO, err, rtws__os_strerror(err, text, sizeof text));
    }
}

/* Readiness on fd, a held attempt of s: 1 when it won (s's fd now). */
static int rtws__race_ready(rtws__sock *s, int fd) {
    rtws__route *r = rtws__route_of(s);
    int soerr = 0;
    socklen_t len = sizeof soerr;
    unsigned i;
    for (i = 0; i < r->nrace && r->race_fd[i] != fd; i++) {}
    if (i == r->nrace) return 0;
    if (rtws__os_getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) soerr = RTWS__SOCKERR();
    if (RTWS__INPROGRESS(soerr) || soerr == RTWS__EALREADY) return 0;
    if (soerr) { /* failed: the next address starts at once */
        rtws__race_take(s, i, 0);
        if (s->ialt < s->nalt) rtws__race_step(s);
        return 0;
    }
    rtws__race_promote(s, i);
    s->connecting = 0;
    rtws__race_end(s);
    return 1;
}

/* The timers of a connecting client of rtws_ctx_connect: the try under way
   timed out, or the next address joins the race (the Connection Attempt
   Delay after the newest attempt began). */
static void rtws__route_timers(rtws__sock *s, uint64_t now) {
    rtws__dns *d = *rtws__dns_slot(s);
    if (d) {
        if (now >= d->deadline) rtws__dns_next(s, now);
    } else if (!(s->kind & RTWS__SOCK_ROUTED)) { /* an rtws_stream: the first address only */
        if (s->ialt == 1 && s->nalt > 1 && now >= *rtws__attempt_at(s) + RTWS__ATTEMPT_DELAY_MS) {
            int err = rtws__next_addr(s); /* this one is slow: the next */
            if (err) {
                char text[256];
                rtws__connect_fail(s, RTWS_ERR_IO, err, rtws__os_strerror(err, text, sizeof text));
            }
        }
    } else if (s->ialt < s->nalt && now >= *rtws__attempt_at(s) + RTWS__ATTEMPT_DELAY_MS) {
        rtws__race_step(s);
    }
}

/* d, or the earlier time rtws__route_timers has work for s. */
static uint64_t rtws__route_deadline(const rtws__sock *s, uint64_t d) {
    rtws__sock *m = (rtws__sock *)(uintptr_t)s;
    const rtws__dns *q = *rtws__dns_slot(m);
    if (q) return RTWS__MIN(d, q->deadline);
    if ((s->kind & RTWS__SOCK_ROUTED) ? s->ialt < s->nalt : s->ialt == 1 && s->nalt > 1)
        return RTWS__MIN(d, *rtws__attempt_at(m) + RTWS__ATTEMPT_DELAY_MS);
    return d;
}

/* The shared state of the context's wss:// client sockets, made at the first
   connect (a failed attempt is tried again at the next). */
static rtws_err rtws__client_shared(rtws_ctx *ctx, void **shared) {
    const rtws_transport *tp = ctx->tls_tp;
    int detail = 0;
    rtws_err e = RTWS_OK;
    if (!tp->client_new) {
        *shared = ctx->cfg.tls_transport_user;
        return RTWS_OK;
    }
    if (!ctx->tls_client)
        e = tp->client_new(ctx->cfg.tls, &ctx->cfg.conn.allocator, &ctx->tls_client, &detail);
    if (e != RTWS_OK) {
        ctx->tls_client = NULL;
        if (e == RTWS_ERR_TLS) ctx->tls_error = detail;
    }
    *shared = ctx->tls_client;
    return e;
}

/* Starts the handshake of s and its connect to addrs (s owns them now).
   tls_host: the server name to verify for wss:// (through ctx->tls_tp),
   NULL for ws:// and for wss:// through a proxy (opened later). *opened:
   the transport's state needs its release. */
static rtws_err rtws__sock_start(rtws__sock *s, rtws__route *r, rtws__addr *addrs, int naddr,
                                 const rtws_client_opts *opts, uint64_t now,
                                 const char *tls_host, int *opened) {
    rtws_ctx *ctx = s->ctx;
    rtws_transport_open in;
    rtws_err e;
    memset(&in, 0, sizeof in);
    if (r) { /* the route keeps them: s->alt is how s finds it */
        if (naddr) memcpy(r->alt, addrs, (size_t)naddr * sizeof *addrs); /* 0: resolving */
        rtws__free(&ctx->cfg.conn.allocator, addrs);
        addrs = r->alt;
        s->kind |= RTWS__SOCK_ROUTED;
    }
    s->alt = addrs;
    s->nalt = (uint8_t)naddr;
    s->ialt = 0;
    *opened = 0;
    if (tls_host && (e = rtws__client_shared(ctx, &in.shared)) != RTWS_OK) return e;
    e = rtws_conn_start(&s->conn, opts, now);
    if (e == RTWS_OK && tls_host) {
        int detail = 0;
        s->xport = 1;
        ((rtws__xsock *)s)->tp = ctx->tls_tp;
        in.server_name = tls_host;
        in.conn = s->conn.priv_.cfg;
        *opened = 1;
        e = ctx->tls_tp->open(rtws__tstate(s), &in, &detail);
        if (e == RTWS_ERR_TLS) ctx->tls_error = detail;
    }
    if (e == RTWS_OK && r && r->dns) { /* the name first: the try's socket is s's */
        s->connecting = 1;
        if (!rtws__dns_try(s, now)) e = RTWS_ERR_RESOLVE;
    } else if (e == RTWS_OK && rtws__next_addr(s)) {
        e = RTWS_ERR_IO;
    }
    return e;
}

/* route: NULL for rtws_ctx_connect_addr; else s keeps it (and room for the
   TLS transport's state when ctx has one: a redirect may lead to wss://). */
static rtws_conn *rtws__connect(rtws_ctx *ctx, rtws__addr *addrs, int naddr,
                                const rtws_client_opts *opts, uint64_t now, const char *tls_host,
                                rtws__route *route, rtws_err *err) {
    rtws__sock *s;
    rtws_err e;
    int opened = 0;
    size_t size = sizeof *s;
    if (tls_host || (route && route->max_hops && ctx->tls_tp) || (route && route->tls_wait))
        size = RTWS__XSTATE + ctx->tls_tp->state_size;
    s = (rtws__sock *)rtws__alloc(&ctx->cfg.conn.allocator, size);
    if (!s) {
        rtws__free(&ctx->cfg.conn.allocator, addrs);
        *err = RTWS_ERR_NOMEM;
        return NULL;
    }
    memset(s, 0, size);
    s->fd = -1;
    rtws__conn_init_shared(&s->conn, &ctx->conn_cfg[1]);
    s->ctx = ctx;
    e = rtws__sock_start(s, route, addrs, naddr, opts, now, tls_host, &opened);
    if (e == RTWS_OK && !rtws__add_sock(ctx, s)) e = RTWS_ERR_NOMEM;
    if (e != RTWS_OK) {
        if (s->fd >= 0) rtws__os_close(s->fd);
        if (opened && ctx->tls_tp->release) ctx->tls_tp->release(rtws__tstate(s));
        rtws_conn_free(&s->conn);
        if (!(s->kind & RTWS__SOCK_ROUTED)) rtws__free(&ctx->cfg.conn.allocator, s->alt); /* else the caller's */
        rtws__free(&ctx->cfg.conn.allocator, s);
        *err = e;
        return NULL;
    }
    s->conn.priv_.cbits |= RTWS__C_NOTIFY;
    s->conn.priv_.io_ = &ctx->io;
    ctx->totals.connected++;
    rtws__begin(ctx, now);
    rtws__sock_notify(&s->conn);
    rtws__end(ctx);
    *err = RTWS_OK;
    return &s->conn;
}

RTWS_API rtws_conn *rtws_ctx_connect_addr(rtws_ctx *ctx, const struct sockaddr *addr, size_t addrlen,
                                      const rtws_client_opts *opts, uint64_t now_ms,
                                      rtws_err *err) {
    rtws__addr *a;
    rtws_err dummy;
    if (!err) err = &dummy;
    if (!opts || !opts->host || !addr || addrlen > sizeof(rtws__addr) ||
        (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)) {
        *err = RTWS_ERR_INVALID;
        return NULL;
    }
    a = (rtws__addr *)rtws__alloc(&ctx->cfg.conn.allocator, sizeof *a);
    if (!a) {
        *err = RTWS_ERR_NOMEM;
        return NULL;
    }
    memset(a, 0, sizeof *a);
    memcpy(a, addr, addrlen);
    return rtws__connect(ctx, a, 1, opts, now_ms, NULL, NULL, err);
}

/* A copy of s[0..n) with a NUL, or NULL. */
static char *rtws__strndup(const rtws_allocator *a, const char *s, size_t n) {
    char *d = (char *)rtws__alloc(a, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Percent-decodes URL userinfo s[0..n) into out (as long as s; '+' stays
   '+', a bad escape stays as it is); returns the length. */
static size_t rtws__userinfo_decode(const char *s, size_t n, char *out) {
    size_t i, k = 0;
    for (i = 0; i < n; i++) {
        int h = i + 2 < n && s[i] == '%' ? rtws__hexval((unsigned char)s[i + 1]) : -1;
        int l = h >= 0 ? rtws__hexval((unsigned char)s[i + 2]) : -1;
        if (l >= 0) {
            out[k++] = (char)(h * 16 + l);
            i += 2;
        } else {
            out[k++] = s[i];
        }
    }
    return k;
}

/* The proxy for the route's URL u: the configured one, else the
   environment's when asked and no_proxy does not list the host; NULL when
   none. */
static const char *rtws__proxy_for(const rtws__route *r, const rtws_url *u) {
    static const char *const names[2][4] = {
        {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"},
        {"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}};
    const char *px = r->opts.proxy, *np;
    int i;
    if (!px && r->opts.proxy_from_env)
        for (i = 0; i < 4 && (!px || !*px); i++) px = getenv(names[u->tls ? 1 : 0][i]);
    if (!px || !*px) return NULL;
    if (r->opts.proxy_from_env) {
        np = getenv("no_proxy");
        if (!np || !*np) np = getenv("NO_PROXY");
        if (rtws_proxy_bypass(np, u->host.p, u->host.len, u->port)) return NULL;
    }
    return px;
}

/* Splits a proxy URL (http://[user:pass@]host[:port][/], the scheme may be
   left out) into *pu (which points into buf, "http://host:port") and the
   Basic credentials into auth ("" when none). RTWS_ERR_URL when malformed
   or not http. */
static rtws_err rtws__proxy_parse(const char *px, char *buf, size_t cap, rtws_url *pu, char *auth,
                                  size_t acap) {
    const char *a = strstr(px, "://"), *end, *at = NULL, *p;
    size_t n;
    auth[0] = '\0';
    if (a) {
        if ((size_t)(a - px) != 4 || !rtws__ieqn(px, "http", 4)) return RTWS_ERR_URL;
        a += 3;
    } else {
        a = px;
    }
    for (end = a; *end && *end != '/' && *end != '?' && *end != '#'; end++)
        if (*end == '@') at = end;
    if (*end && (*end != '/' || end[1])) return RTWS_ERR_URL; /* only a "/" may follow */
    if (at) { /* user[:pass]: percent-decoded, then base64 */
        char raw[256];
        size_t k;
        memset(raw, 0, sizeof raw); /* (gcc -O2 cannot tell that k bytes were written) */
        if ((size_t)(at - a) >= sizeof raw || acap < 6 + 4 * (sizeof raw / 3 + 1)) return RTWS_ERR_URL;
        k = rtws__userinfo_decode(a, (size_t)(at - a), raw);
        memcpy(auth, "Basic ", 6);
        if (!rtws_base64_encode((const uint8_t *)raw, k, auth + 6, acap - 6) && k) return RTWS_ERR_URL;
        a = at + 1;
    }
    p = "http://";
    n = strlen(p);
    if (n + (size_t)(end - a) >= cap) return RTWS_ERR_URL;
    memcpy(buf, p, n);
    memcpy(buf + n, a, (size_t)(end - a));
    n += (size_t)(end - a);
    buf[n] = '\0';
    return rtws_url_parse(buf, n, pu, NULL) == RTWS_OK && !pu->zone.len ? RTWS_OK : RTWS_ERR_URL;
}

/* A whole small file (the hosts file, resolv.conf), NUL-terminated, into *out
   (allocated; NULL when it cannot be read); returns its length. */
static size_t rtws__read_file(const rtws_allocator *a, const char *path, char **out) {
    FILE *f = fopen(path, "rb");
    size_t n = 0, cap = 0;
    char *b = NULL;
    *out = NULL;
    if (!f) return 0;
    for (;;) {
        size_t got;
        if (cap - n < 2) {
            char *nb;
            if (cap >= ((size_t)8 << 20)) break; /* 8 MiB of hosts file is enough */
            nb = (char *)(b ? rtws__realloc(a, b, cap * 2) : rtws__alloc(a, 8192));
            if (!nb) break;
            b = nb;
            cap = cap ? cap * 2 : 8192;
        }
        got = fread(b + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    fclose(f);
    if (b) b[n] = '\0';
    *out = b;
    return b ? n : 0;
}

#if defined(_WIN32)
typedef ULONG(WINAPI *rtws__gaa_fn)(ULONG, ULONG, PVOID, PIP_ADAPTER_ADDRESSES, PULONG);
/* The DNS servers of the adapters that are up into conf (at most 3, no
   duplicates); how many were added. */
static size_t rtws__win_dns_servers(rtws_dns_conf *conf, const rtws_allocator *al) {
    HMODULE lib = LoadLibraryA("iphlpapi.dll");
    rtws__gaa_fn gaa;
    IP_ADAPTER_ADDRESSES *list = NULL, *ad;
    ULONG len = 16384, r = ERROR_BUFFER_OVERFLOW;
    int round;
    if (!lib) return 0;
    gaa = (rtws__gaa_fn)(void (*)(void))GetProcAddress(lib, "GetAdaptersAddresses");
    for (round = 0; gaa && r == ERROR_BUFFER_OVERFLOW && round < 4; round++) {
        rtws__free(al, list);
        list = (IP_ADAPTER_ADDRESSES *)rtws__alloc(al, len);
        if (!list) break;
        r = gaa(AF_UNSPEC,
                GAA_FLAG_SKIP_UNICAST | GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST |
                    GAA_FLAG_SKIP_FRIENDLY_NAME,
                NULL, list, &len);
    }
    conf->nservers = 0;
    for (ad = list; r == NO_ERROR && ad; ad = ad->Next) {
        IP_ADAPTER_DNS_SERVER_ADDRESS *ds;
        if (ad->OperStatus != IfOperStatusUp || ad->IfType == IF_TYPE_SOFTWARE_LOOPBACK) continue;
        for (ds = ad->FirstDnsServerAddress; ds && conf->nservers < 3; ds = ds->Next) {
            const struct sockaddr *sa = ds->Address.lpSockaddr;
            rtws_dns_addr a;
            size_t i;
            memset(&a, 0, sizeof a);
            if (!sa) continue;
            if (sa->sa_family == AF_INET && ds->Address.iSockaddrLength >= (INT)sizeof(struct sockaddr_in)) {
                a.family = 4;
                memcpy(a.addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
            } else if (sa->sa_family == AF_INET6 &&
                       ds->Address.iSockaddrLength >= (INT)sizeof(struct sockaddr_in6)) {
                a.family = 6;
                memcpy(a.addr, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
                /* fe80::/10 needs a scope rtws_dns_addr cannot carry; fec0::/10
                   holds Windows' placeholders (fec0:0:0:ffff::1 to 3) */
                if (a.addr[0] == 0xfe && (a.addr[1] & 0x80)) continue;
            } else {
                continue;
            }
            for (i = 0; i < conf->nservers; i++)
                if (memcmp(&conf->servers[i], &a, sizeof a) == 0) break;
            if (i == conf->nservers) conf->servers[conf->nservers++] = a;
        }
    }
    rtws__free(al, list);
    FreeLibrary(lib);
    return conf->nservers;
}
#endif

RTWS_API size_t rtws_dns_conf_system(rtws_dns_conf *conf, const rtws_allocator *a) {
    rtws_allocator none;
    size_t n;
    if (!a) {
        memset(&none, 0, sizeof none);
        a = &none;
    }
    rtws_dns_conf_parse(NULL, 0, conf);
#if defined(_WIN32)
    n = rtws__win_dns_servers(conf, a);
    if (!n) rtws_dns_conf_parse(NULL, 0, conf);
#else
    {
        char *text = NULL;
        size_t len = rtws__read_file(a, "/etc/resolv.conf", &text);
        n = rtws__dns_conf_read(text, len, conf);
        rtws__free(a, text);
    }
#endif
    return n;
}

/* getaddrinfo() of host and port (flags: its ai_flags) into at most
   RTWS__MAX_ALT addresses (*out, allocated); how many, 0 with *err. */
static int rtws__resolve_gai(rtws_ctx *ctx, const char *host, unsigned port, int flags,
                             rtws__addr **out, rtws_err *err) {
    const rtws_allocator *al = &ctx->cfg.conn.allocator;
    struct addrinfo hints, *res = NULL, *ai;
    char ps[8];
    int n = 0;
    snprintf(ps, sizeof ps, "%u", port);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = flags;
    if (getaddrinfo(host, ps, &hints, &res) != 0 || !res) return 0;
    *out = (rtws__addr *)rtws__alloc(al, RTWS__MAX_ALT * sizeof **out);
    if (*out) {
        memset(*out, 0, RTWS__MAX_ALT * sizeof **out);
        for (ai = res; ai && n < RTWS__MAX_ALT; ai = ai->ai_next) {
            if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
                ai->ai_addrlen > sizeof(rtws__addr))
                continue;
            memcpy(&(*out)[n++], ai->ai_addr, ai->ai_addrlen);
        }
    }
    freeaddrinfo(res);
    if (!*out) *err = RTWS_ERR_NOMEM;
    if (*out && !n) {
        rtws__free(al, *out);
        *out = NULL;
    }
    return n;
}

/* Resolves host (a name or an address) and port into at most RTWS__MAX_ALT
   addresses (*out, allocated), returning how many; 0 with *err. A name that
   DNS must answer gives -1 and *dns, the lookup to start on the loop
   (rtws__dns_try). An IP literal, the hosts file and "localhost" answer at
   once; with cfg.dns_system (or on Windows when the system names no DNS
   server) the system's getaddrinfo() does it all, blocking. */
static int rtws__resolve(rtws_ctx *ctx, const char *host, unsigned port, rtws__addr **out,
                         rtws__dns **dns, rtws_err *err) {
    const rtws_allocator *al = &ctx->cfg.conn.allocator;
    rtws_dns_addr found[2 * RTWS__MAX_ALT];
    rtws_dns_conf conf;
    size_t hn = strlen(host), nf = 0;
    char *text = NULL;
    int n;
    rtws__dns *d;
    *out = NULL;
    *dns = NULL;
    *err = RTWS_ERR_RESOLVE;
    if (ctx->cfg.dns_system) return rtws__resolve_gai(ctx, host, port, 0, out, err);
    n = rtws__resolve_gai(ctx, host, port, AI_NUMERICHOST, out, err); /* a literal: never blocks */
    if (n || *err != RTWS_ERR_RESOLVE) return n;
    if (memchr(host, ':', hn) || memchr(host, '%', hn)) return 0; /* a bad literal */
    /* the hosts file */
    if (ctx->cfg.dns_hosts) {
        nf = rtws_dns_hosts_find(ctx->cfg.dns_hosts, strlen(ctx->cfg.dns_hosts), host, hn, 0,
                                 found, 2 * RTWS__MAX_ALT);
    } else {
#if defined(_WIN32)
        char path[300];
        const char *root = getenv("SystemRoot");
        snprintf(path, sizeof path, "%s\\System32\\drivers\\etc\\hosts", root ? root : "C:\\Windows");
#else
        const char *path = "/etc/hosts";
#endif
        size_t len = rtws__read_file(al, path, &text);
        if (text) nf = rtws_dns_hosts_find(text, len, host, hn, 0, found, 2 * RTWS__MAX_ALT);
        rtws__free(al, text);
    }
    if (hn && host[hn - 1] == '.') hn--; /* (the name keeps its dot for DNS) */
    if (!nf && ((hn == 9 && rtws__ieqn(host, "localhost", 9)) ||
                (hn > 10 && rtws__ieqn(host + hn - 10, ".localhost", 10)))) {
        rtws_dns_addr_parse("::1", 3, &found[0]); /* RFC 6761 §6.3 */
        rtws_dns_addr_parse("127.0.0.1", 9, &found[1]);
        nf = 2;
    }
    if (nf) {
        *out = (rtws__addr *)rtws__alloc(al, RTWS__MAX_ALT * sizeof **out);
        if (!*out) *err = RTWS_ERR_NOMEM;
        return *out ? rtws__dns_order(found, RTWS__MIN(nf, 2 * (size_t)RTWS__MAX_ALT), port, *out) : 0;
    }
    /* DNS, on the loop */
    hn = strlen(host);
    {
        uint8_t q[RTWS_DNS_QUERY_MAX];
        if (hn > 253 || !rtws_dns_query_encode(q, sizeof q, 0, host, hn, RTWS_DNS_A, 0)) return 0;
    }
    if (ctx->cfg.dns_conf) {
        rtws_dns_conf_parse(ctx->cfg.dns_conf, strlen(ctx->cfg.dns_conf), &conf);
    } else if (!rtws_dns_conf_system(&conf, al)) {
#if defined(_WIN32) /* no DNS server named: what the system does */
        return rtws__resolve_gai(ctx, host, port, 0, out, err);
#endif
    }
    d = (rtws__dns *)rtws__alloc(al, sizeof *d);
    if (!d) {
        *err = RTWS_ERR_NOMEM;
        return 0;
    }
    memset(d, 0, sizeof *d);
    memcpy(d->name, host, hn + 1);
    d->name_len = hn;
    d->port = port;
    d->conf = conf;
    d->dport = RTWS__DEF(ctx->cfg.dns_port, 53u);
    d->try_ms = RTWS__DEF(ctx->cfg.dns_timeout_ms, d->conf.timeout_s * 1000u);
    d->ntries = RTWS__DEF(ctx->cfg.dns_attempts, d->conf.attempts) * (unsigned)d->conf.nservers;
    *dns = d;
    return -1;
}

/* "host:port" of u, lower case, into buf (256 + 8 bytes). */
static void rtws__host_port(const rtws_url *u, char *buf) {
    size_t i, n = u->host.len;
    for (i = 0; i < n; i++) buf[i] = (char)rtws__lower((unsigned char)u->host.p[i]);
    snprintf(buf + n, 8, ":%u", (unsigned)u->port);
}

/* Connects along r to r->url: a new socket (s NULL), or s again after a
   redirect. Returns the connection or NULL with *err. */
static rtws_conn *rtws__route_go(rtws_ctx *ctx, rtws__route *r, rtws__sock *s, uint64_t now,
                                 rtws_err *err) {
    const rtws_allocator *al = &ctx->cfg.conn.allocator;
    char pbuf[300], auth[360], hp[256 + 8], *w;
    const char *px, *tls_host = NULL;
    rtws_url u, pu;
    rtws_client_opts o = r->opts;
    rtws__addr *addrs = NULL;
    size_t need;
    int n, opened = 0;
    char *seen;
    *err = RTWS_ERR_URL;
    if (rtws_url_parse(r->url, strlen(r->url), &u, NULL) != RTWS_OK ||
        !(rtws__str_ieq(u.scheme, "ws") || rtws__str_ieq(u.scheme, "wss")))
        return NULL;
    if (u.tls && !ctx->tls_tp) {
        *err = RTWS_ERR_TLS; /* no TLS transport: built without RTWS_USE_BEARSSL */
        return NULL;
    }
    /* remember the URL for loops */
    need = strlen(r->url) + 1;
    seen = (char *)(r->seen ? rtws__realloc(al, r->seen, r->seen_len + need)
                            : rtws__alloc(al, need));
    *err = RTWS_ERR_NOMEM;
    if (!seen) return NULL;
    memcpy(seen + r->seen_len, r->url, need);
    r->seen = seen;
    r->seen_len += need;
    rtws__host_port(&u, hp);
    if (!r->hops) memcpy(r->first_host, hp, sizeof hp);
    else if (strcmp(hp, r->first_host) != 0) r->opts.authorization = NULL, o.authorization = NULL;
    if (r->hops) o.host = o.path = NULL; /* the caller's were for the first URL */
    px = rtws__proxy_for(r, &u);
    *err = RTWS_ERR_URL;
    if (px && rtws__proxy_parse(px, pbuf, sizeof pbuf, &pu, auth, sizeof auth) != RTWS_OK)
        return NULL;
    /* this hop's strings: tunnel, Proxy-Authorization, Host, target, name */
    rtws__free(al, r->hop);
    need = 4 * (u.host.len + 16) + strlen(auth) + u.target.len + u.zone.len + 8;
    r->hop = w = (char *)rtws__alloc(al, need);
    *err = RTWS_ERR_NOMEM;
    if (!w) return NULL;
    if (px) {
        o.tunnel = w;
        w += snprintf(w, need, "%s%.*s%s:%u", u.ipv6 ? "[" : "", (int)u.host.len, u.host.p,
                      u.ipv6 ? "]" : "", (unsigned)u.port) + 1;
        o.proxy_authorization = NULL;
        if (auth[0]) {
            o.proxy_authorization = w;
            w += snprintf(w, need - (size_t)(w - r->hop), "%s", auth) + 1;
        }
    } else {
        o.tunnel = o.proxy_authorization = NULL;
    }
    if (!o.host) {
        o.host = w;
        w += rtws_url_host_header(&u, w, need - (size_t)(w - r->hop)) + 1;
    }
    if (!o.path) {
        o.path = w;
        w += rtws_url_target(&u, w, need - (size_t)(w - r->hop)) + 1;
    }
    /* the name to resolve (with the zone for getaddrinfo), then the TLS name */
    {
        char *name = w;
        memcpy(w, u.host.p, u.host.len);
        w += u.host.len;
        if (u.zone.len) {
            *w++ = '%';
            memcpy(w, u.zone.p, u.zone.len);
            w += u.zone.len;
        }
        *w++ = '\0';
        if (u.tls) {
            memcpy(w, u.host.p, u.host.len);
            w[u.host.len] = '\0';
            if (px) r->sni = w;
            else tls_host = w;
        }
        r->tls_wait = px && u.tls;
        if (px) {
            char ph[256 + 64];
            memcpy(ph, pu.host.p, pu.host.len);
            ph[pu.host.len] = '\0';
            n = rtws__resolve(ctx, ph, pu.port, &addrs, &r->dns, err);
        } else {
            n = rtws__resolve(ctx, name, u.port, &addrs, &r->dns, err);
        }
    }
    if (!n) return NULL;
    if (n < 0) n = 0; /* resolving on the loop (r->dns) */
    if (!s) return rtws__connect(ctx, addrs, n, &o, now, tls_host, r, err);
    *err = rtws__sock_start(s, r, addrs, n, &o, now, tls_host, &opened);
    return *err == RTWS_OK ? &s->conn : NULL;
}

RTWS_API rtws_conn *rtws_ctx_connect(rtws_ctx *ctx, const char *url, const rtws_client_opts *opts,
                                 uint64_t now_ms, rtws_err *err) {
    const rtws_allocator *al = &ctx->cfg.conn.allocator;
    rtws__route *r;
    rtws_conn *c;
    rtws_url u;
    const char **f[7];
    size_t i, total = 0;
    char *w;
    rtws_err dummy;
    if (!err) err = &dummy;
    *err = RTWS_ERR_URL;
    if (!url || rtws_url_parse(url, strlen(url), &u, NULL) != RTWS_OK ||
        !(rtws__str_ieq(u.scheme, "ws") || rtws__str_ieq(u.scheme, "wss")))
        return NULL;
    if (u.tls && !ctx->tls_tp) {
        *err = RTWS_ERR_TLS; /* no TLS transport: built without RTWS_USE_BEARSSL */
        return NULL;
    }
    *err = RTWS_ERR_NOMEM;
    r = (rtws__route *)rtws__alloc(al, sizeof *r);
    if (!r) return NULL;
    memset(r, 0, sizeof *r);
    if (opts) r->opts = *opts;
    r->max_hops = r->opts.redirects_off ? 0 : RTWS__DEF(r->opts.max_redirects, 5u);
    r->allow_downgrade = r->opts.allow_downgrade;
    f[0] = &r->opts.host, f[1] = &r->opts.path, f[2] = &r->opts.protocols;
    f[3] = &r->opts.origin, f[4] = &r->opts.authorization, f[5] = &r->opts.extra_headers;
    f[6] = &r->opts.proxy;
    for (i = 0; i < 7; i++)
        if (*f[i]) total += strlen(*f[i]) + 1;
    r->url = rtws__strndup(al, url, strlen(url));
    r->strs = w = (char *)rtws__alloc(al, total + 1);
    if (!r->url || !w) {
        rtws__route_free(al, r);
        return NULL;
    }
    for (i = 0; i < 7; i++) /* copies: a redirect is followed after the call returns */
        if (*f[i]) {
            size_t n = strlen(*f[i]) + 1;
            memcpy(w, *f[i], n);
            *f[i] = w;
            w += n;
        }
    c = rtws__route_go(ctx, r, NULL, now_ms, err);
    if (!c) rtws__route_free(al, r);
    return c;
}

/* io.redirect of the context's client connections: checks the Location and
   keeps it for rtws__route_restart. */
static rtws_err rtws__sock_redirect(rtws_conn *c, int status, const char *loc, size_t len) {
    rtws__sock *s = (rtws__sock *)c;
    rtws__route *r = rtws__route_of(s);
    const rtws_allocator *al = &s->ctx->cfg.conn.allocator;
    size_t cap, n, i;
    rtws_url a, b;
    char *next;
    (void)status;
    if (!r || !r->max_hops || !loc) return RTWS_EAGAIN; /* not followed */
    cap = strlen(r->url) + len + 8;
    if (!(next = (char *)rtws__alloc(al, cap))) return RTWS_ERR_NOMEM;
    if (rtws_url_resolve(r->url, loc, len, next, cap, &n) != RTWS_OK) {
        rtws__free(al, next);
        return RTWS_ERR_URL;
    }
    rtws_url_parse(r->url, strlen(r->url), &a, NULL);
    rtws_url_parse(next, n, &b, NULL);
    for (i = 0; i < r->seen_len; i += strlen(r->seen + i) + 1)
        if (strcmp(r->seen + i, next) == 0) break;
    if (i < r->seen_len || r->hops >= r->max_hops || (a.tls && !b.tls && !r->allow_downgrade) ||
        (b.tls && !s->ctx->tls_tp)) {
        rtws_err e = i < r->seen_len          ? RTWS_ERR_REDIRECT_LOOP
                     : r->hops >= r->max_hops ? RTWS_ERR_REDIRECTS
                     : (a.tls && !b.tls)      ? RTWS_ERR_DOWNGRADE
                                              : RTWS_ERR_TLS;
        rtws__free(al, next);
        return e;
    }
    r->next = next;
    return RTWS_OK;
}

/* Starts s over at the redirect it took: a new socket, the same rtws_conn. */
static void rtws__route_restart(rtws__sock *s, uint64_t now) {
    rtws_ctx *ctx = s->ctx;
    rtws__route *r = rtws__route_of(s);
    rtws_conn *c = &s->conn;
    rtws__conn_priv keep = c->priv_;
    rtws_err e;
    rtws__watch(s, 0);
    if (s->fd >= 0) {
        ctx->byfd[s->fd] = NULL;
        rtws__os_close(s->fd);
        s->fd = -1;
    }
    if (s->xport) {
        const rtws_transport *tp = ((rtws__xsock *)s)->tp;
        if (tp->release) tp->release(rtws__tstate(s));
        memset((uint8_t *)s + RTWS__XSTATE, 0, tp->state_size);
        s->xport = 0;
    }
    s->nalt = s->ialt = 0; /* s->alt stays: it is r->alt */
    s->connecting = 0;
    c->priv_.cbits &= (uint8_t)~RTWS__C_NOTIFY;
    rtws_conn_free(c);
    rtws__conn_init_shared(c, &ctx->conn_cfg[1]);
    c->priv_.on_event = keep.on_event;
    c->priv_.user = keep.user;
    c->priv_.data = keep.data;
    c->priv_.ext_ = keep.ext_;
    c->priv_.io_ = keep.io_;
    rtws__free(&ctx->cfg.conn.allocator, r->url);
    r->url = r->next;
    r->next = NULL;
    r->hops++;
    rtws__route_go(ctx, r, s, now, &e);
    c->priv_.cbits |= (uint8_t)(keep.cbits & RTWS__C_NOTIFY);
    if (e != RTWS_OK) {
        rtws__host_error(s, e, 0);
        rtws__kill(s);
        return;
    }
    rtws__sock_notify(c);
}

/* wss:// through a proxy: the tunnel is up, TLS starts before the upgrade
   request (held in the connection's queue) goes out. 0 on failure. */
static int rtws__route_tls(rtws__sock *s) {
    rtws_ctx *ctx = s->ctx;
    rtws__route *r = rtws__route_of(s);
    rtws_transport_open in;
    int detail = 0;
    rtws_err e;
    memset(&in, 0, sizeof in);
    r->tls_wait = 0;
    e = rtws__client_shared(ctx, &in.shared);
    if (e == RTWS_OK) {
        s->xport = 1;
        ((rtws__xsock *)s)->tp = ctx->tls_tp;
        in.server_name = r->sni;
        in.conn = s->conn.priv_.cfg;
        e = ctx->tls_tp->open(rtws__tstate(s), &in, &detail);
        if (e != RTWS_OK) { /* release still runs with the socket */
            if (e == RTWS_ERR_TLS) ctx->tls_error = detail;
        }
    }
    if (e == RTWS_OK) return 1;
    rtws__host_fail(s, e, detail, e == RTWS_ERR_TLS ? rtws__tp_text(ctx->tls_tp, detail) : NULL);
    return 0;
}

RTWS_API const char *rtws_conn_get_url(const rtws_conn *c) {
    const rtws__sock *s = (const rtws__sock *)c;
    if (!(c->priv_.cbits & RTWS__C_NOTIFY) || s->listener || !(s->kind & RTWS__SOCK_ROUTED))
        return NULL;
    return rtws__route_of(s)->url;
}

static void rtws__connected(rtws__sock *s, uint64_t now) {
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (rtws__os_getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) soerr = RTWS__SOCKERR();
    if (RTWS__INPROGRESS(soerr) || soerr == RTWS__EALREADY) return;
    if (soerr) {
        if (rtws__next_addr(s) == 0) {
            rtws__settle(s, now);
            return;
        }
        if ((s->kind & RTWS__SOCK_ROUTED) && rtws__route_of(s)->nrace) {
            rtws__race_promote(s, rtws__route_of(s)->nrace - 1u); /* a held one may still win */
            rtws__settle(s, now);
            return;
        }
        rtws__host_error(s, RTWS_ERR_IO, soerr);
        s->connecting = 0;
        rtws__kill(s);
        return;
    }
    s->connecting = 0;
    if (s->kind & RTWS__SOCK_ROUTED) rtws__race_end(s); /* the others lose */
}
#else /* RTWS_NO_CLIENT: no socket is ever connecting */
static void rtws__connected(rtws__sock *s, uint64_t now) {
    (void)s, (void)now;
}
#endif /* !RTWS_NO_CLIENT */

static void rtws__post_wake(rtws_ctx *ctx);
static void rtws__ready(rtws_ctx *ctx, int fd, int readable, int writable, uint64_t now) {
    rtws__sock *s;
    if (fd < 0 || (size_t)fd >= ctx->capfd || !(s = ctx->byfd[fd]) || s->dead) return;
    if (s->listener) {
        if (s->kind & RTWS__SOCK_WAKER) rtws__post_wake(ctx);
        else if (readable) rtws__accept(ctx, s, now);
        return;
    }
    if (s->kind & RTWS__SOCK_RAW) {
        rtws__stream_ready(s, readable, writable, now);
        return;
    }
#if !defined(RTWS_NO_CLIENT)
    if (s->connecting && (s->kind & RTWS__SOCK_ROUTED) && rtws__route_of(s)->dns) {
        rtws__dns_ready(s, readable, writable, now); /* the name is being resolved */
        if (!s->dead) rtws__settle(s, now);
        return;
    }
#endif
#if !defined(RTWS_NO_CLIENT)
    if (fd != s->fd && s->connecting && (s->kind & RTWS__SOCK_ROUTED)) {
        if (!readable && !writable) return;
        if (!rtws__race_ready(s, fd)) { /* a held attempt, still racing or out */
            if (!s->dead) rtws__settle(s, now);
            return;
        }
        readable = 0; /* it won: s is connected on it */
        writable = 1;
    }
#endif
    if (s->connecting) {
        if (!readable && !writable) return;
        rtws__connected(s, now);
        if (s->connecting || s->dead) return;
        writable = 1;
    }
    if (readable) rtws__do_read(s, now);
    if (!s->dead) rtws__flush(s);
    rtws__settle(s, now);
}

/* ---- sending from other threads (rtws_ctx_post) ----

   Producers push onto a lock-free stack (a compare-and-swap on its head);
   the loop takes the whole stack with one exchange and reverses it, so
   posts come out in the order the pushes happened: per thread in program
   order. A take-all stack has no ABA problem (nothing is popped singly).
   The queue's bounds are counters producers reserve with an atomic add.
   A producer wakes the loop only when no wake-up is on its way (signaled):
   the loop clears signaled after reading the wake-up fd and before taking
   the stack, so a push it misses always finds signaled clear and wakes it
   again. What a port to another system replaces is below: the atomics
   (MSVC: the Interlocked* functions) and the wake-up fd (Windows: a
   loopback socket pair whose read end is polled like any socket). */
#if !defined(RTWS_NO_THREADS)
#if defined(_MSC_VER) && !defined(__clang__)
/* MSVC: the Interlocked* functions on x86 and x64 (where a plain load after a
   compiler barrier is a sequentially consistent one). The fields they touch:
   head (a pointer), signaled (an int), count, bytes (size_t) and refused
   (uint64_t); the 64-bit ones are exchanged whole on x64 only. */
#include <intrin.h>
#if !defined(_M_X64) && !defined(_M_IX86)
#error "rtws: cross-thread posting with MSVC is written for x86 and x64; define RTWS_NO_THREADS to leave it out"
#endif
#define RTWS__ALOAD(p) (_ReadWriteBarrier(), *(p))
#define RTWS__ALOAD_ACQ(p) RTWS__ALOAD(p)
#define RTWS__ASTORE(p, v) ((void)_InterlockedExchange((long volatile *)(p), (long)(v)))
#define RTWS__AXCHG_INT(p, v) _InterlockedExchange((long volatile *)(p), (long)(v))
#define RTWS__AXCHG_PTR(p, v) _InterlockedExchangePointer((void *volatile *)(p), (v))
#define RTWS__AADD(p, v)                                                                           \
    (sizeof *(p) == 8 ? (uint64_t)_InterlockedExchangeAdd64((__int64 volatile *)(p), (__int64)(v))  \
                      : (uint64_t)(uint32_t)_InterlockedExchangeAdd((long volatile *)(p), (long)(v)))
#define RTWS__ASUB(p, v) RTWS__AADD((p), (uint64_t)0 - (uint64_t)(v))
#define RTWS__ACAS(p, expect, v) rtws__acas_ptr((void *volatile *)(p), (void **)(expect), (v))
static int rtws__acas_ptr(void *volatile *p, void **expect, void *v) {
    void *old = _InterlockedCompareExchangePointer(p, v, *expect);
    if (old == *expect) return 1;
    *expect = old;
    return 0;
}
#else
#if !defined(__GNUC__) && !defined(__clang__)
#error "rtws: cross-thread posting needs the __atomic builtins of gcc or clang (or MSVC's Interlocked* functions); define RTWS_NO_THREADS to leave it out"
#endif
#if defined(__linux__) && !defined(RTWS__NO_EVENTFD)
#include <sys/eventfd.h>
#define RTWS__EVENTFD 1 /* elsewhere (macOS, the BSDs): a pipe */
#endif

#define RTWS__ALOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define RTWS__ALOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define RTWS__AXCHG_INT(p, v) RTWS__AXCHG(p, v)
#define RTWS__AXCHG_PTR(p, v) RTWS__AXCHG(p, v)
#define RTWS__ASTORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define RTWS__AXCHG(p, v) __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)
#define RTWS__AADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define RTWS__ASUB(p, v) __atomic_fetch_sub((p), (v), __ATOMIC_SEQ_CST)
#define RTWS__ACAS(p, expect, v)                                                                   \
    __atomic_compare_exchange_n((p), (expect), (v), 1, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)
#endif /* _MSC_VER */

/* The wake-up fd: fds[0] is polled by the loop, fds[1] written by
   producers (the same eventfd on Linux, a pipe's two ends elsewhere, on
   Windows the two ends of a loopback TCP connection). */
static int rtws__wake_open(int fds[2]) {
#if defined(_WIN32)
    struct sockaddr_in a, mine, peer;
    socklen_t alen = sizeof a, mlen = sizeof mine, plen = sizeof peer;
    int l, one = 1;
    fds[0] = fds[1] = -1;
    l = rtws__os_socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (rtws__os_bind(l, (struct sockaddr *)&a, sizeof a) == 0 && rtws__os_listen(l, 1) == 0 &&
        rtws__os_getsockname(l, (struct sockaddr *)&a, &alen) == 0 &&
        (fds[1] = rtws__os_socket(AF_INET, SOCK_STREAM, 0)) >= 0 &&
        rtws__os_connect(fds[1], (struct sockaddr *)&a, alen) == 0 &&
        rtws__os_getsockname(fds[1], (struct sockaddr *)&mine, &mlen) == 0)
        fds[0] = rtws__os_accept(l, (struct sockaddr *)&peer, &plen);
    rtws__os_close(l);
    /* the accepted end must be ours, not another local program's */
    if (fds[0] < 0 || peer.sin_port != mine.sin_port ||
        peer.sin_addr.s_addr != mine.sin_addr.s_addr || rtws__set_nonblock(fds[0]) != 0 ||
        rtws__set_nonblock(fds[1]) != 0) {
        if (fds[0] >= 0) rtws__os_close(fds[0]);
        if (fds[1] >= 0) rtws__os_close(fds[1]);
        fds[0] = fds[1] = -1;
        return -1;
    }
    rtws__os_setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
#elif defined(RTWS__EVENTFD)
    fds[0] = fds[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fds[0] < 0 ? -1 : 0;
#else
    if (pipe(fds) != 0) return -1;
    if (rtws__set_nonblock(fds[0]) != 0 || rtws__set_nonblock(fds[1]) != 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    return 0;
#endif
}
static void rtws__wake_signal(int fd) {
#if defined(_WIN32)
    char one = 1;
    send(RTWS__SOCK(fd), &one, 1, 0); /* WSAEWOULDBLOCK: full of wake-ups, readable already */
#else
    uint64_t one = 1; /* eventfd adds it; a pipe gets 8 bytes, read back at once */
    ssize_t r;
    do r = write(fd, &one, sizeof one);
    while (r < 0 && errno == EINTR);
    /* EAGAIN: a pipe full of wake-ups is readable already */
#endif
}
static void rtws__wake_clear(int fd) {
#if defined(_WIN32)
    char buf[64];
    long r;
    do r = rtws__os_recv(fd, buf, sizeof buf);
    while (r == (long)sizeof buf);
#else
    uint64_t buf[8];
    ssize_t r;
    do r = read(fd, buf, sizeof buf);
    while (r > 0 ? (size_t)r == sizeof buf : errno == EINTR);
#endif
}

typedef struct rtws__post {
    struct rtws__post *next;
    uint64_t id;
    const uint8_t *data; /* a copy, right after the node, or the caller's */
    size_t len;
    rtws_post_free_fn free_fn;
    void *free_user;
    unsigned code;       /* a close */
    uint8_t op;
} rtws__post;

typedef struct rtws__postq {
    /* written by producers */
    rtws__post *head;
    size_t count, bytes; /* reserved: in the queue or being pushed */
    int signaled;        /* a wake-up is on its way */
    uint64_t refused;
    int wake[2];
    uint8_t pad_[64];    /* the loop's own fields on another cache line */
    uint64_t taken, delivered, dropped, wakeups, batches;
    uint32_t *ser;       /* by fd: the serial of the connection there (its id's
                            upper half), kept here so a socket costs no more */
    size_t capser;
    uint32_t serial;     /* the last one given */
} rtws__postq;

static rtws_err rtws__post_init(rtws_ctx *ctx) {
    const rtws_allocator *a = &ctx->cfg.conn.allocator;
    rtws__postq *q = (rtws__postq *)rtws__alloc(a, sizeof *q);
    rtws__sock *s;
    if (!q) return RTWS_ERR_NOMEM;
    memset(q, 0, sizeof *q);
    ctx->cfg.post_queue_max_bytes = RTWS__DEF(ctx->cfg.post_queue_max_bytes, (size_t)16 << 20);
    if (rtws__wake_open(q->wake) != 0) {
        rtws__free(a, q);
        return RTWS_ERR_IO;
    }
    ctx->post = q;
    s = (rtws__sock *)rtws__alloc(a, sizeof *s);
    if (!s) return RTWS_ERR_NOMEM; /* rtws_ctx_free closes q's fds */
    memset(s, 0, sizeof *s);
    s->fd = q->wake[0];
    s->listener = 1;
    s->kind |= RTWS__SOCK_WAKER;
    if (!rtws__add_sock(ctx, s)) {
        rtws__free(a, s);
        return RTWS_ERR_NOMEM;
    }
    rtws__watch(s, RTWS_WANT_READ);
    return RTWS_OK;
}

/* A new connection on fd: its serial (the upper half of its id). */
static int rtws__post_serial(rtws_ctx *ctx, int fd) {
    rtws__postq *q = ctx->post;
    if (!q) return 1;
    if ((size_t)fd >= q->capser) {
        size_t old = q->capser;
        void *p = q->ser;
        if (rtws__grow(&ctx->cfg.conn.allocator, &p, &q->capser, RTWS__MAX((size_t)fd + 1, 256u),
                       sizeof(uint32_t), SIZE_MAX) != RTWS_OK)
            return 0;
        q->ser = (uint32_t *)p;
        memset(q->ser + old, 0, (q->capser - old) * sizeof *q->ser);
    }
    if (++q->serial == 0) q->serial = 1;
    q->ser[fd] = q->serial;
    return 1;
}
static uint64_t rtws__post_id(const rtws_ctx *ctx, int fd) {
    const rtws__postq *q = ctx->post;
    return q && fd >= 0 && (size_t)fd < q->capser ? (uint64_t)q->ser[fd] << 32 | (uint32_t)fd : 0;
}

/* Reserves room for one post of len bytes. */
static rtws_err rtws__post_reserve(rtws_ctx *ctx, size_t len) {
    rtws__postq *q = ctx->post;
    if (!q) return RTWS_ERR_INVALID;
    if (len > ctx->cfg.post_queue_max_bytes) return RTWS_ERR_LIMIT;
    if (RTWS__AADD(&q->count, (size_t)1) >= ctx->cfg.post_queue_max) {
        RTWS__ASUB(&q->count, (size_t)1);
        RTWS__AADD(&q->refused, (uint64_t)1);
        return RTWS_ERR_LIMIT;
    }
    if (RTWS__AADD(&q->bytes, len) > ctx->cfg.post_queue_max_bytes - len) {
        RTWS__ASUB(&q->bytes, len);
        RTWS__ASUB(&q->count, (size_t)1);
        RTWS__AADD(&q->refused, (uint64_t)1);
        return RTWS_ERR_LIMIT;
    }
    return RTWS_OK;
}
static void rtws__post_unreserve(rtws__postq *q, size_t n, size_t len) {
    RTWS__ASUB(&q->bytes, len);
    RTWS__ASUB(&q->count, n);
}

static void rtws__post_push(rtws__postq *q, rtws__post *n) {
    rtws__post *h = RTWS__ALOAD(&q->head);
    do n->next = h;
    while (!RTWS__ACAS(&q->head, &h, n));
    /* the load first: while a wake-up is on its way producers only read */
    if (!RTWS__ALOAD(&q->signaled) && !RTWS__AXCHG_INT(&q->signaled, 1)) rtws__wake_signal(q->wake[1]);
}

/* A node of len bytes (copied after it when copy), filled but for data. */
static rtws__post *rtws__post_node(rtws_ctx *ctx, uint64_t id, unsigned op, size_t len, int copy) {
    rtws__post *n;
    if (copy && len > SIZE_MAX - sizeof *n) return NULL;
    n = (rtws__post *)rtws__alloc(&ctx->cfg.conn.allocator, sizeof *n + (copy ? len : 0));
    if (!n) return NULL;
    memset(n, 0, sizeof *n);
    n->id = id;
    n->op = (uint8_t)op;
    n->len = len;
    return n;
}

static rtws_err rtws__post_check(rtws_ctx *ctx, rtws_opcode op, const void *data, size_t len) {
    uint32_t st = 0;
    if (!ctx->post || (op != RTWS_OP_TEXT && op != RTWS_OP_BINARY) || (len && !data))
        return RTWS_ERR_INVALID;
    if (op == RTWS_OP_TEXT &&
        (rtws_utf8_validate(&st, (const uint8_t *)data, len, NULL) != RTWS_OK || st))
        return RTWS_ERR_UTF8;
    return RTWS_OK;
}

RTWS_API rtws_err rtws_ctx_post(rtws_ctx *ctx, uint64_t conn_id, rtws_opcode op, const void *data,
                                size_t len) {
    rtws__post *n;
    rtws_err e = rtws__post_check(ctx, op, data, len);
    if (e == RTWS_OK) e = rtws__post_reserve(ctx, len);
    if (e != RTWS_OK) return e;
    if (!(n = rtws__post_node(ctx, conn_id, (unsigned)op, len, 1))) {
        rtws__post_unreserve(ctx->post, 1, len);
        return RTWS_ERR_NOMEM;
    }
    if (len) memcpy(n + 1, data, len);
    n->data = (const uint8_t *)(n + 1);
    rtws__post_push(ctx->post, n);
    return RTWS_OK;
}

RTWS_API rtws_err rtws_ctx_post_owned(rtws_ctx *ctx, uint64_t conn_id, rtws_opcode op, void *data,
                                      size_t len, rtws_post_free_fn free_fn, void *free_user) {
    rtws__post *n;
    rtws_err e = rtws__post_check(ctx, op, data, len);
    if (e == RTWS_OK) e = rtws__post_reserve(ctx, len);
    if (e != RTWS_OK) return e;
    if (!(n = rtws__post_node(ctx, conn_id, (unsigned)op, len, 0))) {
        rtws__post_unreserve(ctx->post, 1, len);
        return RTWS_ERR_NOMEM;
    }
    n->data = (const uint8_t *)data;
    n->free_fn = free_fn;
    n->free_user = free_user;
    rtws__post_push(ctx->post, n);
    return RTWS_OK;
}

RTWS_API rtws_err rtws_ctx_post_close(rtws_ctx *ctx, uint64_t conn_id, unsigned code,
                                      const char *reason) {
    size_t rlen = reason ? strlen(reason) : 0;
    uint32_t st = 0;
    rtws__post *n;
    rtws_err e;
    /* the checks of rtws_conn_close, made now so that the poster hears of them */
    if (!ctx->post || (code && !rtws_close_code_valid(code)) || rlen > 123 || (rlen && !code) ||
        rtws_utf8_validate(&st, (const uint8_t *)reason, rlen, NULL) != RTWS_OK || st)
        return RTWS_ERR_INVALID;
    if ((e = rtws__post_reserve(ctx, rlen)) != RTWS_OK) return e;
    if (!(n = rtws__post_node(ctx, conn_id, RTWS_OP_CLOSE, rlen, 1))) {
        rtws__post_unreserve(ctx->post, 1, rlen);
        return RTWS_ERR_NOMEM;
    }
    if (rlen) memcpy(n + 1, reason, rlen);
    n->data = (const uint8_t *)(n + 1);
    n->code = code;
    rtws__post_push(ctx->post, n);
    return RTWS_OK;
}

/* Hands n to its connection (deliver) or reports it dropped, then frees it. */
static void rtws__post_done(rtws_ctx *ctx, rtws__post *n, int deliver) {
    rtws__postq *q = ctx->post;
    size_t fd = (size_t)(n->id & 0xffffffffu);
    rtws__sock *s = deliver && n->id && fd < ctx->capfd ? ctx->byfd[fd] : NULL;
    rtws_err e = RTWS_ERR_CLOSED;
    if (s && !s->listener && !s->dead && rtws__post_id(ctx, s->fd) == n->id) {
        if (n->op == RTWS_OP_CLOSE) {
            char reason[124];
            memcpy(reason, n->data, n->len); /* <= 123 bytes, checked by the post */
            reason[n->len] = '\0';
            if (ctx->now > s->conn.priv_.now) s->conn.priv_.now = ctx->now;
            e = rtws_conn_close(&s->conn, n->code, n->len ? reason : NULL);
            rtws__sock_notify(&s->conn);
        } else {
            e = rtws_conn_send(&s->conn, (rtws_opcode)n->op, n->data, n->len);
        }
    }
    if (e == RTWS_OK) {
        q->delivered++;
    } else {
        q->dropped++;
        if (ctx->cfg.on_post_dropped) {
            rtws_post_dropped d;
            memset(&d, 0, sizeof d);
            d.conn_id = n->id;
            d.op = (rtws_opcode)n->op;
            d.data = n->data;
            d.len = n->len;
            d.code = n->code;
            d.err = e;
            ctx->cfg.on_post_dropped(ctx, &d, ctx->cfg.post_user);
        }
    }
    if (n->free_fn) n->free_fn((void *)(uintptr_t)n->data, n->free_user);
    rtws__free(&ctx->cfg.conn.allocator, n);
}

/* Takes everything posted so far, oldest first; deliver 0: reports it all
   dropped (rtws_ctx_free). */
static void rtws__post_take(rtws_ctx *ctx, int deliver) {
    rtws__postq *q = ctx->post;
    rtws__post *n, *next, *list = NULL;
    size_t cnt = 0, bytes = 0;
    n = (rtws__post *)RTWS__AXCHG_PTR(&q->head, (rtws__post *)NULL);
    for (; n; n = next) { /* newest first: reverse */
        next = n->next;
        n->next = list;
        list = n;
    }
    q->batches++;
    for (n = list; n; n = next) {
        next = n->next;
        cnt++;
        bytes += n->len;
        q->taken++;
        rtws__post_done(ctx, n, deliver);
    }
    rtws__post_unreserve(q, cnt, bytes);
}

/* At the start of every pass: one atomic load when nothing was posted. */
static void rtws__post_run(rtws_ctx *ctx) {
    if (ctx->post && RTWS__ALOAD_ACQ(&ctx->post->head)) rtws__post_take(ctx, 1);
}

/* The wake-up fd is readable: clear it, then signaled, then take. */
static void rtws__post_wake(rtws_ctx *ctx) {
    rtws__postq *q = ctx->post;
    rtws__wake_clear(q->wake[0]);
    q->wakeups++;
    RTWS__ASTORE(&q->signaled, 0);
    rtws__post_run(ctx);
}

static void rtws__post_free(rtws_ctx *ctx) {
    rtws__postq *q = ctx->post;
    if (!q) return;
    ctx->in_call++; /* on_post_dropped may call the API: defer frees */
    if (RTWS__ALOAD(&q->head)) rtws__post_take(ctx, 0);
    ctx->in_call--;
    /* the read end closes with its socket (or now, if it never got one) */
    if (q->wake[1] != q->wake[0]) rtws__os_close(q->wake[1]);
    if (!(q->wake[0] >= 0 && (size_t)q->wake[0] < ctx->capfd && ctx->byfd[q->wake[0]]))
        rtws__os_close(q->wake[0]);
    rtws__free(&ctx->cfg.conn.allocator, q->ser);
    rtws__free(&ctx->cfg.conn.allocator, q);
    ctx->post = NULL;
}

RTWS_API void rtws_ctx_get_post_stats(const rtws_ctx *ctx, rtws_post_stats *st) {
    const rtws__postq *q = ctx->post;
    memset(st, 0, sizeof *st);
    if (!q) return;
    st->refused = RTWS__ALOAD(&q->refused);
    st->taken = q->taken;
    st->delivered = q->delivered;
    st->dropped = q->dropped;
    st->wakeups = q->wakeups;
    st->batches = q->batches;
    st->queued = RTWS__ALOAD(&q->count);
}
#else /* RTWS_NO_THREADS */
static rtws_err rtws__post_init(rtws_ctx *ctx) {
    (void)ctx;
    return RTWS_OK;
}
static int rtws__post_serial(rtws_ctx *ctx, int fd) {
    (void)ctx, (void)fd;
    return 1;
}
static uint64_t rtws__post_id(const rtws_ctx *ctx, int fd) {
    (void)ctx, (void)fd;
    return 0;
}
static void rtws__post_run(rtws_ctx *ctx) { (void)ctx; }
static void rtws__post_wake(rtws_ctx *ctx) { (void)ctx; }
static void rtws__post_free(rtws_ctx *ctx) { (void)ctx; }
#endif /* !RTWS_NO_THREADS */

#if !defined(RTWS_NO_CLIENT)
/* ---- reconnecting client ---- */

typedef struct rtws__qmsg {
    uint64_t expire;  /* now_ms after which it is dropped; 0 never */
    uint32_t len;
    uint8_t op, pad_[3];
} rtws__qmsg;         /* followed by len bytes, padded to 8 */

typedef struct rtws__restore {
    struct rtws__restore *next;
    size_t keylen, len;
    uint8_t op;
} rtws__restore; /* followed by the key, then the message */

struct rtws_client {
    rtws_client_config cfg;
    rtws_ctx *ctx;
    rtws_client *next;
    char *url;                    /* after cl, or url_buf */
    char *url_buf, *opts_buf;     /* owned copies from set_url, set_opts */
    const char *cur_url;          /* what refresh returned */
    rtws_client_opts cur_opts;
    rtws_conn *conn;              /* live connection (its events come here) */
    rtws_client_state state;
    uint32_t attempt;             /* failed attempts in a row */
    uint32_t reconnects, restarts;
    uint64_t next_at;             /* RECONNECTING: when to try */
    uint64_t open_at, uptime;
    rtws_conn_stats done;              /* counters of finished connections */
    rtws_err last_error;
    unsigned last_code;
    int opened;                   /* the live connection reached OPEN */
    int dead;                     /* freed inside a callback: released by the sweep */
    uint64_t next_expire;         /* earliest TTL in the queue, 0 none */
    uint8_t *q;                   /* offline queue: records from qhead to qend */
    size_t qcap, qhead, qend, qcount, qbytes;
    uint64_t wake_at_;            /* realtime layer: call wake_ then, while OPEN (0: never) */
    void (*wake_)(rtws_client *cl, uint64_t now, void *user);
    rtws__restore *restore;       /* restore messages, in the order first set */
    size_t restore_bytes;
};

static size_t rtws__qrec(size_t len) { return sizeof(rtws__qmsg) + ((len + 7) & ~(size_t)7); }

RTWS_API uint32_t rtws_client_backoff_bound(const rtws_client_config *cfg, uint32_t attempt) {
    uint64_t b = RTWS__DEF(cfg->backoff_base_ms, 1000u);
    uint64_t f = RTWS__DEF(cfg->backoff_factor, 2u), mx = RTWS__DEF(cfg->backoff_max_ms, 60000u);
    uint32_t i;
    for (i = 1; i < attempt && b < mx; i++) b *= f;
    return (uint32_t)(b < mx ? b : mx);
}

RTWS_API uint32_t rtws_client_backoff_delay(const rtws_client_config *cfg, uint32_t attempt,
                                            uint32_t r) {
    uint64_t hi = rtws_client_backoff_bound(cfg, attempt), lo = cfg->backoff_min_ms;
    if (hi < lo) hi = lo;
    if (cfg->jitter == RTWS_JITTER_NONE) lo = hi;
    else if (cfg->jitter == RTWS_JITTER_EQUAL && hi / 2 > lo) lo = hi / 2;
    return (uint32_t)(lo + (uint64_t)r % (hi - lo + 1));
}

static void rtws__client_emit(rtws_client *cl, rtws_client_event *ev) {
    if (cl->cfg.on_event) cl->cfg.on_event(cl, ev, cl->cfg.user);
}

static void rtws__client_state(rtws_client *cl, rtws_client_state st, uint32_t delay) {
    rtws_client_event ev;
    cl->state = st;
    memset(&ev, 0, sizeof ev);
    ev.state.type = RTWS_CLIENT_EV_STATE;
    ev.state.state = st;
    ev.state.attempt =
        st == RTWS_CLIENT_CONNECTING || st == RTWS_CLIENT_RECONNECTING ? cl->attempt : 0;
    ev.state.delay_ms = delay;
    ev.state.reason = cl->last_error;
    ev.state.code = cl->last_code;
    rtws__client_emit(cl, &ev);
}

static void rtws__client_drop(rtws_client *cl, const rtws__qmsg *m, rtws_err why) {
    rtws_client_event ev;
    memset(&ev, 0, sizeof ev);
    ev.dropped.type = RTWS_CLIENT_EV_DROPPED;
    ev.dropped.opcode = (rtws_opcode)m->op;
    ev.dropped.data = (const uint8_t *)(m + 1);
    ev.dropped.len = m->len;
    ev.dropped.err = why;
    rtws__client_emit(cl, &ev);
}

static rtws__qmsg *rtws__qfront(rtws_client *cl) {
    return cl->qcount ? (rtws__qmsg *)(void *)(cl->q + cl->qhead) : NULL;
}
static void rtws__qpop(rtws_client *cl) {
    rtws__qmsg *m = rtws__qfront(cl);
    cl->qhead += rtws__qrec(m->len);
    cl->qcount--;
    cl->qbytes -= m->len;
    if (!cl->qcount) cl->qhead = cl->qend = 0;
}

/* Sends what the queue holds, oldest first, dropping what expired. Stops at
   the first message the connection cannot take now. */
static void rtws__client_flush(rtws_client *cl) {
    rtws__qmsg *m;
    while (cl->state == RTWS_CLIENT_OPEN && cl->conn && (m = rtws__qfront(cl)) != NULL) {
        if (m->expire && cl->ctx->now >= m->expire) {
            rtws__client_drop(cl, m, RTWS_ERR_TIMEOUT);
        } else {
            rtws_err e = rtws_conn_send(cl->conn, (rtws_opcode)m->op, m + 1, m->len);
            if (e == RTWS_ERR_LIMIT) return; /* retried at the next timer */
            if (e != RTWS_OK) rtws__client_drop(cl, m, e);
        }
        if (cl->qcount && (rtws__qmsg *)(void *)(cl->q + cl->qhead) == m) rtws__qpop(cl);
    }
}

/* Sends every restore message on a connection that just opened; one it
   refuses is reported (DROPPED) and kept for the next. */
static void rtws__client_restore(rtws_client *cl) {
    rtws__restore *m;
    for (m = cl->restore; m && cl->conn && cl->state == RTWS_CLIENT_OPEN; m = m->next) {
        const uint8_t *b = (const uint8_t *)(m + 1) + m->keylen;
        rtws_err e = rtws_conn_send(cl->conn, (rtws_opcode)m->op, b, m->len);
        if (e != RTWS_OK) {
            rtws_client_event ev;
            memset(&ev, 0, sizeof ev);
            ev.dropped.type = RTWS_CLIENT_EV_DROPPED;
            ev.dropped.opcode = (rtws_opcode)m->op;
            ev.dropped.data = b;
            ev.dropped.len = m->len;
            ev.dropped.err = e;
            rtws__client_emit(cl, &ev);
        }
    }
}

static void rtws__client_attempt(rtws_client *cl, uint64_t now);

/* Removes every expired message, wherever it sits, keeping the order of the
   rest; recomputes the next expiry. */
static void rtws__client_expire(rtws_client *cl, uint64_t now) {
    size_t r = cl->qhead, w = cl->qhead;
    cl->next_expire = 0;
    while (r < cl->qend) {
        rtws__qmsg m;
        size_t rec;
        memcpy(&m, cl->q + r, sizeof m);
        rec = rtws__qrec(m.len);
        if (m.expire && now >= m.expire) {
            rtws__client_drop(cl, (const rtws__qmsg *)(const void *)(cl->q + r), RTWS_ERR_TIMEOUT);
            cl->qcount--;
            cl->qbytes -= m.len;
        } else {
            if (m.expire && (!cl->next_expire || m.expire < cl->next_expire)) cl->next_expire = m.expire;
            if (w != r) memmove(cl->q + w, cl->q + r, rec);
            w += rec;
        }
        r += rec;
    }
    cl->qend = w;
    if (!cl->qcount) cl->qhead = cl->qend = 0;
}

/* Adds one connection's counters to a running total (RTT average weighted
   by samples). */
static void rtws__stats_add(rtws_conn_stats *t, const rtws_conn_stats *st) {
    t->msgs_in += st->msgs_in;
    t->msgs_out += st->msgs_out;
    t->bytes_in += st->bytes_in;
    t->bytes_out += st->bytes_out;
    if (!st->rtt_samples) return;
    t->rtt_last_ms = st->rtt_last_ms;
    if (!t->rtt_samples || st->rtt_min_ms < t->rtt_min_ms) t->rtt_min_ms = st->rtt_min_ms;
    t->rtt_avg_ms = (uint32_t)(((uint64_t)t->rtt_avg_ms * t->rtt_samples +
                                (uint64_t)st->rtt_avg_ms * st->rtt_samples) /
                               (t->rtt_samples + st->rtt_samples));
    t->rtt_samples += st->rtt_samples;
}

static void rtws__client_lost(rtws_client *cl, uint64_t now) {
    uint32_t r = 0;
    if (cl->conn) {
        rtws_conn_stats st;
        rtws_conn_get_stats(cl->conn, &st);
        rtws__stats_add(&cl->done, &st);
        rtws_conn_set_handler(cl->conn, NULL, NULL);
        cl->conn = NULL;
    }
    if (cl->opened) {
        cl->uptime += now - cl->open_at;
        /* a connection that stayed up long enough resets the schedule */
        if (now - cl->open_at >= RTWS__DEF(cl->cfg.stable_ms, 10000u)) cl->attempt = 0;
    }
    cl->opened = 0;
    cl->open_at = 0;
    if (cl->state == RTWS_CLIENT_CLOSING || cl->state == RTWS_CLIENT_CLOSED) {
        rtws__client_state(cl, RTWS_CLIENT_CLOSED, 0);
        return;
    }
    if (!cl->cfg.reconnect_on_policy &&
        (cl->last_code == RTWS_CLOSE_POLICY || (cl->last_code >= 4000 && cl->last_code <= 4999))) {
        rtws__client_state(cl, RTWS_CLIENT_FAILED, 0);
        return;
    }
    cl->attempt++;
    if (cl->cfg.max_attempts && cl->attempt > cl->cfg.max_attempts) {
        rtws__client_state(cl, RTWS_CLIENT_FAILED, 0);
        return;
    }
    /* full jitter by default: uniform in [min, bound], so a crowd of clients spreads out */
    if (cl->ctx->cfg.conn.random) cl->ctx->cfg.conn.random(&r, sizeof r, cl->ctx->cfg.conn.random_user);
    else if (rtws_random_system(&r, sizeof r, NULL) != 0) r = (uint32_t)now * 2654435761u;
    r = rtws_client_backoff_delay(&cl->cfg, cl->attempt, r);
    cl->next_at = now + r;
    if (cl->ctx->next_scan > cl->next_at) cl->ctx->next_scan = cl->next_at;
    rtws__client_state(cl, RTWS_CLIENT_RECONNECTING, r);
}

static void rtws__client_event(rtws_conn *c, const rtws_event *ev, void *user) {
    rtws_client *cl = (rtws_client *)user;
    rtws_client_event copy;
    uint64_t now = cl->ctx->now;
    if (c != cl->conn) return;
    copy.conn.type = RTWS_CLIENT_EV_CONN;
    copy.conn.conn = c;
    copy.conn.event = ev;
    switch (ev->type) {
    case RTWS_EV_OPEN:
        cl->opened = 1;
        cl->open_at = now ? now : 1;
        cl->last_error = RTWS_OK;
        cl->last_code = 0;
        cl->state = RTWS_CLIENT_OPEN;
        rtws__client_restore(cl); /* the state the server lost, then */
        rtws__client_flush(cl);   /* the queue, before anything new */
        rtws__client_state(cl, RTWS_CLIENT_OPEN, 0);
        if (cl->conn == c) rtws__client_emit(cl, &copy); /* not after a restart */
        return;
    case RTWS_EV_ERROR:
        cl->last_error = ev->error.err;
        rtws__client_emit(cl, &copy);
        if (!cl->opened && cl->conn == c) rtws__client_lost(cl, now); /* never opened: final */
        return;
    case RTWS_EV_CLOSE:
        cl->last_code = ev->close.code;
        if (!ev->close.clean && !cl->last_error) cl->last_error = RTWS_ERR_ABNORMAL;
        rtws__client_emit(cl, &copy);
        if (cl->conn == c) rtws__client_lost(cl, now);
        return;
    default:
        rtws__client_emit(cl, &copy);
        return;
    }
}

static void rtws__client_attempt(rtws_client *cl, uint64_t now) {
    rtws_err e = RTWS_OK;
    rtws_conn *c;
    if (cl->attempt > 0) {
        cl->reconnects++;
        cl->cur_url = cl->url;
        cl->cur_opts = cl->cfg.opts;
        if (cl->cfg.refresh && cl->cfg.refresh(cl, &cl->cur_url, &cl->cur_opts, cl->cfg.user)) {
            rtws__client_state(cl, RTWS_CLIENT_FAILED, 0);
            return;
        }
    }
    rtws__client_state(cl, RTWS_CLIENT_CONNECTING, 0);
    /* the callback closed or freed it, or restarted it (an attempt is under way) */
    if (cl->state != RTWS_CLIENT_CONNECTING || cl->conn || cl->dead) return;
    c = rtws_ctx_connect(cl->ctx, cl->cur_url, &cl->cur_opts, now, &e);
    if (!c) {
        cl->last_error = e;
        if (e == RTWS_ERR_URL || e == RTWS_ERR_TLS || e == RTWS_ERR_INVALID) {
            rtws__client_state(cl, RTWS_CLIENT_FAILED, 0); /* retrying cannot help */
            return;
        }
        rtws__client_lost(cl, now);
        return;
    }
    cl->conn = c;
    rtws_conn_set_handler(c, rtws__client_event, cl);
}

static void rtws__clients_timers(rtws_ctx *ctx, uint64_t now, uint64_t *next) {
    rtws_client *cl;
    for (cl = ctx->clients; cl; cl = cl->next) {
        if (cl->state == RTWS_CLIENT_RECONNECTING) {
            if (now >= cl->next_at) rtws__client_attempt(cl, now);
            else if (cl->next_at < *next) *next = cl->next_at;
        }
        if (cl->state == RTWS_CLIENT_OPEN && cl->qcount) {
            rtws__client_flush(cl);
            if (cl->qcount && now + ctx->cfg.timer_ms < *next) *next = now + ctx->cfg.timer_ms;
        }
        if (cl->state == RTWS_CLIENT_OPEN && cl->wake_at_ && cl->wake_) {
            if (now >= cl->wake_at_) {
                cl->wake_at_ = 0;
                cl->wake_(cl, now, cl->cfg.user); /* may set the next one */
            }
            if (cl->wake_at_ && cl->wake_at_ < *next) *next = cl->wake_at_;
        }
        if (cl->qcount && cl->next_expire && now >= cl->next_expire) rtws__client_expire(cl, now);
        if (cl->qcount && cl->next_expire && cl->next_expire < *next) *next = cl->next_expire;
    }
}

RTWS_API rtws_client *rtws_client_new(rtws_ctx *ctx, const rtws_client_config *cfg,
                                      uint64_t now_ms, rtws_err *err) {
    rtws_client *cl;
    size_t ul;
    rtws_err dummy;
    if (!err) err = &dummy;
    if (!cfg || !cfg->url) {
        *err = RTWS_ERR_INVALID;
        return NULL;
    }
    ul = strlen(cfg->url);
    cl = (rtws_client *)rtws__alloc(&ctx->cfg.conn.allocator, sizeof *cl + ul + 1);
    if (!cl) {
        *err = RTWS_ERR_NOMEM;
        return NULL;
    }
    memset(cl, 0, sizeof *cl);
    cl->cfg = *cfg;
    cl->cfg.queue_max_msgs = RTWS__DEF(cl->cfg.queue_max_msgs, (size_t)1000);
    cl->cfg.queue_max_bytes = RTWS__DEF(cl->cfg.queue_max_bytes, (size_t)1 << 20);
    cl->ctx = ctx;
    cl->url = (char *)(cl + 1);
    memcpy(cl->url, cfg->url, ul + 1);
    cl->cfg.url = cl->url;
    cl->cur_url = cl->url;
    cl->cur_opts = cl->cfg.opts;
    cl->next = ctx->clients;
    ctx->clients = cl;
    rtws__begin(ctx, now_ms);
    rtws__client_attempt(cl, ctx->now);
    rtws__end(ctx);
    if (cl->state == RTWS_CLIENT_FAILED && cl->last_error == RTWS_ERR_URL) {
        *err = RTWS_ERR_URL;
        rtws_client_free(cl);
        return NULL;
    }
    *err = RTWS_OK;
    return cl;
}

static rtws_err rtws__client_send(rtws_client *cl, rtws_opcode op, const void *data, size_t len,
                                  uint32_t ttl_ms) {
    size_t rec;
    rtws__qmsg m;
    uint32_t st = 0;
    if (cl->state == RTWS_CLIENT_CLOSED || cl->state == RTWS_CLIENT_FAILED ||
        cl->state == RTWS_CLIENT_CLOSING)
        return RTWS_ERR_CLOSED;
    if ((op != RTWS_OP_TEXT && op != RTWS_OP_BINARY) || (len && !data)) return RTWS_ERR_INVALID;
    if (cl->state == RTWS_CLIENT_OPEN && cl->conn && !cl->qcount) {
        rtws_err e = rtws_conn_send(cl->conn, op, data, len);
        if (e != RTWS_ERR_CLOSED) return e;
    }
    if (op == RTWS_OP_TEXT &&
        (rtws_utf8_validate(&st, (const uint8_t *)data, len, NULL) != RTWS_OK || st))
        return RTWS_ERR_UTF8;
    if (len > UINT32_MAX || len > cl->cfg.queue_max_bytes) return RTWS_ERR_TOO_BIG;
    while (cl->qcount >= cl->cfg.queue_max_msgs || cl->qbytes + len > cl->cfg.queue_max_bytes) {
        if (!cl->cfg.queue_drop_oldest) return RTWS_ERR_LIMIT;
        rtws__client_drop(cl, rtws__qfront(cl), RTWS_ERR_LIMIT);
        rtws__qpop(cl);
    }
    rec = rtws__qrec(len);
    if (cl->qcap - cl->qend < rec) {
        size_t live = cl->qend - cl->qhead;
        if (cl->qhead) { /* slide the live records to the front first */
            memmove(cl->q, cl->q + cl->qhead, live);
            cl->qhead = 0;
            cl->qend = live;
        }
        if (cl->qcap - cl->qend < rec) {
            void *nq = cl->q;
            if (rtws__grow(&cl->ctx->cfg.conn.allocator, &nq, &cl->qcap,
                           RTWS__MAX(cl->qend + rec, 4096u), 1, SIZE_MAX) != RTWS_OK)
                return RTWS_ERR_NOMEM;
            cl->q = (uint8_t *)nq;
        }
    }
    memset(&m, 0, sizeof m);
    m.len = (uint32_t)len;
    m.op = (uint8_t)op;
    m.expire = ttl_ms ? cl->ctx->now + ttl_ms : 0;
    memcpy(cl->q + cl->qend, &m, sizeof m);
    if (len) memcpy(cl->q + cl->qend + sizeof m, data, len);
    cl->qend += rec;
    cl->qcount++;
    cl->qbytes += len;
    if (m.expire && (!cl->next_expire || m.expire < cl->next_expire)) cl->next_expire = m.expire;
    if (m.expire && cl->ctx->next_scan > m.expire) cl->ctx->next_scan = m.expire;
    return RTWS_OK;
}

RTWS_API rtws_err rtws_client_send(rtws_client *cl, rtws_opcode op, const void *data, size_t len,
                                   uint32_t ttl_ms) {
    rtws_err e;
    if (cl->dead) return RTWS_ERR_CLOSED;
    rtws__begin(cl->ctx, cl->ctx->now); /* DROPPED events may fire: guard frees */
    e = rtws__client_send(cl, op, data, len, ttl_ms);
    rtws__end(cl->ctx);
    return e;
}

static rtws_err rtws__client_close(rtws_client *cl, unsigned code, const char *reason) {
    if (cl->state == RTWS_CLIENT_CLOSED || cl->state == RTWS_CLIENT_CLOSING) return RTWS_ERR_CLOSED;
    if (cl->state == RTWS_CLIENT_OPEN && cl->conn) {
        rtws_err e = rtws_conn_close(cl->conn, code, reason);
        if (e != RTWS_OK) return e;
        rtws__client_state(cl, RTWS_CLIENT_CLOSING, 0);
        return RTWS_OK;
    }
    if (cl->conn) { /* an attempt under way: abandon it */
        rtws_conn_set_handler(cl->conn, NULL, NULL);
        rtws_conn_close(cl->conn, 0, NULL);
        cl->conn = NULL;
    }
    rtws__client_state(cl, RTWS_CLIENT_CLOSED, 0);
    return RTWS_OK;
}

RTWS_API rtws_err rtws_client_close(rtws_client *cl, unsigned code, const char *reason) {
    rtws_err e;
    if (cl->dead) return RTWS_ERR_CLOSED;
    rtws__begin(cl->ctx, cl->ctx->now);
    e = rtws__client_close(cl, code, reason);
    rtws__end(cl->ctx);
    return e;
}

RTWS_API void rtws_client_clear_queue(rtws_client *cl) {
    rtws__qmsg *m;
    rtws__begin(cl->ctx, cl->ctx->now);
    while ((m = rtws__qfront(cl)) != NULL) {
        rtws__client_drop(cl, m, RTWS_ERR_CLOSED);
        rtws__qpop(cl);
    }
    rtws__end(cl->ctx);
}

RTWS_API size_t rtws_client_get_queued(const rtws_client *cl, size_t *bytes) {
    if (bytes) *bytes = cl->qbytes;
    return cl->qcount;
}

static rtws__restore **rtws__restore_find(rtws_client *cl, const char *key, size_t kl) {
    rtws__restore **pp;
    for (pp = &cl->restore; *pp; pp = &(*pp)->next)
        if ((*pp)->keylen == kl && !memcmp(*pp + 1, key, kl)) return pp;
    return NULL;
}

RTWS_API rtws_err rtws_client_set_restore(rtws_client *cl, const char *key, rtws_opcode op,
                                          const void *data, size_t len) {
    rtws__restore **pp, *m, *old;
    size_t kl = key ? strlen(key) : 0, held;
    rtws_err e = RTWS_OK;
    if (cl->dead) return RTWS_ERR_CLOSED;
    if (!kl || kl > 255 || (op != RTWS_OP_TEXT && op != RTWS_OP_BINARY) || (len && !data))
        return RTWS_ERR_INVALID;
    pp = rtws__restore_find(cl, key, kl);
    old = pp ? *pp : NULL;
    held = cl->restore_bytes - (old ? old->len : 0);
    if (len > cl->cfg.queue_max_bytes - held) return RTWS_ERR_LIMIT;
    m = (rtws__restore *)rtws__alloc(&cl->ctx->cfg.conn.allocator, sizeof *m + kl + len);
    if (!m) return RTWS_ERR_NOMEM;
    m->keylen = kl;
    m->len = len;
    m->op = (uint8_t)op;
    memcpy(m + 1, key, kl);
    if (len) memcpy((uint8_t *)(m + 1) + kl, data, len);
    rtws__begin(cl->ctx, cl->ctx->now); /* cl is not released before rtws__end */
    if (cl->state == RTWS_CLIENT_OPEN && cl->conn) e = rtws_conn_send(cl->conn, op, data, len);
    if (e != RTWS_OK || cl->dead) {
        rtws__free(&cl->ctx->cfg.conn.allocator, m);
        if (e == RTWS_OK) e = RTWS_ERR_CLOSED;
    } else if ((pp = rtws__restore_find(cl, key, kl)) != NULL) { /* in place: its turn stays */
        old = *pp;
        m->next = old->next;
        *pp = m;
        cl->restore_bytes += len - old->len;
        rtws__free(&cl->ctx->cfg.conn.allocator, old);
    } else {
        m->next = NULL;
        for (pp = &cl->restore; *pp; pp = &(*pp)->next) {
        }
        *pp = m;
        cl->restore_bytes += len;
    }
    rtws__end(cl->ctx);
    return e;
}

RTWS_API rtws_err rtws_client_clear_restore(rtws_client *cl, const char *key) {
    rtws__restore **pp, *m;
    if (cl->dead || !key || !(pp = rtws__restore_find(cl, key, strlen(key)))) return RTWS_ERR_INVALID;
    m = *pp;
    *pp = m->next;
    cl->restore_bytes -= m->len;
    rtws__free(&cl->ctx->cfg.conn.allocator, m);
    return RTWS_OK;
}

RTWS_API rtws_client_state rtws_client_get_state(const rtws_client *cl) { return cl->state; }
RTWS_API rtws_conn *rtws_client_get_conn(const rtws_client *cl) { return cl->conn; }

RTWS_API void rtws_client_get_stats(const rtws_client *cl, rtws_client_stats *st, uint64_t now_ms) {
    memset(st, 0, sizeof *st);
    st->total = cl->done;
    if (cl->conn) {
        rtws_conn_stats live;
        rtws_conn_get_stats(cl->conn, &live);
        rtws__stats_add(&st->total, &live);
        st->total.opened_at_ms = live.opened_at_ms;
        st->total.last_msg_ms = live.last_msg_ms;
    }
    st->reconnects = cl->reconnects;
    st->restarts = cl->restarts;
    st->connected_since_ms = cl->opened ? cl->open_at : 0;
    st->uptime_ms = cl->uptime + (cl->opened && now_ms > cl->open_at ? now_ms - cl->open_at : 0);
    st->last_error = cl->last_error;
    st->last_close_code = cl->last_code;
}

static void rtws__client_release(rtws_client *cl) {
    rtws_ctx *ctx = cl->ctx;
    rtws_client **pp;
    for (pp = &ctx->clients; *pp; pp = &(*pp)->next)
        if (*pp == cl) {
            *pp = cl->next;
            break;
        }
    while (cl->restore) {
        rtws__restore *m = cl->restore;
        cl->restore = m->next;
        rtws__free(&ctx->cfg.conn.allocator, m);
    }
    rtws__free(&ctx->cfg.conn.allocator, cl->q);
    rtws__free(&ctx->cfg.conn.allocator, cl->url_buf);
    rtws__free(&ctx->cfg.conn.allocator, cl->opts_buf);
    rtws__free(&ctx->cfg.conn.allocator, cl);
}

static void rtws__clients_sweep(rtws_ctx *ctx) {
    rtws_client **pp = &ctx->clients;
    while (*pp) {
        rtws_client *cl = *pp;
        if (cl->dead) rtws__client_release(cl);
        else pp = &cl->next;
    }
}

RTWS_API void rtws_client_free(rtws_client *cl) {
    if (cl->dead) return;
    if (cl->conn) {
        rtws_conn_set_handler(cl->conn, NULL, NULL);
        if (rtws_conn_get_state(cl->conn) == RTWS_STATE_OPEN)
            rtws_conn_close(cl->conn, RTWS_CLOSE_GOING_AWAY, NULL);
        else
            rtws_conn_close(cl->conn, 0, NULL);
        cl->conn = NULL;
    }
    cl->state = RTWS_CLIENT_CLOSED;
    cl->cfg.on_event = NULL;
    if (cl->ctx->in_call) {
        cl->dead = 1; /* inside a callback: the context releases it on the way out */
        cl->ctx->ndead++;
        return;
    }
    rtws__client_release(cl);
}

/* Lets go of the live connection or attempt: its counters join the totals,
   an open one gets a 1000 close that ends in the background. */
static void rtws__client_detach(rtws_client *cl, uint64_t now) {
    rtws_conn *c = cl->conn;
    if (c) {
        rtws_conn_stats st;
        rtws_conn_get_stats(c, &st);
        rtws__stats_add(&cl->done, &st);
        rtws_conn_set_handler(c, NULL, NULL);
        cl->conn = NULL;
        if (rtws_conn_get_state(c) == RTWS_STATE_OPEN) rtws_conn_close(c, RTWS_CLOSE_NORMAL, "restart");
        else rtws_conn_close(c, 0, NULL);
    }
    if (cl->opened && now > cl->open_at) cl->uptime += now - cl->open_at;
    cl->opened = 0;
    cl->open_at = 0;
}

RTWS_API rtws_err rtws_client_restart(rtws_client *cl, uint64_t now_ms) {
    rtws_err e = RTWS_OK;
    if (cl->dead) return RTWS_ERR_CLOSED;
    rtws__begin(cl->ctx, now_ms);
    rtws__client_detach(cl, cl->ctx->now);
    cl->attempt = 0; /* a fresh start: the schedule and max_attempts start over */
    cl->restarts++;
    cl->reconnects++;
    cl->cur_url = cl->url;
    cl->cur_opts = cl->cfg.opts;
    rtws__client_attempt(cl, cl->ctx->now);
    if (cl->state == RTWS_CLIENT_FAILED && cl->last_error) e = cl->last_error;
    rtws__end(cl->ctx);
    return e;
}

RTWS_API rtws_err rtws_client_set_url(rtws_client *cl, const char *url) {
    rtws_url u;
    size_t n;
    char *b;
    if (cl->dead) return RTWS_ERR_CLOSED;
    if (!url) return RTWS_ERR_INVALID;
    n = strlen(url);
    if (rtws_url_parse(url, n, &u, NULL) != RTWS_OK ||
        !(rtws__str_ieq(u.scheme, "ws") || rtws__str_ieq(u.scheme, "wss")))
        return RTWS_ERR_URL;
    b = (char *)rtws__alloc(&cl->ctx->cfg.conn.allocator, n + 1);
    if (!b) return RTWS_ERR_NOMEM;
    memcpy(b, url, n + 1);
    rtws__free(&cl->ctx->cfg.conn.allocator, cl->url_buf);
    cl->url = cl->url_buf = b;
    cl->cfg.url = cl->url;
    cl->cur_url = cl->url; /* never left pointing at the old copy */
    return RTWS_OK;
}

RTWS_API rtws_err rtws_client_set_opts(rtws_client *cl, const rtws_client_opts *opts) {
    rtws_client_opts o;
    const char **f[9];
    size_t i, total = 0;
    char *b = NULL, *w;
    if (cl->dead) return RTWS_ERR_CLOSED;
    if (opts) o = *opts;
    else memset(&o, 0, sizeof o);
    f[0] = &o.host, f[1] = &o.path, f[2] = &o.protocols;
    f[3] = &o.origin, f[4] = &o.authorization, f[5] = &o.extra_headers;
    f[6] = &o.tunnel, f[7] = &o.proxy_authorization, f[8] = &o.proxy;
    for (i = 0; i < 9; i++)
        if (*f[i]) total += strlen(*f[i]) + 1;
    if (total && !(b = (char *)rtws__alloc(&cl->ctx->cfg.conn.allocator, total)))
        return RTWS_ERR_NOMEM;
    for (w = b, i = 0; i < 9; i++) /* one block: every string copied after the last */
        if (*f[i]) {
            size_t n = strlen(*f[i]) + 1;
            memcpy(w, *f[i], n);
            *f[i] = w;
            w += n;
        }
    rtws__free(&cl->ctx->cfg.conn.allocator, cl->opts_buf);
    cl->opts_buf = b;
    cl->cfg.opts = o;
    cl->cur_opts = o;
    return RTWS_OK;
}

/* rtws_ctx_free: the clients go before the sockets. */
static void rtws__clients_free(rtws_ctx *ctx) {
    while (ctx->clients) {
        ctx->clients->dead = 0;
        rtws_client_free(ctx->clients);
    }
}
#else /* RTWS_NO_CLIENT: ctx->clients stays NULL */
static void rtws__clients_timers(rtws_ctx *ctx, uint64_t now, uint64_t *next) {
    (void)ctx, (void)now, (void)next;
}
static void rtws__clients_sweep(rtws_ctx *ctx) { (void)ctx; }
static void rtws__clients_free(rtws_ctx *ctx) { (void)ctx; }
#endif /* !RTWS_NO_CLIENT */

#if defined(_WIN32)
/* WSAPoll does not report a failed connect (Windows before 10 version 2004
   never flags the socket): every timer pass asks each connecting socket for
   its SO_ERROR and hands a failure to rtws__ready as poll would have.
   Nonzero while a connect is still under way: the passes then come every
   timer_ms. */
static int rtws__win_connects(rtws_ctx *ctx, uint64_t now) {
    size_t i;
    int pending = 0;
    for (i = 0; i < ctx->nsocks; i++) {
        rtws__sock *s = ctx->socks[i];
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (!s->connecting || s->dead || s->fd < 0) continue;
#if !defined(RTWS_NO_CLIENT)
        if (s->kind & RTWS__SOCK_ROUTED) { /* the held attempts of a race */
            rtws__route *r = rtws__route_of(s);
            unsigned k = r->nrace;
            while (k-- > 0 && !s->dead && s->connecting) {
                if (k >= r->nrace) continue;
                soerr = 0;
                len = sizeof soerr;
                if (rtws__os_getsockopt(r->race_fd[k], SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr)
                    rtws__ready(ctx, r->race_fd[k], 0, 1, now);
            }
            if (!s->connecting || s->dead || s->fd < 0) continue;
            soerr = 0;
            len = sizeof soerr;
        }
#endif
        if (rtws__os_getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr)
            rtws__ready(ctx, s->fd, 0, 1, now);
        else
            pending = 1;
    }
    return pending;
}
#endif

/* Runs every connection's timers at most every timer_ms, or sooner when a
   deadline is due. */
static void rtws__timers(rtws_ctx *ctx, uint64_t now) {
    size_t i;
    uint64_t next = UINT64_MAX;
    if (now < ctx->next_scan) return;
    rtws__flush_dirty(ctx, now); /* queued output first: the pass sees settled sockets */
    for (i = 0; i < ctx->nsocks; i++) {
        rtws__sock *s = ctx->socks[i];
        uint64_t d;
        if (s->listener || s->dead || (s->kind & RTWS__SOCK_RAW)) continue;
        if (s->lingering) {
            if (now >= s->conn.priv_.close_deadline) rtws__kill(s);
            else if (s->conn.priv_.close_deadline < next) next = s->conn.priv_.close_deadline;
            continue;
        }
#if !defined(RTWS_NO_CLIENT)
        if (s->connecting && (s->kind & RTWS__SOCK_ROUTED)) {
            rtws__route_timers(s, now); /* resolution tries, the next address */
            if (s->dead) continue;
        }
#endif
        if (rtws_conn_get_deadline(&s->conn) <= now) {
            rtws_conn_run_timers(&s->conn, now);
            rtws__flush_dirty(ctx, now); /* a heartbeat ping goes out now, and its block back */
        }
        rtws__settle(s, now);
        /* buffers go back after trim_ms without input and a whole pass
           without output (a subscriber that only receives broadcasts keeps
           its output buffers while they flow) */
        if (rtws__holds_buffers(&s->conn) && s->conn.priv_.last_rx + ctx->cfg.trim_ms <= now) {
            if (s->conn.priv_.cbits & RTWS__C_WROTE) s->conn.priv_.cbits &= (uint8_t)~RTWS__C_WROTE;
            else rtws_conn_trim(&s->conn);
        }
        d = rtws__sock_deadline(s);
        if (d < next) next = d;
    }
    if (ctx->pool.nblk) { /* the pool gives its blocks back after trim_ms unused */
        if (ctx->pool.uses != ctx->pool_uses) {
            ctx->pool_uses = ctx->pool.uses;
            ctx->pool_at = now;
        }
        if (now >= ctx->pool_at + ctx->cfg.trim_ms) rtws__pool_trim(&ctx->pool);
        else if (ctx->pool_at + ctx->cfg.trim_ms < next) next = ctx->pool_at + ctx->cfg.trim_ms;
    }
    if (ctx->big && !ctx->scratch_busy) { /* the big scratch buffer too */
        if (now >= ctx->big_at + ctx->cfg.trim_ms) {
            rtws__free(&ctx->pool.alloc, ctx->big);
            ctx->pool.released += ctx->big_cap;
            ctx->big = NULL;
            ctx->big_cap = 0;
        } else if (ctx->big_at + ctx->cfg.trim_ms < next) {
            next = ctx->big_at + ctx->cfg.trim_ms;
        }
    }
    /* the pool and the big scratch buffer are empty (trim_ms without big
       buffers in use) after big blocks went back: the burst is over, and the C
       library is asked to give the freed pages back (glibc keeps them), at
       most once per trim_ms */
    if (ctx->pool.released >= RTWS__TRIM_RELEASED && !ctx->pool.nblk && !ctx->big) {
        if (now >= ctx->mtrim_at + ctx->cfg.trim_ms) {
            ctx->pool.released = 0;
            ctx->mtrim_at = now;
#if defined(RTWS__MALLOC_TRIM)
            if (!ctx->pool.alloc.alloc) { /* the C library's allocator */
                RTWS__MALLOC_TRIM();
                ctx->mtrims++;
            }
#endif
        } else if (ctx->mtrim_at + ctx->cfg.trim_ms < next) { /* held back: ask then */
            next = ctx->mtrim_at + ctx->cfg.trim_ms;
        }
    }
    rtws__clients_timers(ctx, now, &next);
    rtws__streams_timers(ctx, now, &next);
    if (ctx->cfg.on_tick) {
        ctx->cfg.on_tick(ctx, now, ctx->cfg.tick_user);
        if (now + 1000 < next) next = now + 1000; /* the hook's own timers, at 1 s */
    }
    /* sleep until the earliest deadline, but serve a crowd of them in batches:
       no deadline is kept more than timer_ms late, and idle sockets cost no
       wake-ups at all */
#if defined(_WIN32)
    if (rtws__win_connects(ctx, now) && now + ctx->cfg.timer_ms < next)
        next = now + ctx->cfg.timer_ms;
#endif
    if (next < now + ctx->cfg.timer_ms) next = now + ctx->cfg.timer_ms;
    ctx->next_scan = next;
}

RTWS_API void rtws_ctx_run_timers(rtws_ctx *ctx, uint64_t now_ms) {
    rtws__begin(ctx, now_ms);
    rtws__post_run(ctx);
    rtws__timers(ctx, ctx->now);
    rtws__end(ctx);
}

RTWS_API int rtws_ctx_get_timeout_ms(rtws_ctx *ctx, uint64_t now_ms) {
    rtws__begin(ctx, now_ms);
    rtws__end(ctx);
    if (ctx->dirty) return 0;
    return rtws_time_until_ms(ctx->next_scan, ctx->now);
}

RTWS_API void rtws_ctx_handle_readable(rtws_ctx *ctx, int fd, uint64_t now_ms) {
    rtws__begin(ctx, now_ms);
    rtws__ready(ctx, fd, 1, 0, ctx->now);
    rtws__end(ctx);
}

RTWS_API void rtws_ctx_handle_writable(rtws_ctx *ctx, int fd, uint64_t now_ms) {
    rtws__begin(ctx, now_ms);
    rtws__ready(ctx, fd, 0, 1, ctx->now);
    rtws__end(ctx);
}

RTWS_API int rtws_ctx_fill_pollfds(rtws_ctx *ctx, struct pollfd *fds, int cap) {
    size_t i;
    int n = 0;
    rtws__begin(ctx, ctx->now);
    rtws__end(ctx);
    for (i = 0; i < ctx->nsocks; i++) {
        rtws__sock *s = ctx->socks[i];
        unsigned w = s->listener ? (unsigned)RTWS_WANT_READ : s->watched;
        if (n < cap) {
            fds[n].fd = RTWS__PFD_FD(s->fd);
            fds[n].events = (short)((w & RTWS_WANT_READ ? POLLIN : 0) |
                                    (w & RTWS_WANT_WRITE ? POLLOUT : 0));
            fds[n].revents = 0;
        }
        n++;
#if !defined(RTWS_NO_CLIENT)
        if (s->connecting && (s->kind & RTWS__SOCK_ROUTED)) { /* a race's held attempts */
            const rtws__route *r = rtws__route_of(s);
            unsigned k;
            for (k = 0; k < r->nrace; k++, n++) {
                if (n >= cap) continue;
                w = r->race_w[k];
                fds[n].fd = RTWS__PFD_FD(r->race_fd[k]);
                fds[n].events = (short)((w & RTWS_WANT_READ ? POLLIN : 0) |
                                        (w & RTWS_WANT_WRITE ? POLLOUT : 0));
                fds[n].revents = 0;
            }
        }
#endif
    }
    return n;
}

RTWS_API void rtws_ctx_service(rtws_ctx *ctx, const struct pollfd *fds, int n, uint64_t now_ms) {
    int i;
    rtws__begin(ctx, now_ms);
    rtws__post_run(ctx);
    for (i = 0; i < n; i++) {
        short r = fds[i].revents;
        if (!r) continue;
        rtws__ready(ctx, RTWS__PFD_INT(fds[i].fd), (r & (POLLIN | POLLHUP | POLLERR)) != 0,
                    (r & (POLLOUT | POLLERR)) != 0, ctx->now);
    }
    rtws__timers(ctx, ctx->now);
    rtws__end(ctx);
}

RTWS_API int rtws_ctx_run_once(rtws_ctx *ctx, int max_ms) {
    int n, ms, r;
    uint64_t now = rtws_time_now_ms();
#ifdef RTWS__EPOLL
    if (!ctx->cfg.on_socket && !ctx->epoll_on) {
        size_t i;
        ctx->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (ctx->epfd >= 0) {
            ctx->epoll_on = 1;
            for (i = 0; i < ctx->nsocks; i++) {
                rtws__sock *s = ctx->socks[i];
                if (s->watched) rtws__epoll_set(ctx, s->fd, 0, s->watched);
#if !defined(RTWS_NO_CLIENT)
                if (s->connecting && (s->kind & RTWS__SOCK_ROUTED)) {
                    const rtws__route *rt = rtws__route_of(s);
                    unsigned k;
                    for (k = 0; k < rt->nrace; k++)
                        if (rt->race_w[k]) rtws__epoll_set(ctx, rt->race_fd[k], 0, rt->race_w[k]);
                }
#endif
            }
        }
    }
    if (ctx->epoll_on) {
        struct epoll_event evs[64];
        int i;
        ms = rtws_ctx_get_timeout_ms(ctx, now); /* also writes what callbacks queued */
        if (ms < 0 || (max_ms >= 0 && ms > max_ms)) ms = max_ms;
        r = epoll_wait(ctx->epfd, evs, 64, ms);
        if (r < 0 && errno != EINTR) return -1;
        rtws__begin(ctx, rtws_time_now_ms());
        rtws__post_run(ctx);
        for (i = 0; i < r; i++) {
            uint32_t e = evs[i].events;
            rtws__ready(ctx, evs[i].data.fd, (e & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0,
                        (e & (EPOLLOUT | EPOLLERR)) != 0, ctx->now);
        }
        rtws__timers(ctx, ctx->now);
        rtws__end(ctx);
        return (int)ctx->nsocks - (ctx->post ? 1 : 0);
    }
#endif
    n = rtws_ctx_fill_pollfds(ctx, ctx->pfds, (int)ctx->cappfds);
    if ((size_t)n > ctx->cappfds) {
        void *np = ctx->pfds;
        if (rtws__grow(&ctx->cfg.conn.allocator, &np, &ctx->cappfds, (size_t)n + 64,
                       sizeof(struct pollfd), (size_t)0x7fffffff) != RTWS_OK)
            return -1;
        ctx->pfds = (struct pollfd *)np;
        n = rtws_ctx_fill_pollfds(ctx, ctx->pfds, (int)ctx->cappfds);
    }
    ms = rtws_ctx_get_timeout_ms(ctx, now);
    if (ms < 0 || (max_ms >= 0 && ms > max_ms)) ms = max_ms;
#if defined(_WIN32)
    if (n == 0) { /* WSAPoll refuses an empty set */
        Sleep(ms < 0 ? INFINITE : (DWORD)ms);
        r = 0;
    } else
#endif
    r = rtws__os_poll(ctx->pfds, n, ms);
    if (r < 0 && RTWS__SOCKERR() != RTWS__EINTR) return -1;
    rtws_ctx_service(ctx, ctx->pfds, r > 0 ? n : 0, rtws_time_now_ms());
    return (int)ctx->nsocks - (ctx->post ? 1 : 0);
}

RTWS_API void rtws_ctx_shutdown(rtws_ctx *ctx, unsigned code, const char *reason, uint64_t now_ms) {
    size_t i;
    rtws__begin(ctx, now_ms);
    ctx->shutting_down = 1;
    for (i = 0; i < ctx->nsocks; i++) {
        rtws__sock *s = ctx->socks[i];
        if (s->kind & RTWS__SOCK_RAW) continue; /* streams end when their owners say */
        if (s->listener) {
            if (!(s->kind & RTWS__SOCK_WAKER)) rtws__kill(s); /* posting stays on until rtws_ctx_free */
            continue;
        }
        s->conn.priv_.now = ctx->now > s->conn.priv_.now ? ctx->now : s->conn.priv_.now;
        rtws_conn_close(&s->conn, code, reason);
        rtws__sock_notify(&s->conn);
    }
    ctx->next_scan = 0;
    rtws__end(ctx);
}

RTWS_API void rtws_ctx_stop(rtws_ctx *ctx) {
#if !defined(RTWS_NO_THREADS)
    RTWS__ASTORE(&ctx->stop_asked, 1);
    if (ctx->post) rtws__wake_signal(ctx->post->wake[1]); /* set at rtws_ctx_new, if ever */
#else
    ctx->stop_asked = 1;
#endif
}

RTWS_API int rtws_ctx_run(rtws_ctx *ctx, int drain_ms) {
    uint64_t end;
    while (!ctx->stop_asked)
        if (rtws_ctx_run_once(ctx, 1000) < 0) return -1;
    ctx->stop_asked = 0;
    end = rtws_time_now_ms() + (uint64_t)(drain_ms > 0 ? drain_ms : 0);
    rtws_ctx_shutdown(ctx, RTWS_CLOSE_GOING_AWAY, "going away", rtws_time_now_ms());
    while (rtws_ctx_get_conn_count(ctx) > 0 && rtws_time_now_ms() < end)
        if (rtws_ctx_run_once(ctx, rtws_time_until_ms(end, rtws_time_now_ms())) < 0) return -1;
    return 0;
}

#if !defined(RTWS_NO_SERVER)
static rtws_ctx *volatile rtws__served; /* rtws_ctx_serve's, for its signal handler */
static void rtws__serve_signal(int sig) {
    rtws_ctx *ctx = rtws__served;
    (void)sig;
    if (ctx) rtws_ctx_stop(ctx);
}

RTWS_API rtws_err rtws_ctx_serve(rtws_ctx *ctx, const char *host, int port, int drain_ms) {
    void (*old_int)(int), (*old_term)(int);
#if defined(SIGPIPE)
    void (*old_pipe)(int);
#endif
    int bound = 0, r;
    rtws_err e = rtws_ctx_listen(ctx, host, port, &bound);
    if (e != RTWS_OK) {
        fprintf(stderr, "cannot listen on %s:%d: %s\n", host ? host : "", port, rtws_err_str(e));
        return e;
    }
    rtws__served = ctx;
    old_int = signal(SIGINT, rtws__serve_signal);
    old_term = signal(SIGTERM, rtws__serve_signal);
#if defined(SIGPIPE)
    old_pipe = signal(SIGPIPE, SIG_IGN);
#endif
    printf("listening on %s:%d\n", host && host[0] ? host : "*", bound);
    fflush(stdout);
    r = rtws_ctx_run(ctx, drain_ms);
    signal(SIGINT, old_int == SIG_ERR ? SIG_DFL : old_int);
    signal(SIGTERM, old_term == SIG_ERR ? SIG_DFL : old_term);
#if defined(SIGPIPE)
    signal(SIGPIPE, old_pipe == SIG_ERR ? SIG_DFL : old_pipe);
#endif
    if (rtws__served == ctx) rtws__served = NULL;
    return r < 0 ? RTWS_ERR_IO : RTWS_OK;
}
#endif /* !RTWS_NO_SERVER */

RTWS_API size_t rtws_ctx_get_conn_count(const rtws_ctx *ctx) { return ctx->nconns - ctx->nhttp; }

RTWS_API size_t rtws_ctx_get_ws_count(const rtws_ctx *ctx) {
    size_t i, n = 0;
    for (i = 0; i < ctx->nsocks; i++) {
        rtws_conn_state st = (rtws_conn_state)ctx->socks[i]->conn.priv_.state;
        if (!ctx->socks[i]->listener && (st == RTWS_STATE_OPEN || st == RTWS_STATE_CLOSING)) n++;
    }
    return n;
}

RTWS_API void rtws_ctx_get_stats(const rtws_ctx *ctx, rtws_ctx_stats *st) {
    size_t i;
    *st = ctx->totals;
    st->active = ctx->nconns - ctx->nhttp;
    for (i = 0; i < ctx->nsocks; i++) {
        const rtws_conn *c = &ctx->socks[i]->conn;
        if (ctx->socks[i]->listener) continue;
        st->msgs_in += c->priv_.msgs_in;
        st->msgs_out += c->priv_.msgs_out;
        st->bytes_in += c->priv_.bytes_in;
        st->bytes_out += c->priv_.bytes_out;
    }
    st->memory_used = ctx->budget.used;
    st->memory_peak = ctx->budget.peak;
    st->memory_budget = ctx->budget.limit;
}

RTWS_API rtws_budget *rtws_ctx_get_budget(rtws_ctx *ctx) { return &ctx->budget; }

RTWS_API void rtws_ctx_free(rtws_ctx *ctx) {
    const rtws_allocator *a;
    rtws_allocator copy;
    if (!ctx) return;
    a = &ctx->cfg.conn.allocator;
    copy = *a;
    rtws__post_free(ctx); /* what is still queued is reported dropped */
    rtws__clients_free(ctx);
    rtws__streams_free(ctx);
    while (ctx->nsocks) rtws__destroy(ctx->socks[ctx->nsocks - 1]);
    rtws__pool_trim(&ctx->pool);
    if (ctx->tls_client && ctx->tls_tp->client_free) ctx->tls_tp->client_free(ctx->tls_client);
    rtws__free(&copy, ctx->socks);
    rtws__free(&copy, ctx->byfd);
    rtws__free(&copy, ctx->pfds);
    rtws__free(&copy, ctx->scratch);
    rtws__free(&copy, ctx->big);
#ifdef RTWS__EPOLL
    if (ctx->epoll_on) close(ctx->epfd);
#endif
    rtws__free(&copy, ctx);
#if defined(_WIN32)
    WSACleanup();
#endif
}

RTWS_API int rtws_conn_get_fd(const rtws_conn *c) {
    return (c->priv_.cbits & RTWS__C_NOTIFY) ? ((const rtws__sock *)c)->fd : -1;
}

RTWS_API uint64_t rtws_conn_get_id(const rtws_conn *c) {
    const rtws__sock *s = (const rtws__sock *)c;
    return (c->priv_.cbits & RTWS__C_NOTIFY) && !s->listener ? rtws__post_id(s->ctx, s->fd) : 0;
}

RTWS_API rtws_ctx *rtws_conn_get_ctx(const rtws_conn *c) {
    return (c->priv_.cbits & RTWS__C_NOTIFY) ? ((const rtws__sock *)c)->ctx : NULL;
}

RTWS_API unsigned rtws_conn_get_tls_version(const rtws_conn *c) {
    const rtws__sock *s = (const rtws__sock *)c;
    const rtws__xsock *x = (const rtws__xsock *)s;
    if (!(c->priv_.cbits & RTWS__C_NOTIFY) || !s->xport || s->listener || !x->tp->version) return 0;
    return x->tp->version(x->tp->state_size ? (const uint8_t *)s + RTWS__XSTATE : NULL);
}

RTWS_API size_t rtws_conn_get_peer(const rtws_conn *c, char *buf, size_t cap) {
    const rtws__sock *s = (const rtws__sock *)c;
    char ip[INET6_ADDRSTRLEN];
    int n;
    if (!cap) return 0;
    buf[0] = '\0';
    if (!(c->priv_.cbits & RTWS__C_NOTIFY)) return 0;
    if (s->peer.sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &s->peer.in6.sin6_addr, ip, sizeof ip);
        n = snprintf(buf, cap, "[%s]:%u", ip, (unsigned)ntohs(s->peer.in6.sin6_port));
    } else {
        inet_ntop(AF_INET, &s->peer.in4.sin_addr, ip, sizeof ip);
        n = snprintf(buf, cap, "%s:%u", ip, (unsigned)ntohs(s->peer.in4.sin_port));
    }
    return n < 0 ? 0 : (size_t)n;
}


#if !defined(RTWS_NO_CLIENT)
/* ---- raw streams (rtws_stream): sockets whose bytes their owner handles ---- */

struct rtws_stream {
    rtws_stream_config cfg;
    rtws_ctx *ctx;
    rtws_stream *next;         /* ctx->streams */
    rtws__sock *sock;          /* the connection under way or open, else NULL */
    uint8_t *out, *in;         /* output from ooff to olen; input, ilen bytes */
    size_t ocap, olen, ooff, icap, ilen;
    uint64_t timer_at;         /* TIMER event then (0: none) */
    uint64_t deadline;         /* connecting: connect_timeout_ms runs out then */
    int open, dead;            /* dead: freed inside a callback, released by the sweep */
    rtws__dns *dns;            /* the host name being resolved, else NULL */
    uint64_t attempt_at;       /* when the connect to the current address began */
};

static rtws__dns **rtws__stream_dns(rtws__sock *s) { return &RTWS__STREAM(s)->dns; }
static uint64_t *rtws__attempt_at(rtws__sock *s) {
    return s->kind & RTWS__SOCK_RAW ? &RTWS__STREAM(s)->attempt_at : &rtws__route_of(s)->attempt_at;
}

static void rtws__stream_emit(rtws_stream *st, rtws_stream_event *ev) {
    if (!st->dead) st->cfg.on_event(st, ev, st->cfg.user);
}

/* Lets go of the socket (closed by the sweep) and of the bytes buffered. */
static void rtws__stream_drop(rtws_stream *st) {
    rtws__sock *s = st->sock;
    if (st->dns) {
        rtws__free(&st->ctx->cfg.conn.allocator, st->dns->in);
        rtws__free(&st->ctx->cfg.conn.allocator, st->dns);
        st->dns = NULL;
    }
    if (!s) return;
    st->sock = NULL;
    st->open = 0;
    st->olen = st->ooff = st->ilen = 0;
    st->deadline = 0;
    RTWS__STREAM(s) = NULL;
    rtws__watch(s, 0);
    rtws__kill(s);
}

static void rtws__stream_fail_text(rtws_stream *st, rtws_err err, int detail, const char *text) {
    rtws_stream_event ev;
    rtws__stream_drop(st);
    memset(&ev, 0, sizeof ev);
    ev.type = RTWS_STREAM_EV_CLOSE;
    ev.now_ms = st->ctx->now;
    ev.err = err;
    ev.detail = detail;
    ev.detail_text = text;
    rtws__stream_emit(st, &ev);
}

static void rtws__stream_fail(rtws_stream *st, rtws_err err, int detail) {
    rtws__stream_fail_text(st, err, detail, NULL);
}

/* The connect of s's stream failed (its name did not resolve, or no address
   took): the CLOSE event says why. */
static void rtws__stream_resolve_fail(rtws__sock *s, rtws_err err, int detail, const char *text) {
    rtws__stream_fail_text(RTWS__STREAM(s), err, detail, text);
}

static void rtws__stream_settle(rtws__sock *s) {
    rtws_stream *st = RTWS__STREAM(s);
    unsigned want = (unsigned)RTWS_WANT_READ;
    if (s->dead || !st) return;
    if (st->ooff < st->olen) want |= (unsigned)RTWS_WANT_WRITE;
    rtws__watch(s, st->dns ? rtws__dns_want(s) : s->connecting ? (unsigned)RTWS_WANT_WRITE : want);
#if defined(_WIN32) /* a connect's failure is found by the pass (rtws__win_connects) */
    if (s->connecting && s->ctx->next_scan > s->ctx->now + s->ctx->cfg.timer_ms)
        s->ctx->next_scan = s->ctx->now + s->ctx->cfg.timer_ms;
#endif
}

/* Writes the queued output; 1 when the socket is full. */
static int rtws__stream_flush(rtws__sock *s) {
    rtws_stream *st = RTWS__STREAM(s);
    if (!st || s->connecting) return 0;
    while (st->ooff < st->olen) {
        rtws_iov v;
        int detail = 0;
        long w;
        v.base = st->out + st->ooff;
        v.len = st->olen - st->ooff;
        w = rtws__tcp_writev(NULL, s->fd, &v, 1, &detail);
        if (w == RTWS_IO_AGAIN) return 1;
        if (w < 0) {
            rtws__stream_fail(st, RTWS_ERR_IO, detail);
            return 0;
        }
        st->ooff += (size_t)w;
    }
    st->ooff = st->olen = 0;
    return 0;
}

static void rtws__stream_read(rtws_stream *st, rtws__sock *s, uint64_t now) {
    int budget = 8; /* reads per readiness, as for connections */
    while (budget-- > 0 && st->sock == s) {
        rtws_stream_event ev;
        long r;
        int detail = 0;
        if (st->icap - st->ilen < 4096) {
            void *nb = st->in;
            rtws_err e = st->ilen >= st->cfg.max_input ? RTWS_ERR_TOO_BIG
                         : rtws__grow(&st->ctx->cfg.conn.allocator, &nb, &st->icap,
                                      RTWS__MIN(st->ilen + 16384, st->cfg.max_input), 1,
                                      st->cfg.max_input);
            if (e != RTWS_OK) {
                rtws__stream_fail(st, e, 0);
                return;
            }
            st->in = (uint8_t *)nb;
        }
        r = rtws__tcp_read(NULL, s->fd, st->in + st->ilen, st->icap - st->ilen, &detail);
        if (r == RTWS_IO_AGAIN) return;
        if (r <= 0) {
            rtws__stream_fail(st, r == 0 ? RTWS_ERR_ABNORMAL : RTWS_ERR_IO, detail);
            return;
        }
        st->ilen += (size_t)r;
        memset(&ev, 0, sizeof ev);
        ev.type = RTWS_STREAM_EV_DATA;
        ev.now_ms = now;
        ev.data = st->in;
        ev.len = st->ilen;
        rtws__stream_emit(st, &ev);
        if (st->sock != s) return; /* closed inside: the input went with it */
        RTWS_ASSERT(ev.consumed <= ev.len);
        if (ev.consumed) {
            memmove(st->in, st->in + ev.consumed, st->ilen - ev.consumed);
            st->ilen -= ev.consumed;
        }
    }
}

static void rtws__stream_ready(rtws__sock *s, int readable, int writable, uint64_t now) {
    rtws_stream *st = RTWS__STREAM(s);
    if (!st) return;
    if (st->dns) { /* the name is being resolved */
        rtws__dns_ready(s, readable, writable, now);
        if (st->sock == s) rtws__stream_settle(s);
        return;
    }
    if (s->connecting) {
        rtws_stream_event ev;
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (!readable && !writable) return;
        if (rtws__os_getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) soerr = RTWS__SOCKERR();
        if (RTWS__INPROGRESS(soerr) || soerr == RTWS__EALREADY) return;
        if (soerr) {
            if (rtws__next_addr(s) == 0) s->connecting = 1;
            else rtws__stream_fail(st, RTWS_ERR_IO, soerr);
            if (st->sock == s) rtws__stream_settle(s);
            return;
        }
        s->connecting = 0;
        st->open = 1;
        st->deadline = 0;
        memset(&ev, 0, sizeof ev);
        ev.type = RTWS_STREAM_EV_OPEN;
        ev.now_ms = now;
        rtws__stream_emit(st, &ev);
        if (st->sock != s) return;
    }
    if (readable) rtws__stream_read(st, s, now);
    if (st->sock == s) rtws__stream_flush(s);
    if (st->sock == s) rtws__stream_settle(s);
}

static void rtws__streams_timers(rtws_ctx *ctx, uint64_t now, uint64_t *next) {
    rtws_stream *st;
    for (st = ctx->streams; st; st = st->next) {
        if (st->dead) continue;
        if (st->sock && st->deadline && now >= st->deadline)
            rtws__stream_fail(st, RTWS_ERR_TIMEOUT, 0);
        if (st->sock && st->sock->connecting && !st->dead) { /* resolution, next address */
            rtws__sock *s = st->sock;
            rtws__route_timers(s, now);
            if (st->sock == s) {
                rtws__stream_settle(s);
                if (rtws__route_deadline(s, UINT64_MAX) < *next) *next = rtws__route_deadline(s, UINT64_MAX);
            }
        }
        if (st->timer_at && now >= st->timer_at && !st->dead) {
            rtws_stream_event ev;
            st->timer_at = 0;
            memset(&ev, 0, sizeof ev);
            ev.type = RTWS_STREAM_EV_TIMER;
            ev.now_ms = now;
            rtws__stream_emit(st, &ev);
        }
        if (st->dead) continue;
        if (st->sock && st->deadline && st->deadline < *next) *next = st->deadline;
        if (st->timer_at && st->timer_at < *next) *next = st->timer_at;
    }
}

static void rtws__stream_release(rtws_stream *st) {
    rtws_ctx *ctx = st->ctx;
    rtws_stream **pp;
    for (pp = &ctx->streams; *pp; pp = &(*pp)->next)
        if (*pp == st) {
            *pp = st->next;
            break;
        }
    rtws__free(&ctx->cfg.conn.allocator, st->out);
    rtws__free(&ctx->cfg.conn.allocator, st->in);
    rtws__free(&ctx->cfg.conn.allocator, st);
}

static void rtws__streams_sweep(rtws_ctx *ctx) {
    rtws_stream **pp = &ctx->streams;
    while (*pp) {
        rtws_stream *st = *pp;
        if (st->dead) rtws__stream_release(st);
        else pp = &st->next;
    }
}

static void rtws__streams_free(rtws_ctx *ctx) {
    while (ctx->streams) {
        rtws__stream_drop(ctx->streams);
        rtws__stream_release(ctx->streams);
    }
}

RTWS_API rtws_stream *rtws_stream_new(rtws_ctx *ctx, const rtws_stream_config *cfg,
                                      rtws_err *err) {
    rtws_stream *st;
    size_t hl;
    rtws_err dummy;
    if (!err) err = &dummy;
    *err = RTWS_ERR_INVALID;
    if (!ctx || !cfg || !cfg->host || !cfg->on_event || cfg->port < 1 || cfg->port > 65535)
        return NULL;
    hl = strlen(cfg->host);
    st = (rtws_stream *)rtws__alloc(&ctx->cfg.conn.allocator, sizeof *st + hl + 1);
    *err = RTWS_ERR_NOMEM;
    if (!st) return NULL;
    memset(st, 0, sizeof *st);
    st->cfg = *cfg;
    memcpy(st + 1, cfg->host, hl + 1);
    st->cfg.host = (const char *)(st + 1);
    st->cfg.connect_timeout_ms = RTWS__DEF(st->cfg.connect_timeout_ms, 5000u);
    st->cfg.max_input = RTWS__DEF(st->cfg.max_input, ((size_t)1 << 30) + ((size_t)64 << 10));
    st->cfg.max_output = RTWS__DEF(st->cfg.max_output, (size_t)256 << 20);
    st->ctx = ctx;
    st->next = ctx->streams;
    ctx->streams = st;
    *err = RTWS_OK;
    return st;
}

RTWS_API rtws_err rtws_stream_connect(rtws_stream *st, uint64_t now_ms) {
    rtws_ctx *ctx = st->ctx;
    const rtws_allocator *a = &ctx->cfg.conn.allocator;
    rtws__addr *addrs = NULL;
    rtws__sock *s;
    rtws_err e = RTWS_OK;
    int n, sys = 0;
    if (st->sock || st->dead) return RTWS_ERR_INVALID;
    rtws__begin(ctx, now_ms);
    n = rtws__resolve(ctx, st->cfg.host, (unsigned)st->cfg.port, &addrs, &st->dns, &e);
    if (n < 0 && !(addrs = (rtws__addr *)rtws__alloc(a, RTWS__MAX_ALT * sizeof *addrs)))
        e = RTWS_ERR_NOMEM; /* room for what DNS will say */
    s = addrs ? (rtws__sock *)rtws__alloc(a, sizeof(rtws__rsock)) : NULL;
    if (!s) {
        rtws__free(a, addrs);
        rtws__stream_drop(st); /* (its lookup) */
        rtws__end(ctx);
        return addrs ? RTWS_ERR_NOMEM : e;
    }
    memset(addrs, 0, n < 0 ? RTWS__MAX_ALT * sizeof *addrs : 0);
    memset(s, 0, sizeof(rtws__rsock));
    s->fd = -1;
    s->kind |= RTWS__SOCK_RAW;
    s->ctx = ctx;
    s->alt = addrs;
    s->nalt = (uint8_t)(n < 0 ? 0 : n);
    RTWS__STREAM(s) = st;
    if (n < 0) sys = rtws__dns_try(s, ctx->now) ? 0 : -1; /* the name first, on the loop */
    else sys = rtws__next_addr(s);
    if (sys || !rtws__add_sock(ctx, s)) {
        if (s->fd >= 0) rtws__os_close(s->fd);
        rtws__free(a, addrs);
        rtws__free(a, s);
        rtws__stream_drop(st);
        rtws__end(ctx);
        return sys < 0 ? RTWS_ERR_RESOLVE : sys ? RTWS_ERR_IO : RTWS_ERR_NOMEM;
    }
    s->connecting = 1; /* connected at once or not, OPEN comes from the loop */
    st->sock = s;
    st->open = 0;
    st->olen = st->ooff = st->ilen = 0;
    st->deadline = ctx->now + st->cfg.connect_timeout_ms; /* resolution included */
    if (st->deadline < ctx->next_scan) ctx->next_scan = st->deadline;
    if (st->dns && st->dns->deadline < ctx->next_scan) ctx->next_scan = st->dns->deadline;
    rtws__stream_settle(s);
    rtws__end(ctx);
    return RTWS_OK;
}

RTWS_API uint8_t *rtws_stream_reserve(rtws_stream *st, size_t n) {
    void *nb = st->out;
    if (!st->sock) return NULL;
    if (st->ooff && st->ocap - st->olen < n) { /* the sent part makes room */
        memmove(st->out, st->out + st->ooff, st->olen - st->ooff);
        st->olen -= st->ooff;
        st->ooff = 0;
    }
    if (n > st->cfg.max_output - RTWS__MIN(st->olen, st->cfg.max_output) ||
        rtws__grow(&st->ctx->cfg.conn.allocator, &nb, &st->ocap, st->olen + n, 1,
                   st->cfg.max_output) != RTWS_OK)
        return NULL;
    st->out = (uint8_t *)nb;
    return st->out + st->olen;
}

RTWS_API void rtws_stream_commit(rtws_stream *st, size_t n) {
    rtws__sock *s = st->sock;
    if (!s || !n) return;
    RTWS_ASSERT(n <= st->ocap - st->olen);
    st->olen += n;
    if (!s->dirty) { /* the flush comes at the end of the context's call */
        s->dirty = 1;
        s->next_dirty = st->ctx->dirty;
        st->ctx->dirty = s;
    }
}

RTWS_API rtws_err rtws_stream_write(rtws_stream *st, const void *data, size_t len) {
    uint8_t *p;
    if (!st->sock) return RTWS_ERR_CLOSED;
    if (len > st->cfg.max_output - RTWS__MIN(st->olen - st->ooff, st->cfg.max_output))
        return RTWS_ERR_LIMIT;
    if (!(p = rtws_stream_reserve(st, len))) return RTWS_ERR_NOMEM;
    if (len) memcpy(p, data, len);
    rtws_stream_commit(st, len);
    return RTWS_OK;
}

RTWS_API size_t rtws_stream_get_pending(const rtws_stream *st) { return st->olen - st->ooff; }
RTWS_API int rtws_stream_is_open(const rtws_stream *st) { return st->open; }

RTWS_API void rtws_stream_set_timer(rtws_stream *st, uint64_t at_ms) {
    st->timer_at = at_ms;
    if (at_ms && at_ms < st->ctx->next_scan) st->ctx->next_scan = at_ms;
}

RTWS_API void rtws_stream_close(rtws_stream *st) { rtws__stream_drop(st); }

RTWS_API void rtws_stream_free(rtws_stream *st) {
    if (st->dead) return;
    rtws__stream_drop(st);
    st->dead = 1;
    if (st->ctx->in_call) {
        st->ctx->ndead++; /* inside a callback: the context releases it on the way out */
        return;
    }
    rtws__stream_release(st);
}
#else /* RTWS_NO_CLIENT: no streams */
static void rtws__stream_ready(rtws__sock *s, int readable, int writable, uint64_t now) {
    (void)s, (void)readable, (void)writable, (void)now;
}
static int rtws__stream_flush(rtws__sock *s) { return (void)s, 0; }
static void rtws__stream_settle(rtws__sock *s) { (void)s; }
static void rtws__streams_timers(rtws_ctx *ctx, uint64_t now, uint64_t *next) {
    (void)ctx, (void)now, (void)next;
}
static void rtws__streams_sweep(rtws_ctx *ctx) { (void)ctx; }
static void rtws__streams_free(rtws_ctx *ctx) { (void)ctx; }
#endif /* !RTWS_NO_CLIENT */

/* ---- a program's command line ---- */

/* "--name ARG" (or "--name") into out[cap]: its length */
static size_t rtws__opt_left(const rtws_opt *o, char *out, size_t cap) {
    int k = snprintf(out, cap, "%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
    return k < 0 ? 0 : (size_t)k < cap ? (size_t)k : cap - 1;
}

static void rtws__opts_usage(FILE *f, const rtws_opt *o, size_t n, const char *prog,
                             const char *about) {
    char left[64];
    size_t i, w, col = 7 + strlen(prog), width = 0;
    fprintf(f, "usage: %s", prog);
    for (i = 0; i < n; i++) { /* the synopsis, wrapped before column 80 */
        w = rtws__opt_left(&o[i], left, sizeof left);
        width = w > width ? w : width;
        w += o[i].required ? 1 : 3;
        if (col + w > 79) {
            fputs("\n      ", f);
            col = 6;
        }
        fprintf(f, o[i].required ? " %s" : " [%s]", left);
        col += w;
    }
    fputc('\n', f);
    if (about && *about) fprintf(f, "%s%s", about, about[strlen(about) - 1] == '\n' ? "" : "\n");
    for (i = 0; i < n; i++) {
        rtws__opt_left(&o[i], left, sizeof left);
        fprintf(f, "  %-*s  %s", (int)(width < 28 ? width : 28), left, o[i].help ? o[i].help : "");
        if (o[i].arg && o[i].value) fprintf(f, " (default %s)", o[i].value);
        else if (o[i].required) fputs(" (required)", f);
        fputc('\n', f);
    }
}

RTWS_API int rtws_opt_number(const char *s, long min, long max, long *out) {
    char *e;
    long v;
    if (!s || (*s != '-' && *s != '+' && (*s < '0' || *s > '9'))) return 0; /* no blanks first */
    errno = 0;
    v = strtol(s, &e, 10);
    if (e == s || *e || errno || v < min || v > max) return 0;
    *out = v;
    return 1;
}

/* o's value as a number in its range, when it has one: 1, or 0 (refused) */
static int rtws__opt_num(rtws_opt *o) {
    if (!o->arg) o->num = o->value != NULL;
    if (!o->arg || o->min >= o->max || !o->value) return 1;
    return rtws_opt_number(o->value, o->min, o->max, &o->num);
}

/* One pass over argv: checks it (apply 0) or sets the values (apply 1).
   Returns argc when all was read, else where it stopped: at --help
   (*help set) or at a refusal (said on stderr). */
static int rtws__opts_pass(rtws_opt *opts, size_t n, int argc, char **argv, const char *prog,
                           int apply, int *help) {
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '='), *val;
        size_t k, len = eq && !strncmp(a, "--", 2) ? (size_t)(eq - a) : strlen(a);
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            *help = 1;
            return i;
        }
        for (k = 0; k < n && (strlen(opts[k].name) != len || strncmp(opts[k].name, a, len)); k++) {
        }
        if (k == n) {
            fprintf(stderr, "%s: unknown option %s\n", prog, a);
            return i;
        }
        if (!opts[k].arg && a[len]) {
            fprintf(stderr, "%s: %s takes no value\n", prog, opts[k].name);
            return i;
        }
        val = !opts[k].arg ? "1" : a[len] ? a + len + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (!val) {
            fprintf(stderr, "%s: %s needs a value (%s)\n", prog, opts[k].name, opts[k].arg);
            return i;
        }
        if (apply) opts[k].value = val;
    }
    return i;
}

RTWS_API int rtws_opts_parse(rtws_opt *opts, size_t n, int argc, char **argv, const char *about) {
    const char *prog = argc > 0 && argv[0] ? argv[0] : "program", *p, **saved = NULL;
    size_t k = 0;
    int help = 0, done;
    for (p = prog; *p; p++)
        if (*p == '/' || *p == '\\') prog = p + 1;
    done = rtws__opts_pass(opts, n, argc, argv, prog, 0, &help) >= argc; /* the usage shows the defaults */
    if (help) {
        rtws__opts_usage(stdout, opts, n, prog, about);
        return 1;
    }
    if (done && (saved = (const char **)RTWS_MALLOC(sizeof(char *) * (n ? n : 1))) != NULL)
        for (k = 0; k < n; k++) saved[k] = opts[k].value; /* the usage of a refusal: defaults */
    if (done) rtws__opts_pass(opts, n, argc, argv, prog, 1, &help);
    for (k = 0; done && k < n; k++) {
        if (!rtws__opt_num(&opts[k])) {
            fprintf(stderr, "%s: %s wants a whole number from %ld to %ld, not \"%s\"\n", prog,
                    opts[k].name, opts[k].min, opts[k].max, opts[k].value);
            break;
        }
        if (opts[k].required && !opts[k].value) {
            fprintf(stderr, "%s: %s %s is required\n", prog, opts[k].name, opts[k].arg ? opts[k].arg : "");
            break;
        }
    }
    if (done && k == n) {
        RTWS_FREE(saved);
        return 0;
    }
    for (k = 0; saved && k < n; k++) opts[k].value = saved[k];
    RTWS_FREE(saved);
    rtws__opts_usage(stderr, opts, n, prog, about);
    return -1;
}

/* === layer 5: tls ======================================================= */

/* BearSSL's engine is sans-I/O like rtws_conn: it sits between the socket
   and the connection as a second pair of buffers. Records from the socket go
   in (recvrec), the application data that comes out (recvapp) goes to
   rtws_conn_recv; the connection's output goes in (sendapp) and records come
   out (sendrec) for the socket. The host asks the transport's wants() which
   socket events to wait for, so the engine's own needs (handshake records, alerts,
   close_notify) count as much as the connection's. */

static const struct {
    int code;
    const char *text;
} rtws__tls_errors[] = {
    {RTWS_TLS_ERR_NOT_BUILT, "TLS not built in (define RTWS_USE_BEARSSL, link -lbearssl)"},
    {RTWS_TLS_ERR_READ, "cannot read the certificate, key or CA file"},
    {RTWS_TLS_ERR_PEM, "malformed PEM"},
    {RTWS_TLS_ERR_NO_CERT, "no usable certificate in the PEM input"},
    {RTWS_TLS_ERR_NO_KEY, "no usable RSA or EC private key in the PEM input (encrypted keys are not supported)"},
    {RTWS_TLS_ERR_KEY_MISMATCH, "the private key does not belong to the certificate"},
    {RTWS_TLS_ERR_NO_ANCHORS, "no trust anchor loaded (see rtws_tls_client_config.ca_file / ca_pem)"},
    {RTWS_TLS_ERR_TRUNCATED, "the peer closed the connection during the TLS handshake"},
    {0, "ok"},
    {1, "BR_ERR_BAD_PARAM: bad parameter"},
    {2, "BR_ERR_BAD_STATE: call in the wrong state"},
    {3, "BR_ERR_UNSUPPORTED_VERSION: not TLS 1.2 (or not TLS at all: plain HTTP on a TLS port?)"},
    {4, "BR_ERR_BAD_VERSION: record version mismatch"},
    {5, "BR_ERR_BAD_LENGTH: bad record length (not TLS? a plain client on a TLS port, or TLS to a plain port)"},
    {6, "BR_ERR_TOO_LARGE: record too large"},
    {7, "BR_ERR_BAD_MAC: record MAC check failed"},
    {8, "BR_ERR_NO_RANDOM: no entropy (see rtws_config.random)"},
    {9, "BR_ERR_UNKNOWN_TYPE: unknown record type (not TLS?)"},
    {10, "BR_ERR_UNEXPECTED: unexpected message"},
    {12, "BR_ERR_BAD_CCS: bad ChangeCipherSpec"},
    {13, "BR_ERR_BAD_ALERT: bad alert message"},
    {14, "BR_ERR_BAD_HANDSHAKE: malformed handshake message"},
    {15, "BR_ERR_OVERSIZED_ID: oversized session ID"},
    {16, "BR_ERR_BAD_CIPHER_SUITE: no common cipher suite"},
    {17, "BR_ERR_BAD_COMPRESSION: unsupported compression"},
    {18, "BR_ERR_BAD_FRAGLEN: bad maximum fragment length"},
    {19, "BR_ERR_BAD_SECRENEG: secure renegotiation failure"},
    {20, "BR_ERR_EXTRA_EXTENSION: unexpected extension"},
    {21, "BR_ERR_BAD_SNI: bad server name indication"},
    {22, "BR_ERR_BAD_HELLO_DONE: bad ServerHelloDone"},
    {23, "BR_ERR_LIMIT_EXCEEDED: peer message exceeds a limit"},
    {24, "BR_ERR_BAD_FINISHED: bad Finished message"},
    {25, "BR_ERR_RESUME_MISMATCH: session resumption mismatch"},
    {26, "BR_ERR_INVALID_ALGORITHM: unsupported algorithm"},
    {27, "BR_ERR_BAD_SIGNATURE: bad handshake signature"},
    {28, "BR_ERR_WRONG_KEY_USAGE: the certificate's key usage forbids this"},
    {29, "BR_ERR_NO_CLIENT_AUTH: client certificate required"},
    {31, "BR_ERR_IO: I/O error"},
    {33, "BR_ERR_X509_INVALID_VALUE: invalid value in a certificate"},
    {34, "BR_ERR_X509_TRUNCATED: truncated certificate"},
    {35, "BR_ERR_X509_EMPTY_CHAIN: the peer sent no certificate"},
    {36, "BR_ERR_X509_INNER_TRUNC: truncated certificate element"},
    {37, "BR_ERR_X509_BAD_TAG_CLASS: bad DER tag class"},
    {38, "BR_ERR_X509_BAD_TAG_VALUE: bad DER tag"},
    {39, "BR_ERR_X509_INDEFINITE_LENGTH: indefinite length in DER"},
    {40, "BR_ERR_X509_EXTRA_ELEMENT: extra element in a certificate"},
    {41, "BR_ERR_X509_UNEXPECTED: unexpected certificate element"},
    {42, "BR_ERR_X509_NOT_CONSTRUCTED: DER element not constructed"},
    {43, "BR_ERR_X509_NOT_PRIMITIVE: DER element not primitive"},
    {44, "BR_ERR_X509_PARTIAL_BYTE: partial byte in a BIT STRING"},
    {45, "BR_ERR_X509_BAD_BOOLEAN: bad BOOLEAN"},
    {46, "BR_ERR_X509_OVERFLOW: value overflow in a certificate"},
    {47, "BR_ERR_X509_BAD_DN: bad distinguished name"},
    {48, "BR_ERR_X509_BAD_TIME: bad time in a certificate"},
    {49, "BR_ERR_X509_UNSUPPORTED: unsupported certificate feature"},
    {50, "BR_ERR_X509_LIMIT_EXCEEDED: certificate exceeds a decoder limit"},
    {51, "BR_ERR_X509_WRONG_KEY_TYPE: certificate key type does not fit the cipher suite"},
    {52, "BR_ERR_X509_BAD_SIGNATURE: bad certificate signature"},
    {53, "BR_ERR_X509_TIME_UNKNOWN: validation time unknown (see rtws_tls_client_config.time)"},
    {54, "BR_ERR_X509_EXPIRED: certificate expired or not yet valid"},
    {55, "BR_ERR_X509_DN_MISMATCH: issuer/subject name mismatch in the chain"},
    {56, "BR_ERR_X509_BAD_SERVER_NAME: the certificate is not for this host name"},
    {57, "BR_ERR_X509_CRITICAL_EXTENSION: unsupported critical extension"},
    {58, "BR_ERR_X509_NOT_CA: an intermediate certificate is not a CA"},
    {59, "BR_ERR_X509_FORBIDDEN_KEY_USAGE: the certificate's key usage forbids this"},
    {60, "BR_ERR_X509_WEAK_PUBLIC_KEY: public key too weak"},
    {62, "BR_ERR_X509_NOT_TRUSTED: the chain does not end at a trusted CA (unknown or self-signed issuer)"},
    {256 + 0, "peer sent close_notify as a fatal alert"},
    {256 + 40, "peer alert: handshake_failure (no common cipher suite or version?)"},
    {256 + 42, "peer alert: bad_certificate"},
    {256 + 43, "peer alert: unsupported_certificate"},
    {256 + 44, "peer alert: certificate_revoked"},
    {256 + 45, "peer alert: certificate_expired"},
    {256 + 46, "peer alert: certificate_unknown (the peer did not accept our certificate)"},
    {256 + 48, "peer alert: unknown_ca (the peer does not trust our certificate's issuer)"},
    {256 + 50, "peer alert: decode_error"},
    {256 + 70, "peer alert: protocol_version"},
    {256 + 80, "peer alert: internal_error"},
    {256 + 112, "peer alert: unrecognized_name"},
};

RTWS_API const char *rtws_tls_err_str(int tls_error) {
    size_t i;
    for (i = 0; i < sizeof rtws__tls_errors / sizeof rtws__tls_errors[0]; i++)
        if (rtws__tls_errors[i].code == tls_error) return rtws__tls_errors[i].text;
    if (tls_error >= 256 && tls_error < 512) return "peer sent a fatal TLS alert (code - 256)";
    if (tls_error >= 512 && tls_error < 768) return "sent a fatal TLS alert (code - 512)";
    return "unknown TLS error";
}

#if !defined(RTWS_USE_BEARSSL)

RTWS_API const rtws_transport *rtws_transport_bearssl(void) { return NULL; }

#else /* RTWS_USE_BEARSSL */

#include <bearssl.h>
#include <time.h>

#define RTWS__TLS_DEFAULT_CA "/etc/ssl/certs/ca-certificates.crt"
#define RTWS__TLS_MAX_FILE ((size_t)16 << 20) /* PEM files and bundles */
#define RTWS__TLS_MAX_EE ((size_t)64 << 10)   /* end-entity certificate kept for the IP check */

typedef struct rtws__tls_cred rtws__tls_cred; /* a listener's chain and key (server) */

/* ---- growable buffer, PEM, files ---- */

typedef struct rtws__tbuf {
    uint8_t *p;
    size_t len, cap;
    const rtws_allocator *a;
    int oom;
} rtws__tbuf;

/* Also BearSSL's sink (br_pem_decoder_setdest, br_x509_decoder_init). */
static void rtws__tbuf_put(void *ctx, const void *data, size_t n) {
    rtws__tbuf *b = (rtws__tbuf *)ctx;
    if (b->oom) return;
    if (b->cap - b->len < n) {
        void *np = b->p;
        if (n > SIZE_MAX - b->len ||
            rtws__grow(b->a, &np, &b->cap, RTWS__MAX(b->len + n, 1024u), 1, SIZE_MAX) != RTWS_OK) {
            b->oom = 1;
            return;
        }
        b->p = (uint8_t *)np;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

/* Frees b, wiping it first: it may have held a private key. */
static void rtws__tbuf_free(rtws__tbuf *b) {
    if (b->p) memset(b->p, 0, b->cap);
    rtws__free(b->a, b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Reads a whole file (at most RTWS__TLS_MAX_FILE) into b. 0 or RTWS_TLS_ERR_READ. */
static int rtws__tls_read_file(const char *path, rtws__tbuf *b) {
    FILE *f = fopen(path, "rb");
    uint8_t chunk[4096];
    size_t n;
    if (!f) return RTWS_TLS_ERR_READ;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && !b->oom && b->len <= RTWS__TLS_MAX_FILE)
        rtws__tbuf_put(b, chunk, n);
    n = (size_t)ferror(f);
    fclose(f);
    memset(chunk, 0, sizeof chunk);
    if (b->oom || n || b->len > RTWS__TLS_MAX_FILE) return RTWS_TLS_ERR_READ;
    return 0;
}

/* The bytes of a config input: the file when path is set, else mem (len 0:
   strlen). Returns 0 or an RTWS_TLS_ERR_ code; *out is valid until b is freed. */
static int rtws__tls_input(const char *path, const char *mem, size_t len, rtws__tbuf *b,
                           const uint8_t **out, size_t *out_len, int missing) {
    int r;
    if (path) {
        if ((r = rtws__tls_read_file(path, b)) != 0) return r;
        *out = b->p;
        *out_len = b->len;
        return 0;
    }
    if (!mem) return missing;
    *out = (const uint8_t *)mem;
    *out_len = len ? len : strlen(mem);
    return 0;
}

typedef int (*rtws__pem_fn)(void *user, const char *name, const uint8_t *der, size_t len);

/* Calls fn for every PEM object in the input (name uppercased, e.g.
   "CERTIFICATE"), or once with name "" when the input is DER (it starts with
   a SEQUENCE tag). Stops at the first nonzero return of fn and returns it;
   RTWS_TLS_ERR_PEM on malformed PEM, 0 at the end. */
static int rtws__pem_each(const rtws_allocator *a, const uint8_t *in, size_t len, rtws__pem_fn fn,
                          void *user) {
    br_pem_decoder_context pc;
    rtws__tbuf obj;
    char name[128];
    int r = 0, inobj = 0, tail = 0;
    if (len && in[0] == 0x30) return fn(user, "", in, len);
    memset(&obj, 0, sizeof obj);
    obj.a = a;
    name[0] = '\0';
    br_pem_decoder_init(&pc);
    while (r == 0) {
        size_t k;
        if (len == 0) { /* the decoder sees an END line only once its newline arrives */
            if (tail++) break;
            in = (const uint8_t *)"\n";
            len = 1;
        }
        k = br_pem_decoder_push(&pc, in, len);
        in += k;
        len -= k;
        switch (br_pem_decoder_event(&pc)) {
        case BR_PEM_BEGIN_OBJ:
            strncpy(name, br_pem_decoder_name(&pc), sizeof name - 1);
            name[sizeof name - 1] = '\0';
            obj.len = 0;
            inobj = 1;
            br_pem_decoder_setdest(&pc, rtws__tbuf_put, &obj);
            break;
        case BR_PEM_END_OBJ:
            if (inobj) r = obj.oom ? RTWS_TLS_ERR_READ : fn(user, name, obj.p, obj.len);
            inobj = 0;
            break;
        case BR_PEM_ERROR: r = RTWS_TLS_ERR_PEM; break;
        default: break;
        }
    }
    rtws__tbuf_free(&obj);
    return r;
}

#if !defined(RTWS_NO_CLIENT)
/* ---- trust anchors (client) ---- */

/* The shared state of a context's wss:// clients (client_new). */
typedef struct rtws__tls_ctx {
    br_x509_trust_anchor *ta; /* each anchor's DN and key bytes: one block at ta[i].dn.data */
    size_t nta, capta;
    int loaded;
    const rtws_tls_client_config *cfg; /* rtws_ctx_config.tls, may be NULL */
    const rtws_allocator *a;
} rtws__tls_ctx;

typedef struct rtws__ta_load {
    rtws__tls_ctx *tc;
    const rtws_allocator *a;
} rtws__ta_load;

/* One CERTIFICATE of a bundle becomes a trust anchor; certificates BearSSL
   cannot decode (unsupported key types) are skipped, as in any CA bundle. */
static int rtws__ta_add(void *user, const char *name, const uint8_t *der, size_t len) {
    rtws__ta_load *ld = (rtws__ta_load *)user;
    rtws__tls_ctx *tc = ld->tc;
    br_x509_decoder_context dc;
    const br_x509_pkey *pk;
    br_x509_trust_anchor *ta;
    rtws__tbuf dn;
    size_t klen;
    uint8_t *blk;
    if (name[0] && strcmp(name, "CERTIFICATE") != 0 && strcmp(name, "X509 CERTIFICATE") != 0)
        return 0;
    memset(&dn, 0, sizeof dn);
    dn.a = ld->a;
    br_x509_decoder_init(&dc, rtws__tbuf_put, &dn);
    br_x509_decoder_push(&dc, der, len);
    pk = br_x509_decoder_get_pkey(&dc);
    if (!pk || dn.oom) {
        rtws__tbuf_free(&dn);
        return dn.oom ? RTWS_TLS_ERR_READ : 0;
    }
    klen = pk->key_type == BR_KEYTYPE_RSA ? pk->key.rsa.nlen + pk->key.rsa.elen : pk->key.ec.qlen;
    if (tc->nta == tc->capta) {
        void *nt = tc->ta;
        if (rtws__grow(ld->a, &nt, &tc->capta, tc->nta + 1, sizeof(br_x509_trust_anchor),
                       SIZE_MAX) != RTWS_OK) {
            rtws__tbuf_free(&dn);
            return RTWS_TLS_ERR_READ;
        }
        tc->ta = (br_x509_trust_anchor *)nt;
    }
    blk = (uint8_t *)rtws__alloc(ld->a, dn.len + klen + 1);
    if (!blk) {
        rtws__tbuf_free(&dn);
        return RTWS_TLS_ERR_READ;
    }
    ta = &tc->ta[tc->nta++];
    memset(ta, 0, sizeof *ta);
    if (dn.len) memcpy(blk, dn.p, dn.len);
    ta->dn.data = blk;
    ta->dn.len = dn.len;
    ta->flags = br_x509_decoder_isCA(&dc) ? BR_X509_TA_CA : 0;
    ta->pkey.key_type = pk->key_type;
    blk += dn.len;
    if (pk->key_type == BR_KEYTYPE_RSA) {
        memcpy(blk, pk->key.rsa.n, pk->key.rsa.nlen);
        memcpy(blk + pk->key.rsa.nlen, pk->key.rsa.e, pk->key.rsa.elen);
        ta->pkey.key.rsa.n = blk;
        ta->pkey.key.rsa.nlen = pk->key.rsa.nlen;
        ta->pkey.key.rsa.e = blk + pk->key.rsa.nlen;
        ta->pkey.key.rsa.elen = pk->key.rsa.elen;
    } else {
        memcpy(blk, pk->key.ec.q, pk->key.ec.qlen);
        ta->pkey.key.ec.curve = pk->key.ec.curve;
        ta->pkey.key.ec.q = blk;
        ta->pkey.key.ec.qlen = pk->key.ec.qlen;
    }
    rtws__tbuf_free(&dn);
    return 0;
}

/* client_new: nothing is loaded until the first connect that verifies. */
static rtws_err rtws__tls_client_new(const rtws_tls_client_config *cfg, const rtws_allocator *a,
                                     void **shared, int *detail) {
    rtws__tls_ctx *tc = (rtws__tls_ctx *)rtws__alloc(a, sizeof *tc);
    (void)detail;
    *shared = tc;
    if (!tc) return RTWS_ERR_NOMEM;
    memset(tc, 0, sizeof *tc);
    tc->cfg = cfg;
    tc->a = a;
    return RTWS_OK;
}

/* Loads the trust anchors on first use: 0, or why none could be loaded. */
static int rtws__tls_anchors(rtws__tls_ctx *tc) {
    const rtws_tls_client_config *cfg = tc->cfg;
    rtws__tbuf file;
    rtws__ta_load ld;
    const uint8_t *in = NULL;
    size_t len = 0;
    int r;
    if (tc->loaded) return tc->nta ? 0 : RTWS_TLS_ERR_NO_ANCHORS;
    memset(&file, 0, sizeof file);
    file.a = tc->a;
    if (cfg && cfg->ca_pem && !cfg->ca_file)
        r = rtws__tls_input(NULL, cfg->ca_pem, cfg->ca_pem_len, &file, &in, &len, 0);
    else
        r = rtws__tls_input(cfg && cfg->ca_file ? cfg->ca_file : RTWS__TLS_DEFAULT_CA, NULL, 0,
                            &file, &in, &len, 0);
    ld.tc = tc;
    ld.a = tc->a;
    if (r == 0) r = rtws__pem_each(ld.a, in, len, rtws__ta_add, &ld);
    rtws__tbuf_free(&file);
    if (r == 0 && tc->nta == 0) r = RTWS_TLS_ERR_NO_ANCHORS;
    if (r != 0) return r; /* not marked loaded: a later connect tries again */
    tc->loaded = 1;
    return 0;
}

static void rtws__tls_client_free(void *shared) {
    rtws__tls_ctx *tc = (rtws__tls_ctx *)shared;
    size_t i;
    for (i = 0; i < tc->nta; i++) rtws__free(tc->a, tc->ta[i].dn.data);
    rtws__free(tc->a, tc->ta);
    rtws__free(tc->a, tc);
}

#endif /* !RTWS_NO_CLIENT */

#if !defined(RTWS_NO_SERVER)
/* ---- server credentials ---- */

struct rtws__tls_cred {
    size_t refs;
    const rtws_allocator *a;
    br_x509_certificate *chain; /* the DER of each certificate, server's first */
    size_t nchain, capchain;
    int key_type;               /* BR_KEYTYPE_RSA or BR_KEYTYPE_EC */
    unsigned issuer_key_type;   /* what signed the server's certificate (ECDH suites) */
    br_skey_decoder_context skey; /* holds the key: its pointers point into it */
    int have_key;
};

static int rtws__cred_cert(void *user, const char *name, const uint8_t *der, size_t len) {
    rtws__tls_cred *cr = (rtws__tls_cred *)user;
    uint8_t *copy;
    if (name[0] && strcmp(name, "CERTIFICATE") != 0 && strcmp(name, "X509 CERTIFICATE") != 0)
        return 0;
    if (cr->nchain == cr->capchain) {
        void *nc = cr->chain;
        if (rtws__grow(cr->a, &nc, &cr->capchain, cr->nchain + 1, sizeof(br_x509_certificate),
                       SIZE_MAX) != RTWS_OK)
            return RTWS_TLS_ERR_READ;
        cr->chain = (br_x509_certificate *)nc;
    }
    if (!(copy = (uint8_t *)rtws__alloc(cr->a, len))) return RTWS_TLS_ERR_READ;
    memcpy(copy, der, len);
    cr->chain[cr->nchain].data = copy;
    cr->chain[cr->nchain].data_len = len;
    cr->nchain++;
    return 0;
}

static int rtws__cred_key(void *user, const char *name, const uint8_t *der, size_t len) {
    rtws__tls_cred *cr = (rtws__tls_cred *)user;
    if (cr->have_key || (name[0] && strcmp(name, "RSA PRIVATE KEY") != 0 &&
                         strcmp(name, "EC PRIVATE KEY") != 0 && strcmp(name, "PRIVATE KEY") != 0))
        return 0;
    br_skey_decoder_init(&cr->skey);
    br_skey_decoder_push(&cr->skey, der, len);
    if (br_skey_decoder_last_error(&cr->skey) != 0) return RTWS_TLS_ERR_NO_KEY;
    cr->key_type = br_skey_decoder_key_type(&cr->skey);
    cr->have_key = 1;
    return 0;
}

static void rtws__cred_unref(rtws__tls_cred *cr) {
    size_t i;
    if (!cr || --cr->refs) return;
    for (i = 0; i < cr->nchain; i++) rtws__free(cr->a, cr->chain[i].data);
    rtws__free(cr->a, cr->chain);
    memset(&cr->skey, 0, sizeof cr->skey); /* the private key */
    rtws__free(cr->a, cr);
}

/* Strips leading zero bytes of a big-endian integer. */
static const uint8_t *rtws__unpad(const uint8_t *p, size_t *len) {
    while (*len > 1 && *p == 0) p++, (*len)--;
    return p;
}

/* The key must be the private half of the server certificate's public key;
   otherwise every handshake would fail later with an obscure error. */
static int rtws__cred_check(rtws__tls_cred *cr) {
    br_x509_decoder_context dc;
    const br_x509_pkey *pk;
    br_x509_decoder_init(&dc, 0, 0);
    br_x509_decoder_push(&dc, cr->chain[0].data, cr->chain[0].data_len);
    if (!(pk = br_x509_decoder_get_pkey(&dc))) return RTWS_TLS_ERR_NO_CERT;
    if (pk->key_type != cr->key_type) return RTWS_TLS_ERR_KEY_MISMATCH;
    cr->issuer_key_type = (unsigned)br_x509_decoder_get_signer_key_type(&dc);
    if (cr->key_type == BR_KEYTYPE_RSA) {
        uint8_t n[BR_X509_BUFSIZE_KEY];
        const br_rsa_private_key *sk = br_skey_decoder_get_rsa(&cr->skey);
        br_rsa_compute_modulus mod = br_rsa_compute_modulus_get_default();
        size_t nlen = mod(NULL, sk), clen = pk->key.rsa.nlen;
        const uint8_t *a, *b;
        if (nlen == 0 || nlen > sizeof n || mod(n, sk) != nlen) return RTWS_TLS_ERR_NO_KEY;
        a = rtws__unpad(n, &nlen);
        b = rtws__unpad(pk->key.rsa.n, &clen);
        if (nlen != clen || memcmp(a, b, nlen) != 0) return RTWS_TLS_ERR_KEY_MISMATCH;
    } else {
        uint8_t q[BR_EC_KBUF_PUB_MAX_SIZE];
        br_ec_public_key pub;
        const br_ec_private_key *sk = br_skey_decoder_get_ec(&cr->skey);
        if (!br_ec_compute_pub(br_ec_get_default(), &pub, q, sk)) return RTWS_TLS_ERR_NO_KEY;
        if (pub.curve != pk->key.ec.curve || pub.qlen != pk->key.ec.qlen ||
            memcmp(pub.q, pk->key.ec.q, pub.qlen) != 0)
            return RTWS_TLS_ERR_KEY_MISMATCH;
    }
    return 0;
}

/* Reads and checks a server's chain and key; NULL with *tls_err on failure. */
static rtws__tls_cred *rtws__cred_new(const rtws_allocator *a, const rtws_tls_server_config *cfg,
                                      int *tls_err) {
    rtws__tls_cred *cr = (rtws__tls_cred *)rtws__alloc(a, sizeof *cr);
    rtws__tbuf b;
    const uint8_t *in = NULL;
    size_t len = 0;
    int r;
    *tls_err = RTWS_TLS_ERR_READ;
    if (!cr) return NULL;
    memset(cr, 0, sizeof *cr);
    cr->refs = 1;
    cr->a = a;
    memset(&b, 0, sizeof b);
    b.a = a;
    r = rtws__tls_input(cfg->cert_file, cfg->cert_pem, cfg->cert_pem_len, &b, &in, &len,
                        RTWS_TLS_ERR_NO_CERT);
    if (r == 0) r = rtws__pem_each(a, in, len, rtws__cred_cert, cr);
    if (r == 0 && cr->nchain == 0) r = RTWS_TLS_ERR_NO_CERT;
    rtws__tbuf_free(&b);
    if (r == 0)
        r = rtws__tls_input(cfg->key_file, cfg->key_pem, cfg->key_pem_len, &b, &in, &len,
                            RTWS_TLS_ERR_NO_KEY);
    if (r == 0) r = rtws__pem_each(a, in, len, rtws__cred_key, cr);
    if (r == 0 && !cr->have_key) r = RTWS_TLS_ERR_NO_KEY;
    rtws__tbuf_free(&b);
    if (r == 0) r = rtws__cred_check(cr);
    if (r != 0) {
        *tls_err = r;
        rtws__cred_unref(cr);
        return NULL;
    }
    *tls_err = 0;
    return cr;
}

/* server_new: rtws_ctx_listen_tls's chain and key, shared by the listener
   and every socket accepted there (each holds a reference). */
static rtws_err rtws__tls_server_new(const rtws_tls_server_config *cfg, const rtws_allocator *a,
                                     void **shared, int *detail) {
    *detail = RTWS_TLS_ERR_NO_CERT;
    *shared = cfg ? rtws__cred_new(a, cfg, detail) : NULL;
    return *shared ? RTWS_OK : RTWS_ERR_TLS;
}

static void rtws__tls_server_free(void *shared) { rtws__cred_unref((rtws__tls_cred *)shared); }

#endif /* !RTWS_NO_SERVER */

#if !defined(RTWS_NO_CLIENT)
/* ---- certificate validation (client) ---- */

/* One DER element at *p (before end): its tag and contents; *p moves past
   it. 0 when malformed. */
static int rtws__der_next(const uint8_t **p, const uint8_t *end, unsigned *tag,
                          const uint8_t **val, size_t *len) {
    const uint8_t *q = *p;
    size_t n;
    if (end - q < 2) return 0;
    *tag = *q++;
    n = *q++;
    if (n & 0x80) {
        unsigned k = (unsigned)(n & 0x7f);
        if (k == 0 || k > 3 || (size_t)(end - q) < k) return 0;
        for (n = 0; k > 0; k--) n = (n << 8) | *q++;
    }
    if ((size_t)(end - q) < n) return 0;
    *val = q;
    *len = n;
    *p = q + n;
    return 1;
}

/* RFC 5280 §4.2.1.6 and RFC 6125 §6.2.1: a certificate is for an IP address
   when its subjectAltName holds that iPAddress. BearSSL's minimal engine
   matches dNSName entries only, so this walks the DER itself:
   Certificate { TBSCertificate { ... [3] { Extension { OID, [critical],
   OCTET STRING { GeneralNames { [7] address } } } } } } */
static int rtws__cert_has_ip(const uint8_t *der, size_t len, const uint8_t *ip, size_t iplen) {
    const uint8_t *p = der, *end = der + len, *v;
    size_t n;
    unsigned tag = 0;
    int found = 0;
    if (!rtws__der_next(&p, end, &tag, &v, &n) || tag != 0x30) return 0;
    p = v;
    end = v + n;
    if (!rtws__der_next(&p, end, &tag, &v, &n) || tag != 0x30) return 0;
    p = v;
    end = v + n;
    while (!found && p < end) {
        if (!rtws__der_next(&p, end, &tag, &v, &n)) return 0;
        found = tag == 0xA3;
    }
    if (!found) return 0;
    p = v;
    if (!rtws__der_next(&p, v + n, &tag, &v, &n) || tag != 0x30) return 0;
    p = v;
    end = v + n;
    while (p < end) {
        const uint8_t *e, *ee, *oid;
        size_t on;
        if (!rtws__der_next(&p, end, &tag, &v, &n) || tag != 0x30) return 0;
        e = v;
        ee = v + n;
        if (!rtws__der_next(&e, ee, &tag, &oid, &on) || tag != 0x06) return 0;
        if (on != 3 || memcmp(oid, "\x55\x1d\x11", 3) != 0) continue; /* 2.5.29.17 */
        if (!rtws__der_next(&e, ee, &tag, &v, &n)) return 0;
        if (tag == 0x01 && !rtws__der_next(&e, ee, &tag, &v, &n)) return 0;
        if (tag != 0x04) return 0;
        e = v;
        if (!rtws__der_next(&e, v + n, &tag, &v, &n) || tag != 0x30) return 0;
        e = v;
        ee = v + n;
        while (e < ee) {
            if (!rtws__der_next(&e, ee, &tag, &v, &n)) return 0;
            if (tag == 0x87 && n == iplen && memcmp(v, ip, iplen) == 0) return 1;
        }
        return 0;
    }
    return 0;
}

static int rtws__tls_time_system(uint32_t *days, uint32_t *seconds, void *user) {
    time_t t = time(NULL);
    (void)user;
    if (t == (time_t)-1) return -1;
    *days = (uint32_t)((uint64_t)t / 86400u + 719528u);
    *seconds = (uint32_t)((uint64_t)t % 86400u);
    return 0;
}

/* An X.509 engine around BearSSL's minimal one: it takes the validation
   time from the time hook when the chain arrives, checks IP literals
   against iPAddress names, and in insecure mode only decodes the server's
   key. */
typedef struct rtws__x509 {
    const br_x509_class *vtable; /* first: BearSSL calls through it */
    br_x509_minimal_context minimal;
    br_x509_decoder_context dec; /* insecure mode: the end-entity key */
    const br_x509_pkey *pkey;
    rtws_tls_time_fn time;
    void *time_user;
    int insecure, time_err;
    size_t ncert;
    uint8_t ip[16];
    size_t iplen;                /* 4 or 16 for an IP literal host, else 0 */
    rtws__tbuf ee;               /* the end-entity certificate, for the IP check */
} rtws__x509;

static void rtws__x509_start_chain(const br_x509_class **ctx, const char *server_name) {
    rtws__x509 *x = (rtws__x509 *)(void *)ctx;
    uint32_t days = 0, secs = 0;
    x->ncert = 0;
    x->pkey = NULL;
    x->ee.len = 0;
    x->ee.oom = 0;
    if (x->insecure) return;
    x->time_err = x->time(&days, &secs, x->time_user) != 0;
    br_x509_minimal_set_time(&x->minimal, days, secs);
    x->minimal.vtable->start_chain(&x->minimal.vtable, x->iplen ? NULL : server_name);
}

static void rtws__x509_start_cert(const br_x509_class **ctx, uint32_t length) {
    rtws__x509 *x = (rtws__x509 *)(void *)ctx;
    if (x->ncert == 0 && x->insecure) br_x509_decoder_init(&x->dec, 0, 0);
    if (!x->insecure) x->minimal.vtable->start_cert(&x->minimal.vtable, length);
}

static void rtws__x509_append(const br_x509_class **ctx, const unsigned char *buf, size_t len) {
    rtws__x509 *x = (rtws__x509 *)(void *)ctx;
    if (x->ncert == 0 && x->insecure) br_x509_decoder_push(&x->dec, buf, len);
    if (x->ncert == 0 && x->iplen && x->ee.len + len <= RTWS__TLS_MAX_EE)
        rtws__tbuf_put(&x->ee, buf, len);
    if (!x->insecure) x->minimal.vtable->append(&x->minimal.vtable, buf, len);
}

static void rtws__x509_end_cert(const br_x509_class **ctx) {
    rtws__x509 *x = (rtws__x509 *)(void *)ctx;
    if (!x->insecure) x->minimal.vtable->end_cert(&x->minimal.vtable);
    x->ncert++;
}

static unsigned rtws__x509_end_chain(const br_x509_class **ctx) {
    rtws__x509 *x = (rtws__x509 *)(void *)ctx;
    unsigned r;
    if (x->insecure) {
        if (x->ncert == 0) return BR_ERR_X509_EMPTY_CHAIN;
        x->pkey = br_x509_decoder_get_pkey(&x->dec);
        return x->pkey ? 0 : (unsigned)br_x509_decoder_last_error(&x->dec);
    }
    r = x->minimal.vtable->end_chain(&x->minimal.vtable);
    if (r == 0 && x->time_err) r = BR_ERR_X509_TIME_UNKNOWN;
    if (r == 0 && x->iplen &&
        (x->ee.oom || !rtws__cert_has_ip(x->ee.p, x->ee.len, x->ip, x->iplen)))
        r = BR_ERR_X509_BAD_SERVER_NAME;
    if (r == 0) x->pkey = x->minimal.vtable->get_pkey(&x->minimal.vtable, NULL);
    rtws__tbuf_free(&x->ee);
    return r;
}

static const br_x509_pkey *rtws__x509_get_pkey(const br_x509_class *const *ctx,
                                               unsigned *usages) {
    const rtws__x509 *x = (const rtws__x509 *)(const void *)ctx;
    if (x->insecure) {
        if (usages) *usages = BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN;
        return x->pkey;
    }
    return x->minimal.vtable->get_pkey(&x->minimal.vtable, usages);
}

static const br_x509_class rtws__x509_vtable = {
    sizeof(rtws__x509),     rtws__x509_start_chain, rtws__x509_start_cert, rtws__x509_append,
    rtws__x509_end_cert,    rtws__x509_end_chain,   rtws__x509_get_pkey};

#endif /* !RTWS_NO_CLIENT */

/* ---- per-connection engine ---- */

/* The transport's state of a wss:// socket, allocated by the host with it. */
typedef struct rtws__tls_sock {
    rtws__tls_cred *cred;         /* server sockets: a reference */
    br_ssl_engine_context *eng;   /* &u.client.cc.eng or &u.server.eng */
    long end;                     /* once stopped, what read reports: 0 (the end of the
                                     stream), RTWS_IO_ERRNO or RTWS_IO_FAIL */
    int end_detail;
    uint8_t established, closing;
    uint8_t stopped;              /* the engine or the socket is done: end is set */
    uint8_t told;                 /* the host has been given end */
    union {
#if !defined(RTWS_NO_CLIENT)
        struct {
            br_ssl_client_context cc;
            rtws__x509 x;
        } client;
#endif
#if !defined(RTWS_NO_SERVER)
        br_ssl_server_context server;
#endif
    } u;
    unsigned char iobuf[BR_SSL_BUFSIZE_BIDI]; /* full duplex: records in and out at once */
} rtws__tls_sock;

static void rtws__tls_stop(rtws__tls_sock *t, long end, int detail) {
    if (t->stopped) return;
    t->stopped = 1;
    t->end = end;
    t->end_detail = detail;
}

/* Hands end to the host once. */
static long rtws__tls_tell(rtws__tls_sock *t, int *detail) {
    if (t->told) return RTWS_IO_AGAIN;
    t->told = 1;
    *detail = t->end_detail;
    return t->end;
}

/* The engine's state; when it closed, stops with its error (a bad
   certificate, a bad record, an alert) or, after the peer's close_notify,
   with the end of the stream. */
static unsigned rtws__tls_state(rtws__tls_sock *t) {
    unsigned st = br_ssl_engine_current_state(t->eng);
    int err;
    if (st & BR_SSL_CLOSED) {
        err = br_ssl_engine_last_error(t->eng);
        rtws__tls_stop(t, err != BR_ERR_OK ? RTWS_IO_FAIL : 0, err);
    }
    if (st & (BR_SSL_SENDAPP | BR_SSL_RECVAPP)) t->established = 1;
    return st;
}

/* On the way out: an error is reported at once, the end of the stream by
   the next read (pending says so). */
static long rtws__tls_out_end(rtws__tls_sock *t, int *detail) {
    return t->end != 0 ? rtws__tls_tell(t, detail) : (long)RTWS_IO_AGAIN;
}

/* Sends the engine's records while the socket takes them: 0 when none are
   left, RTWS_IO_AGAIN, or RTWS_IO_ERRNO (stopped with the socket's error). */
static long rtws__tls_push(rtws__tls_sock *t, int fd) {
    for (;;) {
        unsigned char *buf;
        size_t len;
        ssize_t w;
        if (!(br_ssl_engine_current_state(t->eng) & BR_SSL_SENDREC)) return 0;
        buf = br_ssl_engine_sendrec_buf(t->eng, &len);
        w = send(fd, buf, len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return RTWS_IO_AGAIN;
            rtws__tls_stop(t, RTWS_IO_ERRNO, errno);
            return RTWS_IO_ERRNO;
        }
        br_ssl_engine_sendrec_ack(t->eng, (size_t)w);
    }
}

/* TLS 1.2 suites with forward secrecy and AEAD only (no CBC, no static RSA
   key exchange). AES-GCM leads where the CPU has AES instructions (it is
   then several times faster than ChaCha20 in software), ChaCha20 otherwise. */
static const uint16_t rtws__suites_aes[] = {
    BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,       BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,       BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256};
static const uint16_t rtws__suites_chacha[] = {
    BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,       BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,       BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384};

/* Seeds the engine from rtws_config.random (the source of the masking keys)
   and readies it for TLS 1.2 only, full duplex, no renegotiation. */
static rtws_err rtws__tls_engine_start(rtws__tls_sock *t, const rtws_config *cfg) {
    uint8_t seed[32];
    br_ssl_engine_set_versions(t->eng, BR_TLS12, BR_TLS12);
    if (br_aes_x86ni_ctr_get_vtable() && br_ghash_pclmul_get())
        br_ssl_engine_set_suites(t->eng, rtws__suites_aes, sizeof rtws__suites_aes / 2);
    else
        br_ssl_engine_set_suites(t->eng, rtws__suites_chacha, sizeof rtws__suites_chacha / 2);
    br_ssl_engine_set_buffer(t->eng, t->iobuf, sizeof t->iobuf, 1);
    br_ssl_engine_add_flags(t->eng, BR_OPT_NO_RENEGOTIATION);
    if (!cfg->random || cfg->random(seed, sizeof seed, cfg->random_user) != 0)
        return RTWS_ERR_RANDOM;
    br_ssl_engine_inject_entropy(t->eng, seed, sizeof seed);
    memset(seed, 0, sizeof seed);
    return RTWS_OK;
}

#if !defined(RTWS_NO_SERVER)
static rtws_err rtws__tls_server_open(rtws__tls_sock *t, rtws__tls_cred *cr,
                                      const rtws_config *cfg, int *detail) {
    rtws_err e;
    t->cred = cr;
    cr->refs++;
    if (cr->key_type == BR_KEYTYPE_RSA)
        br_ssl_server_init_full_rsa(&t->u.server, cr->chain, cr->nchain,
                                    br_skey_decoder_get_rsa(&cr->skey));
    else
        br_ssl_server_init_full_ec(&t->u.server, cr->chain, cr->nchain, cr->issuer_key_type,
                                   br_skey_decoder_get_ec(&cr->skey));
    t->eng = &t->u.server.eng;
    br_ssl_engine_add_flags(t->eng, BR_OPT_ENFORCE_SERVER_PREFERENCES);
    e = rtws__tls_engine_start(t, cfg);
    if (e == RTWS_OK && !br_ssl_server_reset(&t->u.server)) e = RTWS_ERR_TLS;
    if (e == RTWS_OK) return RTWS_OK;
    *detail = e == RTWS_ERR_RANDOM ? BR_ERR_NO_RANDOM : br_ssl_engine_last_error(t->eng);
    return RTWS_ERR_TLS;
}

#endif

#if !defined(RTWS_NO_CLIENT)
static rtws_err rtws__tls_client_open(rtws__tls_sock *t, rtws__tls_ctx *tc, const char *host,
                                      const rtws_config *conn, int *detail) {
    const rtws_tls_client_config *cfg = tc->cfg;
    rtws__x509 *x = &t->u.client.x;
    int insecure = cfg && cfg->tls_insecure_skip_verify;
    rtws_err e;
    if (!insecure && (*detail = rtws__tls_anchors(tc)) != 0) return RTWS_ERR_TLS;
    br_ssl_client_init_full(&t->u.client.cc, &x->minimal, insecure ? NULL : tc->ta,
                            insecure ? 0 : tc->nta);
    x->vtable = &rtws__x509_vtable;
    x->insecure = insecure;
    x->time = cfg && cfg->time ? cfg->time : rtws__tls_time_system;
    x->time_user = cfg ? cfg->time_user : NULL;
    x->ee.a = &conn->allocator;
    if (inet_pton(AF_INET, host, x->ip) == 1) x->iplen = 4;
    else if (inet_pton(AF_INET6, host, x->ip) == 1) x->iplen = 16;
    br_ssl_engine_set_x509(&t->u.client.cc.eng, &x->vtable);
    t->eng = &t->u.client.cc.eng;
    if ((e = rtws__tls_engine_start(t, conn)) != RTWS_OK) return e;
    /* SNI and name check; RFC 6066 §3: no SNI for an IP literal */
    if (!br_ssl_client_reset(&t->u.client.cc, x->iplen ? NULL : host, 0)) return RTWS_ERR_TLS;
    return RTWS_OK;
}

#endif

static rtws_err rtws__tls_open(void *state, const rtws_transport_open *in, int *detail) {
    rtws__tls_sock *t = (rtws__tls_sock *)state;
#if !defined(RTWS_NO_CLIENT)
    if (in->server_name)
        return rtws__tls_client_open(t, (rtws__tls_ctx *)in->shared, in->server_name, in->conn,
                                     detail);
#endif
#if !defined(RTWS_NO_SERVER)
    if (!in->server_name)
        return rtws__tls_server_open(t, (rtws__tls_cred *)in->shared, in->conn, detail);
#endif
    (void)t;
    *detail = RTWS_TLS_ERR_NOT_BUILT; /* the role this build left out */
    return RTWS_ERR_TLS;
}

static void rtws__tls_release(void *state) {
    rtws__tls_sock *t = (rtws__tls_sock *)state;
#if !defined(RTWS_NO_SERVER)
    rtws__cred_unref(t->cred);
    t->cred = NULL;
#endif
#if !defined(RTWS_NO_CLIENT)
    if (t->eng == &t->u.client.cc.eng) rtws__tbuf_free(&t->u.client.x.ee);
#else
    (void)t;
#endif
}

/* Decrypted application data into buf, reading records while the socket
   has them and sending the records the handshake asks for. */
static long rtws__tls_read(void *state, int fd, void *buf, size_t cap, int *detail) {
    rtws__tls_sock *t = (rtws__tls_sock *)state;
    size_t got = 0;
    int budget = 32; /* socket reads per call (a record header and its body are two) */
    for (;;) {
        unsigned st = rtws__tls_state(t);
        unsigned char *p;
        size_t len;
        ssize_t r;
        if (t->stopped) return got ? (long)got : rtws__tls_tell(t, detail);
        if (st & BR_SSL_RECVAPP) {
            p = br_ssl_engine_recvapp_buf(t->eng, &len);
            if (len > cap - got) len = cap - got;
            memcpy((uint8_t *)buf + got, p, len);
            br_ssl_engine_recvapp_ack(t->eng, len);
            got += len;
            if (got == cap) return (long)got;
            continue;
        }
        if (st & BR_SSL_SENDREC) {
            long w = rtws__tls_push(t, fd);
            if (w == RTWS_IO_AGAIN && !(st & BR_SSL_RECVREC))
                return got ? (long)got : (long)RTWS_IO_AGAIN; /* the handshake waits for the socket */
            if (w == 0 || t->stopped) continue;
        }
        if (!(st & BR_SSL_RECVREC) || budget-- <= 0) return got ? (long)got : (long)RTWS_IO_AGAIN;
        p = br_ssl_engine_recvrec_buf(t->eng, &len);
        r = recv(fd, p, len, 0);
        if (r > 0) {
            br_ssl_engine_recvrec_ack(t->eng, (size_t)r);
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return got ? (long)got : (long)RTWS_IO_AGAIN;
        if (r < 0 && errno != ECONNRESET)
            rtws__tls_stop(t, RTWS_IO_ERRNO, errno);
        /* the TCP stream ended without close_notify: a truncated handshake
           fails as such; afterwards it is an abnormal close (1006) unless
           the WebSocket close handshake already completed */
        else if (!t->established)
            rtws__tls_stop(t, RTWS_IO_FAIL, RTWS_TLS_ERR_TRUNCATED);
        else
            rtws__tls_stop(t, 0, 0);
    }
}

/* The connection's output into the engine, the engine's records to the
   socket, until one of them runs dry. */
static long rtws__tls_writev(void *state, int fd, const rtws_iov *iov, int n, int *detail) {
    rtws__tls_sock *t = (rtws__tls_sock *)state;
    size_t took = 0, off = 0;
    int i = 0;
    for (;;) {
        unsigned st = rtws__tls_state(t);
        if (t->stopped) return took ? (long)took : rtws__tls_out_end(t, detail);
        if ((st & BR_SSL_SENDAPP) && !t->closing && i < n) {
            size_t len, k;
            unsigned char *buf = br_ssl_engine_sendapp_buf(t->eng, &len);
            k = iov[i].len - off < len ? iov[i].len - off : len;
            memcpy(buf, (const uint8_t *)iov[i].base + off, k);
            br_ssl_engine_sendapp_ack(t->eng, k);
            took += k;
            off += k;
            if (off == iov[i].len) i++, off = 0;
            continue;
        }
        if (st & BR_SSL_SENDREC) {
            long w = rtws__tls_push(t, fd);
            if (w == RTWS_IO_AGAIN) break;
            continue; /* the socket's error: stopped */
        }
        break; /* all taken, or the handshake waits for the peer */
    }
    return took ? (long)took : (long)RTWS_IO_AGAIN;
}

/* The connection has nothing more: seal a partial record rather than wait
   for more, and send what the engine holds. */
static long rtws__tls_flush(void *state, int fd, int *detail) {
    rtws__tls_sock *t = (rtws__tls_sock *)state;
    unsigned st = rtws__tls_state(t);
    long w;
    if (t->stopped) {
        w = rtws__tls_out_end(t, detail);
        return w == RTWS_IO_AGAIN ? 0 : w;
    }
    if ((st & BR_SSL_SENDAPP) && !t->closing) br_ssl_engine_flush(t->eng, 0);
    w = rtws__tls_push(t, fd);
    return w == RTWS_IO_ERRNO ? rtws__tls_tell(t, detail) : w;
}

/* Decrypted bytes, or an end the host has not been given, would never wake
   poll(): the host reads them at once. */
static size_t rtws__tls_pending(void *state) {
    rtws__tls_sock *t = (rtws__tls_sock *)state;
    size_t len = 0;
    unsigned st = rtws__tls_state(t);
    if (t->stopped) return !t->told;
    if (st & BR_SSL_RECVAPP) br_ssl_engine_recvapp_buf(t->eng, &len);
    return len;
}

/* The socket events a wss:// socket waits for, from the engine's state.
   Once the connection wants to close and its bytes are all in the engine,
   a close_notify follows them; WANT_CLOSE comes when that is written. */
static unsigned rtws__tls_wants(void *state, int fd, unsigned want) {
    rtws__tls_sock *t = (rtws__tls_sock *)state;
    unsigned st, w = 0;
    if (t->stopped) return t->told ? want : (unsigned)RTWS_WANT_CLOSE;
    if (want == RTWS_WANT_CLOSE && !t->closing) {
        t->closing = 1;
        br_ssl_engine_close(t->eng);
        rtws__tls_push(t, fd);
    }
    st = rtws__tls_state(t);
    if (t->stopped || (st & BR_SSL_CLOSED)) return RTWS_WANT_CLOSE;
    if (st & BR_SSL_SENDREC) w |= RTWS_WANT_WRITE;
    if (t->closing) return w ? w : (unsigned)RTWS_WANT_CLOSE;
    if (st & BR_SSL_RECVREC) w |= RTWS_WANT_READ;
    /* output the connection holds goes into the engine when it can take it */
    if ((want & RTWS_WANT_WRITE) && (st & BR_SSL_SENDAPP)) w |= RTWS_WANT_WRITE;
    return w;
}

static unsigned rtws__tls_version(const void *state) {
    const rtws__tls_sock *t = (const rtws__tls_sock *)state;
    return t->established ? br_ssl_engine_get_version(t->eng) : 0;
}

#if defined(RTWS_NO_SERVER) /* a role left out has no shared state to make */
#define rtws__tls_server_new NULL
#define rtws__tls_server_free NULL
#endif
#if defined(RTWS_NO_CLIENT)
#define rtws__tls_client_new NULL
#define rtws__tls_client_free NULL
#endif
static const rtws_transport rtws__bearssl = {
    "bearssl",            sizeof(rtws__tls_sock), rtws__tls_open,        rtws__tls_read,
    rtws__tls_writev,     rtws__tls_flush,        rtws__tls_pending,     rtws__tls_wants,
    rtws__tls_release,    rtws__tls_version,      rtws_tls_err_str,      rtws__tls_server_new,
    rtws__tls_server_free, rtws__tls_client_new,  rtws__tls_client_free};

RTWS_API const rtws_transport *rtws_transport_bearssl(void) { return &rtws__bearssl; }

#endif /* RTWS_USE_BEARSSL */
#endif /* !RTWS_NO_HOST */

#if !defined(RTWS_NO_JSON)
/* === layer 6: json ====================================================== */

#include <stdio.h>  /* snprintf: rtws_json_write_double */
#include <stdarg.h> /* rtws_json_write_fmt */
#include <stdlib.h> /* strtod: rtws_json_double */

#define RTWS__JSON_K(b) (0x0101010101010101ull * (uint64_t)(b))
#define RTWS__JSON_WS ((1ull << ' ') | (1ull << '\t') | (1ull << '\n') | (1ull << '\r'))
#define RTWS__JSON_ISWS(c) ((c) <= ' ' && ((RTWS__JSON_WS >> (c)) & 1u))
#define RTWS__JSON_DIGIT(c) ((unsigned)(c) - '0' < 10u)
#define RTWS__JSON_SKIP()                                                                          \
    while (p < e && RTWS__JSON_ISWS(*p)) p++
#define RTWS__JSON_W_FIRST 1u /* writer: nothing written yet at this level */
#define RTWS__JSON_W_KEYED 2u /* writer: a key was written, its value is due */
#define RTWS__JSON_W_DONE 4u  /* writer: the top-level value is complete */

/* Eight string bytes at once: the top bit of a byte is set in the result when
   that byte is '"', '\\', below 0x20 or above 0x7F. A borrow can only flag a
   byte above one that is really special, so the lowest flag is always true. */
static uint64_t rtws__json_special(uint64_t x) {
    return ((x - RTWS__JSON_K(0x20)) | ((x ^ RTWS__JSON_K('"')) - RTWS__JSON_K(1)) |
            ((x ^ RTWS__JSON_K('\\')) - RTWS__JSON_K(1)) | x) &
           RTWS__JSON_K(0x80);
}

/* Index of the first special byte in a nonzero rtws__json_special() result.
   On big-endian machines (or unknown compilers) it answers 0, and the byte
   loop then walks to the special byte one step at a time. */
static size_t rtws__json_first(uint64_t m) {
#if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) &&                       \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (size_t)__builtin_ctzll(m) >> 3;
#else
    (void)m;
    return 0;
#endif
}

static int32_t rtws__json_hex4(const uint8_t *p) {
    int32_t v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        unsigned c = p[i];
        if (RTWS__JSON_DIGIT(c)) c -= '0';
        else if ((c | 0x20u) - 'a' < 6u) c = (c | 0x20u) - 'a' + 10u;
        else return -1;
        v = v << 4 | (int32_t)c;
    }
    return v;
}

/* Decodes the escape at *pp (**pp == '\\') into UTF-8 in out and moves *pp
   past it. Returns the bytes written (1-4), or a negative reason: -1 cut off,
   -2 unknown escape, -3 bad \u digits, -4 high surrogate without a low one,
   -5 low surrogate alone (RFC 8259 §7 spells a non-BMP character as a pair). */
static int rtws__json_esc(const uint8_t **pp, const uint8_t *e, uint8_t out[4]) {
    const uint8_t *p = *pp;
    int32_t cp, lo;
    if (e - p < 2) return -1;
    switch (p[1]) {
    case '"': case '\\': case '/': out[0] = p[1]; break;
    case 'b': out[0] = '\b'; break;
    case 'f': out[0] = '\f'; break;
    case 'n': out[0] = '\n'; break;
    case 'r': out[0] = '\r'; break;
    case 't': out[0] = '\t'; break;
    case 'u':
        if (e - p < 6) return -1;
        cp = rtws__json_hex4(p + 2);
        if (cp < 0) return -3;
        p += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (e - p < 6 || p[0] != '\\' || p[1] != 'u') return -4;
            lo = rtws__json_hex4(p + 2);
            if (lo < 0xDC00 || lo > 0xDFFF) return -4;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return -5;
        }
        *pp = p;
        if (cp < 0x80) {
            out[0] = (uint8_t)cp;
            return 1;
        }
        if (cp < 0x800) {
            out[0] = (uint8_t)(0xC0 | cp >> 6);
            out[1] = (uint8_t)(0x80 | (cp & 0x3F));
            return 2;
        }
        if (cp < 0x10000) {
            out[0] = (uint8_t)(0xE0 | cp >> 12);
            out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            out[2] = (uint8_t)(0x80 | (cp & 0x3F));
            return 3;
        }
        out[0] = (uint8_t)(0xF0 | cp >> 18);
        out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (uint8_t)(0x80 | (cp & 0x3F));
        return 4;
    default:
        return -2;
    }
    *pp = p + 2;
    return 1;
}

/* What rtws_json_parse knows besides its input position: where tokens go
   and which containers are open. `cur` is the innermost open container that
   has a token; closing follows its parent link. Once the tokens run out the
   parse goes on to count and validate, and containers opened after that are
   remembered one bit each (object or array) in vstack. */
typedef struct rtws__json_parser {
    rtws_json_tok *toks;
    size_t tcap;          /* tokens that may be filled; 0 when only counting */
    size_t n;             /* tokens so far, filled or only counted */
    size_t full_off;      /* where the first token that did not fit starts */
    size_t depth;         /* open containers */
    size_t vdepth;        /* of those, the ones opened after the tokens ran out */
    int32_t cur;          /* -1 at the top */
    int in_obj;           /* the innermost open container is an object */
    uint64_t *vstack;     /* vdepth bits: 1 object, 0 array */
} rtws__json_parser;

/* A scalar token at text offset start (a string's starts after its opening
   quote); counted even when it does not fit. */
static void rtws__json_put(rtws__json_parser *j, unsigned type, unsigned flags, size_t start,
                           size_t len) {
    rtws_json_tok *t;
    if (j->n < j->tcap) {
        t = j->toks + j->n;
        t->type = (uint8_t)type;
        t->flags = (uint8_t)flags;
        t->start = (uint32_t)start;
        t->len = (uint32_t)len;
        t->size = 0;
        t->next = (uint32_t)(j->n + 1);
        t->parent = j->cur;
    } else if (j->n == j->tcap) {
        j->full_off = type == RTWS_JSON_STRING ? start - 1 : start; /* the quote */
    }
    j->n++;
}

/* Opens an object or array whose bracket is at text offset at: a token
   while they last, else a bit in vstack. */
static rtws_err rtws__json_open(rtws__json_parser *j, size_t at, int obj, unsigned max_depth,
                                const char **why) {
    rtws_json_tok *t;
    if (j->depth >= max_depth) {
        *why = "nesting deeper than max_depth";
        return RTWS_ERR_DEPTH;
    }
    j->in_obj = obj;
    if (j->n < j->tcap) {
        t = j->toks + j->n;
        t->type = (uint8_t)(obj ? RTWS_JSON_OBJECT : RTWS_JSON_ARRAY);
        t->flags = 0;
        t->start = (uint32_t)at;
        t->len = t->size = t->next = 0;
        t->parent = j->cur;
        j->cur = (int32_t)j->n;
    } else {
        if (j->n == j->tcap) j->full_off = at;
        if (j->vdepth >= RTWS_JSON_COUNT_DEPTH) {
            *why = "nesting deeper than RTWS_JSON_COUNT_DEPTH after the tokens ran out";
            return RTWS_ERR_DEPTH;
        }
        if (obj) j->vstack[j->vdepth >> 6] |= 1ull << (j->vdepth & 63);
        else j->vstack[j->vdepth >> 6] &= ~(1ull << (j->vdepth & 63));
        j->vdepth++;
    }
    j->n++;
    j->depth++;
    return RTWS_OK;
}

/* Closes the innermost container at its closing bracket, text offset at. */
static void rtws__json_close(rtws__json_parser *j, size_t at) {
    rtws_json_tok *t;
    j->depth--;
    if (j->vdepth) {
        if (--j->vdepth) {
            j->in_obj = (int)((j->vstack[(j->vdepth - 1) >> 6] >> ((j->vdepth - 1) & 63)) & 1u);
            return;
        }
    } else {
        t = j->toks + j->cur;
        t->len = (uint32_t)(at + 1) - t->start;
        t->next = (uint32_t)j->n;
        j->cur = t->parent;
    }
    j->in_obj = j->cur >= 0 && j->toks[j->cur].type == RTWS_JSON_OBJECT;
}

/* Scans the number at *pp (RFC 8259 §6) and moves *pp past it, or on
   failure to the offending byte. Sets RTWS_JSON_FRAC in *flags when it has
   a fraction or an exponent. */
static rtws_err rtws__json_number(const uint8_t **pp, const uint8_t *e, unsigned *flags,
                                  const char **why) {
    const uint8_t *p = *pp;
    rtws_err err = RTWS_ERR_SYNTAX;
    if (*p == '-') p++;
    if (p == e || !RTWS__JSON_DIGIT(*p)) {
        *why = "expected a digit";
        goto out;
    }
    if (*p++ == '0') {
        if (p < e && RTWS__JSON_DIGIT(*p)) {
            *why = "leading zero in a number";
            p--;
            goto out;
        }
    } else {
        while (p < e && RTWS__JSON_DIGIT(*p)) p++;
    }
    if (p < e && *p == '.') {
        *flags = RTWS_JSON_FRAC;
        if (++p == e || !RTWS__JSON_DIGIT(*p)) {
            *why = "expected a digit after the decimal point";
            goto out;
        }
        while (p < e && RTWS__JSON_DIGIT(*p)) p++;
    }
    if (p < e && (*p | 0x20) == 'e') {
        *flags = RTWS_JSON_FRAC;
        if (++p < e && (*p == '+' || *p == '-')) p++;
        if (p == e || !RTWS__JSON_DIGIT(*p)) {
            *why = "expected a digit in the exponent";
            goto out;
        }
        while (p < e && RTWS__JSON_DIGIT(*p)) p++;
    }
    err = RTWS_OK;
out:
    *pp = p;
    return err;
}

/* The type of the literal (true, false, null) at p, with *len its length;
   0 when there is none. */
static unsigned rtws__json_literal(const uint8_t *p, const uint8_t *e, size_t *len) {
    if (*p == 't' && e - p >= 4 && memcmp(p, "true", 4) == 0) {
        *len = 4;
        return RTWS_JSON_TRUE;
    }
    if (*p == 'f' && e - p >= 5 && memcmp(p, "false", 5) == 0) {
        *len = 5;
        return RTWS_JSON_FALSE;
    }
    if (*p == 'n' && e - p >= 4 && memcmp(p, "null", 4) == 0) {
        *len = 4;
        return RTWS_JSON_NULL;
    }
    return 0;
}

/* Scans a string from *pp (just after its opening quote) to its closing
   quote and leaves *pp there, or on failure at the offending byte. Eight
   plain bytes go at a time; escapes are checked as rtws_json_unescape()
   decodes them, runs of bytes above 0x7F by rtws__utf8_span(). Sets
   RTWS_JSON_ESCAPED in *flags when the string holds escapes. */
static rtws_err rtws__json_string(const uint8_t **pp, const uint8_t *e, unsigned *flags,
                                  const char **why) {
    static const char *const esc_why[] = {
        "unterminated string", "unknown escape", "\\u needs four hex digits",
        "high surrogate escape without a low one", "low surrogate escape alone"};
    const uint8_t *p = *pp, *q;
    uint64_t x, m;
    uint8_t tmp[4];
    unsigned c;
    size_t k;
    rtws_err err = RTWS_ERR_SYNTAX;
    int r;
    for (;;) {
        if ((size_t)(e - p) >= 8) {
            memcpy(&x, p, 8);
            m = rtws__json_special(x);
            if (!m) {
                p += 8;
                continue;
            }
#if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) &&                       \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            /* the special byte comes out of x, not from a second load */
            k = (size_t)__builtin_ctzll(m);
            p += k >> 3;
            c = (unsigned)(x >> (k & 56)) & 0xFFu;
#else
            c = *p;
#endif
        } else if (p == e) {
            *why = "unterminated string";
            goto out;
        } else {
            c = *p;
        }
        if (c == '"') break;
        if (c == '\\') {
            q = p; /* p itself stays in a register */
            r = rtws__json_esc(&q, e, tmp);
            if (r < 0) {
                *why = esc_why[-r - 1];
                if (r <= -4) err = RTWS_ERR_UTF8;
                goto out;
            }
            p = q;
            *flags |= RTWS_JSON_ESCAPED;
            continue;
        }
        if (c < 0x20) {
            *why = "control character in a string (must be escaped)";
            goto out;
        }
        if (c < 0x80) {
            p++;
            continue;
        }
        k = rtws__utf8_span(p, e);
        if (!k) {
            err = RTWS_ERR_UTF8;
            *why = "invalid UTF-8 in a string";
            goto out;
        }
        p += k;
    }
    err = RTWS_OK;
out:
    *pp = p;
    return err;
}

/* The number or literal at *pp (text starts at s): its token, and *pp past
   it, or on failure at the offending byte. */
static rtws_err rtws__json_scalar(rtws__json_parser *j, const uint8_t *s, const uint8_t **pp,
                                  const uint8_t *e, const char **why) {
    const uint8_t *st = *pp;
    unsigned type, flags = 0;
    size_t k;
    rtws_err r;
    if (*st == '-' || RTWS__JSON_DIGIT(*st)) {
        r = rtws__json_number(pp, e, &flags, why);
        if (r != RTWS_OK) return r;
        type = RTWS_JSON_NUMBER;
    } else {
        type = rtws__json_literal(st, e, &k);
        if (!type) {
            *why = "expected a value";
            return RTWS_ERR_SYNTAX;
        }
        *pp = st + k;
    }
    rtws__json_put(j, type, flags, (size_t)(st - s), (size_t)(*pp - st));
    return RTWS_OK;
}

/* Sets doc and j up for a parse of text into toks (cap of them, none when
   toks is NULL: then the parse only counts). Kept out of line, as is
   rtws__json_end: inlined, the two cost the parse loop registers (2-3% more
   instructions per token with gcc 12 and clang 14; out of line, 1% and 6%
   fewer than the loop without them). */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static void rtws__json_begin(rtws__json_parser *j, rtws_json *doc, const char *text, size_t len,
                             rtws_json_tok *toks, size_t cap, uint64_t *vstack) {
    doc->text = text;
    doc->len = len;
    doc->toks = toks;
    doc->cap = cap;
    doc->count = 0;
    doc->err_off = 0;
    doc->err = "";
    j->toks = toks;
    j->tcap = toks ? cap : 0;
    if (j->tcap > (size_t)INT32_MAX) j->tcap = (size_t)INT32_MAX;
    j->n = j->full_off = j->depth = j->vdepth = 0;
    j->cur = -1;
    j->in_obj = 0;
    j->vstack = vstack;
}

/* The end of a complete value: the count, and whether the tokens held it. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline)) /* see rtws__json_begin */
#endif
static rtws_err rtws__json_end(const rtws__json_parser *j, rtws_json *doc) {
    if (j->n > (size_t)INT32_MAX) {
        doc->err_off = doc->len;
        doc->err = "more than INT32_MAX tokens";
        return RTWS_ERR_TOO_BIG;
    }
    doc->count = j->n;
    if (doc->toks && j->n > j->tcap) {
        doc->err_off = j->full_off;
        doc->err = "token array too small (count says how many the text needs)";
        return RTWS_ERR_NOSPACE;
    }
    return RTWS_OK;
}

/* One loop, no recursion, over the states below: a value is due, a key is
   due, a value just ended, a container closes. The helpers above do the
   work of each; a container's size is counted at its first child and at
   each comma. On failure p is the offending byte. */
RTWS_API rtws_err rtws_json_parse(rtws_json *doc, const char *text, size_t len,
                                  rtws_json_tok *toks, size_t cap, unsigned max_depth) {
    rtws__json_parser j;
    uint64_t vstack[RTWS_JSON_COUNT_DEPTH / 64];
    const uint8_t *s, *p, *e, *st;
    const char *why = "";
    rtws_err err = RTWS_ERR_SYNTAX, r;
    unsigned flags;
    int is_key;

    if (!text) text = "";
    s = p = (const uint8_t *)text;
    e = s + len;
    rtws__json_begin(&j, doc, text, len, toks, cap, vstack);
    if (len > (size_t)0xFFFFFFFEu) {
        err = RTWS_ERR_TOO_BIG;
        why = "input longer than 4 GiB - 2 bytes (token offsets are 32-bit)";
        goto fail;
    }
    if (!max_depth) max_depth = RTWS_JSON_DEPTH;

value:
    RTWS__JSON_SKIP();
    if (p == e) {
        why = j.n ? "unexpected end of input" : "empty input";
        goto fail;
    }
    if (*p == '"') {
        is_key = 0;
        goto string;
    }
    if (*p == '{' || *p == '[') {
        r = rtws__json_open(&j, (size_t)(p - s), *p == '{', max_depth, &why);
        if (r != RTWS_OK) {
            err = r;
            goto fail;
        }
        p++;
        RTWS__JSON_SKIP();
        if (p < e && *p == (j.in_obj ? '}' : ']')) goto close;
        if (!j.vdepth) j.toks[j.cur].size = 1;
        if (j.in_obj) goto key;
        goto value;
    }
    r = rtws__json_scalar(&j, s, &p, e, &why);
    if (r != RTWS_OK) {
        err = r;
        goto fail;
    }
    goto after;

string:
    st = ++p;
    flags = is_key ? RTWS_JSON_KEY : 0u;
    r = rtws__json_string(&p, e, &flags, &why);
    if (r != RTWS_OK) {
        err = r;
        goto fail;
    }
    rtws__json_put(&j, RTWS_JSON_STRING, flags, (size_t)(st - s), (size_t)(p - st));
    p++;
    if (is_key) {
        RTWS__JSON_SKIP();
        if (p == e || *p != ':') {
            why = "expected ':' after a key";
            goto fail;
        }
        p++;
        goto value;
    }

after:
    if (!j.depth) goto done;
    RTWS__JSON_SKIP();
    if (p == e) {
        why = "unexpected end of input";
        goto fail;
    }
    if (*p == ',') {
        p++;
        if (!j.vdepth) j.toks[j.cur].size++;
        if (j.in_obj) goto key;
        goto value;
    }
    if (*p == (j.in_obj ? '}' : ']')) goto close;
    why = j.in_obj ? "expected ',' or '}'" : "expected ',' or ']'";
    goto fail;

key:
    RTWS__JSON_SKIP();
    if (p == e || *p != '"') {
        why = p == e ? "unexpected end of input" : "expected a string key";
        goto fail;
    }
    is_key = 1;
    goto string;

close:
    rtws__json_close(&j, (size_t)(p - s));
    p++;
    goto after;

done:
    RTWS__JSON_SKIP();
    if (p != e) {
        why = "trailing characters after the value";
        goto fail;
    }
    return rtws__json_end(&j, doc);

fail:
    doc->err_off = (size_t)(p - s);
    doc->err = why;
    return err;
}

/* Tokens actually filled: after RTWS_ERR_NOSPACE count exceeds cap. */
static size_t rtws__json_filled(const rtws_json *doc) {
    return !doc->toks ? 0 : doc->count < doc->cap ? doc->count : doc->cap;
}

RTWS_API const rtws_json_tok *rtws_json_tok_at(const rtws_json *doc, int i) {
    if (!doc || i < 0 || (size_t)i >= rtws__json_filled(doc)) return NULL;
    return doc->toks + i;
}

RTWS_API int rtws_json_eqn(const rtws_json *doc, int i, const char *str, size_t n) {
    const rtws_json_tok *t = rtws_json_tok_at(doc, i);
    const uint8_t *p, *e, *q = (const uint8_t *)str, *qe = q + n;
    uint8_t tmp[4];
    int r;
    if (!t || t->type != RTWS_JSON_STRING) return 0;
    p = (const uint8_t *)doc->text + t->start;
    e = p + t->len;
    if (!(t->flags & RTWS_JSON_ESCAPED)) return t->len == n && (!n || memcmp(p, str, n) == 0);
    while (p < e) {
        if (*p != '\\') {
            if (q == qe || *q != *p) return 0;
            p++;
            q++;
            continue;
        }
        r = rtws__json_esc(&p, e, tmp);
        if (r < 0 || qe - q < r || memcmp(q, tmp, (size_t)r) != 0) return 0;
        q += r;
    }
    return q == qe;
}

RTWS_API int rtws_json_eq(const rtws_json *doc, int i, const char *str) {
    return rtws_json_eqn(doc, i, str, strlen(str));
}

RTWS_API int rtws_json_get(const rtws_json *doc, int obj, const char *key) {
    const rtws_json_tok *t = rtws_json_tok_at(doc, obj);
    size_t n = strlen(key), left;
    int k = obj + 1;
    if (!t || t->type != RTWS_JSON_OBJECT) return -1;
    for (left = t->size; left > 0 && (size_t)k + 1 < rtws__json_filled(doc); left--) {
        if (rtws_json_eqn(doc, k, key, n)) return k + 1;
        k = (int)doc->toks[k + 1].next;
    }
    return -1;
}

RTWS_API int rtws_json_child(const rtws_json *doc, int i) {
    const rtws_json_tok *t = rtws_json_tok_at(doc, i);
    if (!t || (t->type != RTWS_JSON_OBJECT && t->type != RTWS_JSON_ARRAY) || !t->size) return -1;
    return (size_t)i + 1 < rtws__json_filled(doc) ? i + 1 : -1;
}

RTWS_API int rtws_json_next(const rtws_json *doc, int i) {
    const rtws_json_tok *t = rtws_json_tok_at(doc, i), *v, *up;
    uint32_t j;
    if (!t || t->parent < 0) return -1;
    if (t->flags & RTWS_JSON_KEY) {
        v = rtws_json_tok_at(doc, i + 1);
        if (!v) return -1;
        j = v->next;
    } else {
        j = t->next;
    }
    up = doc->toks + t->parent;
    return j < up->next && (size_t)j < rtws__json_filled(doc) ? (int)j : -1;
}

RTWS_API int rtws_json_at(const rtws_json *doc, int arr, size_t n) {
    const rtws_json_tok *t = rtws_json_tok_at(doc, arr);
    int i;
    if (!t || t->type != RTWS_JSON_ARRAY || n >= t->size) return -1;
    for (i = rtws_json_child(doc, arr); n > 0 && i >= 0; n--) i = rtws_json_next(doc, i);
    return i;
}

RTWS_API const char *rtws_json_raw(const rtws_json *doc, int i, size_t *len) {
    const rtws_json_tok *t = rtws_json_tok_at(doc, i);
    if (!t) {
        *len = 0;
        return NULL;
    }
    if (t->type == RTWS_JSON_STRING) {
        *len = (size_t)t->len + 2;
        return doc->text + t->start - 1;
    }
    *len = t->len;
    return doc->text + t->start;
}

RTWS_API rtws_err rtws_json_unescape(const rtws_json *doc, int i, char *buf, size_t cap,
                                     size_t *len) {
    const rtws_json_tok *t = rtws_json_tok_at(doc, i);
    const uint8_t *p, *e, *q;
    uint8_t tmp[4];
    size_t o = 0, k;
    int r;
    *len = 0;
    if (!t || t->type != RTWS_JSON_STRING) return RTWS_ERR_INVALID;
    p = (const uint8_t *)doc->text + t->start;
    e = p + t->len;
    while (p < e) {
        q = (const uint8_t *)memchr(p, '\\', (size_t)(e - p));
        if (!q) q = e;
        k = (size_t)(q - p);
        if (o + k <= cap) memcpy(buf + o, p, k);
        o += k;
        p = q;
        if (p == e) break;
        r = rtws__json_esc(&p, e, tmp);
        if (r < 0) return RTWS_ERR_SYNTAX;
        if (o + (size_t)r <= cap) memcpy(buf + o, tmp, (size_t)r);
        o += (size_t)r;
    }
    *len = o;
    if (o >= cap) return RTWS_ERR_NOSPACE;
    buf[o] = '\0';
    return RTWS_OK;
}

/* A number as its significant digits times a power of ten: digit j of the
   concatenated integer and fraction digits is dig(j); the value is
   (-1)^neg * digits first..last * 10^exp10, with last the last nonzero digit.
   ndig is 0 for a zero. */
typedef struct rtws__json_num {
    const uint8_t *ip, *fp;
    int64_t ilen, flen, first, ndig, exp10;
    int neg;
} rtws__json_num;

static uint8_t rtws__json_dig(const rtws__json_num *d, int64_t j) {
    return j < d->ilen ? d->ip[j] : d->fp[j - d->ilen];
}

/* Splits a number already checked by the grammar; returns 0, or -1 if it is not one. */
static int rtws__json_num_split(const uint8_t *p, size_t len, rtws__json_num *d) {
    const uint8_t *e = p + len;
    int64_t x = 0, last;
    int xneg = 0;
    d->neg = p < e && *p == '-';
    p += d->neg;
    d->ip = p;
    while (p < e && RTWS__JSON_DIGIT(*p)) p++;
    d->ilen = p - d->ip;
    d->fp = p;
    d->flen = 0;
    if (p < e && *p == '.') {
        d->fp = ++p;
        while (p < e && RTWS__JSON_DIGIT(*p)) p++;
        d->flen = p - d->fp;
    }
    if (p < e && (*p | 0x20) == 'e') {
        if (++p < e && (*p == '+' || *p == '-')) xneg = *p++ == '-';
        if (p == e) return -1;
        /* clamped: past 10^15 any nonzero value is 0 or infinite anyway */
        for (; p < e && RTWS__JSON_DIGIT(*p); p++)
            if (x < 1000000000000000) x = x * 10 + (*p - '0');
    }
    if (p != e || d->ilen == 0) return -1;
    d->exp10 = xneg ? -x : x;
    for (d->first = 0; d->first < d->ilen + d->flen; d->first++)
        if (rtws__json_dig(d, d->first) != '0') break;
    if (d->first == d->ilen + d->flen) {
        d->ndig = 0;
        return 0;
    }
    last = d->ilen + d->flen - 1;
    while (rtws__json_dig(d, last) == '0') last--;
    d->ndig = last - d->first + 1;
    d->exp10 += d->ilen - 1 - last;
    return 0;
}

static int rtws__json_num_tok(const rtws_json *doc, int i, rtws__json_num *d) {
    const rtws_json_tok *t = rtws_json_tok_at(doc, i);
    if (!t || t->type != RTWS_JSON_NUMBER) return -1;
    return rtws__json_num_split((const uint8_t *)doc->text + t->start, t->len, d);
}

RTWS_API rtws_err rtws_json_int64(const rtws_json *doc, int i, int64_t *out) {
    rtws__json_num d;
    uint64_t v = 0;
    int64_t j;
    if (rtws__json_num_tok(doc, i, &d) < 0) return RTWS_ERR_INVALID;
    if (d.ndig) {
        /* integral and below 10^19, so v cannot wrap */
        if (d.exp10 < 0 || d.ndig + d.exp10 > 19) return RTWS_ERR_RANGE;
        for (j = d.first; j < d.first + d.ndig; j++) v = v * 10u + (uint64_t)(rtws__json_dig(&d, j) - '0');
        for (j = 0; j < d.exp10; j++) v *= 10u;
        if (v > (uint64_t)INT64_MAX + (uint64_t)d.neg) return RTWS_ERR_RANGE;
    }
    if (!d.neg || !v) *out = (int64_t)v;
    else if (v == (uint64_t)INT64_MAX + 1u) *out = INT64_MIN;
    else *out = -(int64_t)v;
    return RTWS_OK;
}

/* Text to double without locale: the significant digits and a decimal
   exponent go to strtod with no decimal point. 780 digits decide rounding
   (a double's exact halfway points have at most 767 significant digits);
   a '1' after them stands for any nonzero digits cut off. */
static rtws_err rtws__json_to_double(const uint8_t *p, size_t len, double *out) {
    rtws__json_num d;
    char buf[800];
    size_t o = 0;
    int64_t keep, j, x;
    char ex[24];
    int xn = 0;
    double v;
    if (rtws__json_num_split(p, len, &d) < 0) return RTWS_ERR_INVALID;
    if (!d.ndig) {
        *out = d.neg ? -0.0 : 0.0;
        return RTWS_OK;
    }
    if (d.neg) buf[o++] = '-';
    keep = d.ndig > 780 ? 780 : d.ndig;
    for (j = 0; j < keep; j++) buf[o++] = (char)rtws__json_dig(&d, d.first + j);
    x = d.exp10 + (d.ndig - keep);
    if (keep < d.ndig) {
        buf[o++] = '1';
        x--;
    }
    if (x > 99999) x = 99999;
    if (x < -99999) x = -99999;
    buf[o++] = 'e';
    if (x < 0) {
        buf[o++] = '-';
        x = -x;
    }
    do {
        ex[xn++] = (char)('0' + x % 10);
        x /= 10;
    } while (x);
    while (xn) buf[o++] = ex[--xn];
    buf[o] = '\0';
    v = strtod(buf, NULL);
    *out = v;
    if (v - v != 0.0) return RTWS_ERR_RANGE; /* infinite */
    return RTWS_OK;
}

RTWS_API rtws_err rtws_json_double(const rtws_json *doc, int i, double *out) {
    const rtws_json_tok *t = rtws_json_tok_at(doc, i);
    if (!t || t->type != RTWS_JSON_NUMBER) return RTWS_ERR_INVALID;
    return rtws__json_to_double((const uint8_t *)doc->text + t->start, t->len, out);
}

RTWS_API int rtws_json_get_str(const rtws_json *doc, int obj, const char *key, char *out,
                               size_t cap) {
    int v = rtws_json_get(doc, obj, key);
    const rtws_json_tok *t = rtws_json_tok_at(doc, v);
    size_t len = 0;
    rtws_err err;
    if (!t || t->type != RTWS_JSON_STRING) err = RTWS_ERR_INVALID;
    else if (!cap) return RTWS_ERR_NOSPACE;
    else err = rtws_json_unescape(doc, v, out, cap, &len);
    if (err == RTWS_OK && len > (size_t)INT32_MAX) err = RTWS_ERR_NOSPACE; /* int result */
    if (err == RTWS_OK && memchr(out, 0, len)) err = RTWS_ERR_SYNTAX;      /* \u0000 */
    if (err == RTWS_OK) return (int)len;
    if (cap) out[0] = '\0';
    return (int)err;
}

RTWS_API rtws_err rtws_json_get_int64(const rtws_json *doc, int obj, const char *key,
                                      int64_t *out) {
    return rtws_json_int64(doc, rtws_json_get(doc, obj, key), out);
}

RTWS_API int rtws_json_get_bool(const rtws_json *doc, int obj, const char *key, int dflt) {
    const rtws_json_tok *t = rtws_json_tok_at(doc, rtws_json_get(doc, obj, key));
    if (t && t->type == RTWS_JSON_TRUE) return 1;
    if (t && t->type == RTWS_JSON_FALSE) return 0;
    return dflt;
}

/* --- writer --- */

RTWS_API void rtws_json_writer_init(rtws_json_writer *w, char *buf, size_t cap) {
    memset(w, 0, sizeof *w);
    w->priv_.buf = buf;
    w->priv_.cap = buf ? cap : 0;
    w->priv_.err = RTWS_OK;
}

static rtws_err rtws__json_wfail(rtws_json_writer *w, rtws_err err) {
    if (w->priv_.err == RTWS_OK || w->priv_.err == RTWS_ERR_NOSPACE) w->priv_.err = err;
    return w->priv_.err;
}

static void rtws__json_wput(rtws_json_writer *w, const void *p, size_t n) {
    if (w->priv_.len <= w->priv_.cap && n <= w->priv_.cap - w->priv_.len) {
        if (n) memcpy(w->priv_.buf + w->priv_.len, p, n);
    } else if (w->priv_.err == RTWS_OK) {
        w->priv_.err = RTWS_ERR_NOSPACE;
    }
    w->priv_.len += n;
}

static int rtws__json_wobj(const rtws_json_writer *w) {
    return (w->priv_.obj[(w->priv_.depth - 1) >> 3] >> ((w->priv_.depth - 1) & 7)) & 1;
}

/* Before any value: place it (comma, or after a key) or refuse it. */
static rtws_err rtws__json_wval(rtws_json_writer *w) {
    if (w->priv_.err != RTWS_OK && w->priv_.err != RTWS_ERR_NOSPACE) return w->priv_.err;
    if (!w->priv_.depth) {
        if (w->priv_.flags & RTWS__JSON_W_DONE) return rtws__json_wfail(w, RTWS_ERR_INVALID);
    } else if (rtws__json_wobj(w)) {
        if (!(w->priv_.flags & RTWS__JSON_W_KEYED)) return rtws__json_wfail(w, RTWS_ERR_INVALID);
    } else if (!(w->priv_.flags & RTWS__JSON_W_FIRST)) {
        rtws__json_wput(w, ",", 1);
    }
    w->priv_.flags &= ~(RTWS__JSON_W_FIRST | RTWS__JSON_W_KEYED);
    return RTWS_OK;
}

static rtws_err rtws__json_wdone(rtws_json_writer *w) {
    if (!w->priv_.depth) w->priv_.flags |= RTWS__JSON_W_DONE;
    return w->priv_.err;
}

static rtws_err rtws__json_wopen(rtws_json_writer *w, int obj) {
    rtws_err err = rtws__json_wval(w);
    if (err != RTWS_OK && err != RTWS_ERR_NOSPACE) return err;
    if (w->priv_.depth >= RTWS_JSON_DEPTH) return rtws__json_wfail(w, RTWS_ERR_DEPTH);
    if (obj) w->priv_.obj[w->priv_.depth >> 3] = (uint8_t)(w->priv_.obj[w->priv_.depth >> 3] | (1u << (w->priv_.depth & 7)));
    else w->priv_.obj[w->priv_.depth >> 3] = (uint8_t)(w->priv_.obj[w->priv_.depth >> 3] & ~(1u << (w->priv_.depth & 7)));
    w->priv_.depth++;
    w->priv_.flags = RTWS__JSON_W_FIRST;
    rtws__json_wput(w, obj ? "{" : "[", 1);
    return w->priv_.err;
}

static rtws_err rtws__json_wclose(rtws_json_writer *w, int obj) {
    if (w->priv_.err != RTWS_OK && w->priv_.err != RTWS_ERR_NOSPACE) return w->priv_.err;
    if (!w->priv_.depth || rtws__json_wobj(w) != obj || (w->priv_.flags & RTWS__JSON_W_KEYED))
        return rtws__json_wfail(w, RTWS_ERR_INVALID);
    rtws__json_wput(w, obj ? "}" : "]", 1);
    w->priv_.depth--;
    w->priv_.flags = 0;
    return rtws__json_wdone(w);
}

RTWS_API rtws_err rtws_json_write_object(rtws_json_writer *w) { return rtws__json_wopen(w, 1); }
RTWS_API rtws_err rtws_json_write_array(rtws_json_writer *w) { return rtws__json_wopen(w, 0); }
RTWS_API rtws_err rtws_json_write_object_end(rtws_json_writer *w) {
    return rtws__json_wclose(w, 1);
}
RTWS_API rtws_err rtws_json_write_array_end(rtws_json_writer *w) {
    return rtws__json_wclose(w, 0);
}

/* A quoted, escaped string; plain runs are copied whole. */
static rtws_err rtws__json_wstr(rtws_json_writer *w, const char *str, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p, *e, *run;
    char esc[6];
    uint64_t x, m;
    size_t k;
    unsigned c;
    if (!str) {
        if (n) return rtws__json_wfail(w, RTWS_ERR_INVALID);
        str = "";
    }
    p = run = (const uint8_t *)str;
    e = p + n;
    rtws__json_wput(w, "\"", 1);
    while (p < e) {
        while ((size_t)(e - p) >= 8) {
            memcpy(&x, p, 8);
            m = rtws__json_special(x);
            if (m) {
                p += rtws__json_first(m);
                break;
            }
            p += 8;
        }
        if (p == e) break;
        c = *p;
        if (c >= 0x80) {
            k = rtws__utf8_span(p, e);
            if (!k) return rtws__json_wfail(w, RTWS_ERR_UTF8);
            p += k;
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\') {
            p++;
            continue;
        }
        rtws__json_wput(w, run, (size_t)(p - run));
        esc[0] = '\\';
        k = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            k = 6;
        }
        rtws__json_wput(w, esc, k);
        run = ++p;
    }
    rtws__json_wput(w, run, (size_t)(p - run));
    rtws__json_wput(w, "\"", 1);
    return w->priv_.err;
}

RTWS_API rtws_err rtws_json_write_key(rtws_json_writer *w, const char *key, size_t len) {
    if (w->priv_.err != RTWS_OK && w->priv_.err != RTWS_ERR_NOSPACE) return w->priv_.err;
    if (!w->priv_.depth || !rtws__json_wobj(w) || (w->priv_.flags & RTWS__JSON_W_KEYED))
        return rtws__json_wfail(w, RTWS_ERR_INVALID);
    if (!(w->priv_.flags & RTWS__JSON_W_FIRST)) rtws__json_wput(w, ",", 1);
    w->priv_.flags = RTWS__JSON_W_KEYED;
    rtws__json_wstr(w, key, len);
    rtws__json_wput(w, ":", 1);
    return w->priv_.err;
}

RTWS_API rtws_err rtws_json_write_string(rtws_json_writer *w, const char *s, size_t len) {
    rtws_err err = rtws__json_wval(w);
    if (err != RTWS_OK && err != RTWS_ERR_NOSPACE) return err;
    rtws__json_wstr(w, s, len);
    return rtws__json_wdone(w);
}

RTWS_API rtws_err rtws_json_write_int64(rtws_json_writer *w, int64_t v) {
    char tmp[24];
    size_t o = sizeof tmp;
    uint64_t u = v < 0 ? 0u - (uint64_t)v : (uint64_t)v;
    rtws_err err = rtws__json_wval(w);
    if (err != RTWS_OK && err != RTWS_ERR_NOSPACE) return err;
    do {
        tmp[--o] = (char)('0' + u % 10u);
        u /= 10u;
    } while (u);
    if (v < 0) tmp[--o] = '-';
    rtws__json_wput(w, tmp + o, sizeof tmp - o);
    return rtws__json_wdone(w);
}

RTWS_API rtws_err rtws_json_write_double(rtws_json_writer *w, double v) {
    char tmp[40], out[40];
    size_t o = 0, i;
    int prec, n;
    double back;
    rtws_err err;
    if (v != v || v - v != 0.0) {
        if (w->priv_.err != RTWS_OK && w->priv_.err != RTWS_ERR_NOSPACE) return w->priv_.err;
        return rtws__json_wfail(w, RTWS_ERR_RANGE);
    }
    err = rtws__json_wval(w);
    if (err != RTWS_OK && err != RTWS_ERR_NOSPACE) return err;
    for (prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (n <= 0 || (size_t)n >= sizeof tmp) return rtws__json_wfail(w, RTWS_ERR_RANGE);
        /* the locale may spell the decimal point otherwise: JSON wants '.' */
        for (o = 0, i = 0; i < (size_t)n; i++) {
            char ch = tmp[i];
            if (RTWS__JSON_DIGIT(ch) || ch == '-' || ch == '+' || ch == 'e' || ch == 'E')
                out[o++] = ch;
            else if (!o || out[o - 1] != '.')
                out[o++] = '.';
        }
        if (rtws__json_to_double((const uint8_t *)out, o, &back) == RTWS_OK && back == v) break;
    }
    rtws__json_wput(w, out, o);
    return rtws__json_wdone(w);
}

RTWS_API rtws_err rtws_json_write_bool(rtws_json_writer *w, int v) {
    rtws_err err = rtws__json_wval(w);
    if (err != RTWS_OK && err != RTWS_ERR_NOSPACE) return err;
    if (v) rtws__json_wput(w, "true", 4);
    else rtws__json_wput(w, "false", 5);
    return rtws__json_wdone(w);
}

RTWS_API rtws_err rtws_json_write_null(rtws_json_writer *w) {
    rtws_err err = rtws__json_wval(w);
    if (err != RTWS_OK && err != RTWS_ERR_NOSPACE) return err;
    rtws__json_wput(w, "null", 4);
    return rtws__json_wdone(w);
}

RTWS_API rtws_err rtws_json_write_raw(rtws_json_writer *w, const char *json, size_t len) {
    rtws_json d;
    rtws_err err;
    if (w->priv_.err != RTWS_OK && w->priv_.err != RTWS_ERR_NOSPACE) return w->priv_.err;
    err = rtws_json_parse(&d, json, len, NULL, 0, 0);
    if (err != RTWS_OK) return rtws__json_wfail(w, err);
    err = rtws__json_wval(w);
    if (err != RTWS_OK && err != RTWS_ERR_NOSPACE) return err;
    rtws__json_wput(w, json, len);
    return rtws__json_wdone(w);
}

RTWS_API rtws_err rtws_json_write_tok(rtws_json_writer *w, const rtws_json *doc, int i) {
    const rtws_json_tok *t = rtws_json_tok_at(doc, i);
    const char *raw;
    size_t len;
    rtws_err err;
    if (w->priv_.err != RTWS_OK && w->priv_.err != RTWS_ERR_NOSPACE) return w->priv_.err;
    if (!t || (t->flags & RTWS_JSON_KEY)) return rtws__json_wfail(w, RTWS_ERR_INVALID);
    err = rtws__json_wval(w);
    if (err != RTWS_OK && err != RTWS_ERR_NOSPACE) return err;
    raw = rtws_json_raw(doc, i, &len);
    rtws__json_wput(w, raw, len);
    return rtws__json_wdone(w);
}

/* The key of a *_field call; any error but NOSPACE ends the call. */
static rtws_err rtws__json_wfield(rtws_json_writer *w, const char *key) {
    if (w->priv_.err != RTWS_OK && w->priv_.err != RTWS_ERR_NOSPACE) return w->priv_.err;
    if (!key) return rtws__json_wfail(w, RTWS_ERR_INVALID);
    return rtws_json_write_key(w, key, strlen(key));
}

#define RTWS__JSON_WFIELD(w, key)                                                                  \
    do {                                                                                           \
        rtws_err e_ = rtws__json_wfield(w, key);                                                   \
        if (e_ != RTWS_OK && e_ != RTWS_ERR_NOSPACE) return e_;                                    \
    } while (0)

RTWS_API rtws_err rtws_json_write_str_field(rtws_json_writer *w, const char *key, const char *s) {
    RTWS__JSON_WFIELD(w, key);
    if (!s) return rtws__json_wfail(w, RTWS_ERR_INVALID);
    return rtws_json_write_string(w, s, strlen(s));
}

RTWS_API rtws_err rtws_json_write_int64_field(rtws_json_writer *w, const char *key, int64_t v) {
    RTWS__JSON_WFIELD(w, key);
    return rtws_json_write_int64(w, v);
}

RTWS_API rtws_err rtws_json_write_bool_field(rtws_json_writer *w, const char *key, int v) {
    RTWS__JSON_WFIELD(w, key);
    return rtws_json_write_bool(w, v);
}

RTWS_API rtws_err rtws_json_write_raw_field(rtws_json_writer *w, const char *key,
                                            const char *json, size_t len) {
    RTWS__JSON_WFIELD(w, key);
    return rtws_json_write_raw(w, json, len);
}

RTWS_API rtws_err rtws_json_write_tok_field(rtws_json_writer *w, const char *key,
                                            const rtws_json *doc, int i) {
    RTWS__JSON_WFIELD(w, key);
    return rtws_json_write_tok(w, doc, i);
}
#undef RTWS__JSON_WFIELD

static int rtws__json_fmt_name(char ch) {
    return ch && !strchr(" \t\r\n,:?{}[]%\"'", ch);
}

/* One value of rtws_json_write_fmt at *pp (after its key, if any): written
   with the key, or both left out (opt and an absent value). */
static void rtws__json_fmt_value(rtws_json_writer *w, const char **pp, va_list *ap,
                                 const char *key, size_t kn, int opt) {
    const char *p = *pp, *str = NULL;
    const rtws_json *doc = NULL;
    size_t n = 0;
    int ti = 0, absent = 0;
    char f, iso[25];
    if (*p == '{' || *p == '[') {
        *pp = p + 1;
        if (key) rtws_json_write_key(w, key, kn);
        rtws__json_wopen(w, *p == '{');
        return;
    }
    if (*p == '\'' || (*p != '%' && rtws__json_fmt_name(*p))) { /* 'text', or 12 true null */
        const char *e = p + 1;
        rtws_json d;
        if (*p == '\'') {
            while (*e && *e != '\'') e++;
        } else {
            while (rtws__json_fmt_name(*e)) e++;
        }
        *pp = *p == '\'' && *e == '\'' ? e + 1 : e; /* (a bare word ends before a quote) */
        if (key) rtws_json_write_key(w, key, kn);
        if (*p == '\'' && *e == '\'') rtws_json_write_string(w, p + 1, (size_t)(e - p - 1));
        else if (*p != '\'' && rtws_json_parse(&d, p, (size_t)(e - p), NULL, 0, 0) == RTWS_OK)
            rtws_json_write_raw(w, p, (size_t)(e - p));
        else rtws__json_wfail(w, RTWS_ERR_INVALID);
        return;
    }
    if (*p != '%' || !p[1]) {
        rtws__json_wfail(w, RTWS_ERR_INVALID);
        return;
    }
    f = p[1];
    *pp = p + 2;
    switch (f) { /* the values that may be absent */
    case 's':
        str = va_arg(*ap, const char *);
        n = str ? strlen(str) : 0;
        absent = !str;
        break;
    case 'S':
    case 'r':
        str = va_arg(*ap, const char *);
        n = va_arg(*ap, size_t);
        absent = !str;
        break;
    case 't':
        doc = va_arg(*ap, const rtws_json *);
        ti = va_arg(*ap, int);
        absent = ti < 0;
        break;
    case 'T':
        n = rtws_time_format_iso(va_arg(*ap, int64_t), iso, sizeof iso);
        str = iso;
        absent = n == 0;
        break;
    default: break;
    }
    if (absent && opt) return;
    if (key) rtws_json_write_key(w, key, kn);
    if (absent) {
        rtws_json_write_null(w);
        return;
    }
    switch (f) {
    case 's':
    case 'S':
    case 'T': rtws_json_write_string(w, str, n); break;
    case 'r': rtws_json_write_raw(w, str, n); break;
    case 't': rtws_json_write_tok(w, doc, ti); break;
    case 'd': rtws_json_write_int64(w, va_arg(*ap, int)); break;
    case 'i': rtws_json_write_int64(w, va_arg(*ap, int64_t)); break;
    case 'u':
    case 'z': {
        uint64_t u = f == 'u' ? va_arg(*ap, uint64_t) : (uint64_t)va_arg(*ap, size_t);
        if (u > (uint64_t)INT64_MAX) rtws__json_wfail(w, RTWS_ERR_RANGE);
        else rtws_json_write_int64(w, (int64_t)u);
        break;
    }
    case 'f': rtws_json_write_double(w, va_arg(*ap, double)); break;
    case 'b': rtws_json_write_bool(w, va_arg(*ap, int)); break;
    default: rtws__json_wfail(w, RTWS_ERR_INVALID);
    }
}

static rtws_err rtws__json_vfmt(rtws_json_writer *w, const char *fmt, va_list *ap) {
    const char *p = fmt ? fmt : "", *key;
    size_t kn;
    int opt;
    while (*p && (w->priv_.err == RTWS_OK || w->priv_.err == RTWS_ERR_NOSPACE)) {
        if (strchr(" \t\r\n,", *p)) {
            p++;
            continue;
        }
        if (*p == '}' || *p == ']') {
            rtws__json_wclose(w, *p++ == '}');
            continue;
        }
        key = NULL;
        kn = 0;
        opt = 0;
        if (w->priv_.depth && rtws__json_wobj(w) && !(w->priv_.flags & RTWS__JSON_W_KEYED)) {
            if (p[0] == '%' && p[1] == 'k') {
                key = va_arg(*ap, const char *);
                kn = key ? strlen(key) : 0;
                p += 2;
            } else {
                for (key = p; rtws__json_fmt_name(*p); p++) kn++;
            }
            if (*p == '?') {
                opt = 1;
                p++;
            }
            if (!key || !kn || *p++ != ':') {
                rtws__json_wfail(w, RTWS_ERR_INVALID);
                break;
            }
            while (*p == ' ') p++;
        }
        rtws__json_fmt_value(w, &p, ap, key, kn, opt);
    }
    return w->priv_.err;
}

RTWS_API rtws_err rtws_json_write_fmt(rtws_json_writer *w, const char *fmt, ...) {
    va_list ap;
    rtws_err e;
    va_start(ap, fmt);
    e = rtws__json_vfmt(w, fmt, &ap);
    va_end(ap);
    return e;
}

RTWS_API size_t rtws_json_fmt(char *buf, size_t cap, const char *fmt, ...) {
    rtws_json_writer w;
    va_list ap;
    size_t n = 0;
    rtws_json_writer_init(&w, buf, cap);
    va_start(ap, fmt);
    rtws__json_vfmt(&w, fmt, &ap);
    va_end(ap);
    return rtws_json_writer_finish(&w, &n) == RTWS_OK && n < cap ? n : 0;
}

RTWS_API rtws_err rtws_json_writer_finish(rtws_json_writer *w, size_t *len) {
    if (len) *len = w->priv_.len;
    if (w->priv_.err != RTWS_OK && w->priv_.err != RTWS_ERR_NOSPACE) return w->priv_.err;
    if (w->priv_.depth || !(w->priv_.flags & RTWS__JSON_W_DONE)) return rtws__json_wfail(w, RTWS_ERR_INVALID);
    if (w->priv_.err == RTWS_OK && w->priv_.len < w->priv_.cap) w->priv_.buf[w->priv_.len] = '\0';
    return w->priv_.err;
}
#endif /* !RTWS_NO_JSON */

#if !defined(RTWS_NO_REDIS)
/* === layer 6a: resp ===================================================== */

#define RTWS__RESP_ERRORS(X)                                                                       \
    X(RTWS_RESP_E_NONE, "no error")                                                                \
    X(RTWS_RESP_E_TYPE, "unknown RESP type byte")                                                  \
    X(RTWS_RESP_E_CRLF, "line or bulk string not ended by CR LF")                                  \
    X(RTWS_RESP_E_LENGTH, "length is not a decimal number")                                        \
    X(RTWS_RESP_E_NEGATIVE, "negative length (only -1, null, is allowed, and only for $ and *)")   \
    X(RTWS_RESP_E_INTEGER, "malformed or out-of-range integer")                                    \
    X(RTWS_RESP_E_BOOL, "boolean is not #t or #f")                                                 \
    X(RTWS_RESP_E_DOUBLE, "malformed double")                                                      \
    X(RTWS_RESP_E_BIGNUM, "malformed big number")                                                  \
    X(RTWS_RESP_E_NULL, "RESP3 null with content")                                                 \
    X(RTWS_RESP_E_VERBATIM, "verbatim string without its xxx: format prefix")                      \
    X(RTWS_RESP_E_STREAMED, "RESP3 streamed types (length ?) are not supported")                   \
    X(RTWS_RESP_E_LINE, "line longer than rtws_resp_config.max_line")                              \
    X(RTWS_RESP_E_BULK, "bulk string longer than rtws_resp_config.max_bulk")                       \
    X(RTWS_RESP_E_AGGREGATE, "aggregate larger than rtws_resp_config.max_elements")                \
    X(RTWS_RESP_E_ELEMENTS, "reply has more nodes than rtws_resp_config.max_elements")             \
    X(RTWS_RESP_E_DEPTH, "nesting deeper than rtws_resp_config.max_depth")                         \
    X(RTWS_RESP_E_SIZE, "reply longer than rtws_resp_config.max_reply")                            \
    X(RTWS_RESP_E_NOMEM, "node array allocation failed (rtws_resp_config.allocator)")

RTWS_API const char *rtws_resp_error_str(rtws_resp_error e) {
    switch (e) {
#define RTWS__CASE(name, text)                                                                     \
    case name:                                                                                     \
        return text;
        RTWS__RESP_ERRORS(RTWS__CASE)
#undef RTWS__CASE
    default:
        return "unknown RESP error";
    }
}

RTWS_API const char *rtws_resp_type_str(rtws_resp_type t) {
    static const char *const names[] = {"none",   "string", "error",  "integer", "bulk",
                                        "nil",    "array",  "map",    "set",     "push",
                                        "double", "bool",   "bignum", "verbatim"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

RTWS_API rtws_err rtws_resp_init(rtws_resp_parser *p, const rtws_resp_config *cfg) {
    memset(p, 0, sizeof *p);
    if (cfg) p->priv_.cfg = *cfg;
    p->priv_.cfg.max_bulk = RTWS__DEF(p->priv_.cfg.max_bulk, (size_t)512 << 20);
    p->priv_.cfg.max_line = RTWS__DEF(p->priv_.cfg.max_line, (size_t)64 << 10);
    if (p->priv_.cfg.max_line > SIZE_MAX / 2) p->priv_.cfg.max_line = SIZE_MAX / 2;
    p->priv_.cfg.max_elements = RTWS__DEF(p->priv_.cfg.max_elements, (size_t)1 << 20);
    p->priv_.cfg.max_reply = RTWS__DEF(p->priv_.cfg.max_reply, (size_t)1 << 30);
    p->priv_.cfg.max_depth = RTWS__DEF(p->priv_.cfg.max_depth, 32u);
    rtws_resp_reset(p);
    return p->priv_.cfg.max_depth > RTWS_RESP_MAX_DEPTH ? RTWS_ERR_INVALID : RTWS_OK;
}

RTWS_API void rtws_resp_free(rtws_resp_parser *p) {
    rtws__free(&p->priv_.cfg.allocator, p->priv_.nodes);
    p->priv_.nodes = NULL;
    p->priv_.cap = p->priv_.nnodes = 0;
}

RTWS_API void rtws_resp_reset(rtws_resp_parser *p) {
    p->priv_.pos = p->priv_.count = 0;
    p->priv_.depth = 0;
    p->priv_.top = 1;
    p->priv_.nnodes = 0;
    p->priv_.error = RTWS_RESP_E_NONE;
    p->priv_.err_off = 0;
    p->priv_.err = RTWS_OK;
}

RTWS_API const rtws_resp_reply *rtws_resp_get_reply(const rtws_resp_parser *p) {
    return p->priv_.nnodes ? p->priv_.nodes : NULL;
}
RTWS_API rtws_resp_error rtws_resp_get_error(const rtws_resp_parser *p) { return p->priv_.error; }
RTWS_API size_t rtws_resp_get_error_offset(const rtws_resp_parser *p) { return p->priv_.err_off; }

/* Decimal [+-]digits into *v: 0, -1 malformed, -2 out of int64's range. */
static int rtws__resp_int(const char *s, size_t n, int64_t *v) {
    uint64_t acc = 0, lim;
    size_t i = 0;
    int neg = 0;
    if (n && (s[0] == '-' || s[0] == '+')) neg = s[i++] == '-';
    if (i == n) return -1;
    lim = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        unsigned dg = (unsigned)(unsigned char)s[i] - '0';
        if (dg > 9) return -1;
        if (acc > (lim - dg) / 10) return -2;
        acc = acc * 10 + dg;
    }
    *v = neg ? (acc == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)acc) : (int64_t)acc;
    return 0;
}

static int rtws__resp_digits(const char *s, size_t n) {
    size_t i;
    if (!n) return 0;
    for (i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* RESP3 double: inf, -inf, nan, or [+-]digits[.digits][(e|E)[+-]digits]. */
static int rtws__resp_double_ok(const char *s, size_t n) {
    size_t i = 0, d;
    if ((n == 3 && !memcmp(s, "inf", 3)) || (n == 4 && !memcmp(s, "-inf", 4)) ||
        (n == 3 && !memcmp(s, "nan", 3)))
        return 1;
    if (i < n && (s[i] == '-' || s[i] == '+')) i++;
    for (d = i; i < n && s[i] >= '0' && s[i] <= '9';) i++;
    if (i == d) return 0;
    if (i < n && s[i] == '.') {
        for (d = ++i; i < n && s[i] >= '0' && s[i] <= '9';) i++;
        if (i == d) return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        if (++i < n && (s[i] == '-' || s[i] == '+')) i++;
        for (d = i; i < n && s[i] >= '0' && s[i] <= '9';) i++;
        if (i == d) return 0;
    }
    return i == n;
}

/* The length of an aggregate or bulk header: >= 0, -1 (null), or -2 when
   the line is "?" (streamed), -3 malformed, -4 below -1. */
static int64_t rtws__resp_len(const char *s, size_t n) {
    int64_t v;
    if (n == 1 && s[0] == '?') return -2;
    if (n == 2 && s[0] == '-' && s[1] == '1') return -1;
    if (n && s[0] == '-' && rtws__resp_int(s, n, &v) == 0) return -4;
    if (!rtws__resp_digits(s, n) || rtws__resp_int(s, n, &v) != 0) return -3;
    return v;
}

static rtws_err rtws__resp_fail(rtws_resp_parser *p, rtws_resp_error e, size_t off) {
    p->priv_.error = e;
    p->priv_.err_off = off;
    p->priv_.err = e == RTWS_RESP_E_DEPTH                                    ? RTWS_ERR_DEPTH
                   : e == RTWS_RESP_E_NOMEM                                  ? RTWS_ERR_NOMEM
                   : e >= RTWS_RESP_E_LINE && e <= RTWS_RESP_E_ELEMENTS      ? RTWS_ERR_TOO_BIG
                   : e == RTWS_RESP_E_SIZE                                   ? RTWS_ERR_TOO_BIG
                                                                             : RTWS_ERR_SYNTAX;
    return p->priv_.err;
}

/* One value has ended: close the aggregates it completes. 1 when the whole
   reply has. */
static int rtws__resp_done(rtws_resp_parser *p) {
    for (;;) {
        if (p->priv_.depth == 0) return --p->priv_.top == 0;
        if (--p->priv_.rem[p->priv_.depth - 1] != 0) return 0;
        p->priv_.depth--;
    }
}

/* Scans one value header (and a bulk's payload) at p->priv_.pos. RTWS_OK
   when it was scanned, RTWS_EAGAIN when its bytes are not all there. */
static rtws_err rtws__resp_scan1(rtws_resp_parser *p, const char *d, size_t len, int *whole) {
    const rtws_resp_config *cfg = &p->priv_.cfg;
    size_t pos = p->priv_.pos, i, win, n, next, sign;
    const char *line;
    char c = d[pos];
    int64_t v;
    *whole = 0;
    if (!memchr("+-:_#,($=!*%~>|", c, 15)) return rtws__resp_fail(p, RTWS_RESP_E_TYPE, pos);
    /* the line: up to CR LF, at most max_line bytes of content */
    win = len - pos - 1 < cfg->max_line + 1 ? len - pos - 1 : cfg->max_line + 1;
    for (i = pos + 1; i < pos + 1 + win && d[i] != '\r' && d[i] != '\n'; i++) {
    }
    if (i == pos + 1 + win)
        return win == cfg->max_line + 1 ? rtws__resp_fail(p, RTWS_RESP_E_LINE, i - 1) : RTWS_EAGAIN;
    if (d[i] == '\n') return rtws__resp_fail(p, RTWS_RESP_E_CRLF, i);
    if (i + 1 == len) return RTWS_EAGAIN;
    if (d[i + 1] != '\n') return rtws__resp_fail(p, RTWS_RESP_E_CRLF, i + 1);
    line = d + pos + 1;
    n = i - pos - 1;
    next = i + 2;
    if (next > cfg->max_reply) return rtws__resp_fail(p, RTWS_RESP_E_SIZE, cfg->max_reply);
    switch (c) {
    case '+':
    case '-':
        break;
    case ':':
        if (rtws__resp_int(line, n, &v) != 0) return rtws__resp_fail(p, RTWS_RESP_E_INTEGER, pos + 1);
        break;
    case '_':
        if (n) return rtws__resp_fail(p, RTWS_RESP_E_NULL, pos + 1);
        break;
    case '#':
        if (n != 1 || (line[0] != 't' && line[0] != 'f'))
            return rtws__resp_fail(p, RTWS_RESP_E_BOOL, pos + 1);
        break;
    case ',':
        if (!rtws__resp_double_ok(line, n)) return rtws__resp_fail(p, RTWS_RESP_E_DOUBLE, pos + 1);
        break;
    case '(':
        sign = n && (line[0] == '-' || line[0] == '+') ? 1u : 0u;
        if (!rtws__resp_digits(line + sign, n - sign))
            return rtws__resp_fail(p, RTWS_RESP_E_BIGNUM, pos + 1);
        break;
    case '$':
    case '=':
    case '!':
        v = rtws__resp_len(line, n);
        if (v == -2) return rtws__resp_fail(p, RTWS_RESP_E_STREAMED, pos + 1);
        if (v == -3) return rtws__resp_fail(p, RTWS_RESP_E_LENGTH, pos + 1);
        if (v == -4 || (v == -1 && c != '$')) return rtws__resp_fail(p, RTWS_RESP_E_NEGATIVE, pos + 1);
        if (v == -1) break;
        if ((uint64_t)v > cfg->max_bulk) return rtws__resp_fail(p, RTWS_RESP_E_BULK, pos + 1);
        if ((uint64_t)v + 2 > cfg->max_reply - next)
            return rtws__resp_fail(p, RTWS_RESP_E_SIZE, cfg->max_reply);
        if (len - next < (size_t)v + 2) return RTWS_EAGAIN;
        if (c == '=' && (v < 4 || d[next + 3] != ':'))
            return rtws__resp_fail(p, RTWS_RESP_E_VERBATIM, next);
        if (d[next + (size_t)v] != '\r') return rtws__resp_fail(p, RTWS_RESP_E_CRLF, next + (size_t)v);
        if (d[next + (size_t)v + 1] != '\n')
            return rtws__resp_fail(p, RTWS_RESP_E_CRLF, next + (size_t)v + 1);
        next += (size_t)v + 2;
        break;
    case '*':
    case '%':
    case '~':
    case '>':
    case '|': {
        uint64_t k;
        v = rtws__resp_len(line, n);
        if (v == -2) return rtws__resp_fail(p, RTWS_RESP_E_STREAMED, pos + 1);
        if (v == -3) return rtws__resp_fail(p, RTWS_RESP_E_LENGTH, pos + 1);
        if (v == -4 || (v == -1 && c != '*')) return rtws__resp_fail(p, RTWS_RESP_E_NEGATIVE, pos + 1);
        if (v == -1) break;
        k = (uint64_t)v * (c == '%' || c == '|' ? 2u : 1u);
        if ((uint64_t)v > cfg->max_elements || k > cfg->max_elements)
            return rtws__resp_fail(p, RTWS_RESP_E_AGGREGATE, pos + 1);
        if (c == '|') { /* an attribute: not a value, the one it describes follows */
            if (p->priv_.depth) p->priv_.rem[p->priv_.depth - 1]++;
            else p->priv_.top++;
        }
        if (p->priv_.depth + 1 > cfg->max_depth) return rtws__resp_fail(p, RTWS_RESP_E_DEPTH, pos);
        if (k == 0) break; /* an empty aggregate is a whole value, but still nests */
        if (++p->priv_.count > cfg->max_elements)
            return rtws__resp_fail(p, RTWS_RESP_E_ELEMENTS, pos);
        p->priv_.rem[p->priv_.depth++] = (size_t)k;
        p->priv_.pos = next;
        return RTWS_OK;
    }
    default:
        return rtws__resp_fail(p, RTWS_RESP_E_TYPE, pos);
    }
    if (++p->priv_.count > cfg->max_elements) return rtws__resp_fail(p, RTWS_RESP_E_ELEMENTS, pos);
    p->priv_.pos = next;
    *whole = rtws__resp_done(p);
    return RTWS_OK;
}

/* Builds the node at *off of a reply already checked by the scan into *out;
   children go to nodes from *next on. */
static void rtws__resp_build(rtws_resp_parser *p, const char *d, size_t *off, size_t *next,
                             rtws_resp_reply *out) {
    size_t pos = *off, i = pos + 1, n;
    char c = d[pos];
    const char *line = d + pos + 1;
    int64_t v = 0;
    while (d[i] != '\r') i++;
    n = i - pos - 1;
    *off = i + 2;
    memset(out, 0, sizeof *out);
    switch (c) {
    case '+': out->type = RTWS_RESP_STRING; break;
    case '-': out->type = RTWS_RESP_ERROR; break;
    case ',': out->type = RTWS_RESP_DOUBLE; break;
    case '(': out->type = RTWS_RESP_BIGNUM; break;
    case '_': out->type = RTWS_RESP_NIL; return;
    case ':':
        out->type = RTWS_RESP_INTEGER;
        rtws__resp_int(line, n, &out->integer);
        return;
    case '#':
        out->type = RTWS_RESP_BOOL;
        out->integer = line[0] == 't';
        return;
    case '$':
    case '=':
    case '!':
        v = rtws__resp_len(line, n);
        if (v < 0) {
            out->type = RTWS_RESP_NIL;
            return;
        }
        out->type = c == '$' ? RTWS_RESP_BULK : c == '!' ? RTWS_RESP_ERROR : RTWS_RESP_VERBATIM;
        out->str = d + *off;
        out->len = (size_t)v;
        *off += (size_t)v + 2;
        if (c == '=') {
            memcpy(out->format, out->str, 3);
            out->str += 4;
            out->len -= 4;
        }
        return;
    default: { /* '*', '%', '~', '>', '|' */
        size_t k, j;
        rtws_resp_reply *kids;
        v = rtws__resp_len(line, n);
        if (v < 0) {
            out->type = RTWS_RESP_NIL;
            return;
        }
        k = (size_t)v * (c == '%' || c == '|' ? 2u : 1u);
        kids = p->priv_.nodes + *next;
        *next += k;
        for (j = 0; j < k; j++) rtws__resp_build(p, d, off, next, kids + j);
        if (c == '|') { /* dropped: the value it describes takes this node */
            rtws__resp_build(p, d, off, next, out);
            return;
        }
        out->type = c == '*' ? RTWS_RESP_ARRAY : c == '%' ? RTWS_RESP_MAP
                  : c == '~' ? RTWS_RESP_SET : RTWS_RESP_PUSH;
        out->n = (size_t)v;
        out->elem = k ? kids : NULL;
        return;
    }
    }
    out->str = line;
    out->len = n;
}

RTWS_API rtws_err rtws_resp_parse(rtws_resp_parser *p, const void *data, size_t len,
                                  size_t *used) {
    const char *d = (const char *)data;
    size_t off = 0, next = 1;
    void *nodes;
    int whole = 0;
    rtws_err e;
    *used = 0;
    if (p->priv_.err != RTWS_OK) return p->priv_.err;
    if (p->priv_.pos == 0) { /* a new reply: the last one's tree is gone */
        p->priv_.nnodes = 0;
        p->priv_.count = 0;
        p->priv_.depth = 0;
        p->priv_.top = 1;
    }
    RTWS_ASSERT(len >= p->priv_.pos); /* the bytes of earlier calls come again */
    while (!whole) {
        if (p->priv_.pos == len) return RTWS_EAGAIN;
        e = rtws__resp_scan1(p, d, len, &whole);
        if (e != RTWS_OK) return e;
    }
    nodes = p->priv_.nodes;
    e = rtws__grow(&p->priv_.cfg.allocator, &nodes, &p->priv_.cap, p->priv_.count,
                   sizeof(rtws_resp_reply), SIZE_MAX);
    if (e != RTWS_OK) return rtws__resp_fail(p, RTWS_RESP_E_NOMEM, 0);
    p->priv_.nodes = (rtws_resp_reply *)nodes;
    rtws__resp_build(p, d, &off, &next, p->priv_.nodes);
    RTWS_ASSERT(off == p->priv_.pos && next <= p->priv_.count);
    p->priv_.nnodes = next;
    *used = off;
    p->priv_.pos = 0;
    return RTWS_OK;
}

/* Writes v in decimal at b (room for 20 digits); returns the digits. */
static size_t rtws__resp_dec(char *b, uint64_t v) {
    char t[20];
    size_t n = 0, i;
    do t[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (i = 0; i < n; i++) b[i] = t[n - 1 - i];
    return n;
}

RTWS_API size_t rtws_resp_encode_command(void *buf, size_t cap, int argc,
                                         const char *const *argv, const size_t *lens) {
    char num[24];
    size_t need, i, k;
    char *o = (char *)buf;
    if (argc < 1) return 0;
    need = 3 + rtws__resp_dec(num, (uint64_t)argc);
    for (i = 0; i < (size_t)argc; i++) {
        size_t l = lens ? lens[i] : strlen(argv[i]);
        need += 5 + rtws__resp_dec(num, l) + l;
    }
    if (need > cap) return need;
    *o++ = '*';
    o += rtws__resp_dec(o, (uint64_t)argc);
    *o++ = '\r';
    *o++ = '\n';
    for (i = 0; i < (size_t)argc; i++) {
        size_t l = lens ? lens[i] : strlen(argv[i]);
        *o++ = '$';
        k = rtws__resp_dec(o, l);
        o += k;
        *o++ = '\r';
        *o++ = '\n';
        if (l) memcpy(o, argv[i], l);
        o += l;
        *o++ = '\r';
        *o++ = '\n';
    }
    return need;
}
#endif /* !RTWS_NO_REDIS */

#if !defined(RTWS_NO_REDIS) && !defined(RTWS_NO_HOST) && !defined(RTWS_NO_CLIENT)
/* === layer 6b: redis ==================================================== */

typedef struct rtws__rcmd {
    rtws_redis_reply_fn cb;
    void *user;
} rtws__rcmd;

typedef struct rtws__rsub {
    rtws_redis_sub_kind kind;
    size_t len;
    char *name;
} rtws__rsub;

struct rtws_redis {
    rtws_redis_config cfg;
    rtws_ctx *ctx;
    rtws_stream *st;
    rtws_resp_parser parser;
    char *strs;                 /* host, user, password, one block */
    const char *user, *pass;
    rtws_redis_state state;
    rtws__rcmd *q;              /* commands in order: the first nsent went out */
    size_t qcap, qhead, qlen, nsent;
    uint8_t *wait;              /* commands encoded while not OPEN */
    size_t wcap, wlen;
    rtws__rsub *subs;
    size_t nsubs, capsubs;
    uint32_t attempt, hs_left;  /* hs_left: handshake replies still due */
    uint64_t rnd;
    int depth, dead;
    rtws_err last;
    char errtext[128];
};

static int rtws__redis_port(const char *s, size_t n, int max, int *out) {
    int64_t v;
    if (!n || n > 10 || s[0] < '0' || s[0] > '9' || rtws__resp_int(s, n, &v) != 0 || v > max)
        return 0;
    *out = (int)v;
    return 1;
}

RTWS_API rtws_err rtws_redis_url_parse(const char *url, rtws_redis_url *out) {
    const char *p, *end, *at, *hs, *he, *c;
    memset(out, 0, sizeof *out);
    out->port = 6379;
    if (!url) return RTWS_ERR_URL;
    if (!strncmp(url, "rediss://", 9)) return RTWS_ERR_TLS;
    if (strncmp(url, "redis://", 8) != 0) return RTWS_ERR_URL;
    p = url + 8;
    end = p + strcspn(p, "/?#");
    at = NULL;
    for (c = p; c < end; c++)
        if (*c == '@') at = c; /* the last one: a password may hold '@' */
    if (at) {
        const char *colon = (const char *)memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (colon > p) {
                out->user = p;
                out->user_len = (size_t)(colon - p);
            }
            out->password = colon + 1;
            out->password_len = (size_t)(at - colon - 1);
        } else if (at > p) {
            out->user = p;
            out->user_len = (size_t)(at - p);
        }
        p = at + 1;
    }
    if (p < end && *p == '[') {
        hs = p + 1;
        he = (const char *)memchr(hs, ']', (size_t)(end - hs));
        if (!he) return RTWS_ERR_URL;
        c = he + 1;
    } else {
        hs = p;
        he = p;
        while (he < end && *he != ':') he++;
        c = he;
    }
    if (he == hs) return RTWS_ERR_URL;
    out->host = hs;
    out->host_len = (size_t)(he - hs);
    if (c < end) {
        if (*c != ':' || !rtws__redis_port(c + 1, (size_t)(end - c - 1), 65535, &out->port) ||
            out->port == 0)
            return RTWS_ERR_URL;
    }
    if (*end == '/' && end[1] && end[1] != '?' && end[1] != '#') {
        size_t n = strcspn(end + 1, "?#");
        if (!rtws__redis_port(end + 1, n, 1 << 30, &out->db)) return RTWS_ERR_URL;
    }
    return RTWS_OK;
}

static void rtws__redis_state(rtws_redis *r, rtws_redis_state s, rtws_err err) {
    r->state = s;
    if (r->cfg.on_state && !r->dead) r->cfg.on_state(r, s, err, r->cfg.user);
}

static rtws__rcmd rtws__redis_pop(rtws_redis *r) {
    rtws__rcmd c = r->q[r->qhead];
    r->qhead++;
    if (--r->qlen == 0) r->qhead = 0;
    if (r->nsent) r->nsent--;
    return c;
}

/* The commands sent on the connection that ended get err (NULL reply). */
static void rtws__redis_fail_sent(rtws_redis *r, rtws_err err) {
    size_t n = r->nsent;
    while (n-- > 0 && r->qlen) {
        rtws__rcmd c = rtws__redis_pop(r);
        if (c.cb) c.cb(r, NULL, err, c.user);
    }
    r->nsent = 0;
}

/* Encodes a command at the end of the stream's output (OPEN, or the
   handshake) or of the wait buffer. */
static rtws_err rtws__redis_put(rtws_redis *r, int direct, int argc, const char *const *argv,
                                const size_t *lens) {
    size_t n = rtws_resp_encode_command(NULL, 0, argc, argv, lens);
    uint8_t *p;
    if (direct) {
        if (!(p = rtws_stream_reserve(r->st, n))) return RTWS_ERR_LIMIT;
        rtws_resp_encode_command(p, n, argc, argv, lens);
        rtws_stream_commit(r->st, n);
        return RTWS_OK;
    } else {
        void *nb = r->wait;
        rtws_err e = rtws__grow(&r->ctx->cfg.conn.allocator, &nb, &r->wcap, r->wlen + n, 1,
                                r->cfg.max_output);
        if (e != RTWS_OK) return e == RTWS_ERR_TOO_BIG ? RTWS_ERR_LIMIT : e;
        r->wait = (uint8_t *)nb;
        rtws_resp_encode_command(r->wait + r->wlen, n, argc, argv, lens);
        r->wlen += n;
        return RTWS_OK;
    }
}

static const char *const rtws__redis_subcmd[2][3] = {
    {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"}, {"UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"}};

static void rtws__redis_send_sub(rtws_redis *r, int un, const rtws__rsub *s) {
    const char *argv[2];
    size_t lens[2];
    argv[0] = rtws__redis_subcmd[un][s->kind];
    lens[0] = strlen(argv[0]);
    argv[1] = s->name;
    lens[1] = s->len;
    rtws__redis_put(r, 1, 2, argv, lens); /* a failure shows as a dropped connection */
}

static void rtws__redis_lost(rtws_redis *r, uint64_t now, rtws_err why);
/* The handshake is done: what waited goes out. */
static void rtws__redis_ready(rtws_redis *r, uint64_t now) {
    size_t i;
    r->attempt = 0;
    r->errtext[0] = '\0';
    r->nsent = r->qlen;
    if (r->wlen) {
        uint8_t *p = rtws_stream_reserve(r->st, r->wlen);
        if (!p) { /* over max_output: they fail like commands of a lost connection */
            r->wlen = 0;
            rtws__redis_lost(r, now, RTWS_ERR_LIMIT);
            return;
        }
        memcpy(p, r->wait, r->wlen);
        rtws_stream_commit(r->st, r->wlen);
        r->wlen = 0;
    }
    for (i = 0; i < r->nsubs; i++) rtws__redis_send_sub(r, 0, &r->subs[i]);
    rtws__redis_state(r, RTWS_REDIS_OPEN, RTWS_OK);
}

static void rtws__redis_retry(rtws_redis *r, uint64_t now, rtws_err why) {
    rtws_client_config bc;
    uint32_t delay;
    memset(&bc, 0, sizeof bc);
    bc.backoff_base_ms = r->cfg.backoff_base_ms;
    bc.backoff_factor = r->cfg.backoff_factor;
    bc.backoff_max_ms = r->cfg.backoff_max_ms;
    bc.backoff_min_ms = r->cfg.backoff_min_ms;
    bc.jitter = r->cfg.jitter;
    r->rnd ^= r->rnd << 13; /* xorshift: the jitter needs spread, not secrecy */
    r->rnd ^= r->rnd >> 7;
    r->rnd ^= r->rnd << 17;
    delay = rtws_client_backoff_delay(&bc, ++r->attempt, (uint32_t)(r->rnd >> 32));
    r->last = why;
    rtws_stream_set_timer(r->st, now + delay);
    rtws__redis_state(r, RTWS_REDIS_RECONNECTING, why);
}

/* The connection is gone (or must go): fail what was sent, try again. */
static void rtws__redis_lost(rtws_redis *r, uint64_t now, rtws_err why) {
    rtws_stream_close(r->st);
    rtws__redis_fail_sent(r, why);
    if (!r->dead) rtws__redis_retry(r, now, why);
}

static void rtws__redis_connect(rtws_redis *r, uint64_t now) {
    rtws_err e;
    rtws__redis_state(r, RTWS_REDIS_CONNECTING, r->last);
    if (r->dead) return;
    e = rtws_stream_connect(r->st, now);
    if (e != RTWS_OK) rtws__redis_retry(r, now, e);
}

static void rtws__redis_opened(rtws_redis *r, uint64_t now) {
    const char *argv[3];
    size_t lens[3];
    char db[16];
    rtws_redis_url u;
    rtws_resp_reset(&r->parser);
    r->hs_left = 0;
    rtws_redis_url_parse(r->cfg.url, &u); /* checked by rtws_redis_new */
    if (r->cfg.resp3) { /* HELLO 3 [AUTH user pass]: the protocol and the login in one */
        const char *h[5];
        int n = 0;
        h[n++] = "HELLO";
        h[n++] = "3";
        if (r->pass) {
            h[n++] = "AUTH";
            h[n++] = r->user ? r->user : "default";
            h[n++] = r->pass;
        }
        rtws__redis_put(r, 1, n, h, NULL);
        r->hs_left++;
    } else if (r->pass) {
        int n = 0;
        argv[n++] = "AUTH";
        if (r->user) argv[n++] = r->user;
        argv[n++] = r->pass;
        rtws__redis_put(r, 1, n, argv, NULL);
        r->hs_left++;
    }
    if (u.db) {
        argv[0] = "SELECT";
        lens[0] = 6;
        lens[1] = (size_t)snprintf(db, sizeof db, "%d", u.db);
        argv[1] = db;
        rtws__redis_put(r, 1, 2, argv, lens);
        r->hs_left++;
    }
    if (!r->hs_left) rtws__redis_ready(r, now);
}

static int rtws__redis_is(const rtws_resp_reply *e, const char *s) {
    size_t n = strlen(s);
    return (e->type == RTWS_RESP_BULK || e->type == RTWS_RESP_STRING) && e->len == n &&
           memcmp(e->str, s, n) == 0;
}

/* A pub/sub reply (RESP2 array on a subscriber connection, or a push). */
static void rtws__redis_pubsub(rtws_redis *r, const rtws_resp_reply *rep) {
    rtws_redis_message m;
    const rtws_resp_reply *e = rep->elem;
    static const char *const names[3][3] = {{"message", "pmessage", "smessage"},
                                            {"subscribe", "psubscribe", "ssubscribe"},
                                            {"unsubscribe", "punsubscribe", "sunsubscribe"}};
    int t, k;
    memset(&m, 0, sizeof m);
    m.reply = rep;
    m.type = RTWS_REDIS_PUSH;
    for (t = 0; t < 3 && rep->n >= 3; t++)
        for (k = 0; k < 3; k++)
            if (rtws__redis_is(&e[0], names[t][k])) {
                m.kind = (rtws_redis_sub_kind)k;
                m.type = t == 0 ? RTWS_REDIS_MESSAGE : t == 1 ? RTWS_REDIS_SUBSCRIBED
                                                              : RTWS_REDIS_UNSUBSCRIBED;
                goto found;
            }
found:
    if (m.type == RTWS_REDIS_MESSAGE) {
        size_t i = 1;
        if (m.kind == RTWS_REDIS_PATTERN) {
            if (rep->n < 4) return;
            m.pattern = e[1].str;
            m.pattern_len = e[1].len;
            i = 2;
        }
        m.channel = e[i].str;
        m.channel_len = e[i].len;
        m.data = e[i + 1].str;
        m.len = e[i + 1].len;
    } else if (m.type != RTWS_REDIS_PUSH) {
        m.channel = e[1].str;
        m.channel_len = e[1].len;
        m.count = e[2].integer;
    } else if (rep->n >= 1 && rtws__redis_is(&e[0], "pong")) {
        return;
    }
    if (r->cfg.on_message) r->cfg.on_message(r, &m, r->cfg.user);
}

static void rtws__redis_reply(rtws_redis *r, const rtws_resp_reply *rep, uint64_t now) {
    int sub = r->cfg.subscriber && !r->cfg.resp3 && r->state == RTWS_REDIS_OPEN && !r->hs_left;
    if (rep->type == RTWS_RESP_PUSH || (sub && rep->type == RTWS_RESP_ARRAY)) {
        rtws__redis_pubsub(r, rep);
        return;
    }
    if (sub && rep->type == RTWS_RESP_ERROR) {
        rtws_redis_message m;
        memset(&m, 0, sizeof m);
        m.type = RTWS_REDIS_ERROR;
        m.data = rep->str;
        m.len = rep->len;
        m.reply = rep;
        if (r->cfg.on_message) r->cfg.on_message(r, &m, r->cfg.user);
        return;
    }
    if (r->hs_left) {
        if (rep->type == RTWS_RESP_ERROR) {
            size_t n = RTWS__MIN(rep->len, sizeof r->errtext - 1);
            memcpy(r->errtext, rep->str, n);
            r->errtext[n] = '\0';
            rtws__redis_lost(r, now, RTWS_ERR_HANDSHAKE);
            return;
        }
        if (--r->hs_left == 0) rtws__redis_ready(r, now);
        return;
    }
    if (!r->nsent) { /* a reply nobody asked for */
        rtws__redis_lost(r, now, RTWS_ERR_PROTOCOL);
        return;
    }
    {
        rtws__rcmd c = rtws__redis_pop(r);
        if (c.cb) c.cb(r, rep, RTWS_OK, c.user);
    }
}

static void rtws__redis_release(rtws_redis *r) {
    const rtws_allocator *a = &r->ctx->cfg.conn.allocator;
    size_t i;
    for (i = 0; i < r->nsubs; i++) rtws__free(a, r->subs[i].name);
    rtws__free(a, r->subs);
    rtws__free(a, r->q);
    rtws__free(a, r->wait);
    rtws__free(a, r->strs);
    rtws_resp_free(&r->parser);
    rtws__free(a, r);
}

static void rtws__redis_event(rtws_stream *st, rtws_stream_event *ev, void *user) {
    rtws_redis *r = (rtws_redis *)user;
    (void)st;
    r->depth++;
    switch (ev->type) {
    case RTWS_STREAM_EV_OPEN: rtws__redis_opened(r, ev->now_ms); break;
    case RTWS_STREAM_EV_CLOSE:
        rtws__redis_fail_sent(r, ev->err);
        if (!r->dead) rtws__redis_retry(r, ev->now_ms, ev->err);
        break;
    case RTWS_STREAM_EV_TIMER:
        if (r->state == RTWS_REDIS_RECONNECTING) rtws__redis_connect(r, ev->now_ms);
        break;
    case RTWS_STREAM_EV_DATA: {
        size_t off = 0, used;
        while (!r->dead && rtws_stream_is_open(r->st)) {
            rtws_err e = rtws_resp_parse(&r->parser, ev->data + off, ev->len - off, &used);
            if (e == RTWS_EAGAIN) break;
            if (e != RTWS_OK) {
                rtws__redis_lost(r, ev->now_ms, RTWS_ERR_PROTOCOL);
                break;
            }
            off += used;
            ev->consumed = off;
            rtws__redis_reply(r, rtws_resp_get_reply(&r->parser), ev->now_ms);
        }
        break;
    }
    }
    if (--r->depth == 0 && r->dead) rtws__redis_release(r);
}

RTWS_API rtws_redis *rtws_redis_new(rtws_ctx *ctx, const rtws_redis_config *cfg, uint64_t now_ms,
                                    rtws_err *err) {
    const rtws_allocator *a;
    rtws_redis_url u;
    rtws_stream_config sc;
    rtws_redis *r;
    size_t ul, pl;
    char *p;
    rtws_err dummy;
    if (!err) err = &dummy;
    *err = RTWS_ERR_INVALID;
    if (!ctx || !cfg) return NULL;
    if ((*err = rtws_redis_url_parse(cfg->url, &u)) != RTWS_OK) return NULL;
    a = &ctx->cfg.conn.allocator;
    ul = cfg->username ? strlen(cfg->username) : u.user ? u.user_len : 0;
    pl = cfg->password ? strlen(cfg->password) : u.password ? u.password_len : 0;
    r = (rtws_redis *)rtws__alloc(a, sizeof *r);
    *err = RTWS_ERR_NOMEM;
    if (!r) return NULL;
    memset(r, 0, sizeof *r);
    r->cfg = *cfg;
    r->ctx = ctx;
    r->strs = p = (char *)rtws__alloc(a, strlen(cfg->url) + 1 + u.host_len + 1 + ul + 1 + pl + 1);
    if (!p) {
        rtws__free(a, r);
        return NULL;
    }
    strcpy(p, cfg->url);
    r->cfg.url = p;
    p += strlen(p) + 1;
    memcpy(p, u.host, u.host_len);
    p[u.host_len] = '\0';
    memset(&sc, 0, sizeof sc);
    sc.host = p;
    p += u.host_len + 1;
    if (cfg->username || u.user) {
        memcpy(p, cfg->username ? cfg->username : u.user, ul);
        p[ul] = '\0';
        r->user = p;
        p += ul + 1;
    }
    if (cfg->password || u.password) {
        memcpy(p, cfg->password ? cfg->password : u.password, pl);
        p[pl] = '\0';
        r->pass = p;
    }
    r->cfg.username = r->cfg.password = NULL;
    r->cfg.backoff_base_ms = RTWS__DEF(r->cfg.backoff_base_ms, 100u);
    r->cfg.backoff_max_ms = RTWS__DEF(r->cfg.backoff_max_ms, 5000u);
    r->cfg.max_pending = RTWS__DEF(r->cfg.max_pending, (size_t)1 << 20);
    r->cfg.max_output = RTWS__DEF(r->cfg.max_output, (size_t)256 << 20);
    r->rnd = ((uint64_t)(uintptr_t)r * 0x9E3779B97F4A7C15ull) ^ now_ms ^ 0x2545F4914F6CDD1Dull;
    sc.port = u.port;
    sc.on_event = rtws__redis_event;
    sc.user = r;
    sc.connect_timeout_ms = r->cfg.connect_timeout_ms;
    sc.max_output = r->cfg.max_output;
    sc.max_input = r->cfg.resp.max_reply ? r->cfg.resp.max_reply + 65536 : 0;
    if ((*err = rtws_resp_init(&r->parser, &r->cfg.resp)) != RTWS_OK ||
        !(r->st = rtws_stream_new(ctx, &sc, err))) {
        rtws__free(a, r->strs);
        rtws__free(a, r);
        return NULL;
    }
    rtws__redis_connect(r, now_ms);
    *err = RTWS_OK;
    return r;
}

RTWS_API rtws_err rtws_redis_command(rtws_redis *r, int argc, const char *const *argv,
                                     const size_t *lens, rtws_redis_reply_fn cb, void *user) {
    int direct = r->state == RTWS_REDIS_OPEN && !r->hs_left;
    rtws_err e;
    if (argc < 1 || (r->cfg.subscriber && !r->cfg.resp3) || r->dead) return RTWS_ERR_INVALID;
    if (r->qlen >= r->cfg.max_pending) return RTWS_ERR_LIMIT;
    if (r->qhead + r->qlen == r->qcap) {
        if (r->qhead) {
            memmove(r->q, r->q + r->qhead, r->qlen * sizeof *r->q);
            r->qhead = 0;
        } else {
            void *nq = r->q;
            e = rtws__grow(&r->ctx->cfg.conn.allocator, &nq, &r->qcap, r->qlen + 1, sizeof *r->q,
                           SIZE_MAX);
            if (e != RTWS_OK) return e;
            r->q = (rtws__rcmd *)nq;
        }
    }
    if ((e = rtws__redis_put(r, direct, argc, argv, lens)) != RTWS_OK) return e;
    r->q[r->qhead + r->qlen].cb = cb;
    r->q[r->qhead + r->qlen].user = user;
    r->qlen++;
    if (direct) r->nsent++;
    return RTWS_OK;
}

static rtws_err rtws__redis_sub(rtws_redis *r, int un, rtws_redis_sub_kind kind, const char *name,
                                size_t len) {
    const rtws_allocator *a = &r->ctx->cfg.conn.allocator;
    size_t i;
    rtws__rsub s;
    if (!r->cfg.subscriber || r->dead || (unsigned)kind > RTWS_REDIS_SHARD) return RTWS_ERR_INVALID;
    for (i = 0; i < r->nsubs; i++)
        if (r->subs[i].kind == kind && r->subs[i].len == len && !memcmp(r->subs[i].name, name, len))
            break;
    s.kind = kind;
    s.len = len;
    s.name = (char *)(uintptr_t)name;
    if (un) {
        if (i == r->nsubs) return RTWS_OK;
        rtws__free(a, r->subs[i].name);
        r->subs[i] = r->subs[--r->nsubs];
    } else {
        void *ns = r->subs;
        if (i < r->nsubs) return RTWS_OK;
        if (rtws__grow(a, &ns, &r->capsubs, r->nsubs + 1, sizeof *r->subs, SIZE_MAX) != RTWS_OK)
            return RTWS_ERR_NOMEM;
        r->subs = (rtws__rsub *)ns;
        if (!(s.name = (char *)rtws__alloc(a, len + 1))) return RTWS_ERR_NOMEM;
        if (len) memcpy(s.name, name, len);
        s.name[len] = '\0';
        r->subs[r->nsubs++] = s;
    }
    if (r->state == RTWS_REDIS_OPEN && !r->hs_left) rtws__redis_send_sub(r, un, &s);
    return RTWS_OK;
}

RTWS_API rtws_err rtws_redis_subscribe(rtws_redis *r, rtws_redis_sub_kind kind, const char *name,
                                       size_t len) {
    return rtws__redis_sub(r, 0, kind, name, len);
}
RTWS_API rtws_err rtws_redis_unsubscribe(rtws_redis *r, rtws_redis_sub_kind kind,
                                         const char *name, size_t len) {
    return rtws__redis_sub(r, 1, kind, name, len);
}

RTWS_API rtws_redis_state rtws_redis_get_state(const rtws_redis *r) { return r->state; }
RTWS_API size_t rtws_redis_get_pending(const rtws_redis *r) { return r->qlen; }
RTWS_API const char *rtws_redis_get_error_text(const rtws_redis *r) { return r->errtext; }

RTWS_API void rtws_redis_free(rtws_redis *r) {
    if (r->dead) return;
    r->depth++;
    r->dead = 1;
    r->state = RTWS_REDIS_CLOSED;
    rtws_stream_free(r->st);
    r->nsent = r->qlen; /* every command: sent or not, none will be */
    rtws__redis_fail_sent(r, RTWS_ERR_CLOSED);
    if (--r->depth == 0) rtws__redis_release(r);
}
#endif /* !RTWS_NO_REDIS && !RTWS_NO_HOST && !RTWS_NO_CLIENT */

#if !defined(RTWS_NO_REALTIME)
/* === layer 7: realtime ================================================== */

#if defined(RTWS__HAVE_ROUTER) || defined(RTWS__HAVE_RT) /* JSON in and out, both ends */
/* Ends the object open in w, whose buffer is *buf (*cap bytes), and finishes
   the text. When it did not fit, grows *buf to the length needed and returns
   0: write the whole text again. Otherwise returns 1, with *len the length
   written, or 0 when there is nothing to send (writer error, no memory). */
static int rtws__w_done(const rtws_allocator *a, rtws_json_writer *w, char **buf, size_t *cap,
                        size_t *len) {
    rtws_err e;
    rtws_json_write_object_end(w);
    e = rtws_json_writer_finish(w, len);
    if (e == RTWS_ERR_NOSPACE) {
        void *b = *buf;
        e = rtws__grow(a, &b, cap, *len + 1, 1, SIZE_MAX);
        *buf = (char *)b;
        if (e == RTWS_OK) return 0;
    }
    if (e != RTWS_OK) *len = 0;
    return 1;
}

/* Parses text into the token array *toks (room for *cap); when that is too
   small, grows it to the count the text needs, up to max tokens, and parses
   again. RTWS_ERR_NOSPACE when it could not grow (over max, or no memory). */
static rtws_err rtws__parse_grow(rtws_json *d, const char *text, size_t len,
                                 const rtws_allocator *a, rtws_json_tok **toks, size_t *cap,
                                 size_t max, unsigned depth) {
    rtws_err e = rtws_json_parse(d, text, len, *toks, *cap, depth);
    void *t = *toks;
    if (e != RTWS_ERR_NOSPACE || rtws__grow(a, &t, cap, d->count, sizeof **toks, max) != RTWS_OK)
        return e;
    *toks = (rtws_json_tok *)t;
    return rtws_json_parse(d, text, len, *toks, *cap, depth);
}
#endif

#if defined(RTWS__HAVE_ROUTER) /* the router's data */
/* A chained hash table of nodes that embed rtws__hnode first; keys are byte
   strings (at most 128 bytes: channel names, user and session ids, connection
   ids). Grows at load 4 (chains of two to four nodes, compared by their hash
   first; a quarter of the bucket array of load 1, which at 10,000
   connections in a channel was 52 bytes per connection over byid, users,
   sessions and the presence, 13 at load 4); never shrinks (channels and
   users are few compared with messages). A node is 24 bytes: the hash and the key's length in 32
   bits each, as every connection holds four nodes (byid, its user, session
   and presence). */
typedef struct rtws__hnode {
    struct rtws__hnode *hnext;
    const char *key;
    uint32_t hash;
    uint32_t klen;
} rtws__hnode;

typedef struct rtws__htab {
    rtws__hnode **b;
    size_t nb, count;
} rtws__htab;

static uint32_t rtws__hash(const char *k, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a, then a final mix */
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ (uint8_t)k[i]) * 1099511628211ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return (uint32_t)(h ^ (h >> 32));
}

static rtws__hnode *rtws__hfind(const rtws__htab *t, const char *k, size_t n, uint32_t h) {
    rtws__hnode *e;
    if (!t->nb) return NULL;
    for (e = t->b[h & (t->nb - 1)]; e; e = e->hnext)
        if (e->hash == h && e->klen == n && memcmp(e->key, k, n) == 0) return e;
    return NULL;
}

static int rtws__hadd(rtws__htab *t, rtws__hnode *e, const rtws_allocator *a) {
    if (t->count >= 4 * t->nb) {
        size_t old = t->nb, i;
        void *b = t->b;
        if (rtws__grow(a, &b, &t->nb, old ? old * 2 : 16, sizeof *t->b, SIZE_MAX) != RTWS_OK)
            return 0;
        t->b = (rtws__hnode **)b;
        /* the size stays a power of two, so bucket i splits into i and i + old;
           pushing to the front gives the chains a rehash into new memory would */
        memset(t->b + old, 0, (t->nb - old) * sizeof *t->b);
        for (i = 0; i < old; i++) {
            rtws__hnode *x = t->b[i], *nx;
            t->b[i] = NULL;
            for (; x; x = nx) {
                nx = x->hnext;
                x->hnext = t->b[x->hash & (t->nb - 1)];
                t->b[x->hash & (t->nb - 1)] = x;
            }
        }
    }
    e->hnext = t->b[e->hash & (t->nb - 1)];
    t->b[e->hash & (t->nb - 1)] = e;
    t->count++;
    return 1;
}

static void rtws__hdel(rtws__htab *t, rtws__hnode *e) {
    rtws__hnode **pp = &t->b[e->hash & (t->nb - 1)];
    for (; *pp; pp = &(*pp)->hnext)
        if (*pp == e) {
            *pp = e->hnext;
            t->count--;
            return;
        }
}

/* Grows a full ring (count == *cap elements, oldest at *head) up to max and
   moves its older part, *head .. old cap - 1, to the end of the new block,
   so that the elements stay at (*head + i) % *cap, oldest first. */
static rtws_err rtws__ring_grow(const rtws_allocator *a, void **p, size_t *cap, size_t *head,
                                size_t elem, size_t max) {
    size_t old = *cap, k = old - *head;
    rtws_err e = rtws__grow(a, p, cap, old + 1, elem, max);
    if (e != RTWS_OK || !*head) return e;
    memmove((char *)*p + (*cap - k) * elem, (char *)*p + *head * elem, k * elem);
    *head = *cap - k;
    return RTWS_OK;
}

typedef struct rtws__ruser {
    rtws__hnode h;     /* key: the user id */
    struct rtws__rconn *clist; /* its connections (rtws__rconn.unext) */
    uint32_t conns;    /* router connections of this user */
    uint32_t sessions; /* sessions of this user */
    uint16_t channels; /* channels this user created that still exist (max_user_channels
                          is at most 65535) */
} rtws__ruser;
/* its id (h.key), up to 63 bytes and a NUL, follows the last field, in the
   struct's tail padding: an anonymous user is 56 bytes, a 64-byte block of
   glibc's malloc */
#define RTWS__UID_OFF (offsetof(rtws__ruser, channels) + sizeof(uint16_t))

typedef struct rtws__dedupe {
    uint64_t at;      /* now_ms when first published */
    uint64_t seq;
    uint8_t len;
    char id[64];
} rtws__dedupe;

/* A session's ring of recent publish ids: cap entries follow it, the oldest
   at head. Its counts live in its block, not in the session: most sessions
   never publish with an id. */
typedef struct rtws__ddring {
    uint32_t cap, head, count, pad_;
} rtws__ddring;
#define RTWS__DD(g) ((rtws__dedupe *)(void *)((g) + 1))

typedef struct rtws__session {
    rtws__hnode h;    /* key: the session id */
    rtws__ruser *user;
    uint64_t expire;  /* when conns is 0: forget it then */
    rtws__ddring *dd; /* NULL until the first publish with an id */
    uint8_t conns;    /* connections attached, at most RTWS__SESS_CONNS (one session
                         per connection at most: these bytes are per connection too) */
} rtws__session;
/* its id (h.key) and a NUL follow the last field, in the struct's tail
   padding: 22 characters of base64url (16 random bytes) made here, up to 31
   from Redis; the block is never smaller than the struct. A session made
   here is 72 bytes, an 80-byte block of glibc's malloc */
#define RTWS__SID_OFF (offsetof(rtws__session, conns) + sizeof(uint8_t))
/* A session attached to this many open connections is not resumed by one
   more: that one gets a new session */
#define RTWS__SESS_CONNS 255u
#define RTWS__SID(s) ((char *)(s) + RTWS__SID_OFF)
#define RTWS__SESS_SIZE(n) RTWS__MAX(RTWS__SID_OFF + (n) + 1, sizeof(rtws__session))
#define RTWS__SID_NEW 23u /* rtws__session_new's id and its NUL */

typedef struct rtws__member rtws__member;

typedef struct rtws__presence {
    rtws__hnode h;    /* key: the user id, the user's own copy (h is a copy of the
                         user's node) */
    char *status;     /* set by the user (1..32 bytes); NULL: "online" */
    uint32_t count;   /* connections of the user in the channel */
} rtws__presence;

typedef struct rtws__hent {
    rtws_shared *sh;
    uint64_t at;        /* now_ms of the publish */
} rtws__hent;

typedef struct rtws__channel {
    rtws__hnode h;
    uint64_t seq;
    rtws__hent *hist;   /* ring: the last hcount messages, seq-hcount+1 .. seq */
    size_t hcap, hhead, hcount;
    uint64_t idle_at;   /* last publish, or when the last subscriber left */
    rtws__ruser *owner; /* the user who created it (NULL: the server) */
    rtws__member *subs;
    size_t nsubs;
    rtws__htab presence;
    char *name;
    struct rtws__chx *ex;  /* the Redis engine's state of the channel (else NULL) */
} rtws__channel;

/* An endpoint as the router keeps it: the config's, with defaults filled in. */
typedef struct rtws__ep {
    rtws_router_endpoint e;
    size_t nconns;
    uint64_t total;
} rtws__ep;

typedef struct rtws__rconn {
    rtws__hnode ih;                  /* first: in rtws_router.byid, the open connections
                                        (rtws__rc_first/_next walk them); key: id */
    uint64_t id;
    struct rtws__rconn *unext, *uprev; /* the connections of the same user */
    rtws_conn *conn;
    rtws__ruser *user;
    rtws__session *session;
    rtws__member *members;
    uint64_t tokens_at;              /* rate limit: last refill */
    uint64_t tokens;                 /* rate limit, in thousandths of a message */
    struct rtws__rpend *pend;        /* identity, token and refusal state, NULL when it
                                        has none (an idle anonymous connection) */
    uint32_t abuse;                  /* refusals, less one per message let through */
    uint32_t nchan;                  /* channels it is subscribed to */
    uint32_t epi;                    /* its endpoint: r->eps[epi] (RTWS__RCEP) */
    uint8_t authed, opened;
    uint8_t eng_counted;             /* in Redis's count of its user's connections */
} rtws__rconn;

/* A refused publish: its id holds back later publishes until it comes again. */
typedef struct rtws__rblock {
    uint64_t until;   /* forgotten then */
    uint64_t counts;  /* from then on the publishes held back count as abuse */
    uint8_t len;
    char id[64];
} rtws__rblock;

/* A connection's identity beyond its user: what the upgrade request asked
   for (kept for the Redis engine and rtws_router_set_identity), its
   token's state, its authentication deadline and a refused publish. An
   anonymous connection without ?session= has none until one of those comes;
   once allocated it stays until the connection goes. */
typedef struct rtws__rpend {
    char user[64];        /* from the token */
    char session[32];     /* from ?session= */
    uint64_t token_exp;   /* when the token expires (now_ms clock; 0: never) */
    uint64_t token_grace; /* token_expired sent: close at this time */
    char *claims;         /* the token's claims JSON (built-in JWT) or those of
                             rtws_router_set_identity, or NULL */
    size_t claims_len;
    uint64_t auth_deadline; /* close then unless authenticated (0: authenticated or
                               not required) */
    struct rtws__rblock *blk; /* a refused publish, while it holds back later ones */
} rtws__rpend;

static const char *rtws__pend_user(const rtws__rconn *rc) { return rc->pend ? rc->pend->user : ""; }
static const char *rtws__pend_session(const rtws__rconn *rc) {
    return rc->pend ? rc->pend->session : "";
}

struct rtws__member {
    rtws__channel *ch;
    rtws__rconn *rc;
    rtws__member *cprev, *cnext; /* in the channel */
    rtws__member *rnext;         /* in the connection */
};

/* With the Redis engine each member is followed by this (rtws__mx_of). */
enum { RTWS__M_LIVE = 0, RTWS__M_WAIT, RTWS__M_FETCH };
typedef struct rtws__mx {
    uint64_t last;    /* the member's latest seq: live messages after it go out */
    uint64_t since;   /* of the fetch to make (has_since) */
    uint32_t gen;     /* of the fetch under way */
    uint8_t state;    /* RTWS__M_LIVE, _WAIT (for the SUBSCRIBE), _FETCH (its range) */
    uint8_t has_since, reply, idl; /* reply: "subscribed" (with id) still owed */
    char id[64];
} rtws__mx;
#define rtws__mx_of(m) ((rtws__mx *)(void *)((m) + 1))

/* An ack held back until the publisher, subscribed on this node, got the message. */
typedef struct rtws__rack {
    uint64_t conn, seq;
    uint8_t idl;
    char id[64];
} rtws__rack;

/* A user present in a channel somewhere in the cluster (rtws__chx.pres). */
typedef struct rtws__pm {
    rtws__hnode h;    /* key: name */
    char status[33];
    char name[64];
} rtws__pm;

typedef struct rtws__chx {
    int confirmed;    /* the node's SUBSCRIBE was confirmed (else it is under way) */
    rtws__rack *acks;
    size_t nacks, acap;
    rtws__htab pres;  /* the channel's presence on every node, as Redis last said it
                         (a subscribe's fetch) and its presence messages since */
    size_t members;   /* users present on every node (Redis's count) */
    int pres_known;   /* pres was loaded */
} rtws__chx;

struct rtws_router {
    rtws_router_config cfg;
    rtws__htab channels, users, sessions;
    size_t nconns, nsubs, users_online;
    uint64_t total_conns, msgs_in, msgs_out, publishes, started, next_sweep;
    rtws_json_tok *toks;
    size_t tokcap;
    char *out;                   /* JSON being written */
    size_t outcap;
    rtws_json_writer w;
    rtws_budget own, *budget;    /* budget is &own, or the context's (rtws_router_install) */
    size_t mem, hist_bytes;      /* bytes charged for channels, history and sessions */
    uint64_t now;                /* latest now_ms seen */
    uint64_t expired, shed, refused_overloaded, refused_rate;
    rtws__ep *eps;               /* at least one */
    size_t neps;
    rtws__htab byid;             /* open connections by id: the list of them too */
    size_t npend;                /* connections with a pend record: the timer pass
                                    walks the connections only when some have one */
    uint64_t next_id;
    char health[32];
    struct rtws__reng *eng;      /* the Redis engine, or NULL: the memory engine */
};

static const rtws_allocator *rtws__ra(const rtws_router *r) { return &r->cfg.allocator; }
#define RTWS__RCEP(r, rc) (&(r)->eps[(rc)->epi])

/* The open connections, in r->byid's order (no list of their own keeps 16
   bytes off each): a loop may let the one it is at go, having taken the
   next first, but no connection may open during it (a table that grows
   moves them). */
static rtws__rconn *rtws__rc_after(const rtws_router *r, size_t i) {
    for (; i < r->byid.nb; i++)
        if (r->byid.b[i]) return (rtws__rconn *)(void *)r->byid.b[i];
    return NULL;
}
static rtws__rpend *rtws__pend_get(rtws_router *r, rtws__rconn *rc) {
    if (!rc->pend) {
        rc->pend = (rtws__rpend *)rtws__alloc(rtws__ra(r), sizeof *rc->pend);
        if (!rc->pend) return NULL;
        memset(rc->pend, 0, sizeof *rc->pend);
        r->npend++;
    }
    return rc->pend;
}
static void rtws__pend_drop(rtws_router *r, rtws__rconn *rc) {
    if (!rc->pend) return;
    rtws__free(rtws__ra(r), rc->pend);
    rc->pend = NULL;
    r->npend--;
}

static rtws__rconn *rtws__rc_first(const rtws_router *r) { return rtws__rc_after(r, 0); }
static rtws__rconn *rtws__rc_next(const rtws_router *r, const rtws__rconn *rc) {
    if (rc->ih.hnext) return (rtws__rconn *)(void *)rc->ih.hnext;
    return rtws__rc_after(r, (rc->ih.hash & (r->byid.nb - 1)) + 1);
}

/* Charges (add) or gives back n bytes of the router's own data. A charge
   asks the budget for the room first (its reclaim closes the largest send
   queues), but is not refused: what may be refused is, before it comes
   here (new channels, history: rtws_budget_get_level). */
static void rtws__rmem(rtws_router *r, size_t n, int add) {
    if (!r->budget) return; /* rtws_router_free */
    if (add) {
        rtws_budget_make_room(r->budget, n);
        r->mem += n;
        rtws_budget_charge(r->budget, n);
    } else {
        r->mem -= n;
        rtws_budget_credit(r->budget, n);
    }
}

#define RTWS__RLOCAL 256 /* live messages a Redis node keeps per channel (catch-up) */
#if defined(RTWS__HAVE_RENGINE)
/* The Redis engine (docs/PROTOCOL.md "Cluster"): what the router calls. */
static void rtws__eng_chan_free(rtws_router *r, rtws__channel *ch);
static void rtws__eng_subscribe(rtws_router *r, rtws__rconn *rc, rtws__channel *ch,
                                rtws__member *m, int reply, const char *id, size_t idl,
                                int has_since, uint64_t since);
static rtws_err rtws__eng_publish(rtws_router *r, rtws__rconn *rc, const char *chan, size_t cn,
                                  const char *event, size_t en, const char *data, size_t dn,
                                  const char *from, const char *id, size_t idl, uint64_t now);
static int rtws__eng_session_load(rtws_router *r, rtws__rconn *rc);
static int rtws__eng_cap_check(rtws_router *r, rtws__rconn *rc);
static void rtws__eng_uncount(rtws_router *r, rtws__rconn *rc);
static void rtws__eng_session_save(rtws_router *r, const rtws__session *s);
static void rtws__eng_pres(rtws_router *r, const rtws__channel *ch, const char *user, int what,
                           const char *status);
static void rtws__eng_recount(rtws_router *r, rtws__rconn *rc);
#endif
static void rtws__open_session(rtws_router *r, rtws__rconn *rc, uint64_t now);
#endif /* RTWS__HAVE_ROUTER */

/* ---- JSON tokens (HS256) ---- */

static size_t rtws__b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap) {
    return rtws_base64url_decode(in, len, out, cap);
}

static size_t rtws__b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap) {
    return rtws_base64url_encode(in, len, out, cap);
}

RTWS_API size_t rtws_jwt_hs256_sign(const char *claims_json, const void *secret,
                                    size_t secret_len, char *out, size_t cap) {
    static const char head[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    size_t n, k, cl = strlen(claims_json);
    uint8_t mac[32];
    n = rtws__b64url_encode((const uint8_t *)head, sizeof head - 1, out, cap);
    if (!n || n + 2 >= cap) return 0;
    out[n++] = '.';
    k = rtws__b64url_encode((const uint8_t *)claims_json, cl, out + n, cap - n);
    if (!k) return 0;
    n += k;
    rtws_hmac_sha256(secret, secret_len, out, n, mac);
    if (n + 2 >= cap) return 0;
    out[n++] = '.';
    k = rtws__b64url_encode(mac, 32, out + n, cap - n);
    return k ? n + k : 0;
}

static int64_t rtws__add_sat(int64_t a, int64_t b) {
    if (b > 0 && a > INT64_MAX - b) return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b) return INT64_MIN;
    return a + b;
}

/* RFC 7519 §2 NumericDate claim name: RTWS_OK with *t, RTWS_EAGAIN when
   absent, RTWS_ERR_SYNTAX when not a number, RTWS_ERR_RANGE when not a whole
   number of seconds within int64 ("1.5", "1e30"). */
static rtws_err rtws__jwt_time(const rtws_json *doc, const char *name, int64_t *t) {
    int v = rtws_json_get(doc, 0, name);
    rtws_err e;
    if (v < 0) return RTWS_EAGAIN;
    e = rtws_json_int64(doc, v, t);
    return e == RTWS_OK || e == RTWS_ERR_RANGE ? e : RTWS_ERR_SYNTAX;
}

/* The user claim v: a string of printable bytes, or an integer ("userId": 42). */
static rtws_err rtws__jwt_user(const rtws_json *doc, int v, char user[64]) {
    size_t ul, i;
    int64_t n;
    const rtws_json_tok *tk = rtws_json_tok_at(doc, v);
    if (tk->type == RTWS_JSON_NUMBER && rtws_json_int64(doc, v, &n) == RTWS_OK) {
        snprintf(user, 64, "%lld", (long long)n);
        return RTWS_OK;
    }
    if (tk->type != RTWS_JSON_STRING || rtws_json_unescape(doc, v, user, 64, &ul) != RTWS_OK ||
        ul == 0 || strlen(user) != ul) {
        user[0] = '\0';
        return RTWS_ERR_SYNTAX;
    }
    for (i = 0; i < ul; i++)
        if ((uint8_t)user[i] < 0x20 || user[i] == 0x7f) {
            user[0] = '\0';
            return RTWS_ERR_SYNTAX;
        }
    return RTWS_OK;
}

RTWS_API rtws_err rtws_jwt_hs256_verify_claims(const char *token, size_t len, const void *secret,
                                               size_t secret_len, int64_t now_s,
                                               const rtws_jwt_opts *opts, rtws_jwt_claims *out,
                                               char *json, size_t json_cap) {
    const char *d1, *d2;
    uint8_t buf[3072], mac[32], sig[40];
    rtws_json_tok toks[256];
    rtws_json doc;
    rtws_jwt_claims cl;
    size_t n, hl, pl, i;
    int v;
    int64_t leeway_s = opts && opts->leeway_s > 0 ? opts->leeway_s : 0;
    rtws_err e;
    static const char *const tnames[3] = {"exp", "nbf", "iat"};
    int64_t *tvals[3];
    memset(&cl, 0, sizeof cl);
    tvals[0] = &cl.exp;
    tvals[1] = &cl.nbf;
    tvals[2] = &cl.iat;
    if (out) memset(out, 0, sizeof *out);
    if (json && json_cap) json[0] = '\0';
    if (len > 4096) return RTWS_ERR_TOO_BIG;
    d1 = (const char *)memchr(token, '.', len);
    if (!d1) return RTWS_ERR_SYNTAX;
    d2 = (const char *)memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token))) return RTWS_ERR_SYNTAX;
    hl = (size_t)(d1 - token);
    pl = (size_t)(d2 - d1 - 1);
    /* the header: alg must be exactly HS256 (never "none", never RS/ES) */
    n = rtws__b64url_decode(token, hl, buf, sizeof buf);
    if (n == (size_t)-1 || rtws_json_parse(&doc, (const char *)buf, n, toks, 256, 8) != RTWS_OK ||
        toks[0].type != RTWS_JSON_OBJECT)
        return RTWS_ERR_SYNTAX;
    v = rtws_json_get(&doc, 0, "alg");
    if (v < 0 || !rtws_json_eq(&doc, v, "HS256")) return RTWS_ERR_INVALID;
    n = rtws__b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - token), sig, sizeof sig);
    if (n != 32) return RTWS_ERR_SYNTAX;
    rtws_hmac_sha256(secret, secret_len, token, (size_t)(d2 - token), mac);
    if (!rtws_ct_equal(mac, sig, 32)) return RTWS_ERR_INVALID;
    /* the claims */
    n = rtws__b64url_decode(d1 + 1, pl, buf, sizeof buf);
    if (n == (size_t)-1 || rtws_json_parse(&doc, (const char *)buf, n, toks, 256, 8) != RTWS_OK ||
        toks[0].type != RTWS_JSON_OBJECT)
        return RTWS_ERR_SYNTAX;
    /* the times: their form first (a malformed one is a malformed token),
       then exp and nbf compared with saturating sums: "exp":
       9223372036854775807 is a token that never expires, not a wrapped one */
    for (i = 0; i < 3; i++) {
        e = rtws__jwt_time(&doc, tnames[i], tvals[i]);
        if (e == RTWS_OK) cl.has |= 1u << i;
        else if (e != RTWS_EAGAIN) return e;
    }
    if ((cl.has & RTWS_JWT_EXP) && now_s >= rtws__add_sat(cl.exp, leeway_s)) return RTWS_ERR_TIMEOUT;
    if ((cl.has & RTWS_JWT_NBF) && rtws__add_sat(now_s, leeway_s) < cl.nbf) return RTWS_ERR_TIMEOUT;
    if (opts && opts->user_claim) {
        v = rtws_json_get(&doc, 0, opts->user_claim);
    } else {
        v = rtws_json_get(&doc, 0, "sub");
        if (v < 0) v = rtws_json_get(&doc, 0, "user");
    }
    if (v >= 0 && (e = rtws__jwt_user(&doc, v, cl.user)) != RTWS_OK) return e;
    if (opts && opts->required)
        for (i = 0; opts->required[i]; i++)
            if (rtws_json_get(&doc, 0, opts->required[i]) < 0) return RTWS_ERR_INVALID;
    if (json) {
        if (json_cap < n + 1) return RTWS_ERR_NOSPACE;
        memcpy(json, buf, n);
        json[n] = '\0';
        cl.json_len = n;
    }
    if (out) *out = cl;
    return RTWS_OK;
}

RTWS_API rtws_err rtws_jwt_hs256_verify(const char *token, size_t len, const void *secret,
                                        size_t secret_len, int64_t now_s, int64_t leeway_s,
                                        char user[64]) {
    rtws_jwt_opts o;
    rtws_jwt_claims cl;
    rtws_err e;
    memset(&o, 0, sizeof o);
    o.leeway_s = leeway_s;
    e = rtws_jwt_hs256_verify_claims(token, len, secret, secret_len, now_s, &o, &cl, NULL, 0);
    memcpy(user, e == RTWS_OK ? cl.user : "", e == RTWS_OK ? sizeof cl.user : 1);
    return e;
}

#if defined(RTWS__HAVE_ROUTER)
/* ---- writing replies ---- */

static void rtws__w_begin(rtws_router *r) {
    rtws_json_writer_init(&r->w, r->out, r->outcap);
    rtws_json_write_object(&r->w);
}
static void rtws__w_str(rtws_router *r, const char *k, const char *v, size_t n) {
    rtws_json_write_key(&r->w, k, strlen(k));
    rtws_json_write_string(&r->w, v, n);
}
static void rtws__w_strz(rtws_router *r, const char *k, const char *v) {
    rtws__w_str(r, k, v, strlen(v));
}
static void rtws__w_int(rtws_router *r, const char *k, int64_t v) {
    rtws_json_write_key(&r->w, k, strlen(k));
    rtws_json_write_int64(&r->w, v);
}
/* rtws__w_done on the router's reply buffer: 0 means write the reply again. */
static int rtws__w_end(rtws_router *r, size_t *len) {
    return rtws__w_done(rtws__ra(r), &r->w, &r->out, &r->outcap, len);
}

/* A reply that does not fit the connection's queue is never dropped
   silently (a "reset" without its "subscribed" would break the protocol):
   the connection is closed as a slow consumer and resumes later. */
static void rtws__rt_send(rtws_router *r, rtws__rconn *rc, size_t len) {
    rtws_err e;
    if (!len) return;
    e = rtws_conn_send_text(rc->conn, r->out, len);
    if (e == RTWS_OK) r->msgs_out++;
    else if (e == RTWS_ERR_LIMIT) rtws_conn_close(rc->conn, RTWS_CLOSE_TRY_AGAIN, "slow consumer");
}

static rtws_err rtws__rt_error(rtws_router *r, rtws__rconn *rc, const char *code,
                               const char *msg, const char *id, size_t idlen) {
    size_t len;
    do {
        rtws__w_begin(r);
        rtws__w_strz(r, "type", "error");
        rtws__w_strz(r, "code", code);
        rtws__w_strz(r, "message", msg);
        if (id) rtws__w_str(r, "id", id, idlen);
    } while (!rtws__w_end(r, &len));
    rtws__rt_send(r, rc, len);
    return RTWS_OK;
}

/* A refusal to try again later ("rate_limited", "overloaded"): the error
   carries retry_after_ms. A refused publish with an id holds back the
   connection's later publishes until it comes again (or retry_after_ms +
   10 s pass), so that a client resending it keeps its order. */
static void rtws__rt_refuse(rtws_router *r, rtws__rconn *rc, const char *code, const char *msg,
                            const char *id, size_t idl, int publish, uint64_t retry_ms,
                            uint64_t now) {
    size_t len;
    if (retry_ms < 1) retry_ms = 1;
    do {
        rtws__w_begin(r);
        rtws__w_strz(r, "type", "error");
        rtws__w_strz(r, "code", code);
        rtws__w_strz(r, "message", msg);
        if (id) rtws__w_str(r, "id", id, idl);
        rtws__w_int(r, "retry_after_ms", (int64_t)retry_ms);
    } while (!rtws__w_end(r, &len));
    rtws__rt_send(r, rc, len);
    if (publish && id && !(rc->pend && rc->pend->blk)) {
        /* out of memory: later publishes are not held back */
        rtws__rblock *b;
        if (!rtws__pend_get(r, rc)) return;
        b = (rtws__rblock *)rtws__alloc(rtws__ra(r), sizeof *b);
        if (!b) return;
        memcpy(b->id, id, idl);
        b->len = (uint8_t)idl;
        b->counts = now + retry_ms + 1000;
        b->until = now + retry_ms + 10000;
        rc->pend->blk = b;
    }
}

RTWS_API rtws_err rtws_router_send_error(rtws_router *r, rtws_conn *c, const char *code,
                                    const char *message, const char *id) {
    rtws__rconn *rc = (rtws__rconn *)c->priv_.ext_;
    if (!rc) return RTWS_ERR_INVALID;
    return rtws__rt_error(r, rc, code, message ? message : code, id, id ? strlen(id) : 0);
}

/* Sends the bytes in r->out to every subscriber of ch but skip, as one shared
   frame. A subscriber whose queue is full is closed with 1013: it resumes
   from its last seq when it comes back. */
static void rtws__fanout(rtws_router *r, rtws__channel *ch, rtws_shared *sh, const rtws__rconn *skip,
                         int builtin) {
    rtws__member *m, *nx;
    for (m = ch->subs; m; m = nx) {
        rtws_err e;
        nx = m->cnext;
        if (m->rc == skip || (builtin && RTWS__RCEP(r, m->rc)->e.builtin_protocol_off)) continue;
        e = rtws_conn_send_shared(m->rc->conn, sh);
        if (e == RTWS_OK) r->msgs_out++;
        else if (e == RTWS_ERR_LIMIT) rtws_conn_close(m->rc->conn, RTWS_CLOSE_TRY_AGAIN, "slow consumer");
    }
}

static void rtws__presence_event(rtws_router *r, rtws__channel *ch, const char *user,
                                 const char *status, const rtws__rconn *skip) {
    size_t len;
    rtws_shared *sh;
    if (r->cfg.on_presence) r->cfg.on_presence(r, ch->name, user, status, r->cfg.user);
    do {
        rtws__w_begin(r);
        rtws__w_strz(r, "type", "presence");
        rtws__w_str(r, "channel", ch->name, ch->h.klen);
        rtws__w_strz(r, "user", user);
        rtws__w_strz(r, "status", status);
    } while (!rtws__w_end(r, &len));
    if (!len || !(sh = rtws_shared_new(rtws__ra(r), RTWS_OP_TEXT, r->out, len))) return;
    rtws__fanout(r, ch, sh, skip, 1);
    rtws_shared_release(sh);
}

/* ---- users, sessions, channels ---- */

static const char *rtws__pstatus(const rtws__presence *p) { return p->status ? p->status : "online"; }
/* status: 1..32 bytes, checked; out of memory keeps the one before */
static void rtws__pstatus_set(rtws_router *r, rtws__presence *p, const char *status) {
    if (!p->status && !(p->status = (char *)rtws__alloc(rtws__ra(r), 33))) return;
    memcpy(p->status, status, strlen(status) + 1);
}

static void rtws__rblock_drop(rtws_router *r, rtws__rconn *rc) {
    if (!rc->pend) return;
    rtws__free(rtws__ra(r), rc->pend->blk);
    rc->pend->blk = NULL;
}

static rtws__ruser *rtws__user_get(rtws_router *r, const char *name) {
    size_t n = strlen(name);
    uint32_t h = rtws__hash(name, n);
    rtws__ruser *u = (rtws__ruser *)rtws__hfind(&r->users, name, n, h);
    if (u) return u;
    if (n >= 64) return NULL;
    /* never less than the struct: an object of its type fits in the block */
    u = (rtws__ruser *)rtws__alloc(rtws__ra(r), RTWS__MAX(RTWS__UID_OFF + n + 1, sizeof *u));
    if (!u) return NULL;
    memset(u, 0, RTWS__UID_OFF);
    memcpy((char *)u + RTWS__UID_OFF, name, n + 1);
    u->h.key = (const char *)u + RTWS__UID_OFF;
    u->h.klen = (uint32_t)n;
    u->h.hash = h;
    if (!rtws__hadd(&r->users, &u->h, rtws__ra(r))) {
        rtws__free(rtws__ra(r), u);
        return NULL;
    }
    return u;
}

/* Moves rc to u's list of connections (u NULL: off every list). */
static void rtws__user_link(rtws__rconn *rc, rtws__ruser *u) {
    if (rc->user) {
        if (rc->uprev) rc->uprev->unext = rc->unext;
        else rc->user->clist = rc->unext;
        if (rc->unext) rc->unext->uprev = rc->uprev;
        rc->unext = rc->uprev = NULL;
    }
    if (!u) return;
    rc->unext = u->clist;
    if (u->clist) u->clist->uprev = rc;
    u->clist = rc;
}

/* Users are kept while a connection or a session refers to them. */
static void rtws__user_maybe_drop(rtws_router *r, rtws__ruser *u) {
    if (!u || u->conns || u->sessions || u->channels) return;
    rtws__hdel(&r->users, &u->h);
    rtws__free(rtws__ra(r), u);
}

static int rtws__rt_random(rtws_router *r, void *buf, size_t n) {
    if (r->cfg.random) return r->cfg.random(buf, n, r->cfg.random_user);
#if !defined(RTWS_NO_SYSTEM_RANDOM)
    return rtws_random_system(buf, n, NULL);
#else
    return -1;
#endif
}

static rtws__session *rtws__session_new(rtws_router *r, rtws__ruser *u) {
    uint8_t raw[16];
    rtws__session *s;
    size_t n;
    if (rtws__rt_random(r, raw, sizeof raw) != 0) return NULL;
    s = (rtws__session *)rtws__alloc(rtws__ra(r), RTWS__SESS_SIZE(RTWS__SID_NEW - 1));
    if (!s) return NULL;
    memset(s, 0, RTWS__SID_OFF);
    n = rtws__b64url_encode(raw, sizeof raw, RTWS__SID(s), RTWS__SID_NEW);
    if (!n) {
        rtws__free(rtws__ra(r), s);
        return NULL;
    }
    s->h.key = RTWS__SID(s);
    s->h.klen = (uint32_t)n;
    s->h.hash = rtws__hash(s->h.key, n);
    s->user = u;
    if (!rtws__hadd(&r->sessions, &s->h, rtws__ra(r))) {
        rtws__free(rtws__ra(r), s);
        return NULL;
    }
    u->sessions++;
    rtws__rmem(r, RTWS__SESS_SIZE(n), 1);
    return s;
}

static void rtws__session_free(rtws_router *r, rtws__session *s) {
    rtws__ruser *u = s->user;
    rtws__hdel(&r->sessions, &s->h);
    rtws__rmem(r, RTWS__SESS_SIZE(s->h.klen) +
                      (s->dd ? sizeof *s->dd + s->dd->cap * sizeof(rtws__dedupe) : 0), 0);
    u->sessions--;
    rtws__free(rtws__ra(r), s->dd);
    rtws__free(rtws__ra(r), s);
    rtws__user_maybe_drop(r, u);
}

static rtws__channel *rtws__channel_get(rtws_router *r, const char *name, size_t n, int create) {
    uint32_t h = rtws__hash(name, n);
    rtws__channel *ch = (rtws__channel *)rtws__hfind(&r->channels, name, n, h);
    if (ch || !create) return ch;
    ch = (rtws__channel *)rtws__alloc(rtws__ra(r), sizeof *ch + n + 1);
    if (!ch) return NULL;
    memset(ch, 0, sizeof *ch);
    ch->name = (char *)(ch + 1);
    memcpy(ch->name, name, n);
    ch->name[n] = '\0';
    ch->h.key = ch->name;
    ch->h.klen = (uint32_t)n;
    ch->h.hash = h;
    if (!rtws__hadd(&r->channels, &ch->h, rtws__ra(r))) {
        rtws__free(rtws__ra(r), ch);
        return NULL;
    }
    ch->idle_at = r->now;
    rtws__rmem(r, sizeof *ch + n + 1, 1);
    return ch;
}

/* Drops the channel's oldest history message. */
static void rtws__hist_pop(rtws_router *r, rtws__channel *ch) {
    rtws_shared *sh = ch->hist[ch->hhead].sh;
    size_t cost = sizeof *sh + sh->cap;
    r->hist_bytes -= cost;
    rtws__rmem(r, cost, 0);
    rtws_shared_release(sh);
    ch->hhead = (ch->hhead + 1) % ch->hcap;
    ch->hcount--;
}

/* Frees a channel, its history and its presence table. */
static void rtws__channel_free(rtws_router *r, rtws__channel *ch) {
    rtws__ruser *owner = ch->owner;
#if defined(RTWS__HAVE_RENGINE)
    if (ch->ex) rtws__eng_chan_free(r, ch);
#endif
    while (ch->hcount) rtws__hist_pop(r, ch);
    rtws__rmem(r, sizeof *ch + ch->h.klen + 1 + ch->hcap * sizeof *ch->hist, 0);
    rtws__hdel(&r->channels, &ch->h);
    rtws__free(rtws__ra(r), ch->presence.b);
    rtws__free(rtws__ra(r), ch->hist);
    rtws__free(rtws__ra(r), ch);
    if (owner) {
        owner->channels--;
        rtws__user_maybe_drop(r, owner);
    }
}

/* The budget's level with n more bytes: is adding n over 7/8 of the limit? */
static int rtws__over_history(const rtws_budget *b, size_t n) {
    size_t t = b->limit - b->limit / 8;
    return b->limit && (b->used > t || n > t - b->used);
}

/* Under memory pressure history goes, oldest message first, across every
   channel, until n more bytes fit under 7/8 of the budget. */
static void rtws__history_shed(rtws_router *r, size_t n) {
    while (rtws__over_history(r->budget, n)) {
        rtws__channel *old = NULL;
        uint64_t next = UINT64_MAX;
        size_t i;
        for (i = 0; i < r->channels.nb; i++) {
            rtws__hnode *e;
            for (e = r->channels.b[i]; e; e = e->hnext) {
                rtws__channel *ch = (rtws__channel *)e;
                uint64_t at;
                if (!ch->hcount) continue;
                at = ch->hist[ch->hhead].at;
                if (!old || at < old->hist[old->hhead].at) {
                    if (old) next = old->hist[old->hhead].at;
                    old = ch;
                } else if (at < next) {
                    next = at;
                }
            }
        }
        if (!old) return;
        do { /* from the oldest channel while it stays the oldest */
            rtws__hist_pop(r, old);
            r->shed++;
        } while (old->hcount && old->hist[old->hhead].at <= next && rtws__over_history(r->budget, n));
    }
}

/* Adds a message to the channel's history ring (which holds a reference).
   Near the memory budget the oldest history goes first; when the message
   still does not fit, the channel's history is emptied instead (the ring
   must hold the messages just before seq: a later "since" gets "reset"). */
static void rtws__history_add(rtws_router *r, rtws__channel *ch, rtws_shared *sh, uint64_t now) {
    /* with the Redis engine the history lives in Redis: the node keeps only
       the latest live messages, to catch up members whose fetch is late */
    size_t cap = r->eng ? (size_t)RTWS__RLOCAL : r->cfg.history, cost = sizeof *sh + sh->cap;
    if (!cap) return;
    if (rtws__over_history(r->budget, cost)) rtws__history_shed(r, cost);
    if (rtws__over_history(r->budget, cost)) {
        while (ch->hcount) rtws__hist_pop(r, ch);
        return;
    }
    if (ch->hcap < cap && ch->hcount == ch->hcap) { /* grow lazily up to the cap */
        void *h = ch->hist;
        size_t old = ch->hcap;
        rtws_err e = rtws__ring_grow(rtws__ra(r), &h, &ch->hcap, &ch->hhead, sizeof *ch->hist, cap);
        ch->hist = (rtws__hent *)h;
        rtws__rmem(r, (ch->hcap - old) * sizeof *ch->hist, 1);
        if (e != RTWS_OK) {
            while (ch->hcount) rtws__hist_pop(r, ch);
            return;
        }
    }
    if (ch->hcount == ch->hcap) rtws__hist_pop(r, ch);
    sh->refs++;
    ch->hist[(ch->hhead + ch->hcount) % ch->hcap].sh = sh;
    ch->hist[(ch->hhead + ch->hcount) % ch->hcap].at = now;
    ch->hcount++;
    r->hist_bytes += cost;
    rtws__rmem(r, cost, 1);
}

static rtws__member *rtws__member_of(const rtws__rconn *rc, const rtws__channel *ch) {
    rtws__member *m;
    for (m = rc->members; m; m = m->rnext)
        if (m->ch == ch) return m;
    return NULL;
}

static void rtws__leave_channel(rtws_router *r, rtws__rconn *rc, rtws__member *m) {
    rtws__channel *ch = m->ch;
    rtws__member **pp;
    rtws__presence *p;
    const char *uname = rc->user->h.key;
    size_t un = rc->user->h.klen;
    if (m->cprev) m->cprev->cnext = m->cnext;
    else ch->subs = m->cnext;
    if (m->cnext) m->cnext->cprev = m->cprev;
    for (pp = &rc->members; *pp; pp = &(*pp)->rnext)
        if (*pp == m) {
            *pp = m->rnext;
            break;
        }
    rc->nchan--;
    if (--ch->nsubs == 0) ch->idle_at = r->now;
    r->nsubs--;
    rtws__free(rtws__ra(r), m);
    p = (rtws__presence *)rtws__hfind(&ch->presence, uname, un, rc->user->h.hash);
    if (p && --p->count == 0) {
        rtws__hdel(&ch->presence, &p->h);
        rtws__free(rtws__ra(r), p->status);
        rtws__free(rtws__ra(r), p);
#if defined(RTWS__HAVE_RENGINE)
        if (r->eng) rtws__eng_pres(r, ch, uname, 2, NULL); /* "left" when the last node's goes */
        else
#endif
        if (ch->presence.count < r->cfg.max_presence)
            rtws__presence_event(r, ch, uname, "left", NULL);
    }
}

/* A channel that never saw a publish goes with its last subscriber; one
   with a seq stays until channel_ttl_ms expires it (rtws_router_run_timers).
   On a Redis node every channel goes with its last local subscriber: its
   seq and history stay in Redis. */
static void rtws__channel_maybe_drop(rtws_router *r, rtws__channel *ch) {
    if (ch->nsubs || ((ch->hcount || ch->seq) && !r->eng)) return;
    rtws__channel_free(r, ch);
}

/* ---- protocol ---- */

/* A request from a client, as far as the dispatcher has checked it for the
   handler (rtws__req_types says which checks a type gets). */
typedef struct rtws__req {
    const rtws_json *d; /* the whole message, an object with a string "type" */
    uint64_t now;
    const char *id;     /* its "id" (1 to 64 bytes), NULL when absent */
    size_t idl;
    const char *chan;   /* RTWS__REQ_CHANNEL: its "channel", a valid name */
    size_t cn;
    rtws__channel *ch;  /* RTWS__REQ_MEMBER: that channel, and rc's membership */
    rtws__member *m;
    int publish;        /* a "publish" (refusals to retry hold back later ones) */
} rtws__req;

/* A string field of the request as a C string in buf (cap bytes), checked
   to be 1..cap-1 bytes without control characters. 0 when absent or bad. */
static size_t rtws__field(const rtws_json *d, const char *key, char *buf, size_t cap, int *bad) {
    int v = rtws_json_get(d, 0, key);
    size_t n = 0, i;
    const rtws_json_tok *t;
    buf[0] = '\0';
    if (v < 0) return 0;
    t = rtws_json_tok_at(d, v);
    if (t->type != RTWS_JSON_STRING || rtws_json_unescape(d, v, buf, cap, &n) != RTWS_OK || !n ||
        strlen(buf) != n) {
        buf[0] = '\0';
        *bad = 1;
        return 0;
    }
    for (i = 0; i < n; i++)
        if ((uint8_t)buf[i] < 0x20 || buf[i] == 0x7f) {
            buf[0] = '\0';
            *bad = 1;
            return 0;
        }
    return n;
}

static void rtws__send_welcome(rtws_router *r, rtws__rconn *rc, uint64_t now, int resumed) {
    size_t len;
    do {
        rtws__w_begin(r);
        rtws__w_strz(r, "type", "welcome");
        rtws__w_strz(r, "user", rc->user->h.key);
        rtws__w_strz(r, "session", rc->session->h.key);
        rtws__w_int(r, "time", (int64_t)now + r->cfg.wall_offset_ms);
        rtws__w_int(r, "heartbeat", (int64_t)r->cfg.heartbeat_ms);
        rtws__w_strz(r, "auth", RTWS__RCEP(r, rc)->e.auth_required ? "required" : "optional");
        rtws_json_write_key(&r->w, "resumed", 7);
        rtws_json_write_bool(&r->w, resumed);
        if (RTWS__RCEP(r, rc)->e.rate_per_s) { /* so that a client can pace itself */
            rtws_json_write_key(&r->w, "rate_limit", 10);
            rtws_json_write_object(&r->w);
            rtws__w_int(r, "per_s", (int64_t)RTWS__RCEP(r, rc)->e.rate_per_s);
            rtws__w_int(r, "burst", (int64_t)RTWS__RCEP(r, rc)->e.rate_burst);
            rtws_json_write_object_end(&r->w);
        }
    } while (!rtws__w_end(r, &len));
    rtws__rt_send(r, rc, len);
}

static void rtws__send_authenticated(rtws_router *r, rtws__rconn *rc) {
    size_t len;
    do {
        rtws__w_begin(r);
        rtws__w_strz(r, "type", "authenticated");
        rtws__w_strz(r, "user", rc->user->h.key);
        rtws__w_strz(r, "session", rc->session->h.key);
    } while (!rtws__w_end(r, &len));
    rtws__rt_send(r, rc, len);
}

/* What a verified token leaves on its connection: a JWT's claims and expiry. */
typedef struct rtws__tokinfo {
    uint64_t exp_at;  /* on the now_ms clock, exp plus leeway (0: never) */
    size_t json_len;  /* 0: no claims (the auth hook's token) */
    char json[3073];
} rtws__tokinfo;

/* Checks a token with the auth hook or the built-in HS256 verifier. */
static int rtws__check_token(rtws_router *r, rtws_conn *c, const char *tok, size_t n, uint64_t now,
                             char user[64], rtws__tokinfo *ti) {
    user[0] = '\0';
    ti->exp_at = 0;
    ti->json_len = 0;
    if (r->cfg.auth) return r->cfg.auth(r, c, tok, n, user, r->cfg.user) == 0 && user[0] ? 0 : -1;
    if (r->cfg.jwt_secret) {
        int64_t wall_ms = (int64_t)now + r->cfg.wall_offset_ms;
        int64_t leeway = r->cfg.jwt_leeway_s < 0 ? 0 : r->cfg.jwt_leeway_s;
        rtws_jwt_opts o;
        rtws_jwt_claims cl;
        memset(&o, 0, sizeof o);
        o.user_claim = r->cfg.jwt_user_claim;
        o.leeway_s = leeway;
        if (rtws_jwt_hs256_verify_claims(tok, n, r->cfg.jwt_secret, r->cfg.jwt_secret_len,
                                         wall_ms / 1000, &o, &cl, ti->json, sizeof ti->json) != RTWS_OK ||
            !cl.user[0])
            return -1;
        memcpy(user, cl.user, sizeof cl.user);
        ti->json_len = cl.json_len;
        if (cl.has & RTWS_JWT_EXP) { /* saturated: exp 2^63-1 never comes */
            int64_t end = rtws__add_sat(cl.exp, leeway), at;
            if (end < (INT64_MAX - 1000) / 1000) {
                at = end * 1000 - r->cfg.wall_offset_ms;
                ti->exp_at = at <= (int64_t)now ? now + 1 : (uint64_t)at; /* verified: not passed */
            }
        }
        return 0;
    }
    return -1;
}

/* Keeps what the token that just authenticated rc says (the claims copied);
   the previous token's claims and expiry are let go. 0 when out of memory. */
static int rtws__rconn_token(rtws_router *r, rtws__rconn *rc, const rtws__tokinfo *ti) {
    char *cp = NULL;
    if (!rc->pend && !ti->json_len && !ti->exp_at) return 1; /* nothing to keep or let go */
    if (!rtws__pend_get(r, rc)) return 0;
    if (ti->json_len) {
        cp = (char *)rtws__alloc(rtws__ra(r), ti->json_len + 1);
        if (!cp) return 0;
        memcpy(cp, ti->json, ti->json_len + 1);
        rtws__rmem(r, ti->json_len + 1, 1);
    }
    if (rc->pend->claims) {
        rtws__rmem(r, rc->pend->claims_len + 1, 0);
        rtws__free(rtws__ra(r), rc->pend->claims);
    }
    rc->pend->claims = cp;
    rc->pend->claims_len = ti->json_len;
    rc->pend->token_exp = ti->exp_at;
    rc->pend->token_grace = 0;
    return 1;
}

/* Attaches rc to a session: the one named when it is alive and user is
   either not given or its own user; otherwise a new session. */
static int rtws__attach_session(rtws_router *r, rtws__rconn *rc, const char *sid, const char *user,
                                uint64_t now, int *resumed) {
    rtws__session *s = NULL;
    rtws__ruser *u;
    (void)now;
    *resumed = 0;
    if (sid && *sid) s = (rtws__session *)rtws__hfind(&r->sessions, sid, strlen(sid), rtws__hash(sid, strlen(sid)));
    if (s && user && *user && strcmp(s->user->h.key, user) != 0) s = NULL; /* someone else's */
    if (s && s->conns >= RTWS__SESS_CONNS) s = NULL; /* held by too many: a new one */
    if (s) {
        u = s->user;
        *resumed = 1;
    } else {
        char anon[64];
        if (user && *user) {
            u = rtws__user_get(r, user);
        } else {
            uint8_t raw[4];
            if (rtws__rt_random(r, raw, 4) != 0) return 0;
            snprintf(anon, sizeof anon, "anon-%02x%02x%02x%02x", raw[0], raw[1], raw[2], raw[3]);
            u = rtws__user_get(r, anon);
        }
        if (!u) return 0;
        s = rtws__session_new(r, u);
        if (!s) return 0;
    }
    if (rc->session) {
        rtws__session *old = rc->session;
        if (--old->conns == 0) old->expire = now + r->cfg.session_ttl_ms;
    }
    if (rc->user != u) {
        rtws__user_link(rc, u);
        if (rc->user && --rc->user->conns == 0) r->users_online--;
        if (u->conns++ == 0) r->users_online++;
        if (rc->user) rtws__user_maybe_drop(r, rc->user);
        rc->user = u;
    }
    rc->session = s;
    s->conns++;
    s->expire = 0;
    return 1;
}

static int rtws__allowed(rtws_router *r, rtws__rconn *rc, int action, const char *channel) {
    return !r->cfg.authorize ||
           r->cfg.authorize(r, rc->conn, rc->user->h.key, action, channel, r->cfg.user) == 0;
}
#endif /* RTWS__HAVE_ROUTER */

#if defined(RTWS__HAVE_ROUTER) || defined(RTWS__HAVE_RT) /* both ends check names */
static int rtws__valid_channel(const char *s, size_t n) {
    size_t i;
    if (n == 0 || n > 128) return 0;
    for (i = 0; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        if (b <= 0x20 || b == 0x7f || b == '"' || b == '\\') return 0;
    }
    return 1;
}
#endif

#if defined(RTWS__HAVE_ROUTER)
/* The channel of a subscribe or publish, created when it does not exist yet
   and the limits allow it; NULL after the refusal was sent. */
static rtws__channel *rtws__channel_for(rtws_router *r, rtws__rconn *rc, const rtws__req *q) {
    rtws__channel *ch = rtws__channel_get(r, q->chan, q->cn, 0);
    const char *why = NULL;
    if (ch) return ch;
    if (rtws_budget_get_level(r->budget) >= RTWS_BUDGET_NO_NEW) {
        r->refused_overloaded++;
        rtws__rt_refuse(r, rc, "overloaded", "server memory is nearly full: no new channels now",
                        q->id, q->idl, q->publish, 1000, q->now);
        return NULL;
    }
    if (r->channels.count >= r->cfg.max_channels_total) why = "too many channels on this server";
    else if (rc->user->channels >= r->cfg.max_user_channels) why = "too many channels for this user";
    if (why) {
        rtws__rt_error(r, rc, "limit_reached", why, q->id, q->idl);
        return NULL;
    }
    ch = rtws__channel_get(r, q->chan, q->cn, 1);
    if (!ch) {
        rtws__rt_error(r, rc, "internal", "out of memory", q->id, q->idl);
        return NULL;
    }
    ch->owner = rc->user;
    rc->user->channels++;
    return ch;
}

/* Adds rc to ch's subscribers and its user to ch's presence ("joined").
   RTWS_ERR_LIMIT at max_channels, RTWS_ERR_NOMEM; rc must not be a member. */
static rtws_err rtws__join(rtws_router *r, rtws__rconn *rc, rtws__channel *ch) {
    rtws__member *m;
    rtws__presence *p;
    size_t msize = sizeof *m + (r->eng ? sizeof(struct rtws__mx) : 0);
    if (rc->nchan >= r->cfg.max_channels) return RTWS_ERR_LIMIT;
    m = (rtws__member *)rtws__alloc(rtws__ra(r), msize);
    p = (rtws__presence *)rtws__hfind(&ch->presence, rc->user->h.key, rc->user->h.klen,
                                      rc->user->h.hash);
    if (!p) {
        p = (rtws__presence *)rtws__alloc(rtws__ra(r), sizeof *p);
        if (p) {
            memset(p, 0, sizeof *p);
            p->h = rc->user->h;
            p->h.hnext = NULL;
            if (!rtws__hadd(&ch->presence, &p->h, rtws__ra(r))) {
                rtws__free(rtws__ra(r), p);
                p = NULL;
            }
        }
    }
    if (!m || !p) {
        rtws__free(rtws__ra(r), m);
        return RTWS_ERR_NOMEM;
    }
    memset(m, 0, msize);
    m->ch = ch;
    m->rc = rc;
    m->cnext = ch->subs;
    if (ch->subs) ch->subs->cprev = m;
    ch->subs = m;
    m->rnext = rc->members;
    rc->members = m;
    rc->nchan++;
    ch->nsubs++;
    r->nsubs++;
    if (p->count++ != 0) return RTWS_OK;
#if defined(RTWS__HAVE_RENGINE)
    if (r->eng) { /* Redis announces it, once for the cluster */
        rtws__eng_pres(r, ch, rc->user->h.key, 1, NULL);
        return RTWS_OK;
    }
#endif
    if (ch->presence.count <= r->cfg.max_presence)
        rtws__presence_event(r, ch, rc->user->h.key, "joined", rc);
    return RTWS_OK;
}

/* "subscribed" with who is here; seq is the channel's latest. */
static void rtws__send_subscribed(rtws_router *r, rtws__rconn *rc, const rtws__channel *ch,
                                  uint64_t seq, const char *id, size_t idl) {
    size_t len, i;
    do {
        rtws__w_begin(r);
        rtws__w_strz(r, "type", "subscribed");
        rtws__w_str(r, "channel", ch->name, ch->h.klen);
        rtws__w_int(r, "seq", (int64_t)seq);
        if (id) rtws__w_str(r, "id", id, idl);
        if (ch->ex) { /* a Redis node: the cluster's presence ("continue": to w_end) */
            rtws__w_int(r, "members", (int64_t)ch->ex->members);
            if (ch->ex->members > r->cfg.max_presence) continue;
            rtws_json_write_key(&r->w, "presence", 8);
            rtws_json_write_array(&r->w);
            for (i = 0; i < ch->ex->pres.nb; i++) {
                rtws__hnode *e;
                for (e = ch->ex->pres.b[i]; e; e = e->hnext) {
                    rtws_json_write_object(&r->w);
                    rtws__w_strz(r, "user", ((rtws__pm *)e)->name);
                    rtws__w_strz(r, "status", ((rtws__pm *)e)->status);
                    rtws_json_write_object_end(&r->w);
                }
            }
            rtws_json_write_array_end(&r->w);
            continue;
        }
        rtws__w_int(r, "members", (int64_t)ch->presence.count);
        if (ch->presence.count <= r->cfg.max_presence) {
            rtws_json_write_key(&r->w, "presence", 8);
            rtws_json_write_array(&r->w);
            for (i = 0; i < ch->presence.nb; i++) {
                rtws__hnode *e;
                for (e = ch->presence.b[i]; e; e = e->hnext) {
                    rtws__presence *pr = (rtws__presence *)e;
                    rtws_json_write_object(&r->w);
                    rtws__w_strz(r, "user", pr->h.key);
                    rtws__w_strz(r, "status", rtws__pstatus(pr));
                    rtws_json_write_object_end(&r->w);
                }
            }
            rtws_json_write_array_end(&r->w);
        }
    } while (!rtws__w_end(r, &len));
    rtws__rt_send(r, rc, len);
}

/* "reset": the range asked for is gone; live messages go on after seq. */
static void rtws__send_reset(rtws_router *r, rtws__rconn *rc, const rtws__channel *ch,
                             uint64_t seq) {
    size_t len;
    do {
        rtws__w_begin(r);
        rtws__w_strz(r, "type", "reset");
        rtws__w_str(r, "channel", ch->name, ch->h.klen);
        rtws__w_int(r, "seq", (int64_t)seq);
    } while (!rtws__w_end(r, &len));
    rtws__rt_send(r, rc, len);
}

static void rtws__req_subscribe(rtws_router *r, rtws__rconn *rc, const rtws__req *q) {
    rtws__channel *ch;
    int since_v = rtws_json_get(q->d, 0, "since"), have_since = 0;
    int64_t since = 0;
    size_t i;
    uint64_t first;
    if (since_v >= 0) {
        if (rtws_json_int64(q->d, since_v, &since) != RTWS_OK || since < 0) {
            rtws__rt_error(r, rc, "bad_request", "since must be a sequence number", q->id, q->idl);
            return;
        }
        have_since = 1;
    }
    if (!rtws__allowed(r, rc, RTWS_ACT_SUBSCRIBE, q->chan)) {
        rtws__rt_error(r, rc, "forbidden", "not allowed to subscribe to this channel", q->id,
                       q->idl);
        return;
    }
    ch = rtws__channel_for(r, rc, q);
    if (!ch) return;
    if (!rtws__member_of(rc, ch)) {
        rtws_err e = rtws__join(r, rc, ch);
        if (e == RTWS_ERR_LIMIT) {
            rtws__rt_error(r, rc, "limit_reached", "too many channels on this connection", q->id,
                           q->idl);
            rtws__channel_maybe_drop(r, ch);
            return;
        }
        if (e != RTWS_OK) {
            rtws__rt_error(r, rc, "internal", "out of memory", q->id, q->idl);
            return;
        }
    }
#if defined(RTWS__HAVE_RENGINE)
    if (r->eng) { /* "subscribed" and the replay come once Redis answers */
        rtws__eng_subscribe(r, rc, ch, rtws__member_of(rc, ch), 1, q->id, q->idl, have_since,
                            (uint64_t)since);
        return;
    }
#endif
    rtws__send_subscribed(r, rc, ch, ch->seq, q->id, q->idl);
    if (!have_since || (uint64_t)since == ch->seq) return;
    /* since+1 .. seq from the ring, in order, before anything live; or reset */
    first = ch->seq - ch->hcount + 1;
    if ((uint64_t)since > ch->seq || (uint64_t)since + 1 < first) {
        rtws__send_reset(r, rc, ch, ch->seq);
        return;
    }
    for (i = (size_t)((uint64_t)since + 1 - first); i < ch->hcount; i++) {
        rtws_shared *sh = ch->hist[(ch->hhead + i) % ch->hcap].sh;
        if (rtws_conn_send_shared(rc->conn, sh) == RTWS_OK) r->msgs_out++;
        else {
            rtws_conn_close(rc->conn, RTWS_CLOSE_TRY_AGAIN, "slow consumer");
            return;
        }
    }
}

/* Builds the "message" once, keeps it in the history, sends it to every
   subscriber; returns its seq (0 on failure). */
static uint64_t rtws__publish(rtws_router *r, rtws__channel *ch, const char *event, size_t en,
                              const char *data, size_t dn, const char *from, uint64_t now) {
    size_t len;
    rtws_shared *sh;
    uint64_t seq = ch->seq + 1;
    do {
        rtws__w_begin(r);
        rtws__w_strz(r, "type", "message");
        rtws__w_str(r, "channel", ch->name, ch->h.klen);
        rtws__w_str(r, "event", event, en);
        rtws_json_write_key(&r->w, "data", 4);
        if (data) rtws_json_write_raw(&r->w, data, dn);
        else rtws_json_write_null(&r->w);
        rtws__w_int(r, "seq", (int64_t)seq);
        rtws__w_strz(r, "from", from);
        rtws__w_int(r, "ts", (int64_t)now + r->cfg.wall_offset_ms);
    } while (!rtws__w_end(r, &len));
    if (!len || !(sh = rtws_shared_new(rtws__ra(r), RTWS_OP_TEXT, r->out, len))) return 0;
    ch->seq = seq;
    ch->idle_at = now;
    r->publishes++;
    rtws__history_add(r, ch, sh, now);
    rtws__fanout(r, ch, sh, NULL, 0);
    if (r->cfg.on_publish) r->cfg.on_publish(r, ch->name, seq, r->out, len, r->cfg.user);
    rtws_shared_release(sh);
    return seq;
}

RTWS_API uint64_t rtws_router_publish(rtws_router *r, const char *channel, const char *event,
                                      const char *data, size_t data_len, const char *from,
                                      uint64_t now_ms) {
    rtws__channel *ch;
    size_t cn = strlen(channel);
    rtws_json doc;
    if (!rtws__valid_channel(channel, cn)) return 0;
    if (data && rtws_json_parse(&doc, data, data_len, NULL, 0, 0) != RTWS_OK) return 0;
    if (now_ms > r->now) r->now = now_ms;
    if (!event) event = "message";
#if defined(RTWS__HAVE_RENGINE)
    if (r->eng)
        return rtws__eng_publish(r, NULL, channel, cn, event, strlen(event), data, data_len,
                                 from ? from : "server", NULL, 0, now_ms) == RTWS_OK
                   ? UINT64_MAX
                   : 0;
#endif
    ch = rtws__channel_get(r, channel, cn, 1);
    if (!ch) return 0;
    return rtws__publish(r, ch, event, strlen(event), data, data_len, from ? from : "server",
                         now_ms);
}

/* The session's entry for a publish id still inside the dedupe window, or NULL. */
static const rtws__dedupe *rtws__dd_find(const rtws_router *r, const rtws__session *s,
                                         const char *id, size_t idl, uint64_t now) {
    const rtws__ddring *g = s->dd;
    size_t i;
    for (i = 0; g && i < g->count; i++) {
        const rtws__dedupe *e = (const rtws__dedupe *)(const void *)(g + 1) + (g->head + i) % g->cap;
        if (e->len == idl && memcmp(e->id, id, idl) == 0 && now - e->at <= r->cfg.dedupe_ms)
            return e;
    }
    return NULL;
}

/* Remembers a publish id (1..64 bytes) and its seq in the session's ring,
   which grows lazily up to dedupe_max; when full, the oldest id goes. */
static void rtws__dd_add(rtws_router *r, rtws__session *s, const char *id, size_t idl,
                         uint64_t seq, uint64_t now) {
    rtws__ddring *g = s->dd;
    size_t cap = g ? g->cap : 0;
    if ((g ? g->count : 0) == cap && cap < r->cfg.dedupe_max) { /* grow lazily */
        /* as rtws__ring_grow, behind the counts: the entries stay at
           (head + i) % cap, oldest first; when it fails, the ring keeps its size */
        const size_t elem = sizeof(rtws__dedupe);
        size_t max = r->cfg.dedupe_max < UINT32_MAX ? r->cfg.dedupe_max : UINT32_MAX, ncap, k;
        rtws__ddring *ng;
        if (max > (SIZE_MAX - sizeof *g) / elem) max = (SIZE_MAX - sizeof *g) / elem;
        ncap = cap > max / 2 ? max : cap * 2;
        if (ncap < 16) ncap = max < 16 ? max : 16;
        if (ncap < cap + 1) ncap = cap + 1;
        ng = (rtws__ddring *)(g ? rtws__realloc(rtws__ra(r), g, sizeof *g + ncap * elem)
                                : rtws__alloc(rtws__ra(r), sizeof *g + ncap * elem));
        if (ng) {
            if (!g) memset(ng, 0, sizeof *ng);
            k = cap - ng->head;
            if (ng->head) {
                memmove(RTWS__DD(ng) + (ncap - k), RTWS__DD(ng) + ng->head, k * elem);
                ng->head = (uint32_t)(ncap - k);
            }
            rtws__rmem(r, (ncap - cap) * elem + (g ? 0 : sizeof *ng), 1);
            ng->cap = (uint32_t)ncap;
            s->dd = g = ng;
        }
    }
    if (g) {
        rtws__dedupe *e;
        if (g->count == g->cap) { /* full: the oldest id goes */
            g->head = (g->head + 1) % g->cap;
            g->count--;
        }
        e = RTWS__DD(g) + (g->head + g->count) % g->cap;
        e->at = now;
        e->seq = seq;
        e->len = (uint8_t)idl;
        memcpy(e->id, id, idl);
        g->count++;
    }
}

static void rtws__req_publish(rtws_router *r, rtws__rconn *rc, const rtws__req *q) {
    char event[65];
    int bad = 0, dv = rtws_json_get(q->d, 0, "data");
    size_t en = rtws__field(q->d, "event", event, sizeof event, &bad), dn = 0, len;
    const char *id = q->id;
    size_t idl = q->idl;
    uint64_t now = q->now;
    const char *data = NULL;
    rtws__channel *ch;
    rtws__session *s = rc->session;
    const rtws__dedupe *e;
    uint64_t seq;
    if (bad) {
        rtws__rt_error(r, rc, "bad_request", "event must be a short string", id, idl);
        return;
    }
    if (!en) {
        memcpy(event, "message", 8);
        en = 7;
    }
    if (dv >= 0) data = rtws_json_raw(q->d, dv, &dn);
    if (dn > r->cfg.max_data) {
        rtws__rt_error(r, rc, "too_large", "data exceeds the limit", id, idl);
        return;
    }
    /* a repeated id in this session within the window: ack again, publish once */
    if (id && (e = rtws__dd_find(r, s, id, idl, now)) != NULL) {
        do {
            rtws__w_begin(r);
            rtws__w_strz(r, "type", "ack");
            rtws__w_str(r, "id", id, idl);
            rtws__w_int(r, "seq", (int64_t)e->seq);
            rtws_json_write_key(&r->w, "duplicate", 9);
            rtws_json_write_bool(&r->w, 1);
        } while (!rtws__w_end(r, &len));
        rtws__rt_send(r, rc, len);
        return;
    }
    if (!rtws__allowed(r, rc, RTWS_ACT_PUBLISH, q->chan)) {
        rtws__rt_error(r, rc, "forbidden", "not allowed to publish to this channel", id, idl);
        return;
    }
#if defined(RTWS__HAVE_RENGINE)
    if (r->eng) { /* Redis assigns the seq; the ack comes with its answer */
        rtws__eng_publish(r, rc, q->chan, q->cn, event, en, data, dn, rc->user->h.key, id, idl, now);
        return;
    }
#endif
    ch = rtws__channel_for(r, rc, q);
    if (!ch) return;
    if (!(seq = rtws__publish(r, ch, event, en, data, dn, rc->user->h.key, now))) {
        rtws__rt_error(r, rc, "internal", "could not publish", id, idl);
        rtws__channel_maybe_drop(r, ch);
        return;
    }
    if (!id) return;
    rtws__dd_add(r, s, id, idl, seq, now);
    do {
        rtws__w_begin(r);
        rtws__w_strz(r, "type", "ack");
        rtws__w_str(r, "id", id, idl);
        rtws__w_int(r, "seq", (int64_t)seq);
    } while (!rtws__w_end(r, &len));
    rtws__rt_send(r, rc, len);
}

#if defined(RTWS__HAVE_RENGINE)
/* ---- the Redis engine (docs/PROTOCOL.md "Cluster") ----
   Keys, for channel C under prefix P: P:seq:C (INCR counter), P:hist:C (a
   list of the last `history` messages, oldest first), P:dd:S:I (publish id I
   of session S: its seq, for dedupe_ms); pub/sub channel P:ch:C carries
   "<seq> <message JSON>". A publish is one Lua script: the INCR, the list
   append and trim, the dedupe key and the PUBLISH happen atomically, so the
   order of the pub/sub messages is the seq order and a seq is never seen
   before its history entry. (MULTI cannot put the INCR's result into the
   message it appends and publishes; XADD with the seq as id needs the seq
   first, a second round trip that two nodes can interleave.) A node
   SUBSCRIBEs to P:ch:C while C has local subscribers, and encodes each
   message once (one shared frame for all of them). */
typedef struct rtws__reng {
    rtws_router *r;
    rtws_redis *cmd, *sub;  /* commands; pub/sub */
    char *url;
    char prefix[64];
    size_t plen;
    int closing, cmd_up, sub_up, was_up; /* was_up: the command connection opened once */
    uint32_t gen;
    uint64_t outages, refused, next_touch, next_lease;
    char node[20];          /* this node's random id (connection counts) */
    struct rtws__rjob *jfree; /* jobs to reuse (at most RTWS__JOBPOOL) */
    size_t njfree;
    char *pbuf;             /* a publish's message around its seq (reused, grown) */
    size_t pcap;
    uint64_t next_beat;     /* presence: the next heartbeat (and sweep) */
    uint64_t swept;         /* dead nodes this node swept */
} rtws__reng;

/* A command in flight: what its answer is for (found again by ids and
   names, since the connection or the channel may be gone by then). */
typedef struct rtws__rjob {
    rtws__reng *e;
    struct rtws__rjob *next; /* in rtws__reng.jfree */
    uint64_t conn;
    uint32_t gen;
    uint8_t idl;
    char id[64];
    size_t cn;
    char chan[129];          /* a channel (<= 128 bytes) or a session id */
} rtws__rjob;
/* Jobs kept for reuse: publishes in flight at once in a steady stream need
   no allocation (their jobs come back as Redis answers). */
#define RTWS__JOBPOOL 256u

static const char rtws__lua_publish[] =
    "if KEYS[3] ~= '' then local d = redis.call('GET', KEYS[3]) "
    "if d then return {tonumber(d), 1} end end "
    "local s = redis.call('INCR', KEYS[1]) "
    "local m = ARGV[1] .. s .. ARGV[2] "
    "local n = tonumber(ARGV[3]) "
    "if n > 0 then redis.call('RPUSH', KEYS[2], m) redis.call('LTRIM', KEYS[2], -n, -1) "
    "redis.call('PEXPIRE', KEYS[2], ARGV[4]) end "
    "redis.call('PEXPIRE', KEYS[1], ARGV[4]) "
    "if KEYS[3] ~= '' then redis.call('SET', KEYS[3], s, 'PX', ARGV[6]) end "
    "redis.call('PUBLISH', ARGV[5], s .. ' ' .. m) "
    "return {s, 0}";
/* {seq, 0, {messages since+1 .. seq}, P, L}, {seq, 0, {}, P, L} (nothing to
   send) or {seq, 1, {}, P, L} (reset: the range is gone, or since is
   ahead); since -1: seq only. P: the users present (P:pu:C), L: with
   ARGV[3] "1" and P <= ARGV[2] (max_presence), {user, status, ...}. */
static const char rtws__lua_range[] =
    "local c = redis.call('HLEN', KEYS[3]) local pr = {} "
    "if ARGV[3] == '1' and c <= tonumber(ARGV[2]) then pr = redis.call('HGETALL', KEYS[4]) end "
    "local s = tonumber(redis.call('GET', KEYS[1]) or '0') "
    "local n = tonumber(ARGV[1]) "
    "if n < 0 or n == s then return {s, 0, {}, c, pr} end "
    "if n > s then return {s, 1, {}, c, pr} end "
    "local len = redis.call('LLEN', KEYS[2]) "
    "if n + 1 < s - len + 1 then return {s, 1, {}, c, pr} end "
    "return {s, 0, redis.call('LRANGE', KEYS[2], n + 1 - (s - len + 1), -1), c, pr}";

/* P:what:name into buf (256 bytes: prefix <= 63, what <= 8, name <= 128). */
static size_t rtws__eng_key(const rtws__reng *e, char *buf, const char *what, const char *name,
                            size_t n) {
    size_t w = strlen(what), k = 0;
    memcpy(buf, e->prefix, e->plen);
    k = e->plen;
    buf[k++] = ':';
    memcpy(buf + k, what, w);
    k += w;
    buf[k++] = ':';
    memcpy(buf + k, name, n);
    return k + n;
}

static rtws__rconn *rtws__eng_rc(const rtws_router *r, uint64_t id) {
    rtws__hnode *h = rtws__hfind(&r->byid, (const char *)&id, sizeof id,
                                 rtws__hash((const char *)&id, sizeof id));
    return (rtws__rconn *)h;
}

/* Whether an opening connection should wait for Redis's answer: yes while
   connected, and before the first connect (a node just started); during an
   outage no (the node's own counts apply). */
static int rtws__eng_can_ask(const rtws__reng *e) {
    return e->cmd && (e->cmd_up || !e->was_up);
}

static rtws__rjob *rtws__eng_job(rtws__reng *e, const rtws__rconn *rc, const char *chan, size_t cn,
                                 const char *id, size_t idl) {
    rtws__rjob *j = e->jfree;
    if (cn >= sizeof j->chan) return NULL;
    if (j) {
        e->jfree = j->next;
        e->njfree--;
    } else if (!(j = (rtws__rjob *)rtws__alloc(rtws__ra(e->r), sizeof *j))) {
        return NULL;
    }
    memset(j, 0, offsetof(rtws__rjob, chan));
    j->e = e;
    j->conn = rc ? rc->id : 0;
    memcpy(j->chan, chan, cn);
    j->chan[cn] = '\0';
    j->cn = cn;
    if (id && idl <= sizeof j->id) {
        memcpy(j->id, id, idl);
        j->idl = (uint8_t)idl;
    }
    return j;
}

/* A job done: kept for the next one, or freed (pool full, or the engine going). */
static void rtws__eng_put(rtws__reng *e, rtws__rjob *j) {
    if (!e->closing && e->njfree < RTWS__JOBPOOL) {
        j->next = e->jfree;
        e->jfree = j;
        e->njfree++;
        return;
    }
    rtws__free(rtws__ra(e->r), j);
}

static void rtws__eng_ack(rtws_router *r, rtws__rconn *rc, const char *id, size_t idl,
                          uint64_t seq, int dup) {
    size_t len;
    do {
        rtws__w_begin(r);
        rtws__w_strz(r, "type", "ack");
        rtws__w_str(r, "id", id, idl);
        rtws__w_int(r, "seq", (int64_t)seq);
        if (dup) {
            rtws_json_write_key(&r->w, "duplicate", 9);
            rtws_json_write_bool(&r->w, 1);
        }
    } while (!rtws__w_end(r, &len));
    rtws__rt_send(r, rc, len);
}

/* Sends the acks held back on ch whose publisher got its message (or left). */
static void rtws__eng_acks(rtws_router *r, rtws__channel *ch) {
    rtws__chx *cx = ch->ex;
    size_t i = 0;
    while (cx && i < cx->nacks) {
        rtws__rack *a = &cx->acks[i];
        rtws__rconn *rc = rtws__eng_rc(r, a->conn);
        rtws__member *m = rc ? rtws__member_of(rc, ch) : NULL;
        if (m && !(rtws__mx_of(m)->state == RTWS__M_LIVE && rtws__mx_of(m)->last >= a->seq)) {
            i++;
            continue;
        }
        if (rc) rtws__eng_ack(r, rc, a->id, a->idl, a->seq, 0);
        memmove(a, a + 1, (cx->nacks - i - 1) * sizeof *a); /* acks keep their order */
        cx->nacks--;
    }
}

/* ---- presence across nodes (docs/PROTOCOL.md "Cluster") ----
   For channel C and node N: P:pn:N:C (set: the users N has in C), P:pu:C
   (hash: user -> on how many nodes it is in C), P:ps:C (hash: user ->
   status), P:nc:N (set: the channels where N has users), P:nodes (set:
   every node that sent a heartbeat), P:node:N (N's heartbeat, PX
   redis_node_ttl_ms, renewed every third of it). A node runs the join
   script when a user's first connection on that node enters C and the leave
   script when its last one there leaves: only the first node in and the
   last node out move P:pu:C to or from nothing, and only they PUBLISH
   "p <user> joined" / "p <user> left" on P:ch:C, beside the messages. Each
   heartbeat also sweeps: a node of P:nodes whose heartbeat lapsed has its
   users leave every channel it had them in, the leaves announced. All of it
   in scripts, so two nodes joining, leaving or sweeping the same user at
   once cannot both announce it nor lose a count. */
/* (join: + 2 when N's heartbeat was missing: set now, and the node joins
   all of its users again, since a sweep may have taken them) */
static const char rtws__lua_pjoin[] =
    "local f = redis.call('SET', KEYS[5], '1', 'PX', ARGV[6], 'NX') and 2 or 0 "
    "redis.call('SADD', KEYS[6], ARGV[5]) "
    "if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return f end "
    "redis.call('SADD', KEYS[4], ARGV[2]) "
    "if redis.call('HINCRBY', KEYS[2], ARGV[1], 1) > 1 then return f end "
    "redis.call('HSET', KEYS[3], ARGV[1], 'online') "
    "if redis.call('HLEN', KEYS[2]) <= tonumber(ARGV[4]) then "
    "redis.call('PUBLISH', ARGV[3], 'p ' .. ARGV[1] .. ' joined') end "
    "return f + 1";
static const char rtws__lua_pleave[] =
    "if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return 0 end "
    "if redis.call('SCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[4], ARGV[2]) end "
    "if redis.call('HINCRBY', KEYS[2], ARGV[1], -1) > 0 then return 0 end "
    "redis.call('HDEL', KEYS[2], ARGV[1]) redis.call('HDEL', KEYS[3], ARGV[1]) "
    "if redis.call('HLEN', KEYS[2]) < tonumber(ARGV[4]) then "
    "redis.call('PUBLISH', ARGV[3], 'p ' .. ARGV[1] .. ' left') end "
    "return 1";
static const char rtws__lua_pstatus[] =
    "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end "
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) "
    "if redis.call('HLEN', KEYS[1]) <= tonumber(ARGV[4]) then "
    "redis.call('PUBLISH', ARGV[3], 'p ' .. ARGV[1] .. ' ' .. ARGV[2]) end "
    "return 1";
/* {1 when N's heartbeat was still there, nodes swept} */
static const char rtws__lua_beat[] =
    "local was = redis.call('EXISTS', KEYS[1]) "
    "redis.call('SET', KEYS[1], '1', 'PX', ARGV[2]) "
    "redis.call('SADD', KEYS[2], ARGV[1]) "
    "local p, gone = ARGV[3], 0 "
    "for _, n in ipairs(redis.call('SMEMBERS', KEYS[2])) do "
    "if redis.call('EXISTS', p .. ':node:' .. n) == 0 then "
    "for _, c in ipairs(redis.call('SMEMBERS', p .. ':nc:' .. n)) do "
    "local pn, pu = p .. ':pn:' .. n .. ':' .. c, p .. ':pu:' .. c "
    "for _, u in ipairs(redis.call('SMEMBERS', pn)) do "
    "if redis.call('HINCRBY', pu, u, -1) <= 0 then "
    "redis.call('HDEL', pu, u) redis.call('HDEL', p .. ':ps:' .. c, u) "
    "if redis.call('HLEN', pu) < tonumber(ARGV[4]) then "
    "redis.call('PUBLISH', p .. ':ch:' .. c, 'p ' .. u .. ' left') end end end "
    "redis.call('DEL', pn) end "
    "redis.call('DEL', p .. ':nc:' .. n) redis.call('SREM', KEYS[2], n) gone = gone + 1 end end "
    "return {was, gone}";

static void rtws__eng_pres_clear(const rtws_allocator *a, rtws__chx *cx) {
    size_t i;
    for (i = 0; i < cx->pres.nb; i++) {
        rtws__hnode *h = cx->pres.b[i], *nx;
        for (; h; h = nx) {
            nx = h->hnext;
            rtws__free(a, h);
        }
    }
    rtws__free(a, cx->pres.b);
    memset(&cx->pres, 0, sizeof cx->pres);
}

/* The mirror's entry for user (add: made when missing, "online"). */
static rtws__pm *rtws__eng_pm(rtws_router *r, rtws__chx *cx, const char *user, size_t un, int add) {
    uint32_t hh = rtws__hash(user, un);
    rtws__pm *pm = (rtws__pm *)rtws__hfind(&cx->pres, user, un, hh);
    if (pm || !add || un == 0 || un > 63) return pm;
    pm = (rtws__pm *)rtws__alloc(rtws__ra(r), sizeof *pm);
    if (!pm) return NULL;
    memset(pm, 0, sizeof *pm);
    memcpy(pm->name, user, un);
    memcpy(pm->status, "online", 7);
    pm->h.key = pm->name;
    pm->h.klen = (uint32_t)un;
    pm->h.hash = hh;
    if (!rtws__hadd(&cx->pres, &pm->h, rtws__ra(r))) {
        rtws__free(rtws__ra(r), pm);
        return NULL;
    }
    return pm;
}

/* A fetch's count (c) and list (l: user, status, ...; empty when not asked
   for or over max_presence) become ch's mirror. */
static void rtws__eng_pres_load(rtws_router *r, rtws__channel *ch, const rtws_resp_reply *c,
                                const rtws_resp_reply *l) {
    rtws__chx *cx = ch->ex;
    size_t i;
    if (!cx || c->type != RTWS_RESP_INTEGER || c->integer < 0 || l->type != RTWS_RESP_ARRAY) return;
    cx->members = (size_t)c->integer;
    if (!l->n && cx->members) return; /* not asked for, or too many */
    rtws__eng_pres_clear(rtws__ra(r), cx);
    for (i = 0; i + 1 < l->n; i += 2) {
        rtws__pm *pm;
        if (l->elem[i].type != RTWS_RESP_BULK || l->elem[i + 1].type != RTWS_RESP_BULK) continue;
        pm = rtws__eng_pm(r, cx, l->elem[i].str, l->elem[i].len, 1);
        if (pm && l->elem[i + 1].len >= 1 && l->elem[i + 1].len <= 32) {
            memcpy(pm->status, l->elem[i + 1].str, l->elem[i + 1].len);
            pm->status[l->elem[i + 1].len] = '\0';
        }
    }
    cx->pres_known = 1;
}

static void rtws__eng_presdone(rtws_redis *rd, const rtws_resp_reply *rep, rtws_err err,
                               void *user);
static void rtws__eng_rejoin(rtws_router *r);

/* what 1: join, 2: leave (user's first / last connection on this node in
   ch), 3: status. Joins and leaves whose answer is lost (the connection
   broke) are sent again as the node then stands (rtws__eng_presdone). */
static void rtws__eng_pres(rtws_router *r, const rtws__channel *ch, const char *user, int what,
                           const char *status) {
    rtws__reng *e = r->eng;
    char k[7][256], wn[32], mx[24], ttl[24];
    const char *argv[15];
    size_t lens[15], un = strlen(user);
    rtws__rjob *j;
    if (!e || e->closing || !e->cmd || !e->node[0]) return;
    argv[0] = "EVAL";
    lens[0] = 4;
    lens[12] = (size_t)snprintf(mx, sizeof mx, "%llu", (unsigned long long)r->cfg.max_presence);
    if (what == 3) {
        argv[1] = rtws__lua_pstatus;
        lens[1] = sizeof rtws__lua_pstatus - 1;
        argv[2] = "2";
        lens[2] = 1;
        argv[3] = k[0];
        lens[3] = rtws__eng_key(e, k[0], "pu", ch->name, ch->h.klen);
        argv[4] = k[1];
        lens[4] = rtws__eng_key(e, k[1], "ps", ch->name, ch->h.klen);
        argv[5] = user;
        lens[5] = un;
        argv[6] = status;
        lens[6] = strlen(status);
        argv[7] = k[2];
        lens[7] = rtws__eng_key(e, k[2], "ch", ch->name, ch->h.klen);
        argv[8] = mx;
        lens[8] = lens[12];
        rtws_redis_command(e->cmd, 9, argv, lens, NULL, NULL);
        return;
    }
    if (!(j = rtws__eng_job(e, NULL, ch->name, ch->h.klen, user, un))) return;
    j->gen = (uint32_t)what;
    snprintf(wn, sizeof wn, "pn:%s", e->node);
    argv[1] = what == 1 ? rtws__lua_pjoin : rtws__lua_pleave;
    lens[1] = what == 1 ? sizeof rtws__lua_pjoin - 1 : sizeof rtws__lua_pleave - 1;
    argv[2] = "6";
    lens[2] = 1;
    argv[3] = k[0];
    lens[3] = rtws__eng_key(e, k[0], wn, ch->name, ch->h.klen);
    argv[4] = k[1];
    lens[4] = rtws__eng_key(e, k[1], "pu", ch->name, ch->h.klen);
    argv[5] = k[2];
    lens[5] = rtws__eng_key(e, k[2], "ps", ch->name, ch->h.klen);
    argv[6] = k[3];
    lens[6] = rtws__eng_key(e, k[3], "nc", e->node, strlen(e->node));
    argv[7] = k[4];
    lens[7] = rtws__eng_key(e, k[4], "node", e->node, strlen(e->node));
    argv[8] = k[5];
    memcpy(k[5], e->prefix, e->plen);
    memcpy(k[5] + e->plen, ":nodes", 6);
    lens[8] = e->plen + 6;
    argv[9] = user;
    lens[9] = un;
    argv[10] = ch->name;
    lens[10] = ch->h.klen;
    argv[11] = k[6];
    lens[11] = rtws__eng_key(e, k[6], "ch", ch->name, ch->h.klen);
    argv[12] = mx; /* (lens[12] set above) */
    argv[13] = e->node;
    lens[13] = strlen(e->node);
    argv[14] = ttl;
    lens[14] = (size_t)snprintf(ttl, sizeof ttl, "%lu", (unsigned long)r->cfg.redis_node_ttl_ms);
    if (rtws_redis_command(e->cmd, 15, argv, lens, rtws__eng_presdone, j) != RTWS_OK)
        rtws__eng_put(e, j);
}

/* Whether user has a connection in the channel on this node now. */
static int rtws__eng_local_pres(const rtws_router *r, const char *chan, size_t cn, const char *user,
                                size_t un) {
    const rtws__channel *ch = (const rtws__channel *)rtws__hfind(&r->channels, chan, cn,
                                                                 rtws__hash(chan, cn));
    return ch && rtws__hfind(&ch->presence, user, un, rtws__hash(user, un)) != NULL;
}

static void rtws__eng_presdone(rtws_redis *rd, const rtws_resp_reply *rep, rtws_err err,
                               void *user) {
    rtws__rjob *j = (rtws__rjob *)user;
    rtws__reng *e = j->e;
    (void)rd;
    if (!e->closing && err == RTWS_OK && rep && rep->type == RTWS_RESP_INTEGER && (rep->integer & 2)) {
        rtws__eng_put(e, j); /* the heartbeat was missing: this node's users may have been swept */
        rtws__eng_rejoin(e->r);
        return;
    }
    if (!e->closing && err != RTWS_OK) { /* it may not have run: again, as things are now */
        rtws__channel tmp;
        char name[64];
        int here = rtws__eng_local_pres(e->r, j->chan, j->cn, j->id, j->idl);
        memset(&tmp, 0, sizeof tmp);
        tmp.name = j->chan;
        tmp.h.klen = (uint32_t)j->cn;
        memcpy(name, j->id, j->idl);
        name[j->idl] = '\0';
        rtws__eng_put(e, j);
        rtws__eng_pres(e->r, &tmp, name, here ? 1 : 2, NULL);
        return;
    }
    rtws__eng_put(e, j);
}

/* Joins every user of this node again (idempotent: nothing announced for
   those Redis still has): after a heartbeat that found this node's gone. */
static void rtws__eng_rejoin(rtws_router *r) {
    size_t i, k;
    for (i = 0; i < r->channels.nb; i++) {
        rtws__hnode *h;
        for (h = r->channels.b[i]; h; h = h->hnext) {
            rtws__channel *ch = (rtws__channel *)h;
            for (k = 0; k < ch->presence.nb; k++) {
                rtws__hnode *p;
                for (p = ch->presence.b[k]; p; p = p->hnext)
                    rtws__eng_pres(r, ch, ((rtws__presence *)p)->h.key, 1, NULL);
            }
        }
    }
}

static void rtws__eng_beaten(rtws_redis *rd, const rtws_resp_reply *rep, rtws_err err, void *user) {
    rtws__reng *e = (rtws__reng *)user;
    (void)rd;
    (void)err;
    if (e->closing || !rep || rep->type != RTWS_RESP_ARRAY || rep->n < 2 ||
        rep->elem[0].type != RTWS_RESP_INTEGER || rep->elem[1].type != RTWS_RESP_INTEGER)
        return;
    if (rep->elem[1].integer > 0) e->swept += (uint64_t)rep->elem[1].integer;
    /* no heartbeat before: first start, swept as dead (a stall longer than
       redis_node_ttl_ms), or a Redis that lost its data */
    if (rep->elem[0].integer == 0) rtws__eng_rejoin(e->r);
}

/* The heartbeat and the sweep of dead nodes, every redis_node_ttl_ms / 3. */
static void rtws__eng_beat(rtws_router *r, uint64_t now) {
    rtws__reng *e = r->eng;
    char k1[256], k2[80], ttl[24], mx[24];
    const char *argv[9];
    size_t lens[9];
    if (now < e->next_beat || !e->cmd_up || !e->node[0]) return;
    e->next_beat = now + RTWS__MAX(r->cfg.redis_node_ttl_ms / 3u, 1u);
    argv[0] = "EVAL";
    lens[0] = 4;
    argv[1] = rtws__lua_beat;
    lens[1] = sizeof rtws__lua_beat - 1;
    argv[2] = "2";
    lens[2] = 1;
    argv[3] = k1;
    lens[3] = rtws__eng_key(e, k1, "node", e->node, strlen(e->node));
    argv[4] = k2;
    memcpy(k2, e->prefix, e->plen);
    memcpy(k2 + e->plen, ":nodes", 6);
    lens[4] = e->plen + 6;
    argv[5] = e->node;
    lens[5] = strlen(e->node);
    argv[6] = ttl;
    lens[6] = (size_t)snprintf(ttl, sizeof ttl, "%lu", (unsigned long)r->cfg.redis_node_ttl_ms);
    argv[7] = e->prefix;
    lens[7] = e->plen;
    argv[8] = mx;
    lens[8] = (size_t)snprintf(mx, sizeof mx, "%llu", (unsigned long long)r->cfg.max_presence);
    rtws_redis_command(e->cmd, 9, argv, lens, rtws__eng_beaten, e);
}

/* "p <user> <status>" from pub/sub: the mirror follows, the hook hears it
   and the channel's live members get a "presence" message (a user's own
   connections not its "joined", as on one node). */
static void rtws__eng_pevent(rtws__reng *e, const char *name, size_t n, const char *d, size_t len) {
    rtws_router *r = e->r;
    rtws__channel *ch = rtws__channel_get(r, name, n, 0);
    rtws__member *m, *nx;
    rtws__pm *pm;
    rtws_shared *sh;
    char user[64], status[33];
    size_t un = 0, sn, out;
    int joined, left;
    while (2 + un < len && d[2 + un] != ' ') un++;
    if (!ch || !ch->ex || un == 0 || un > 63 || 2 + un + 1 >= len) return;
    sn = len - 3 - un;
    if (sn > 32) return;
    memcpy(user, d + 2, un);
    user[un] = '\0';
    memcpy(status, d + 3 + un, sn);
    status[sn] = '\0';
    joined = !strcmp(status, "joined");
    left = !strcmp(status, "left");
    pm = rtws__eng_pm(r, ch->ex, user, un, 0);
    if (joined && !pm && (pm = rtws__eng_pm(r, ch->ex, user, un, 1)) != NULL) ch->ex->members++;
    if (left && pm) {
        rtws__hdel(&ch->ex->pres, &pm->h);
        rtws__free(rtws__ra(r), pm);
        if (ch->ex->members) ch->ex->members--;
    } else if (pm && !joined) {
        memcpy(pm->status, status, sn + 1);
    }
    if (r->cfg.on_presence) {
        r->cfg.on_presence(r, ch->name, user, status, r->cfg.user);
        if (!(ch = rtws__channel_get(r, name, n, 0))) return; /* the hook may unsubscribe */
    }
    do {
        rtws__w_begin(r);
        rtws__w_strz(r, "type", "presence");
        rtws__w_str(r, "channel", ch->name, ch->h.klen);
        rtws__w_strz(r, "user", user);
        rtws__w_strz(r, "status", status);
    } while (!rtws__w_end(r, &out));
    if (!out || !(sh = rtws_shared_new(rtws__ra(r), RTWS_OP_TEXT, r->out, out))) return;
    for (m = ch->subs; m; m = nx) {
        rtws_err err;
        nx = m->cnext;
        if (RTWS__RCEP(r, m->rc)->e.builtin_protocol_off || rtws__mx_of(m)->state != RTWS__M_LIVE ||
            (joined && !strcmp(m->rc->user->h.key, user)))
            continue;
        err = rtws_conn_send_shared(m->rc->conn, sh);
        if (err == RTWS_OK) r->msgs_out++;
        else if (err == RTWS_ERR_LIMIT) rtws_conn_close(m->rc->conn, RTWS_CLOSE_TRY_AGAIN, "slow consumer");
    }
    rtws_shared_release(sh);
}

static void rtws__eng_fetched(rtws_redis *rd, const rtws_resp_reply *rep, rtws_err err, void *user);

/* Asks Redis for the channel's seq and, with has_since, the messages after
   since; m waits (RTWS__M_FETCH) for the answer. */
static void rtws__eng_fetch(rtws_router *r, rtws__rconn *rc, rtws__channel *ch, rtws__member *m) {
    rtws__reng *e = r->eng;
    rtws__mx *x = rtws__mx_of(m);
    rtws__rjob *j = rtws__eng_job(e, rc, ch->name, ch->h.klen, NULL, 0);
    char k1[256], k2[256], k3[256], k4[256], sv[24], mx[24];
    const char *argv[10];
    size_t lens[10];
    x->state = RTWS__M_FETCH;
    x->gen = ++e->gen;
    if (!j) {
        rtws_conn_close(rc->conn, RTWS_CLOSE_TRY_AGAIN, "out of memory");
        return;
    }
    j->gen = x->gen;
    argv[0] = "EVAL";
    argv[1] = rtws__lua_range;
    argv[2] = "4";
    argv[3] = k1;
    argv[4] = k2;
    argv[5] = k3;
    argv[6] = k4;
    argv[7] = sv;
    argv[8] = mx;
    argv[9] = x->reply || !ch->ex->pres_known ? "1" : "0"; /* the presence list too */
    lens[0] = 4;
    lens[1] = sizeof rtws__lua_range - 1;
    lens[2] = 1;
    lens[3] = rtws__eng_key(e, k1, "seq", ch->name, ch->h.klen);
    lens[4] = rtws__eng_key(e, k2, "hist", ch->name, ch->h.klen);
    lens[5] = rtws__eng_key(e, k3, "pu", ch->name, ch->h.klen);
    lens[6] = rtws__eng_key(e, k4, "ps", ch->name, ch->h.klen);
    if (x->has_since) lens[7] = (size_t)snprintf(sv, sizeof sv, "%llu", (unsigned long long)x->since);
    else lens[7] = (size_t)snprintf(sv, sizeof sv, "-1");
    lens[8] = (size_t)snprintf(mx, sizeof mx, "%llu", (unsigned long long)r->cfg.max_presence);
    lens[9] = 1;
    if (rtws_redis_command(e->cmd, 10, argv, lens, rtws__eng_fetched, j) != RTWS_OK) {
        rtws__eng_put(e, j);
        rtws_conn_close(rc->conn, RTWS_CLOSE_TRY_AGAIN, "cluster overloaded");
    }
}

/* After m's fetch: the live messages the node received meanwhile, from
   its local ring; a gap there means another fetch. Then held acks. */
static void rtws__eng_catchup(rtws_router *r, rtws__rconn *rc, rtws__channel *ch, rtws__member *m) {
    rtws__mx *x = rtws__mx_of(m);
    if (x->last < ch->seq) {
        uint64_t first = ch->seq - ch->hcount + 1;
        size_t i;
        if (!ch->hcount || x->last + 1 < first) {
            x->has_since = 1;
            x->since = x->last;
            rtws__eng_fetch(r, rc, ch, m);
            return;
        }
        for (i = (size_t)(x->last + 1 - first); i < ch->hcount; i++) {
            if (rtws_conn_send_shared(rc->conn, ch->hist[(ch->hhead + i) % ch->hcap].sh) != RTWS_OK) {
                rtws_conn_close(rc->conn, RTWS_CLOSE_TRY_AGAIN, "slow consumer");
                return;
            }
            r->msgs_out++;
        }
        x->last = ch->seq;
    }
    rtws__eng_acks(r, ch);
}

static void rtws__eng_fetched(rtws_redis *rd, const rtws_resp_reply *rep, rtws_err err, void *user) {
    rtws__rjob *j = (rtws__rjob *)user;
    rtws__reng *e = j->e;
    rtws_router *r = e->r;
    rtws__rconn *rc = NULL;
    rtws__channel *ch = NULL;
    rtws__member *m = NULL;
    rtws__mx *x;
    uint64_t s;
    size_t i;
    (void)rd;
    if (!e->closing && (rc = rtws__eng_rc(r, j->conn)) != NULL &&
        (ch = rtws__channel_get(r, j->chan, j->cn, 0)) != NULL)
        m = rtws__member_of(rc, ch);
    x = m ? rtws__mx_of(m) : NULL;
    if (!x || x->gen != j->gen || x->state != RTWS__M_FETCH) {
        rtws__eng_put(e, j);
        return;
    }
    rtws__eng_put(e, j);
    if (err != RTWS_OK || !rep || rep->type != RTWS_RESP_ARRAY || rep->n < 2 ||
        rep->elem[0].type != RTWS_RESP_INTEGER || rep->elem[0].integer < 0 ||
        rep->elem[1].type != RTWS_RESP_INTEGER) {
        if (rep && !(rep->type == RTWS_RESP_ERROR && rep->len >= 7 &&
                     memcmp(rep->str, "LOADING", 7) == 0)) {
            /* Redis refused the script: nothing this connection can wait for
               (LOADING, a restarted Redis reading its data, is asked again) */
            rtws_conn_close(rc->conn, RTWS_CLOSE_INTERNAL, "cluster error");
            return;
        }
        rtws__eng_fetch(r, rc, ch, m); /* the connection dropped: again, after the reconnect */
        return;
    }
    s = (uint64_t)rep->elem[0].integer;
    if (rep->n >= 5) rtws__eng_pres_load(r, ch, &rep->elem[3], &rep->elem[4]);
    if (x->reply) {
        x->reply = 0;
        rtws__send_subscribed(r, rc, ch, s, x->idl ? x->id : NULL, x->idl);
    }
    if (x->has_since && x->since != s) {
        const rtws_resp_reply *l = rep->n >= 3 ? &rep->elem[2] : NULL;
        if (rep->elem[1].integer == 0 && l && l->type == RTWS_RESP_ARRAY && x->since < s &&
            l->n == s - x->since) {
            for (i = 0; i < l->n; i++) {
                rtws_shared *sh;
                if (l->elem[i].type != RTWS_RESP_BULK ||
                    !(sh = rtws_shared_new(rtws__ra(r), RTWS_OP_TEXT, l->elem[i].str, l->elem[i].len)))
                    break;
                err = rtws_conn_send_shared(rc->conn, sh);
                rtws_shared_release(sh);
                if (err != RTWS_OK) break;
                r->msgs_out++;
            }
            if (i < l->n) {
                rtws_conn_close(rc->conn, RTWS_CLOSE_TRY_AGAIN, "slow consumer");
                return;
            }
        } else {
            rtws__send_reset(r, rc, ch, s);
        }
    }
    x->has_since = 0;
    x->last = s;
    if (!ch->hcount && s > ch->seq) ch->seq = s; /* the local ring starts after s */
    x->state = RTWS__M_LIVE;
    rtws__eng_catchup(r, rc, ch, m);
}

/* A new member (or one asking again): its "subscribed", replay or reset
   come when Redis answers; with the SUBSCRIBE not confirmed yet, after it. */
static void rtws__eng_subscribe(rtws_router *r, rtws__rconn *rc, rtws__channel *ch,
                                rtws__member *m, int reply, const char *id, size_t idl,
                                int has_since, uint64_t since) {
    rtws__reng *e = r->eng;
    rtws__mx *x;
    if (!m) return;
    x = rtws__mx_of(m);
    x->reply = (uint8_t)(reply != 0);
    x->idl = 0;
    if (id && idl <= sizeof x->id) {
        memcpy(x->id, id, idl);
        x->idl = (uint8_t)idl;
    }
    x->has_since = (uint8_t)(has_since != 0);
    x->since = since;
    if (!ch->ex) {
        char k[256];
        size_t kn = rtws__eng_key(e, k, "ch", ch->name, ch->h.klen);
        ch->ex = (rtws__chx *)rtws__alloc(rtws__ra(r), sizeof *ch->ex);
        if (!ch->ex || rtws_redis_subscribe(e->sub, RTWS_REDIS_CHANNEL, k, kn) != RTWS_OK) {
            rtws_conn_close(rc->conn, RTWS_CLOSE_TRY_AGAIN, "cluster overloaded");
            return;
        }
        memset(ch->ex, 0, sizeof *ch->ex);
    }
    if (ch->ex->confirmed) rtws__eng_fetch(r, rc, ch, m);
    else x->state = RTWS__M_WAIT;
}

static void rtws__eng_chan_free(rtws_router *r, rtws__channel *ch) {
    rtws__chx *cx = ch->ex;
    size_t i;
    for (i = 0; i < cx->nacks; i++) { /* publishers that left the channel */
        rtws__rconn *rc = rtws__eng_rc(r, cx->acks[i].conn);
        if (rc && r->budget) rtws__eng_ack(r, rc, cx->acks[i].id, cx->acks[i].idl, cx->acks[i].seq, 0);
    }
    if (r->eng && !r->eng->closing) {
        char k[256];
        size_t kn = rtws__eng_key(r->eng, k, "ch", ch->name, ch->h.klen);
        rtws_redis_unsubscribe(r->eng->sub, RTWS_REDIS_CHANNEL, k, kn);
    }
    rtws__eng_pres_clear(rtws__ra(r), cx);
    rtws__free(rtws__ra(r), cx->acks);
    rtws__free(rtws__ra(r), cx);
    ch->ex = NULL;
}

static void rtws__eng_published(rtws_redis *rd, const rtws_resp_reply *rep, rtws_err err,
                                void *user) {
    rtws__rjob *j = (rtws__rjob *)user;
    rtws__reng *e = j->e;
    rtws_router *r = e->r;
    rtws__rconn *rc = e->closing || !j->conn ? NULL : rtws__eng_rc(r, j->conn);
    rtws__channel *ch;
    rtws__member *m;
    uint64_t s;
    int dup;
    (void)rd;
    if (e->closing) {
        rtws__eng_put(e, j);
        return;
    }
    if (err != RTWS_OK || !rep || rep->type != RTWS_RESP_ARRAY || rep->n < 2 ||
        rep->elem[0].type != RTWS_RESP_INTEGER || rep->elem[0].integer < 1 ||
        rep->elem[1].type != RTWS_RESP_INTEGER) {
        /* the connection dropped with the publish in flight: it may or may not
           have run. A resend with the same id in the same session is
           published once (the dedupe key is set by the same script). */
        e->refused++;
        if (rc && j->idl)
            rtws__rt_refuse(r, rc, "overloaded", "the cluster's Redis is unreachable: send it again",
                            j->id, j->idl, 1, 1000, r->now);
        else if (rc)
            rtws__rt_error(r, rc, "internal", "could not publish", NULL, 0);
        rtws__eng_put(e, j);
        return;
    }
    s = (uint64_t)rep->elem[0].integer;
    dup = rep->elem[1].integer != 0;
    if (!dup) r->publishes++;
    if (rc && j->idl) {
        if (!dup) rtws__dd_add(r, rc->session, j->id, j->idl, s, r->now);
        ch = rtws__channel_get(r, j->chan, j->cn, 0);
        m = ch && ch->ex ? rtws__member_of(rc, ch) : NULL;
        if (!dup && m && !(rtws__mx_of(m)->state == RTWS__M_LIVE && rtws__mx_of(m)->last >= s)) {
            rtws__chx *cx = ch->ex; /* the message first, then the ack */
            if (cx->nacks == cx->acap) {
                void *p = cx->acks;
                if (rtws__grow(rtws__ra(r), &p, &cx->acap, cx->nacks + 1, sizeof *cx->acks,
                               SIZE_MAX) != RTWS_OK) {
                    rtws__eng_ack(r, rc, j->id, j->idl, s, 0);
                    rtws__eng_put(e, j);
                    return;
                }
                cx->acks = (rtws__rack *)p;
            }
            cx->acks[cx->nacks].conn = rc->id;
            cx->acks[cx->nacks].seq = s;
            cx->acks[cx->nacks].idl = j->idl;
            memcpy(cx->acks[cx->nacks].id, j->id, j->idl);
            cx->nacks++;
        } else {
            rtws__eng_ack(r, rc, j->id, j->idl, s, dup);
        }
    }
    rtws__eng_put(e, j);
}

/* e->pbuf with room for n bytes: grown by doubling, never shrunk (a publish
   is at most max_data plus its envelope), so a stream allocates nothing. */
static rtws_err rtws__eng_pbuf(rtws__reng *e, size_t n) {
    char *np;
    size_t cap = RTWS__MAX(RTWS__MAX(n, e->pcap * 2u), (size_t)1024);
    if (n <= e->pcap) return RTWS_OK;
    np = (char *)rtws__realloc(rtws__ra(e->r), e->pbuf, cap);
    if (!np) return RTWS_ERR_NOMEM;
    e->pbuf = np;
    e->pcap = cap;
    return RTWS_OK;
}

/* Sends a publish to Redis; the answer acks it. While the command
   connection is not open it is refused at once with "overloaded". */
static rtws_err rtws__eng_publish(rtws_router *r, rtws__rconn *rc, const char *chan, size_t cn,
                                  const char *event, size_t en, const char *data, size_t dn,
                                  const char *from, const char *id, size_t idl, uint64_t now) {
    rtws__reng *e = r->eng;
    rtws__rjob *j;
    char k1[256], k2[256], k3[256], k5[256], hist[24], ttl[24], ddms[24], *pre = NULL, *suf;
    const char *argv[12];
    size_t lens[12], pl, sl, len;
    rtws_err err;
    if (!e->cmd || rtws_redis_get_state(e->cmd) != RTWS_REDIS_OPEN) {
        e->refused++;
        if (rc)
            rtws__rt_refuse(r, rc, "overloaded", "the cluster's Redis is unreachable: try again",
                            id, idl, 1, 1000, now);
        return RTWS_ERR_CLOSED;
    }
    /* the message without its seq: {"type":...,"data":...,"seq": and ,"from":...,"ts":...} */
    do {
        rtws__w_begin(r);
        rtws__w_strz(r, "type", "message");
        rtws__w_str(r, "channel", chan, cn);
        rtws__w_str(r, "event", event, en);
        rtws_json_write_key(&r->w, "data", 4);
        if (data) rtws_json_write_raw(&r->w, data, dn);
        else rtws_json_write_null(&r->w);
    } while (!rtws__w_end(r, &len));
    if (!len || rtws__eng_pbuf(e, len + 512) != RTWS_OK) goto nomem;
    pre = e->pbuf;
    memcpy(pre, r->out, len - 1);
    memcpy(pre + len - 1, ",\"seq\":", 7);
    pl = len + 6;
    do {
        rtws__w_begin(r);
        rtws__w_strz(r, "from", from);
        rtws__w_int(r, "ts", (int64_t)now + r->cfg.wall_offset_ms);
    } while (!rtws__w_end(r, &len));
    if (!len) goto nomem;
    if (pl + len > e->pcap) { /* (rarely: a long "from") */
        if (rtws__eng_pbuf(e, pl + len) != RTWS_OK) goto nomem;
        pre = e->pbuf;
    }
    suf = pre + pl;
    memcpy(suf, r->out, len);
    suf[0] = ',';
    sl = len;
    j = rtws__eng_job(e, rc, chan, cn, id, idl);
    if (!j) goto nomem;
    argv[0] = "EVAL";
    lens[0] = 4;
    argv[1] = rtws__lua_publish;
    lens[1] = sizeof rtws__lua_publish - 1;
    argv[2] = "3";
    lens[2] = 1;
    argv[3] = k1;
    lens[3] = rtws__eng_key(e, k1, "seq", chan, cn);
    argv[4] = k2;
    lens[4] = rtws__eng_key(e, k2, "hist", chan, cn);
    argv[5] = k3;
    lens[5] = 0;
    if (rc && id && idl <= 64) { /* P:dd:<session>:<id> */
        size_t sn = rc->session->h.klen;
        lens[5] = rtws__eng_key(e, k3, "dd", rc->session->h.key, sn);
        k3[lens[5]++] = ':';
        memcpy(k3 + lens[5], id, idl);
        lens[5] += idl;
    }
    argv[6] = pre;
    lens[6] = pl;
    argv[7] = suf;
    lens[7] = sl;
    argv[8] = hist;
    lens[8] = (size_t)snprintf(hist, sizeof hist, "%llu", (unsigned long long)r->cfg.history);
    argv[9] = ttl;
    lens[9] = (size_t)snprintf(ttl, sizeof ttl, "%lu", (unsigned long)r->cfg.channel_ttl_ms);
    argv[10] = k5;
    lens[10] = rtws__eng_key(e, k5, "ch", chan, cn);
    argv[11] = ddms;
    lens[11] = (size_t)snprintf(ddms, sizeof ddms, "%lu", (unsigned long)RTWS__MAX(r->cfg.dedupe_ms, 1u));
    err = rtws_redis_command(e->cmd, 12, argv, lens, rtws__eng_published, j); /* copies */
    if (err != RTWS_OK) {
        rtws__eng_put(e, j);
        e->refused++;
        if (rc)
            rtws__rt_refuse(r, rc, "overloaded", "too many publishes waiting for Redis", id, idl, 1,
                            1000, now);
        return err;
    }
    return RTWS_OK;
nomem:
    if (rc) rtws__rt_error(r, rc, "internal", "could not publish", id, idl);
    return RTWS_ERR_NOMEM;
}

/* Sessions: P:sess:<id> holds the user id, for session_ttl_ms after its
   last save (at each open, at the last close, and every touch while it
   has connections), so ?session= resumes on any node. */
static void rtws__eng_session_save(rtws_router *r, const rtws__session *s) {
    rtws__reng *e = r->eng;
    char k[256], ttl[24];
    const char *argv[5];
    size_t lens[5];
    if (e->closing || !e->cmd) return;
    argv[0] = "SET";
    lens[0] = 3;
    argv[1] = k;
    lens[1] = rtws__eng_key(e, k, "sess", s->h.key, s->h.klen);
    argv[2] = s->user->h.key;
    lens[2] = s->user->h.klen;
    argv[3] = "PX";
    lens[3] = 2;
    argv[4] = ttl;
    lens[4] = (size_t)snprintf(ttl, sizeof ttl, "%lu", (unsigned long)RTWS__MAX(r->cfg.session_ttl_ms, 1u));
    rtws_redis_command(e->cmd, 5, argv, lens, NULL, NULL);
}

static void rtws__eng_session_loaded(rtws_redis *rd, const rtws_resp_reply *rep, rtws_err err,
                                     void *user) {
    rtws__rjob *j = (rtws__rjob *)user;
    rtws__reng *e = j->e;
    rtws_router *r = e->r;
    rtws__rconn *rc = e->closing ? NULL : rtws__eng_rc(r, j->conn);
    const char *sid = j->chan;
    size_t sn = j->cn, i;
    (void)rd;
    (void)err;
    if (rc && !rc->session) {
        int ok = rep && rep->type == RTWS_RESP_BULK && rep->len >= 1 && rep->len <= 63;
        for (i = 0; ok && i < rep->len; i++)
            if ((uint8_t)rep->str[i] < 0x21 || rep->str[i] == 0x7f) ok = 0;
        if (ok && !rtws__hfind(&r->sessions, sid, sn, rtws__hash(sid, sn))) {
            char name[64];
            rtws__ruser *u;
            rtws__session *s;
            memcpy(name, rep->str, rep->len);
            name[rep->len] = '\0';
            u = rtws__user_get(r, name);
            s = u ? (rtws__session *)rtws__alloc(rtws__ra(r), RTWS__SESS_SIZE(sn)) : NULL;
            if (s) { /* the session, known here from now on under its id */
                memset(s, 0, RTWS__SID_OFF);
                memcpy(RTWS__SID(s), sid, sn);
                RTWS__SID(s)[sn] = '\0';
                s->h.key = RTWS__SID(s);
                s->h.klen = (uint32_t)sn;
                s->h.hash = rtws__hash(s->h.key, sn);
                s->user = u;
                s->expire = r->now + r->cfg.session_ttl_ms;
                if (rtws__hadd(&r->sessions, &s->h, rtws__ra(r))) {
                    u->sessions++;
                    rtws__rmem(r, RTWS__SESS_SIZE(sn), 1);
                } else {
                    rtws__free(rtws__ra(r), s);
                }
            }
            if (u && !u->sessions && !u->conns) rtws__user_maybe_drop(r, u);
        }
        rtws__open_session(r, rc, r->now);
    }
    rtws__eng_put(e, j);
}

/* 1 when rc's ?session= is not known here and Redis is asked for it. */
static int rtws__eng_session_load(rtws_router *r, rtws__rconn *rc) {
    rtws__reng *e = r->eng;
    const char *sid = rtws__pend_session(rc);
    size_t sn = strlen(sid);
    char k[256];
    const char *argv[2];
    size_t lens[2];
    rtws__rjob *j;
    if (sn > 31 || rtws__hfind(&r->sessions, sid, sn, rtws__hash(sid, sn)) || !rtws__eng_can_ask(e))
        return 0;
    if (!(j = rtws__eng_job(e, rc, sid, sn, NULL, 0))) return 0;
    argv[0] = "GET";
    lens[0] = 3;
    argv[1] = k;
    lens[1] = rtws__eng_key(e, k, "sess", sid, sn);
    if (rtws_redis_command(e->cmd, 2, argv, lens, rtws__eng_session_loaded, j) != RTWS_OK) {
        rtws__eng_put(e, j);
        return 0;
    }
    return 1;
}

/* max_conns_per_user across nodes, for users known at the upgrade (a
   token): P:uc:<user> is a sorted set of "<node>:<conn id>" scored by when
   the entry lapses (wall clock ms). Its node renews each entry every
   RTWS__LEASE_MS / 3 and removes it at the close; a killed node's entries
   lapse after RTWS__LEASE_MS. One script drops lapsed entries, counts, and
   adds the new one when under the cap. */
#define RTWS__LEASE_MS 30000u
static const char rtws__lua_cap[] =
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2]) "
    "if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and "
    "redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end "
    "redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) "
    "redis.call('PEXPIRE', KEYS[1], ARGV[5]) "
    "return 1";

static size_t rtws__eng_member(const rtws__reng *e, const rtws__rconn *rc, char *buf, size_t cap) {
    return (size_t)snprintf(buf, cap, "%s:%llu", e->node, (unsigned long long)rc->id);
}

static void rtws__eng_counted(rtws_redis *rd, const rtws_resp_reply *rep, rtws_err err, void *user) {
    rtws__rjob *j = (rtws__rjob *)user;
    rtws__reng *e = j->e;
    rtws_router *r = e->r;
    rtws__rconn *rc = e->closing ? NULL : rtws__eng_rc(r, j->conn);
    (void)rd;
    (void)err;
    rtws__eng_put(e, j);
    if (!rc || rc->session) return;
    if (rep && rep->type == RTWS_RESP_INTEGER && rep->integer == 0) {
        rtws_conn_close(rc->conn, RTWS_CLOSE_POLICY, "too many connections");
        return;
    }
    /* counted (1), or Redis could not say: let it in (the node's own cap holds) */
    rc->eng_counted = rep && rep->type == RTWS_RESP_INTEGER;
    if (rtws__pend_session(rc)[0] && rtws__eng_session_load(r, rc)) return;
    rtws__open_session(r, rc, r->now);
}

/* The cap script for rc as user (the job keeps the user's name); 1 when sent. */
static int rtws__eng_cap_ask(rtws_router *r, rtws__rconn *rc, const char *user,
                             rtws_redis_reply_fn cb) {
    rtws__reng *e = r->eng;
    char k[256], mem[48], now[24], exp[24], cap[24], lease[24];
    const char *argv[9];
    size_t lens[9], un = strlen(user);
    int64_t wall = (int64_t)r->now + r->cfg.wall_offset_ms;
    rtws__rjob *j;
    if (!rtws__eng_can_ask(e) || !e->node[0] || !(j = rtws__eng_job(e, rc, user, un, NULL, 0)))
        return 0;
    argv[0] = "EVAL";
    lens[0] = 4;
    argv[1] = rtws__lua_cap;
    lens[1] = sizeof rtws__lua_cap - 1;
    argv[2] = "1";
    lens[2] = 1;
    argv[3] = k;
    lens[3] = rtws__eng_key(e, k, "uc", user, un);
    argv[4] = mem;
    lens[4] = rtws__eng_member(e, rc, mem, sizeof mem);
    argv[5] = now;
    lens[5] = (size_t)snprintf(now, sizeof now, "%lld", (long long)wall);
    argv[6] = exp;
    lens[6] = (size_t)snprintf(exp, sizeof exp, "%lld", (long long)(wall + RTWS__LEASE_MS));
    argv[7] = cap;
    lens[7] = (size_t)snprintf(cap, sizeof cap, "%llu", (unsigned long long)r->cfg.max_conns_per_user);
    argv[8] = lease;
    lens[8] = (size_t)snprintf(lease, sizeof lease, "%u", RTWS__LEASE_MS);
    if (rtws_redis_command(e->cmd, 9, argv, lens, cb, j) != RTWS_OK) {
        rtws__eng_put(e, j);
        return 0;
    }
    return 1;
}

static int rtws__eng_cap_check(rtws_router *r, rtws__rconn *rc) {
    return rtws__eng_cap_ask(r, rc, rtws__pend_user(rc), rtws__eng_counted);
}

/* The answer for a connection that got its user after the open (an auth
   message, rtws_router_set_identity): over the cap it is closed (1008). */
static void rtws__eng_recounted(rtws_redis *rd, const rtws_resp_reply *rep, rtws_err err,
                                void *user) {
    rtws__rjob *j = (rtws__rjob *)user;
    rtws__reng *e = j->e;
    rtws_router *r = e->r;
    rtws__rconn *rc = e->closing ? NULL : rtws__eng_rc(r, j->conn);
    int counted = rep && rep->type == RTWS_RESP_INTEGER && rep->integer == 1;
    (void)rd;
    (void)err;
    if (rc && rc->user && rc->user->h.klen == j->cn && !memcmp(rc->user->h.key, j->chan, j->cn)) {
        if (rep && rep->type == RTWS_RESP_INTEGER && rep->integer == 0) {
            if (!RTWS__RCEP(r, rc)->e.builtin_protocol_off)
                rtws__rt_error(r, rc, "limit_reached", "too many connections for this user", NULL, 0);
            rtws_conn_close(rc->conn, RTWS_CLOSE_POLICY, "too many connections");
        } else {
            /* (Redis could not say: the node's own cap held) */
            rc->eng_counted = (uint8_t)(counted != 0);
        }
    } else if (counted && !e->closing && e->cmd) { /* closed or renamed meanwhile: not counted */
        char k[256], mem[48];
        const char *argv[3];
        size_t lens[3];
        argv[0] = "ZREM";
        lens[0] = 4;
        argv[1] = k;
        lens[1] = rtws__eng_key(e, k, "uc", j->chan, j->cn);
        argv[2] = mem;
        lens[2] = (size_t)snprintf(mem, sizeof mem, "%s:%llu", e->node, (unsigned long long)j->conn);
        rtws_redis_command(e->cmd, 3, argv, lens, NULL, NULL);
    }
    rtws__eng_put(e, j);
}

/* rc has a new user (after the open): counted across nodes under it. */
static void rtws__eng_recount(rtws_router *r, rtws__rconn *rc) {
    if (r->cfg.max_conns_per_user && rc->user)
        rtws__eng_cap_ask(r, rc, rc->user->h.key, rtws__eng_recounted);
}

/* ZREM at the close; ZADD XX (renew) from the timers. */
static void rtws__eng_lease(rtws_router *r, const rtws__rconn *rc, int renew, int64_t wall) {
    rtws__reng *e = r->eng;
    char k[256], mem[48], exp[24];
    const char *argv[5];
    size_t lens[5];
    const char *user = rc->user ? rc->user->h.key : rtws__pend_user(rc);
    if (e->closing || !e->cmd) return;
    argv[1] = k;
    lens[1] = rtws__eng_key(e, k, "uc", user, strlen(user));
    if (renew) {
        argv[0] = "ZADD";
        lens[0] = 4;
        argv[2] = "XX";
        lens[2] = 2;
        argv[3] = exp;
        lens[3] = (size_t)snprintf(exp, sizeof exp, "%lld", (long long)(wall + RTWS__LEASE_MS));
        argv[4] = mem;
        lens[4] = rtws__eng_member(e, rc, mem, sizeof mem);
        rtws_redis_command(e->cmd, 5, argv, lens, NULL, NULL);
    } else {
        argv[0] = "ZREM";
        lens[0] = 4;
        argv[2] = mem;
        lens[2] = rtws__eng_member(e, rc, mem, sizeof mem);
        rtws_redis_command(e->cmd, 3, argv, lens, NULL, NULL);
    }
}

static void rtws__eng_uncount(rtws_router *r, rtws__rconn *rc) {
    rtws__eng_lease(r, rc, 0, 0);
    rc->eng_counted = 0;
}

/* A message from pub/sub: "<seq> <message JSON>". */
static void rtws__eng_live(rtws__reng *e, const char *name, size_t n, const char *d, size_t len) {
    rtws_router *r = e->r;
    rtws__channel *ch = rtws__channel_get(r, name, n, 0);
    rtws__member *m, *nx;
    rtws_shared *sh;
    uint64_t s = 0;
    size_t k = 0;
    if (!ch || !ch->ex) return;
    while (k < len && k < 20 && d[k] >= '0' && d[k] <= '9') s = s * 10u + (uint64_t)(d[k++] - '0');
    if (!k || k >= len || d[k] != ' ' || s <= ch->seq) return; /* late or repeated */
    sh = rtws_shared_new(rtws__ra(r), RTWS_OP_TEXT, d + k + 1, len - k - 1);
    if (!sh) return;
    if (s != ch->seq + 1) /* a gap (pub/sub lost messages): the ring restarts */
        while (ch->hcount) rtws__hist_pop(r, ch);
    ch->seq = s;
    ch->idle_at = r->now;
    rtws__history_add(r, ch, sh, r->now);
    for (m = ch->subs; m; m = nx) {
        rtws__mx *x = rtws__mx_of(m);
        nx = m->cnext;
        if (x->state != RTWS__M_LIVE || x->last >= s) continue;
        if (x->last + 1 == s) {
            rtws_err err = rtws_conn_send_shared(m->rc->conn, sh);
            x->last = s;
            if (err == RTWS_OK) r->msgs_out++;
            else rtws_conn_close(m->rc->conn, RTWS_CLOSE_TRY_AGAIN, "slow consumer");
        } else { /* the member missed some: fetch them */
            x->has_since = 1;
            x->since = x->last;
            rtws__eng_fetch(r, m->rc, ch, m);
        }
    }
    rtws_shared_release(sh);
    rtws__eng_acks(r, ch);
}

/* The SUBSCRIBE of a channel confirmed: first time, or again after a
   reconnect (messages may have been missed: every member fetches). */
static void rtws__eng_confirmed(rtws__reng *e, const char *name, size_t n) {
    rtws_router *r = e->r;
    rtws__channel *ch = rtws__channel_get(r, name, n, 0);
    rtws__member *m, *nx;
    if (!ch || !ch->ex) return;
    if (ch->ex->confirmed) { /* the ring may lack messages now: start it again */
        while (ch->hcount) rtws__hist_pop(r, ch);
        ch->seq = 0;
        ch->ex->pres_known = 0; /* and presence messages may be lost: the next fetch loads it */
    }
    ch->ex->confirmed = 1;
    for (m = ch->subs; m; m = nx) {
        rtws__mx *x = rtws__mx_of(m);
        nx = m->cnext;
        if (x->state == RTWS__M_LIVE) {
            x->has_since = 1;
            x->since = x->last;
        }
        rtws__eng_fetch(r, m->rc, ch, m);
    }
}

static void rtws__eng_on_msg(rtws_redis *rd, const rtws_redis_message *msg, void *user) {
    rtws__reng *e = (rtws__reng *)user;
    const char *name;
    size_t n;
    (void)rd;
    if (e->closing || !msg->channel || msg->channel_len <= e->plen + 4 ||
        memcmp(msg->channel, e->prefix, e->plen) != 0 || memcmp(msg->channel + e->plen, ":ch:", 4) != 0)
        return;
    name = msg->channel + e->plen + 4;
    n = msg->channel_len - e->plen - 4;
    if (msg->type == RTWS_REDIS_MESSAGE && msg->len > 2 && msg->data[0] == 'p' && msg->data[1] == ' ')
        rtws__eng_pevent(e, name, n, msg->data, msg->len);
    else if (msg->type == RTWS_REDIS_MESSAGE)
        rtws__eng_live(e, name, n, msg->data, msg->len);
    else if (msg->type == RTWS_REDIS_SUBSCRIBED) rtws__eng_confirmed(e, name, n);
}

static void rtws__eng_updown(rtws__reng *e, int *up, rtws_redis_state st) {
    if (st == RTWS_REDIS_OPEN && up == &e->cmd_up) e->was_up = 1;
    if (st == RTWS_REDIS_OPEN) *up = 1;
    else if (*up) {
        *up = 0;
        e->outages++;
    }
}
static void rtws__eng_cmd_state(rtws_redis *rd, rtws_redis_state st, rtws_err err, void *user) {
    rtws__reng *e = (rtws__reng *)user;
    (void)rd;
    (void)err;
    rtws__eng_updown(e, &e->cmd_up, st);
}
static void rtws__eng_sub_state(rtws_redis *rd, rtws_redis_state st, rtws_err err, void *user) {
    rtws__reng *e = (rtws__reng *)user;
    (void)rd;
    (void)err;
    rtws__eng_updown(e, &e->sub_up, st);
}

/* Keeps the keys of channels with local subscribers from expiring: every
   channel_ttl_ms / 2, a PEXPIRE of each. */
static void rtws__eng_timers(rtws_router *r, uint64_t now) {
    rtws__reng *e = r->eng;
    size_t i;
    char k[256], ttl[24];
    const char *argv[3];
    size_t lens[3];
    if (now < e->next_touch || !e->cmd_up) return;
    e->next_touch = now + RTWS__MAX(RTWS__MIN(r->cfg.channel_ttl_ms, r->cfg.session_ttl_ms) / 2u, 1000u);
    argv[0] = "PEXPIRE";
    lens[0] = 7;
    argv[1] = k;
    argv[2] = ttl;
    lens[2] = (size_t)snprintf(ttl, sizeof ttl, "%lu", (unsigned long)r->cfg.channel_ttl_ms);
    for (i = 0; i < r->channels.nb; i++) {
        rtws__hnode *h;
        for (h = r->channels.b[i]; h; h = h->hnext) {
            rtws__channel *ch = (rtws__channel *)h;
            if (!ch->ex) continue;
            lens[1] = rtws__eng_key(e, k, "seq", ch->name, ch->h.klen);
            rtws_redis_command(e->cmd, 3, argv, lens, NULL, NULL);
            lens[1] = rtws__eng_key(e, k, "hist", ch->name, ch->h.klen);
            rtws_redis_command(e->cmd, 3, argv, lens, NULL, NULL);
        }
    }
    for (i = 0; i < r->sessions.nb; i++) {
        rtws__hnode *h;
        for (h = r->sessions.b[i]; h; h = h->hnext)
            if (((rtws__session *)h)->conns) rtws__eng_session_save(r, (rtws__session *)h);
    }
}

/* Renews this node's entries in the per-user connection counts. */
static void rtws__eng_leases(rtws_router *r, uint64_t now) {
    rtws__reng *e = r->eng;
    rtws__rconn *rc;
    if (now < e->next_lease || !e->cmd_up) return;
    e->next_lease = now + RTWS__LEASE_MS / 3u;
    for (rc = rtws__rc_first(r); rc; rc = rtws__rc_next(r, rc))
        if (rc->eng_counted) rtws__eng_lease(r, rc, 1, (int64_t)now + r->cfg.wall_offset_ms);
}

/* The two connections, once the router knows its context. */
static void rtws__eng_start(rtws_router *r, rtws_ctx *ctx) {
    rtws__reng *e = r->eng;
    rtws_redis_config rc;
    rtws_err err;
    uint8_t raw[8];
    if (!e->node[0] && rtws__rt_random(r, raw, sizeof raw) == 0)
        snprintf(e->node, sizeof e->node, "%02x%02x%02x%02x%02x%02x%02x%02x", raw[0], raw[1],
                 raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]);
    memset(&rc, 0, sizeof rc);
    rc.url = e->url;
    rc.user = e;
    rc.on_state = rtws__eng_cmd_state;
    e->cmd = rtws_redis_new(ctx, &rc, ctx->now ? ctx->now : rtws_time_now_ms(), &err);
    rc.subscriber = 1;
    rc.on_state = rtws__eng_sub_state;
    rc.on_message = rtws__eng_on_msg;
    if (e->cmd) e->sub = rtws_redis_new(ctx, &rc, ctx->now ? ctx->now : rtws_time_now_ms(), &err);
    if (!e->sub && e->cmd) {
        rtws_redis_free(e->cmd);
        e->cmd = NULL;
    }
}

static void rtws__eng_free(rtws_router *r) {
    rtws__reng *e = r->eng;
    rtws_allocator a = r->cfg.allocator;
    e->closing = 1; /* the callbacks of commands in flight only free their jobs */
    if (e->cmd) rtws_redis_free(e->cmd);
    if (e->sub) rtws_redis_free(e->sub);
    while (e->jfree) {
        rtws__rjob *j = e->jfree;
        e->jfree = j->next;
        rtws__free(&a, j);
    }
    rtws__free(&a, e->pbuf);
    rtws__free(&a, e->url);
    rtws__free(&a, e);
    r->eng = NULL;
}

static rtws_err rtws__eng_new(rtws_router *r, const char *url, const char *prefix) {
    rtws_redis_url u;
    rtws__reng *e;
    size_t n = strlen(url), pn = prefix ? strlen(prefix) : 4;
    if (rtws_redis_url_parse(url, &u) != RTWS_OK || pn < 1 || pn > 63) return RTWS_ERR_INVALID;
    e = (rtws__reng *)rtws__alloc(rtws__ra(r), sizeof *e);
    if (!e) return RTWS_ERR_NOMEM;
    memset(e, 0, sizeof *e);
    e->r = r;
    e->url = (char *)rtws__alloc(rtws__ra(r), n + 1);
    if (!e->url) {
        rtws__free(rtws__ra(r), e);
        return RTWS_ERR_NOMEM;
    }
    memcpy(e->url, url, n + 1);
    memcpy(e->prefix, prefix ? prefix : "rtws", pn);
    e->plen = pn;
    r->eng = e;
    return RTWS_OK;
}
#endif /* RTWS__HAVE_RENGINE */

/* Rate limit: a token bucket of rate_per_s, burst rate_burst, those of the
   connection's endpoint (rtws_router_new filled in the router's). */
static void rtws__rate_refill(const rtws_router *r, rtws__rconn *rc, uint64_t now) {
    uint64_t cap = (uint64_t)RTWS__RCEP(r, rc)->e.rate_burst * 1000u;
    if (now > rc->tokens_at) {
        rc->tokens += (now - rc->tokens_at) * RTWS__RCEP(r, rc)->e.rate_per_s;
        if (rc->tokens > cap) rc->tokens = cap;
    }
    rc->tokens_at = now;
}

static int rtws__rate_ok(rtws_router *r, rtws__rconn *rc, uint64_t now) {
    if (!RTWS__RCEP(r, rc)->e.rate_per_s) return 1;
    rtws__rate_refill(r, rc, now);
    if (rc->tokens >= 1000) {
        rc->tokens -= 1000;
        return 1;
    }
    return 0;
}

/* Milliseconds until the bucket holds a whole token again. */
static uint64_t rtws__rate_wait(const rtws_router *r, const rtws__rconn *rc) {
    uint64_t per_s = RTWS__RCEP(r, rc)->e.rate_per_s;
    if (!per_s || rc->tokens >= 1000) return 1;
    return (1000 - rc->tokens + per_s - 1) / per_s;
}

static void rtws__to_app(rtws_router *r, rtws__rconn *rc, const rtws_event *ev, const char *why,
                         const char *id, size_t idl) {
    const rtws_router_endpoint *ep = &RTWS__RCEP(r, rc)->e;
    if (ep->on_message) ep->on_message(r, rc->conn, ev, ep->user);
    else rtws__rt_error(r, rc, "bad_request", why, id, idl);
}

static void rtws__req_ping(rtws_router *r, rtws__rconn *rc, const rtws__req *q) {
    int ts = rtws_json_get(q->d, 0, "ts");
    size_t len;
    do {
        rtws__w_begin(r);
        rtws__w_strz(r, "type", "pong");
        rtws_json_write_key(&r->w, "ts", 2);
        if (ts >= 0) rtws_json_write_tok(&r->w, q->d, ts);
        else rtws_json_write_null(&r->w);
        rtws__w_int(r, "time", (int64_t)q->now + r->cfg.wall_offset_ms);
    } while (!rtws__w_end(r, &len));
    rtws__rt_send(r, rc, len);
}

static void rtws__req_auth(rtws_router *r, rtws__rconn *rc, const rtws__req *q) {
    char tok[4097], user[64], sid[32];
    int tk = rtws_json_get(q->d, 0, "token"), resumed, bad = 0;
    size_t tn = 0;
    rtws__tokinfo ti;
    if (tk < 0 || r->toks[tk].type != RTWS_JSON_STRING ||
        rtws_json_unescape(q->d, tk, tok, sizeof tok, &tn) != RTWS_OK) {
        rtws__rt_error(r, rc, "bad_request", "auth needs a token", q->id, q->idl);
        return;
    }
    if (rc->members && !rc->authed) {
        rtws__rt_error(r, rc, "bad_request", "authenticate before subscribing", q->id, q->idl);
        return;
    }
    if (rtws__check_token(r, rc->conn, tok, tn, q->now, user, &ti) != 0) {
        rtws__rt_error(r, rc, "unauthorized", "invalid or expired token", q->id, q->idl);
        return;
    }
    if (rc->authed && strcmp(user, rc->user->h.key) == 0) {
        /* a fresh token for the same user (say after token_expired): the
           session and the subscriptions stay */
        if (!rtws__rconn_token(r, rc, &ti)) rtws__rt_error(r, rc, "internal", "out of memory", q->id, q->idl);
        else rtws__send_authenticated(r, rc);
        return;
    }
    if (rc->members) {
        rtws__rt_error(r, rc, "bad_request", "authenticate before subscribing", q->id, q->idl);
        return;
    }
    rtws__field(q->d, "session", sid, sizeof sid, &bad);
    if (r->cfg.max_conns_per_user && strcmp(user, rc->user->h.key) != 0) {
        size_t un = strlen(user);
        rtws__ruser *u = (rtws__ruser *)rtws__hfind(&r->users, user, un, rtws__hash(user, un));
        if (u && u->conns >= r->cfg.max_conns_per_user) {
            rtws__rt_error(r, rc, "limit_reached", "too many connections for this user", q->id,
                           q->idl);
            rtws_conn_close(rc->conn, RTWS_CLOSE_POLICY, "too many connections");
            return;
        }
    }
#if defined(RTWS__HAVE_RENGINE)
    if (r->eng && rc->eng_counted && strcmp(user, rc->user->h.key) != 0) rtws__eng_uncount(r, rc);
#endif
    if (!rtws__rconn_token(r, rc, &ti) || !rtws__attach_session(r, rc, sid, user, q->now, &resumed)) {
        rtws__rt_error(r, rc, "internal", "out of memory", q->id, q->idl);
        return;
    }
    rc->authed = 1;
    if (rc->pend) rc->pend->auth_deadline = 0;
    rtws__send_authenticated(r, rc);
#if defined(RTWS__HAVE_RENGINE)
    if (r->eng && !rc->eng_counted) rtws__eng_recount(r, rc); /* over the cluster's cap: 1008 */
#endif
}

static void rtws__req_unsubscribe(rtws_router *r, rtws__rconn *rc, const rtws__req *q) {
    size_t len;
    rtws__leave_channel(r, rc, q->m);
    do {
        rtws__w_begin(r);
        rtws__w_strz(r, "type", "unsubscribed");
        rtws__w_str(r, "channel", q->chan, q->cn);
        if (q->id) rtws__w_str(r, "id", q->id, q->idl);
    } while (!rtws__w_end(r, &len));
    rtws__rt_send(r, rc, len);
    rtws__channel_maybe_drop(r, q->ch);
}

static void rtws__req_presence(rtws_router *r, rtws__rconn *rc, const rtws__req *q) {
    char status[33];
    rtws__presence *p;
    int bad = 0;
    if (!rtws__field(q->d, "status", status, sizeof status, &bad) || bad) {
        rtws__rt_error(r, rc, "bad_request", "status must be 1 to 32 bytes", q->id, q->idl);
        return;
    }
    if (!strcmp(status, "joined") || !strcmp(status, "left")) {
        /* the server's own membership words: a client cannot fake them */
        rtws__rt_error(r, rc, "bad_request", "joined and left are reserved", q->id, q->idl);
        return;
    }
    if (!rtws__allowed(r, rc, RTWS_ACT_PRESENCE, q->chan)) {
        rtws__rt_error(r, rc, "forbidden", "not allowed", q->id, q->idl);
        return;
    }
    p = (rtws__presence *)rtws__hfind(&q->ch->presence, rc->user->h.key, rc->user->h.klen,
                                      rc->user->h.hash);
    if (p) rtws__pstatus_set(r, p, status);
#if defined(RTWS__HAVE_RENGINE)
    if (r->eng) {
        rtws__eng_pres(r, q->ch, rc->user->h.key, 3, status);
        return;
    }
#endif
    if (q->ch->presence.count <= r->cfg.max_presence)
        rtws__presence_event(r, q->ch, rc->user->h.key, status, NULL);
}

enum {
    RTWS__REQ_AUTH = 1,    /* when auth_required: "unauthorized" until authenticated */
    RTWS__REQ_CHANNEL = 2, /* a valid "channel" (1 to 128 printable bytes) */
    RTWS__REQ_MEMBER = 4   /* and a subscription to it: "not_subscribed" otherwise */
};

typedef struct rtws__req_type {
    const char *name;
    size_t len;
    void (*fn)(rtws_router *r, rtws__rconn *rc, const rtws__req *q);
    unsigned flags;
} rtws__req_type;

/* The protocol's client messages (docs/PROTOCOL.md). Any other type goes to
   cfg.on_message, after the authentication check. There is no rate limit
   flag: every message counts toward it, binary and unparsable ones too,
   before its type is known. */
#define RTWS__REQ(name, fn, flags) {name, sizeof name - 1, fn, flags}
static const rtws__req_type rtws__req_types[] = {
    RTWS__REQ("ping", rtws__req_ping, 0),
    RTWS__REQ("auth", rtws__req_auth, 0),
    RTWS__REQ("subscribe", rtws__req_subscribe, RTWS__REQ_AUTH | RTWS__REQ_CHANNEL),
    RTWS__REQ("unsubscribe", rtws__req_unsubscribe,
              RTWS__REQ_AUTH | RTWS__REQ_CHANNEL | RTWS__REQ_MEMBER),
    RTWS__REQ("publish", rtws__req_publish, RTWS__REQ_AUTH | RTWS__REQ_CHANNEL),
    RTWS__REQ("presence", rtws__req_presence,
              RTWS__REQ_AUTH | RTWS__REQ_CHANNEL | RTWS__REQ_MEMBER)};
#undef RTWS__REQ

static const rtws__req_type *rtws__req_find(const rtws_json *d, int type) {
    size_t i;
    for (i = 0; i < sizeof rtws__req_types / sizeof rtws__req_types[0]; i++)
        if (rtws_json_eqn(d, type, rtws__req_types[i].name, rtws__req_types[i].len))
            return &rtws__req_types[i];
    return NULL;
}

/* The endpoint's message-type table: a refusal to on_error, then the close
   the authentication codes ask for. */
static void rtws__ep_refuse(rtws_router *r, rtws__rconn *rc, const char *code, const char *msg,
                            int close) {
    const rtws_router_endpoint *ep = &RTWS__RCEP(r, rc)->e;
    if (ep->on_error) ep->on_error(r, rc->conn, code, msg, ep->user);
    if (close && ep->auth_close_code != 1 && rtws_conn_get_state(rc->conn) == RTWS_STATE_OPEN)
        rtws_conn_close(rc->conn,
                        ep->auth_close_code ? ep->auth_close_code : (uint16_t)RTWS_CLOSE_POLICY,
                        msg);
}

/* Parses a message of an endpoint with a handler table, checks its type
   (and the auth message's token) and calls the type's handler. */
static void rtws__ep_dispatch(rtws_router *r, rtws__rconn *rc, const rtws_event *ev) {
    const rtws_router_endpoint *ep = &RTWS__RCEP(r, rc)->e;
    const rtws_router_handler *h = NULL;
    rtws_json d;
    char type[65], why[96];
    const char *tf = ep->type_field ? ep->type_field : "type";
    int is_auth, n;
    size_t i;
    rtws_err e;
    if (ev->message.opcode != RTWS_OP_TEXT ||
        rtws__parse_grow(&d, (const char *)ev->message.data, ev->message.len, rtws__ra(r),
                         &r->toks, &r->tokcap, r->cfg.max_tokens, 32) != RTWS_OK ||
        r->toks[0].type != RTWS_JSON_OBJECT ||
        (n = rtws_json_get_str(&d, 0, tf, type, sizeof type)) <= 0) {
        rtws__ep_refuse(r, rc, "invalid_message", "messages are JSON objects with a type", 0);
        return;
    }
    for (i = 0; i < ep->n_handlers && !h; i++)
        if (ep->handlers[i].type && strcmp(ep->handlers[i].type, type) == 0) h = &ep->handlers[i];
    is_auth = ep->auth_type && ep->auth_type[0] && strcmp(ep->auth_type, type) == 0;
    if (!is_auth && ep->auth_required && !rc->authed &&
        !(h && (h->flags & RTWS_ROUTER_BEFORE_AUTH))) {
        if (ep->auth_type && ep->auth_type[0])
            snprintf(why, sizeof why, "first message must be %.64s", ep->auth_type);
        else
            memcpy(why, "authenticate first", 19);
        rtws__ep_refuse(r, rc, "authentication_required", why, 1); /* unknown types too */
        return;
    }
    if (!h && !is_auth) {
        rtws__ep_refuse(r, rc, "unknown_message_type", type, 0);
        return;
    }
    if (is_auth) {
        char tok[4097];
        n = rtws_json_get_str(&d, 0, ep->auth_token_field ? ep->auth_token_field : "token", tok,
                              sizeof tok);
        e = rtws_router_authenticate(r, rc->conn, tok, n > 0 ? (size_t)n : 0);
        if (e == RTWS_ERR_LIMIT)
            rtws__ep_refuse(r, rc, "connection_limit_exceeded", "too many connections for this user",
                            1);
        else if (e != RTWS_OK)
            rtws__ep_refuse(r, rc, "authentication_failed", "invalid or expired token", 1);
        if (e != RTWS_OK) return;
    }
    if (h && h->fn) h->fn(r, rc->conn, &d, ep->user);
}

/* Checks what every message needs (rate, JSON object, type, id), then what
   its type's flags ask for, and hands it to the type's handler. */
static void rtws__on_message(rtws_router *r, rtws__rconn *rc, const rtws_event *ev, uint64_t now) {
    const rtws__req_type *t = NULL;
    rtws__req q;
    rtws_json d;
    rtws_err e = RTWS_OK;
    int tv = -1, bad = 0, ok = 0;
    char chan[129], id[65];
    unsigned flags;
    const rtws_router_endpoint *ep = &RTWS__RCEP(r, rc)->e;
    rtws__rblock *blk;
    r->msgs_in++;
    if (ep->builtin_protocol_off) { /* the application's protocol: the router says nothing */
        if (!rtws__rate_ok(r, rc, now)) {
            r->refused_rate++;
            if (ep->on_rate_limited && rtws_conn_get_state(rc->conn) == RTWS_STATE_OPEN)
                ep->on_rate_limited(r, rc->conn, ev, ep->user); /* not once closing */
            if (++rc->abuse > ep->rate_abuse && rtws_conn_get_state(rc->conn) == RTWS_STATE_OPEN)
                rtws_conn_close(rc->conn, RTWS_CLOSE_POLICY, "rate limit");
            return;
        }
        if (rc->abuse) rc->abuse--;
        if (ep->on_receive && ep->on_receive(r, rc->conn, ev, ep->user) == RTWS_ROUTER_HANDLED) return;
        if (ep->n_handlers || (ep->auth_type && ep->auth_type[0])) {
            if (rtws_conn_get_state(rc->conn) == RTWS_STATE_OPEN) rtws__ep_dispatch(r, rc, ev);
        } else if (ep->on_message) {
            ep->on_message(r, rc->conn, ev, ep->user);
        }
        return;
    }
    memset(&q, 0, sizeof q);
    q.d = &d;
    q.now = now;
    /* parsed before the rate check, so that a refusal names the id */
    if (ev->message.opcode == RTWS_OP_TEXT) {
        e = rtws__parse_grow(&d, (const char *)ev->message.data, ev->message.len, rtws__ra(r),
                             &r->toks, &r->tokcap, r->cfg.max_tokens, 32);
        ok = e == RTWS_OK && r->toks[0].type == RTWS_JSON_OBJECT &&
             (tv = rtws_json_get(&d, 0, "type")) >= 0 && r->toks[tv].type == RTWS_JSON_STRING;
    }
    if (ok) {
        q.idl = rtws__field(&d, "id", id, sizeof id, &bad);
        if (q.idl) q.id = id;
        t = rtws__req_find(&d, tv);
        q.publish = t && t->fn == rtws__req_publish;
    }
    blk = rc->pend ? rc->pend->blk : NULL;
    if (blk && now >= blk->until) {
        rtws__rblock_drop(r, rc);
        blk = NULL;
    }
    if (q.publish && q.id && blk && !(blk->len == q.idl && memcmp(blk->id, id, q.idl) == 0)) {
        /* an earlier publish was refused: this one waits for it (in flight
           when the refusal went out, or a client that does not resend) */
        r->refused_rate++;
        rtws__rate_refill(r, rc, now);
        rtws__rt_refuse(r, rc, "rate_limited", "an earlier publish was refused: send it again first",
                        q.id, q.idl, 0, rtws__rate_wait(r, rc), now);
        if (now >= blk->counts && ++rc->abuse > ep->rate_abuse)
            rtws_conn_close(rc->conn, RTWS_CLOSE_POLICY, "rate limit");
        return;
    }
    if (!rtws__rate_ok(r, rc, now)) {
        r->refused_rate++;
        rtws__rt_refuse(r, rc, "rate_limited", "slow down", q.id, q.idl, q.publish,
                        rtws__rate_wait(r, rc), now);
        if (++rc->abuse > ep->rate_abuse) rtws_conn_close(rc->conn, RTWS_CLOSE_POLICY, "rate limit");
        return;
    }
    if (rc->abuse) rc->abuse--; /* a client that paces itself works its count off */
    if (q.publish && blk && blk->len == q.idl && q.id && memcmp(blk->id, id, q.idl) == 0)
        rtws__rblock_drop(r, rc);
    /* the hook calls nothing that parses into r->toks, so d stays valid after it */
    if (ep->on_receive && ep->on_receive(r, rc->conn, ev, ep->user) == RTWS_ROUTER_HANDLED) return;
    if (rtws_conn_get_state(rc->conn) != RTWS_STATE_OPEN) return; /* the hook closed it */
    if (ev->message.opcode != RTWS_OP_TEXT) {
        rtws__to_app(r, rc, ev, "binary messages are not part of the protocol", NULL, 0);
        return;
    }
    if (!ok) {
        if (e == RTWS_ERR_NOSPACE) rtws__rt_error(r, rc, "too_large", "message has too many values", NULL, 0);
        else rtws__to_app(r, rc, ev, "expected a JSON object with a type", NULL, 0);
        return;
    }
    if (bad) {
        rtws__rt_error(r, rc, "bad_request", "id must be a string of 1 to 64 bytes", NULL, 0);
        return;
    }
    flags = t ? t->flags : (unsigned)RTWS__REQ_AUTH; /* unknown types wait for auth too */
    if ((flags & RTWS__REQ_AUTH) && ep->auth_required && !rc->authed) {
        rtws__rt_error(r, rc, "unauthorized", "authenticate first", q.id, q.idl);
        return;
    }
    if (!t) {
        rtws__to_app(r, rc, ev, "unknown message type", q.id, q.idl);
        return;
    }
    if (flags & RTWS__REQ_CHANNEL) {
        int cv = rtws_json_get(&d, 0, "channel");
        if (cv < 0 || r->toks[cv].type != RTWS_JSON_STRING ||
            rtws_json_unescape(&d, cv, chan, sizeof chan, &q.cn) != RTWS_OK ||
            !rtws__valid_channel(chan, q.cn) || strlen(chan) != q.cn) {
            rtws__rt_error(r, rc, "bad_request", "channel must be 1 to 128 printable bytes", q.id,
                           q.idl);
            return;
        }
        q.chan = chan;
    }
    if (flags & RTWS__REQ_MEMBER) {
        q.ch = rtws__channel_get(r, chan, q.cn, 0);
        q.m = q.ch ? rtws__member_of(rc, q.ch) : NULL;
        if (!q.m) {
            rtws__rt_error(r, rc, "not_subscribed", "not subscribed to this channel", q.id, q.idl);
            return;
        }
    }
    t->fn(r, rc, &q);
}

static void rtws__rconn_free(rtws_router *r, rtws__rconn *rc, uint64_t now) {
    while (rc->members) {
        rtws__channel *ch = rc->members->ch;
        rtws__leave_channel(r, rc, rc->members);
        rtws__channel_maybe_drop(r, ch);
    }
    if (rc->session && --rc->session->conns == 0) {
        rc->session->expire = now + r->cfg.session_ttl_ms;
#if defined(RTWS__HAVE_RENGINE)
        if (r->eng) rtws__eng_session_save(r, rc->session); /* session_ttl_ms from now */
#endif
    }
#if defined(RTWS__HAVE_RENGINE)
    if (rc->eng_counted && r->eng) rtws__eng_uncount(r, rc);
#endif
    rtws__user_link(rc, NULL);
    if (rc->user && --rc->user->conns == 0) {
        r->users_online--;
        rtws__user_maybe_drop(r, rc->user);
    }
    if (rc->opened) {
        r->nconns--;
        RTWS__RCEP(r, rc)->nconns--;
        if (rc->ih.key) rtws__hdel(&r->byid, &rc->ih);
    }
    rc->conn->priv_.ext_ = NULL;
    if (rc->pend && rc->pend->claims) {
        rtws__rmem(r, rc->pend->claims_len + 1, 0);
        rtws__free(rtws__ra(r), rc->pend->claims);
    }
    rtws__rblock_drop(r, rc);
    rtws__pend_drop(r, rc);
    rtws__free(rtws__ra(r), rc);
}

RTWS_API int rtws_router_handle_accept(rtws_router *r, rtws_conn *c, const rtws_http *req,
                                   uint64_t now_ms) {
    rtws__rconn *rc;
    const rtws_str *a;
    char tok[4097];
    size_t tn = 0;
    int too_long = 0;
    rtws__tokinfo ti;
    rtws__ep *ep = NULL;
    size_t ei;
    for (ei = 0; ei < r->neps && !ep; ei++) { /* the first endpoint with this path */
        const char *path = r->eps[ei].e.path;
        if (!path || (req->path.len == strlen(path) && memcmp(req->path.p, path, req->path.len) == 0))
            ep = &r->eps[ei];
    }
    if (!ep) return 404;
    if (now_ms > r->now) r->now = now_ms;
    rc = (rtws__rconn *)rtws__alloc(rtws__ra(r), sizeof *rc);
    if (!rc) return 503;
    memset(rc, 0, sizeof *rc);
    rc->conn = c;
    rc->epi = (uint32_t)(ep - r->eps);
    rc->id = ++r->next_id;

    /* the token: Authorization: Bearer, else ?token=; the session: ?session= */
    a = rtws_http_get_header(req, "Authorization");
    if (a && a->len > 7 && a->p[6] == ' ') {
        rtws_str scheme;
        scheme.p = a->p;
        scheme.len = 6;
        if (!rtws__str_ieq(scheme, "Bearer")) a = NULL;
    } else {
        a = NULL;
    }
    if (a) { /* a token over 4096 bytes is a token that does not verify: 401 */
        tn = a->len - 7;
        if (tn >= sizeof tok) too_long = 1;
        else memcpy(tok, a->p + 7, tn);
    }
    {
        size_t i = 0;
        while (i < req->query.len) {
            size_t s = i, e, k;
            while (i < req->query.len && req->query.p[i] != '&') i++;
            e = i++;
            for (k = s; k < e && req->query.p[k] != '='; k++) {
            }
            if (k == e) continue;
            if (k - s == 5 && memcmp(req->query.p + s, "token", 5) == 0) {
                if (tn || too_long) continue; /* the header's, or the first one, counts */
                if (e - k - 1 >= sizeof tok) too_long = 1;
                else memcpy(tok, req->query.p + k + 1, tn = e - k - 1);
            } else if (k - s == 7 && memcmp(req->query.p + s, "session", 7) == 0 &&
                       e - k - 1 < sizeof rc->pend->session) {
                if (!rtws__pend_get(r, rc)) {
                    rtws__free(rtws__ra(r), rc);
                    return 503;
                }
                memcpy(rc->pend->session, req->query.p + k + 1, e - k - 1);
                rc->pend->session[e - k - 1] = '\0';
            }
        }
    }
    if (tn || too_long) {
        char user[64];
        if (too_long || rtws__check_token(r, c, tok, tn, now_ms, user, &ti) != 0) {
            rtws__pend_drop(r, rc);
            rtws__free(rtws__ra(r), rc);
            return 401;
        }
        if ((user[0] && !rtws__pend_get(r, rc)) || !rtws__rconn_token(r, rc, &ti)) {
            rtws__pend_drop(r, rc);
            rtws__free(rtws__ra(r), rc);
            return 503;
        }
        if (user[0]) memcpy(rc->pend->user, user, sizeof user);
        rc->authed = 1;
    }
    c->priv_.ext_ = rc;
    return 0;
}

static void rtws__on_open(rtws_router *r, rtws__rconn *rc, uint64_t now) {
    rc->opened = 1;
    r->nconns++;
    r->total_conns++;
    RTWS__RCEP(r, rc)->nconns++;
    RTWS__RCEP(r, rc)->total++;
    rc->ih.hash = rtws__hash((const char *)&rc->id, sizeof rc->id);
    rc->ih.klen = (uint32_t)sizeof rc->id;
    rc->ih.key = (const char *)&rc->id;
    if (!rtws__hadd(&r->byid, &rc->ih, rtws__ra(r))) {
        rc->ih.key = NULL;
        rtws_conn_close(rc->conn, RTWS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    rc->tokens = (uint64_t)RTWS__RCEP(r, rc)->e.rate_burst * 1000u;
    rc->tokens_at = now;
#if defined(RTWS__HAVE_RENGINE)
    if (r->eng && rtws__pend_user(rc)[0] && r->cfg.max_conns_per_user && rtws__eng_cap_check(r, rc))
        return; /* the user's connections on every node: welcome once Redis answers */
    if (r->eng && rtws__pend_session(rc)[0] && rtws__eng_session_load(r, rc))
        return; /* a session of another node, maybe: welcome once Redis answers */
#endif
    rtws__open_session(r, rc, now);
}

/* The second half of an open: the session (resumed or new), then welcome. */
static void rtws__open_session(rtws_router *r, rtws__rconn *rc, uint64_t now) {
    int resumed = 0, builtin = !RTWS__RCEP(r, rc)->e.builtin_protocol_off;
    const char *pu = rtws__pend_user(rc);
    if (pu[0] && r->cfg.max_conns_per_user) {
        rtws__ruser *u = (rtws__ruser *)rtws__hfind(&r->users, pu, strlen(pu), rtws__hash(pu, strlen(pu)));
        if (u && u->conns >= r->cfg.max_conns_per_user) {
            rtws_conn_close(rc->conn, RTWS_CLOSE_POLICY, "too many connections");
            return;
        }
    }
    if (!rtws__attach_session(r, rc, rtws__pend_session(rc), pu, now, &resumed)) {
        rtws_conn_close(rc->conn, RTWS_CLOSE_INTERNAL, "out of memory");
        return;
    }
#if defined(RTWS__HAVE_RENGINE)
    if (r->eng) rtws__eng_session_save(r, rc->session); /* other nodes may resume it */
#endif
    if (RTWS__RCEP(r, rc)->e.auth_required && !rc->authed) {
        if (!rtws__pend_get(r, rc)) {
            rtws_conn_close(rc->conn, RTWS_CLOSE_INTERNAL, "out of memory");
            return;
        }
        rc->pend->auth_deadline = now + r->cfg.auth_timeout_ms;
    }
    if (!builtin) return;
    rtws__send_welcome(r, rc, now, resumed);
    if (rc->authed) rtws__send_authenticated(r, rc);
}

RTWS_API void rtws_router_handle_event(rtws_router *r, rtws_conn *c, const rtws_event *ev,
                                   uint64_t now_ms) {
    rtws__rconn *rc = (rtws__rconn *)c->priv_.ext_;
    if (now_ms > r->now) r->now = now_ms;
    if (rc) {
        switch (ev->type) {
        case RTWS_EV_OPEN: rtws__on_open(r, rc, now_ms); break;
        case RTWS_EV_MESSAGE:
            if (rc->opened && rc->session) rtws__on_message(r, rc, ev, now_ms);
            break;
        case RTWS_EV_CLOSE:
        case RTWS_EV_ERROR: /* an error is final for one that never opened */
            if (ev->type == RTWS_EV_ERROR && rc->opened) break;
            /* the application sees the end while the router still knows the
               connection (its id, user, endpoint and channels) */
            if (r->cfg.on_event) r->cfg.on_event(c, ev, r->cfg.user);
            rtws__rconn_free(r, rc, now_ms);
            return;
        default: break;
        }
    }
    if (r->cfg.on_event) r->cfg.on_event(c, ev, r->cfg.user);
}

RTWS_API int rtws_router_handle_http(rtws_router *r, rtws_conn *c, const rtws_http *req,
                                 rtws_http_reply *reply, uint64_t now_ms) {
    const char *sp = r->cfg.status_off ? NULL : r->cfg.status_path;
    if (sp && req->path.len == strlen(sp) && memcmp(req->path.p, sp, req->path.len) == 0) {
        size_t len, i, listed = 0;
        char iso[32];
        do {
            rtws__w_begin(r);
            rtws__w_strz(r, "status", r->health);
            rtws__w_int(r, "active_connections", (int64_t)r->nconns);
            rtws__w_int(r, "total_connections", (int64_t)r->total_conns);
            rtws__w_int(r, "users_online", (int64_t)r->users_online);
            rtws__w_int(r, "channels", (int64_t)r->channels.count);
            rtws_json_write_key(&r->w, "subscriptions", 13);
            rtws_json_write_object(&r->w);
            for (i = 0, listed = 0; i < r->channels.nb && listed < 1000; i++) {
                rtws__hnode *e;
                for (e = r->channels.b[i]; e && listed < 1000; e = e->hnext) {
                    rtws__channel *ch = (rtws__channel *)e;
                    if (!ch->nsubs) continue;
                    rtws_json_write_key(&r->w, ch->name, ch->h.klen);
                    rtws_json_write_int64(&r->w, (int64_t)ch->nsubs);
                    listed++;
                }
            }
            rtws_json_write_object_end(&r->w);
            rtws__w_int(r, "messages_in", (int64_t)r->msgs_in);
            rtws__w_int(r, "messages_out", (int64_t)r->msgs_out);
            rtws__w_int(r, "publishes", (int64_t)r->publishes);
            rtws__w_int(r, "sessions", (int64_t)r->sessions.count);
            rtws_json_write_key(&r->w, "memory", 6);
            rtws_json_write_object(&r->w);
            rtws__w_int(r, "used", (int64_t)r->budget->used);
            rtws__w_int(r, "peak", (int64_t)r->budget->peak);
            rtws__w_int(r, "budget", (int64_t)r->budget->limit);
            rtws__w_int(r, "router", (int64_t)r->mem);
            rtws__w_int(r, "history", (int64_t)r->hist_bytes);
            rtws_json_write_object_end(&r->w);
            rtws__w_int(r, "channels_expired", (int64_t)r->expired);
            rtws__w_int(r, "uptime_s", (int64_t)((now_ms - r->started) / 1000u));
            rtws__w_int(r, "timestamp", (int64_t)now_ms + r->cfg.wall_offset_ms);
            if (rtws_time_format_iso((int64_t)now_ms + r->cfg.wall_offset_ms, iso, sizeof iso))
                rtws__w_strz(r, "time", iso);
            if (rtws_time_format_iso((int64_t)r->started + r->cfg.wall_offset_ms, iso, sizeof iso))
                rtws__w_strz(r, "started", iso);
            if (r->cfg.n_endpoints) { /* per path: WebSocket connections only */
                rtws_json_write_key(&r->w, "endpoints", 9);
                rtws_json_write_object(&r->w);
                for (i = 0; i < r->neps; i++) {
                    const char *path = r->eps[i].e.path ? r->eps[i].e.path : "*";
                    rtws_json_write_key(&r->w, path, strlen(path));
                    rtws_json_write_object(&r->w);
                    rtws__w_int(r, "active_connections", (int64_t)r->eps[i].nconns);
                    rtws__w_int(r, "total_connections", (int64_t)r->eps[i].total);
                    rtws_json_write_object_end(&r->w);
                }
                rtws_json_write_object_end(&r->w);
            }
#if defined(RTWS__HAVE_RENGINE)
            if (r->eng) { /* the cluster's Redis: "up", or "down" (an outage) */
                rtws__w_strz(r, "engine", "redis");
                rtws_json_write_key(&r->w, "redis", 5);
                rtws_json_write_object(&r->w);
                rtws__w_strz(r, "state", r->eng->cmd_up && r->eng->sub_up ? "up" : "down");
                rtws__w_int(r, "outages", (int64_t)r->eng->outages);
                rtws__w_int(r, "refused_publishes", (int64_t)r->eng->refused);
                rtws__w_int(r, "pending", (int64_t)(r->eng->cmd ? rtws_redis_get_pending(r->eng->cmd) : 0));
                rtws_json_write_object_end(&r->w);
            }
#endif
            if (r->cfg.on_status) r->cfg.on_status(r, &r->w, r->cfg.user);
        } while (!rtws__w_end(r, &len));
        reply->status = 200;
        reply->content_type = "application/json";
        reply->body = r->out;
        reply->body_len = len;
        reply->headers = "Access-Control-Allow-Origin: *\r\n";
        return 1;
    }
    if (r->cfg.on_http) return r->cfg.on_http(c, req, reply, r->cfg.user);
    return 0;
}

RTWS_API void rtws_router_run_timers(rtws_router *r, uint64_t now_ms) {
    rtws__rconn *rc;
    size_t i;
    if (now_ms > r->now) r->now = now_ms;
    /* deadlines of authentication and tokens live in pend records: without
       one (anonymous connections only) there is nothing to walk for */
    for (rc = r->npend ? rtws__rc_first(r) : NULL; rc; rc = rtws__rc_next(r, rc))
        if (rc->pend && rc->pend->auth_deadline && now_ms >= rc->pend->auth_deadline) {
            rc->pend->auth_deadline = 0;
            /* the connection may not have seen this time yet: its close
               deadline must count from now */
            if (now_ms > rc->conn->priv_.now) rc->conn->priv_.now = now_ms;
            if (!RTWS__RCEP(r, rc)->e.builtin_protocol_off)
                rtws__rt_error(r, rc, "unauthorized", "no authentication in time", NULL, 0);
            rtws_conn_close(rc->conn, RTWS_CLOSE_POLICY, "authentication required");
        }
    /* a token that expires on an open connection: token_expired, then
       token_grace_ms for an auth with a fresh one, then close 4001 */
    for (rc = r->npend ? rtws__rc_first(r) : NULL; rc; rc = rtws__rc_next(r, rc)) {
        if (!rc->pend) continue;
        if (rc->pend->token_exp && now_ms >= rc->pend->token_exp) {
            rc->pend->token_exp = 0;
            rc->pend->token_grace = now_ms + r->cfg.token_grace_ms;
            if (now_ms > rc->conn->priv_.now) rc->conn->priv_.now = now_ms;
            /* the application's protocol: nothing */
            if (!RTWS__RCEP(r, rc)->e.builtin_protocol_off)
                rtws__rt_error(r, rc, "token_expired", "token expired: send auth with a new one", NULL, 0);
        } else if (rc->pend->token_grace && now_ms >= rc->pend->token_grace) {
            rc->pend->token_grace = 0;
            if (now_ms > rc->conn->priv_.now) rc->conn->priv_.now = now_ms;
            rtws_conn_close(rc->conn, RTWS_CLOSE_TOKEN_EXPIRED, "token expired");
        }
    }
#if defined(RTWS__HAVE_RENGINE)
    if (r->eng) {
        rtws__eng_timers(r, now_ms);
        rtws__eng_leases(r, now_ms);
        rtws__eng_beat(r, now_ms);
    }
#endif
    if (now_ms < r->next_sweep) return;
    r->next_sweep = now_ms + 1000;
    for (i = 0; i < r->sessions.nb; i++) {
        rtws__hnode *e = r->sessions.b[i], *nx;
        for (; e; e = nx) {
            rtws__session *s = (rtws__session *)e;
            nx = e->hnext;
            if (!s->conns && now_ms >= s->expire) rtws__session_free(r, s);
        }
    }
    for (i = 0; i < r->channels.nb; i++) {
        rtws__hnode *e = r->channels.b[i], *nx;
        for (; e; e = nx) {
            rtws__channel *ch = (rtws__channel *)e;
            nx = e->hnext;
            if (!ch->nsubs && now_ms >= ch->idle_at + r->cfg.channel_ttl_ms) {
                rtws__channel_free(r, ch);
                r->expired++;
            }
        }
    }
    if (rtws__over_history(r->budget, 0)) rtws__history_shed(r, 0);
}

RTWS_API const char *rtws_router_get_user(const rtws_router *r, const rtws_conn *c) {
    const rtws__rconn *rc = (const rtws__rconn *)c->priv_.ext_;
    (void)r;
    return rc && rc->user ? rc->user->h.key : NULL;
}

RTWS_API const char *rtws_router_get_claims(const rtws_router *r, const rtws_conn *c, size_t *len) {
    const rtws__rconn *rc = (const rtws__rconn *)c->priv_.ext_;
    (void)r;
    if (len) *len = rc && rc->pend && rc->pend->claims ? rc->pend->claims_len : 0;
    return rc && rc->pend ? rc->pend->claims : NULL;
}

RTWS_API void rtws_router_get_stats(const rtws_router *r, rtws_router_stats *st) {
    memset(st, 0, sizeof *st);
    st->active_connections = r->nconns;
    st->users_online = r->users_online;
    st->channels = r->channels.count;
    st->subscriptions = r->nsubs;
    st->sessions = r->sessions.count;
    st->total_connections = r->total_conns;
    st->messages_in = r->msgs_in;
    st->messages_out = r->msgs_out;
    st->publishes = r->publishes;
    st->memory_used = r->budget->used;
    st->memory_peak = r->budget->peak;
    st->memory_budget = r->budget->limit;
    st->memory_router = r->mem;
    st->history_bytes = r->hist_bytes;
    st->channels_expired = r->expired;
    st->history_shed = r->shed;
    st->refused_overloaded = r->refused_overloaded;
    st->refused_rate = r->refused_rate;
#if defined(RTWS__HAVE_RENGINE)
    if (r->eng) {
        st->engine_redis = 1;
        st->redis_up = r->eng->cmd_up && r->eng->sub_up;
        st->redis_outages = r->eng->outages;
        st->refused_redis = r->eng->refused;
    }
#endif
}

/* The router's own budget is over its limit: close the connections with
   the largest unsent queues (1013) until need bytes fit. */
static void rtws__router_reclaim(rtws_budget *b, size_t need, void *user) {
    rtws_router *r = (rtws_router *)user;
    while (b->limit && (b->used > b->limit || need > b->limit - b->used)) {
        rtws__rconn *rc, *big = NULL;
        size_t most = 0;
        for (rc = rtws__rc_first(r); rc; rc = rtws__rc_next(r, rc)) {
            size_t q = rtws__conn_sheddable(rc->conn);
            if (q > most) {
                most = q;
                big = rc;
            }
        }
        if (!big || !rtws__conn_shed(big->conn)) return;
    }
}

RTWS_API rtws_budget *rtws_router_get_budget(rtws_router *r) { return r->budget; }

/* ---- the server-side API ---- */

static rtws__rconn *rtws__rc_of(const rtws_conn *c) {
    return c ? (rtws__rconn *)c->priv_.ext_ : NULL;
}

/* A channel by its C-string name (NULL when missing or the name is bad). */
static rtws__channel *rtws__channel_named(const rtws_router *r, const char *name) {
    size_t n = name ? strlen(name) : 0;
    if (!rtws__valid_channel(name, n)) return NULL;
    return (rtws__channel *)rtws__hfind(&r->channels, name, n, rtws__hash(name, n));
}

RTWS_API uint64_t rtws_router_get_conn_id(const rtws_router *r, const rtws_conn *c) {
    const rtws__rconn *rc = rtws__rc_of(c);
    (void)r;
    return rc ? rc->id : 0;
}

RTWS_API rtws_conn *rtws_router_find_conn(const rtws_router *r, uint64_t id) {
    rtws__hnode *e = rtws__hfind(&r->byid, (const char *)&id, sizeof id,
                                 rtws__hash((const char *)&id, sizeof id));
    return e ? ((rtws__rconn *)e)->conn : NULL;
}

RTWS_API int rtws_router_get_conn_endpoint(const rtws_router *r, const rtws_conn *c) {
    const rtws__rconn *rc = rtws__rc_of(c);
    return rc && rc->epi < r->neps ? (int)rc->epi : -1;
}

RTWS_API size_t rtws_router_foreach_conn(rtws_router *r, const char *user_id,
                                         const char *channel,
                                         int (*fn)(rtws_router *r, rtws_conn *c, void *user),
                                         void *user) {
    size_t n = 0;
    rtws__ruser *u = NULL;
    if (user_id) {
        size_t un = strlen(user_id);
        u = (rtws__ruser *)rtws__hfind(&r->users, user_id, un, rtws__hash(user_id, un));
        if (!u) return 0;
    }
    if (channel) { /* the shorter list: the channel's members, filtered by user */
        rtws__channel *ch = rtws__channel_named(r, channel);
        rtws__member *m, *nx;
        if (!ch) return 0;
        for (m = ch->subs; m; m = nx) {
            nx = m->cnext; /* fn may unsubscribe m->rc */
            if (u && m->rc->user != u) continue;
            n++;
            if (fn(r, m->rc->conn, user)) break;
        }
        return n;
    } else {
        rtws__rconn *rc, *nx;
        for (rc = u ? u->clist : rtws__rc_first(r); rc; rc = nx) {
            nx = u ? rc->unext : rtws__rc_next(r, rc);
            if (!rc->opened) continue;
            n++;
            if (fn(r, rc->conn, user)) break;
        }
    }
    return n;
}

RTWS_API rtws_err rtws_router_subscribe(rtws_router *r, rtws_conn *c, const char *channel) {
    rtws__rconn *rc = rtws__rc_of(c);
    size_t n = channel ? strlen(channel) : 0;
    rtws__channel *ch;
    rtws_err e;
    if (!rc || !rc->session || !rtws__valid_channel(channel, n)) return RTWS_ERR_INVALID;
    ch = rtws__channel_get(r, channel, n, 0);
    if (ch && rtws__member_of(rc, ch)) return RTWS_OK;
    if (!ch) {
        if (r->channels.count >= r->cfg.max_channels_total) return RTWS_ERR_LIMIT;
        if (!(ch = rtws__channel_get(r, channel, n, 1))) return RTWS_ERR_NOMEM;
    }
    e = rtws__join(r, rc, ch);
    if (e != RTWS_OK) rtws__channel_maybe_drop(r, ch);
#if defined(RTWS__HAVE_RENGINE)
    else if (r->eng) /* live messages from the seq Redis has now */
        rtws__eng_subscribe(r, rc, ch, rtws__member_of(rc, ch), 0, NULL, 0, 0, 0);
#endif
    return e;
}

RTWS_API rtws_err rtws_router_unsubscribe(rtws_router *r, rtws_conn *c, const char *channel) {
    rtws__rconn *rc = rtws__rc_of(c);
    rtws__channel *ch = rtws__channel_named(r, channel);
    rtws__member *m = rc && ch ? rtws__member_of(rc, ch) : NULL;
    if (!m) return RTWS_ERR_INVALID;
    rtws__leave_channel(r, rc, m);
    rtws__channel_maybe_drop(r, ch);
    return RTWS_OK;
}

RTWS_API int rtws_router_is_subscribed(const rtws_router *r, const rtws_conn *c,
                                       const char *channel) {
    const rtws__rconn *rc = rtws__rc_of(c);
    const rtws__channel *ch = rtws__channel_named(r, channel);
    return rc && ch && rtws__member_of(rc, ch) != NULL;
}

/* A frame for the server-side senders: NULL for a bad opcode or bad UTF-8. */
static rtws_shared *rtws__app_frame(rtws_router *r, int opcode, const void *p, size_t len) {
    if (opcode != RTWS_OP_TEXT && opcode != RTWS_OP_BINARY) return NULL;
    if (opcode == RTWS_OP_TEXT) {
        uint32_t st = 0;
        if (rtws_utf8_validate(&st, (const uint8_t *)p, len, NULL) != RTWS_OK || st) return NULL;
    }
    return rtws_shared_new(rtws__ra(r), (rtws_opcode)opcode, p, len);
}

RTWS_API uint64_t rtws_router_publish_raw(rtws_router *r, const char *channel, int opcode,
                                          const void *payload, size_t len, uint64_t now_ms) {
    size_t n = channel ? strlen(channel) : 0;
    rtws__channel *ch;
    rtws_shared *sh;
    if (!rtws__valid_channel(channel, n)) return 0;
    if (now_ms > r->now) r->now = now_ms;
    if (!(sh = rtws__app_frame(r, opcode, payload, len))) return 0;
    if (!(ch = rtws__channel_get(r, channel, n, 1))) {
        rtws_shared_release(sh);
        return 0;
    }
    ch->seq++;
    ch->idle_at = now_ms;
    r->publishes++;
    rtws__history_add(r, ch, sh, now_ms);
    rtws__fanout(r, ch, sh, NULL, 0);
    if (r->cfg.on_publish)
        r->cfg.on_publish(r, ch->name, ch->seq, (const char *)payload, len, r->cfg.user);
    rtws_shared_release(sh);
    return ch->seq;
}

RTWS_API int rtws_router_find_id(const rtws_router *r, const rtws_conn *c, const char *id,
                                 size_t id_len, uint64_t now_ms, uint64_t *seq) {
    const rtws__rconn *rc = rtws__rc_of(c);
    const rtws__dedupe *e;
    if (!rc || !rc->session || !id || !id_len || id_len > 64) return 0;
    e = rtws__dd_find(r, rc->session, id, id_len, now_ms);
    if (e && seq) *seq = e->seq;
    return e != NULL;
}

RTWS_API rtws_err rtws_router_remember_id(rtws_router *r, rtws_conn *c, const char *id,
                                          size_t id_len, uint64_t seq, uint64_t now_ms) {
    rtws__rconn *rc = rtws__rc_of(c);
    if (!rc || !rc->session || !id || !id_len || id_len > 64) return RTWS_ERR_INVALID;
    if (now_ms > r->now) r->now = now_ms;
    rtws__dd_add(r, rc->session, id, id_len, seq, now_ms);
    return RTWS_OK;
}

RTWS_API uint64_t rtws_router_get_seq(const rtws_router *r, const char *channel) {
    const rtws__channel *ch = rtws__channel_named(r, channel);
    return ch ? ch->seq : 0;
}

/* Queues sh on rc: 1 when queued; a full queue closes rc as a slow consumer. */
static int rtws__send_sh(rtws_router *r, rtws__rconn *rc, rtws_shared *sh) {
    rtws_err e = rtws_conn_send_shared(rc->conn, sh);
    if (e == RTWS_OK) {
        r->msgs_out++;
        return 1;
    }
    if (e == RTWS_ERR_LIMIT) rtws_conn_close(rc->conn, RTWS_CLOSE_TRY_AGAIN, "slow consumer");
    return 0;
}

RTWS_API rtws_err rtws_router_send_to_conn(rtws_router *r, rtws_conn *c, int opcode,
                                           const void *payload, size_t len) {
    rtws__rconn *rc = rtws__rc_of(c);
    rtws_err e;
    if (!rc || (opcode != RTWS_OP_TEXT && opcode != RTWS_OP_BINARY)) return RTWS_ERR_INVALID;
    e = rtws_conn_send(c, (rtws_opcode)opcode, payload, len);
    if (e == RTWS_OK) r->msgs_out++;
    else if (e == RTWS_ERR_LIMIT) rtws_conn_close(c, RTWS_CLOSE_TRY_AGAIN, "slow consumer");
    return e;
}

RTWS_API size_t rtws_router_send_to_user(rtws_router *r, const char *user_id, int opcode,
                                         const void *payload, size_t len) {
    size_t un = user_id ? strlen(user_id) : 0, n = 0;
    rtws__ruser *u = (rtws__ruser *)rtws__hfind(&r->users, user_id, un, rtws__hash(user_id, un));
    rtws__rconn *rc;
    rtws_shared *sh;
    if (!u || !u->clist || !(sh = rtws__app_frame(r, opcode, payload, len))) return 0;
    for (rc = u->clist; rc; rc = rc->unext)
        if (rc->opened) n += (size_t)rtws__send_sh(r, rc, sh);
    rtws_shared_release(sh);
    return n;
}

RTWS_API size_t rtws_router_send_to_channel(rtws_router *r, const char *channel, int opcode,
                                            const void *payload, size_t len,
                                            const rtws_conn *skip) {
    rtws__channel *ch = rtws__channel_named(r, channel);
    rtws__member *m;
    rtws_shared *sh;
    size_t n = 0;
    if (!ch || !ch->subs || !(sh = rtws__app_frame(r, opcode, payload, len))) return 0;
    for (m = ch->subs; m; m = m->cnext)
        if (m->rc->conn != skip) n += (size_t)rtws__send_sh(r, m->rc, sh);
    rtws_shared_release(sh);
    return n;
}

RTWS_API size_t rtws_router_send_to_channels(rtws_router *r, const char *const *channels,
                                             size_t n, int opcode, const void *payload,
                                             size_t len, const rtws_conn *skip) {
    rtws_shared *sh = NULL;
    size_t sent = 0, i, j;
    for (i = 0; i < n; i++) {
        rtws__channel *ch = channels[i] ? rtws__channel_named(r, channels[i]) : NULL;
        rtws__member *m;
        for (m = ch ? ch->subs : NULL; m; m = m->cnext) {
            if (m->rc->conn == skip) continue;
            for (j = 0; j < i; j++) /* it got it through an earlier channel */
                if (channels[j] && rtws_router_is_subscribed(r, m->rc->conn, channels[j])) break;
            if (j < i) continue;
            if (!sh && !(sh = rtws__app_frame(r, opcode, payload, len))) return 0;
            sent += (size_t)rtws__send_sh(r, m->rc, sh);
        }
    }
    if (sh) rtws_shared_release(sh);
    return sent;
}

typedef struct rtws__close_arg {
    unsigned code;
    const char *reason;
} rtws__close_arg;

static int rtws__close_one(rtws_router *r, rtws_conn *c, void *user) {
    const rtws__close_arg *a = (const rtws__close_arg *)user;
    (void)r;
    rtws_conn_close(c, a->code, a->reason);
    return 0;
}

RTWS_API size_t rtws_router_close_user(rtws_router *r, const char *user_id, unsigned code,
                                       const char *reason) {
    rtws__close_arg a;
    a.code = code;
    a.reason = reason;
    return user_id ? rtws_router_foreach_conn(r, user_id, NULL, rtws__close_one, &a) : 0;
}

RTWS_API rtws_err rtws_router_set_identity(rtws_router *r, rtws_conn *c, const char *user_id,
                                           const char *claims, size_t claims_len) {
    rtws__rconn *rc = rtws__rc_of(c);
    size_t un = user_id ? strlen(user_id) : 0, i;
    int resumed;
    char *copy = NULL;
    if (!rc || !rc->opened || !rc->session || rc->members || !un || un > 63) return RTWS_ERR_INVALID;
    for (i = 0; i < un; i++)
        if ((uint8_t)user_id[i] < 0x20 || user_id[i] == 0x7f) return RTWS_ERR_INVALID;
    if (strcmp(user_id, rc->user->h.key) != 0) {
        const rtws__ruser *u = (const rtws__ruser *)rtws__hfind(&r->users, user_id, un,
                                                                rtws__hash(user_id, un));
        if (r->cfg.max_conns_per_user && u && u->conns >= r->cfg.max_conns_per_user)
            return RTWS_ERR_LIMIT;
    }
    if (claims && (claims_len == SIZE_MAX ||
                   !(copy = (char *)rtws__alloc(rtws__ra(r), claims_len + 1))))
        return RTWS_ERR_NOMEM;
    if (copy && !rtws__pend_get(r, rc)) {
        rtws__free(rtws__ra(r), copy);
        return RTWS_ERR_NOMEM;
    }
    if (strcmp(user_id, rc->user->h.key) != 0) {
#if defined(RTWS__HAVE_RENGINE)
        if (r->eng && rc->eng_counted) rtws__eng_uncount(r, rc); /* counted under its old user */
#endif
        if (!rtws__attach_session(r, rc, rtws__pend_session(rc), user_id, r->now, &resumed)) {
            rtws__free(rtws__ra(r), copy);
            return RTWS_ERR_NOMEM;
        }
#if defined(RTWS__HAVE_RENGINE)
        if (r->eng) rtws__eng_recount(r, rc); /* over the cluster's cap: closed with 1008 */
#endif
    }
    if (copy) {
        memcpy(copy, claims, claims_len);
        copy[claims_len] = '\0';
    }
    if (rc->pend) {
        if (rc->pend->claims) rtws__rmem(r, rc->pend->claims_len + 1, 0);
        rtws__free(rtws__ra(r), rc->pend->claims);
        rc->pend->claims = copy;
        rc->pend->claims_len = copy ? claims_len : 0;
    }
    if (copy) rtws__rmem(r, claims_len + 1, 1);
    rc->authed = 1;
    if (rc->pend) rc->pend->auth_deadline = 0;
    return RTWS_OK;
}

RTWS_API rtws_err rtws_router_authenticate(rtws_router *r, rtws_conn *c, const char *token,
                                           size_t len) {
    rtws__rconn *rc = rtws__rc_of(c);
    rtws__tokinfo ti;
    char user[64];
    rtws_err e;
    if (!rc || !rc->opened || !rc->session || !token || !len || len > 4096 ||
        rtws__check_token(r, c, token, len, r->now, user, &ti) != 0)
        return RTWS_ERR_INVALID;
    if (!rc->authed || strcmp(user, rc->user->h.key) != 0) { /* else a fresh token: renewed */
        e = rtws_router_set_identity(r, c, user, NULL, 0);
        if (e != RTWS_OK) return e;
    }
    return rtws__rconn_token(r, rc, &ti) ? RTWS_OK : RTWS_ERR_NOMEM;
}

RTWS_API const char *rtws_router_get_session(const rtws_router *r, const rtws_conn *c) {
    const rtws__rconn *rc = rtws__rc_of(c);
    (void)r;
    return rc && rc->session ? rc->session->h.key : "";
}

RTWS_API rtws_err rtws_router_set_presence(rtws_router *r, rtws_conn *c, const char *channel,
                                           const char *status) {
    rtws__rconn *rc = rtws__rc_of(c);
    rtws__channel *ch = rtws__channel_named(r, channel);
    rtws__presence *p;
    size_t n = status ? strlen(status) : 0, i;
    if (!rc || !ch || !rtws__member_of(rc, ch) || !n || n > 32 || !strcmp(status, "joined") ||
        !strcmp(status, "left"))
        return RTWS_ERR_INVALID;
    for (i = 0; i < n; i++)
        if ((uint8_t)status[i] < 0x20 || status[i] == 0x7f) return RTWS_ERR_INVALID;
    p = (rtws__presence *)rtws__hfind(&ch->presence, rc->user->h.key, rc->user->h.klen,
                                      rc->user->h.hash);
    if (p) rtws__pstatus_set(r, p, status);
#if defined(RTWS__HAVE_RENGINE)
    if (r->eng) {
        rtws__eng_pres(r, ch, rc->user->h.key, 3, status);
        return RTWS_OK;
    }
#endif
    if (ch->presence.count <= r->cfg.max_presence)
        rtws__presence_event(r, ch, rc->user->h.key, status, NULL);
    return RTWS_OK;
}

RTWS_API size_t rtws_router_get_presence(const rtws_router *r, const char *channel,
                                         void (*fn)(const char *user_id, const char *status,
                                                    size_t conns, void *user),
                                         void *user) {
    const rtws__channel *ch = rtws__channel_named(r, channel);
    size_t i;
    if (!ch) return 0;
    if (ch->ex) { /* a Redis node: the cluster's, conns those on this node */
        for (i = 0; fn && i < ch->ex->pres.nb; i++) {
            const rtws__hnode *e;
            for (e = ch->ex->pres.b[i]; e; e = e->hnext) {
                const rtws__pm *pm = (const rtws__pm *)e;
                const rtws__presence *p = (const rtws__presence *)rtws__hfind(&ch->presence, pm->name,
                                                                             e->klen, e->hash);
                fn(pm->name, pm->status, p ? p->count : 0, user);
            }
        }
        return ch->ex->members;
    }
    for (i = 0; fn && i < ch->presence.nb; i++) {
        const rtws__hnode *e;
        for (e = ch->presence.b[i]; e; e = e->hnext) {
            const rtws__presence *p = (const rtws__presence *)e;
            fn(p->h.key, rtws__pstatus(p), p->count, user);
        }
    }
    return ch->presence.count;
}

/* The index in ch's ring of the first message after since: RTWS_ERR_RANGE
   when that one is gone or since is ahead; *first = hcount when none. */
static rtws_err rtws__hist_from(const rtws__channel *ch, uint64_t since, size_t *first) {
    uint64_t oldest = ch->seq - ch->hcount + 1;
    if (since > ch->seq || (since < ch->seq && since + 1 < oldest)) return RTWS_ERR_RANGE;
    *first = since == ch->seq ? ch->hcount : (size_t)(since + 1 - oldest);
    return RTWS_OK;
}

static void rtws__history_json(rtws_router *r, const char *channel, uint64_t seq, int opcode,
                               const uint8_t *payload, size_t len, void *user) {
    (void)r;
    (void)channel;
    (void)seq;
    if (opcode == RTWS_OP_TEXT) rtws_json_write_raw((rtws_json_writer *)user, (const char *)payload, len);
}

RTWS_API rtws_err rtws_router_write_history(rtws_router *r, const char *channel,
                                            uint64_t since_seq, size_t last_n,
                                            rtws_json_writer *w) {
    return rtws_router_get_history(r, channel, since_seq, last_n, rtws__history_json, w);
}

RTWS_API rtws_err rtws_router_get_history(rtws_router *r, const char *channel, uint64_t since_seq,
                                          size_t last_n, rtws_router_history_fn fn, void *user) {
    rtws__channel *ch = rtws__channel_named(r, channel);
    size_t i, first;
    rtws_err e;
    if (!ch) return since_seq ? RTWS_ERR_RANGE : RTWS_OK;
    if (last_n && ch->seq > last_n && since_seq < ch->seq - last_n)
        since_seq = ch->seq - last_n; /* older ones are not asked for: their loss is no gap */
    if ((e = rtws__hist_from(ch, since_seq, &first)) != RTWS_OK) return e;
    for (i = first; i < ch->hcount; i++) {
        const rtws_shared *sh = ch->hist[(ch->hhead + i) % ch->hcap].sh;
        size_t len;
        const uint8_t *pl = rtws_shared_get_payload(sh, &len);
        fn(r, ch->name, ch->seq - ch->hcount + 1 + i, ((const uint8_t *)(sh + 1))[0] & 0x0f, pl,
           len, user);
    }
    return RTWS_OK;
}

RTWS_API rtws_err rtws_router_replay(rtws_router *r, rtws_conn *c, const char *channel,
                                     uint64_t since_seq) {
    rtws__rconn *rc = rtws__rc_of(c);
    rtws__channel *ch = rtws__channel_named(r, channel);
    size_t i, first;
    rtws_err e;
    if (!rc) return RTWS_ERR_INVALID;
    if (!ch) return since_seq ? RTWS_ERR_RANGE : RTWS_OK;
    if ((e = rtws__hist_from(ch, since_seq, &first)) != RTWS_OK) return e;
    for (i = first; i < ch->hcount; i++)
        if (!rtws__send_sh(r, rc, ch->hist[(ch->hhead + i) % ch->hcap].sh)) return RTWS_ERR_LIMIT;
    return RTWS_OK;
}

RTWS_API void rtws_router_set_health(rtws_router *r, const char *word) {
    size_t n = word ? strlen(word) : 0;
    if (n >= sizeof r->health) n = sizeof r->health - 1;
    memcpy(r->health, word ? word : "", n);
    r->health[n] = '\0';
}

RTWS_API rtws_router *rtws_router_new(const rtws_router_config *cfg) {
    rtws_allocator a;
    rtws_router *r;
    void *t = NULL;
    size_t i;
    memset(&a, 0, sizeof a);
    if (cfg) a = cfg->allocator;
    r = (rtws_router *)rtws__alloc(&a, sizeof *r);
    if (!r) return NULL;
    memset(r, 0, sizeof *r);
    if (cfg) r->cfg = *cfg;
    r->cfg.status_path = r->cfg.status_path ? r->cfg.status_path : "/ws/status";
    r->cfg.auth_timeout_ms = RTWS__DEF(r->cfg.auth_timeout_ms, 10000u);
    r->cfg.jwt_leeway_s = RTWS__DEF(r->cfg.jwt_leeway_s, 30);
    r->cfg.token_grace_ms = RTWS__DEF(r->cfg.token_grace_ms, 30000u);
    r->cfg.history = RTWS__DEF(r->cfg.history, (size_t)1000);
    r->cfg.session_ttl_ms = RTWS__DEF(r->cfg.session_ttl_ms, 120000u);
    r->cfg.dedupe_ms = RTWS__DEF(r->cfg.dedupe_ms, 60000u);
    r->cfg.dedupe_max = RTWS__DEF(r->cfg.dedupe_max, (size_t)1024);
    r->cfg.max_channels = RTWS__DEF(r->cfg.max_channels, (size_t)100);
    r->cfg.max_channels_total = RTWS__DEF(r->cfg.max_channels_total, (size_t)10000);
    r->cfg.max_user_channels = RTWS__DEF(r->cfg.max_user_channels, (size_t)1000);
    if (r->cfg.max_user_channels > UINT16_MAX) r->cfg.max_user_channels = UINT16_MAX;
    r->cfg.channel_ttl_ms = RTWS__DEF(r->cfg.channel_ttl_ms, 300000u);
    rtws_budget_init(&r->own, r->cfg.memory_budget);
    r->own.reclaim = rtws__router_reclaim;
    r->own.reclaim_user = r;
    r->budget = &r->own;
    r->cfg.max_data = RTWS__DEF(r->cfg.max_data, (size_t)65536);
    r->cfg.rate_burst = RTWS__DEF(r->cfg.rate_burst, 2 * r->cfg.rate_per_s);
    r->cfg.rate_abuse = RTWS__DEF(r->cfg.rate_abuse, 20u);
    r->cfg.heartbeat_ms = RTWS__DEF(r->cfg.heartbeat_ms, 30000u);
    r->cfg.max_tokens = RTWS__DEF(r->cfg.max_tokens, (size_t)16384);
    r->cfg.max_presence = RTWS__DEF(r->cfg.max_presence, (size_t)1000);
    r->cfg.redis_node_ttl_ms = RTWS__DEF(r->cfg.redis_node_ttl_ms, 15000u);
    r->outcap = 4096;
    r->out = (char *)rtws__alloc(&a, r->outcap);
    if (!r->out || rtws__grow(&a, &t, &r->tokcap, r->cfg.max_tokens < 256 ? r->cfg.max_tokens : 256,
                              sizeof *r->toks, r->cfg.max_tokens) != RTWS_OK) {
        rtws__free(&a, r->out);
        rtws__free(&a, r);
        return NULL;
    }
    r->toks = (rtws_json_tok *)t;
    r->neps = cfg && cfg->endpoints && cfg->n_endpoints ? cfg->n_endpoints : 1;
    r->eps = r->neps > SIZE_MAX / sizeof *r->eps
                 ? NULL
                 : (rtws__ep *)rtws__alloc(&a, r->neps * sizeof *r->eps);
    if (!r->eps) {
        rtws__free(&a, r->toks);
        rtws__free(&a, r->out);
        rtws__free(&a, r);
        return NULL;
    }
    memset(r->eps, 0, r->neps * sizeof *r->eps);
    for (i = 0; i < r->neps; i++) {
        rtws_router_endpoint *e = &r->eps[i].e;
        if (r->cfg.endpoints && r->cfg.n_endpoints) *e = r->cfg.endpoints[i];
        else e->path = r->cfg.path;
        e->on_receive = e->on_receive ? e->on_receive : r->cfg.on_receive;
        e->on_message = e->on_message ? e->on_message : r->cfg.on_message;
        e->user = e->user ? e->user : r->cfg.user;
        e->builtin_protocol_off = e->builtin_protocol_off || r->cfg.builtin_protocol_off;
        e->auth_required = e->auth_required || r->cfg.auth_required;
        if (!e->rate_per_s) { /* the router's limit */
            e->rate_per_s = r->cfg.rate_per_s;
            e->rate_burst = r->cfg.rate_burst;
        } else {
            e->rate_burst = RTWS__DEF(e->rate_burst, 2 * e->rate_per_s);
        }
        e->rate_abuse = RTWS__DEF(e->rate_abuse, r->cfg.rate_abuse);
        e->on_rate_limited = e->on_rate_limited ? e->on_rate_limited : r->cfg.on_rate_limited;
        if (!e->handlers) {
            e->handlers = r->cfg.handlers;
            e->n_handlers = r->cfg.handlers ? r->cfg.n_handlers : 0;
        }
        e->type_field = e->type_field ? e->type_field : r->cfg.type_field;
        e->on_error = e->on_error ? e->on_error : r->cfg.on_error;
        e->auth_type = e->auth_type ? e->auth_type : r->cfg.auth_type;
        e->auth_token_field = e->auth_token_field ? e->auth_token_field : r->cfg.auth_token_field;
        if (!e->auth_close_code) e->auth_close_code = r->cfg.auth_close_code;
    }
    if (!r->cfg.endpoints) r->cfg.n_endpoints = 0;
    r->cfg.endpoints = NULL; /* the caller's array is not kept */
    memcpy(r->health, "ok", 3);
    if (r->cfg.redis_url) {
#if defined(RTWS__HAVE_RENGINE)
        if (rtws__eng_new(r, r->cfg.redis_url, r->cfg.redis_prefix) != RTWS_OK)
#endif
        {
            rtws_router_free(r);
            return NULL;
        }
    }
    r->cfg.redis_url = NULL; /* not kept (the engine has its copy) */
    return r;
}

RTWS_API void rtws_router_free(rtws_router *r) {
    rtws_allocator a;
    rtws__rconn *rc;
    size_t i;
    if (!r) return;
    a = r->cfg.allocator;
#if defined(RTWS__HAVE_RENGINE)
    if (r->eng) rtws__eng_free(r); /* first: its callbacks must not reach the rest */
#endif
    r->budget = NULL; /* the context's may be gone already: nothing is given back */
    r->cfg.on_presence = NULL; /* no hooks while it goes */
    while ((rc = rtws__rc_first(r)) != NULL) {
        rtws_conn_set_handler(rc->conn, NULL, NULL); /* its later events go nowhere */
        rtws__rconn_free(r, rc, 0);
    }
    for (i = 0; i < r->channels.nb; i++) {
        rtws__hnode *e = r->channels.b[i], *nx;
        for (; e; e = nx) {
            rtws__channel *ch = (rtws__channel *)e;
            size_t k;
            nx = e->hnext;
            for (k = 0; k < ch->hcount; k++) rtws_shared_release(ch->hist[(ch->hhead + k) % ch->hcap].sh);
            if (ch->ex) {
#if defined(RTWS__HAVE_RENGINE)
                rtws__eng_pres_clear(&a, ch->ex);
#endif
                rtws__free(&a, ch->ex->acks);
            }
            rtws__free(&a, ch->ex);
            rtws__free(&a, ch->hist);
            rtws__free(&a, ch->presence.b);
            rtws__free(&a, ch);
        }
    }
    for (i = 0; i < r->sessions.nb; i++) {
        rtws__hnode *e = r->sessions.b[i], *nx;
        for (; e; e = nx) {
            nx = e->hnext;
            rtws__free(&a, ((rtws__session *)e)->dd);
            rtws__free(&a, e);
        }
    }
    for (i = 0; i < r->users.nb; i++) {
        rtws__hnode *e = r->users.b[i], *nx;
        for (; e; e = nx) {
            nx = e->hnext;
            rtws__free(&a, e);
        }
    }
    rtws__free(&a, r->channels.b);
    rtws__free(&a, r->sessions.b);
    rtws__free(&a, r->users.b);
    rtws__free(&a, r->byid.b);
    rtws__free(&a, r->eps);
    rtws__free(&a, r->toks);
    rtws__free(&a, r->out);
    rtws__free(&a, r);
}
#endif /* RTWS__HAVE_ROUTER */

#if defined(RTWS__HAVE_RT)
/* ---- the realtime client ---- */

typedef struct rtws__rtsub {
    char *name;
    rtws_rt_msg_fn fn;
    void *user;
    uint64_t last;       /* last seq delivered */
    int have_seq;        /* last is meaningful: resubscribe with since */
    int sent;            /* subscribe sent on the current connection */
    char status[33];     /* presence status to restore ("": none set) */
} rtws__rtsub;

typedef struct rtws__rtpub {
    struct rtws__rtpub *next;
    size_t len;
    char id[32];
    /* the whole publish message follows */
} rtws__rtpub;

struct rtws_rt {
    rtws_rt_config cfg;
    rtws_ctx *ctx;
    rtws_client *cl;
    rtws__rtsub *subs;
    size_t nsubs, capsubs;
    rtws__rtpub *out, *out_tail; /* not acked yet, oldest first */
    rtws__rtpub *unsent;         /* the first of them not sent on this connection (NULL: none) */
    size_t nout;
    uint32_t rate_per_s, rate_burst; /* the server's rate limit (welcome), 0: none */
    int64_t tokens;              /* our copy of its bucket, in thousandths of a message */
    uint64_t tokens_at, hold_until; /* last refill; no publish before (retry_after_ms) */
    uint64_t next_id;
    int ready;                   /* welcome seen on the current connection */
    char user[64], session[32];
    char *url;                   /* base url; the resume url is built in urlbuf */
    char *urlbuf;
    size_t urlcap;
    rtws_json_tok *toks;
    size_t tokcap;
    char *wbuf;
    size_t wcap;
};

static const rtws_allocator *rtws__rta(const rtws_rt *rt) { return &rt->ctx->cfg.conn.allocator; }

static rtws__rtsub *rtws__rt_find(const rtws_rt *rt, const char *name, size_t n) {
    size_t i;
    for (i = 0; i < rt->nsubs; i++)
        if (strlen(rt->subs[i].name) == n && memcmp(rt->subs[i].name, name, n) == 0)
            return &rt->subs[i];
    return NULL;
}

/* Requests are written into rt->wbuf (rtws__w_done grows it) and sent once
   the server has welcomed this connection; RTWS_EAGAIN before that. */
static rtws_err rtws__rt_send_raw(rtws_rt *rt, const char *s, size_t n) {
    rtws_conn *c = rtws_client_get_conn(rt->cl);
    rtws_err e;
    if (!rt->ready || !c) return RTWS_EAGAIN;
    e = rtws_conn_send_text(c, s, n);
    if (e == RTWS_OK && rt->rate_per_s) rt->tokens -= 1000; /* the server counts every message */
    return e;
}

/* Refills our copy of the server's bucket, at 9/10 of its rate: messages
   that arrive closer together than they were sent still find a token. */
static void rtws__rt_refill(rtws_rt *rt, uint64_t now) {
    int64_t cap = (int64_t)rt->rate_burst * 1000;
    if (now > rt->tokens_at) {
        rt->tokens += (int64_t)((now - rt->tokens_at) * rt->rate_per_s * 9 / 10);
        if (rt->tokens > cap) rt->tokens = cap;
        rt->tokens_at = now;
    }
}

static void rtws__rt_wake(rtws_rt *rt, uint64_t at) {
    if (!rt->cl) return; /* a state event of rtws_client_new */
    rt->cl->wake_at_ = at;
    if (at && rt->ctx->next_scan > at) rt->ctx->next_scan = at;
}

/* Sends the publishes not sent on this connection yet, strictly oldest
   first, no faster than the server's rate limit and not before a
   retry_after_ms it asked for; wakes itself for the rest. */
static void rtws__rt_pump(rtws_rt *rt) {
    uint64_t now = rt->ctx->now, at = 0;
    while (rt->ready && rt->unsent) {
        rtws_err e;
        if (now < rt->hold_until) {
            at = rt->hold_until;
            break;
        }
        if (rt->rate_per_s) {
            rtws__rt_refill(rt, now);
            if (rt->tokens < 1000) {
                uint64_t per_ms = (uint64_t)rt->rate_per_s * 9 / 10;
                at = now + (uint64_t)(1000 - rt->tokens) / (per_ms ? per_ms : 1) + 1;
                break;
            }
        }
        e = rtws__rt_send_raw(rt, (const char *)(rt->unsent + 1), rt->unsent->len);
        if (e == RTWS_ERR_LIMIT) { /* our own queue is full: a little later */
            at = now + 100;
            break;
        }
        if (e != RTWS_OK) break; /* closing: the next welcome sends it */
        rt->unsent = rt->unsent->next;
    }
    rtws__rt_wake(rt, at);
}

static void rtws__rt_wake_fn(rtws_client *cl, uint64_t now, void *user) {
    rtws_rt *rt = (rtws_rt *)user;
    (void)cl;
    (void)now;
    rtws__rt_pump(rt);
}

static rtws_err rtws__rt_send_presence(rtws_rt *rt, const rtws__rtsub *s) {
    rtws_json_writer w;
    size_t len;
    do {
        rtws_json_writer_init(&w, rt->wbuf, rt->wcap);
        rtws_json_write_object(&w);
        rtws_json_write_key(&w, "type", 4);
        rtws_json_write_string(&w, "presence", 8);
        rtws_json_write_key(&w, "channel", 7);
        rtws_json_write_string(&w, s->name, strlen(s->name));
        rtws_json_write_key(&w, "status", 6);
        rtws_json_write_string(&w, s->status, strlen(s->status));
    } while (!rtws__w_done(rtws__rta(rt), &w, &rt->wbuf, &rt->wcap, &len));
    return len ? rtws__rt_send_raw(rt, rt->wbuf, len) : RTWS_ERR_NOMEM;
}

static void rtws__rt_send_subscribe(rtws_rt *rt, rtws__rtsub *s) {
    rtws_json_writer w;
    size_t len;
    do {
        rtws_json_writer_init(&w, rt->wbuf, rt->wcap);
        rtws_json_write_object(&w);
        rtws_json_write_key(&w, "type", 4);
        rtws_json_write_string(&w, "subscribe", 9);
        rtws_json_write_key(&w, "channel", 7);
        rtws_json_write_string(&w, s->name, strlen(s->name));
        if (s->have_seq) {
            rtws_json_write_key(&w, "since", 5);
            rtws_json_write_int64(&w, (int64_t)s->last);
        }
    } while (!rtws__w_done(rtws__rta(rt), &w, &rt->wbuf, &rt->wcap, &len));
    if (len && rtws__rt_send_raw(rt, rt->wbuf, len) == RTWS_OK) s->sent = 1;
    if (s->sent && s->status[0]) rtws__rt_send_presence(rt, s); /* restored, or set offline */
}

/* After a welcome: auth, resubscribe with since, resend what is not acked. */
static void rtws__rt_resume(rtws_rt *rt) {
    size_t i;
    if (rt->cfg.token) {
        rtws_json_writer w;
        size_t len;
        do {
            rtws_json_writer_init(&w, rt->wbuf, rt->wcap);
            rtws_json_write_object(&w);
            rtws_json_write_key(&w, "type", 4);
            rtws_json_write_string(&w, "auth", 4);
            rtws_json_write_key(&w, "token", 5);
            rtws_json_write_string(&w, rt->cfg.token, strlen(rt->cfg.token));
            rtws_json_write_key(&w, "session", 7);
            rtws_json_write_string(&w, rt->session, strlen(rt->session));
        } while (!rtws__w_done(rtws__rta(rt), &w, &rt->wbuf, &rt->wcap, &len));
        if (len) rtws__rt_send_raw(rt, rt->wbuf, len);
    }
    for (i = 0; i < rt->nsubs; i++) rtws__rt_send_subscribe(rt, &rt->subs[i]);
    rt->unsent = rt->out; /* every unacked publish again, in order, paced */
    rtws__rt_pump(rt);
}

/* The reconnect URL carries the session so the server resumes it. */
static int rtws__rt_refresh(rtws_client *cl, const char **url, rtws_client_opts *opts, void *u) {
    rtws_rt *rt = (rtws_rt *)u;
    size_t need = strlen(rt->url) + strlen(rt->session) + 16;
    (void)cl;
    (void)opts;
    if (!rt->session[0]) return 0;
    {
        void *b = rt->urlbuf;
        rtws_err e = rtws__grow(rtws__rta(rt), &b, &rt->urlcap, need, 1, SIZE_MAX);
        rt->urlbuf = (char *)b;
        if (e != RTWS_OK) return 0;
    }
    snprintf(rt->urlbuf, rt->urlcap, "%s%csession=%s", rt->url, strchr(rt->url, '?') ? '&' : '?',
             rt->session);
    *url = rt->urlbuf;
    return 0;
}

static void rtws__rt_copy(const rtws_json *d, int v, char *buf, size_t cap) {
    size_t n;
    buf[0] = '\0';
    if (v >= 0 && d->toks[v].type == RTWS_JSON_STRING &&
        rtws_json_unescape(d, v, buf, cap, &n) != RTWS_OK)
        buf[0] = '\0';
}

static uint64_t rtws__rt_u64(const rtws_json *d, int obj, const char *key) {
    int64_t v = 0;
    int i = rtws_json_get(d, obj, key);
    if (i < 0 || rtws_json_int64(d, i, &v) != RTWS_OK || v < 0) return 0;
    return (uint64_t)v;
}

static void rtws__rt_drop_pub(rtws_rt *rt, const char *id) {
    rtws__rtpub **pp, *prev = NULL;
    for (pp = &rt->out; *pp; prev = *pp, pp = &(*pp)->next)
        if (strcmp((*pp)->id, id) == 0) {
            rtws__rtpub *p = *pp;
            *pp = p->next;
            if (rt->out_tail == p) rt->out_tail = prev;
            if (rt->unsent == p) rt->unsent = p->next;
            rt->nout--;
            rtws__free(rtws__rta(rt), p);
            return;
        }
}

/* "rate_limited" or "overloaded": wait retry_after_ms, then send again from
   the refused publish on (the oldest unacked one when the error has no id;
   the server de-duplicates what it had taken already). */
static void rtws__rt_retry_later(rtws_rt *rt, const rtws_json *d, const char *id) {
    uint64_t now = rt->ctx->now, ra = rtws__rt_u64(d, 0, "retry_after_ms");
    rtws__rtpub *p = NULL, *x;
    if (!ra) ra = 1000;
    if (now + ra > rt->hold_until) rt->hold_until = now + ra;
    if (rt->rate_per_s) { /* the bucket is empty now */
        rt->tokens = 0;
        rt->tokens_at = now;
    }
    if (id[0]) {
        for (p = rt->out; p && strcmp(p->id, id) != 0; p = p->next) {
        }
    } else {
        p = rt->out;
    }
    for (x = rt->out; p && x && x != rt->unsent; x = x->next)
        if (x == p) { /* sent already: rewind to it */
            rt->unsent = p;
            break;
        }
    rtws__rt_pump(rt);
}

static void rtws__rt_on_text(rtws_rt *rt, const char *s, size_t n) {
    rtws_json d;
    rtws_err e;
    int tv;
    char chan[132];
    rtws__rtsub *sub;
    e = rtws__parse_grow(&d, s, n, rtws__rta(rt), &rt->toks, &rt->tokcap, 65536, 64);
    if (e != RTWS_OK || d.toks[0].type != RTWS_JSON_OBJECT || (tv = rtws_json_get(&d, 0, "type")) < 0 ||
        d.toks[tv].type != RTWS_JSON_STRING) {
        if (rt->cfg.on_unknown) rt->cfg.on_unknown(rt, "", s, n, rt->cfg.user);
        return;
    }
    rtws__rt_copy(&d, rtws_json_get(&d, 0, "channel"), chan, sizeof chan);
    sub = chan[0] ? rtws__rt_find(rt, chan, strlen(chan)) : NULL;
    if (rtws_json_eq(&d, tv, "message")) {
        rtws_rt_message m;
        char ev[68], from[68];
        int dv = rtws_json_get(&d, 0, "data"), tsv = rtws_json_get(&d, 0, "ts");
        int64_t ts = 0;
        memset(&m, 0, sizeof m);
        m.seq = rtws__rt_u64(&d, 0, "seq");
        if (sub) {
            if (sub->have_seq && m.seq <= sub->last) return; /* seen already (replay overlap) */
            sub->last = m.seq;
            sub->have_seq = 1;
        }
        rtws__rt_copy(&d, rtws_json_get(&d, 0, "event"), ev, sizeof ev);
        rtws__rt_copy(&d, rtws_json_get(&d, 0, "from"), from, sizeof from);
        if (tsv >= 0) rtws_json_int64(&d, tsv, &ts);
        m.channel = chan;
        m.event = ev;
        m.from = from;
        m.ts = ts;
        if (dv >= 0) m.data = rtws_json_raw(&d, dv, &m.data_len);
        if (sub && sub->fn) sub->fn(rt, &m, sub->user);
        else if (rt->cfg.on_message) rt->cfg.on_message(rt, &m, rt->cfg.user);
    } else if (rtws_json_eq(&d, tv, "subscribed")) {
        if (sub && !sub->have_seq) { /* first subscription: live from here */
            sub->last = rtws__rt_u64(&d, 0, "seq");
            sub->have_seq = 1;
        }
        if (rt->cfg.on_presence) {
            int pv = rtws_json_get(&d, 0, "presence"), k;
            for (k = pv >= 0 ? rtws_json_child(&d, pv) : -1; k >= 0; k = rtws_json_next(&d, k)) {
                char u[68], st[40];
                rtws__rt_copy(&d, rtws_json_get(&d, k, "user"), u, sizeof u);
                rtws__rt_copy(&d, rtws_json_get(&d, k, "status"), st, sizeof st);
                rt->cfg.on_presence(rt, chan, u, st, rt->cfg.user);
            }
        }
    } else if (rtws_json_eq(&d, tv, "reset")) {
        rtws_rt_message m;
        memset(&m, 0, sizeof m);
        m.channel = chan;
        m.event = "";
        m.from = "";
        m.seq = rtws__rt_u64(&d, 0, "seq");
        m.reset = 1;
        if (sub) {
            sub->last = m.seq;
            sub->have_seq = 1;
        }
        if (sub && sub->fn) sub->fn(rt, &m, sub->user);
        else if (rt->cfg.on_message) rt->cfg.on_message(rt, &m, rt->cfg.user);
    } else if (rtws_json_eq(&d, tv, "ack")) {
        char id[68];
        rtws__rt_copy(&d, rtws_json_get(&d, 0, "id"), id, sizeof id);
        rtws__rt_drop_pub(rt, id);
        if (rt->cfg.on_ack) rt->cfg.on_ack(rt, id, rtws__rt_u64(&d, 0, "seq"), rt->cfg.user);
    } else if (rtws_json_eq(&d, tv, "presence")) {
        char u[68], st[40];
        rtws__rt_copy(&d, rtws_json_get(&d, 0, "user"), u, sizeof u);
        rtws__rt_copy(&d, rtws_json_get(&d, 0, "status"), st, sizeof st);
        if (rt->cfg.on_presence) rt->cfg.on_presence(rt, chan, u, st, rt->cfg.user);
    } else if (rtws_json_eq(&d, tv, "error")) {
        char code[40], msg[200], id[68];
        rtws__rt_copy(&d, rtws_json_get(&d, 0, "code"), code, sizeof code);
        rtws__rt_copy(&d, rtws_json_get(&d, 0, "message"), msg, sizeof msg);
        rtws__rt_copy(&d, rtws_json_get(&d, 0, "id"), id, sizeof id);
        if (!strcmp(code, "rate_limited") || !strcmp(code, "overloaded")) {
            rtws__rt_retry_later(rt, &d, id);
        } else if (id[0] && strcmp(code, "internal") != 0) {
            rtws__rt_drop_pub(rt, id); /* refused: it would be refused again */
        }
        if (rt->cfg.on_error) rt->cfg.on_error(rt, code, msg, id[0] ? id : NULL, rt->cfg.user);
    } else if (rtws_json_eq(&d, tv, "welcome")) {
        int resumed = 0, rv = rtws_json_get(&d, 0, "resumed");
        rtws__rt_copy(&d, rtws_json_get(&d, 0, "user"), rt->user, sizeof rt->user);
        rtws__rt_copy(&d, rtws_json_get(&d, 0, "session"), rt->session, sizeof rt->session);
        if (rv >= 0 && d.toks[rv].type == RTWS_JSON_TRUE) resumed = 1;
        rt->ready = 1;
        {
            int rl = rtws_json_get(&d, 0, "rate_limit");
            uint64_t per = rl >= 0 ? rtws__rt_u64(&d, rl, "per_s") : 0;
            uint64_t burst = rl >= 0 ? rtws__rt_u64(&d, rl, "burst") : 0;
            rt->rate_per_s = per <= 1000000 ? (uint32_t)per : 1000000u;
            rt->rate_burst = burst <= 1000000 ? (uint32_t)burst : 1000000u;
            /* the server's bucket started full when it opened: ours, one short */
            rt->tokens = rt->rate_burst ? ((int64_t)rt->rate_burst - 1) * 1000 : 0;
            rt->tokens_at = rt->ctx->now;
            rt->hold_until = 0;
        }
        if (rt->cfg.on_welcome) rt->cfg.on_welcome(rt, rt->user, rt->session, resumed, rt->cfg.user);
        rtws__rt_resume(rt);
    } else if (rtws_json_eq(&d, tv, "authenticated")) {
        rtws__rt_copy(&d, rtws_json_get(&d, 0, "user"), rt->user, sizeof rt->user);
        rtws__rt_copy(&d, rtws_json_get(&d, 0, "session"), rt->session, sizeof rt->session);
    } else if (!rtws_json_eq(&d, tv, "unsubscribed") && !rtws_json_eq(&d, tv, "pong")) {
        char type[128];
        rtws__rt_copy(&d, tv, type, sizeof type);
        if (rt->cfg.on_unknown) rt->cfg.on_unknown(rt, type, s, n, rt->cfg.user);
    }
}

static void rtws__rt_event(rtws_client *cl, const rtws_client_event *ev, void *user) {
    rtws_rt *rt = (rtws_rt *)user;
    if (ev->type == RTWS_CLIENT_EV_CONN && ev->conn.event->type == RTWS_EV_MESSAGE &&
        ev->conn.event->message.opcode == RTWS_OP_TEXT) {
        rtws__rt_on_text(rt, (const char *)ev->conn.event->message.data,
                         ev->conn.event->message.len);
        return;
    }
    if (ev->type == RTWS_CLIENT_EV_STATE && ev->state.state != RTWS_CLIENT_OPEN) {
        size_t i;
        rt->ready = 0;
        for (i = 0; i < rt->nsubs; i++) rt->subs[i].sent = 0;
        rt->unsent = rt->out;
        rtws__rt_wake(rt, 0);
        if ((ev->state.state == RTWS_CLIENT_FAILED || ev->state.state == RTWS_CLIENT_CLOSED) &&
            rt->cfg.on_error) { /* no reconnect will send them: say so, keep them */
            rtws__rtpub *p;
            for (p = rt->out; p; p = p->next)
                rt->cfg.on_error(rt, "unsent", "the connection ended for good before the ack",
                                 p->id, rt->cfg.user);
        }
    }
    if (rt->cfg.on_event) rt->cfg.on_event(cl, ev, rt->cfg.user);
}

RTWS_API rtws_rt *rtws_rt_new(rtws_ctx *ctx, const rtws_rt_config *cfg, uint64_t now_ms,
                              rtws_err *err) {
    rtws_rt *rt;
    rtws_client_config cc;
    size_t ul;
    rtws_err dummy;
    if (!err) err = &dummy;
    if (!cfg || !cfg->client.url) {
        *err = RTWS_ERR_INVALID;
        return NULL;
    }
    ul = strlen(cfg->client.url);
    rt = (rtws_rt *)rtws__alloc(&ctx->cfg.conn.allocator, sizeof *rt + ul + 1);
    if (!rt) {
        *err = RTWS_ERR_NOMEM;
        return NULL;
    }
    memset(rt, 0, sizeof *rt);
    rt->cfg = *cfg;
    rt->cfg.max_unacked = RTWS__DEF(rt->cfg.max_unacked, (size_t)1000);
    rt->ctx = ctx;
    rt->url = (char *)(rt + 1);
    memcpy(rt->url, cfg->client.url, ul + 1);
    rt->wcap = 1024;
    rt->wbuf = (char *)rtws__alloc(&ctx->cfg.conn.allocator, rt->wcap);
    rt->tokcap = 128;
    rt->toks = (rtws_json_tok *)rtws__alloc(&ctx->cfg.conn.allocator, rt->tokcap * sizeof *rt->toks);
    if (!rt->wbuf || !rt->toks) {
        rtws_rt_free(rt);
        *err = RTWS_ERR_NOMEM;
        return NULL;
    }
    cc = cfg->client;
    cc.url = rt->url;
    cc.on_event = rtws__rt_event;
    cc.user = rt;
    cc.refresh = rtws__rt_refresh;
    rt->cl = rtws_client_new(ctx, &cc, now_ms, err);
    if (!rt->cl) {
        rtws_rt_free(rt);
        return NULL;
    }
    rt->cl->wake_ = rtws__rt_wake_fn;
    return rt;
}

RTWS_API void rtws_rt_free(rtws_rt *rt) {
    const rtws_allocator *a = rtws__rta(rt);
    size_t i;
    if (rt->cl) rtws_client_free(rt->cl);
    for (i = 0; i < rt->nsubs; i++) rtws__free(a, rt->subs[i].name);
    while (rt->out) {
        rtws__rtpub *p = rt->out;
        rt->out = p->next;
        rtws__free(a, p);
    }
    rtws__free(a, rt->subs);
    rtws__free(a, rt->urlbuf);
    rtws__free(a, rt->toks);
    rtws__free(a, rt->wbuf);
    rtws__free(a, rt);
}

static rtws_err rtws__rt_subscribe(rtws_rt *rt, const char *channel, int since, uint64_t since_seq,
                                   rtws_rt_msg_fn handler, void *handler_user) {
    size_t n = strlen(channel);
    rtws__rtsub *s;
    if (!rtws__valid_channel(channel, n) || since_seq > (uint64_t)INT64_MAX) return RTWS_ERR_INVALID;
    s = rtws__rt_find(rt, channel, n);
    if (!s) {
        void *b = rt->subs;
        rtws_err e = rtws__grow(rtws__rta(rt), &b, &rt->capsubs, rt->nsubs + 1, sizeof *rt->subs,
                                SIZE_MAX);
        rt->subs = (rtws__rtsub *)b;
        if (e != RTWS_OK) return RTWS_ERR_NOMEM;
        s = &rt->subs[rt->nsubs];
        memset(s, 0, sizeof *s);
        s->name = (char *)rtws__alloc(rtws__rta(rt), n + 1);
        if (!s->name) return RTWS_ERR_NOMEM;
        memcpy(s->name, channel, n + 1);
        rt->nsubs++;
    }
    s->fn = handler;
    s->user = handler_user;
    if (since) {
        s->last = since_seq;
        s->have_seq = 1;
    }
    if (rt->ready && (!s->sent || since)) {
        rtws__begin(rt->ctx, rt->ctx->now);
        rtws__rt_send_subscribe(rt, s);
        rtws__end(rt->ctx);
    }
    return RTWS_OK;
}

RTWS_API rtws_err rtws_rt_subscribe(rtws_rt *rt, const char *channel, rtws_rt_msg_fn handler,
                                    void *handler_user) {
    return rtws__rt_subscribe(rt, channel, 0, 0, handler, handler_user);
}

RTWS_API rtws_err rtws_rt_subscribe_since(rtws_rt *rt, const char *channel, uint64_t since_seq,
                                          rtws_rt_msg_fn handler, void *handler_user) {
    return rtws__rt_subscribe(rt, channel, 1, since_seq, handler, handler_user);
}

static rtws_err rtws__rt_simple(rtws_rt *rt, const char *type, const char *channel,
                                const char *k2, const char *v2) {
    rtws_json_writer w;
    size_t len;
    rtws_err e;
    do {
        rtws_json_writer_init(&w, rt->wbuf, rt->wcap);
        rtws_json_write_object(&w);
        rtws_json_write_key(&w, "type", 4);
        rtws_json_write_string(&w, type, strlen(type));
        rtws_json_write_key(&w, "channel", 7);
        rtws_json_write_string(&w, channel, strlen(channel));
        if (k2) {
            rtws_json_write_key(&w, k2, strlen(k2));
            rtws_json_write_string(&w, v2, strlen(v2));
        }
    } while (!rtws__w_done(rtws__rta(rt), &w, &rt->wbuf, &rt->wcap, &len));
    if (!len) return RTWS_ERR_INVALID;
    rtws__begin(rt->ctx, rt->ctx->now);
    e = rtws__rt_send_raw(rt, rt->wbuf, len);
    rtws__end(rt->ctx);
    return e;
}

RTWS_API rtws_err rtws_rt_unsubscribe(rtws_rt *rt, const char *channel) {
    rtws__rtsub *s = rtws__rt_find(rt, channel, strlen(channel));
    rtws_err e = RTWS_OK;
    if (!s) return RTWS_ERR_INVALID;
    if (rt->ready && s->sent) e = rtws__rt_simple(rt, "unsubscribe", channel, NULL, NULL);
    rtws__free(rtws__rta(rt), s->name);
    *s = rt->subs[--rt->nsubs];
    return e == RTWS_EAGAIN ? RTWS_OK : e;
}

RTWS_API rtws_err rtws_rt_set_presence(rtws_rt *rt, const char *channel, const char *status) {
    size_t sl = status ? strlen(status) : 0;
    rtws__rtsub *s;
    rtws_err e;
    if (sl < 1 || sl > 32 || !strcmp(status, "joined") || !strcmp(status, "left"))
        return RTWS_ERR_INVALID;
    s = rtws__rt_find(rt, channel, strlen(channel));
    if (!s) return rtws__rt_simple(rt, "presence", channel, "status", status);
    memcpy(s->status, status, sl + 1); /* the latest wins; restored after reconnects */
    if (!rt->ready || !s->sent) return RTWS_OK; /* sent after the next subscribe */
    rtws__begin(rt->ctx, rt->ctx->now);
    e = rtws__rt_send_presence(rt, s);
    rtws__end(rt->ctx);
    return e;
}

RTWS_API rtws_err rtws_rt_publish(rtws_rt *rt, const char *channel, const char *event,
                                  const char *data, size_t len, char *id_out) {
    rtws_json_writer w;
    rtws__rtpub *p;
    size_t n;
    char id[32];
    if (!rtws__valid_channel(channel, strlen(channel))) return RTWS_ERR_INVALID;
    if (rt->nout >= rt->cfg.max_unacked) return RTWS_ERR_LIMIT;
    if (rt->cl->state == RTWS_CLIENT_FAILED || rt->cl->state == RTWS_CLIENT_CLOSED)
        return RTWS_ERR_CLOSED; /* nothing would send it */
    if (data) {
        rtws_json d;
        rtws_err e = rtws_json_parse(&d, data, len, NULL, 0, 0);
        if (e != RTWS_OK) return e;
    }
    snprintf(id, sizeof id, "c-%llu", (unsigned long long)++rt->next_id);
    do {
        rtws_json_writer_init(&w, rt->wbuf, rt->wcap);
        rtws_json_write_object(&w);
        rtws_json_write_key(&w, "type", 4);
        rtws_json_write_string(&w, "publish", 7);
        rtws_json_write_key(&w, "channel", 7);
        rtws_json_write_string(&w, channel, strlen(channel));
        rtws_json_write_key(&w, "event", 5);
        rtws_json_write_string(&w, event ? event : "message", strlen(event ? event : "message"));
        rtws_json_write_key(&w, "data", 4);
        if (data) rtws_json_write_raw(&w, data, len);
        else rtws_json_write_null(&w);
        rtws_json_write_key(&w, "id", 2);
        rtws_json_write_string(&w, id, strlen(id));
    } while (!rtws__w_done(rtws__rta(rt), &w, &rt->wbuf, &rt->wcap, &n));
    if (!n) return RTWS_ERR_INVALID;
    p = (rtws__rtpub *)rtws__alloc(rtws__rta(rt), sizeof *p + n);
    if (!p) return RTWS_ERR_NOMEM;
    memset(p, 0, sizeof *p);
    p->len = n;
    memcpy(p->id, id, strlen(id) + 1);
    memcpy(p + 1, rt->wbuf, n);
    if (rt->out_tail) rt->out_tail->next = p;
    else rt->out = p;
    rt->out_tail = p;
    rt->nout++;
    if (!rt->unsent) rt->unsent = p;
    if (id_out) memcpy(id_out, id, strlen(id) + 1);
    rtws__begin(rt->ctx, rt->ctx->now);
    rtws__rt_pump(rt); /* now, paced, or at the next welcome */
    rtws__end(rt->ctx);
    return RTWS_OK;
}

RTWS_API uint64_t rtws_rt_get_last_seq(const rtws_rt *rt, const char *channel) {
    const rtws__rtsub *s = rtws__rt_find(rt, channel, strlen(channel));
    return s ? s->last : 0;
}
RTWS_API size_t rtws_rt_get_unacked(const rtws_rt *rt) { return rt->nout; }
RTWS_API const char *rtws_rt_get_user(const rtws_rt *rt) { return rt->user; }
RTWS_API const char *rtws_rt_get_session(const rtws_rt *rt) { return rt->session; }
RTWS_API rtws_client *rtws_rt_get_client(const rtws_rt *rt) { return rt->cl; }
#endif /* RTWS__HAVE_RT */

#if defined(RTWS__HAVE_ROUTER) && !defined(RTWS_NO_HOST) /* rtws_router_install */
/* A router installed in a context with a memory budget charges that one. */
static void rtws__router_bind(rtws_router *r, rtws_ctx *ctx) {
#if defined(RTWS__HAVE_RENGINE)
    if (r->eng && !r->eng->cmd && ctx) rtws__eng_start(r, ctx); /* the Redis engine connects */
#endif
    if (!ctx || !ctx->budget.limit || r->budget == &ctx->budget) return;
    rtws_budget_credit(r->budget, r->mem);
    r->budget = &ctx->budget;
    rtws_budget_charge(r->budget, r->mem);
}
static void rtws__router_ev(rtws_conn *c, const rtws_event *ev, void *user) {
    rtws_router *r = (rtws_router *)user;
    rtws_ctx *ctx = rtws_conn_get_ctx(c);
    rtws__router_bind(r, ctx);
    rtws_router_handle_event(r, c, ev, ctx ? ctx->now : rtws_time_now_ms());
}
static int rtws__router_accept(rtws_conn *c, const rtws_http *req, const char **proto, void *user) {
    rtws_ctx *ctx = rtws_conn_get_ctx(c);
    (void)proto;
    rtws__router_bind((rtws_router *)user, ctx);
    return rtws_router_handle_accept((rtws_router *)user, c, req, ctx ? ctx->now : rtws_time_now_ms());
}
static int rtws__router_http(rtws_conn *c, const rtws_http *req, rtws_http_reply *reply, void *user) {
    rtws_ctx *ctx = rtws_conn_get_ctx(c);
    return rtws_router_handle_http((rtws_router *)user, c, req, reply, ctx ? ctx->now : rtws_time_now_ms());
}
static void rtws__router_tick(rtws_ctx *ctx, uint64_t now, void *user) {
    rtws__router_bind((rtws_router *)user, ctx);
    rtws_router_run_timers((rtws_router *)user, now);
}

RTWS_API void rtws_router_install(rtws_router *r, rtws_ctx_config *cfg) {
    uint64_t now = rtws_time_now_ms();
    cfg->conn.on_event = rtws__router_ev;
    cfg->conn.on_accept = rtws__router_accept;
    cfg->conn.on_http = rtws__router_http;
    cfg->conn.user = r;
    cfg->conn.role = RTWS_SERVER;
    cfg->on_tick = rtws__router_tick;
    cfg->tick_user = r;
    r->cfg.wall_offset_ms = (int64_t)rtws_time_wall_ms() - (int64_t)now;
    r->started = now;
    if (!cfg->conn.heartbeat_off) r->cfg.heartbeat_ms = RTWS__DEF(cfg->conn.ping_interval_ms, 30000u);
    if (!r->cfg.random) {
        r->cfg.random = cfg->conn.random;
        r->cfg.random_user = cfg->conn.random_user;
    }
}

/* ---- a server's command line ---- */

/* where a shared option's value goes: a field of cfg or of rc, its type */
enum { RTWS__SO_SIZE, RTWS__SO_U32, RTWS__SO_RSIZE, RTWS__SO_RU32, RTWS__SO_RSTR, RTWS__SO_RSECRET };
/* what else an option does (rtws__sopt.flags) */
enum {
    RTWS__SO_JWT = 1,      /* a setting of the built-in JWT check: not offered with rc->auth */
    RTWS__SO_PING = 2,     /* 0 means heartbeat_off, another value a heartbeat */
    RTWS__SO_MAXFRAME = 4  /* max_frame follows when it is smaller */
};
typedef struct rtws__sopt {
    const char *name, *arg, *help;
    int to, flags;
    size_t off;     /* in rtws_ctx_config or rtws_router_config */
    long min, max;  /* min == max: a string */
    long def;       /* the library's default, shown for a field left 0 */
} rtws__sopt;

#define RTWS__CO(f) offsetof(rtws_ctx_config, f)
#define RTWS__RO(f) offsetof(rtws_router_config, f)
static const rtws__sopt rtws__sopts[] = {
    {"--max-connections", "N", "connections at most (0: no limit)", RTWS__SO_SIZE, 0,
     RTWS__CO(max_connections), 0, 100000000L, 0},
    {"--idle-timeout-ms", "MS", "close 1001 after MS without a data message (0: off)",
     RTWS__SO_U32, 0, RTWS__CO(conn.idle_timeout_ms), 0, 86400000L, 0},
    {"--ping-interval-ms", "MS", "ping after MS of silence (0: no heartbeat)", RTWS__SO_U32,
     RTWS__SO_PING, RTWS__CO(conn.ping_interval_ms), 0, 86400000L, 30000},
    {"--handshake-timeout-ms", "MS", "the opening handshake's deadline", RTWS__SO_U32, 0,
     RTWS__CO(conn.handshake_timeout_ms), 1, 86400000L, 10000},
    {"--message-timeout-ms", "MS", "a message must be whole MS after it began (0: off)",
     RTWS__SO_U32, 0, RTWS__CO(conn.message_timeout_ms), 0, 86400000L, 0},
    {"--max-message", "BYTES", "the largest message taken (more: close 1009)", RTWS__SO_SIZE,
     RTWS__SO_MAXFRAME, RTWS__CO(conn.max_message), 1, 1073741824L, 16L << 20},
    {"--jwt-secret", "S", "HS256 key of the tokens", RTWS__SO_RSECRET, RTWS__SO_JWT,
     RTWS__RO(jwt_secret), 0, 0, 0},
    {"--auth-timeout-ms", "MS", "authenticate within MS, else close 1008", RTWS__SO_RU32, 0,
     RTWS__RO(auth_timeout_ms), 1, 86400000L, 10000},
    {"--token-grace-ms", "MS", "after a token's exp: MS to renew it, else close 4001",
     RTWS__SO_RU32, RTWS__SO_JWT, RTWS__RO(token_grace_ms), 1, 86400000L, 30000},
    {"--max-per-user", "N", "connections of one user (0: no limit)", RTWS__SO_RSIZE, 0,
     RTWS__RO(max_conns_per_user), 0, 100000000L, 0},
    {"--max-channels", "N", "channels of one connection", RTWS__SO_RSIZE, 0,
     RTWS__RO(max_channels), 1, 1000000L, 100},
    {"--history", "N", "messages kept per channel", RTWS__SO_RSIZE, 0, RTWS__RO(history), 1,
     10000000L, 1000},
    {"--rate", "N", "messages a second per connection (0: off)", RTWS__SO_RU32, 0,
     RTWS__RO(rate_per_s), 0, 1000000L, 0},
    {"--redis", "URL", "a node of the cluster on this Redis (default: one process)",
     RTWS__SO_RSTR, 0, RTWS__RO(redis_url), 0, 0, 0}};
#undef RTWS__CO
#undef RTWS__RO
#define RTWS__NSOPTS (sizeof rtws__sopts / sizeof rtws__sopts[0])

RTWS_API int rtws_server_opts_parse(rtws_server_opts *o, rtws_ctx_config *cfg,
                                    rtws_router_config *rc, int argc, char **argv,
                                    const char *about) {
    char defs[RTWS__NSOPTS + 1][24];
    rtws_opt *all;
    size_t i, n = 2, k, map[RTWS__NSOPTS] = {0}; /* shared option i is all[map[i]] (0: not offered) */
    int ret;
    if (!o || !cfg || (o->n_own && !o->own)) return -1;
    all = (rtws_opt *)RTWS_MALLOC(sizeof(rtws_opt) * (2 + RTWS__NSOPTS + o->n_own));
    if (!all) {
        fputs("out of memory reading the command line\n", stderr);
        return -1;
    }
    memset(all, 0, sizeof(rtws_opt) * (2 + RTWS__NSOPTS + o->n_own));
    all[0].name = "--host", all[0].arg = "H", all[0].help = "address to listen on";
    all[0].value = o->host && *o->host ? o->host : "127.0.0.1";
    all[1].name = "--port", all[1].arg = "P", all[1].help = "port (0: the OS picks)";
    all[1].min = 0, all[1].max = 65535;
    snprintf(defs[RTWS__NSOPTS], sizeof defs[0], "%d", o->port);
    all[1].value = defs[RTWS__NSOPTS];
    for (i = 0; i < RTWS__NSOPTS; i++) { /* the shared options this server takes */
        const rtws__sopt *s = &rtws__sopts[i];
        char *base = s->to >= RTWS__SO_RSIZE ? (char *)rc : (char *)cfg;
        if (!base || ((s->flags & RTWS__SO_JWT) && rc->auth))
            continue; /* no router: not its options; a custom token check: no JWT ones */
        map[i] = n;
        all[n].name = s->name, all[n].arg = s->arg, all[n].help = s->help;
        all[n].min = s->min, all[n].max = s->max;
        if (s->to == RTWS__SO_RSECRET) { /* never shown; required when the program says */
            all[n].required = o->need_secret && !rc->jwt_secret;
        } else if (s->to == RTWS__SO_RSTR) {
            memcpy(&all[n].value, base + s->off, sizeof all[n].value);
        } else { /* a number: the field's value, or the library's default for 0 */
            unsigned long v;
            if (s->to == RTWS__SO_SIZE || s->to == RTWS__SO_RSIZE) {
                size_t z;
                memcpy(&z, base + s->off, sizeof z);
                v = (unsigned long)z;
            } else {
                uint32_t u;
                memcpy(&u, base + s->off, sizeof u);
                v = u;
            }
            if ((s->flags & RTWS__SO_PING) && cfg->conn.heartbeat_off)
                v = 0;
            else if (!v)
                v = (unsigned long)s->def;
            snprintf(defs[i], sizeof defs[0], "%lu", v);
            all[n].value = defs[i];
        }
        n++;
    }
    for (k = 0; k < o->n_own; k++) all[n + k] = o->own[k];
    ret = rtws_opts_parse(all, n + o->n_own, argc, argv, about);
    for (k = 0; k < o->n_own; k++) o->own[k] = all[n + k];
    for (i = 0; ret == 0 && i < RTWS__NSOPTS; i++) { /* the given ones into their fields */
        const rtws__sopt *s = &rtws__sopts[i];
        const rtws_opt *x = &all[map[i]];
        char *base = s->to >= RTWS__SO_RSIZE ? (char *)rc : (char *)cfg;
        if (!map[i] || !x->value || x->value == defs[i]) continue; /* not offered or given */
        if (s->to == RTWS__SO_RSTR || s->to == RTWS__SO_RSECRET) {
            memcpy(base + s->off, &x->value, sizeof x->value);
            if (s->to == RTWS__SO_RSECRET) rc->jwt_secret_len = strlen(x->value);
        } else if (s->to == RTWS__SO_SIZE || s->to == RTWS__SO_RSIZE) {
            size_t z = (size_t)x->num;
            memcpy(base + s->off, &z, sizeof z);
        } else {
            uint32_t u = (uint32_t)x->num;
            memcpy(base + s->off, &u, sizeof u);
        }
        if (s->flags & RTWS__SO_PING) cfg->conn.heartbeat_off = x->num == 0;
        if ((s->flags & RTWS__SO_MAXFRAME) &&
            cfg->conn.max_message > RTWS__DEF(cfg->conn.max_frame, (size_t)16 << 20))
            cfg->conn.max_frame = cfg->conn.max_message;
    }
    if (ret == 0) {
        o->host = all[0].value;
        o->port = (int)all[1].num;
    }
    RTWS_FREE(all);
    return ret;
}
#endif
#endif /* !RTWS_NO_REALTIME */

#endif /* RTWS_IMPLEMENTATION */

/*
MIT License

Copyright (c) 2026 the rtws authors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
*/
