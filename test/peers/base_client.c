/*
 * base_client.c - TEST PEER, not production code.
 *
 * Reproduces the wire behaviour of the "base" reference C client so the
 * ipcbor test-suite can check byte compatibility against a foreign peer.
 *
 *   request : [u32 method_len][method UTF-8][u32 payload_len][payload CBOR]
 *   response: [i32 ret][u32 resp_len][body]      (all integers big-endian)
 *
 * Like the reference, each request is sent as FOUR separate write() calls
 * (method_len, method, payload_len, payload) to exercise reassembly.
 *
 * Usage:
 *   base_client --unix PATH | --tcp HOST PORT
 *       calls version, then echo("hello over the wire", delayMs 5) on one
 *       connection and prints the three "[client] ..." lines.
 *   base_client (--unix PATH | --tcp HOST PORT) --raw METHOD HEXPAYLOAD
 *       sends one request and prints "ret=<n> body=<hex>".
 * Exit: 0 ok, 1 error, 2 connection closed / short read.
 *
 * Build: cc -std=c99 -O2 -Wall -Wextra -o base_client base_client.c
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
#include <unistd.h>

#define EXIT_CLOSED 2

static void die(const char *msg) { fprintf(stderr, "base_client: %s\n", msg); exit(1); }

/* ------------------------------------------------------------ I/O helpers */

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

/* 0 = got all n bytes, -1 = EOF or error before that */
static int read_full(int fd, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (uint8_t *)buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

static int connect_unix(const char *path) {
    struct sockaddr_un sa;
    int fd;
    if (strlen(path) >= sizeof sa.sun_path) die("unix path too long");
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, path);
    if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("connect"); exit(1); }
    return fd;
}

static int connect_tcp(const char *host, const char *port) {
    struct addrinfo hints, *res, *ai;
    int fd = -1, one = 1, e;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC; hints.ai_socktype = SOCK_STREAM;
    if ((e = getaddrinfo(host, port, &hints, &res)) != 0) {
        fprintf(stderr, "base_client: getaddrinfo: %s\n", gai_strerror(e)); exit(1);
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        if (fd >= 0) close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) { perror("connect"); exit(1); }
    /* keep the four writes as separate segments rather than Nagle-batched */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* One request/response round trip. Returns 0 ok, -1 write error,
 * -2 connection closed / short read. *body is malloc'ed. */
static int call(int fd, const char *method, const uint8_t *pl, uint32_t plen,
                int32_t *ret, uint8_t **body, uint32_t *blen) {
    uint8_t h[8];
    uint32_t mlen = (uint32_t)strlen(method), u;
    h[0] = (uint8_t)(mlen >> 24); h[1] = (uint8_t)(mlen >> 16);
    h[2] = (uint8_t)(mlen >> 8);  h[3] = (uint8_t)mlen;
    h[4] = (uint8_t)(plen >> 24); h[5] = (uint8_t)(plen >> 16);
    h[6] = (uint8_t)(plen >> 8);  h[7] = (uint8_t)plen;
    if (write_full(fd, h, 4) < 0 || write_full(fd, method, mlen) < 0 ||   /* write 1, 2 */
        write_full(fd, h + 4, 4) < 0 || write_full(fd, pl, plen) < 0)     /* write 3, 4 */
        return errno == EPIPE || errno == ECONNRESET ? -2 : -1;
    if (read_full(fd, h, 8) < 0) return -2;
    u = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    *ret = (int32_t)u;
    *blen = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
    if (!(*body = malloc(*blen ? *blen : 1))) die("out of memory");
    if (read_full(fd, *body, *blen) < 0) { free(*body); return -2; }
    return 0;
}

/* ------------------------------------------- minimal CBOR encode/decode */

typedef struct { uint8_t *p; size_t len, cap; } Buf;

static void buf_put(Buf *b, const void *d, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n) cap *= 2;
        if (!(b->p = realloc(b->p, cap))) die("out of memory");
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, d, n);
    b->len += n;
}

/* Shortest-form head (major type + argument). */
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

static void enc_cstr(Buf *b, const char *s) { enc_head(b, 3, strlen(s)); buf_put(b, s, strlen(s)); }

typedef struct { const uint8_t *p, *end; } Cur;

/* Definite-length head. 0 ok, -1 malformed. */
static int rd_head(Cur *c, int *major, uint64_t *arg) {
    int ai, n, i;
    if (c->p >= c->end) return -1;
    *major = *c->p >> 5; ai = *c->p++ & 31;
    if (ai < 24) { *arg = (uint64_t)ai; return 0; }
    if (ai > 27) return -1;
    n = 1 << (ai - 24);
    if (c->end - c->p < n) return -1;
    for (*arg = 0, i = 0; i < n; i++) *arg = *arg << 8 | *c->p++;
    return 0;
}

static int rd_skip(Cur *c, int depth) {
    int major; uint64_t arg, i;
    if (depth > 32 || rd_head(c, &major, &arg) < 0) return -1;
    if (major == 2 || major == 3) {
        if (arg > (uint64_t)(c->end - c->p)) return -1;
        c->p += arg; return 0;
    }
    if (major == 5) { if (arg > UINT64_MAX / 2) return -1; arg *= 2; }
    if (major == 4 || major == 5) {
        for (i = 0; i < arg; i++) if (rd_skip(c, depth + 1) < 0) return -1;
        return 0;
    }
    return major == 6 ? rd_skip(c, depth + 1) : 0;
}

