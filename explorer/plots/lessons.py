"""Figures of a class's votes: the answers of one round, and the two rounds side by side (the shift)."""

from __future__ import annotations

import plotly.graph_objects as go

from explorer.plots.common import base_layout, require, safe_label

VOTES, RIGHT, OTHER = "#0072B2", "#009E73", "#8C8C8C"  # Okabe-Ito blue and green; grey for "not the model's"
ROUND_COLOURS = ("#E69F00", "#0072B2")


def votes_figure(labels: list[str], counts: list[int], title: str, right: list[int] | None = None) -> go.Figure:
    """Votes per answer. ``right`` (after the reveal): how many of each bar the model's answer accepts,
    drawn green with the rest grey; before it every bar is one colour, so the projector gives nothing away."""
    require(len(labels) == len(counts), "one count per label")
    shown = [safe_label(label) for label in labels]
    fig = go.Figure()
    if right is None:
        fig.add_trace(
            go.Bar(
                x=shown,
                y=counts,
                marker_color=VOTES,
                name="votes",
                text=counts,
                textposition="outside",
                hovertemplate="%{x}: %{y} votes<extra></extra>",
            )
        )
    else:
        require(len(right) == len(counts), "one right count per label")
        fig.add_trace(
            go.Bar(
                x=shown,
                y=right,
                marker_color=RIGHT,
                name="the model's answer",
                hovertemplate="%{x}: %{y} votes<extra>the model's answer</extra>",
            )
        )
        fig.add_trace(
            go.Bar(
                x=shown,
                y=[c - r for c, r in zip(counts, right)],
                marker_color=OTHER,
                name="another answer",
                hovertemplate="%{x}: %{y} votes<extra>another answer</extra>",
            )
        )
        fig.update_layout(barmode="stack", legend=dict(orientation="h", y=-0.25, traceorder="normal"))
    base_layout(fig, title, height=360)
    fig.update_xaxes(type="category")
    fig.update_yaxes(title="votes", rangemode="tozero", dtick=max(1, max(counts, default=0) // 8))
    return fig


def shift_figure(labels: list[str], first: list[int], second: list[int], title: str) -> go.Figure:
    """Round 1 beside round 2 for every answer: where the discussion moved the class."""
    require(len(labels) == len(first) == len(second), "one count per label and round")
    shown = [safe_label(label) for label in labels]
    fig = go.Figure()
    for name, counts, colour in (("round 1", first, ROUND_COLOURS[0]), ("round 2", second, ROUND_COLOURS[1])):
        fig.add_trace(
            go.Bar(
                x=shown,
                y=counts,
                name=name,
                marker_color=colour,
                text=counts,
                textposition="outside",
                hovertemplate=f"%{{x}}: %{{y}} votes<extra>{name}</extra>",
            )
        )
    base_layout(fig, title, height=360)
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=-0.25))
    fig.update_xaxes(type="category")
    fig.update_yaxes(title="votes", rangemode="tozero")
    return fig
