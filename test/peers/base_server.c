/*
 * base_server.c - TEST PEER, not production code.
 *
 * Reproduces the wire behaviour of the "base" reference C server so the
 * ipcbor test-suite can check byte compatibility against a foreign peer.
 *
 *   request : [u32 method_len][method UTF-8][u32 payload_len][payload CBOR]
 *   response: [i32 ret][u32 resp_len][body]      (all integers big-endian)
 *
 * ret 0 -> body is one CBOR item; ret 1 -> raw UTF-8 error text (empty for
 * an unknown method).  Method names > 63 bytes, or EOF mid-frame, drop the
 * connection without a reply.  Usage: base_server --unix PATH | --tcp HOST PORT
 * Prints "listening <path-or-port>", then serves connections concurrently
 * (one forked child per connection; requests answered in order).
 * Build: cc -std=c99 -O2 -Wall -Wextra -o base_server base_server.c
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_METHOD 63
#define TIMER_NAME "ipc-server"
#define VERSION_TEXT "nim-timer v0.1.0"
#define MAX_CHILDREN 1024
#define MAX_DEPTH 32

/* ------------------------------------------------------------ I/O helpers */

/* 1 = got all n bytes, 0 = clean EOF before the first byte, -1 = error/short */
static int read_full(int fd, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (uint8_t *)buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) return got == 0 ? 0 : -1;
        got += (size_t)r;
    }
    return 1;
}

