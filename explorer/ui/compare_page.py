"""Compare: the same text through all four families, side by side, with measured costs."""

from __future__ import annotations

import streamlit as st

from explorer import audio
from explorer.adapters.compare import run_family
from explorer.catalogue import load_catalogue
from explorer.models.loading import default_device
from explorer.plots import compare as compare_plots
from explorer.registry import FAMILIES
from explorer.text import code_span, plain
from explorer.ui.picker import cached_model
from explorer.ui.view import View

VIEW = View("Compare view", text_key="compare_text", keys={"text": "compare_text"})


HEADLINE = "Compare the four families on the same text"
INTRO = (
    "Each family's embedded model reads the same sentence. An encoder computes everything in **one** pass; a "
    "decoder pays one forward pass **per generated token**; an encoder-decoder pays one encoder pass, then one "
    "decoder step per token; a mixture of experts keeps more parameters in memory than it uses per token. "
    "(The encoder-decoder is the project's English → Portuguese translator; pick Whisper on the encoder-decoder "
    "page to hear the sentence spoken instead.)"
)


EXAMPLE_NOTES = {
    "I like to read books about science.": "Every family's output is ordinary text here (the tour's step 9).",
    "The quick brown fox jumps over the lazy dog.": (
        "Where it fails: the translator garbles the fox sentence and the tiny MoE starts with an end token (after a "
        "full stop it usually does)."
    ),
}


def render() -> None:
    VIEW.heading(HEADLINE, INTRO)  # the lead folded away: the timing figure shows beside the text on a projector
    VIEW.start()
    with VIEW.panels():
        cleaned = VIEW.text_input(
            "Text",
            "I like to read books about science.",
            ["I like to read books about science.", "The quick brown fox jumps over the lazy dog."],
            example_notes=EXAMPLE_NOTES,
        )
    if cleaned is None:
        return
    VIEW.safely(lambda: _body(cleaned.text))
    VIEW.export()


def _body(text: str) -> None:
    catalogue = load_catalogue()
    device = default_device()
    runs = []
    with VIEW.main():
        progress = st.progress(0.0, text="Running the four models…")
    for n, key in enumerate(FAMILIES):
        loaded = cached_model(catalogue[key].default, device, key)
        speech = audio.speak(text[:400]) if loaded.arch.audio else None
        runs.append(run_family(loaded, text, speech=speech))
        progress.progress((n + 1) / len(FAMILIES), text=f"{catalogue[key].title} done")
    progress.empty()
    with VIEW.main():
        _latency(catalogue, runs)
    columns = st.columns(len(runs))
    for column, run, key in zip(columns, runs, FAMILIES):
        with column.container(border=True):
            st.markdown(f"**{catalogue[key].title}**  \n{code_span(run.model_id)}")
            st.caption(run.computes)
            st.markdown(f"{len(run.tokens)} tokens: " + " ".join(code_span(t) for t in run.tokens[:40]))
            st.markdown(f"Output: {plain(repr(run.output))}" if run.output else "")
            for note in run.notes:  # e.g. the text was cut to what this model reads
                st.caption(plain(note))
    rows = [
        {
            "family": catalogue[k].title,
            "model": r.model_id,
            "tokens read": len(r.tokens),
            # text in every cell: a column mixing numbers and "—" cannot become an Arrow table
            "encoder pass (ms)": f"{r.encoder_seconds * 1000:.1f}" if r.encoder_seconds else "—",
            "decoder steps": str(len(r.step_seconds)),
            "ms per step": f"{1000 * sum(r.step_seconds) / len(r.step_seconds):.1f}" if r.step_seconds else "—",
            "parameters": f"{r.total_parameters / 1e6:.1f} M",
            "used per token": f"{r.active_parameters / 1e6:.1f} M",
            "memory float32": f"{r.total_parameters * 4 / 2**20:,.0f} MiB",
        }
        for k, r in zip(FAMILIES, runs)
    ]
    st.table(rows)


def _latency(catalogue, runs) -> None:
    fig = compare_plots.family_latency(
        [catalogue[k].title for k in FAMILIES], [r.encoder_seconds for r in runs], [list(r.step_seconds) for r in runs]
    )
    VIEW.figure(
        fig,
        key="compare_latency",
        caption="Wall-clock time of each family's work on this text (first runs include warm-up).",
    )
