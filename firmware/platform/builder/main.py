"""SCons build script of tinytrain's local dev-platform.

Two kinds of board (board JSON `build.tt_kind`):
  qemu    Debian's arm-none-eabi-gcc, newlib-nano, the project's linker script
          (`board_build.ldscript`, relative to the project) -> firmware.elf
  native  the host gcc -> program (a POSIX process)
"""
import os

from SCons.Script import AlwaysBuild, Builder, Default, DefaultEnvironment

env = DefaultEnvironment()
board = env.BoardConfig()
kind = board.get("build.tt_kind")

# The C flags (standard, warnings, no fused multiply-add) come from the project's
# platformio.ini `build_flags`, generated from tinytrain/cflags.py; the core's flags from the
# board manifest (boards/<board>.json, generated from tinytrain's boards/*.json).

if kind == "qemu":
    cpu_flags = board.get("build.cpu_flags").split()
    env.Replace(
        AR="arm-none-eabi-gcc-ar", AS="arm-none-eabi-as", CC="arm-none-eabi-gcc",
        CXX="arm-none-eabi-g++", GDB="arm-none-eabi-gdb", OBJCOPY="arm-none-eabi-objcopy",
        RANLIB="arm-none-eabi-gcc-ranlib", SIZETOOL="arm-none-eabi-size",
        LINK="arm-none-eabi-gcc", PROGNAME="firmware", PROGSUFFIX=".elf",
        SIZEPROGREGEXP=r"^(?:\.text|\.data|\.rodata|\.ARM\.exidx|\.vectors)\s+(\d+).*",
        SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.stack|\.heap)\s+(\d+).*",
        SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
        SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
    )
    ldscript = board.get("build.ldscript")
    ldscript_path = os.path.join(env.subst("$PROJECT_DIR"), "ld", ldscript)
    env.Append(
        CCFLAGS=cpu_flags,
        ASFLAGS=cpu_flags,
        CPPDEFINES=[("F_CPU", board.get("build.f_cpu"))],
        LINKFLAGS=cpu_flags + ["-Wl,--gc-sections", "-Wl,-T," + ldscript_path,
                               "--specs=nano.specs", "--specs=nosys.specs",
                               "-Wl,-Map," + os.path.join("$BUILD_DIR", "firmware.map")],
        LIBS=["m"],
    )
    env.Replace(LDSCRIPT_PATH=ldscript_path)
elif kind == "native":
    env.Replace(PROGSUFFIX="", SIZETOOL="size")
    env.Append(LINKFLAGS=["-Wl,--gc-sections"], LIBS=["m", "util"])
else:
    raise SystemExit("tinytrain platform: board %s has no build.tt_kind" % env.subst("$BOARD"))

# CFLAGS/CCFLAGS from platformio.ini `build_flags` are merged by ProcessFlags inside BuildProgram.
target_elf = env.BuildProgram()

if kind == "qemu":
    target_bin = env.Command(
        os.path.join("$BUILD_DIR", "firmware.bin"), target_elf,
        env.VerboseAction("$OBJCOPY -O binary $SOURCE $TARGET", "Building $TARGET"))
    Default([target_elf, target_bin])
    size = env.Alias("size", target_elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE"))
    AlwaysBuild(size)
else:
    Default([target_elf])

# `pio run -t upload` has nothing to flash: tinytrain's emulator boots the build.
upload = env.Alias("upload", target_elf, env.VerboseAction(
    "echo 'emulated board: use tinytrain flash PROJECT_DIR'", "Nothing to upload"))
AlwaysBuild(upload)
