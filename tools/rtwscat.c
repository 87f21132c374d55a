/* rtwscat - cat for WebSockets: connect to a ws:// or wss:// URL, or listen
   as a server; lines from stdin become messages and messages go to stdout.
   Built on rtws.h's public API only (the reconnecting client, the host layer,
   rtws_rt for --protocol rtws, the JSON codec for --jsonl).

   usage: rtwscat URL [options]              connect (client)
          rtwscat --listen [HOST:]PORT [options]   serve (or --host H --port P)
   The full manual is usage() below (rtwscat --help). Exit codes: 0 the
   connection ended cleanly (or --count was reached), 1 it failed or ended
   abnormally, 2 bad usage, 3 --timeout passed first. */
#define RTWS_IMPLEMENTATION
#include "rtws.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_TIMEOUT = 3 };
#define MAX_LINE ((size_t)16 << 20) /* a longer line is sent in pieces of this size */
#define MAX_LIST 16
#define PING_PAYLOAD "rtwscat-ping"

/* the manual (--help), in pieces: C99 promises string literals of 4095 bytes only */
static const char *const manual[] = {
"usage: rtwscat URL [options]                  connect to a ws:// or wss:// URL\n"
"       rtwscat --listen [HOST:]PORT [options]  serve (HOST defaults to 127.0.0.1)\n"
"\n"
"Each line read from stdin is sent as one message (without its newline), and\n"
"each message received is written to stdout followed by a newline. Status\n"
"lines (connected, closed, pong, errors) go to stderr, prefixed \"rtwscat: \".\n"
"At the end of stdin a client closes with 1000 (messages sent before are\n"
"delivered first); a server keeps serving.\n"
"\n",
"Connecting:\n"
"  URL              ws://host[:port]/path?query or wss://...; IPv6 as ws://[::1]:8080/\n"
"  -H, --header 'Name: value'   an extra request header (repeatable)\n"
"  -s, --subprotocol NAME       offer this subprotocol (repeatable; client: in\n"
"                               this order; server: the first the client offers\n"
"                               that is in the list is chosen)\n"
"  --origin ORIGIN  client: send this Origin header; server: accept only it\n"
"  --reconnect      stay connected: reconnect with backoff after a loss, queue\n"
"                   lines meanwhile (rtws_client); without it a loss ends rtwscat\n"
"  --ca FILE        wss://: trust anchors (PEM) instead of the system bundle\n"
"  --insecure       wss://: accept any certificate (tests only)\n"
"\n"
"Serving:\n"
"  -l, --listen [HOST:]PORT   listen; PORT 0 lets the OS pick. Prints\n"
"                   \"listening on HOST:PORT\" on stderr once ready. Lines from\n"
"                   stdin go to every open connection; messages from all of\n"
"                   them go to stdout.\n"
"  --host H, --port P         the same as --listen H:P\n"
"  --cert FILE --key FILE     serve wss:// with this PEM chain and key\n"
"\n",
"Messages:\n"
"  --binary         send lines as binary messages; binary received is written raw\n"
"  --base64         binary both ways as base64 lines: stdin lines are decoded and\n"
"                   sent as binary, binary received is printed as base64 (text\n"
"                   received is printed as it is)\n"
"  --jsonl          JSON lines: stdin lines that are not JSON (RFC 8259) are\n"
"                   refused with a message on stderr and not sent; text received\n"
"                   is printed as one compact JSON line, or refused on stderr\n"
"  --pretty         like --jsonl, but printed indented over several lines\n"
"  --slash          stdin lines starting with / are commands: /ping, /close\n"
"                   [CODE [REASON]], /quit\n"
"  --exec CMD       pipe each connection through CMD (run by /bin/sh -c): messages\n"
"                   go to its stdin as lines, its stdout lines are sent; when it\n"
"                   ends the connection closes with 1000. stdin is not read.\n"
"  --ping SECONDS   ping every SECONDS (may be fractional) and show each round\n"
"                   trip time on stderr\n"
"  -n, --count N    end (closing with 1000) after N messages were received\n"
"  -t, --timeout SECONDS   give up after SECONDS: exit code 3\n"
"  -q, --quiet      no status lines on stderr (errors still)\n"
"\n",
"The realtime protocol (docs/PROTOCOL.md, as served by chat_server and every\n"
"rtws_router):\n"
"  --protocol rtws  speak it through rtws_rt (reconnects with --reconnect, and\n"
"                   resumes without loss or duplicates). stdin lines are\n"
"                   commands:  sub CHANNEL | unsub CHANNEL | pub CHANNEL JSON |\n"
"                   presence CHANNEL STATUS\n"
"                   stdout: \"CHANNEL #SEQ FROM EVENT DATA\" per message and\n"
"                   \"CHANNEL presence USER STATUS\"; with --jsonl or --pretty one\n"
"                   JSON object each ({\"type\":\"message\",...}). --count counts\n"
"                   messages. Welcome, acks and errors go to stderr.\n"
"  --sub CHANNEL    subscribe at start (repeatable)\n"
"  --token JWT      authenticate with this token\n"
"\n"
"  -h, --help       print this and exit\n"
"\n"
"Exit codes: 0 the connection ended cleanly (close code 1000, 1001 or none) or\n"
"--count was reached; 1 it could not be made, was refused, or ended otherwise;\n"
"2 bad usage; 3 --timeout passed first.\n"
"\n"
"Examples:\n"
"  echo hello | rtwscat ws://127.0.0.1:9001/             send one, print the echo\n"
"  rtwscat ws://127.0.0.1:9001/ --count 1 --timeout 5    wait for one message\n"
"  rtwscat --listen 8000 --exec cat                      an echo server\n"
"  rtwscat ws://127.0.0.1:8080/ws --protocol rtws --sub room:lobby --pretty\n"};

static void usage(FILE *f) {
    size_t i;
    for (i = 0; i < sizeof manual / sizeof manual[0]; i++) fputs(manual[i], f);
}

