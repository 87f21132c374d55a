/* rtws.h - v0.1.0 - RFC 6455 WebSockets for C99 and C++ - MIT (text at end of file)

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
     RTWS_NO_SYSTEM_RANDOM  leave out the getrandom()/dev/urandom source; then
                        rtws_config.random must be set

   QUICK START: see README.md (a whole server and a whole client).

   LAYERS (header order, each uses only those above it)
     0 base        config, allocator, errors, sha1, base64, random, clock
     1 frame       RFC 6455 §5 frame header parse/encode, masking, UTF-8 validation
     2 handshake   HTTP/1.1 upgrade request/response parse + build (§4)
     3 conn        sans-I/O connection: bytes in -> events out, calls -> bytes out
   Layers 0-3 never call read/write/poll/time/rand/getenv: bytes and now_ms
   come in as arguments, bytes and events go out.

   MEMORY AND OWNERSHIP
     The caller owns every rtws_conn (stack, static, its own pool). The library
     owns the buffers inside it, allocated through rtws_config.allocator or
     RTWS_MALLOC and friends. Input pointers are borrowed for the duration of a
     call. Event payloads are valid until the callback returns.

   ERRORS
     Zero is success, failures are negative rtws_err values, and
     rtws_strerror() names the setting to change. RTWS_EAGAIN is not a failure.
     A fatal connection error is sticky until rtws_conn_reset().

   THREADS AND REENTRANCY
     No globals, no threads, no signals. One rtws_conn is used by one thread at a
     time. Any API may be called from inside an event callback, including
     rtws_conn_close() and rtws_conn_free() on the connection that fired it.

   LIMITS: every buffer has a cap in rtws_config (see rtws_config below).
*/
#ifndef RTWS_H
#define RTWS_H

/* The implementation needs POSIX (clock_gettime). Under -std=c99 glibc hides it
   unless asked before the first system header; this works when rtws.h is the
   first include of the implementation file (else compile with -D_GNU_SOURCE). */
#if defined(RTWS_IMPLEMENTATION) && !defined(_POSIX_C_SOURCE) && !defined(_GNU_SOURCE) &&          \
    !defined(_DEFAULT_SOURCE) && !defined(_WIN32) && !defined(__APPLE__)
#define _POSIX_C_SOURCE 200809L
#endif

#define RTWS_VERSION_MAJOR 0
#define RTWS_VERSION_MINOR 1
#define RTWS_VERSION_PATCH 0
#define RTWS_VERSION_STRING "0.1.0"

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

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================== */
/* layer 0: base                                                            */
/* ======================================================================== */

/* One table expands into both enum rtws_err and rtws_strerror(). */
#define RTWS__ERRORS(X)                                                                            \
    X(RTWS_OK, 0, "ok")                                                                            \
    X(RTWS_EAGAIN, -1, "need more input or output space")                                          \
    X(RTWS_ERR_INVALID, -2, "invalid argument or call in the wrong state")                         \
    X(RTWS_ERR_NOMEM, -3, "allocation failed (see rtws_config.allocator)")                         \
    X(RTWS_ERR_PROTOCOL, -4, "peer violated RFC 6455")                                             \
    X(RTWS_ERR_TOO_BIG, -5, "message exceeds rtws_config.max_message or max_frame")                \
    X(RTWS_ERR_UTF8, -6, "text is not valid UTF-8")                                                \
    X(RTWS_ERR_HANDSHAKE, -7, "opening handshake failed (see the event's status)")                 \
    X(RTWS_ERR_TIMEOUT, -8, "timed out (see rtws_config.*_timeout_ms)")                            \
    X(RTWS_ERR_CLOSED, -9, "connection is closing or closed")                                      \
    X(RTWS_ERR_LIMIT, -10, "queue full (see rtws_config.max_send_queue)")                          \
    X(RTWS_ERR_RANDOM, -11, "random source failed (see rtws_config.random)")                       \
    X(RTWS_ERR_SYNTAX, -12, "malformed input")                                                     \
    X(RTWS_ERR_DEPTH, -13, "nesting deeper than the limit")                                        \
    X(RTWS_ERR_NOSPACE, -14, "caller buffer or token array too small")                             \
    X(RTWS_ERR_RANGE, -15, "number out of range")                                                  \
    X(RTWS_ERR_IO, -16, "socket error (see errno in the event)")                                   \
    X(RTWS_ERR_RESOLVE, -17, "host name did not resolve")                                          \
    X(RTWS_ERR_URL, -18, "malformed URL (ws://host[:port]/path)")                                  \
    X(RTWS_ERR_TLS, -19, "TLS failed or not built in (define RTWS_USE_BEARSSL)")                   \
    X(RTWS_ERR_ABNORMAL, -20, "connection lost without a close handshake")

typedef enum rtws_err {
#define RTWS__ENUM(name, value, text) name = value,
    RTWS__ERRORS(RTWS__ENUM)
#undef RTWS__ENUM
        RTWS_ERR_LAST_ = -21
} rtws_err;

/* A static string for any rtws_err (unknown values give "unknown error"). */
RTWS_API const char *rtws_strerror(int err);
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
typedef int (*rtws_random_fn)(void *user, void *buf, size_t len);

/* getrandom(2), falling back to /dev/urandom. Returns 0 or -1. */
RTWS_API int rtws_random_system(void *user, void *buf, size_t len);
/* Monotonic milliseconds (CLOCK_MONOTONIC); the value to pass as now_ms. */
RTWS_API uint64_t rtws_now_ms(void);
/* Milliseconds from now until deadline, clamped to [0, INT32_MAX]; -1 when the
   deadline is UINT64_MAX (none), which is what poll() takes as "forever". */
RTWS_API int rtws_ms_until(uint64_t deadline_ms, uint64_t now_ms);

RTWS_API void rtws_sha1(const void *data, size_t len, uint8_t out[20]);
/* Standard base64 with padding. encode writes 4*ceil(len/3) chars plus a NUL
   and returns the length without the NUL, or 0 when cap is too small. */
RTWS_API size_t rtws_base64_encode(const uint8_t *in, size_t len, char *out, size_t cap);
/* Strict: padding required, no whitespace. Returns the decoded length, or
   (size_t)-1 for bad input or too small a cap. */
