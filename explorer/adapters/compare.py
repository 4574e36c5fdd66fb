"""The same text through one model of each family, with measured costs."""

from __future__ import annotations

import importlib

from explorer.adapters.runs import FamilyRun
from explorer.registry import FAMILIES

__all__ = ["FamilyRun", "run_family"]


def run_family(loaded, text: str, new_tokens: int = 8, speech=None) -> FamilyRun:
    """One measured run: an encoder pass, or decoding ``new_tokens`` greedy steps."""
    # The family's registry record names its adapter; each adapter knows how its family runs.
    adapter = importlib.import_module(FAMILIES[loaded.family].adapter)
    return adapter.compare_run(loaded, text, new_tokens=new_tokens, speech=speech)
