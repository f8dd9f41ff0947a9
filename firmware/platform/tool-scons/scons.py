"""PlatformIO runs `python scons.py ...` from the tool-scons package: use the pip-installed SCons."""
import sys

from SCons.Script.Main import main

if __name__ == "__main__":
    sys.exit(main())