RTWS_API size_t rtws_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* ======================================================================== */
/* layer 1: frame                                                           */
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
   only the encoding; rtws_frame_check() applies the rules of a role. */
RTWS_API rtws_err rtws_frame_header_decode(const uint8_t *p, size_t n, rtws_frame_header *h);

/* RFC 6455 §5.1-5.5 rules for a frame received by role (RTWS_SERVER expects
   masked frames, RTWS_CLIENT unmasked), given whether a fragmented message is
   in progress. Returns RTWS_OK or RTWS_ERR_PROTOCOL; max_frame (0: none) gives
   RTWS_ERR_TOO_BIG. */
RTWS_API rtws_err rtws_frame_check(const rtws_frame_header *h, rtws_role role, int in_message,
                                   uint64_t max_frame);

/* Encodes a header for a payload of len bytes into out (RTWS_FRAME_HEADER_MAX
   bytes). mask is NULL for an unmasked frame (server role). Returns bytes written. */
RTWS_API size_t rtws_frame_header_encode(uint8_t *out, int fin, rtws_opcode op, uint64_t len,
                                         const uint8_t mask[4]);

/* XORs p[0..n) with key, starting at key position pos (0..3), a machine word at a
   time. Returns the key position for the next byte, so a payload can be
   unmasked in pieces: pos = rtws_mask(p, n, key, pos). */
RTWS_API size_t rtws_mask(uint8_t *p, size_t n, const uint8_t key[4], size_t pos);

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
   role. */
typedef struct rtws_frame_parser {
    rtws_role role;
    uint64_t max_frame;       /* 0: no cap */
    rtws_frame_header h;      /* the frame being read */
    uint64_t remaining;       /* payload bytes of h still to come */
    size_t mask_pos;          /* key position for the next payload byte */
    uint8_t hbuf[RTWS_FRAME_HEADER_MAX];
    uint8_t hlen;             /* header bytes buffered */
    uint8_t in_header;        /* 1 while reading a header */
    uint8_t in_message;       /* 1 inside a fragmented data message */
    uint8_t pad_;
} rtws_frame_parser;

typedef struct rtws_frame_piece {
    const rtws_frame_header *h; /* the frame the piece belongs to */
    uint8_t *data;              /* unmasked payload bytes (inside the caller's input) */
    size_t len;
    int frame_start;            /* 1 on the first piece of a frame (may be empty) */
    int frame_end;              /* 1 on the last piece of a frame */
} rtws_frame_piece;

RTWS_API void rtws_frame_parser_init(rtws_frame_parser *p, rtws_role role, uint64_t max_frame);
/* Consumes bytes from data[0..len), stopping after at most one piece. On
   RTWS_OK *piece describes payload bytes (unmasked in place in data) and *used
   says how many input bytes were consumed; call again with the rest. Returns
   RTWS_EAGAIN when all input was consumed without completing a piece,
   RTWS_ERR_PROTOCOL or RTWS_ERR_TOO_BIG (sticky) for a bad frame. */
RTWS_API rtws_err rtws_frame_feed(rtws_frame_parser *p, uint8_t *data, size_t len, size_t *used,
                                  rtws_frame_piece *piece);

/* ======================================================================== */
/* layer 2: handshake                                                       */
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
} rtws_http;

/* Finds the end of an HTTP head ("\r\n\r\n") in buf[0..len) without re-scanning:
   *scanned (start 0) remembers how far earlier calls looked. Returns the head
   size, or 0 when it is not complete yet. */
RTWS_API size_t rtws_http_head_end(const char *buf, size_t len, size_t *scanned);

/* Parses a complete request head (buf[0..len) as found by rtws_http_head_end).
   Returns RTWS_OK, or RTWS_ERR_SYNTAX with *err_off at the byte that broke it,
   or RTWS_ERR_LIMIT with more than max_headers (<= RTWS_MAX_HEADERS) headers. */
RTWS_API rtws_err rtws_http_parse_request(const char *buf, size_t len, rtws_http *req,
                                          size_t max_headers, size_t *err_off);
/* The same for a response head ("HTTP/1.1 101 Switching Protocols"). */
RTWS_API rtws_err rtws_http_parse_response(const char *buf, size_t len, rtws_http *res,
                                           size_t max_headers, size_t *err_off);
/* First header named name (case-insensitive), or NULL. */
RTWS_API const rtws_str *rtws_http_header(const rtws_http *m, const char *name);
/* 1 when a comma-separated header named name holds token (case-insensitive),
   across repeated headers of that name too. */
RTWS_API int rtws_http_has_token(const rtws_http *m, const char *name, const char *token);

/* Sec-WebSocket-Accept for a key (RFC 6455 §4.2.2): base64(sha1(key + GUID)),
   28 characters plus a NUL in out. */
RTWS_API void rtws_ws_accept(const char *key, size_t key_len, char out[29]);

/* What a server decided about an upgrade request. */
typedef struct rtws_upgrade {
    int status;                /* 101 when accepted; else 400, 403, 426, ... */
    const char *reason;        /* short text for the error body */
    rtws_str key;              /* Sec-WebSocket-Key as sent */
    rtws_str protocols;        /* Sec-WebSocket-Protocol as sent (may be empty) */
    rtws_str origin;           /* Origin as sent (may be empty) */
} rtws_upgrade;

/* RFC 6455 §4.2.1 checks of a parsed request: GET, HTTP/1.1 or later, Host,
   Upgrade: websocket, Connection with the Upgrade token, a key that decodes to
   16 bytes, version 13 (else status 426). Fills *u and returns its status. */
RTWS_API int rtws_upgrade_check(const rtws_http *req, rtws_upgrade *u);

/* ======================================================================== */
/* layer 3: conn                                                            */
/* ======================================================================== */

typedef struct rtws_conn rtws_conn;

typedef enum rtws_event_type {
    RTWS_EV_OPEN = 1,  /* handshake done; protocol holds the subprotocol chosen */
    RTWS_EV_MESSAGE,   /* a whole message (or a piece, in stream mode) */
    RTWS_EV_PING,      /* a ping arrived (the pong is already queued) */
    RTWS_EV_PONG,      /* a pong arrived; rtt_ms when it answers our ping */
    RTWS_EV_CLOSE,     /* the connection is closed: code, reason, clean */
    RTWS_EV_ERROR      /* err says why; a CLOSE event follows when fatal */
} rtws_event_type;

