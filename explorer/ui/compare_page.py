"""Compare: the same text through all four families, side by side, with measured costs."""

from __future__ import annotations

import streamlit as st

from explorer import audio
from explorer.adapters.compare import run_family
from explorer.catalogue import load_catalogue
from explorer.models.loading import default_device
from explorer.plots import compare as compare_plots
from explorer.ui import common

FAMILY_ORDER = ("encoder", "decoder", "seq2seq", "moe")


def render() -> None:
    common.start_view()
    st.title("Compare the four families on the same text")
    st.markdown(
        "Each family's embedded model reads the same sentence. An encoder computes everything in **one** pass; a "
        "decoder pays one forward pass **per generated token**; an encoder-decoder pays one encoder pass, then one "
        "decoder step per token; a mixture of experts keeps more parameters in memory than it uses per token. "
        "(Whisper hears the sentence spoken by eSpeak NG.)"
    )
    cleaned = common.text_input("compare_text", "Text", "The quick brown fox jumps over the lazy dog.",
                                ["The quick brown fox jumps over the lazy dog.", "I like to read books about science."])
    if cleaned is None:
        return
    common.run_safely(lambda: _body(cleaned.text))
    common.export_view("Compare view")


def _body(text: str) -> None:
    catalogue = load_catalogue()
    device = default_device()
    runs = []
    progress = st.progress(0.0, text="Running the four models…")
    for n, key in enumerate(FAMILY_ORDER):
        loaded = common.cached_model(catalogue[key].default, device, key)
        speech = audio.speak(text[:400]) if loaded.arch.audio else None
        runs.append(run_family(loaded, text, speech=speech))
        progress.progress((n + 1) / len(FAMILY_ORDER), text=f"{catalogue[key].title} done")
    progress.empty()
    columns = st.columns(len(runs))
    for column, run, key in zip(columns, runs, FAMILY_ORDER):
        with column.container(border=True):
            st.markdown(f"**{catalogue[key].title}**  \n`{run.model_id}`")
            st.caption(run.computes)
            st.markdown(f"{len(run.tokens)} tokens: " + " ".join(f"`{t}`" for t in run.tokens[:40]))
            st.markdown(f"Output: {run.output!r}" if run.output else "")
    rows = [{"family": catalogue[k].title, "model": r.model_id, "tokens read": len(r.tokens),
             # text in every cell: a column mixing numbers and "—" cannot become an Arrow table
             "encoder pass (ms)": f"{r.encoder_seconds * 1000:.1f}" if r.encoder_seconds else "—",
             "decoder steps": str(len(r.step_seconds)),
             "ms per step": f"{1000 * sum(r.step_seconds) / len(r.step_seconds):.1f}" if r.step_seconds else "—",
             "parameters": f"{r.total_parameters / 1e6:.1f} M", "used per token": f"{r.active_parameters / 1e6:.1f} M",
             "memory float32": f"{r.total_parameters * 4 / 2**20:,.0f} MiB"} for k, r in zip(FAMILY_ORDER, runs)]
    st.table(rows)
    fig = compare_plots.family_latency([catalogue[k].title for k in FAMILY_ORDER], [r.encoder_seconds for r in runs],
                                       [list(r.step_seconds) for r in runs])
    common.show_figure(fig, key="compare_latency",
                       caption="Wall-clock time of each family's work on this text (first runs include warm-up).")