/* Decode a text item into a malloc'ed NUL-terminated string (NULL on error). */
static char *rd_text(Cur c) {
    int major; uint64_t n; char *s;
    if (rd_head(&c, &major, &n) < 0 || major != 3 || n > (uint64_t)(c.end - c.p)) return NULL;
    if (!(s = malloc((size_t)n + 1))) die("out of memory");
    memcpy(s, c.p, (size_t)n); s[n] = 0;
    return s;
}

/* Text value of key in the map at m (malloc'ed), NULL if absent/wrong type. */
static char *map_text(Cur m, const char *key) {
    int major; uint64_t n, i;
    if (rd_head(&m, &major, &n) < 0 || major != 5) return NULL;
    for (i = 0; i < n; i++) {
        char *k = rd_text(m);
        int hit = k && strcmp(k, key) == 0;
        free(k);
        if (rd_skip(&m, 0) < 0) return NULL;
        if (hit) return rd_text(m);
        if (rd_skip(&m, 0) < 0) return NULL;
    }
    return NULL;
}

/* ------------------------------------------------------------------ modes */

static int hexval(int ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Decode HEXPAYLOAD (validated before connecting). */
static uint8_t *unhex(const char *hex, size_t *len) {
    size_t n = strlen(hex), i;
    uint8_t *pl = malloc(n / 2 + 1);
    if (!pl) die("out of memory");
    if (n % 2) die("hex payload has odd length");
    for (i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) die("bad hex payload");
        pl[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = n / 2;
    return pl;
}

static int run_raw(int fd, const char *method, uint8_t *pl, size_t plen) {
    uint8_t *body; int32_t ret; uint32_t blen, i;
    int r = call(fd, method, pl, (uint32_t)plen, &ret, &body, &blen);
    if (r == -2) { fprintf(stderr, "base_client: connection closed\n"); return EXIT_CLOSED; }
    if (r < 0) { perror("write"); return 1; }
    printf("ret=%d body=", (int)ret);
    for (i = 0; i < blen; i++) printf("%02x", body[i]);
    printf("\n");
    free(body);
    return 0;
}

/* Call one method; exits on transport error or ret != 0. */
static Cur must_call(int fd, const char *method, Buf *pl, uint8_t **body) {
    int32_t ret; uint32_t blen; Cur c;
    int r = call(fd, method, pl->p, (uint32_t)pl->len, &ret, body, &blen);
    if (r == -2) { fprintf(stderr, "base_client: connection closed\n"); exit(EXIT_CLOSED); }
    if (r < 0) { perror("write"); exit(1); }
    if (ret != 0) {
        fprintf(stderr, "base_client: %s failed (ret=%d): %.*s\n", method, (int)ret,
                (int)blen, (const char *)*body);
        exit(1);
    }
    c.p = *body; c.end = *body + blen;
    return c;
}

static int run_demo(int fd) {
    Buf pl = {0};
    uint8_t *body;
    char *version, *echoed, *timer;
    Cur c;

    /* version: payload = {} */
    enc_head(&pl, 5, 0);
    c = must_call(fd, "version", &pl, &body);
    if (!(version = rd_text(c))) die("version: response is not CBOR text");
    free(body);

    /* echo: {req: {message: "hello over the wire", delayMs: 5}} */
    pl.len = 0;
    enc_head(&pl, 5, 1);
    enc_cstr(&pl, "req");
    enc_head(&pl, 5, 2);
    enc_cstr(&pl, "message"); enc_cstr(&pl, "hello over the wire");
    enc_cstr(&pl, "delayMs"); enc_head(&pl, 0, 5);
    c = must_call(fd, "echo", &pl, &body);
    echoed = map_text(c, "echoed");
    timer = map_text(c, "timerName");
    if (!echoed || !timer) die("echo: malformed response");
    free(body); free(pl.p);

    printf("[client] version = %s\n", version);
    printf("[client] echo.echoed= %s\n", echoed);
    printf("[client] echo.timer = %s\n", timer);
    free(version); free(echoed); free(timer);
    return 0;
}

int main(int argc, char **argv) {
    int fd, rest = -1, rc;
    uint8_t *raw = NULL; size_t raw_len = 0;
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 3 && strcmp(argv[1], "--unix") == 0) rest = 3;
    if (argc >= 4 && strcmp(argv[1], "--tcp") == 0) rest = 4;
    /* remaining args: nothing (demo) or --raw METHOD HEXPAYLOAD */
    if (rest < 0 || !(argc == rest || (argc == rest + 3 && strcmp(argv[rest], "--raw") == 0))) {
        fprintf(stderr, "usage: %s (--unix PATH | --tcp HOST PORT) [--raw METHOD HEXPAYLOAD]\n",
                argv[0]);
        return 1;
    }
    if (argc > rest) raw = unhex(argv[rest + 2], &raw_len);
    fd = rest == 3 ? connect_unix(argv[2]) : connect_tcp(argv[2], argv[3]);
    rc = raw ? run_raw(fd, argv[rest + 1], raw, raw_len) : run_demo(fd);
    free(raw);
    if (fflush(stdout) != 0) rc = 1;
    close(fd);
    return rc;
}