/* ---- options ----------------------------------------------------------- */

typedef struct opts {
    const char *url, *host, *origin, *ca, *cert, *key, *exec, *token;
    const char *subprotocols[MAX_LIST], *subs[MAX_LIST];
    int n_subprotocols, n_subs, port, listen;
    int binary, base64, jsonl, pretty, slash, reconnect, insecure, quiet, rt;
    long count;
    double ping_s, timeout_s;
    char headers[4096], offer[1024];
} opts;

/* v as seconds, above 0 and fractions allowed ("0.5"), nothing before or
   after the number: 1, else 0 (atof read "5x" as 5 and "x" as 0) */
static int seconds(const char *v, double *out) {
    char *e;
    double d;
    if ((*v < '0' || *v > '9') && *v != '.') return 0; /* no sign, blank, inf or nan */
    d = strtod(v, &e);
    if (e == v || *e || !(d > 0) || d > 1e9) return 0;
    *out = d;
    return 1;
}

static int bad_usage(const char *what, const char *arg) {
    fprintf(stderr, "rtwscat: %s%s%s\n", what, arg ? ": " : "", arg ? arg : "");
    usage(stderr);
    return EXIT_USAGE;
}

static int add(const char **list, int *n, const char *v) {
    if (*n >= MAX_LIST) return 0;
    list[(*n)++] = v;
    return 1;
}

/* "Name: value" with no CR/LF, appended as a raw header line */
static int add_header(opts *o, const char *h) {
    const char *colon = strchr(h, ':');
    size_t used = strlen(o->headers);
    if (!colon || colon == h || strpbrk(h, "\r\n")) return 0;
    if (used + strlen(h) + 3 > sizeof o->headers) return 0;
    snprintf(o->headers + used, sizeof o->headers - used, "%s\r\n", h);
    return 1;
}

static int parse_listen(opts *o, const char *v) {
    const char *colon = strrchr(v, ':');
    static char host[256];
    long port;
    o->listen = 1;
    if (colon) {
        size_t n = (size_t)(colon - v);
        if (n >= sizeof host) return 0;
        memcpy(host, v, n);
        host[n] = '\0';
        if (n >= 2 && host[0] == '[' && host[n - 1] == ']') { /* [::1]:8000 */
            memmove(host, host + 1, n - 2);
            host[n - 2] = '\0';
        }
        o->host = host;
        v = colon + 1;
    }
    if (!rtws_opt_number(v, 0, 65535, &port)) return 0;
    o->port = (int)port;
    return 1;
}

static int takes_value(const char *a) {
    static const char *const with_value[] = {
        "-H", "--header", "-s", "--subprotocol", "--origin", "--ca", "--cert", "--key", "--exec",
        "--token", "--sub", "-l", "--listen", "--host", "--port", "--ping", "-n", "--count",
        "-t", "--timeout", "--protocol"};
    size_t i;
    for (i = 0; i < sizeof with_value / sizeof with_value[0]; i++)
        if (!strcmp(a, with_value[i])) return 1;
    return 0;
}

/* Returns -1 when fine, else the exit code. */
static int parse_args(opts *o, int argc, char **argv) {
    int i;
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(s, l) (!strcmp(a, s) || !strcmp(a, l))
#define NEED(s, l) (OPT(s, l) && ++i)
        if (takes_value(a) && !v) return bad_usage("missing value after", a);
        if (OPT("-h", "--help")) {
            usage(stdout);
            return EXIT_OK;
        } else if (NEED("-H", "--header")) {
            if (!add_header(o, v)) return bad_usage("bad or too long header (want 'Name: value')", v);
        } else if (NEED("-s", "--subprotocol")) {
            if (!add(o->subprotocols, &o->n_subprotocols, v)) return bad_usage("too many", a);
        } else if (NEED("--origin", "--origin")) o->origin = v;
        else if (NEED("--ca", "--ca")) o->ca = v;
        else if (NEED("--cert", "--cert")) o->cert = v;
        else if (NEED("--key", "--key")) o->key = v;
        else if (NEED("--exec", "--exec")) o->exec = v;
        else if (NEED("--token", "--token")) o->token = v;
        else if (NEED("--sub", "--sub")) {
            if (!add(o->subs, &o->n_subs, v)) return bad_usage("too many", a);
        } else if (NEED("-l", "--listen")) {
            if (!parse_listen(o, v)) return bad_usage("bad --listen (want [HOST:]PORT)", v);
        } else if (NEED("--host", "--host")) {
            o->host = v;
            o->listen = 1;
        } else if (NEED("--port", "--port")) {
            long port;
            if (!rtws_opt_number(v, 0, 65535, &port)) return bad_usage("bad --port (want 0..65535)", v);
            o->port = (int)port;
            o->listen = 1;
        } else if (NEED("--ping", "--ping")) {
            if (!seconds(v, &o->ping_s)) return bad_usage("bad --ping", v);
        } else if (NEED("-n", "--count")) {
            if (!rtws_opt_number(v, 1, LONG_MAX, &o->count)) return bad_usage("bad --count", v);
        } else if (NEED("-t", "--timeout")) {
            if (!seconds(v, &o->timeout_s)) return bad_usage("bad --timeout", v);
        } else if (NEED("--protocol", "--protocol")) {
            if (strcmp(v, "rtws") != 0) return bad_usage("--protocol knows only rtws", v);
            o->rt = 1;
        } else if (OPT("--binary", "--binary")) o->binary = 1;
        else if (OPT("--base64", "--base64")) o->base64 = 1;
        else if (OPT("--jsonl", "--jsonl")) o->jsonl = 1;
        else if (OPT("--pretty", "--pretty")) o->jsonl = o->pretty = 1;
        else if (OPT("--slash", "--slash")) o->slash = 1;
        else if (OPT("--reconnect", "--reconnect")) o->reconnect = 1;
        else if (OPT("--insecure", "--insecure")) o->insecure = 1;
        else if (OPT("-q", "--quiet")) o->quiet = 1;
        else if (a[0] != '-' && !o->url) o->url = a;
        else return bad_usage("unknown option or extra argument", a);
#undef NEED
#undef OPT
    }
    if (!o->listen && !o->url) return bad_usage("give a URL, or --listen PORT", NULL);
    if (o->listen && o->url) return bad_usage("a URL and --listen together", o->url);
    if (o->listen && (o->rt || o->reconnect)) return bad_usage("--protocol and --reconnect are for clients", NULL);
    if (!o->cert != !o->key) return bad_usage("--cert and --key go together", NULL);
    if ((o->binary || o->base64) && o->jsonl) return bad_usage("--jsonl with --binary/--base64", NULL);
    if (o->rt && (o->binary || o->base64 || o->exec || o->slash))
        return bad_usage("--protocol rtws takes no --binary, --base64, --exec or --slash", NULL);
