"""One lookup from a family, or a loaded model, to its adapter (``explorer.adapters.family.FamilyAdapter``).

The ``Family`` record names its adapter module by string (the registry imports no models); the module
exposes ``ADAPTER``. Kept apart from ``family`` (which the adapter modules import), so the import by
name runs one way.
"""

from __future__ import annotations

import importlib

from explorer.adapters.family import FamilyAdapter
from explorer.registry import FAMILIES


def adapter_of(family_key: str) -> FamilyAdapter:
    """The adapter of a registered family (KeyError for a key the registry does not hold)."""
    return importlib.import_module(FAMILIES[family_key].adapter).ADAPTER


def adapter_for(loaded) -> FamilyAdapter:
    """The adapter of a loaded model's family."""
    return adapter_of(loaded.family)
