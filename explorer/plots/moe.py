"""Figures of Mixture-of-Experts routing."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from explorer import routing
from explorer.plots.common import QUALITATIVE, base_layout, require, safe_label, unique_labels
from explorer.trace import RouterTrace


def _discrete_colorscale(n: int) -> list:
    scale = []
    for e in range(n):
        colour = QUALITATIVE[e % len(QUALITATIVE)]
        scale += [[e / n, colour], [(e + 1) / n, colour]]
    return scale


def route_map(tokens, router: RouterTrace) -> go.Figure:
    """Token x MoE-layer grid coloured by the first-choice expert; each cell names all chosen
    experts, and hovering shows their gate weights."""
    require(router.probs.shape[1] == len(tokens), "one route per token")
    m, t, k = router.chosen.shape
    e = router.num_experts
    first = router.chosen[..., 0]  # [M, T]
    text = [[" ".join(f"E{x}" for x in router.chosen[layer, pos]) for pos in range(t)] for layer in range(m)]
    hover = [
        [
            "<br>".join(
                f"expert {router.chosen[layer, pos, j]}: gate {router.gates[layer, pos, j]:.2f}"
                + ("" if router.kept[layer, pos, j] else " (dropped: expert full)")
                for j in range(k)
            )
            for pos in range(t)
        ]
        for layer in range(m)
    ]
    fig = go.Figure(
        go.Heatmap(
            z=first,
            x=unique_labels(tokens),
            y=[f"MoE layer {i} (block {b + 1})" for i, b in enumerate(router.layer_indices)],
            zmin=-0.5,
            zmax=e - 0.5,
            colorscale=_discrete_colorscale(e),
            text=text,
            texttemplate="%{text}",
            customdata=hover,
            hovertemplate="%{x}<br>%{y}<br>%{customdata}<extra></extra>",
            colorbar=dict(title="1st expert", tickvals=list(range(e)), ticktext=[f"E{i}" for i in range(e)]),
        )
    )
    base_layout(
        fig,
        f"Route of every token: the {k} expert(s) the router picks in each MoE layer (colour = first choice)",
        height=max(320, 60 * m + 160),
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(xaxis_title="token", yaxis_title="")
    return fig


def expert_load(router: RouterTrace) -> go.Figure:
    """Share of (token, slot) assignments each expert received per MoE layer, against the
    uniform share 1/E a perfectly balanced router would give."""
    load = router.expert_load()  # [M, E]
    balance = routing.load_balancing_value(router)  # [M]
    m, e = load.shape
    fig = go.Figure()
    for layer in range(m):
        fig.add_trace(
            go.Bar(
                x=[f"E{i}" for i in range(e)],
                y=load[layer],
                name=f"MoE layer {layer} (Switch value {balance[layer]:.2f}; 1.0 = balanced)",
                hovertemplate="%{x}: %{y:.1%} of assignments<extra>MoE layer " + str(layer) + "</extra>",
            )
        )
    fig.add_hline(y=1 / e, line_dash="dash", line_color="#444", annotation_text=f"uniform = 1/{e}")
    base_layout(fig, "Load on each expert, per MoE layer", height=400)
    fig.update_layout(
        barmode="group",
        yaxis_title="share of assignments",
        yaxis_tickformat=".0%",
        legend=dict(orientation="h", y=-0.2),
    )
    return fig


def router_distribution(token: str, probs: np.ndarray, chosen: np.ndarray, layer: int) -> go.Figure:
    """The router softmax [E] of one token at one MoE layer; chosen experts highlighted."""
    require(probs.ndim == 1, "probs must be [E]")
    colours = ["#E69F00" if i in set(chosen.tolist()) else "#0072B2" for i in range(len(probs))]
    fig = go.Figure(
        go.Bar(
            x=[f"E{i}" for i in range(len(probs))],
            y=probs,
            marker_color=colours,
            hovertemplate="%{x}: p = %{y:.3f}<extra></extra>",
        )
    )
    base_layout(fig, f"Router softmax for '{safe_label(token)}', MoE layer {layer}", height=320)
    fig.update_layout(yaxis_title="router probability")
    return fig


def expert_flow_sankey(router: RouterTrace, max_layers: int = 6) -> go.Figure:
    """Tokens flowing between first-choice experts of consecutive MoE layers (first
    ``max_layers`` MoE layers, so the diagram stays readable)."""
    m, _, _ = router.chosen.shape
    require(m >= 2, "a flow needs at least two MoE layers")
    e = router.num_experts
    shown = min(m, max_layers)
    labels = [f"L{layer} E{x}" for layer in range(shown) for x in range(e)]
    colours = [QUALITATIVE[x % len(QUALITATIVE)] for _ in range(shown) for x in range(e)]
    source, target, value = [], [], []
    for layer in range(shown - 1):
        counts = routing.transitions(router, layer)
        for a, b in zip(*np.nonzero(counts)):
            source.append(layer * e + a)
            target.append((layer + 1) * e + b)
            value.append(int(counts[a, b]))
    fig = go.Figure(
        go.Sankey(
            node=dict(label=labels, color=colours, pad=8, thickness=14),
            link=dict(
                source=source,
                target=target,
                value=value,
                hovertemplate="%{value} token(s): %{source.label} → %{target.label}<extra></extra>",
            ),
        )
    )
    base_layout(fig, f"Token flow between first-choice experts, MoE layers 0–{shown - 1}", height=460)
    return fig


def coactivation_matrix(router: RouterTrace) -> go.Figure:
    """[E, E] how often two experts are picked together for one token (diagonal: picks)."""
    counts = routing.coactivation(router)
    e = counts.shape[0]
    names = [f"E{i}" for i in range(e)]
    fig = go.Figure(
        go.Heatmap(
            z=counts,
            x=names,
            y=names,
            colorscale="Blues",
            colorbar=dict(title="tokens"),
            hovertemplate="%{y} with %{x}: %{z:.0f}<extra></extra>",
        )
    )
    base_layout(fig, "Experts chosen together for one token", height=400)
    fig.update_yaxes(autorange="reversed")
    return fig


def parameter_breakdown(rows: list[tuple[str, int, int, int]]) -> go.Figure:
    """Stacked bars per model: parameters every token uses (shared: attention, embeddings,
    norms, router, head), experts a token uses, and experts it does not use.
    rows: (name, shared, active_expert_params, inactive_expert_params)."""
    require(bool(rows), "no models")
    names = [r[0] for r in rows]
    fig = go.Figure()
    for index, (label, colour) in enumerate(
        (
            ("shared by every token (attention, embeddings, norms, router)", "#0072B2"),
            ("experts a token uses (top-k)", "#E69F00"),
            ("experts idle for that token (still in memory)", "#CCCCCC"),
        ),
        start=1,
    ):
        values = [r[index] / 1e9 for r in rows]
        fig.add_trace(
            go.Bar(
                y=names,
                x=values,
                orientation="h",
                name=label,
                marker_color=colour,
                hovertemplate="%{y}: %{x:.2f} B<extra>" + label + "</extra>",
            )
        )
    base_layout(
        fig,
        "Where the parameters are: all must sit in memory, a token uses the coloured part",
        height=120 + 45 * len(rows),
    )
    fig.update_layout(barmode="stack", xaxis_title="billions of parameters", legend=dict(orientation="h", y=-0.35))
    fig.update_yaxes(autorange="reversed")
    return fig
