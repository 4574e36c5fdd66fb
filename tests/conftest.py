import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
# Tests never reach a model hub: an accidental download fails fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# Plotly checks every property of the figures the app builds from plain dicts (plots.common.dict_figure).
os.environ["EXPLORER_VALIDATE_FIGURES"] = "1"


@pytest.fixture(scope="module")
def models():
    """family key -> its catalogue default, loaded once per test module."""
    from explorer.catalogue import load_catalogue
    from explorer.models.loading import load_model

    catalogue = load_catalogue()
    loaded = {}

    def get(family: str):
        if family not in loaded:
            loaded[family] = load_model(catalogue[family].default, device="cpu")
        return loaded[family]

    return get
