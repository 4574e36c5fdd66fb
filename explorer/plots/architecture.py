"""Drawing an architecture graph (networkx, built from the real model) with Plotly."""

from __future__ import annotations

import math

import networkx as nx
import plotly.graph_objects as go

from explorer.plots.common import base_layout, require, safe_label

KIND_COLOURS = {
    "embeddings": "#56B4E9",
    "attention": "#0072B2",
    "cross-attention": "#D55E00",
    "feed-forward": "#009E73",
    "router": "#CC79A7",
    "experts": "#E69F00",
    "head": "#999999",
}


def architecture_figure(graph: nx.DiGraph, title: str) -> go.Figure:
    """Nodes at their stored (x, y), coloured by kind, sized by parameter count; hover shows
    the parameter count and tensor shapes; cross-attention edges are dashed."""
    require(graph.number_of_nodes() > 0, "empty graph")
    for _n, d in graph.nodes(data=True):
        require("x" in d and "y" in d, "every node needs x and y")
    fig = go.Figure()
    for dashed in (False, True):
        fig.add_trace(_edges_trace(graph, dashed))
    total = sum(d["params"] for _n, d in graph.nodes(data=True)) or 1
    for kind, colour in KIND_COLOURS.items():
        nodes = [(n, d) for n, d in graph.nodes(data=True) if d["kind"] == kind]
        if not nodes:
            continue
        fig.add_trace(
            go.Scatter(
                x=[d["x"] for _n, d in nodes],
                y=[d["y"] for _n, d in nodes],
                mode="markers+text",
                name=kind,
                marker=dict(
                    color=colour,
                    size=[10 + 22 * math.sqrt(d["params"] / total) for _n, d in nodes],
                    line=dict(color="white", width=1),
                ),
                text=[safe_label(d["label"]) for _n, d in nodes],
                textposition="middle right",
                textfont=dict(size=10),
                customdata=[
                    [f"{d['params']:,}", f"{d['params'] / total:.1%}", "<br>".join(safe_label(s) for s in d["shapes"])]
                    for _n, d in nodes
                ],
                hovertemplate="<b>%{text}</b><br>%{customdata[0]} parameters (%{customdata[1]} of the model)"
                "<br>%{customdata[2]}<extra></extra>",
            )
        )
    height = max(
        420,
        int(22 * (max(d["y"] for _n, d in graph.nodes(data=True)) - min(d["y"] for _n, d in graph.nodes(data=True)))),
    )
    base_layout(fig, title, height=min(height, 2400))
    fig.update_xaxes(
        visible=False,
        range=[
            min(d["x"] for _n, d in graph.nodes(data=True)) - 0.5,
            max(d["x"] for _n, d in graph.nodes(data=True)) + 3.5,
        ],
    )
    fig.update_yaxes(visible=False)
    fig.update_layout(legend=dict(orientation="h", y=-0.01, yanchor="top", x=0), hoverlabel=dict(align="left"))
    return fig


def _edges_trace(graph: nx.DiGraph, dashed: bool) -> go.Scatter:
    """One line trace for the graph's edges: the cross-attention ones (``dashed``, orange dots) or the others."""
    xs, ys = [], []
    for a, b, data in graph.edges(data=True):
        if bool(data.get("cross")) != dashed:
            continue
        xs += [graph.nodes[a]["x"], graph.nodes[b]["x"], None]
        ys += [graph.nodes[a]["y"], graph.nodes[b]["y"], None]
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        hoverinfo="skip",
        showlegend=False,
        line=dict(color="#D55E00" if dashed else "#BBBBBB", width=1, dash="dot" if dashed else "solid"),
    )
