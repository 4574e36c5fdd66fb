"""The same text through one model of each family, with measured costs."""

from __future__ import annotations

from explorer.adapters.lookup import adapter_for
from explorer.adapters.runs import FamilyRun

__all__ = ["FamilyRun", "run_family"]


def run_family(loaded, text: str, new_tokens: int = 8, speech=None) -> FamilyRun:
    """One measured run: an encoder pass, or decoding ``new_tokens`` greedy steps."""
    # The family's registry record names its adapter; each adapter knows how its family runs.
    return adapter_for(loaded).compare_run(loaded, text, new_tokens=new_tokens, speech=speech)
