/* tests/redirect_server.h - an HTTP server that answers every request with
   a redirect from a table (path -> status, Location) and closes, run in a
   child process on 127.0.0.1 (port from the OS), stopped by its PID. What
   it saw (request lines and Authorization values) is kept in shared
   memory. Paths not in the table get a 404. */
#ifndef RTWS_TEST_REDIRECT_SERVER_H
#define RTWS_TEST_REDIRECT_SERVER_H
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define RS_MAX 16
typedef struct rs_rule {
    char path[64];
    int status;
    char location[160];
} rs_rule;

typedef struct rs_seen {
    volatile int n;
    char line[32][96];   /* request lines, in order */
    char auth[32][64];   /* their Authorization values ("" when none) */
} rs_seen;

typedef struct rserver {
    int port;
    pid_t pid;
    rs_rule rules[RS_MAX];
    int nrules;
    rs_seen *seen;
} rserver;

static void rs_rule_add(rserver *s, const char *path, int status, const char *location) {
    rs_rule *r = &s->rules[s->nrules++];
    snprintf(r->path, sizeof r->path, "%s", path);
    r->status = status;
    snprintf(r->location, sizeof r->location, "%s", location);
}

static void rs_serve(rserver *s, int fd) {
    char head[8192], path[128], reply[512];
    size_t n = 0;
    int i, k;
    const char *a;
    while (n < sizeof head - 1) {
        ssize_t r = recv(fd, head + n, sizeof head - 1 - n, 0);
        if (r <= 0) return;
        n += (size_t)r;
        head[n] = '\0';
        if (strstr(head, "\r\n\r\n")) break;
    }
    k = s->seen->n;
    if (k < 32) {
        for (i = 0; head[i] && head[i] != '\r' && i < 95; i++) s->seen->line[k][i] = head[i];
        s->seen->line[k][i] = '\0';
        s->seen->auth[k][0] = '\0';
        if ((a = strstr(head, "\r\nAuthorization: ")) != NULL) {
            a += 17;
            for (i = 0; a[i] && a[i] != '\r' && i < 63; i++) s->seen->auth[k][i] = a[i];
            s->seen->auth[k][i] = '\0';
        }
        s->seen->n = k + 1;
    }
    if (sscanf(head, "GET %127s HTTP/1.1", path) != 1) path[0] = '\0';
    snprintf(reply, sizeof reply, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    for (i = 0; i < s->nrules; i++)
        if (strcmp(s->rules[i].path, path) == 0)
            snprintf(reply, sizeof reply,
                     "HTTP/1.1 %d Moved\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n",
                     s->rules[i].status, s->rules[i].location);
    send(fd, reply, strlen(reply), MSG_NOSIGNAL);
}

/* Starts the server with the rules added so far; 0 on success. */
static int rs_start(rserver *s) {
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    int lfd, one = 1;
    s->seen = (rs_seen *)mmap(NULL, sizeof *s->seen, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s->seen == MAP_FAILED) return -1;
    memset(s->seen, 0, sizeof *s->seen);
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 64)) return -1;
    getsockname(lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    s->pid = fork();
    if (s->pid < 0) return -1;
    if (s->pid == 0) {
        for (;;) { /* one request at a time: each answer is short */
            int fd = accept(lfd, NULL, NULL);
            if (fd < 0) continue;
            rs_serve(s, fd);
            close(fd);
        }
    }
    close(lfd);
    return 0;
}

static void rs_stop(rserver *s) {
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    if (s->seen && s->seen != MAP_FAILED) munmap(s->seen, sizeof *s->seen);
    s->seen = NULL;
}
#endif
