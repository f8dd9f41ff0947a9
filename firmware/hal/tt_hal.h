/* tt_hal.h - the small hardware abstraction the runtime (tt_link, main) uses.
 *
 * One implementation per board family:
 *   hal_cmsdk.c    QEMU mps2-an386 / mps3-an547: CMSDK UART0 (RX interrupt into a ring
 *                  buffer where the board has one), SysTick under -icount,
 *                  non-volatile store in a host file through ARM semihosting
 *   hal_native.c   host process: a pty, a monotonic clock in microseconds, a plain file
 *   hal_arduino.cpp real boards: the framework's Serial, cycle counter or micros(),
 *                  flash pages / EEPROM emulation
 *
 * Board facts (TT_BOARD_NAME, TT_FIRMWARE_VERSION, TT_SRAM_BYTES, TT_FLASH_BYTES, TT_CORE,
 * TT_SIMD, TT_CLOCK_HZ, TT_NV_BYTES ...) come from the generated src/tt_board.h.
 */
#ifndef TT_HAL_H
#define TT_HAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void tt_hal_init(void);

/* UART. read is non-blocking: returns bytes read (0 if none pending). write blocks until
 * every byte has been handed to the hardware / OS. */
int  tt_hal_uart_read(uint8_t *buf, size_t max);
void tt_hal_uart_write(const uint8_t *buf, size_t n);

/* Monotonic counter of work done (wraps at 2^32). Its unit is tt_hal_work_unit(), e.g.
 * "systick_1024_instr" under QEMU -icount shift=10, "cycles", "us". */
uint32_t    tt_hal_work_count(void);
const char *tt_hal_work_unit(void);

/* Non-volatile store for learned weights: tt_hal_nv_size() bytes addressed from 0.
 * Both return 0 on success, <0 on error (out of range, I/O error). A write is durable
 * when it returns. Never-written bytes read back as 0xFF. */
size_t tt_hal_nv_size(void);
int    tt_hal_nv_read(uint32_t off, void *dst, size_t n);
int    tt_hal_nv_write(uint32_t off, const void *src, size_t n);

/* Called by the main loop when no byte is pending (WFI / short sleep). */
void tt_hal_idle(void);

/* Fills buf with n bytes from a true random source and returns n, or returns 0 when the
 * board has none (QEMU's boards): authentication nonces then rely on the counter the
 * NV store persists (tt_weights_store.h). */
int tt_hal_entropy(uint8_t *buf, size_t n);

#define TT_HAL_ERR_RANGE (-1)
#define TT_HAL_ERR_IO    (-2)

#ifdef __cplusplus
}
#endif

#endif /* TT_HAL_H */