#ifndef RTWS_USE_BEARSSL
    if (o->ca || o->insecure || o->cert || (o->url && !strncmp(o->url, "wss:", 4)))
        return bad_usage("wss:// needs an rtwscat built with BearSSL (make with libbearssl-dev)", NULL);
#endif
    for (i = 0; i < o->n_subprotocols; i++) {
        size_t used = strlen(o->offer);
        snprintf(o->offer + used, sizeof o->offer - used, "%s%s", i ? ", " : "", o->subprotocols[i]);
    }
    return -1;
}

/* ---- state ------------------------------------------------------------- */

typedef struct linebuf {
    char *p;
    size_t len, cap;
} linebuf;

/* One connection: the client's (the same across reconnects) or one accepted. */
typedef struct peer {
    struct peer *next;
    rtws_conn *c;         /* NULL when not open */
    pid_t child;          /* --exec: its process, or 0 */
    int to_child, from_child;
    linebuf child_out;
    double ping_sent_us;
    char name[80];
} peer;

typedef struct app {
    opts o;
    rtws_ctx *ctx;
    rtws_client *cl; /* client mode */
    rtws_rt *rt;     /* --protocol rtws */
    peer one;        /* client mode's connection */
    peer *peers;     /* server mode's connections */
    linebuf in;
    int stdin_open, closing, quit, rc, ever_open;
    int close_pending;   /* a graceful close waits for the connection to open */
    unsigned close_code;
    long received;
    uint64_t close_by;
} app;

static volatile sig_atomic_t signalled;
static int cfg_pretty; /* --pretty, for the realtime printers */
static void on_signal(int sig) {
    (void)sig;
    signalled = 1;
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void status(const app *a, const char *fmt, const char *s1, const char *s2) {
    if (a->o.quiet) return;
    fprintf(stderr, "rtwscat: ");
    fprintf(stderr, fmt, s1 ? s1 : "", s2 ? s2 : "");
    fprintf(stderr, "\n");
}

/* ---- output: messages to stdout ------------------------------------------ */

static void indent(int depth) {
    int k;
    for (k = 0; k < depth; k++) fputs("  ", stdout);
}

/* Writes value i of d compactly, or indented two spaces a level (pretty).
   Recursion is bounded by the parse's depth limit. */
static void json_print(const rtws_json *d, int i, int pretty, int depth) {
    const rtws_json_tok *t = rtws_json_tok_at(d, i);
    size_t len;
    const char *raw = rtws_json_raw(d, i, &len);
    int k, first = 1, obj = t->type == RTWS_JSON_OBJECT;
    if (!obj && t->type != RTWS_JSON_ARRAY) {
        fwrite(raw, 1, len, stdout);
        return;
    }
    putchar(obj ? '{' : '[');
    for (k = rtws_json_child(d, i); k >= 0 && t->size; k = rtws_json_next(d, k)) {
        if (!first) putchar(',');
        first = 0;
        if (pretty) {
            putchar('\n');
            indent(depth + 1);
        }
        if (obj) {
            raw = rtws_json_raw(d, k, &len);
            fwrite(raw, 1, len, stdout);
            fputs(pretty ? ": " : ":", stdout);
            json_print(d, k + 1, pretty, depth + 1);
        } else {
            json_print(d, k, pretty, depth + 1);
        }
    }
    if (pretty && t->size) {
        putchar('\n');
        indent(depth);
    }
    putchar(obj ? '}' : ']');
}

/* Parses text into a token array sized by a counting pass. NULL when it is not
   JSON (why says where and why) or memory ran out. Free the result. */
static rtws_json_tok *json_parse(rtws_json *d, const char *text, size_t len, char *why, size_t cap) {
    rtws_json_tok *toks = NULL;
    if (rtws_json_parse(d, text, len, NULL, 0, 0) != RTWS_OK) {
        snprintf(why, cap, "%s at byte %lu", d->err, (unsigned long)d->err_off);
        return NULL;
    }
    if (!(toks = (rtws_json_tok *)malloc((d->count + 1) * sizeof *toks)) ||
        rtws_json_parse(d, text, len, toks, d->count + 1, 0) != RTWS_OK) {
        snprintf(why, cap, "out of memory");
        free(toks);
        return NULL;
    }
    return toks;
}

/* A received text that must be JSON: printed compact or pretty, or refused. */
static void print_json(const char *text, size_t len, int pretty) {
    rtws_json d;
    char why[160];
    rtws_json_tok *toks = json_parse(&d, text, len, why, sizeof why);
    if (!toks) {
        fprintf(stderr, "rtwscat: received text is not JSON (%s): %.*s\n", why,
                (int)(len > 200 ? 200 : len), text);
        return;
    }
    json_print(&d, 0, pretty, 0);
    putchar('\n');
    free(toks);
}

static void print_message(const app *a, rtws_opcode op, const uint8_t *data, size_t len) {
    if (op == RTWS_OP_TEXT && a->o.jsonl) {
        print_json((const char *)data, len, a->o.pretty);
    } else if (op == RTWS_OP_BINARY && a->o.base64) {
        size_t cap = (len + 2) / 3 * 4 + 1;
        char *b = (char *)malloc(cap);
        if (b) {
            size_t n = rtws_base64_encode(data, len, b, cap);
            fwrite(b, 1, n, stdout);
            putchar('\n');
            free(b);
        }
    } else {
        fwrite(data, 1, len, stdout);
        putchar('\n');
    }
    fflush(stdout);
}

/* ---- connections -------------------------------------------------------- */

static void close_all(app *a, unsigned code, const char *reason, int graceful);

static void write_all(int fd, const void *p, size_t n) {
    const char *s = (const char *)p;
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return; /* the program went away: its stdout EOF ends the connection */
        s += w;
        n -= (size_t)w;
    }
}