typedef struct rtws_event {
    rtws_event_type type;
    rtws_opcode opcode;   /* MESSAGE: RTWS_OP_TEXT or RTWS_OP_BINARY */
    const uint8_t *data;  /* MESSAGE/PING/PONG payload; CLOSE reason; valid until return */
    size_t len;
    int first, fin;       /* MESSAGE in stream mode: first and last piece of a message */
    unsigned code;        /* CLOSE: status code (1005 none, 1006 abnormal) */
    int clean;            /* CLOSE: 1 when the close handshake completed */
    int by_peer;          /* CLOSE: 1 when the peer started the close */
    rtws_err err;         /* ERROR */
    int status;           /* ERROR during the handshake: HTTP status (client: peer's) */
    uint32_t rtt_ms;      /* PONG: round trip of our last ping */
    rtws_str protocol;    /* OPEN: the subprotocol (empty when none) */
} rtws_event;

typedef void (*rtws_event_fn)(rtws_conn *c, const rtws_event *ev, void *user);

/* Server-side decision about a request, called before the 101 is sent. Set
   *protocol to one of the offered subprotocols (or leave it NULL), or return
   an HTTP status >= 400 (e.g. 401, 403) to refuse; return 0 to accept. */
typedef int (*rtws_accept_fn)(rtws_conn *c, const rtws_http *req, const char **protocol,
                              void *user);

