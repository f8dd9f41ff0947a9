/* Board facts of the link tests' host "board" (normally generated). */
#ifndef TT_BOARD_H
#define TT_BOARD_H
#define TT_BOARD_NAME       "host-socket"
#define TT_FIRMWARE_VERSION "test-1"
#define TT_SRAM_BYTES       262144u
#define TT_FLASH_BYTES      1048576u
#define TT_CORE             "host"
#define TT_SIMD             "none"
#endif
