"""tinytrain's local PlatformIO dev-platform: no packages to fetch, system toolchains."""
from platformio.public import PlatformBase


class TinytrainPlatform(PlatformBase):
    pass
