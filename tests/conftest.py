"""Shared test fixtures and paths."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / ".." / "shared" / "reference"
TTE_MODELS = REFERENCE / "tte-models"
REFERENCE_MODELS = ("mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3")


@pytest.fixture(scope="session")
def tte_models() -> Path:
    if not TTE_MODELS.is_dir():
        pytest.skip(f"reference models not found at {TTE_MODELS}")
    return TTE_MODELS




def _link_test_key() -> bytes:
    """The key compiled into the link test device: tests/link_device/tt_device_key.h."""
    import re
    text = (ROOT / "tests" / "link_device" / "tt_device_key.h").read_text()
    body = re.search(r"#define TT_DEVICE_KEY \{([^}]*)\}", text).group(1)
    return bytes(int(b, 16) for b in body.split(","))


LINK_TEST_KEY = _link_test_key()      # a fixed, public TEST key


@pytest.fixture(scope="session", autouse=True)
def isolated_key_store(tmp_path_factory):
    """Device keys written by the tests' builds go to a store of this session, never the
    user's (tinytrain.keystore); it holds the link test device's key too."""
    import os

    from tinytrain import keystore
    store = tmp_path_factory.mktemp("keys")
    os.environ[keystore.ENV] = str(store)
    keystore.add(LINK_TEST_KEY)
    return store