/* Zero-initialised means defaults (in parentheses). */
typedef struct rtws_config {
    rtws_role role;                 /* (RTWS_CLIENT) */
    size_t max_frame;               /* payload bytes of one frame (16 MiB) */
    size_t max_message;             /* bytes of a reassembled message (16 MiB) */
    size_t max_fragments;           /* frames in one message, empty ones too (131072) */
    size_t max_handshake;           /* bytes of the HTTP head (8 KiB) */
    size_t max_headers;             /* headers in the HTTP head (64, at most RTWS_MAX_HEADERS) */
    size_t max_send_queue;          /* unsent data bytes before sends fail (64 MiB) */
    uint32_t handshake_timeout_ms;  /* opening handshake deadline (10000) */
    uint32_t close_timeout_ms;      /* close handshake deadline (5000) */
    uint32_t ping_interval_ms;      /* ping after this much silence (30000); set
                                       heartbeat_off to disable */
    uint32_t pong_timeout_ms;       /* fail when nothing arrives this long after
                                       a ping (60000) */
    int heartbeat_off;              /* 1: no automatic pings, no pong timeout */
    int stream;                     /* 1: deliver message pieces as they arrive */
    int no_utf8_check;              /* 1: skip UTF-8 validation of text (not RFC) */
    const char *const *allowed_origins; /* server: NULL-terminated list; NULL: any */
    rtws_event_fn on_event;         /* events of every connection */
    rtws_accept_fn on_accept;       /* server: accept/refuse/pick subprotocol */
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

typedef struct rtws__chunk rtws__chunk;
typedef struct rtws__seg {
    rtws__chunk *chunk; /* NULL: points at the connection's control buffer */
    const uint8_t *p;
    size_t len;
    int frame_cont;     /* the frame goes on in the next segment */
} rtws__seg;

/* Fields are private: read them through the functions below. */
struct rtws_conn {
    rtws_config cfg;
    rtws_conn_state state;
    rtws_err err;               /* sticky fatal error */
    unsigned close_code;        /* code we sent or will send */
    unsigned peer_code;         /* code the peer sent */
    uint8_t close_sent, close_recvd, close_reported, eof;
    uint8_t depth, freed, want_close, in_recv;
    uint64_t now;
    uint64_t deadline_handshake, deadline_close, last_rx, ping_sent_at;
    uint8_t ping_outstanding, pad_[7];
    /* receive side */
    uint8_t *rbuf;
    size_t rcap, rstart, rend;  /* unread bytes are rbuf[rstart..rend) */
    size_t hs_scanned;
    rtws_frame_header h;        /* current frame */
    int have_header;
    size_t pdone;               /* payload bytes of h unmasked+checked, in place */
    size_t mask_pos;
    uint8_t *mbuf;              /* reassembly buffer */
    size_t mcap, mlen;
    size_t nfrag;
    uint8_t msg_op;             /* opcode of the message in progress, 0 none */
    uint8_t stream_first;
    uint32_t utf8;
    /* send side */
    rtws__seg *segs;
    size_t nseg_cap, seg_head, nsegs;
    size_t head_off;            /* bytes of segs[seg_head] already written */
    size_t queued;              /* unsent data bytes */
    rtws__chunk *spare;
    uint8_t ctl_pong[2 + 125], ctl_ping[2 + 4 + 125];
    uint8_t ctl_pong_len, ctl_ping_len, ctl_active, ctl_pad;
    uint8_t cout[2 * (2 + 4 + 125)];
    size_t cout_len;
    uint8_t *hs;                /* client: Sec-WebSocket-Accept expected, protocols offered */
    char accept[29];
    rtws_str protocol;
    char *protocol_buf;
    void *data;                 /* rtws_conn_set_data */
};

/* Prepares c for role cfg->role (the config is copied). A server waits for the
   request; a client calls rtws_conn_client_start(). Allocates nothing yet. */
RTWS_API void rtws_conn_init(rtws_conn *c, const rtws_config *cfg);
/* Releases every buffer. Inside a callback of c the release happens when the
   outer rtws call returns; c's own memory must stay valid until then. */
RTWS_API void rtws_conn_free(rtws_conn *c);
/* rtws_conn_free() then rtws_conn_init() with the same config. */
RTWS_API void rtws_conn_reset(rtws_conn *c);
/* The effective config, defaults filled in. */
RTWS_API const rtws_config *rtws_conn_config(const rtws_conn *c);
RTWS_API rtws_conn_state rtws_conn_get_state(const rtws_conn *c);
RTWS_API rtws_err rtws_conn_error(const rtws_conn *c);
RTWS_API void rtws_conn_set_data(rtws_conn *c, void *data);
RTWS_API void *rtws_conn_get_data(const rtws_conn *c);

/* Client: queues the upgrade request (random 16-byte key). */
RTWS_API rtws_err rtws_conn_client_start(rtws_conn *c, const rtws_client_opts *opts,
                                         uint64_t now_ms);

/* Feeds bytes received from the peer. Consumes all len bytes (*used, when not
   NULL, says how many; fewer only on a fatal error) and delivers events before
   returning. Returns RTWS_OK, RTWS_EAGAIN (waiting for more) or the sticky fatal
   error. data is only read during the call. */
RTWS_API rtws_err rtws_conn_recv(rtws_conn *c, const void *data, size_t len, uint64_t now_ms,
                                 size_t *used);
/* Zero-copy receive: space inside the connection's buffer to read() into
   (at least min_len bytes when min_len > 0, else what the next frame needs,
   at least 4 KiB), then rtws_conn_recv_commit() with the count read. */
RTWS_API uint8_t *rtws_conn_recv_buf(rtws_conn *c, size_t min_len, size_t *cap);
RTWS_API rtws_err rtws_conn_recv_commit(rtws_conn *c, size_t n, uint64_t now_ms);
/* The peer's side of TCP ended (read returned 0 or an error). */
RTWS_API void rtws_conn_eof(rtws_conn *c, uint64_t now_ms);

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
RTWS_API void rtws_conn_tick(rtws_conn *c, uint64_t now_ms);
/* The next time rtws_conn_tick() has work, or UINT64_MAX. */
RTWS_API uint64_t rtws_conn_deadline(const rtws_conn *c);

/* Sends a whole message; RTWS_ERR_UTF8 for invalid text, RTWS_ERR_LIMIT when
   the send queue is full, RTWS_ERR_CLOSED after a close. data is copied. */
RTWS_API rtws_err rtws_conn_send(rtws_conn *c, rtws_opcode op, const void *data, size_t len);
RTWS_API rtws_err rtws_conn_send_text(rtws_conn *c, const char *text, size_t len);
RTWS_API rtws_err rtws_conn_send_binary(rtws_conn *c, const void *data, size_t len);
/* One frame of a fragmented message: op is TEXT/BINARY for the first frame,
   RTWS_OP_CONT for the rest; fin on the last. Text is validated across frames. */
RTWS_API rtws_err rtws_conn_send_frame(rtws_conn *c, rtws_opcode op, const void *data,
                                       size_t len, int fin);
/* Ping with up to 125 bytes; queued ahead of data at the next frame boundary. */
RTWS_API rtws_err rtws_conn_ping(rtws_conn *c, const void *data, size_t len);
/* Starts the close handshake after the queued data: code 0 sends no code;
   reason (<= 123 bytes of UTF-8) may be NULL. */
RTWS_API rtws_err rtws_conn_close(rtws_conn *c, unsigned code, const char *reason);

/* ======================================================================== */
/* layer 6: json                                                            */
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

/* The writer: JSON into buf[0..cap), commas automatic. Every call returns the
   writer's error state: the first error sticks, and later calls do nothing
   but return it. RTWS_ERR_NOSPACE is softer: output stops but len keeps
   counting, so rtws_json_writer_finish() tells the size needed (buf NULL and
   cap 0 measure). Misuse (a key outside an object, a value in an object
   without a key, a second top-level value, an unbalanced end) gives
   RTWS_ERR_INVALID; nesting beyond RTWS_JSON_DEPTH, RTWS_ERR_DEPTH. Fields are
   private; buf is borrowed until the last call. */
typedef struct rtws_json_writer {
    char *buf;
    size_t cap;
    size_t len;
    rtws_err err;
    unsigned depth;
    unsigned flags;
    uint8_t obj[RTWS_JSON_DEPTH / 8];
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
/* Checks the document is complete, NUL-terminates it when there is room and
   sets *len (may be NULL) to its length (without the NUL) - or, after
   RTWS_ERR_NOSPACE, to the length needed. */
RTWS_API rtws_err rtws_json_writer_finish(rtws_json_writer *w, size_t *len);

#ifdef __cplusplus
}
#endif
#endif /* RTWS_H */

/* ======================================================================== */
/* implementation                                                           */
/* ======================================================================== */
#if defined(RTWS_IMPLEMENTATION) && !defined(RTWS__IMPLEMENTED)
#define RTWS__IMPLEMENTED

#include <string.h>

#if defined(RTWS_MALLOC) && defined(RTWS_REALLOC) && defined(RTWS_FREE)
#elif !defined(RTWS_MALLOC) && !defined(RTWS_REALLOC) && !defined(RTWS_FREE)
#include <stdlib.h>
#define RTWS_MALLOC(n) malloc(n)
#define RTWS_REALLOC(p, n) realloc(p, n)
#define RTWS_FREE(p) free(p)
#else
#error "define RTWS_MALLOC, RTWS_REALLOC and RTWS_FREE all together, or none of them"
#endif

#ifndef RTWS_ASSERT
#include <assert.h>
#define RTWS_ASSERT(x) assert(x)
#endif

#define RTWS__DEF(v, d) ((v) ? (v) : (d))
#define RTWS__MIN(a, b) ((a) < (b) ? (a) : (b))
#define RTWS__GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* === rtws: base ========================================================= */

#if !defined(RTWS_NO_SYSTEM_RANDOM)
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 25))
#define RTWS__HAVE_GETRANDOM 1
#include <sys/random.h>
#endif
#endif
#include <time.h>

