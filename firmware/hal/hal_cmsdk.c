/* hal_cmsdk.c - HAL of the QEMU boards (mps2-an386, mps3-an547).
 *   UART: CMSDK APB UART0 at TT_UART_BASE (tt_board.h), polled.
 *   Work counter: instructions executed. SysTick counts the core clock; under QEMU
 *     `-icount shift=10` every instruction advances virtual time by 1024 ns, so
 *     instructions = ticks * TT_WORK_TICKS_NUM / TT_WORK_TICKS_DEN (1e9 / (clock * 1024)),
 *     exact and repeatable from run to run.
 *   NV store: a host file through ARM semihosting (QEMU -semihosting-config enable=on). */
#include "tt_hal.h"
#include "tt_board.h"

#include <string.h>

/* ---- CMSDK APB UART --------------------------------------------------------------------- */
typedef struct {
    volatile uint32_t data;
    volatile uint32_t state;     /* bit 0: TX buffer full, bit 1: RX buffer full */
    volatile uint32_t ctrl;      /* bit 0: TX enable, bit 1: RX enable */
    volatile uint32_t intstatus;
    volatile uint32_t bauddiv;
} cmsdk_uart;

#define UART ((cmsdk_uart *)TT_UART_BASE)
#define UART_STATE_TXFULL 1u
#define UART_STATE_RXFULL 2u

/* ---- SysTick ---------------------------------------------------------------------------- */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYSTICK_RELOAD 0x00FFFFFFu

static volatile uint32_t systick_wraps;   /* SysTick periods elapsed, counted by the IRQ */

void SysTick_Handler(void);
void SysTick_Handler(void)
{
    systick_wraps++;
}

void tt_hal_init(void)
{
    UART->bauddiv = 16;                    /* the smallest divider the CMSDK UART accepts */
    UART->ctrl = 3u;                       /* TX and RX on, no interrupts */
    SYST_RVR = SYSTICK_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 7u;                         /* core clock, interrupt on wrap, enabled */
}

int tt_hal_uart_read(uint8_t *buf, size_t max)
{
    size_t n = 0;
    while (n < max && (UART->state & UART_STATE_RXFULL)) {
        buf[n++] = (uint8_t)UART->data;
    }
    return (int)n;
}

void tt_hal_uart_write(const uint8_t *buf, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        while (UART->state & UART_STATE_TXFULL) {
        }
        UART->data = buf[i];
    }
}

static uint64_t systick_ticks(void)
{
    uint32_t wraps, current;
    do {   /* re-read if the IRQ counted a wrap between the two reads */
        wraps = systick_wraps;
        current = SYST_CVR;
    } while (wraps != systick_wraps);
    return (uint64_t)wraps * (SYSTICK_RELOAD + 1u) + (SYSTICK_RELOAD - current);
}

uint32_t tt_hal_work_count(void)
{
    /* Scaled from a 64-bit tick count, so it wraps cleanly at 2^32 instructions. A tick
     * (one core clock) is a fraction of an instruction's 1024 ns, so the tick count sits
     * up to one tick below the exact instruction boundary: round to nearest, or two
     * reads around the same work could differ by one. */
    return (uint32_t)((systick_ticks() * TT_WORK_TICKS_NUM + TT_WORK_TICKS_DEN / 2u) / TT_WORK_TICKS_DEN);
}

const char *tt_hal_work_unit(void)
{
    return TT_WORK_UNIT;
}

void tt_hal_idle(void)
{
    /* No UART interrupt is enabled, so WFI would sleep until the next SysTick wrap:
     * just poll again. */
}

int tt_hal_entropy(uint8_t *buf, size_t n)
{
    /* QEMU's MPS boards model no TRNG: nonces come from the NV store's counter. */
    (void)buf;
    (void)n;
    return 0;
}

/* ---- NV store: semihosting file ------------------------------------------------------- */
#define SH_OPEN  0x01
#define SH_CLOSE 0x02
#define SH_WRITE 0x05
#define SH_READ  0x06
#define SH_SEEK  0x0A
#define SH_FLEN  0x0C
#define SH_MODE_RB   1
#define SH_MODE_RPB  3   /* "r+b" */
#define SH_MODE_WPB  7   /* "w+b" */

static int semihost(uint32_t op, void *args)
{
    register uint32_t r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = args;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int)r0;
}

static int nv_open(uint32_t mode)
{
    static const char path[] = TT_NV_FILE;
    uint32_t args[3];
    args[0] = (uint32_t)(uintptr_t)path;
    args[1] = mode;
    args[2] = (uint32_t)(sizeof(path) - 1);
    return semihost(SH_OPEN, args);
}

static void nv_close(int fd)
{
    uint32_t args[1];
    args[0] = (uint32_t)fd;
    (void)semihost(SH_CLOSE, args);
}

static int nv_length(int fd)
{
    uint32_t args[1];
    args[0] = (uint32_t)fd;
    return semihost(SH_FLEN, args);
}

static int nv_seek(int fd, uint32_t pos)
{
    uint32_t args[2];
    args[0] = (uint32_t)fd;
    args[1] = pos;
    return semihost(SH_SEEK, args);
}

/* SYS_READ / SYS_WRITE return the number of bytes NOT transferred. */
static int nv_transfer(uint32_t op, int fd, const void *buf, size_t n)
{
    uint32_t args[3];
    args[0] = (uint32_t)fd;
    args[1] = (uint32_t)(uintptr_t)buf;
    args[2] = (uint32_t)n;
    return semihost(op, args);
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
    int fd, len, err = 0;
    size_t have = 0;
    if (!nv_in_range(off, n)) {
        return TT_HAL_ERR_RANGE;
    }
    memset(dst, 0xFF, n);                  /* never-written bytes read as erased flash */
    fd = nv_open(SH_MODE_RB);
    if (fd < 0) {
        return 0;                          /* no file yet: all erased */
    }
    len = nv_length(fd);
    if (len > (int)off) {
        have = (size_t)len - off;
        if (have > n) {
            have = n;
        }
        if (nv_seek(fd, off) != 0 || nv_transfer(SH_READ, fd, dst, have) != 0) {
            err = TT_HAL_ERR_IO;
        }
    } else if (len < 0) {
        err = TT_HAL_ERR_IO;
    }
    nv_close(fd);
    return err;
}

int tt_hal_nv_write(uint32_t off, const void *src, size_t n)
{
    static const uint8_t erased[64] = {
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    };
    int fd, len, err = 0;
    if (!nv_in_range(off, n)) {
        return TT_HAL_ERR_RANGE;
    }
    fd = nv_open(SH_MODE_RPB);
    if (fd < 0) {
        fd = nv_open(SH_MODE_WPB);
    }
    if (fd < 0) {
        return TT_HAL_ERR_IO;
    }
    len = nv_length(fd);
    if (len < 0 || nv_seek(fd, (uint32_t)len) != 0) {
        err = TT_HAL_ERR_IO;
    }
    /* Pad a gap before `off` with 0xFF so it reads back as erased, not as a file hole. */
    while (!err && (uint32_t)len < off) {
        size_t chunk = off - (uint32_t)len < sizeof(erased) ? off - (uint32_t)len : sizeof(erased);
        if (nv_transfer(SH_WRITE, fd, erased, chunk) != 0) {
            err = TT_HAL_ERR_IO;
        }
        len += (int)chunk;
    }
    if (!err && (nv_seek(fd, off) != 0 || nv_transfer(SH_WRITE, fd, src, n) != 0)) {
        err = TT_HAL_ERR_IO;
    }
    nv_close(fd);                          /* the host flushes on close: durable on return */
    return err;
}
