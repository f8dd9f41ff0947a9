/* The link tests' device: the same loop as firmware/runtime/main.c. */
#include "tt_hal.h"
#include "tt_link.h"

int main(void)
{
    tt_hal_init();
    tt_link_init();
    for (;;)
        tt_link_service();
}
