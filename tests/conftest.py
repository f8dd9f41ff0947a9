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
