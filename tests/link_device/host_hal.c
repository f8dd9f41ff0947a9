/* A tiny host HAL for the link tests: the UART is a TCP socket (one client at a time, so
 * the host talks to it with pyserial's socket:// URL), the NV store is a plain file.
 * Configured by environment variables:
 *   TT_LINK_PORT     TCP port on 127.0.0.1 (0: any free port). Prints "PORT <n>" on stdout.
 *   TT_NV_PATH       NV store file (created with 0xFF bytes); unset: no NV store
 *   TT_NV_BYTES      its size (default 4096)
 *   TT_NV_CRASH_AT   exit(3) in the middle of the n-th nv_write (power loss during a save)
 *   TT_NO_ENTROPY    set: no random source (as on QEMU's boards: nonces need the NV store) */
#define _POSIX_C_SOURCE 200809L
#include "tt_hal.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int listen_fd = -1, client_fd = -1, nv_fd = -1;
static size_t nv_bytes;
static long nv_crash_at, nv_writes;

void tt_hal_init(void)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    const char *port = getenv("TT_LINK_PORT"), *nv = getenv("TT_NV_PATH");
    const char *nvb = getenv("TT_NV_BYTES"), *crash = getenv("TT_NV_CRASH_AT");
    int one = 1;

    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)(port ? atoi(port) : 0));
    if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(listen_fd, 1) != 0) {
        perror("host_hal: bind/listen");
        exit(2);
    }
    getsockname(listen_fd, (struct sockaddr *)&a, &alen);
    printf("PORT %d\n", ntohs(a.sin_port));
    fflush(stdout);

    nv_bytes = nvb ? (size_t)atol(nvb) : 4096u;
    nv_crash_at = crash ? atol(crash) : 0;
    if (nv) {
        nv_fd = open(nv, O_RDWR | O_CREAT, 0644);
        if (nv_fd >= 0 && lseek(nv_fd, 0, SEEK_END) < (off_t)nv_bytes) {
            uint8_t ff[256];
            off_t at = lseek(nv_fd, 0, SEEK_END);
            memset(ff, 0xFF, sizeof ff);
            while ((size_t)at < nv_bytes) {
                size_t k = nv_bytes - (size_t)at < sizeof ff ? nv_bytes - (size_t)at : sizeof ff;
                if (pwrite(nv_fd, ff, k, at) != (ssize_t)k)
                    break;
                at += (off_t)k;
            }
        }
    }
}

static int ensure_client(void)
{
    int one = 1;
    if (client_fd >= 0)
        return 1;
    client_fd = accept(listen_fd, NULL, NULL);   /* nothing else to do until a host connects */
    if (client_fd >= 0)
        setsockopt(client_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return client_fd >= 0;
}

int tt_hal_uart_read(uint8_t *buf, size_t max)
{
    ssize_t n;
    if (!ensure_client())
        return 0;
    n = recv(client_fd, buf, max, MSG_DONTWAIT);
    if (n == 0) {                 /* host closed: wait for the next one */
        close(client_fd);
        client_fd = -1;
        return 0;
    }
    return n < 0 ? 0 : (int)n;
}

void tt_hal_uart_write(const uint8_t *buf, size_t n)
{
    while (n > 0 && client_fd >= 0) {
        ssize_t k = send(client_fd, buf, n, MSG_NOSIGNAL);
        if (k <= 0)
            return;
        buf += k;
        n -= (size_t)k;
    }
}

uint32_t tt_hal_work_count(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint32_t)((uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u);
}

const char *tt_hal_work_unit(void) { return "us"; }

size_t tt_hal_nv_size(void) { return nv_fd >= 0 ? nv_bytes : 0; }

int tt_hal_nv_read(uint32_t off, void *dst, size_t n)
{
    if (nv_fd < 0 || off > nv_bytes || n > nv_bytes - off)
        return TT_HAL_ERR_RANGE;
    return pread(nv_fd, dst, n, off) == (ssize_t)n ? 0 : TT_HAL_ERR_IO;
}

int tt_hal_nv_write(uint32_t off, const void *src, size_t n)
{
    if (nv_fd < 0 || off > nv_bytes || n > nv_bytes - off)
        return TT_HAL_ERR_RANGE;
    if (nv_crash_at > 0 && ++nv_writes == nv_crash_at) {
        if (pwrite(nv_fd, src, n / 2, off) < 0)   /* half of it reaches the store */
            _exit(4);
        _exit(3);
    }
    return pwrite(nv_fd, src, n, off) == (ssize_t)n ? 0 : TT_HAL_ERR_IO;
}

int tt_hal_entropy(uint8_t *buf, size_t n)
{
    ssize_t got = -1;
    int fd;
    if (getenv("TT_NO_ENTROPY"))
        return 0;
    fd = open("/dev/urandom", O_RDONLY);
    if (fd >= 0) {
        got = read(fd, buf, n);
        close(fd);
    }
    return got == (ssize_t)n ? (int)n : 0;
}

void tt_hal_idle(void)
{
    struct pollfd p;
    if (client_fd < 0)
        return;
    p.fd = client_fd;
    p.events = POLLIN;
    p.revents = 0;
    (void)poll(&p, 1, 20);
}
