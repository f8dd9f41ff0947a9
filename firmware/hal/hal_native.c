/* hal_native.c - HAL of the native board: the firmware as a host process.
 *   UART: a pseudo-terminal; its path is printed on stdout as "TT_PTY /dev/pts/N".
 *   Work counter: microseconds of CLOCK_MONOTONIC.
 *   NV store: a plain file, $TT_NV_FILE or TT_NV_FILE (tt_board.h) in the working directory. */
/* posix_openpt/grantpt/ptsname are XSI; cfmakeraw and usleep are BSD/default. */
#define _XOPEN_SOURCE 600
#define _DEFAULT_SOURCE

#include "tt_hal.h"
#include "tt_board.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static int pty_master = -1;
static int pty_slave = -1;   /* kept open so reads never see EIO before the host connects */

static void die(const char *what)
{
    fprintf(stderr, "tt_hal_native: %s: %s\n", what, strerror(errno));
    exit(1);
}

void tt_hal_init(void)
{
    struct termios tio;
    const char *name;
    pty_master = posix_openpt(O_RDWR | O_NOCTTY);
    if (pty_master < 0 || grantpt(pty_master) != 0 || unlockpt(pty_master) != 0) {
        die("cannot create a pty");
    }
    name = ptsname(pty_master);
    if (name == NULL) {
        die("ptsname");
    }
    pty_slave = open(name, O_RDWR | O_NOCTTY);
    if (pty_slave < 0 || tcgetattr(pty_slave, &tio) != 0) {
        die("cannot open the pty slave");
    }
    cfmakeraw(&tio);   /* binary frames: no echo, no line discipline */
    if (tcsetattr(pty_slave, TCSANOW, &tio) != 0) {
        die("cannot make the pty raw");
    }
    if (fcntl(pty_master, F_SETFL, fcntl(pty_master, F_GETFL) | O_NONBLOCK) != 0) {
        die("cannot make the pty non-blocking");
    }
    printf("TT_PTY %s\n", name);
    fflush(stdout);
}

int tt_hal_uart_read(uint8_t *buf, size_t max)
{
    ssize_t n = read(pty_master, buf, max);
    return n > 0 ? (int)n : 0;
}

void tt_hal_uart_write(const uint8_t *buf, size_t n)
{
    while (n > 0) {
        ssize_t done = write(pty_master, buf, n);
        if (done > 0) {
            buf += done;
            n -= (size_t)done;
        } else if (done < 0 && errno != EAGAIN && errno != EINTR) {
            die("pty write");
        } else {
            usleep(100);   /* the host has not drained the pty yet */
        }
    }
}

uint32_t tt_hal_work_count(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
}

const char *tt_hal_work_unit(void)
{
    return TT_WORK_UNIT;
}

void tt_hal_idle(void)
{
    usleep(200);
}

int tt_hal_entropy(uint8_t *buf, size_t n)
{
    size_t got = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f != NULL) {
        got = fread(buf, 1, n, f);
        fclose(f);
    }
    return got == n ? (int)n : 0;
}

/* ---- NV store: a file ------------------------------------------------------------------ */
static const char *nv_path(void)
{
    const char *env = getenv("TT_NV_FILE");
    return env != NULL && env[0] != '\0' ? env : TT_NV_FILE;
}

size_t tt_hal_nv_size(void)
{
    return (size_t)TT_NV_BYTES;
}

static int nv_in_range(uint32_t off, size_t n)
{
    return off <= TT_NV_BYTES && n <= (size_t)TT_NV_BYTES - off;
}

int tt_hal_nv_read(uint32_t off, void *dst, size_t n)
{
    FILE *f;
    size_t got = 0;
    int err = 0;
    if (!nv_in_range(off, n)) {
        return TT_HAL_ERR_RANGE;
    }
    memset(dst, 0xFF, n);   /* never-written bytes read as erased flash */
    f = fopen(nv_path(), "rb");
    if (f == NULL) {
        return errno == ENOENT ? 0 : TT_HAL_ERR_IO;
    }
    if (fseek(f, (long)off, SEEK_SET) == 0) {
        got = fread(dst, 1, n, f);
        if (got < n && ferror(f)) {
            err = TT_HAL_ERR_IO;
        }
    }
    fclose(f);
    return err;
}

int tt_hal_nv_write(uint32_t off, const void *src, size_t n)
{
    FILE *f;
    long len;
    int err = 0;
    if (!nv_in_range(off, n)) {
        return TT_HAL_ERR_RANGE;
    }
    f = fopen(nv_path(), "r+b");
    if (f == NULL) {
        f = fopen(nv_path(), "w+b");
    }
    if (f == NULL) {
        return TT_HAL_ERR_IO;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0) {
        err = TT_HAL_ERR_IO;
    } else {
        for (; len < (long)off && !err; len++) {   /* pad the gap as erased (0xFF) */
            if (fputc(0xFF, f) == EOF) {
                err = TT_HAL_ERR_IO;
            }
        }
    }
    if (!err && (fseek(f, (long)off, SEEK_SET) != 0 || fwrite(src, 1, n, f) != n)) {
        err = TT_HAL_ERR_IO;
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        err = TT_HAL_ERR_IO;
    }
    fclose(f);
    return err;
}
