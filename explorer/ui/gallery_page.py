"""Gallery: famous published configurations, their parameters, memory and structure."""

from __future__ import annotations

import streamlit as st

from explorer.models.accounting import explain_moe, gallery, gallery_graph
from explorer.plots.architecture import architecture_figure
from explorer.ui.view import View

VIEW = View("Gallery view")


@st.cache_resource(show_spinner="Counting parameters on the meta device…")
def _gallery():
    return {a.name: a for a in gallery()}


@st.cache_resource(max_entries=16, show_spinner=False)
def _graph(name: str):
    return gallery_graph(name)


HEADLINE = "Gallery: how big are famous models, and where are their parameters?"
INTRO = (
    "Every number here is **counted** by building the published configuration on PyTorch's meta device (shapes "
    "without memory) and adding up its real parameter tensors: nothing is typed in by hand. The table's last "
    "columns show the figure the original paper or model card gives, and where."
)


def render() -> None:
    VIEW.heading(HEADLINE, INTRO)  # the lead folded away: the diagram shows beside its choice on a projector
    VIEW.start()
    items = _gallery()
    with VIEW.panels():
        name = st.selectbox("Look inside", list(items), index=list(items).index("mixtral-8x7b"), key="gallery_choice")
        acc = items[name]
        st.markdown(explain_moe(acc))
        st.markdown(
            "Parameters by role: "
            + ", ".join(
                f"{role} {count / 1e6:,.1f} M" for role, count in sorted(acc.by_role.items(), key=lambda kv: -kv[1])
            )
        )
    with VIEW.main():
        VIEW.safely(
            lambda: VIEW.figure(
                architecture_figure(_graph(name), f"{name}: structure built from its configuration"),
                key="gallery_diagram",
                caption="The dense feed-forward layer of an MoE block is drawn as a router feeding its experts.",
            )
        )
    st.dataframe(_rows(items), hide_index=True, width="stretch")
    VIEW.export()


def _rows(items) -> list[dict]:
    return [
        {
            "configuration": a.name,
            "parameters": f"{a.total / 1e6:,.1f} M",
            "used per token": f"{a.active / 1e6:,.1f} M",
            "float32": f"{a.memory_gib('float32'):,.2f} GiB",
            "float16": f"{a.memory_gib('float16'):,.2f} GiB",
            "int8": f"{a.memory_gib('int8'):,.2f} GiB",
            "published": a.published.get("total_parameters", ""),
            "source": a.published.get("source", ""),
        }
        for a in items.values()
    ]