RTWS_API const char *rtws_strerror(int err) {
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

#if !defined(RTWS_NO_SYSTEM_RANDOM)
RTWS_API int rtws_random_system(void *user, void *buf, size_t len) {
    uint8_t *p = (uint8_t *)buf;
    (void)user;
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
}
#endif

RTWS_API uint64_t rtws_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

RTWS_API int rtws_ms_until(uint64_t deadline_ms, uint64_t now_ms) {
    if (deadline_ms == UINT64_MAX) return -1;
    if (deadline_ms <= now_ms) return 0;
    if (deadline_ms - now_ms > (uint64_t)INT32_MAX) return INT32_MAX;
    return (int)(deadline_ms - now_ms);
}

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

static const char rtws__b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

RTWS_API size_t rtws_base64_encode(const uint8_t *in, size_t len, char *out, size_t cap) {
    size_t i, o = 0, need;
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3) return 0;
    need = (len + 2) / 3 * 4;
    if (cap < need + 1) return 0;
    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = rtws__b64[v >> 18];
        out[o++] = rtws__b64[(v >> 12) & 63];
        out[o++] = rtws__b64[(v >> 6) & 63];
        out[o++] = rtws__b64[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0u);
        out[o++] = rtws__b64[v >> 18];
        out[o++] = rtws__b64[(v >> 12) & 63];
        out[o++] = i + 1 < len ? rtws__b64[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
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

/* === rtws: frame ======================================================== */

RTWS_API rtws_err rtws_frame_header_decode(const uint8_t *p, size_t n, rtws_frame_header *h) {
    size_t need = 2;
    uint64_t len;
    if (n < 2) return RTWS_EAGAIN;
    h->fin = (uint8_t)(p[0] >> 7);
    h->rsv = (uint8_t)((p[0] >> 4) & 7);
    h->opcode = (uint8_t)(p[0] & 15);
    h->masked = (uint8_t)(p[1] >> 7);
    len = p[1] & 127u;
    if (len == 126) need += 2;
    else if (len == 127) need += 8;
    if (h->masked) need += 4;
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
    if (h->masked) memcpy(h->mask, p + need - 4, 4);
    else memset(h->mask, 0, 4);
    h->len = len;
    h->header_len = need;
    return RTWS_OK;
}

RTWS_API rtws_err rtws_frame_check(const rtws_frame_header *h, rtws_role role, int in_message,
                                   uint64_t max_frame) {
    if (h->rsv) return RTWS_ERR_PROTOCOL; /* §5.2: no extension was negotiated */
    /* §5.1: a client masks every frame, a server masks none */
    if (role == RTWS_SERVER ? !h->masked : h->masked) return RTWS_ERR_PROTOCOL;
    switch (h->opcode) {
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
        if (!h->fin || h->len > 125) return RTWS_ERR_PROTOCOL;
        return RTWS_OK;
    default:
        return RTWS_ERR_PROTOCOL; /* reserved opcodes 3-7, 0xB-0xF */
    }
    if (max_frame && h->len > max_frame) return RTWS_ERR_TOO_BIG;
    return RTWS_OK;
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
   bulk runs on 8-byte words (memcpy loads compile to plain moves and let the
   compiler vectorise); only the unaligned head and the tail go byte by byte. */
RTWS_API size_t rtws_mask(uint8_t *p, size_t n, const uint8_t key[4], size_t pos) {
    uint8_t k[8];
    uint64_t kw;
    size_t i;
    pos &= 3;
    while (n && ((uintptr_t)p & 7u)) {
        *p++ ^= key[pos];
        pos = (pos + 1) & 3;
        n--;
    }
    if (n >= 8) {
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
   (lowest allowed next byte) << 8 | (highest allowed next byte). The first
   continuation byte's range excludes overlongs (E0, F0), surrogates (ED) and
   code points above U+10FFFF (F4), RFC 3629 §4. */
RTWS_API rtws_err rtws_utf8_validate(uint32_t *state, const uint8_t *p, size_t n,
                                     size_t *bad_off) {
    uint32_t st = *state;
    size_t i = 0;
    while (i < n) {
        uint8_t b = p[i];
        if (st == 0) {
            if (b < 0x80) {
                /* ASCII fast path, 8 bytes at a time */
                while (i + 8 <= n) {
                    uint64_t w;
                    memcpy(&w, p + i, 8);
                    if (w & 0x8080808080808080ull) break;
                    i += 8;
                }
                while (i < n && p[i] < 0x80) i++;
                continue;
            }
            if (b >= 0xC2 && b <= 0xDF) st = 1u << 16 | 0x80u << 8 | 0xBFu;
            else if (b == 0xE0) st = 2u << 16 | 0xA0u << 8 | 0xBFu;
            else if (b == 0xED) st = 2u << 16 | 0x80u << 8 | 0x9Fu;
            else if (b >= 0xE1 && b <= 0xEF) st = 2u << 16 | 0x80u << 8 | 0xBFu;
            else if (b == 0xF0) st = 3u << 16 | 0x90u << 8 | 0xBFu;
            else if (b >= 0xF1 && b <= 0xF3) st = 3u << 16 | 0x80u << 8 | 0xBFu;
            else if (b == 0xF4) st = 3u << 16 | 0x80u << 8 | 0x8Fu;
            else goto bad;
        } else {
            if (b < ((st >> 8) & 0xFF) || b > (st & 0xFF)) goto bad;
            st -= 1u << 16;
            st = (st >> 16) ? ((st & 0xFFFF0000u) | 0x80u << 8 | 0xBFu) : 0;
        }
        i++;
    }
    *state = st;
    return RTWS_OK;
bad:
    *state = st;
    if (bad_off) *bad_off = i;
    return RTWS_ERR_UTF8;
}

RTWS_API int rtws_close_code_valid(unsigned code) {
    /* §7.4.1/§7.4.2 and the IANA registry: 1000-1003, 1007-1011 (1012-1014 are
       registered since), 3000-4999 for libraries and applications. 1004-1006
       and 1015 must never be sent; 0-999 and the rest of 1000-2999 are not used. */
    if (code >= 1000 && code <= 1003) return 1;
    if (code >= 1007 && code <= 1014) return 1;
    return code >= 3000 && code <= 4999;
}

RTWS_API void rtws_frame_parser_init(rtws_frame_parser *p, rtws_role role, uint64_t max_frame) {
    memset(p, 0, sizeof *p);
    p->role = role == RTWS_SERVER ? RTWS_SERVER : RTWS_CLIENT;
    p->max_frame = max_frame;
    p->in_header = 1;
}

RTWS_API rtws_err rtws_frame_feed(rtws_frame_parser *p, uint8_t *data, size_t len, size_t *used,
                                  rtws_frame_piece *piece) {
    size_t off = 0;
    *used = 0;
    memset(piece, 0, sizeof *piece);
    if (p->in_header == 2) return RTWS_ERR_PROTOCOL; /* sticky */
    if (p->in_header == 3) return RTWS_ERR_TOO_BIG;
    if (p->in_header) {
        rtws_err e;
        /* buffer just enough header bytes: never more than the header needs */
        for (;;) {
            e = rtws_frame_header_decode(p->hbuf, p->hlen, &p->h);
            if (e != RTWS_EAGAIN) break;
            if (off == len) {
                *used = off;
                return RTWS_EAGAIN;
            }
            p->hbuf[p->hlen++] = data[off++];
        }
        if (e == RTWS_OK) e = rtws_frame_check(&p->h, p->role, p->in_message, p->max_frame);
        if (e != RTWS_OK) {
            p->in_header = e == RTWS_ERR_TOO_BIG ? 3 : 2;
            *used = off;
            return e;
        }
        p->in_header = 0;
        p->hlen = 0;
        p->remaining = p->h.len;
        p->mask_pos = 0;
        if (p->h.opcode < 8) p->in_message = !p->h.fin;
        piece->frame_start = 1;
    }
    {
        size_t take = (size_t)RTWS__MIN((uint64_t)(len - off), p->remaining);
        piece->h = &p->h;
        piece->data = data + off;
        piece->len = take;
        if (p->h.masked) p->mask_pos = rtws_mask(data + off, take, p->h.mask, p->mask_pos);
        p->remaining -= take;
        off += take;
        if (p->remaining == 0) {
            piece->frame_end = 1;
            p->in_header = 1;
        }
    }
    *used = off;
    if (!piece->frame_start && piece->len == 0 && !piece->frame_end) return RTWS_EAGAIN;
    return RTWS_OK;
}

/* === rtws: handshake ==================================================== */

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
    if (off < len && buf[off] == ' ') off++;
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

RTWS_API const rtws_str *rtws_http_header(const rtws_http *m, const char *name) {
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

RTWS_API void rtws_ws_accept(const char *key, size_t key_len, char out[29]) {
    uint8_t buf[64 + 36], dig[20];
    if (key_len > 64) key_len = 64; /* callers pass checked 24-byte keys */
    memcpy(buf, key, key_len);
    memcpy(buf + key_len, RTWS__GUID, 36);
    rtws_sha1(buf, key_len + 36, dig);
    rtws_base64_encode(dig, 20, out, 29);
}

RTWS_API int rtws_upgrade_check(const rtws_http *req, rtws_upgrade *u) {
    const rtws_str *v;
    uint8_t raw[18];
    memset(u, 0, sizeof *u);
    u->status = 400;
    if (!rtws__str_ieq(req->method, "GET")) {
        u->status = 405;
        u->reason = "the WebSocket handshake must use GET";
        return u->status;
    }
    if (req->minor < 1) {
        u->reason = "HTTP/1.1 or later is required";
        return u->status;
    }
    if (!rtws_http_header(req, "Host")) {
        u->reason = "missing Host header";
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
    v = rtws_http_header(req, "Sec-WebSocket-Version");
    if (!v || v->len != 2 || v->p[0] != '1' || v->p[1] != '3') {
        u->status = 426; /* §4.4: answer with the versions we speak */
        u->reason = "unsupported Sec-WebSocket-Version (13 is)";
        return u->status;
    }
    v = rtws_http_header(req, "Sec-WebSocket-Key");
    if (!v || v->len != 24 || rtws_base64_decode(v->p, v->len, raw, sizeof raw) != 16) {
        u->reason = "Sec-WebSocket-Key must be base64 of 16 bytes";
        return u->status;
    }
    u->key = *v;
    v = rtws_http_header(req, "Sec-WebSocket-Protocol");
    if (v) u->protocols = *v;
    v = rtws_http_header(req, "Origin");
    if (v) u->origin = *v;
    u->status = 101;
    u->reason = "Switching Protocols";
    return u->status;
}


/* === rtws: conn ========================================================= */

/* === rtws: host ========================================================= */

/* === rtws: tls ========================================================== */

/* === rtws: json ========================================================= */

#include <stdio.h>  /* snprintf: rtws_json_write_double */
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

/* Length of the RFC 3629 sequence at p (p[0] >= 0x80), 0 when it is invalid
   or cut off: no overlongs (C0, C1, E0 80-9F, F0 80-8F), no surrogates
   (ED A0-BF), nothing above U+10FFFF (F4 90-, F5-FF). */
static size_t rtws__json_utf8(const uint8_t *p, const uint8_t *e) {
    unsigned c = p[0], lo = 0x80, hi = 0xBF;
    size_t n;
    if (c < 0xC2) return 0;
    if (c < 0xE0) {
        n = 2;
    } else if (c < 0xF0) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        else if (c == 0xED) hi = 0x9F;
    } else if (c < 0xF5) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        else if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if ((size_t)(e - p) < n || p[1] < lo || p[1] > hi) return 0;
    if (n > 2 && (p[2] & 0xC0) != 0x80) return 0;
    if (n > 3 && (p[3] & 0xC0) != 0x80) return 0;
    return n;
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

/* One token; counted even when it does not fit (then only counted). */
#define RTWS__JSON_PUT(ty, fl, st_, len_)                                                          \
    do {                                                                                           \
        if (n < tcap) {                                                                            \
            t = toks + n;                                                                          \
            t->type = (uint8_t)(ty);                                                               \
            t->flags = (uint8_t)(fl);                                                              \
            t->start = (uint32_t)(st_);                                                            \
            t->len = (uint32_t)(len_);                                                             \
            t->size = 0;                                                                           \
            t->next = (uint32_t)(n + 1);                                                           \
            t->parent = cur;                                                                       \
        } else if (n == tcap) {                                                                    \
            full_off = (size_t)(st_);                                                              \
        }                                                                                          \
        n++;                                                                                       \
    } while (0)

/* One loop, no recursion: `cur` is the innermost open container that has a
   token, and closing follows its parent link. Once the tokens run out the
   parse goes on to count and validate; containers opened after that are
   remembered one bit each (object or array) in vstack. A container's size
   is counted at its first child and at each comma. On failure p is the
   offending byte. */
RTWS_API rtws_err rtws_json_parse(rtws_json *doc, const char *text, size_t len,
                                  rtws_json_tok *toks, size_t cap, unsigned max_depth) {
    const uint8_t *s, *p, *e, *st, *q;
    size_t n = 0, tcap = toks ? cap : 0, depth = 0, vdepth = 0, full_off = 0, k;
    int32_t cur = -1;
    int in_obj = 0, is_key = 0, r;
    unsigned c, flags;
    uint64_t vstack[RTWS_JSON_COUNT_DEPTH / 64], x, m;
    uint8_t tmp[4];
    const char *why = "";
    rtws_err err = RTWS_ERR_SYNTAX;
    rtws_json_tok *t;

    if (!text) text = "";
    s = p = st = (const uint8_t *)text;
    e = s + len;
    doc->text = text;
    doc->len = len;
    doc->toks = toks;
    doc->cap = cap;
    doc->count = 0;
    doc->err_off = 0;
    doc->err = "";
    if (len > (size_t)0xFFFFFFFEu) {
        err = RTWS_ERR_TOO_BIG;
        why = "input longer than 4 GiB - 2 bytes (token offsets are 32-bit)";
        goto fail;
    }
    if (tcap > (size_t)INT32_MAX) tcap = (size_t)INT32_MAX;
    if (!max_depth) max_depth = RTWS_JSON_DEPTH;

value:
    RTWS__JSON_SKIP();
    if (p == e) {
        why = n ? "unexpected end of input" : "empty input";
        goto fail;
    }
    c = *p;
    if (c == '"') {
        is_key = 0;
        goto string;
    }
    if (c == '{' || c == '[') {
        if (depth >= max_depth) {
            err = RTWS_ERR_DEPTH;
            why = "nesting deeper than max_depth";
            goto fail;
        }
        in_obj = c == '{';
        if (n < tcap) {
            t = toks + n;
            t->type = (uint8_t)(in_obj ? RTWS_JSON_OBJECT : RTWS_JSON_ARRAY);
            t->flags = 0;
            t->start = (uint32_t)(p - s);
            t->len = t->size = t->next = 0;
            t->parent = cur;
            cur = (int32_t)n;
        } else {
            if (n == tcap) full_off = (size_t)(p - s);
            if (vdepth >= RTWS_JSON_COUNT_DEPTH) {
                err = RTWS_ERR_DEPTH;
                why = "nesting deeper than RTWS_JSON_COUNT_DEPTH after the tokens ran out";
                goto fail;
            }
            if (in_obj) vstack[vdepth >> 6] |= 1ull << (vdepth & 63);
            else vstack[vdepth >> 6] &= ~(1ull << (vdepth & 63));
            vdepth++;
        }
        n++;
        depth++;
        p++;
        RTWS__JSON_SKIP();
        if (p < e && *p == (in_obj ? '}' : ']')) goto close;
        if (!vdepth) toks[cur].size = 1;
        if (in_obj) goto key;
        goto value;
    }
    st = p;
    if (c == '-' || RTWS__JSON_DIGIT(c)) {
        flags = 0;
        if (c == '-') p++;
        if (p == e || !RTWS__JSON_DIGIT(*p)) {
            why = "expected a digit";
            goto fail;
        }
        if (*p++ == '0') {
            if (p < e && RTWS__JSON_DIGIT(*p)) {
                why = "leading zero in a number";
                p--;
                goto fail;
            }
        } else {
            while (p < e && RTWS__JSON_DIGIT(*p)) p++;
        }
        if (p < e && *p == '.') {
            flags = RTWS_JSON_FRAC;
            if (++p == e || !RTWS__JSON_DIGIT(*p)) {
                why = "expected a digit after the decimal point";
                goto fail;
            }
            while (p < e && RTWS__JSON_DIGIT(*p)) p++;
        }
        if (p < e && (*p | 0x20) == 'e') {
            flags = RTWS_JSON_FRAC;
            if (++p < e && (*p == '+' || *p == '-')) p++;
            if (p == e || !RTWS__JSON_DIGIT(*p)) {
                why = "expected a digit in the exponent";
                goto fail;
            }
            while (p < e && RTWS__JSON_DIGIT(*p)) p++;
        }
        c = RTWS_JSON_NUMBER;
    } else if (c == 't' && e - p >= 4 && memcmp(p, "true", 4) == 0) {
        flags = 0;
        p += 4;
        c = RTWS_JSON_TRUE;
    } else if (c == 'f' && e - p >= 5 && memcmp(p, "false", 5) == 0) {
        flags = 0;
        p += 5;
        c = RTWS_JSON_FALSE;
    } else if (c == 'n' && e - p >= 4 && memcmp(p, "null", 4) == 0) {
        flags = 0;
        p += 4;
        c = RTWS_JSON_NULL;
    } else {
        why = "expected a value";
        goto fail;
    }
    RTWS__JSON_PUT(c, flags, st - s, p - st);
    goto after;

string:
    st = ++p;
    flags = is_key ? RTWS_JSON_KEY : 0u;
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
            why = "unterminated string";
            goto fail;
        } else {
            c = *p;
        }
        if (c == '"') break;
        if (c == '\\') {
            q = p; /* p itself stays in a register */
            r = rtws__json_esc(&q, e, tmp);
            if (r < 0) {
                static const char *const reasons[] = {
                    "unterminated string", "unknown escape", "\\u needs four hex digits",
                    "high surrogate escape without a low one", "low surrogate escape alone"};
                why = reasons[-r - 1];
                if (r <= -4) err = RTWS_ERR_UTF8;
                goto fail;
            }
            p = q;
            flags |= RTWS_JSON_ESCAPED;
            continue;
        }
        if (c < 0x20) {
            why = "control character in a string (must be escaped)";
            goto fail;
        }
        if (c < 0x80) {
            p++;
            continue;
        }
        k = rtws__json_utf8(p, e);
        if (!k) {
            err = RTWS_ERR_UTF8;
            why = "invalid UTF-8 in a string";
            goto fail;
        }
        p += k;
    }
    /* full_off of a string is its opening quote */
    RTWS__JSON_PUT(RTWS_JSON_STRING, flags, st - s, p - st);
    if (n - 1 == tcap) full_off--;
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
    if (!depth) goto done;
    RTWS__JSON_SKIP();
    if (p == e) {
        why = "unexpected end of input";
        goto fail;
    }
    if (*p == ',') {
        p++;
        if (!vdepth) toks[cur].size++;
        if (in_obj) goto key;
        goto value;
    }
    if (*p == (in_obj ? '}' : ']')) goto close;
    why = in_obj ? "expected ',' or '}'" : "expected ',' or ']'";
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
    if (vdepth) {
        vdepth--;
        if (vdepth) in_obj = (int)((vstack[(vdepth - 1) >> 6] >> ((vdepth - 1) & 63)) & 1u);
        else in_obj = cur >= 0 && toks[cur].type == RTWS_JSON_OBJECT;
    } else {
        t = toks + cur;
        t->len = (uint32_t)(p + 1 - s) - t->start;
        t->next = (uint32_t)n;
        cur = t->parent;
        in_obj = cur >= 0 && toks[cur].type == RTWS_JSON_OBJECT;
    }
    depth--;
    p++;
    goto after;

done:
    RTWS__JSON_SKIP();
    if (p != e) {
        why = "trailing characters after the value";
        goto fail;
    }
    if (n > (size_t)INT32_MAX) {
        err = RTWS_ERR_TOO_BIG;
        why = "more than INT32_MAX tokens";
        goto fail;
    }
    doc->count = n;
    if (toks && n > tcap) {
        doc->err_off = full_off;
        doc->err = "token array too small (count says how many the text needs)";
        return RTWS_ERR_NOSPACE;
    }
    return RTWS_OK;

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
    if (i < 0 || (size_t)i >= rtws__json_filled(doc)) return NULL;
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

/* --- writer --- */

RTWS_API void rtws_json_writer_init(rtws_json_writer *w, char *buf, size_t cap) {
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->cap = buf ? cap : 0;
    w->err = RTWS_OK;
}

static rtws_err rtws__json_wfail(rtws_json_writer *w, rtws_err err) {
    if (w->err == RTWS_OK || w->err == RTWS_ERR_NOSPACE) w->err = err;
    return w->err;
}

static void rtws__json_wput(rtws_json_writer *w, const void *p, size_t n) {
    if (w->len <= w->cap && n <= w->cap - w->len) {
        if (n) memcpy(w->buf + w->len, p, n);
    } else if (w->err == RTWS_OK) {
        w->err = RTWS_ERR_NOSPACE;
    }
    w->len += n;
}

static int rtws__json_wobj(const rtws_json_writer *w) {
    return (w->obj[(w->depth - 1) >> 3] >> ((w->depth - 1) & 7)) & 1;
}

/* Before any value: place it (comma, or after a key) or refuse it. */
static rtws_err rtws__json_wval(rtws_json_writer *w) {
    if (w->err != RTWS_OK && w->err != RTWS_ERR_NOSPACE) return w->err;
    if (!w->depth) {
        if (w->flags & RTWS__JSON_W_DONE) return rtws__json_wfail(w, RTWS_ERR_INVALID);
    } else if (rtws__json_wobj(w)) {
        if (!(w->flags & RTWS__JSON_W_KEYED)) return rtws__json_wfail(w, RTWS_ERR_INVALID);
    } else if (!(w->flags & RTWS__JSON_W_FIRST)) {
        rtws__json_wput(w, ",", 1);
    }
    w->flags &= ~(RTWS__JSON_W_FIRST | RTWS__JSON_W_KEYED);
    return RTWS_OK;
}

static rtws_err rtws__json_wdone(rtws_json_writer *w) {
    if (!w->depth) w->flags |= RTWS__JSON_W_DONE;
    return w->err;
}

static rtws_err rtws__json_wopen(rtws_json_writer *w, int obj) {
    rtws_err err = rtws__json_wval(w);
    if (err != RTWS_OK && err != RTWS_ERR_NOSPACE) return err;
    if (w->depth >= RTWS_JSON_DEPTH) return rtws__json_wfail(w, RTWS_ERR_DEPTH);
    if (obj) w->obj[w->depth >> 3] = (uint8_t)(w->obj[w->depth >> 3] | (1u << (w->depth & 7)));
    else w->obj[w->depth >> 3] = (uint8_t)(w->obj[w->depth >> 3] & ~(1u << (w->depth & 7)));
    w->depth++;
    w->flags = RTWS__JSON_W_FIRST;
    rtws__json_wput(w, obj ? "{" : "[", 1);
    return w->err;
}

static rtws_err rtws__json_wclose(rtws_json_writer *w, int obj) {
    if (w->err != RTWS_OK && w->err != RTWS_ERR_NOSPACE) return w->err;
    if (!w->depth || rtws__json_wobj(w) != obj || (w->flags & RTWS__JSON_W_KEYED))
        return rtws__json_wfail(w, RTWS_ERR_INVALID);
    rtws__json_wput(w, obj ? "}" : "]", 1);
    w->depth--;
    w->flags = 0;
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
            k = rtws__json_utf8(p, e);
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
    return w->err;
}

RTWS_API rtws_err rtws_json_write_key(rtws_json_writer *w, const char *key, size_t len) {
    if (w->err != RTWS_OK && w->err != RTWS_ERR_NOSPACE) return w->err;
    if (!w->depth || !rtws__json_wobj(w) || (w->flags & RTWS__JSON_W_KEYED))
        return rtws__json_wfail(w, RTWS_ERR_INVALID);
    if (!(w->flags & RTWS__JSON_W_FIRST)) rtws__json_wput(w, ",", 1);
    w->flags = RTWS__JSON_W_KEYED;
    rtws__json_wstr(w, key, len);
    rtws__json_wput(w, ":", 1);
    return w->err;
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
        if (w->err != RTWS_OK && w->err != RTWS_ERR_NOSPACE) return w->err;
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
    if (w->err != RTWS_OK && w->err != RTWS_ERR_NOSPACE) return w->err;
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
    if (w->err != RTWS_OK && w->err != RTWS_ERR_NOSPACE) return w->err;
    if (!t || (t->flags & RTWS_JSON_KEY)) return rtws__json_wfail(w, RTWS_ERR_INVALID);
    err = rtws__json_wval(w);
    if (err != RTWS_OK && err != RTWS_ERR_NOSPACE) return err;
    raw = rtws_json_raw(doc, i, &len);
    rtws__json_wput(w, raw, len);
    return rtws__json_wdone(w);
}

RTWS_API rtws_err rtws_json_writer_finish(rtws_json_writer *w, size_t *len) {
    if (len) *len = w->len;
    if (w->err != RTWS_OK && w->err != RTWS_ERR_NOSPACE) return w->err;
    if (w->depth || !(w->flags & RTWS__JSON_W_DONE)) return rtws__json_wfail(w, RTWS_ERR_INVALID);
    if (w->err == RTWS_OK && w->len < w->cap) w->buf[w->len] = '\0';
    return w->err;
}

/* === rtws: realtime ===================================================== */

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