static int start_child(app *a, peer *p) {
    int in[2], out[2];
    pid_t pid;
    if (pipe(in) != 0) return 0;
    if (pipe(out) != 0) {
        close(in[0]);
        close(in[1]);
        return 0;
    }
    fflush(stdout);
    if ((pid = fork()) < 0) return 0;
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execl("/bin/sh", "sh", "-c", a->o.exec, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    p->child = pid;
    p->to_child = in[1];
    p->from_child = out[0];
    p->child_out.len = 0;
    return 1;
}

/* Closes the program's stdin (it sees EOF) and reaps it once it ends. */
static void end_child(peer *p, int wait_for_it) {
    if (p->to_child >= 0) close(p->to_child);
    p->to_child = -1;
    if (p->child && wait_for_it) {
        int st;
        if (p->from_child >= 0) close(p->from_child);
        p->from_child = -1;
        waitpid(p->child, &st, 0);
        p->child = 0;
    }
}

static void peer_init(peer *p) {
    memset(p, 0, sizeof *p);
    p->to_child = p->from_child = -1;
}

static void count_one(app *a) {
    a->received++;
    if (a->o.count && a->received >= a->o.count && !a->closing) close_all(a, RTWS_CLOSE_NORMAL, NULL, 1);
}

/* An event of one connection, in either mode. */
static void conn_event(app *a, peer *p, rtws_conn *c, const rtws_event *ev) {
    char buf[160];
    switch (ev->type) {
    case RTWS_EV_OPEN:
        p->c = c;
        a->ever_open = 1;
        snprintf(buf, sizeof buf, "%s%.*s%s", ev->open.protocol.len ? " (subprotocol " : "",
                 (int)ev->open.protocol.len, ev->open.protocol.p, ev->open.protocol.len ? ")" : "");
        if (a->o.listen) status(a, "%s connected%s", p->name, buf);
        else status(a, "connected to %s%s", a->o.url, buf);
        if (a->close_pending && a->cl) { /* input ended before the connection opened */
            a->close_pending = 0;
            a->close_by = rtws_time_now_ms() + 3000;
            rtws_client_close(a->cl, a->close_code, NULL); /* after the queued lines */
            break;
        }
        if (a->o.exec && !start_child(a, p)) {
            fprintf(stderr, "rtwscat: --exec: cannot start %s\n", a->o.exec);
            rtws_conn_close(c, RTWS_CLOSE_INTERNAL, "exec failed");
        }
        break;
    case RTWS_EV_MESSAGE:
        if (a->o.count && a->received >= a->o.count) break; /* past --count: closing */
        if (p->to_child >= 0) {
            write_all(p->to_child, ev->message.data, ev->message.len);
            write_all(p->to_child, "\n", 1);
        } else {
            print_message(a, ev->message.opcode, ev->message.data, ev->message.len);
        }
        count_one(a);
        break;
    case RTWS_EV_PONG:
        if (ev->pong.len == sizeof PING_PAYLOAD - 1 && p->ping_sent_us > 0 &&
            !memcmp(ev->pong.data, PING_PAYLOAD, ev->pong.len) && !a->o.quiet) {
            fprintf(stderr, "rtwscat: pong from %s: rtt %.3f ms\n", a->o.listen ? p->name : a->o.url,
                    (now_us() - p->ping_sent_us) / 1000.0);
            p->ping_sent_us = 0;
        }
        break;
    case RTWS_EV_CLOSE:
        if (!a->o.quiet)
            fprintf(stderr, "rtwscat: %s closed %u%s%.*s%s%s\n", a->o.listen ? p->name : a->o.url,
                    ev->close.code, ev->close.reason_len ? " \"" : "", (int)ev->close.reason_len,
                    ev->close.reason ? ev->close.reason : "", ev->close.reason_len ? "\"" : "",
                    ev->close.clean ? "" : " (not clean)");
        if (!a->o.listen && !a->closing && !a->o.reconnect) {
            int fine = ev->close.clean && (ev->close.code == RTWS_CLOSE_NORMAL ||
                                           ev->close.code == 1001 || ev->close.code == 1005);
            a->rc = fine || (a->o.count && a->received >= a->o.count) ? EXIT_OK : EXIT_FAIL;
        }
        p->c = NULL;
        end_child(p, 0);
        break;
    case RTWS_EV_ERROR:
        fprintf(stderr, "rtwscat: %s: %s", a->o.listen ? p->name : a->o.url, rtws_err_str(ev->error.err));
        if (ev->error.status) fprintf(stderr, " (HTTP %d)", ev->error.status);
        if (ev->error.detail_text) fprintf(stderr, ": %s", ev->error.detail_text);
        fprintf(stderr, "\n");
        if (!a->o.listen && !a->o.reconnect) a->rc = EXIT_FAIL;
        break;
    default: break;
    }
}

/* client mode: the reconnecting client's events (also rtws_rt's) */
static void client_event(rtws_client *cl, const rtws_client_event *ev, void *user) {
    app *a = (app *)user;
    (void)cl;
    if (ev->type == RTWS_CLIENT_EV_CONN) {
        conn_event(a, &a->one, ev->conn.conn, ev->conn.event);
    } else if (ev->type == RTWS_CLIENT_EV_STATE) {
        rtws_client_state s = ev->state.state;
        if (s == RTWS_CLIENT_RECONNECTING && a->o.reconnect && !a->o.quiet)
            fprintf(stderr, "rtwscat: reconnecting in %u ms (attempt %u)\n", ev->state.delay_ms,
                    ev->state.attempt);
        if ((s == RTWS_CLIENT_RECONNECTING && !a->o.reconnect) || s == RTWS_CLIENT_FAILED ||
            s == RTWS_CLIENT_CLOSED) {
            if (s == RTWS_CLIENT_FAILED && !a->closing) a->rc = EXIT_FAIL;
            if (s == RTWS_CLIENT_RECONNECTING && !a->ever_open) a->rc = EXIT_FAIL;
            a->quit = 1;
        }
    } else if (ev->type == RTWS_CLIENT_EV_DROPPED) {
        fprintf(stderr, "rtwscat: a queued message was dropped: %s\n", rtws_err_str(ev->dropped.err));
    }
}

/* server mode: every accepted connection */
static void server_event(rtws_conn *c, const rtws_event *ev, void *user) {
    app *a = (app *)user;
    peer *p = (peer *)rtws_conn_get_data(c), **pp;
    if (!p) {
        if (ev->type != RTWS_EV_OPEN) {
            if (ev->type == RTWS_EV_ERROR) fprintf(stderr, "rtwscat: refused a connection: %s\n",
                                                   rtws_err_str(ev->error.err));
            return;
        }
        if (!(p = (peer *)malloc(sizeof *p))) {
            rtws_conn_close(c, RTWS_CLOSE_INTERNAL, NULL);
            return;
        }
        peer_init(p);
        rtws_conn_get_peer(c, p->name, sizeof p->name);
        p->next = a->peers;
        a->peers = p;
        rtws_conn_set_data(c, p);
    }
    conn_event(a, p, c, ev);
    if (ev->type == RTWS_EV_CLOSE) {
        for (pp = &a->peers; *pp; pp = &(*pp)->next)
            if (*pp == p) {
                *pp = p->next;
                break;
            }
        end_child(p, 1);
        free(p->child_out.p);
        free(p);
        rtws_conn_set_data(c, NULL);
    }
}

/* server: of the subprotocols the client offers, in its order of preference,
   the first that is in our -s list (none: the connection opens without one) */
static int server_accept(rtws_conn *c, const rtws_http *req, const char **protocol, void *user) {
    app *a = (app *)user;
    const rtws_str *h = rtws_http_get_header(req, "Sec-WebSocket-Protocol");
    size_t i = 0, start, end;
    int k;
    (void)c;
    while (h && i < h->len) {
        while (i < h->len && (h->p[i] == ' ' || h->p[i] == '\t' || h->p[i] == ',')) i++;
        start = i;
        while (i < h->len && h->p[i] != ',' && h->p[i] != ' ' && h->p[i] != '\t') i++;
        end = i;
        for (k = 0; k < a->o.n_subprotocols && end > start; k++)
            if (strlen(a->o.subprotocols[k]) == end - start &&
                !memcmp(a->o.subprotocols[k], h->p + start, end - start)) {
                *protocol = a->o.subprotocols[k];
                return 0;
            }
    }
    return 0;
}

/* Ends every connection with a close handshake. A client that is not open
   yet closes once it is (graceful: at the end of input, so the lines it
   queued go first), or stops at once (not graceful: timeout, signal). */
static void close_all(app *a, unsigned code, const char *reason, int graceful) {
    peer *p;
    if (a->closing && !(a->close_pending && !graceful)) return;
    a->closing = 1;
    a->close_pending = 0;
    a->close_by = rtws_time_now_ms() + 3000;
    if (a->rt) {
        a->close_by += 2000; /* publishes get their acks first (see the loop) */
    } else if (a->cl) {
        if (rtws_client_get_state(a->cl) == RTWS_CLIENT_OPEN) {
            rtws_client_close(a->cl, code, reason);
        } else if (graceful) {
            a->close_pending = 1; /* done at the next open (conn_event) */
            a->close_code = code;
            a->close_by = UINT64_MAX;
        } else {
            a->quit = 1;
        }
    } else {
        for (p = a->peers; p; p = p->next)
            if (p->c) rtws_conn_close(p->c, code, reason);
        rtws_ctx_shutdown(a->ctx, code, reason, rtws_time_now_ms());
    }
}

/* ---- input: lines to messages ------------------------------------------- */

static int send_to(app *a, peer *p, rtws_opcode op, const void *data, size_t len) {
    rtws_err e;
    if (a->cl) e = rtws_client_send(a->cl, op, data, len, 0);
    else if (p && p->c) e = rtws_conn_send(p->c, op, data, len);
    else {
        for (p = a->peers; p; p = p->next)
            if (p->c && p->to_child < 0) rtws_conn_send(p->c, op, data, len);
        return 1;
    }
    if (e != RTWS_OK) fprintf(stderr, "rtwscat: not sent: %s\n", rtws_err_str(e));
    return e == RTWS_OK;
}

static void slash_command(app *a, char *line) {
    peer *p;
    if (!strcmp(line, "/quit")) {
        close_all(a, RTWS_CLOSE_NORMAL, NULL, 1);
    } else if (!strcmp(line, "/ping")) {
        for (p = a->cl ? &a->one : a->peers; p; p = a->cl ? NULL : p->next)
            if (p->c && rtws_conn_ping(p->c, PING_PAYLOAD, sizeof PING_PAYLOAD - 1) == RTWS_OK)
                p->ping_sent_us = now_us();
    } else if (!strncmp(line, "/close", 6) && (line[6] == '\0' || line[6] == ' ')) {
        char *rest = line + 6, *end;
        long code = strtol(rest, &end, 10);
        while (*end == ' ') end++;
        if (end == rest) code = RTWS_CLOSE_NORMAL;
        close_all(a, (unsigned)code, *end ? end : NULL, 1);
    } else {
        fprintf(stderr, "rtwscat: commands: /ping, /close [CODE [REASON]], /quit\n");
    }
}

/* One line of stdin (or of an --exec program, for peer p) as a message. */
static void send_line(app *a, peer *p, char *line, size_t len) {
    uint32_t st = 0;
    size_t bad = 0;
    if (a->o.slash && !p && len && line[0] == '/') {
        slash_command(a, line);
    } else if (a->o.base64) {
        uint8_t *bin = (uint8_t *)malloc(len / 4 * 3 + 3);
        size_t n = bin ? rtws_base64_decode(line, len, bin, len / 4 * 3 + 3) : (size_t)-1;
        if (n == (size_t)-1) fprintf(stderr, "rtwscat: not sent: the line is not base64\n");
        else send_to(a, p, RTWS_OP_BINARY, bin, n);
        free(bin);
    } else if (a->o.binary) {
        send_to(a, p, RTWS_OP_BINARY, line, len);
    } else if (rtws_utf8_validate(&st, (const uint8_t *)line, len, &bad) != RTWS_OK || st != 0) {
        fprintf(stderr, "rtwscat: not sent: the line is not UTF-8 (byte %lu); use --binary or --base64\n",
                (unsigned long)bad);
    } else if (a->o.jsonl) {
        rtws_json d;
        if (rtws_json_parse(&d, line, len, NULL, 0, 0) != RTWS_OK)
            fprintf(stderr, "rtwscat: not sent: not JSON (%s at byte %lu)\n", d.err,
                    (unsigned long)d.err_off);
        else send_to(a, p, RTWS_OP_TEXT, line, len);
    } else {
        send_to(a, p, RTWS_OP_TEXT, line, len);
    }
}

/* ---- --protocol rtws ---------------------------------------------------- */

/* one JSON object per message or presence change (--jsonl, --pretty) */
static void rt_print_json(const char *type, const char *channel, const char *k1, const char *v1,
                          const char *k2, const char *v2, const rtws_rt_message *m) {
    size_t cap = 1024 + 6 * (strlen(channel) + strlen(v1) + strlen(v2)) + (m ? m->data_len : 0), n;
    char *buf = (char *)malloc(cap);
    rtws_json_writer w;
    if (!buf) return;
    rtws_json_writer_init(&w, buf, cap);
    rtws_json_write_object(&w);
    rtws_json_write_key(&w, "type", 4);
    rtws_json_write_string(&w, type, strlen(type));
    rtws_json_write_key(&w, "channel", 7);
    rtws_json_write_string(&w, channel, strlen(channel));
    if (m) {
        rtws_json_write_key(&w, "seq", 3);
        rtws_json_write_int64(&w, (int64_t)m->seq);
    }
    rtws_json_write_key(&w, k1, strlen(k1));
    rtws_json_write_string(&w, v1, strlen(v1));
    rtws_json_write_key(&w, k2, strlen(k2));
    rtws_json_write_string(&w, v2, strlen(v2));
    if (m) {
        rtws_json_write_key(&w, "data", 4);
        rtws_json_write_raw(&w, m->data, m->data_len);
    }
    rtws_json_write_object_end(&w);
    if (rtws_json_writer_finish(&w, &n) == RTWS_OK) print_json(buf, n, cfg_pretty);
    else fprintf(stderr, "rtwscat: a %s on %s could not be written as JSON\n", type, channel);
    free(buf);
}

static void rt_message(rtws_rt *rt, const rtws_rt_message *m, void *user) {
    app *a = (app *)user;
    (void)rt;
    if (a->o.count && a->received >= a->o.count) return;
    if (m->reset) printf("%s reset #%llu\n", m->channel, (unsigned long long)m->seq);
    else if (a->o.jsonl) rt_print_json("message", m->channel, "from", m->from, "event", m->event, m);
    else
        printf("%s #%llu %s %s %.*s\n", m->channel, (unsigned long long)m->seq, m->from, m->event,
               (int)m->data_len, m->data);
    fflush(stdout);
    if (!m->reset) count_one(a);
}

static void rt_presence(rtws_rt *rt, const char *channel, const char *user_id, const char *st,
                        void *user) {
    app *a = (app *)user;
    (void)rt;
    if (a->o.jsonl) rt_print_json("presence", channel, "user", user_id, "status", st, NULL);
    else printf("%s presence %s %s\n", channel, user_id, st);
    fflush(stdout);
}

static void rt_welcome(rtws_rt *rt, const char *user_id, const char *session, int resumed, void *user) {
    app *a = (app *)user;
    (void)rt;
    a->ever_open = 1;
    if (!a->o.quiet)
        fprintf(stderr, "rtwscat: %s as %s (session %s)\n", resumed ? "resumed" : "welcome", user_id,
                session);
}

static void rt_ack(rtws_rt *rt, const char *id, uint64_t seq, void *user) {
    app *a = (app *)user;
    (void)rt;
    if (!a->o.quiet) fprintf(stderr, "rtwscat: ack %s #%llu\n", id, (unsigned long long)seq);
}

static void rt_error(rtws_rt *rt, const char *code, const char *message, const char *id, void *user) {
    (void)rt;
    (void)user;
    fprintf(stderr, "rtwscat: error %s: %s%s%s\n", code, message, id && *id ? " id " : "",
            id ? id : "");
}

/* sub CHANNEL | unsub CHANNEL | pub CHANNEL JSON | presence CHANNEL STATUS */
static void rt_command(app *a, char *line) {
    char *cmd = strtok(line, " "), *ch = strtok(NULL, " "), *rest = strtok(NULL, "");
    rtws_err e = RTWS_ERR_INVALID;
    rtws_json d;
    if (!cmd) return; /* an empty line */
    while (rest && *rest == ' ') rest++;
    if (!ch) {
        fprintf(stderr, "rtwscat: commands: sub CHANNEL | unsub CHANNEL | pub CHANNEL JSON | "
                        "presence CHANNEL STATUS\n");
        return;
    }
    if (!strcmp(cmd, "sub") && !rest) e = rtws_rt_subscribe(a->rt, ch, NULL, NULL);
    else if (!strcmp(cmd, "unsub") && !rest) e = rtws_rt_unsubscribe(a->rt, ch);
    else if (!strcmp(cmd, "presence") && rest) e = rtws_rt_set_presence(a->rt, ch, rest);
    else if (!strcmp(cmd, "pub") && rest) {
        if (rtws_json_parse(&d, rest, strlen(rest), NULL, 0, 0) != RTWS_OK) {
            fprintf(stderr, "rtwscat: not sent: not JSON (%s at byte %lu)\n", d.err,
                    (unsigned long)d.err_off);
            return;
        }
        e = rtws_rt_publish(a->rt, ch, "message", rest, strlen(rest), NULL);
    } else {
        fprintf(stderr, "rtwscat: unknown command %s (sub, unsub, pub, presence)\n", cmd);
        return;
    }
    if (e == RTWS_EAGAIN) fprintf(stderr, "rtwscat: %s %s: not connected now, not sent\n", cmd, ch);
    else if (e != RTWS_OK) fprintf(stderr, "rtwscat: %s %s: %s\n", cmd, ch, rtws_err_str(e));
}

/* ---- the loop ----------------------------------------------------------- */

/* Reads what fd has and hands every complete line to send_line (or the
   realtime commands). A line longer than MAX_LINE goes out in pieces. Returns
   0 at the end of input (a last line without newline is sent first). */
static int read_lines(app *a, peer *p, int fd, linebuf *lb) {
    ssize_t r;
    size_t start = 0;
    if (lb->cap - lb->len < 4096) {
        size_t cap = lb->cap ? lb->cap * 2 : 65536;
        char *q = (char *)realloc(lb->p, cap + 1);
        if (!q) return 0;
        lb->p = q;
        lb->cap = cap;
    }
    r = read(fd, lb->p + lb->len, lb->cap - lb->len);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) return 1;
    if (r > 0) lb->len += (size_t)r;
    for (;;) {
        char *nl = (char *)memchr(lb->p + start, '\n', lb->len - start);
        size_t n;
        if (!nl && r > 0 && lb->len - start < MAX_LINE) break;
        if (!nl && lb->len == start) break;
        n = nl ? (size_t)(nl - (lb->p + start)) : lb->len - start;
        if (n && lb->p[start + n - 1] == '\r') n--; /* CRLF input */
        lb->p[start + n] = '\0';
        if (a->rt) rt_command(a, lb->p + start);
        else send_line(a, p, lb->p + start, n);
        start = nl ? (size_t)(nl - lb->p) + 1 : lb->len;
    }
    memmove(lb->p, lb->p + start, lb->len - start);
    lb->len -= start;
    return r > 0;
}

