/* hal_cmsdk.c - HAL of the QEMU boards (mps2-an386, mps3-an547).
 *   UART: CMSDK APB UART0 at TT_UART_BASE (tt_board.h). With TT_UART_RX_IRQ (the board's
 *     UART0 receive interrupt) bytes are taken by an interrupt into a ring buffer, so the
 *     next request arrives while the device computes; otherwise it is polled. The UART
 *     holds one byte (no FIFO): polled, nothing arrives during a training step.
 *   Work counter: instructions executed. SysTick counts the core clock; under QEMU
 *     `-icount shift=10` every instruction advances virtual time by 1024 ns, so
 *     instructions = ticks * TT_WORK_TICKS_NUM / TT_WORK_TICKS_DEN (1e9 / (clock * 1024)),
 *     exact and repeatable from run to run. The receive interrupt's own instructions are
 *     left out (measured by the handler, its entry and exit calibrated at boot), so a
 *     step costs the same whether bytes arrived during it or not.
 *   NV store: a host file through ARM semihosting (QEMU -semihosting-config enable=on). */
#include "tt_hal.h"
#include "tt_board.h"

#include <string.h>

/* ---- CMSDK APB UART --------------------------------------------------------------------- */
typedef struct {
    volatile uint32_t data;
    volatile uint32_t state;     /* bit 0: TX buffer full, bit 1: RX buffer full */
    volatile uint32_t ctrl;      /* bit 0: TX enable, bit 1: RX enable, bit 3: RX interrupt */
    volatile uint32_t intstatus; /* bit 1: RX interrupt (write 1 to clear) */
    volatile uint32_t bauddiv;
} cmsdk_uart;

#define UART ((cmsdk_uart *)TT_UART_BASE)
#define UART_STATE_TXFULL 1u
#define UART_STATE_RXFULL 2u
#define UART_CTRL_RX_IRQ  8u
#define UART_INT_RX       2u

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

static uint32_t ticks_to_instructions(uint64_t ticks)
{
    /* A tick (one core clock) is a fraction of an instruction's 1024 ns, so a tick count
     * sits up to one tick below the exact instruction boundary: round to nearest. */
    return (uint32_t)((ticks * TT_WORK_TICKS_NUM + TT_WORK_TICKS_DEN / 2u) / TT_WORK_TICKS_DEN);
}

#ifdef TT_UART_RX_IRQ
/* ---- interrupt-driven receive ----------------------------------------------------------- */
#ifndef TT_UART_RX_RING
#define TT_UART_RX_RING 4096u                  /* a power of two: the requests in flight */
#endif
#define SCB_VTOR  (*(volatile uint32_t *)0xE000ED08u)
#define NVIC_ISER ((volatile uint32_t *)0xE000E100u)
#define NVIC_ICER ((volatile uint32_t *)0xE000E180u)
#define NVIC_ISPR ((volatile uint32_t *)0xE000E200u)
#define NVIC_ICPR ((volatile uint32_t *)0xE000E280u)
#define N_VECTORS 64u                          /* 16 exceptions + IRQs 0..47 */

typedef void (*vector_fn)(void);
static vector_fn ram_vectors[N_VECTORS] __attribute__((aligned(256)));
static volatile uint8_t rx_ring[TT_UART_RX_RING];
static volatile uint32_t rx_head, rx_tail;     /* head: the handler's; tail: the reader's */
static volatile uint32_t irq_instructions;     /* measured inside the handler */
static volatile uint32_t irq_calls;
static uint32_t irq_overhead;                  /* per call, outside the handler's measurement */
static volatile int rx_stalled;                /* ring full: the byte waits in the UART */

/* With the ring full the handler leaves the byte in the UART and turns its interrupt off:
 * the UART then holds the line back (as polling does), and the reader resumes it. */
void tt_uart_rx_handler(void);
void tt_uart_rx_handler(void)
{
    uint32_t t0 = SYST_CVR, t1;
    UART->intstatus = UART_INT_RX;             /* first: a byte arriving after the loop re-raises it */
    while (UART->state & UART_STATE_RXFULL) {
        if (rx_head - rx_tail >= TT_UART_RX_RING) {
            rx_stalled = 1;
            UART->ctrl = 3u;
            break;
        }
        rx_ring[rx_head % TT_UART_RX_RING] = (uint8_t)UART->data;
        rx_head++;
    }
    irq_calls++;
    t1 = SYST_CVR;
    irq_instructions += ticks_to_instructions((t0 - t1) & SYSTICK_RELOAD);   /* counts down */
}

