/* startup_cmsdk.c - vector table and reset handler for the QEMU boards (mps2-an386,
 * mps3-an547). Copies .data from flash, zeroes .bss, turns the FPU (and MVE) on, calls main.
 * The symbols come from the board's linker script (ld/mps2_an386.ld, ld/mps3_an547.ld). */
#include <stdint.h>

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end, __stack_top;
extern int main(void);

void Reset_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void);   /* hal_cmsdk.c */

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

void Reset_Handler(void)
{
    uint32_t *src = &__data_load;
    uint32_t *dst;
    for (dst = &__data_start; dst < &__data_end;) {
        *dst++ = *src++;
    }
    for (dst = &__bss_start; dst < &__bss_end;) {
        *dst++ = 0;
    }
    /* Full access to CP10/CP11: the FPU, and on the Cortex-M55 the Helium (MVE) unit. */
    SCB_CPACR |= (3u << 20) | (3u << 22);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    main();
    for (;;) {
        __asm__ volatile("wfi");
    }
}

void Default_Handler(void)
{
    /* An unexpected fault or interrupt: stop here, visible in a debugger. */
    for (;;) {
    }
}

typedef void (*tt_vector)(void);

/* Initial stack pointer, then the 15 system exceptions; no device interrupts are used. */
__attribute__((section(".vectors"), used))
const tt_vector tt_vector_table[16] = {
    (tt_vector)(uintptr_t)&__stack_top,
    Reset_Handler,
    Default_Handler,  /* NMI */
    Default_Handler,  /* HardFault */
    Default_Handler,  /* MemManage */
    Default_Handler,  /* BusFault */
    Default_Handler,  /* UsageFault */
    Default_Handler,  /* SecureFault (v8-M) */
    0, 0, 0,
    Default_Handler,  /* SVCall */
    Default_Handler,  /* DebugMonitor */
    0,
    Default_Handler,  /* PendSV */
    SysTick_Handler,
};
