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
    int sys_errno;        /* ERROR from the host layer: errno of the failed call */
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

/* A reference-counted block of output bytes; private. */
typedef struct rtws__chunk rtws__chunk;
typedef struct rtws__seg {
    rtws__chunk *chunk;
    const uint8_t *p;
    size_t len;
} rtws__seg;

/* Fields are private: read them through the functions below. */
struct rtws_conn {
    rtws_config cfg;
    rtws_conn_state state;
    rtws_err err;                 /* sticky fatal error */
    uint64_t now;                 /* latest now_ms seen */
    uint64_t hs_deadline;         /* opening handshake; 0 until the first call */
    uint64_t close_deadline;      /* close handshake / lingering; 0 none */
    uint64_t last_rx, ping_at;    /* heartbeat */
    uint16_t close_code;          /* code of the close we sent */
    uint8_t close_sent, close_recvd, closed_evt, opened, want_close, eof;
    uint8_t depth, freed, in_recv, ping_out, drop_input, pad_[5];
    /* receive side: unread bytes are rbuf[rstart..rend) */
    uint8_t *rbuf;
    size_t rcap, rstart, rend, hs_scanned;
    rtws_frame_header h;          /* current frame, when have_h */
    uint8_t have_h, whole, msg_op, stream_first;
    uint32_t utf8;                /* UTF-8 state of the text message in progress */
    size_t pdone;                 /* payload bytes of h already unmasked and checked */
    size_t mask_pos;
    size_t mtotal, nfrag;         /* bytes and frames of the message in progress */
    uint8_t *mbuf;                /* reassembly buffer */
    size_t mcap;
    /* send side: a queue of segments, control frames ahead at frame boundaries */
    rtws__seg *segs;
    size_t segcap, seghead, nseg;
    size_t head_off;              /* bytes of segs[seghead] already written */
    size_t qbytes;                /* bytes in segs, head_off included */
    rtws__chunk *spare;
    uint8_t send_op;              /* opcode of a fragmented send in progress */
    uint8_t pong_len, ping_len;   /* pending control frames (payload length + 1; 0 none) */
    uint8_t pad2_;
    uint32_t send_utf8;
    uint8_t pong_buf[125], ping_buf[125];
    uint8_t cout[2 * RTWS_FRAME_HEADER_MAX + 250];
    uint16_t cout_len, cout_off;
    uint8_t keys[64];             /* masking keys, refilled from cfg.random */
    uint8_t keys_used;
    uint8_t hb_payload[8];        /* payload of our last heartbeat ping */
    uint32_t rtt_last;
    char *hs;                     /* client: accept value + offered protocols; server: protocol */
    void *data;
    void (*notify_)(rtws_conn *c); /* host layer: output was queued or the state ended */
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
/* Releases receive and reassembly buffers while no message is in progress
   (an idle connection then holds only its struct). */
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
/* layer 4: host                                                            */
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

typedef struct rtws_ctx_config {
    rtws_config conn;          /* template for every connection (role set per socket) */
    size_t max_connections;    /* 0: unlimited; sockets over it are closed at once */
    uint32_t timer_ms;         /* timers are checked at least this often (100) */
    uint32_t linger_ms;        /* a closing socket drains input this long (2000) */
    int backlog;               /* listen(2) backlog (SOMAXCONN) */
    rtws_socket_fn on_socket;  /* NULL for the pollfd style */
    void *socket_user;
} rtws_ctx_config;

/* NULL when out of memory. The config is copied. */
RTWS_API rtws_ctx *rtws_ctx_new(const rtws_ctx_config *cfg);
/* Closes every socket at once (no close handshake: see rtws_shutdown) and
   frees everything. */
RTWS_API void rtws_ctx_free(rtws_ctx *ctx);
/* Listens on host ("127.0.0.1", "::1", "localhost"; NULL or "" for every
   address, dual-stack where the OS allows) and port (0: the OS picks; the
   port is stored in *bound_port when not NULL). Blocking name resolution. */
RTWS_API rtws_err rtws_listen(rtws_ctx *ctx, const char *host, int port, int *bound_port);
/* Starts a client connection to url (ws://host[:port][/path][?query]; IPv6
   literals as ws://[::1]:8080/). Name resolution is getaddrinfo(), which
   blocks; callers who resolve asynchronously use rtws_connect_addr(). opts
   may be NULL; its host and path are taken from the url when NULL. Connect
   and handshake together are bounded by conn.handshake_timeout_ms. Returns
   the connection (events follow on conn.on_event) or NULL with *err set. */
RTWS_API rtws_conn *rtws_connect(rtws_ctx *ctx, const char *url, const rtws_client_opts *opts,
                                 uint64_t now_ms, rtws_err *err);
/* The same to an address already resolved (opts->host is required). */
RTWS_API rtws_conn *rtws_connect_addr(rtws_ctx *ctx, const struct sockaddr *addr, size_t addrlen,
                                      const rtws_client_opts *opts, uint64_t now_ms,
                                      rtws_err *err);

/* Style 1, poll(2): fills up to cap pollfds and returns how many sockets
   there are (call again with a bigger array when that is more than cap).
   The caller may append its own fds after them. */
RTWS_API int rtws_pollfds(rtws_ctx *ctx, struct pollfd *fds, int cap);
/* Milliseconds until the next timer, for poll's timeout (-1: none). */
RTWS_API int rtws_timeout_ms(rtws_ctx *ctx, uint64_t now_ms);
/* Handles the revents of the first n pollfds (those rtws_pollfds filled),
   then timers. fds the context does not know are skipped. */
RTWS_API void rtws_service(rtws_ctx *ctx, const struct pollfd *fds, int n, uint64_t now_ms);
/* Style 1 in one call: poll for at most max_ms, then service. Returns the
   number of sockets still open (listeners included), or -1 on a poll error. */
RTWS_API int rtws_run_once(rtws_ctx *ctx, int max_ms);

/* Style 2, readiness per fd (epoll, kqueue, io_uring, a game loop). */
RTWS_API void rtws_on_readable(rtws_ctx *ctx, int fd, uint64_t now_ms);
RTWS_API void rtws_on_writable(rtws_ctx *ctx, int fd, uint64_t now_ms);
/* Timers, and writes of output queued outside callbacks. Call it when
   rtws_timeout_ms() says, and after sending from outside a callback. */
RTWS_API void rtws_tick(rtws_ctx *ctx, uint64_t now_ms);

/* Stops listening and starts the close handshake on every connection (code,
   reason as rtws_conn_close). Keep running the loop until rtws_ctx_count()
   is 0 or your deadline passes, then rtws_ctx_free(). */
RTWS_API void rtws_shutdown(rtws_ctx *ctx, unsigned code, const char *reason, uint64_t now_ms);
/* Connections open or closing (listeners not counted). */
RTWS_API size_t rtws_ctx_count(const rtws_ctx *ctx);

/* For connections the context owns: its socket, its context, and the peer
   address as "ip:port" ("[ip]:port" for IPv6) written to buf. */
RTWS_API int rtws_conn_fd(const rtws_conn *c);
RTWS_API rtws_ctx *rtws_conn_ctx(const rtws_conn *c);
RTWS_API size_t rtws_conn_peer(const rtws_conn *c, char *buf, size_t cap);

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

#if defined(__GLIBC__) && !defined(_POSIX_C_SOURCE)
#error "rtws needs POSIX: make rtws.h the first include of this file, or compile it with -D_POSIX_C_SOURCE=200809L (or -D_GNU_SOURCE, or -std=gnu99)"
#endif

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

struct rtws__chunk {
    size_t refs, cap, len; /* the bytes follow the struct */
};
#define RTWS__CHUNK_DATA(ch) ((uint8_t *)((ch) + 1))
#define RTWS__CHUNK_SIZE 16384u   /* small frames are packed into chunks this big */
#define RTWS__RBUF_MIN 4096u      /* first receive buffer */
#define RTWS__RBUF_KEEP 65536u    /* buffers above this are released once empty */

static void rtws__config_defaults(rtws_config *c) {
    if (c->role != RTWS_SERVER) c->role = RTWS_CLIENT;
    c->max_frame = RTWS__DEF(c->max_frame, (size_t)16 << 20);
    c->max_message = RTWS__DEF(c->max_message, (size_t)16 << 20);
    c->max_fragments = RTWS__DEF(c->max_fragments, (size_t)1 << 17);
    c->max_handshake = RTWS__DEF(c->max_handshake, (size_t)8192);
    c->max_headers = RTWS__DEF(c->max_headers, (size_t)64);
    if (c->max_headers > RTWS_MAX_HEADERS) c->max_headers = RTWS_MAX_HEADERS;
    c->max_send_queue = RTWS__DEF(c->max_send_queue, (size_t)64 << 20);
    c->handshake_timeout_ms = RTWS__DEF(c->handshake_timeout_ms, 10000u);
    c->close_timeout_ms = RTWS__DEF(c->close_timeout_ms, 5000u);
    c->ping_interval_ms = RTWS__DEF(c->ping_interval_ms, 30000u);
    c->pong_timeout_ms = RTWS__DEF(c->pong_timeout_ms, 60000u);
#if !defined(RTWS_NO_SYSTEM_RANDOM)
    if (!c->random) c->random = rtws_random_system;
#endif
}

RTWS_API void rtws_conn_init(rtws_conn *c, const rtws_config *cfg) {
    memset(c, 0, sizeof *c);
    if (cfg) c->cfg = *cfg;
    rtws__config_defaults(&c->cfg);
    c->state = c->cfg.role == RTWS_SERVER ? RTWS_STATE_HANDSHAKE : RTWS_STATE_IDLE;
    c->keys_used = sizeof c->keys;
}

static void rtws__chunk_unref(rtws_conn *c, rtws__chunk *ch) {
    if (--ch->refs) return;
    if (!c->spare && ch->cap == RTWS__CHUNK_SIZE) {
        ch->refs = 1;
        ch->len = 0;
        c->spare = ch; /* keep one for the next send: no malloc per message */
        return;
    }
    rtws__free(&c->cfg.allocator, ch);
}

static void rtws__release(rtws_conn *c) {
    const rtws_allocator *a = &c->cfg.allocator;
    size_t i;
    for (i = 0; i < c->nseg; i++) rtws__chunk_unref(c, c->segs[(c->seghead + i) % c->segcap].chunk);
    rtws__free(a, c->spare);
    rtws__free(a, c->segs);
    rtws__free(a, c->rbuf);
    rtws__free(a, c->mbuf);
    rtws__free(a, c->hs);
    c->spare = NULL;
    c->segs = NULL;
    c->rbuf = c->mbuf = NULL;
    c->hs = NULL;
    c->nseg = c->segcap = c->seghead = c->qbytes = c->head_off = 0;
    c->rcap = c->rstart = c->rend = c->mcap = 0;
}

RTWS_API void rtws_conn_free(rtws_conn *c) {
    if (c->notify_ && !c->freed) {
        c->freed = 1; /* the host closes the socket and releases c */
        c->state = RTWS_STATE_CLOSED;
        c->notify_(c);
        return;
    }
    if (c->depth) { /* inside a callback: finish when the outer call returns */
        c->freed = 1;
        c->state = RTWS_STATE_CLOSED;
        return;
    }
    rtws__release(c);
    c->freed = 1;
    c->state = RTWS_STATE_CLOSED;
}

RTWS_API void rtws_conn_reset(rtws_conn *c) {
    rtws_config cfg = c->cfg;
    void *data = c->data;
    rtws__release(c);
    rtws_conn_init(c, &cfg);
    c->data = data;
}

RTWS_API const rtws_config *rtws_conn_config(const rtws_conn *c) { return &c->cfg; }
RTWS_API rtws_conn_state rtws_conn_get_state(const rtws_conn *c) { return c->state; }
RTWS_API rtws_err rtws_conn_error(const rtws_conn *c) { return c->err; }
RTWS_API void rtws_conn_set_data(rtws_conn *c, void *data) { c->data = data; }
RTWS_API void *rtws_conn_get_data(const rtws_conn *c) { return c->data; }

/* Every public call that may fire callbacks is bracketed by enter/leave, so a
   callback may free the connection: the release waits for the outermost leave. */
static void rtws__enter(rtws_conn *c, uint64_t now) {
    c->depth++;
    if (now > c->now) c->now = now;
    if (!c->hs_deadline && c->state <= RTWS_STATE_HANDSHAKE)
        c->hs_deadline = c->now + c->cfg.handshake_timeout_ms;
}
static void rtws__leave(rtws_conn *c) {
    if (--c->depth == 0 && c->freed) rtws__release(c);
}

static void rtws__emit(rtws_conn *c, rtws_event *ev) {
    if (!c->cfg.on_event || c->freed) return;
    c->depth++;
    c->cfg.on_event(c, ev, c->cfg.user);
    c->depth--;
}

static void rtws__event_init(rtws_event *ev, rtws_event_type type) {
    memset(ev, 0, sizeof *ev);
    ev->type = type;
}

static void rtws__emit_close(rtws_conn *c, unsigned code, const uint8_t *reason, size_t len,
                             int clean, int by_peer) {
    rtws_event ev;
    if (c->closed_evt || !c->opened) return;
    c->closed_evt = 1;
    rtws__event_init(&ev, RTWS_EV_CLOSE);
    ev.code = code;
    ev.data = reason;
    ev.len = len;
    ev.clean = clean;
    ev.by_peer = by_peer;
    rtws__emit(c, &ev);
}

static void rtws__emit_error(rtws_conn *c, rtws_err err, int status) {
    rtws_event ev;
    rtws__event_init(&ev, RTWS_EV_ERROR);
    ev.err = err;
    ev.status = status;
    rtws__emit(c, &ev);
}

/* ---- output queue ---- */

static int rtws__segs_reserve(rtws_conn *c) {
    if (c->nseg == c->segcap) {
        size_t ncap = c->segcap ? c->segcap * 2 : 8, i;
        rtws__seg *ns = (rtws__seg *)rtws__alloc(&c->cfg.allocator, ncap * sizeof *ns);
        if (!ns) return 0;
        for (i = 0; i < c->nseg; i++) ns[i] = c->segs[(c->seghead + i) % c->segcap];
        rtws__free(&c->cfg.allocator, c->segs);
        c->segs = ns;
        c->segcap = ncap;
        c->seghead = 0;
    }
    return 1;
}

/* Space for n more output bytes at the end of the queue: the tail chunk when
   it has room and is ours alone, else a new chunk. Returns where to write. */
static uint8_t *rtws__out_reserve(rtws_conn *c, size_t n, rtws__chunk **chp) {
    rtws__chunk *ch = NULL;
    if (c->nseg) {
        rtws__seg *t = &c->segs[(c->seghead + c->nseg - 1) % c->segcap];
        ch = t->chunk;
        if (ch->refs != 1 || ch->cap - ch->len < n || t->p + t->len != RTWS__CHUNK_DATA(ch) + ch->len)
            ch = NULL;
    }
    if (!ch) {
        if (!rtws__segs_reserve(c)) return NULL;
        if (n <= RTWS__CHUNK_SIZE && c->spare) {
            ch = c->spare;
            c->spare = NULL;
        } else {
            size_t cap = n <= RTWS__CHUNK_SIZE ? RTWS__CHUNK_SIZE : n;
            if (cap > SIZE_MAX - sizeof *ch) return NULL;
            ch = (rtws__chunk *)rtws__alloc(&c->cfg.allocator, sizeof *ch + cap);
            if (!ch) return NULL;
            ch->refs = 1;
            ch->cap = cap;
            ch->len = 0;
        }
        c->segs[(c->seghead + c->nseg) % c->segcap].chunk = ch;
        c->segs[(c->seghead + c->nseg) % c->segcap].p = RTWS__CHUNK_DATA(ch) + ch->len;
        c->segs[(c->seghead + c->nseg) % c->segcap].len = 0;
        c->nseg++;
    }
    *chp = ch;
    return RTWS__CHUNK_DATA(ch) + ch->len;
}

static void rtws__out_commit(rtws_conn *c, rtws__chunk *ch, size_t n) {
    rtws__seg *t = &c->segs[(c->seghead + c->nseg - 1) % c->segcap];
    ch->len += n;
    t->len += n;
    c->qbytes += n;
    if (c->notify_) c->notify_(c);
}

static int rtws__mask_key(rtws_conn *c, uint8_t key[4]) {
    if (c->keys_used + 4 > (int)sizeof c->keys) {
        if (!c->cfg.random || c->cfg.random(c->cfg.random_user, c->keys, sizeof c->keys) != 0)
            return 0;
        c->keys_used = 0;
    }
    memcpy(key, c->keys + c->keys_used, 4);
    c->keys_used = (uint8_t)(c->keys_used + 4);
    return 1;
}

/* Writes one frame into the data queue; client frames get a fresh mask key. */
static rtws_err rtws__queue_frame(rtws_conn *c, int fin, rtws_opcode op, const void *data,
                                  size_t len) {
    uint8_t key[4], *w;
    rtws__chunk *ch;
    size_t hl;
    int client = c->cfg.role == RTWS_CLIENT;
    if (len > SIZE_MAX - RTWS_FRAME_HEADER_MAX) return RTWS_ERR_TOO_BIG;
    if (client && !rtws__mask_key(c, key)) return RTWS_ERR_RANDOM;
    w = rtws__out_reserve(c, RTWS_FRAME_HEADER_MAX + len, &ch);
    if (!w) return RTWS_ERR_NOMEM;
    hl = rtws_frame_header_encode(w, fin, op, len, client ? key : NULL);
    if (len) memcpy(w + hl, data, len);
    if (client && len) rtws_mask(w + hl, len, key, 0);
    rtws__out_commit(c, ch, hl + len);
    return RTWS_OK;
}

static void rtws__seg_pop(rtws_conn *c) {
    rtws__seg *s = &c->segs[c->seghead];
    c->qbytes -= s->len;
    rtws__chunk_unref(c, s->chunk);
    c->seghead = (c->seghead + 1) % c->segcap;
    c->nseg--;
    c->head_off = 0;
}

/* Drops queued data that has not started to go out (failing the connection). */
static void rtws__drop_unsent(rtws_conn *c) {
    while (c->nseg > (c->head_off ? 1u : 0u)) {
        size_t last = (c->seghead + c->nseg - 1) % c->segcap;
        c->qbytes -= c->segs[last].len;
        rtws__chunk_unref(c, c->segs[last].chunk);
        c->nseg--;
    }
    c->pong_len = c->ping_len = 0;
}

/* Pending pong/ping move into cout when the data queue is at a frame boundary
   (every segment holds whole frames), so heartbeats pass a full data queue. */
static void rtws__promote_control(rtws_conn *c) {
    size_t n = 0;
    if (c->cout_off < c->cout_len || c->head_off) return;
    if (!c->pong_len && !c->ping_len) return;
    if (c->pong_len) {
        uint8_t key[4];
        size_t len = (size_t)c->pong_len - 1;
        int client = c->cfg.role == RTWS_CLIENT;
        if (client && !rtws__mask_key(c, key)) return;
        n += rtws_frame_header_encode(c->cout + n, 1, RTWS_OP_PONG, len, client ? key : NULL);
        memcpy(c->cout + n, c->pong_buf, len);
        if (client) rtws_mask(c->cout + n, len, key, 0);
        n += len;
        c->pong_len = 0;
    }
    if (c->ping_len) {
        uint8_t key[4];
        size_t len = (size_t)c->ping_len - 1;
        int client = c->cfg.role == RTWS_CLIENT;
        if (client && !rtws__mask_key(c, key)) return;
        n += rtws_frame_header_encode(c->cout + n, 1, RTWS_OP_PING, len, client ? key : NULL);
        memcpy(c->cout + n, c->ping_buf, len);
        if (client) rtws_mask(c->cout + n, len, key, 0);
        n += len;
        c->ping_len = 0;
    }
    c->cout_len = (uint16_t)n;
    c->cout_off = 0;
}

RTWS_API int rtws_conn_out_iov(rtws_conn *c, rtws_iov *iov, int max) {
    int n = 0;
    size_t i;
    if (c->freed || c->eof) return 0;
    rtws__promote_control(c);
    if (c->cout_off < c->cout_len && n < max) {
        iov[n].base = c->cout + c->cout_off;
        iov[n].len = (size_t)(c->cout_len - c->cout_off);
        n++;
    }
    for (i = 0; i < c->nseg && n < max; i++) {
        const rtws__seg *s = &c->segs[(c->seghead + i) % c->segcap];
        size_t skip = i == 0 ? c->head_off : 0;
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
    if (c->cout_off < c->cout_len) {
        size_t k = RTWS__MIN(n, (size_t)(c->cout_len - c->cout_off));
        c->cout_off = (uint16_t)(c->cout_off + k);
        n -= k;
        if (c->cout_off == c->cout_len) c->cout_off = c->cout_len = 0;
    }
    while (n && c->nseg) {
        rtws__seg *s = &c->segs[c->seghead];
        size_t k = RTWS__MIN(n, s->len - c->head_off);
        c->head_off += k;
        n -= k;
        if (c->head_off == s->len) rtws__seg_pop(c);
    }
    RTWS_ASSERT(n == 0); /* acknowledged more than was lent */
    while (c->nseg && c->segs[c->seghead].len == c->head_off) rtws__seg_pop(c);
}

RTWS_API size_t rtws_conn_out_pending(const rtws_conn *c) {
    size_t n = (size_t)(c->cout_len - c->cout_off) + c->qbytes - c->head_off;
    if (c->pong_len) n += (size_t)c->pong_len + 5;
    if (c->ping_len) n += (size_t)c->ping_len + 5;
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
    c->close_sent = 1;
    c->close_code = (uint16_t)code;
    return rtws__queue_frame(c, 1, RTWS_OP_CLOSE, p, n);
}

/* The connection is over: the host flushes what is queued, then closes. */
static void rtws__finish(rtws_conn *c) {
    c->state = RTWS_STATE_CLOSED;
    c->want_close = 1;
    c->drop_input = 1;
    if (c->notify_) c->notify_(c);
    if (!c->close_deadline || c->close_deadline > c->now + c->cfg.close_timeout_ms)
        c->close_deadline = c->now + c->cfg.close_timeout_ms;
}

/* RFC 6455 §7.1.7 "Fail the WebSocket Connection": report, send a close with
   the code when the connection was open, then close without waiting. */
static void rtws__fail(rtws_conn *c, rtws_err err, unsigned code) {
    if (c->state == RTWS_STATE_CLOSED) return;
    c->err = err;
    rtws__emit_error(c, err, 0);
    if (c->opened && !c->close_sent) {
        rtws__drop_unsent(c);
        rtws__queue_close(c, code, NULL, 0);
    }
    rtws__emit_close(c, c->opened && code ? code : (unsigned)RTWS_CLOSE_ABNORMAL, NULL, 0, 0, 0);
    rtws__finish(c);
}

/* ---- opening handshake ---- */

static rtws_err rtws__queue_bytes(rtws_conn *c, const char *s, size_t n) {
    rtws__chunk *ch;
    uint8_t *w = rtws__out_reserve(c, n, &ch);
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

static const char *rtws__status_text(int status) {
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return status >= 500 ? "Internal Server Error" : "Error";
    }
}

/* Refuses the upgrade with an HTTP error and a short text body. */
static void rtws__refuse(rtws_conn *c, int status, const char *reason) {
    char head[512], num[32];
    size_t n = 0, blen;
    if (status < 400 || status > 599) status = 500;
    if (!reason) reason = rtws__status_text(status);
    blen = strlen(reason) + 1;
    n = RTWS__CATZ(head, n, sizeof head, "HTTP/1.1 ");
    num[0] = (char)('0' + status / 100);
    num[1] = (char)('0' + status / 10 % 10);
    num[2] = (char)('0' + status % 10);
    num[3] = ' ';
    n = rtws__cat(head, n, sizeof head, num, 4);
    n = RTWS__CATZ(head, n, sizeof head, rtws__status_text(status));
    n = RTWS__CATZ(head, n, sizeof head, "\r\nContent-Type: text/plain\r\nConnection: close\r\n");
    if (status == 426) n = RTWS__CATZ(head, n, sizeof head, "Sec-WebSocket-Version: 13\r\n");
    n = RTWS__CATZ(head, n, sizeof head, "Content-Length: ");
    {
        size_t k = 0, v = blen;
        char tmp[24];
        do {
            tmp[k++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        while (k) num[0] = tmp[--k], n = rtws__cat(head, n, sizeof head, num, 1);
    }
    n = RTWS__CATZ(head, n, sizeof head, "\r\n\r\n");
    n = RTWS__CATZ(head, n, sizeof head, reason);
    n = rtws__cat(head, n, sizeof head, "\n", 1);
    if (n <= sizeof head) rtws__queue_bytes(c, head, n);
    c->err = RTWS_ERR_HANDSHAKE;
    rtws__emit_error(c, RTWS_ERR_HANDSHAKE, status);
    rtws__finish(c);
}

static int rtws__valid_token_list(const char *s) {
    for (; *s; s++)
        if (!rtws__is_tchar((unsigned char)*s) && *s != ',' && *s != ' ') return 0;
    return 1;
}

static void rtws__open(rtws_conn *c) {
    rtws_event ev;
    c->state = RTWS_STATE_OPEN;
    c->opened = 1;
    c->last_rx = c->now;
    c->ping_at = 0;
    rtws__event_init(&ev, RTWS_EV_OPEN);
    if (c->cfg.role == RTWS_SERVER && c->hs) {
        ev.protocol.p = c->hs;
        ev.protocol.len = strlen(c->hs);
    } else if (c->cfg.role == RTWS_CLIENT && c->hs && c->hs[29]) {
        ev.protocol.p = c->hs + 29 + strlen(c->hs + 29) + 1;
        ev.protocol.len = strlen(ev.protocol.p);
    }
    rtws__emit(c, &ev);
}

static void rtws__server_handshake(rtws_conn *c, size_t head) {
    rtws_http req;
    rtws_upgrade u;
    size_t off = 0, n = 0;
    const char *proto = NULL;
    char resp[512];
    int status;
    if (rtws_http_parse_request((const char *)c->rbuf + c->rstart, head, &req,
                                c->cfg.max_headers, &off) != RTWS_OK) {
        rtws__refuse(c, off >= head ? 431 : 400, "malformed HTTP request");
        return;
    }
    status = rtws_upgrade_check(&req, &u);
    if (status != 101) {
        rtws__refuse(c, status, u.reason);
        return;
    }
    if (c->cfg.allowed_origins) {
        /* cross-site WebSocket hijacking: browsers send Origin and let any page
           connect to any host, loopback included */
        const char *const *o = c->cfg.allowed_origins;
        for (; *o; o++)
            if (u.origin.len && rtws__str_ieq(u.origin, *o)) break;
        if (!*o) {
            rtws__refuse(c, 403, "origin not allowed");
            return;
        }
    }
    if (c->cfg.on_accept) {
        int r;
        c->depth++;
        r = c->cfg.on_accept(c, &req, &proto, c->cfg.user);
        c->depth--;
        if (c->freed) return;
        if (r) {
            rtws__refuse(c, r, NULL);
            return;
        }
        if (proto && (!*proto || strlen(proto) > 256 || !rtws__valid_token_list(proto))) {
            rtws__refuse(c, 500, "invalid subprotocol chosen");
            return;
        }
    }
    n = RTWS__CATZ(resp, n, sizeof resp,
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: ");
    {
        char acc[29];
        rtws_ws_accept(u.key.p, u.key.len, acc);
        n = rtws__cat(resp, n, sizeof resp, acc, 28);
    }
    if (proto) {
        size_t pl = strlen(proto);
        n = RTWS__CATZ(resp, n, sizeof resp, "\r\nSec-WebSocket-Protocol: ");
        n = rtws__cat(resp, n, sizeof resp, proto, pl);
        c->hs = (char *)rtws__alloc(&c->cfg.allocator, pl + 1);
        if (!c->hs) {
            rtws__fail(c, RTWS_ERR_NOMEM, 0);
            return;
        }
        memcpy(c->hs, proto, pl + 1);
    }
    n = RTWS__CATZ(resp, n, sizeof resp, "\r\n\r\n");
    if (n > sizeof resp || rtws__queue_bytes(c, resp, n) != RTWS_OK) {
        rtws__fail(c, RTWS_ERR_NOMEM, 0);
        return;
    }
    c->rstart += head;
    rtws__open(c);
}

static int rtws__has_crlf(const char *s) { return s && strpbrk(s, "\r\n") != NULL; }

RTWS_API rtws_err rtws_conn_client_start(rtws_conn *c, const rtws_client_opts *o,
                                         uint64_t now_ms) {
    uint8_t raw[16];
    char key[25], *req;
    size_t n = 0, cap, plen;
    const char *path = o && o->path && *o->path ? o->path : "/";
    rtws_err e = RTWS_OK;
    if (c->cfg.role != RTWS_CLIENT || c->state != RTWS_STATE_IDLE || !o || !o->host ||
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
    rtws__enter(c, now_ms);
    c->hs_deadline = c->now + c->cfg.handshake_timeout_ms;
    if (!c->cfg.random || c->cfg.random(c->cfg.random_user, raw, sizeof raw) != 0) {
        e = RTWS_ERR_RANDOM;
        goto out;
    }
    rtws_base64_encode(raw, 16, key, sizeof key);
    /* c->hs = expected accept (28 chars + NUL), then the offered protocols */
    plen = o->protocols ? strlen(o->protocols) : 0;
    c->hs = (char *)rtws__alloc(&c->cfg.allocator, 29 + plen + 1 + plen + 1);
    if (!c->hs) {
        e = RTWS_ERR_NOMEM;
        goto out;
    }
    rtws_ws_accept(key, 24, c->hs);
    memcpy(c->hs + 29, o->protocols ? o->protocols : "", plen + 1);
    cap = 256 + strlen(path) + strlen(o->host) + plen + (o->origin ? strlen(o->origin) : 0) +
          (o->authorization ? strlen(o->authorization) : 0) +
          (o->extra_headers ? strlen(o->extra_headers) : 0);
    req = (char *)rtws__alloc(&c->cfg.allocator, cap);
    if (!req) {
        e = RTWS_ERR_NOMEM;
        goto out;
    }
    n = RTWS__CATZ(req, n, cap, "GET ");
    n = RTWS__CATZ(req, n, cap, path);
    n = RTWS__CATZ(req, n, cap, " HTTP/1.1\r\nHost: ");
    n = RTWS__CATZ(req, n, cap, o->host);
    n = RTWS__CATZ(req, n, cap, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    n = rtws__cat(req, n, cap, key, 24);
    n = RTWS__CATZ(req, n, cap, "\r\nSec-WebSocket-Version: 13\r\n");
    if (plen) {
        n = RTWS__CATZ(req, n, cap, "Sec-WebSocket-Protocol: ");
        n = RTWS__CATZ(req, n, cap, o->protocols);
        n = RTWS__CATZ(req, n, cap, "\r\n");
    }
    if (o->origin) {
        n = RTWS__CATZ(req, n, cap, "Origin: ");
        n = RTWS__CATZ(req, n, cap, o->origin);
        n = RTWS__CATZ(req, n, cap, "\r\n");
    }
    if (o->authorization) {
        n = RTWS__CATZ(req, n, cap, "Authorization: ");
        n = RTWS__CATZ(req, n, cap, o->authorization);
        n = RTWS__CATZ(req, n, cap, "\r\n");
    }
    if (o->extra_headers) n = RTWS__CATZ(req, n, cap, o->extra_headers);
    n = RTWS__CATZ(req, n, cap, "\r\n");
    e = n <= cap ? rtws__queue_bytes(c, req, n) : RTWS_ERR_NOMEM;
    rtws__free(&c->cfg.allocator, req);
    if (e == RTWS_OK) c->state = RTWS_STATE_HANDSHAKE;
out:
    rtws__leave(c);
    return e;
}

static void rtws__client_handshake(rtws_conn *c, size_t head) {
    rtws_http res;
    size_t off;
    const rtws_str *v;
    if (rtws_http_parse_response((const char *)c->rbuf + c->rstart, head, &res,
                                 c->cfg.max_headers, &off) != RTWS_OK) {
        c->err = RTWS_ERR_HANDSHAKE;
        rtws__emit_error(c, RTWS_ERR_HANDSHAKE, 0);
        rtws__finish(c);
        return;
    }
    if (res.status != 101) {
        c->err = RTWS_ERR_HANDSHAKE;
        rtws__emit_error(c, RTWS_ERR_HANDSHAKE, res.status);
        rtws__finish(c);
        return;
    }
    v = rtws_http_header(&res, "Sec-WebSocket-Accept");
    if (!rtws_http_has_token(&res, "Upgrade", "websocket") ||
        !rtws_http_has_token(&res, "Connection", "Upgrade") || !v || v->len != 28 ||
        memcmp(v->p, c->hs, 28) != 0 || rtws_http_header(&res, "Sec-WebSocket-Extensions"))
        goto bad;
    v = rtws_http_header(&res, "Sec-WebSocket-Protocol");
    {
        /* after the offer: the protocol the server picked (empty when none) */
        char *offer = c->hs + 29, *pick = offer + strlen(offer) + 1;
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
    c->rstart += head;
    rtws__open(c);
    return;
bad:
    c->err = RTWS_ERR_HANDSHAKE;
    rtws__emit_error(c, RTWS_ERR_HANDSHAKE, 101);
    rtws__finish(c);
}

/* ---- receive side ---- */

/* Contiguous bytes the current unit needs at rstart: a handshake head, a
   frame header, a control frame, or a whole single-frame message (delivered
   from rbuf without a copy). Other payloads stream through. */
static size_t rtws__rneed(const rtws_conn *c) {
    if (c->state <= RTWS_STATE_HANDSHAKE) return c->cfg.max_handshake + 1;
    if (!c->have_h) return RTWS_FRAME_HEADER_MAX;
    if (c->h.opcode >= 8 || c->whole) return (size_t)c->h.len;
    return 1;
}

/* Makes room for at least want more bytes after rend, within the caps. */
static int rtws__rreserve(rtws_conn *c, size_t want) {
    size_t used = c->rend - c->rstart, need, limit, ncap;
    uint8_t *nb;
    limit = RTWS__DEF(c->cfg.max_message, 1) + RTWS_FRAME_HEADER_MAX;
    if (c->cfg.max_handshake + 1 > limit) limit = c->cfg.max_handshake + 1;
    limit += RTWS__RBUF_KEEP;
    if (want > limit - used) want = limit - used;
    if (c->rcap - c->rend >= want) return 1;
    if (c->rstart && c->rcap - used >= want) {
        memmove(c->rbuf, c->rbuf + c->rstart, used);
        c->rend = used;
        c->rstart = 0;
        return 1;
    }
    need = used + want;
    ncap = c->rcap ? c->rcap : RTWS__RBUF_MIN;
    while (ncap < need) ncap = ncap > limit / 2 ? limit : ncap * 2;
    if (c->rstart) {
        memmove(c->rbuf, c->rbuf + c->rstart, used);
        c->rend = used;
        c->rstart = 0;
    }
    nb = (uint8_t *)rtws__realloc(&c->cfg.allocator, c->rbuf, ncap);
    if (!nb) return 0;
    c->rbuf = nb;
    c->rcap = ncap;
    return 1;
}

RTWS_API uint8_t *rtws_conn_recv_buf(rtws_conn *c, size_t min_len, size_t *cap) {
    size_t want, need, have;
    *cap = 0;
    if (c->freed) return NULL;
    need = rtws__rneed(c);
    have = c->rend - c->rstart;
    want = need > have ? need - have : 0;
    if (want < min_len) want = min_len;
    if (want < RTWS__RBUF_MIN) want = RTWS__RBUF_MIN;
    if (!rtws__rreserve(c, want)) return NULL;
    *cap = c->rcap - c->rend;
    return c->rbuf + c->rend;
}

static void rtws__deliver(rtws_conn *c, rtws_opcode op, const uint8_t *p, size_t n, int first,
                          int fin) {
    rtws_event ev;
    rtws__event_init(&ev, RTWS_EV_MESSAGE);
    ev.opcode = op;
    ev.data = p;
    ev.len = n;
    ev.first = first;
    ev.fin = fin;
    rtws__emit(c, &ev);
}

static void rtws__on_control(rtws_conn *c, uint8_t *p, size_t n) {
    rtws_event ev;
    switch (c->h.opcode) {
    case RTWS_OP_PING:
        /* §5.5.3: answer with the same payload; only the latest ping needs an
           answer, so a ping flood overwrites one slot instead of queueing */
        if (!c->close_sent) {
            memcpy(c->pong_buf, p, n);
            c->pong_len = (uint8_t)(n + 1);
            if (c->notify_) c->notify_(c);
        }
        rtws__event_init(&ev, RTWS_EV_PING);
        ev.data = p;
        ev.len = n;
        rtws__emit(c, &ev);
        break;
    case RTWS_OP_PONG:
        rtws__event_init(&ev, RTWS_EV_PONG);
        ev.data = p;
        ev.len = n;
        if (c->ping_out && n == sizeof c->hb_payload && !memcmp(p, c->hb_payload, n)) {
            c->ping_out = 0;
            c->rtt_last = (uint32_t)RTWS__MIN(c->now - c->ping_at, (uint64_t)UINT32_MAX);
            ev.rtt_ms = c->rtt_last;
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
        c->close_recvd = 1;
        if (!c->close_sent) {
            /* echo the code (§5.5.1) after what is already queued */
            rtws__queue_close(c, code == RTWS_CLOSE_NO_STATUS ? 0 : code, NULL, 0);
            rtws__emit_close(c, code, n > 2 ? p + 2 : NULL, n > 2 ? n - 2 : 0, 1, 1);
        } else {
            rtws__emit_close(c, code, n > 2 ? p + 2 : NULL, n > 2 ? n - 2 : 0, 1, 0);
        }
        c->state = RTWS_STATE_CLOSED;
        c->drop_input = 1;
        /* §7.1.1: the server closes TCP first; a client waits for that, with
           a deadline */
        c->close_deadline = c->now + c->cfg.close_timeout_ms;
        if (c->cfg.role == RTWS_SERVER) c->want_close = 1;
    }
    }
}

/* Unmasks and checks newly arrived payload bytes p[0..n) of the current frame. */
static int rtws__payload(rtws_conn *c, uint8_t *p, size_t n) {
    if (c->h.masked) c->mask_pos = rtws_mask(p, n, c->h.mask, c->mask_pos);
    if (c->msg_op == RTWS_OP_TEXT && c->h.opcode < 8 && !c->cfg.no_utf8_check) {
        size_t bad;
        if (rtws_utf8_validate(&c->utf8, p, n, &bad) != RTWS_OK) {
            rtws__fail(c, RTWS_ERR_UTF8, RTWS_CLOSE_INVALID_DATA); /* fail fast */
            return 0;
        }
    }
    return 1;
}

static int rtws__utf8_end_ok(rtws_conn *c) {
    if (c->msg_op == RTWS_OP_TEXT && c->utf8 && !c->cfg.no_utf8_check) {
        rtws__fail(c, RTWS_ERR_UTF8, RTWS_CLOSE_INVALID_DATA);
        return 0;
    }
    return 1;
}

static void rtws__shrink(rtws_conn *c) {
    if (c->mcap > RTWS__RBUF_KEEP && !c->msg_op) {
        rtws__free(&c->cfg.allocator, c->mbuf);
        c->mbuf = NULL;
        c->mcap = 0;
    }
    if (c->rcap > RTWS__RBUF_KEEP && c->rstart == c->rend) {
        rtws__free(&c->cfg.allocator, c->rbuf);
        c->rbuf = NULL;
        c->rcap = c->rstart = c->rend = 0;
    }
}

/* Parses and acts on whatever complete units rbuf holds. */
static void rtws__process(rtws_conn *c) {
    while (!c->freed && !c->drop_input) {
        size_t avail = c->rend - c->rstart;
        uint8_t *p = c->rbuf + c->rstart;
        if (c->state == RTWS_STATE_HANDSHAKE) {
            size_t head = rtws_http_head_end((const char *)p, avail, &c->hs_scanned);
            if (!head) {
                if (avail > c->cfg.max_handshake) {
                    if (c->cfg.role == RTWS_SERVER) {
                        rtws__refuse(c, 431, "request head exceeds the limit");
                    } else {
                        c->err = RTWS_ERR_HANDSHAKE;
                        rtws__emit_error(c, RTWS_ERR_HANDSHAKE, 0);
                        rtws__finish(c);
                    }
                }
                return;
            }
            if (head > c->cfg.max_handshake) {
                if (c->cfg.role == RTWS_SERVER) rtws__refuse(c, 431, "request head exceeds the limit");
                else rtws__finish(c);
                return;
            }
            if (c->cfg.role == RTWS_SERVER) rtws__server_handshake(c, head);
            else rtws__client_handshake(c, head);
            continue;
        }
        if (c->state != RTWS_STATE_OPEN && c->state != RTWS_STATE_CLOSING) return;
        if (!c->have_h) {
            rtws_err e = rtws_frame_header_decode(p, avail, &c->h);
            if (e == RTWS_EAGAIN) break;
            if (e == RTWS_OK)
                e = rtws_frame_check(&c->h, c->cfg.role, c->msg_op != 0, c->cfg.max_frame);
            if (e == RTWS_OK && c->h.opcode < 8) {
                /* caps checked before any byte of the payload is stored */
                if (c->h.opcode != RTWS_OP_CONT) {
                    c->msg_op = c->h.opcode;
                    c->mtotal = 0;
                    c->nfrag = 0;
                    c->utf8 = 0;
                    c->stream_first = 1;
                }
                if (++c->nfrag > c->cfg.max_fragments ||
                    c->h.len > (uint64_t)(c->cfg.max_message - c->mtotal))
                    e = RTWS_ERR_TOO_BIG;
                c->whole = (uint8_t)(c->h.fin && c->nfrag == 1 && !c->cfg.stream);
            }
            if (e != RTWS_OK) {
                rtws__fail(c, e, e == RTWS_ERR_TOO_BIG ? RTWS_CLOSE_TOO_BIG
                                                        : RTWS_CLOSE_PROTOCOL_ERROR);
                return;
            }
            c->rstart += c->h.header_len;
            c->have_h = 1;
            c->pdone = 0;
            c->mask_pos = 0;
            continue;
        }
        if (c->h.opcode >= 8) {
            size_t n = (size_t)c->h.len;
            if (avail < n) break;
            if (c->h.masked) rtws_mask(p, n, c->h.mask, 0);
            c->rstart += n;
            c->have_h = 0;
            rtws__on_control(c, p, n);
            continue;
        }
        if (c->whole) {
            size_t n = (size_t)c->h.len, k = RTWS__MIN(avail, n);
            if (k > c->pdone) {
                if (!rtws__payload(c, p + c->pdone, k - c->pdone)) return;
                c->pdone = k;
            }
            if (k < n) break;
            if (!rtws__utf8_end_ok(c)) return;
            c->rstart += n;
            c->have_h = 0;
            c->msg_op = 0;
            rtws__deliver(c, (rtws_opcode)c->h.opcode, p, n, 1, 1);
            continue;
        }
        {
            size_t rem = (size_t)c->h.len - c->pdone, k = RTWS__MIN(avail, rem);
            int frame_end = k == rem, msg_end = frame_end && c->h.fin;
            if (k == 0 && !frame_end) break;
            if (!rtws__payload(c, p, k)) return;
            c->pdone += k;
            c->rstart += k;
            if (frame_end) c->have_h = 0;
            if (msg_end && !rtws__utf8_end_ok(c)) return;
            if (c->cfg.stream) {
                uint8_t op = c->msg_op;
                int first = c->stream_first;
                c->mtotal += k;
                if (msg_end) c->msg_op = 0;
                if (k || msg_end) {
                    c->stream_first = 0;
                    rtws__deliver(c, (rtws_opcode)op, p, k, first, msg_end);
                }
                continue;
            }
            if (k) {
                if (c->mtotal + k > c->mcap) {
                    size_t ncap = c->mcap ? c->mcap : 4096;
                    uint8_t *nb;
                    while (ncap < c->mtotal + k) ncap *= 2;
                    if (ncap > c->cfg.max_message) ncap = c->cfg.max_message;
                    nb = (uint8_t *)rtws__realloc(&c->cfg.allocator, c->mbuf, ncap);
                    if (!nb) {
                        rtws__fail(c, RTWS_ERR_NOMEM, RTWS_CLOSE_INTERNAL);
                        return;
                    }
                    c->mbuf = nb;
                    c->mcap = ncap;
                }
                memcpy(c->mbuf + c->mtotal, p, k);
                c->mtotal += k;
            }
            if (msg_end) {
                uint8_t op = c->msg_op;
                c->msg_op = 0;
                rtws__deliver(c, (rtws_opcode)op, c->mbuf, c->mtotal, 1, 1);
                if (!c->msg_op) rtws__shrink(c);
            }
        }
    }
    if (!c->freed && c->rstart == c->rend) {
        c->rstart = c->rend = 0;
        rtws__shrink(c);
    }
}

RTWS_API rtws_err rtws_conn_recv_commit(rtws_conn *c, size_t n, uint64_t now_ms) {
    rtws_err e;
    if (c->freed) return RTWS_ERR_CLOSED;
    if (c->in_recv) return RTWS_ERR_INVALID; /* no recursive feeding from a callback */
    RTWS_ASSERT(n <= c->rcap - c->rend);     /* committed more than recv_buf lent */
    rtws__enter(c, now_ms);
    c->in_recv = 1;
    if (c->state == RTWS_STATE_IDLE) {
        c->err = RTWS_ERR_INVALID; /* a client must call rtws_conn_client_start first */
        c->in_recv = 0;
        rtws__leave(c);
        return RTWS_ERR_INVALID;
    }
    if (n) c->last_rx = c->now;
    if (c->drop_input) {
        n = 0; /* §1.4: after the close handshake, data is ignored */
    }
    c->rend += n;
    if (!c->drop_input) rtws__process(c);
    if (c->drop_input && !c->freed) c->rstart = c->rend = 0;
    c->in_recv = 0;
    if (c->freed) e = RTWS_ERR_CLOSED;
    else if (c->err) e = c->err;
    else if (c->state == RTWS_STATE_HANDSHAKE || c->have_h || c->msg_op || c->rstart != c->rend)
        e = RTWS_EAGAIN; /* in the middle of a head, frame or message */
    else e = RTWS_OK;
    rtws__leave(c);
    return e;
}

RTWS_API rtws_err rtws_conn_recv(rtws_conn *c, const void *data, size_t len, uint64_t now_ms,
                                 size_t *used) {
    const uint8_t *d = (const uint8_t *)data;
    size_t done = 0;
    rtws_err e = c->err ? c->err : RTWS_EAGAIN;
    if (used) *used = 0;
    if (c->freed) return RTWS_ERR_CLOSED;
    if (c->in_recv) return RTWS_ERR_INVALID;
    if (len == 0) return e;
    while (done < len) {
        size_t cap, k;
        uint8_t *buf;
        if (c->drop_input || c->err) {
            done = len; /* ignored: the connection is closing or failed */
            break;
        }
        buf = rtws_conn_recv_buf(c, RTWS__MIN(len - done, (size_t)1 << 20), &cap);
        if (!buf || !cap) {
            rtws__enter(c, now_ms);
            rtws__fail(c, RTWS_ERR_NOMEM, RTWS_CLOSE_INTERNAL);
            rtws__leave(c);
            e = RTWS_ERR_NOMEM;
            break;
        }
        k = RTWS__MIN(cap, len - done);
        memcpy(buf, d + done, k);
        done += k;
        e = rtws_conn_recv_commit(c, k, now_ms);
        if (c->freed) break;
    }
    if (used) *used = done;
    if (c->freed) return RTWS_ERR_CLOSED;
    return c->err ? c->err : e;
}

RTWS_API void rtws_conn_eof(rtws_conn *c, uint64_t now_ms) {
    if (c->freed) return;
    rtws__enter(c, now_ms);
    c->eof = 1;
    if (c->state != RTWS_STATE_CLOSED) {
        c->err = c->state <= RTWS_STATE_HANDSHAKE ? RTWS_ERR_HANDSHAKE : RTWS_ERR_ABNORMAL;
        rtws__emit_error(c, c->err, 0);
        rtws__emit_close(c, RTWS_CLOSE_ABNORMAL, NULL, 0, 0, 0);
    }
    c->state = RTWS_STATE_CLOSED;
    c->want_close = 1;
    c->drop_input = 1;
    rtws__leave(c);
}

RTWS_API void rtws_conn_trim(rtws_conn *c) {
    if (c->have_h || c->msg_op || c->rstart != c->rend) return;
    rtws__free(&c->cfg.allocator, c->rbuf);
    rtws__free(&c->cfg.allocator, c->mbuf);
    rtws__free(&c->cfg.allocator, c->spare);
    c->rbuf = c->mbuf = NULL;
    c->spare = NULL;
    c->rcap = c->rstart = c->rend = c->mcap = 0;
}

RTWS_API unsigned rtws_conn_want(const rtws_conn *c) {
    unsigned w = 0;
    int pending = rtws_conn_out_pending(c) > 0;
    if (c->freed || c->eof) return c->freed ? 0u : (unsigned)RTWS_WANT_CLOSE;
    if (c->state == RTWS_STATE_IDLE) return 0;
    if (pending) w |= RTWS_WANT_WRITE;
    if (c->want_close) return pending ? w : (unsigned)RTWS_WANT_CLOSE;
    return w | RTWS_WANT_READ;
}

RTWS_API uint64_t rtws_conn_deadline(const rtws_conn *c) {
    uint64_t d = UINT64_MAX;
    if (c->freed || c->eof) return d;
    if (c->state <= RTWS_STATE_HANDSHAKE && c->state != RTWS_STATE_IDLE) {
        d = c->hs_deadline ? c->hs_deadline : c->now;
    } else if (c->close_sent || c->state == RTWS_STATE_CLOSED) {
        if (c->close_deadline) d = c->close_deadline;
    } else if (c->state == RTWS_STATE_OPEN && !c->cfg.heartbeat_off) {
        uint64_t base = c->last_rx > c->ping_at ? c->last_rx : c->ping_at;
        if (c->ping_out && c->last_rx <= c->ping_at) d = c->ping_at + c->cfg.pong_timeout_ms;
        else d = base + c->cfg.ping_interval_ms;
    }
    return d;
}

RTWS_API void rtws_conn_tick(rtws_conn *c, uint64_t now_ms) {
    if (c->freed) return;
    rtws__enter(c, now_ms);
    now_ms = c->now;
    if (c->state == RTWS_STATE_HANDSHAKE) {
        if (now_ms >= c->hs_deadline) {
            c->err = RTWS_ERR_TIMEOUT;
            rtws__emit_error(c, RTWS_ERR_TIMEOUT, 0);
            rtws__drop_unsent(c);
            rtws__finish(c);
            c->close_deadline = now_ms; /* nothing worth flushing */
        }
    } else if (c->close_sent || c->state == RTWS_STATE_CLOSED) {
        if (c->close_deadline && now_ms >= c->close_deadline) {
            if (!c->close_recvd && c->state != RTWS_STATE_CLOSED) {
                c->err = RTWS_ERR_TIMEOUT; /* our close was never answered */
                rtws__emit_error(c, RTWS_ERR_TIMEOUT, 0);
                rtws__emit_close(c, RTWS_CLOSE_ABNORMAL, NULL, 0, 0, 0);
            }
            c->state = RTWS_STATE_CLOSED;
            c->eof = 1; /* give up on the peer: close now, unsent output dropped */
            c->want_close = 1;
            c->drop_input = 1;
        }
    } else if (c->state == RTWS_STATE_OPEN && !c->cfg.heartbeat_off) {
        uint64_t base = c->last_rx > c->ping_at ? c->last_rx : c->ping_at;
        if (c->ping_out && c->last_rx <= c->ping_at) {
            if (now_ms >= c->ping_at + c->cfg.pong_timeout_ms) {
                /* nothing at all since our ping: the peer or the path is dead */
                c->err = RTWS_ERR_TIMEOUT;
                rtws__emit_error(c, RTWS_ERR_TIMEOUT, 0);
                rtws__drop_unsent(c);
                rtws__emit_close(c, RTWS_CLOSE_ABNORMAL, NULL, 0, 0, 0);
                rtws__finish(c);
                c->eof = 1;
            }
        } else if (now_ms >= base + c->cfg.ping_interval_ms) {
            unsigned i;
            for (i = 0; i < 8; i++) c->hb_payload[i] = (uint8_t)(now_ms >> (56 - 8 * i));
            memcpy(c->ping_buf, c->hb_payload, 8);
            c->ping_len = 9;
            if (c->notify_) c->notify_(c);
            c->ping_out = 1;
            c->ping_at = now_ms;
        }
    }
    rtws__leave(c);
}

/* ---- sending ---- */

static rtws_err rtws__send_check(rtws_conn *c, size_t len) {
    if (c->freed) return RTWS_ERR_CLOSED;
    if (c->state != RTWS_STATE_OPEN || c->close_sent) return RTWS_ERR_CLOSED;
    if (c->qbytes - c->head_off > c->cfg.max_send_queue ||
        len > c->cfg.max_send_queue - (c->qbytes - c->head_off))
        return RTWS_ERR_LIMIT;
    return RTWS_OK;
}

RTWS_API rtws_err rtws_conn_send_frame(rtws_conn *c, rtws_opcode op, const void *data,
                                       size_t len, int fin) {
    rtws_err e = rtws__send_check(c, len);
    uint32_t st;
    if (e) return e;
    if (len && !data) return RTWS_ERR_INVALID;
    if (op == RTWS_OP_CONT ? !c->send_op : (op != RTWS_OP_TEXT && op != RTWS_OP_BINARY) || c->send_op)
        return RTWS_ERR_INVALID;
    st = op == RTWS_OP_CONT ? c->send_utf8 : 0;
    if ((op == RTWS_OP_TEXT || c->send_op == RTWS_OP_TEXT) &&
        (rtws_utf8_validate(&st, (const uint8_t *)data, len, NULL) != RTWS_OK || (fin && st)))
        return RTWS_ERR_UTF8;
    e = rtws__queue_frame(c, fin, op, data, len);
    if (e) return e;
    c->send_utf8 = st;
    c->send_op = fin ? 0 : (op == RTWS_OP_CONT ? c->send_op : (uint8_t)op);
    return RTWS_OK;
}

RTWS_API rtws_err rtws_conn_send(rtws_conn *c, rtws_opcode op, const void *data, size_t len) {
    if (op != RTWS_OP_TEXT && op != RTWS_OP_BINARY) return RTWS_ERR_INVALID;
    return rtws_conn_send_frame(c, op, data, len, 1);
}
RTWS_API rtws_err rtws_conn_send_text(rtws_conn *c, const char *text, size_t len) {
    return rtws_conn_send_frame(c, RTWS_OP_TEXT, text, len, 1);
}
RTWS_API rtws_err rtws_conn_send_binary(rtws_conn *c, const void *data, size_t len) {
    return rtws_conn_send_frame(c, RTWS_OP_BINARY, data, len, 1);
}

RTWS_API rtws_err rtws_conn_ping(rtws_conn *c, const void *data, size_t len) {
    if (c->freed || c->state != RTWS_STATE_OPEN || c->close_sent) return RTWS_ERR_CLOSED;
    if (len > 125 || (len && !data)) return RTWS_ERR_INVALID;
    if (len) memcpy(c->ping_buf, data, len);
    c->ping_len = (uint8_t)(len + 1);
    if (c->notify_) c->notify_(c);
    return RTWS_OK;
}

RTWS_API rtws_err rtws_conn_close(rtws_conn *c, unsigned code, const char *reason) {
    size_t rlen = reason ? strlen(reason) : 0;
    uint32_t st = 0;
    rtws_err e;
    if (c->freed) return RTWS_ERR_CLOSED;
    if (code && !rtws_close_code_valid(code)) return RTWS_ERR_INVALID;
    if (rlen > 123 || (rlen && !code) ||
        rtws_utf8_validate(&st, (const uint8_t *)reason, rlen, NULL) != RTWS_OK || st)
        return RTWS_ERR_INVALID;
    if (c->state == RTWS_STATE_IDLE || c->state == RTWS_STATE_HANDSHAKE) {
        rtws__drop_unsent(c);
        rtws__finish(c); /* nothing was open: just end it */
        c->close_deadline = c->now;
        return RTWS_OK;
    }
    if (c->state != RTWS_STATE_OPEN || c->close_sent) return RTWS_ERR_CLOSED;
    e = rtws__queue_close(c, code, reason, rlen);
    if (e) return e;
    c->state = RTWS_STATE_CLOSING;
    c->close_deadline = c->now + c->cfg.close_timeout_ms;
    return RTWS_OK;
}


/* === rtws: host ========================================================= */

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

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: SO_NOSIGPIPE is set on every socket instead */
#endif

typedef union rtws__addr {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
} rtws__addr;

#define RTWS__MAX_ALT 4 /* addresses a client tries, from getaddrinfo */

typedef struct rtws__sock {
    rtws_conn conn; /* first: a host rtws_conn * is a rtws__sock * */
    rtws_ctx *ctx;
    int fd;
    uint8_t connecting, lingering, dirty, dead, listener, nalt, ialt, registered;
    unsigned watched;            /* events last reported through on_socket */
    size_t index;                /* in ctx->socks */
    uint64_t linger_until;
    struct rtws__sock *next_dirty;
    rtws__addr peer;
    rtws__addr *alt;             /* client: further addresses to try */
} rtws__sock;

struct rtws_ctx {
    rtws_ctx_config cfg;
    rtws__sock **socks;          /* listeners and connections */
    size_t nsocks, capsocks, nconns;
    rtws__sock **byfd;           /* fd -> socket */
    size_t capfd;
    rtws__sock *dirty;           /* sockets with output or state to act on */
    struct pollfd *pfds;         /* rtws_run_once */
    size_t cappfds;
    uint64_t now, next_scan;
    int in_call;
    int shutting_down;
};

static void rtws__sock_notify(rtws_conn *c) {
    rtws__sock *s = (rtws__sock *)c;
    if (!s->dirty) {
        s->dirty = 1;
        s->next_dirty = s->ctx->dirty;
        s->ctx->dirty = s;
    }
}

static int rtws__set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
#ifdef SO_NOSIGPIPE
    {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
    }
#endif
    return 0;
}

static void rtws__watch(rtws__sock *s, unsigned want) {
    rtws_ctx *ctx = s->ctx;
    if (s->watched == want) return;
    s->watched = want;
    if (ctx->cfg.on_socket) ctx->cfg.on_socket(ctx, s->fd, want, ctx->cfg.socket_user);
}

RTWS_API rtws_ctx *rtws_ctx_new(const rtws_ctx_config *cfg) {
    rtws_ctx *ctx;
    rtws_allocator a;
    memset(&a, 0, sizeof a);
    if (cfg) a = cfg->conn.allocator;
    ctx = (rtws_ctx *)rtws__alloc(&a, sizeof *ctx);
    if (!ctx) return NULL;
    memset(ctx, 0, sizeof *ctx);
    if (cfg) ctx->cfg = *cfg;
    ctx->cfg.timer_ms = RTWS__DEF(ctx->cfg.timer_ms, 100u);
    ctx->cfg.linger_ms = RTWS__DEF(ctx->cfg.linger_ms, 2000u);
    ctx->cfg.backlog = RTWS__DEF(ctx->cfg.backlog, SOMAXCONN);
    return ctx;
}

/* Makes ctx->byfd[fd] addressable. */
static int rtws__fd_slot(rtws_ctx *ctx, int fd) {
    size_t ncap = ctx->capfd ? ctx->capfd : 256;
    rtws__sock **nb;
    if ((size_t)fd < ctx->capfd) return 1;
    while (ncap <= (size_t)fd) ncap *= 2;
    nb = (rtws__sock **)rtws__realloc(&ctx->cfg.conn.allocator, ctx->byfd, ncap * sizeof *nb);
    if (!nb) return 0;
    memset(nb + ctx->capfd, 0, (ncap - ctx->capfd) * sizeof *nb);
    ctx->byfd = nb;
    ctx->capfd = ncap;
    return 1;
}

static int rtws__add_sock(rtws_ctx *ctx, rtws__sock *s) {
    const rtws_allocator *a = &ctx->cfg.conn.allocator;
    if (ctx->nsocks == ctx->capsocks) {
        size_t ncap = ctx->capsocks ? ctx->capsocks * 2 : 64;
        rtws__sock **ns = (rtws__sock **)rtws__realloc(a, ctx->socks, ncap * sizeof *ns);
        if (!ns) return 0;
        ctx->socks = ns;
        ctx->capsocks = ncap;
    }
    if (!rtws__fd_slot(ctx, s->fd)) return 0;
    s->ctx = ctx;
    s->registered = 1;
    s->index = ctx->nsocks;
    ctx->socks[ctx->nsocks++] = s;
    ctx->byfd[s->fd] = s;
    if (!s->listener) ctx->nconns++;
    return 1;
}

/* Closes the socket and releases everything of s. */
static void rtws__destroy(rtws__sock *s) {
    rtws_ctx *ctx = s->ctx;
    const rtws_allocator *a = &ctx->cfg.conn.allocator;
    size_t i = s->index;
    rtws__watch(s, 0);
    if (s->fd >= 0) {
        ctx->byfd[s->fd] = NULL;
        close(s->fd);
    }
    ctx->socks[i] = ctx->socks[--ctx->nsocks];
    ctx->socks[i]->index = i;
    if (!s->listener) {
        ctx->nconns--;
        s->conn.notify_ = NULL;
        s->conn.depth = 0;
        rtws_conn_free(&s->conn);
    }
    rtws__free(a, s->alt);
    rtws__free(a, s);
}

/* Decides what a socket needs next: destroy, linger, or new interest. */
static void rtws__settle(rtws__sock *s, uint64_t now) {
    rtws_conn *c = &s->conn;
    unsigned want;
    if (s->dead || s->listener) return;
    if (c->freed && !s->lingering) {
        s->dead = 1;
        return;
    }
    want = rtws_conn_want(c);
    if (s->lingering) {
        if (now >= s->linger_until) s->dead = 1;
        return;
    }
    if (want == RTWS_WANT_CLOSE) {
        if (c->eof || s->connecting) {
            s->dead = 1;
            return;
        }
        /* half-close and drain what the peer still sends, so our last bytes
           (a close frame) are not lost to a reset */
        shutdown(s->fd, SHUT_WR);
        s->lingering = 1;
        s->linger_until = now + s->ctx->cfg.linger_ms;
        rtws__watch(s, RTWS_WANT_READ);
        return;
    }
    if (s->connecting) want = RTWS_WANT_WRITE;
    rtws__watch(s, want & (RTWS_WANT_READ | RTWS_WANT_WRITE));
}

static void rtws__host_error(rtws__sock *s, rtws_err err, int sys_errno) {
    rtws_event ev;
    rtws_conn *c = &s->conn;
    if (c->state == RTWS_STATE_CLOSED) return;
    rtws__event_init(&ev, RTWS_EV_ERROR);
    ev.err = err;
    ev.sys_errno = sys_errno;
    c->err = err;
    rtws__enter(c, s->ctx->now);
    rtws__emit(c, &ev);
    rtws__emit_close(c, RTWS_CLOSE_ABNORMAL, NULL, 0, 0, 0);
    c->state = RTWS_STATE_CLOSED;
    c->eof = 1;
    c->want_close = 1;
    c->drop_input = 1;
    rtws__leave(c);
}

/* Writes what the connection has queued; returns 0 when all went out. */
static int rtws__flush(rtws__sock *s) {
    rtws_conn *c = &s->conn;
    if (s->connecting || s->lingering || c->freed) return 0;
    for (;;) {
        rtws_iov v[16];
        struct iovec io[16];
        struct msghdr mh;
        ssize_t w;
        size_t total = 0;
        int i, n = rtws_conn_out_iov(c, v, 16);
        if (n == 0) return 0;
        for (i = 0; i < n; i++) {
            io[i].iov_base = (void *)(uintptr_t)v[i].base;
            io[i].iov_len = v[i].len;
            total += v[i].len;
        }
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = io;
        mh.msg_iovlen = (size_t)n;
        w = sendmsg(s->fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 1;
            rtws__host_error(s, RTWS_ERR_IO, errno);
            return 0;
        }
        rtws_conn_out_done(c, (size_t)w);
        if ((size_t)w < total) return 1; /* the kernel buffer is full */
    }
}

static void rtws__do_read(rtws__sock *s, uint64_t now) {
    rtws_conn *c = &s->conn;
    int budget = 8; /* reads per readiness, so one busy peer cannot starve the rest */
    while (budget-- > 0 && !s->dead) {
        ssize_t r;
        if (s->lingering || c->drop_input || c->freed) {
            char sink[4096];
            r = recv(s->fd, sink, sizeof sink, 0);
            if (r > 0) continue;
            if (r < 0 && errno == EINTR) continue;
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            if (s->lingering || c->freed) s->dead = 1;
            else rtws_conn_eof(c, now);
            return;
        } else {
            size_t cap;
            uint8_t *buf = rtws_conn_recv_buf(c, 0, &cap);
            if (!buf) {
                rtws__host_error(s, RTWS_ERR_NOMEM, 0);
                return;
            }
            r = recv(s->fd, buf, cap, 0);
            if (r > 0) {
                rtws_conn_recv_commit(c, (size_t)r, now);
                if ((size_t)r < cap) return; /* drained: spare the EAGAIN call */
                continue;
            }
            if (r < 0 && errno == EINTR) continue;
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            if (r < 0 && errno != ECONNRESET) {
                rtws__host_error(s, RTWS_ERR_IO, errno);
                return;
            }
            rtws_conn_eof(c, now);
            return;
        }
    }
}

static void rtws__sweep(rtws_ctx *ctx) {
    size_t i = 0;
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

static void rtws__accept(rtws_ctx *ctx, rtws__sock *l, uint64_t now) {
    int n;
    for (n = 0; n < 256; n++) {
        rtws__addr peer;
        socklen_t plen = sizeof peer;
        rtws__sock *s;
        int one = 1, fd = accept(l->fd, &peer.sa, &plen);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            return; /* EAGAIN, or EMFILE and the like: try again at the next readiness */
        }
        if (rtws__set_nonblock(fd) != 0 || ctx->shutting_down ||
            (ctx->cfg.max_connections && ctx->nconns >= ctx->cfg.max_connections)) {
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        s = (rtws__sock *)rtws__alloc(&ctx->cfg.conn.allocator, sizeof *s);
        if (!s) {
            close(fd);
            continue;
        }
        memset(s, 0, sizeof *s);
        s->fd = fd;
        s->peer = peer;
        {
            rtws_config cc = ctx->cfg.conn;
            cc.role = RTWS_SERVER;
            rtws_conn_init(&s->conn, &cc);
        }
        s->conn.notify_ = rtws__sock_notify;
        if (!rtws__add_sock(ctx, s)) {
            close(fd);
            rtws__free(&ctx->cfg.conn.allocator, s);
            continue;
        }
        rtws_conn_tick(&s->conn, now); /* starts the handshake deadline */
        rtws__settle(s, now);
    }
}

RTWS_API rtws_err rtws_listen(rtws_ctx *ctx, const char *host, int port, int *bound_port) {
    struct addrinfo hints, *res = NULL, *ai;
    char ps[16];
    int fd = -1, one = 1;
    rtws__sock *s;
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
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ai->ai_family == AF_INET6) {
            int v6only = strcmp(host, "::") == 0 ? 0 : 1;
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
        }
        if (rtws__set_nonblock(fd) == 0 && bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            listen(fd, ctx->cfg.backlog) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) return e;
    s = (rtws__sock *)rtws__alloc(&ctx->cfg.conn.allocator, sizeof *s);
    if (!s) {
        close(fd);
        return RTWS_ERR_NOMEM;
    }
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->listener = 1;
    {
        socklen_t alen = sizeof s->peer;
        getsockname(fd, &s->peer.sa, &alen);
    }
    if (!rtws__add_sock(ctx, s)) {
        close(fd);
        rtws__free(&ctx->cfg.conn.allocator, s);
        return RTWS_ERR_NOMEM;
    }
    rtws__watch(s, RTWS_WANT_READ);
    if (bound_port)
        *bound_port = ntohs(s->peer.sa.sa_family == AF_INET6 ? s->peer.in6.sin6_port
                                                               : s->peer.in4.sin_port);
    return RTWS_OK;
}

static int rtws__start_connect(rtws__sock *s, const rtws__addr *a) {
    int one = 1;
    socklen_t len = a->sa.sa_family == AF_INET6 ? sizeof a->in6 : sizeof a->in4;
    if (s->fd >= 0) {
        if (s->registered) s->ctx->byfd[s->fd] = NULL;
        rtws__watch(s, 0);
        close(s->fd);
    }
    s->fd = socket(a->sa.sa_family, SOCK_STREAM, 0);
    if (s->fd < 0) return errno;
    s->peer = *a;
    if (rtws__set_nonblock(s->fd) != 0) return errno;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    s->watched = 0;
    if (connect(s->fd, &a->sa, len) == 0) {
        s->connecting = 0;
    } else if (errno == EINPROGRESS || errno == EINTR) {
        s->connecting = 1;
    } else {
        return errno;
    }
    return 0;
}

/* Tries the client's next address; 0 when a connect is under way. */
static int rtws__next_addr(rtws__sock *s) {
    int err = ECONNREFUSED;
    while (s->ialt < s->nalt) {
        rtws_ctx *ctx = s->ctx;
        err = rtws__start_connect(s, &s->alt[s->ialt++]);
        if (s->fd >= 0 && s->registered) {
            if (!rtws__fd_slot(ctx, s->fd)) return ENOMEM;
            ctx->byfd[s->fd] = s;
        }
        if (err == 0) return 0;
    }
    return err;
}

static rtws_conn *rtws__connect(rtws_ctx *ctx, rtws__addr *addrs, int naddr,
                                const rtws_client_opts *opts, uint64_t now, rtws_err *err) {
    rtws__sock *s;
    rtws_err e;
    int sys;
    rtws_config cc = ctx->cfg.conn;
    s = (rtws__sock *)rtws__alloc(&ctx->cfg.conn.allocator, sizeof *s);
    if (!s) {
        *err = RTWS_ERR_NOMEM;
        return NULL;
    }
    memset(s, 0, sizeof *s);
    s->fd = -1;
    cc.role = RTWS_CLIENT;
    rtws_conn_init(&s->conn, &cc);
    s->alt = addrs;
    s->nalt = (uint8_t)naddr;
    s->ctx = ctx;
    e = rtws_conn_client_start(&s->conn, opts, now);
    if (e == RTWS_OK) {
        sys = rtws__next_addr(s);
        if (sys) e = RTWS_ERR_IO;
    }
    if (e == RTWS_OK && !rtws__add_sock(ctx, s)) e = RTWS_ERR_NOMEM;
    if (e != RTWS_OK) {
        if (s->fd >= 0) close(s->fd);
        rtws_conn_free(&s->conn);
        rtws__free(&ctx->cfg.conn.allocator, s->alt);
        rtws__free(&ctx->cfg.conn.allocator, s);
        *err = e;
        return NULL;
    }
    s->conn.notify_ = rtws__sock_notify;
    rtws__begin(ctx, now);
    rtws__sock_notify(&s->conn);
    rtws__end(ctx);
    *err = RTWS_OK;
    return &s->conn;
}

RTWS_API rtws_conn *rtws_connect_addr(rtws_ctx *ctx, const struct sockaddr *addr, size_t addrlen,
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
    return rtws__connect(ctx, a, 1, opts, now_ms, err);
}

RTWS_API rtws_conn *rtws_connect(rtws_ctx *ctx, const char *url, const rtws_client_opts *opts,
                                 uint64_t now_ms, rtws_err *err) {
    char host[256], port[8], hosthdr[300];
    const char *p, *h, *hend, *path;
    size_t hl;
    struct addrinfo hints, *res = NULL, *ai;
    rtws__addr *addrs;
    int n = 0, defport = 80;
    rtws_client_opts o;
    rtws_err dummy;
    if (!err) err = &dummy;
    *err = RTWS_ERR_URL;
    if (!url) return NULL;
    if (strncmp(url, "ws://", 5) == 0) {
        p = url + 5;
    } else if (strncmp(url, "wss://", 6) == 0) {
        *err = RTWS_ERR_TLS; /* built without RTWS_USE_BEARSSL */
        return NULL;
    } else {
        return NULL;
    }
    if (*p == '[') {
        h = p + 1;
        hend = strchr(h, ']');
        if (!hend) return NULL;
        p = hend + 1;
    } else {
        h = p;
        while (*p && *p != ':' && *p != '/' && *p != '?') p++;
        hend = p;
    }
    hl = (size_t)(hend - h);
    if (hl == 0 || hl >= sizeof host) return NULL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (*p == ':') {
        long v = 0;
        const char *q = ++p;
        while (*p >= '0' && *p <= '9' && v <= 65535) v = v * 10 + (*p++ - '0');
        if (p == q || v < 1 || v > 65535) return NULL;
        snprintf(port, sizeof port, "%ld", v);
    } else {
        snprintf(port, sizeof port, "%d", defport);
    }
    if (*p && *p != '/' && *p != '?') return NULL;
    path = *p ? p : "/";
    if (strpbrk(host, " \r\n/@")) return NULL;
    /* Host header: brackets for IPv6 literals, the port when it is not 80 */
    if (strchr(host, ':'))
        snprintf(hosthdr, sizeof hosthdr, "[%s]%s%s", host, strcmp(port, "80") ? ":" : "",
                 strcmp(port, "80") ? port : "");
    else
        snprintf(hosthdr, sizeof hosthdr, "%s%s%s", host, strcmp(port, "80") ? ":" : "",
                 strcmp(port, "80") ? port : "");
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res) {
        *err = RTWS_ERR_RESOLVE;
        return NULL;
    }
    addrs = (rtws__addr *)rtws__alloc(&ctx->cfg.conn.allocator, RTWS__MAX_ALT * sizeof *addrs);
    if (!addrs) {
        freeaddrinfo(res);
        *err = RTWS_ERR_NOMEM;
        return NULL;
    }
    memset(addrs, 0, RTWS__MAX_ALT * sizeof *addrs);
    for (ai = res; ai && n < RTWS__MAX_ALT; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof(rtws__addr))
            continue;
        memcpy(&addrs[n++], ai->ai_addr, ai->ai_addrlen);
    }
    freeaddrinfo(res);
    if (opts) o = *opts;
    else memset(&o, 0, sizeof o);
    if (!o.host) o.host = hosthdr;
    if (!o.path) o.path = path;
    if (n == 0) {
        rtws__free(&ctx->cfg.conn.allocator, addrs);
        *err = RTWS_ERR_RESOLVE;
        return NULL;
    }
    return rtws__connect(ctx, addrs, n, &o, now_ms, err);
}

static void rtws__connected(rtws__sock *s, uint64_t now) {
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) soerr = errno;
    if (soerr == EINPROGRESS || soerr == EALREADY) return;
    if (soerr) {
        if (rtws__next_addr(s) == 0) {
            rtws__settle(s, now);
            return;
        }
        rtws__host_error(s, RTWS_ERR_IO, soerr);
        s->connecting = 0;
        s->dead = 1;
        return;
    }
    s->connecting = 0;
}

static void rtws__ready(rtws_ctx *ctx, int fd, int readable, int writable, uint64_t now) {
    rtws__sock *s;
    if (fd < 0 || (size_t)fd >= ctx->capfd || !(s = ctx->byfd[fd]) || s->dead) return;
    if (s->listener) {
        if (readable) rtws__accept(ctx, s, now);
        return;
    }
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

/* Runs every connection's timers at most every timer_ms, or sooner when a
   deadline is due. */
static void rtws__timers(rtws_ctx *ctx, uint64_t now) {
    size_t i;
    uint64_t next = now + ctx->cfg.timer_ms;
    if (now < ctx->next_scan) return;
    for (i = 0; i < ctx->nsocks; i++) {
        rtws__sock *s = ctx->socks[i];
        uint64_t d;
        if (s->listener || s->dead) continue;
        if (s->lingering) {
            if (now >= s->linger_until) s->dead = 1;
            else if (s->linger_until < next) next = s->linger_until;
            continue;
        }
        if (rtws_conn_deadline(&s->conn) <= now) rtws_conn_tick(&s->conn, now);
        rtws__settle(s, now);
        d = rtws_conn_deadline(&s->conn);
        if (d < next) next = d;
    }
    ctx->next_scan = next;
}

RTWS_API void rtws_tick(rtws_ctx *ctx, uint64_t now_ms) {
    rtws__begin(ctx, now_ms);
    rtws__timers(ctx, ctx->now);
    rtws__end(ctx);
}

RTWS_API int rtws_timeout_ms(rtws_ctx *ctx, uint64_t now_ms) {
    rtws__begin(ctx, now_ms);
    rtws__end(ctx);
    if (ctx->dirty) return 0;
    return rtws_ms_until(ctx->next_scan, ctx->now);
}

RTWS_API void rtws_on_readable(rtws_ctx *ctx, int fd, uint64_t now_ms) {
    rtws__begin(ctx, now_ms);
    rtws__ready(ctx, fd, 1, 0, ctx->now);
    rtws__end(ctx);
}

RTWS_API void rtws_on_writable(rtws_ctx *ctx, int fd, uint64_t now_ms) {
    rtws__begin(ctx, now_ms);
    rtws__ready(ctx, fd, 0, 1, ctx->now);
    rtws__end(ctx);
}

RTWS_API int rtws_pollfds(rtws_ctx *ctx, struct pollfd *fds, int cap) {
    size_t i;
    int n = 0;
    rtws__begin(ctx, ctx->now);
    rtws__end(ctx);
    for (i = 0; i < ctx->nsocks; i++) {
        rtws__sock *s = ctx->socks[i];
        unsigned w = s->listener ? (unsigned)RTWS_WANT_READ : s->watched;
        if (n < cap) {
            fds[n].fd = s->fd;
            fds[n].events = (short)((w & RTWS_WANT_READ ? POLLIN : 0) |
                                    (w & RTWS_WANT_WRITE ? POLLOUT : 0));
            fds[n].revents = 0;
        }
        n++;
    }
    return n;
}

RTWS_API void rtws_service(rtws_ctx *ctx, const struct pollfd *fds, int n, uint64_t now_ms) {
    int i;
    rtws__begin(ctx, now_ms);
    for (i = 0; i < n; i++) {
        short r = fds[i].revents;
        if (!r) continue;
        rtws__ready(ctx, fds[i].fd, (r & (POLLIN | POLLHUP | POLLERR)) != 0,
                    (r & (POLLOUT | POLLERR)) != 0, ctx->now);
    }
    rtws__timers(ctx, ctx->now);
    rtws__end(ctx);
}

RTWS_API int rtws_run_once(rtws_ctx *ctx, int max_ms) {
    int n, ms, r;
    uint64_t now = rtws_now_ms();
    n = rtws_pollfds(ctx, ctx->pfds, (int)ctx->cappfds);
    if ((size_t)n > ctx->cappfds) {
        size_t ncap = (size_t)n + 64;
        struct pollfd *np = (struct pollfd *)rtws__realloc(&ctx->cfg.conn.allocator, ctx->pfds,
                                                           ncap * sizeof *np);
        if (!np) return -1;
        ctx->pfds = np;
        ctx->cappfds = ncap;
        n = rtws_pollfds(ctx, ctx->pfds, (int)ctx->cappfds);
    }
    ms = rtws_timeout_ms(ctx, now);
    if (ms < 0 || (max_ms >= 0 && ms > max_ms)) ms = max_ms;
    r = poll(ctx->pfds, (nfds_t)n, ms);
    if (r < 0 && errno != EINTR) return -1;
    rtws_service(ctx, ctx->pfds, r > 0 ? n : 0, rtws_now_ms());
    return (int)ctx->nsocks;
}

RTWS_API void rtws_shutdown(rtws_ctx *ctx, unsigned code, const char *reason, uint64_t now_ms) {
    size_t i;
    rtws__begin(ctx, now_ms);
    ctx->shutting_down = 1;
    for (i = 0; i < ctx->nsocks; i++) {
        rtws__sock *s = ctx->socks[i];
        if (s->listener) {
            s->dead = 1;
            continue;
        }
        s->conn.now = ctx->now > s->conn.now ? ctx->now : s->conn.now;
        rtws_conn_close(&s->conn, code, reason);
        rtws__sock_notify(&s->conn);
    }
    ctx->next_scan = 0;
    rtws__end(ctx);
}

RTWS_API size_t rtws_ctx_count(const rtws_ctx *ctx) { return ctx->nconns; }

RTWS_API void rtws_ctx_free(rtws_ctx *ctx) {
    const rtws_allocator *a = &ctx->cfg.conn.allocator;
    rtws_allocator copy = *a;
    while (ctx->nsocks) rtws__destroy(ctx->socks[ctx->nsocks - 1]);
    rtws__free(&copy, ctx->socks);
    rtws__free(&copy, ctx->byfd);
    rtws__free(&copy, ctx->pfds);
    rtws__free(&copy, ctx);
}

RTWS_API int rtws_conn_fd(const rtws_conn *c) {
    return c->notify_ == rtws__sock_notify ? ((const rtws__sock *)c)->fd : -1;
}

RTWS_API rtws_ctx *rtws_conn_ctx(const rtws_conn *c) {
    return c->notify_ == rtws__sock_notify ? ((const rtws__sock *)c)->ctx : NULL;
}

RTWS_API size_t rtws_conn_peer(const rtws_conn *c, char *buf, size_t cap) {
    const rtws__sock *s = (const rtws__sock *)c;
    char ip[INET6_ADDRSTRLEN];
    int n;
    if (!cap) return 0;
    buf[0] = '\0';
    if (c->notify_ != rtws__sock_notify) return 0;
    if (s->peer.sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &s->peer.in6.sin6_addr, ip, sizeof ip);
        n = snprintf(buf, cap, "[%s]:%u", ip, (unsigned)ntohs(s->peer.in6.sin6_port));
    } else {
        inet_ntop(AF_INET, &s->peer.in4.sin_addr, ip, sizeof ip);
        n = snprintf(buf, cap, "%s:%u", ip, (unsigned)ntohs(s->peer.in4.sin_port));
    }
    return n < 0 ? 0 : (size_t)n;
}


/* === rtws: tls ========================================================== */

/* === rtws: json ========================================================= */

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