static int run(app *a) {
    struct pollfd *fds = NULL;
    int cap = 0;
    uint64_t start = rtws_time_now_ms(), deadline = UINT64_MAX, next_ping = UINT64_MAX;
    if (a->o.timeout_s > 0) deadline = start + (uint64_t)(a->o.timeout_s * 1000);
    if (a->o.ping_s > 0) next_ping = start + (uint64_t)(a->o.ping_s * 1000);
    while (!a->quit) {
        uint64_t now = rtws_time_now_ms();
        int n, extra = 0, ms, k;
        peer *p;
        if (signalled && (!a->closing || a->close_pending)) close_all(a, 1001, NULL, 0);
        if (now >= deadline && (!a->closing || a->close_pending)) {
            fprintf(stderr, "rtwscat: timed out after %g s (%ld message%s received)\n", a->o.timeout_s,
                    a->received, a->received == 1 ? "" : "s");
            a->rc = EXIT_TIMEOUT;
            close_all(a, 1001, "timeout", 0);
            deadline = UINT64_MAX;
        }
        if (now >= next_ping) {
            for (p = a->o.listen ? a->peers : &a->one; p; p = a->o.listen ? p->next : NULL)
                if (p->c && rtws_conn_ping(p->c, PING_PAYLOAD, sizeof PING_PAYLOAD - 1) == RTWS_OK)
                    p->ping_sent_us = now_us();
            next_ping = now + (uint64_t)(a->o.ping_s * 1000);
        }
        if (a->closing) {
            if (a->rt && (rtws_rt_get_unacked(a->rt) == 0 || now + 3000 >= a->close_by)) {
                rtws_client *cl = rtws_rt_get_client(a->rt);
                if (rtws_client_get_state(cl) == RTWS_CLIENT_OPEN) rtws_client_close(cl, RTWS_CLOSE_NORMAL, NULL);
                else if (rtws_client_get_state(cl) != RTWS_CLIENT_CLOSING) break;
            }
            if (a->o.listen && rtws_ctx_get_conn_count(a->ctx) == 0) break;
            if (now >= a->close_by) break;
        }
        for (;;) { /* the context's sockets, then stdin and the --exec programs */
            n = rtws_ctx_fill_pollfds(a->ctx, fds, cap);
            if (n + MAX_LIST + 64 <= cap) break;
            cap = 2 * n + MAX_LIST + 128;
            if (!(fds = (struct pollfd *)realloc(fds, (size_t)cap * sizeof *fds))) return EXIT_FAIL;
        }
        /* the realtime commands wait for the first welcome (presence is not queued) */
        if (a->stdin_open && !a->closing && (!a->rt || a->ever_open)) {
            fds[n + extra].fd = 0;
            fds[n + extra].events = POLLIN;
            fds[n + extra++].revents = 0;
        }
        for (p = a->o.listen ? a->peers : &a->one; p && n + extra < cap; p = a->o.listen ? p->next : NULL)
            if (p->from_child >= 0) {
                fds[n + extra].fd = p->from_child;
                fds[n + extra].events = POLLIN;
                fds[n + extra++].revents = 0;
            }
        ms = rtws_ctx_get_timeout_ms(a->ctx, now);
        if (ms < 0 || ms > 100) ms = 100; /* signals, deadlines and pings are checked above */
        if (poll(fds, (nfds_t)(n + extra), ms) < 0 && errno != EINTR) break;
        rtws_ctx_service(a->ctx, fds, n, rtws_time_now_ms());
        for (k = n; k < n + extra; k++) {
            if (!fds[k].revents) continue;
            if (fds[k].fd == 0) {
                if (!read_lines(a, NULL, 0, &a->in)) {
                    a->stdin_open = 0;
                    /* a client is done at the end of its input, unless it waits for --count */
                    if (!a->o.listen && !a->o.count) close_all(a, RTWS_CLOSE_NORMAL, NULL, 1);
                }
                continue;
            }
            for (p = a->o.listen ? a->peers : &a->one; p; p = a->o.listen ? p->next : NULL)
                if (p->from_child == fds[k].fd) {
                    if (!read_lines(a, p, p->from_child, &p->child_out)) {
                        close(p->from_child);
                        p->from_child = -1;
                        if (a->cl) close_all(a, RTWS_CLOSE_NORMAL, NULL, 1);
                        else if (p->c) rtws_conn_close(p->c, RTWS_CLOSE_NORMAL, NULL);
                    }
                    break;
                }
        }
        rtws_ctx_run_timers(a->ctx, rtws_time_now_ms()); /* sends made above go out now */
    }
    free(fds);
    return a->rc;
}

