"""Figures of the side-by-side comparison of the four families."""

from __future__ import annotations

import plotly.graph_objects as go

from explorer.plots.common import base_layout, require


def family_latency(names: list[str], encoder_seconds: list[float], step_seconds: list[list[float]]) -> go.Figure:
    """Stacked bars: one pass over the input (blue) and the sum of per-token decoder steps (orange)."""
    require(len(names) == len(encoder_seconds) == len(step_seconds), "one entry per family")
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            y=names,
            x=[s * 1000 for s in encoder_seconds],
            name="encoder pass (once)",
            orientation="h",
            marker_color="#0072B2",
            hovertemplate="%{y}: %{x:.1f} ms<extra>encoder pass</extra>",
        )
    )
    fig.add_trace(
        go.Bar(
            y=names,
            x=[sum(s) * 1000 for s in step_seconds],
            name="decoder steps (one per token)",
            orientation="h",
            marker_color="#E69F00",
            customdata=[len(s) for s in step_seconds],
            hovertemplate="%{y}: %{x:.1f} ms for %{customdata} steps<extra>decoder</extra>",
        )
    )
    base_layout(fig, "Measured time: one pass over the input versus one step per output token", height=320)
    fig.update_layout(barmode="stack", xaxis_title="milliseconds", legend=dict(orientation="h", y=-0.3))
    fig.update_yaxes(autorange="reversed")
    return fig
