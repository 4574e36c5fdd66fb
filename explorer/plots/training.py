"""Training curves of the models the project trained itself."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from explorer.plots.common import base_layout, require

X_AXES = {"step": "optimizer step", "tokens": "training tokens seen", "seconds": "wall-clock seconds"}
COLOURS = {"moe": "#D55E00", "dense": "#0072B2"}
NAMES = {"moe": "MoE (8 experts, top-2)", "dense": "dense twin (same active parameters)"}


def loss_curves(logs: dict[str, dict], x: str = "step") -> go.Figure:
    """Training loss (thin) and held-out loss (thick, markers) of each run against ``x``
    (step, tokens or seconds). ``logs`` maps 'moe'/'dense' to a training_log.json dict."""
    require(x in X_AXES, f"x must be one of {sorted(X_AXES)}")
    require(bool(logs), "no training logs")
    fig = go.Figure()
    for kind, log in logs.items():
        colour = COLOURS.get(kind, "#444")
        train = [s for s in log["steps"] if "train_loss" in s]
        held = [s for s in log["steps"] if "held_out_loss" in s]
        fig.add_trace(
            go.Scatter(
                x=[s[x] for s in train],
                y=[s["train_loss"] for s in train],
                mode="lines",
                line=dict(color=colour, width=1),
                opacity=0.45,
                name=f"{NAMES.get(kind, kind)}: training loss",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[s[x] for s in held],
                y=[s["held_out_loss"] for s in held],
                mode="lines+markers",
                line=dict(color=colour, width=3),
                name=f"{NAMES.get(kind, kind)}: held-out loss",
                customdata=[math.exp(s["held_out_loss"]) for s in held],
                hovertemplate="%{x}: loss %{y:.3f} (perplexity %{customdata:.1f})<extra></extra>",
            )
        )
    base_layout(fig, f"Loss against {X_AXES[x]}: MoE versus its dense twin", height=420)
    fig.update_layout(
        xaxis_title=X_AXES[x], yaxis_title="cross-entropy (nats per token)", legend=dict(orientation="h", y=-0.25)
    )
    return fig