int main(int argc, char **argv) {
    app a;
    rtws_ctx_config cfg;
    rtws_tls_client_config tls;
    const char *origins[2];
    rtws_err err = RTWS_OK;
    int rc, port = 0, i;
    memset(&a, 0, sizeof a);
    if ((rc = parse_args(&a.o, argc, argv)) >= 0) return rc;
    cfg_pretty = a.o.pretty;
    peer_init(&a.one);
    a.stdin_open = !a.o.exec || a.o.listen;
    if (a.o.exec && !a.o.listen) a.stdin_open = 0;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    memset(&cfg, 0, sizeof cfg);
    memset(&tls, 0, sizeof tls);
    tls.ca_file = a.o.ca;
    tls.tls_insecure_skip_verify = a.o.insecure;
    cfg.tls = &tls;
    cfg.conn.user = &a;
    if (a.o.listen) {
        cfg.conn.on_event = server_event;
        cfg.conn.on_accept = server_accept;
        if (a.o.origin) {
            origins[0] = a.o.origin;
            origins[1] = NULL;
            cfg.conn.allowed_origins = origins;
        }
    }
    if (!(a.ctx = rtws_ctx_new(&cfg))) return EXIT_FAIL;

    if (a.o.listen) {
        rtws_tls_server_config st;
        memset(&st, 0, sizeof st);
        st.cert_file = a.o.cert;
        st.key_file = a.o.key;
        err = a.o.cert ? rtws_ctx_listen_tls(a.ctx, a.o.host, a.o.port, &st, &port)
                       : rtws_ctx_listen(a.ctx, a.o.host, a.o.port, &port);
        if (err != RTWS_OK) {
            fprintf(stderr, "rtwscat: cannot listen on %s:%d: %s\n", a.o.host, a.o.port, rtws_err_str(err));
            if (err == RTWS_ERR_TLS) fprintf(stderr, "rtwscat: %s\n", rtws_tls_err_str(rtws_ctx_get_tls_error(a.ctx)));
            rtws_ctx_free(a.ctx);
            return EXIT_FAIL;
        }
        fprintf(stderr, "listening on %s:%d\n", a.o.host, port);
    } else {
        rtws_client_config cc;
        memset(&cc, 0, sizeof cc);
        cc.url = a.o.url;
        cc.opts.protocols = a.o.offer[0] ? a.o.offer : NULL;
        cc.opts.origin = a.o.origin;
        cc.opts.extra_headers = a.o.headers[0] ? a.o.headers : NULL;
        cc.on_event = client_event;
        cc.user = &a;
        cc.max_attempts = a.o.reconnect ? 0 : 1;
        if (a.o.rt) {
            rtws_rt_config rc2;
            memset(&rc2, 0, sizeof rc2);
            rc2.client = cc;
            rc2.client.on_event = NULL;
            rc2.client.user = NULL;
            rc2.on_event = client_event;
            rc2.on_message = rt_message;
            rc2.on_presence = rt_presence;
            rc2.on_welcome = rt_welcome;
            rc2.on_ack = rt_ack;
            rc2.on_error = rt_error;
            rc2.token = a.o.token;
            rc2.user = &a;
            if ((a.rt = rtws_rt_new(a.ctx, &rc2, rtws_time_now_ms(), &err)) != NULL)
                for (i = 0; i < a.o.n_subs; i++) rtws_rt_subscribe(a.rt, a.o.subs[i], NULL, NULL);
        } else {
            a.cl = rtws_client_new(a.ctx, &cc, rtws_time_now_ms(), &err);
        }
        if (!a.cl && !a.rt) {
            fprintf(stderr, "rtwscat: %s: %s\n", a.o.url, rtws_err_str(err));
            rtws_ctx_free(a.ctx);
            return err == RTWS_ERR_URL ? EXIT_USAGE : EXIT_FAIL;
        }
        if (!a.o.quiet && isatty(0) && !a.o.exec)
            fprintf(stderr, "rtwscat: connecting to %s; type lines to send, Ctrl-D to close\n", a.o.url);
    }

    rc = run(&a);
    if (a.rt) rtws_rt_free(a.rt);
    if (a.cl) rtws_client_free(a.cl);
    end_child(&a.one, 1);
    while (a.peers) {
        peer *p = a.peers;
        a.peers = p->next;
        end_child(p, 1);
        free(p->child_out.p);
        free(p);
    }
    rtws_ctx_free(a.ctx);
    free(a.in.p);
    free(a.one.child_out.p);
    return rc;
}