static int write_full(int fd, const void *buf, size_t n) {
    size_t put = 0;
    while (put < n) {
        ssize_t r = write(fd, (const uint8_t *)buf + put, n - put);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        put += (size_t)r;
    }
    return 0;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static void sleep_ms(int64_t ms) {
    if (ms <= 0) return;
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

/* ------------------------------------------------ growable byte buffer */

typedef struct { uint8_t *p; size_t len, cap; } Buf;

static void buf_put(Buf *b, const void *d, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n) cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) { perror("realloc"); exit(1); }
        b->p = np; b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void buf_str(Buf *b, const char *s) { buf_put(b, s, strlen(s)); }
/* ------------------------------------- minimal CBOR encoder (shortest form) */

static void enc_head(Buf *b, int major, uint64_t v) {
    uint8_t h[9], mt = (uint8_t)(major << 5);
    size_t n, i;
    if (v < 24)               { h[0] = mt | (uint8_t)v; n = 0; }
    else if (v <= 0xff)       { h[0] = mt | 24; n = 1; }
    else if (v <= 0xffff)     { h[0] = mt | 25; n = 2; }
    else if (v <= 0xffffffff) { h[0] = mt | 26; n = 4; }
    else                      { h[0] = mt | 27; n = 8; }
    for (i = 0; i < n; i++) h[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    buf_put(b, h, n + 1);
}

static void enc_text(Buf *b, const void *s, size_t n) { enc_head(b, 3, n); buf_put(b, s, n); }
static void enc_cstr(Buf *b, const char *s) { enc_text(b, s, strlen(s)); }
static void enc_bool(Buf *b, int v) { uint8_t x = v ? 0xf5 : 0xf4; buf_put(b, &x, 1); }
static void enc_int(Buf *b, int64_t v) {
    if (v >= 0) enc_head(b, 0, (uint64_t)v); else enc_head(b, 1, (uint64_t)(-(v + 1)));
}

/* ------------------------------------------------- minimal CBOR reader */

/* A cursor positioned at the start of a CBOR item. */
typedef struct { const uint8_t *p, *end; } Cur;

/* Read an item head; definite lengths only. 0 = ok, -1 = malformed. */
static int rd_head(Cur *c, int *major, uint64_t *arg) {
    if (c->p >= c->end) return -1;
    uint8_t ib = *c->p++;
    int ai = ib & 31, n, i;
    *major = ib >> 5;
    if (ai < 24) { *arg = (uint64_t)ai; return 0; }
    if (ai > 27) return -1;                  /* reserved or indefinite */
    n = 1 << (ai - 24);
    if (c->end - c->p < n) return -1;
    *arg = 0;
    for (i = 0; i < n; i++) *arg = *arg << 8 | *c->p++;
    return 0;
}

/* Advance past one complete item. 0 = ok, -1 = malformed. */
static int rd_skip(Cur *c, int depth) {
    int major; uint64_t arg, i;
    if (depth > MAX_DEPTH || rd_head(c, &major, &arg) < 0) return -1;
    if (major == 2 || major == 3) {                      /* byte / text string */
        if (arg > (uint64_t)(c->end - c->p)) return -1;
        c->p += arg; return 0;
    }
    if (major == 5) { if (arg > UINT64_MAX / 2) return -1; arg *= 2; }
    if (major == 4 || major == 5) {                      /* array / map */
        for (i = 0; i < arg; i++) if (rd_skip(c, depth + 1) < 0) return -1;
        return 0;
    }
    return major == 6 ? rd_skip(c, depth + 1) : 0;       /* tag; else scalar */
}

/* Look up text key in the map at m. 1 = found (*out at value), 0 = absent,
 * -1 = m is not a well-formed map. */
static int map_get(Cur m, const char *key, Cur *out) {
    int major; uint64_t n, i, klen;
    size_t want = strlen(key);
    if (rd_head(&m, &major, &n) < 0 || major != 5) return -1;
    for (i = 0; i < n; i++) {
        Cur k = m;
        if (rd_head(&k, &major, &klen) == 0 && major == 3 && klen == want &&
            (uint64_t)(k.end - k.p) >= klen && memcmp(k.p, key, want) == 0) {
            k.p += klen; *out = k; return 1;
        }
        if (rd_skip(&m, 0) < 0 || rd_skip(&m, 0) < 0) return -1;
    }
    return 0;
}

static int get_text(Cur c, const uint8_t **s, size_t *n) {
    int major; uint64_t len;
    if (rd_head(&c, &major, &len) < 0 || major != 3 || len > (uint64_t)(c.end - c.p)) return -1;
    *s = c.p; *n = (size_t)len; return 0;
}
static int get_int(Cur c, int64_t *v) {
    int major; uint64_t a;
    if (rd_head(&c, &major, &a) < 0 || (major != 0 && major != 1) || a > INT64_MAX) return -1;
    *v = major == 0 ? (int64_t)a : -1 - (int64_t)a;
    return 0;
}

/* Convenience: required fields of a map. 0 = ok, -1 = missing/wrong type. */
static int f_map(Cur m, const char *k, Cur *out) {
    int major; uint64_t n; Cur t;
    if (map_get(m, k, out) != 1) return -1;
    t = *out;
    return rd_head(&t, &major, &n) == 0 && major == 5 ? 0 : -1;
}
static int f_text(Cur m, const char *k, const uint8_t **s, size_t *n) {
    Cur v; return map_get(m, k, &v) == 1 ? get_text(v, s, n) : -1;
}
static int f_int(Cur m, const char *k, int64_t *out) {
    Cur v; return map_get(m, k, &v) == 1 ? get_int(v, out) : -1;
}
/* Optional field: 1 = present (*v set), 0 = absent or null/undefined, -1 = bad map. */
static int f_opt(Cur m, const char *k, Cur *v) {
    int r = map_get(m, k, v);
    return r == 1 && v->p < v->end && (*v->p == 0xf6 || *v->p == 0xf7) ? 0 : r;
}
/* Array of text strings: -1 if missing or any element is not text. */
static int f_text_array(Cur m, const char *k, uint64_t *count) {
    Cur v; int major; uint64_t i; const uint8_t *s; size_t n;
    if (map_get(m, k, &v) != 1 || rd_head(&v, &major, count) < 0 || major != 4) return -1;
    for (i = 0; i < *count; i++)
        if (get_text(v, &s, &n) < 0 || rd_skip(&v, 0) < 0) return -1;
    return 0;
}

/* ------------------------------------------------------ timer service */
/* Each handler returns the ret code and fills *out (CBOR or error text);
 * -1 means "could not parse the request" (ret 1 "bad request"). */

static int h_version(Buf *out) { enc_cstr(out, VERSION_TEXT); return 0; }

static int h_echo(Cur pl, Buf *out) {
    Cur req; const uint8_t *msg; size_t mlen; int64_t delay;
    if (f_map(pl, "req", &req) < 0 || f_text(req, "message", &msg, &mlen) < 0 ||
        f_int(req, "delayMs", &delay) < 0) return -1;
    if (mlen == 8 && memcmp(msg, "__fail__", 8) == 0) {   /* test hook */
        buf_str(out, "forced failure for echo");
        return 1;
    }
    sleep_ms(delay);
    enc_head(out, 5, 2);
    enc_cstr(out, "echoed");    enc_text(out, msg, mlen);
    enc_cstr(out, "timerName"); enc_cstr(out, TIMER_NAME);
    return 0;
}

static int h_complex(Cur pl, Buf *out) {
    Cur req, arr, v; int major, has_note, has_retries;
    uint64_t n, i, ntags; int64_t retries = 0, d;
    const uint8_t *s, *note = NULL; size_t sl, note_len = 0;
    char num[64];
    Buf sum = {0};
    if (f_map(pl, "req", &req) < 0 || map_get(req, "messages", &arr) != 1 ||
        rd_head(&arr, &major, &n) < 0 || major != 4) return -1;
    for (i = 0; i < n; i++)                   /* each {message, delayMs} */
        if (f_text(arr, "message", &s, &sl) < 0 || f_int(arr, "delayMs", &d) < 0 ||
            rd_skip(&arr, 0) < 0) return -1;
    if (f_text_array(req, "tags", &ntags) < 0 ||
        (has_note = f_opt(req, "note", &v)) < 0 || (has_note && get_text(v, &note, &note_len) < 0) ||
        (has_retries = f_opt(req, "retries", &v)) < 0 || (has_retries && get_int(v, &retries) < 0))
        return -1;
    /* "received <n> messages, note=<note or <none>>, retries=<retries or 0>" */
    snprintf(num, sizeof num, "received %llu messages, note=", (unsigned long long)n);
    buf_str(&sum, num);
    if (has_note) buf_put(&sum, note, note_len); else buf_str(&sum, "<none>");
    snprintf(num, sizeof num, ", retries=%lld", (long long)retries);
    buf_str(&sum, num);
    enc_head(out, 5, 3);
    enc_cstr(out, "summary");   enc_text(out, sum.p, sum.len);
    enc_cstr(out, "itemCount"); enc_int(out, (int64_t)n);
    enc_cstr(out, "hasNote");   enc_bool(out, has_note);
    free(sum.p);
    return 0;
}

static int h_schedule(Cur pl, Buf *out) {
    Cur job, retry, sched, v; const uint8_t *name; size_t name_len;
    uint64_t cnt; int64_t prio, max_att, backoff, start, interval, jitter = 0, runs = 1;
    int has_jitter;
    if (f_map(pl, "job", &job) < 0 || f_map(pl, "retry", &retry) < 0 ||
        f_map(pl, "schedule", &sched) < 0 ||
        f_text(job, "name", &name, &name_len) < 0 || f_text_array(job, "payload", &cnt) < 0 ||
        f_int(job, "priority", &prio) < 0 ||
        f_int(retry, "maxAttempts", &max_att) < 0 || f_int(retry, "backoffMs", &backoff) < 0 ||
        f_text_array(retry, "retryOn", &cnt) < 0 ||
        f_int(sched, "startAtMs", &start) < 0 || f_int(sched, "intervalMs", &interval) < 0 ||
        (has_jitter = f_opt(sched, "jitter", &v)) < 0 ||
        (has_jitter && get_int(v, &jitter) < 0)) return -1;
    sleep_ms(1);
    if (name_len == 0) { buf_str(out, "job name must not be empty"); return 1; }
    if (max_att <= 0) { buf_str(out, "retry.maxAttempts must be positive"); return 1; }
    if (interval > 0) { runs = 60000 / interval; if (runs < 1) runs = 1; }
    enc_head(out, 5, 4);
    enc_cstr(out, "jobId");                               /* "ipc-server:<name>" */
    enc_head(out, 3, strlen(TIMER_NAME ":") + name_len);
    buf_str(out, TIMER_NAME ":"); buf_put(out, name, name_len);
    enc_cstr(out, "willRunCount");       enc_int(out, runs);
    enc_cstr(out, "firstRunAtMs");       enc_int(out, (int64_t)((uint64_t)start + (uint64_t)jitter));
    enc_cstr(out, "effectiveBackoffMs"); enc_int(out, backoff);
    return 0;
}

static int method_is(const char *m, size_t n, const char *name) {
    return n == strlen(name) && memcmp(m, name, n) == 0;
}

static int dispatch(const char *m, size_t mlen, const uint8_t *pl, size_t plen, Buf *out) {
    Cur all = { pl, pl + plen }, c = { pl, pl + plen };
    size_t base = out->len;                        /* body starts here */
    int ret;
    if (method_is(m, mlen, "version")) return h_version(out);  /* payload ignored */
    if (!method_is(m, mlen, "echo") && !method_is(m, mlen, "complex") &&
        !method_is(m, mlen, "schedule"))
        return 1;                                  /* unknown: empty body */
    /* payload must be exactly one well-formed CBOR item */
    if (rd_skip(&all, 0) < 0 || all.p != all.end) ret = -1;
    else if (method_is(m, mlen, "echo")) ret = h_echo(c, out);
    else if (method_is(m, mlen, "complex")) ret = h_complex(c, out);
    else ret = h_schedule(c, out);
    if (ret < 0) { out->len = base; buf_str(out, "bad request"); ret = 1; }
    return ret;
}

/* ------------------------------------------------------ connection loop */

static void serve(int fd) {
    for (;;) {
        uint8_t hdr[8]; char method[MAX_METHOD + 1]; uint8_t *payload;
        uint32_t mlen, plen; int ret; Buf out = {0};
        if (read_full(fd, hdr, 4) != 1) return;          /* EOF or error */
        mlen = be32(hdr);
        if (mlen > MAX_METHOD) return;                   /* drop, no reply */
        if (read_full(fd, method, mlen) != 1 || read_full(fd, hdr, 4) != 1) return;
        plen = be32(hdr);
        payload = malloc(plen ? plen : 1);
        if (!payload || read_full(fd, payload, plen) != 1) { free(payload); return; }
        buf_put(&out, hdr, 8);                           /* header placeholder */
        ret = dispatch(method, mlen, payload, plen, &out);
        put_be32(out.p, (uint32_t)(int32_t)ret);
        put_be32(out.p + 4, (uint32_t)(out.len - 8));
        free(payload);
        ret = write_full(fd, out.p, out.len);
        free(out.p);
        if (ret < 0) return;
    }
}

/* -------------------------------------------------------- listener/main */

static const char *g_unix_path;          /* unlinked on shutdown */
static pid_t g_children[MAX_CHILDREN];   /* live connection handlers */

static void on_term(int sig) {           /* async-signal-safe cleanup */
    int i; (void)sig;
    for (i = 0; i < MAX_CHILDREN; i++) if (g_children[i] > 0) kill(g_children[i], SIGTERM);
    if (g_unix_path) unlink(g_unix_path);
    _exit(0);
}

static void on_chld(int sig) { (void)sig; }   /* only interrupts accept() */

static int listen_unix(const char *path) {
    struct sockaddr_un sa;
    int fd;
    if (strlen(path) >= sizeof sa.sun_path) { fprintf(stderr, "path too long\n"); exit(1); }
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, path);
    unlink(path);
    if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 64) < 0) {
        perror("unix listen"); exit(1);
    }
    g_unix_path = path;
    printf("listening %s\n", path);
    return fd;
}

