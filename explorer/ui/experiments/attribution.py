"""Which tokens mattered: attribution methods compared on the text and tested against random orders
of removal (explorer/ui/attribution_panel.py draws them)."""

from __future__ import annotations

from explorer.adapters import family
from explorer.ui import attribution_panel
from explorer.ui.experiments.common import VIEW, Tool, ask_for_text_model, text_ids


def attribution_body(loaded) -> None:
    if loaded.arch.audio:
        ask_for_text_model()
        return
    ids = text_ids(loaded)
    if ids is not None:
        attribution_panel.compare_methods(VIEW, loaded, ids)


TOOL = Tool(family.ATTRIBUTION, "Which tokens mattered", attribution_body)
