/* main.c - the firmware's main loop: bring up the board, then serve the serial link.
 * Real boards run under a framework that owns main(): they build with TT_NO_MAIN and
 * hal_arduino.cpp calls tt_main_setup() from setup() and tt_main_poll() from loop(). */
#include "tt_hal.h"
#include "tt_link.h"

void tt_main_setup(void);
void tt_main_poll(void);

void tt_main_setup(void)
{
    tt_hal_init();
    tt_link_init();
}

void tt_main_poll(void)
{
    tt_link_service();   /* calls tt_hal_idle() itself when no byte was pending */
}

#ifndef TT_NO_MAIN
int main(void)
{
    tt_main_setup();
    for (;;) {
        tt_main_poll();
    }
}
#endif