static int listen_tcp(const char *host, const char *port) {
    struct addrinfo hints, *res, *ai;
    struct sockaddr_storage ss; socklen_t sl = sizeof ss;
    int fd = -1, one = 1, e;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC; hints.ai_socktype = SOCK_STREAM; hints.ai_flags = AI_PASSIVE;
    if ((e = getaddrinfo(host, port, &hints, &res)) != 0) {
        fprintf(stderr, "getaddrinfo: %s\n", gai_strerror(e)); exit(1);
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0) break;
        close(fd); fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) { perror("tcp listen"); exit(1); }
    printf("listening %u\n", ss.ss_family == AF_INET6
           ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
           : ntohs(((struct sockaddr_in *)&ss)->sin_port));
    return fd;
}

int main(int argc, char **argv) {
    struct sigaction sa;
    sigset_t block;
    int lfd, i, one = 1;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;  sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_chld;  sigaction(SIGCHLD, &sa, NULL);   /* no SA_RESTART */
    sa.sa_handler = on_term;  sigaction(SIGTERM, &sa, NULL); sigaction(SIGINT, &sa, NULL);
    sigemptyset(&block); sigaddset(&block, SIGTERM); sigaddset(&block, SIGINT);

    if (argc == 3 && strcmp(argv[1], "--unix") == 0) lfd = listen_unix(argv[2]);
    else if (argc == 4 && strcmp(argv[1], "--tcp") == 0) lfd = listen_tcp(argv[2], argv[3]);
    else { fprintf(stderr, "usage: %s --unix PATH | --tcp HOST PORT\n", argv[0]); return 1; }
    fflush(stdout);

    for (;;) {
        int cfd = accept(lfd, NULL, NULL), err = errno;
        pid_t pid;
        /* reap finished handlers (SIGCHLD interrupts accept with EINTR) */
        sigprocmask(SIG_BLOCK, &block, NULL);
        while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
            for (i = 0; i < MAX_CHILDREN; i++) if (g_children[i] == pid) g_children[i] = 0;
        sigprocmask(SIG_UNBLOCK, &block, NULL);
        if (cfd < 0) {
            if (err == EINTR || err == ECONNABORTED) continue;
            fprintf(stderr, "accept: %s\n", strerror(err));
            if (g_unix_path) unlink(g_unix_path);
            return 1;
        }
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  /* fails harmlessly on unix */
        sigprocmask(SIG_BLOCK, &block, NULL);
        pid = fork();
        if (pid == 0) {                           /* child: one connection */
            sa.sa_handler = SIG_DFL;
            sigaction(SIGTERM, &sa, NULL); sigaction(SIGINT, &sa, NULL); sigaction(SIGCHLD, &sa, NULL);
            sigprocmask(SIG_UNBLOCK, &block, NULL);
            close(lfd); serve(cfd); close(cfd);
            _exit(0);
        }
        if (pid < 0) perror("fork");
        for (i = 0; pid > 0 && i < MAX_CHILDREN; i++)
            if (g_children[i] == 0) { g_children[i] = pid; break; }
        sigprocmask(SIG_UNBLOCK, &block, NULL);
        close(cfd);
    }
}