static void unexpected_irq(void)
{
    for (;;) {
    }
}

/* The cost of taking the interrupt that the handler cannot see itself (entry, prologue,
 * epilogue, return): the same each time, so measured once with a software-pended IRQ. */
static uint32_t raw_work_count(void);
static void calibrate_irq_overhead(void)
{
    const uint32_t bit = 1u << (TT_UART_RX_IRQ % 32u);
    uint32_t with, without, a, b, inside;
    NVIC_ICER[TT_UART_RX_IRQ / 32u] = bit;
    a = raw_work_count();
    NVIC_ISPR[TT_UART_RX_IRQ / 32u] = bit;     /* pending but disabled: not taken */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    b = raw_work_count();
    without = b - a;
    NVIC_ICPR[TT_UART_RX_IRQ / 32u] = bit;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    NVIC_ISER[TT_UART_RX_IRQ / 32u] = bit;     /* taken as soon as it is pending */
    inside = irq_instructions;
    a = raw_work_count();
    NVIC_ISPR[TT_UART_RX_IRQ / 32u] = bit;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    b = raw_work_count();
    with = b - a;
    inside = irq_instructions - inside;
    irq_overhead = with - without - inside;
    irq_calls = 0;
    irq_instructions = 0;
}

static void rx_irq_init(void)
{
    const vector_fn *boot = (const vector_fn *)SCB_VTOR;
    uint32_t i;
    for (i = 0; i < N_VECTORS; i++)
        ram_vectors[i] = i < 16u ? boot[i] : unexpected_irq;
    ram_vectors[16u + TT_UART_RX_IRQ] = tt_uart_rx_handler;
    SCB_VTOR = (uint32_t)(uintptr_t)ram_vectors;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    calibrate_irq_overhead();
    UART->ctrl = 3u | UART_CTRL_RX_IRQ;
    /* A byte that arrived before the interrupt was on raised none: take it now. */
    if (UART->state & UART_STATE_RXFULL)
        NVIC_ISPR[TT_UART_RX_IRQ / 32u] = 1u << (TT_UART_RX_IRQ % 32u);
}
#endif

void tt_hal_init(void)
{
    UART->bauddiv = 16;                    /* the smallest divider the CMSDK UART accepts */
    UART->ctrl = 3u;                       /* TX and RX on */
    SYST_RVR = SYSTICK_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 7u;                         /* core clock, interrupt on wrap, enabled */
#ifdef TT_UART_RX_IRQ
    rx_irq_init();
#endif
}

int tt_hal_uart_read(uint8_t *buf, size_t max)
{
    size_t n = 0;
#ifdef TT_UART_RX_IRQ
    while (n < max && rx_tail != rx_head) {
        buf[n++] = rx_ring[rx_tail % TT_UART_RX_RING];
        rx_tail++;
    }
    if (rx_stalled && rx_head - rx_tail < TT_UART_RX_RING) {
        rx_stalled = 0;
        UART->ctrl = 3u | UART_CTRL_RX_IRQ;     /* the waiting byte raises it again */
        if (UART->state & UART_STATE_RXFULL)
            NVIC_ISPR[TT_UART_RX_IRQ / 32u] = 1u << (TT_UART_RX_IRQ % 32u);
    }
#else
    while (n < max && (UART->state & UART_STATE_RXFULL)) {
        buf[n++] = (uint8_t)UART->data;
    }
#endif
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

/* Instructions since boot, scaled from a 64-bit tick count so it wraps cleanly at 2^32. */
static uint32_t raw_work_count(void)
{
    return ticks_to_instructions(systick_ticks());
}

uint32_t tt_hal_work_count(void)
{
#ifdef TT_UART_RX_IRQ
    uint32_t raw, inside, calls;
    do {   /* a consistent triple: no receive interrupt between the reads */
        calls = irq_calls;
        inside = irq_instructions;
        raw = raw_work_count();
    } while (calls != irq_calls);
    return raw - inside - calls * irq_overhead;
#else
    return raw_work_count();
#endif
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
