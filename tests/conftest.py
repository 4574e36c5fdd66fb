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


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server for the whole run (benchmarks.votes): skipped where Debian's
    postgresql is not installed, a failure under CI=1 (.ci/run installs it)."""
    from benchmarks.votes import postgres_bin, throwaway_postgres

    if postgres_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's postgresql for the lessons tests (apt-get install -y postgresql)")
        pytest.skip("PostgreSQL is not installed (apt-get install -y postgresql)")
    with throwaway_postgres(fsync=False) as url:  # fsync only matters if the machine itself crashes
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """The same lessons test against a new SQLite file and against a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lessons.sqlite3'}"
    from benchmarks.votes import fresh_database

    return fresh_database(request.getfixturevalue("postgres_server"))
