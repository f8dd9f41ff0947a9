/* hal_arduino.cpp - HAL of the real boards, through the Arduino framework
 * (ststm32, nordicnrf52, raspberrypi, espressif32).
 *   UART: the framework's Serial (USB CDC or the debugger's virtual COM port).
 *   Work counter: the core's cycle counter where it has one (DWT CYCCNT on Cortex-M3/4/7/33,
 *     CCOUNT on Xtensa), micros() elsewhere (Cortex-M0+); the unit is TT_WORK_UNIT.
 *   NV store: EEPROM emulation in flash pages (EEPROM.h of the core), committed on write.
 * The framework owns main(): setup() and loop() drive the runtime's main loop (main.c, built
 * with TT_NO_MAIN). */
#include <Arduino.h>
#include <EEPROM.h>
#include <string.h>

extern "C" {
#include "tt_hal.h"
#include "tt_board.h"
void tt_main_setup(void);
void tt_main_poll(void);
}

#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_8M_MAIN__)
#define TT_HAVE_DWT 1
#define DEMCR      (*(volatile uint32_t *)0xE000EDFCu)
#define DWT_CTRL   (*(volatile uint32_t *)0xE0001000u)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#endif

/* The emulated EEPROM may be smaller than the board file's figure: use what the core has. */
#if defined(ARDUINO_ARCH_ESP32) || defined(ARDUINO_ARCH_RP2040)
#define TT_EEPROM_NEEDS_BEGIN 1
#define TT_EEPROM_BYTES 4096u
#else
#define TT_EEPROM_BYTES ((size_t)EEPROM.length())
#endif

extern "C" void tt_hal_init(void)
{
    Serial.begin(TT_BAUD);
#ifdef TT_EEPROM_NEEDS_BEGIN
    EEPROM.begin(TT_EEPROM_BYTES);
#endif
#ifdef TT_HAVE_DWT
    DEMCR |= 1u << 24;   /* TRCENA */
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;      /* CYCCNTENA */
#endif
}

extern "C" int tt_hal_uart_read(uint8_t *buf, size_t max)
{
    size_t n = 0;
    while (n < max && Serial.available() > 0) {
        int c = Serial.read();
        if (c < 0) {
            break;
        }
        buf[n++] = (uint8_t)c;
    }
    return (int)n;
}

extern "C" void tt_hal_uart_write(const uint8_t *buf, size_t n)
{
    Serial.write(buf, n);
}

extern "C" uint32_t tt_hal_work_count(void)
{
#if defined(TT_HAVE_DWT)
    return DWT_CYCCNT;
#elif defined(ARDUINO_ARCH_ESP32)
    return ESP.getCycleCount();
#else
    return (uint32_t)micros();
#endif
}

extern "C" const char *tt_hal_work_unit(void)
{
    return TT_WORK_UNIT;
}

extern "C" void tt_hal_idle(void)
{
    yield();   /* lets USB / RTOS housekeeping run */
}

extern "C" int tt_hal_entropy(uint8_t *buf, size_t n)
{
    /* No portable TRNG across the Arduino cores: nonces come from the NV store's counter. */
    (void)buf;
    (void)n;
    return 0;
}

extern "C" size_t tt_hal_nv_size(void)
{
    return TT_EEPROM_BYTES < (size_t)TT_NV_BYTES ? TT_EEPROM_BYTES : (size_t)TT_NV_BYTES;
}

extern "C" int tt_hal_nv_read(uint32_t off, void *dst, size_t n)
{
    uint8_t *out = (uint8_t *)dst;
    if (off > tt_hal_nv_size() || n > tt_hal_nv_size() - off) {
        return TT_HAL_ERR_RANGE;
    }
    for (size_t i = 0; i < n; i++) {
        out[i] = EEPROM.read((int)(off + i));
    }
    return 0;
}

extern "C" int tt_hal_nv_write(uint32_t off, const void *src, size_t n)
{
    const uint8_t *in = (const uint8_t *)src;
    if (off > tt_hal_nv_size() || n > tt_hal_nv_size() - off) {
        return TT_HAL_ERR_RANGE;
    }
    for (size_t i = 0; i < n; i++) {
        EEPROM.write((int)(off + i), in[i]);
    }
#ifdef TT_EEPROM_NEEDS_BEGIN
    if (!EEPROM.commit()) {
        return TT_HAL_ERR_IO;
    }
#endif
    return 0;
}

void setup()
{
    tt_main_setup();
}

void loop()
{
    tt_main_poll();
}
