"""Figures of an encoder-decoder: what each output token reads from the source."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from explorer.plots.common import base_layout, require, unique_labels

MAX_COLUMNS = 300  # audio frames are averaged into at most this many columns


def pool_columns(matrix: np.ndarray, labels: list[str], max_columns: int = MAX_COLUMNS) -> tuple[np.ndarray, list[str]]:
    """Average neighbouring columns of [rows, S] so at most ``max_columns`` remain (each
    row keeps its total mass per window); labels keep the first label of each window."""
    s = matrix.shape[1]
    if s <= max_columns:
        return matrix, labels
    width = int(np.ceil(s / max_columns))
    pad = (-s) % width
    padded = np.pad(matrix, ((0, 0), (0, pad)))
    pooled = padded.reshape(matrix.shape[0], -1, width).sum(axis=-1)
    return pooled, labels[::width]


def cross_attention_heatmap(decoder_tokens, source_tokens, cross: np.ndarray, layer: int | None,
                            source_positions: int | None = None, source_kind: str = "text") -> go.Figure:
    """Cross-attention [L, H, T_dec, S] of one block (or the mean over blocks, layer=None),
    averaged over heads. ``source_positions`` limits audio to the frames that hold speech."""
    require(cross.ndim == 4 and cross.shape[2] == len(decoder_tokens) and cross.shape[3] == len(source_tokens),
            f"cross attention {cross.shape} vs {len(decoder_tokens)} x {len(source_tokens)} tokens")
    maps = cross.mean(axis=1)  # [L, T, S]
    z = maps.mean(axis=0) if layer is None else maps[layer]
    source = list(source_tokens)
    if source_positions is not None:
        z, source = z[:, :source_positions], source[:source_positions]
    if source_kind == "audio":
        z, source = pool_columns(z, source)
        x = source
    else:
        x = unique_labels(source)
    which = "mean over blocks" if layer is None else f"block {layer + 1}"
    fig = go.Figure(go.Heatmap(z=z, x=x, y=unique_labels(decoder_tokens), colorscale="Viridis", zmin=0,
                               colorbar=dict(title="weight"),
                               hovertemplate="output %{y}<br>source %{x}<br>weight %{z:.3f}<extra></extra>"))
    base_layout(fig, f"Cross-attention: what each output token reads from the source ({which}, head average)",
                height=460)
    fig.update_layout(xaxis_title="audio time (s)" if source_kind == "audio" else "source token",
                      yaxis_title="output token")
    fig.update_yaxes(autorange="reversed")
    return fig


def encoder_vs_decoder_time(encoder_seconds: float, step_seconds: list[float]) -> go.Figure:
    """The one encoder pass against every decoder step (measured wall-clock)."""
    require(encoder_seconds >= 0 and all(s >= 0 for s in step_seconds), "times must be non-negative")
    labels = ["encoder (once)"] + [f"decoder step {i + 1}" for i in range(len(step_seconds))]
    values = [encoder_seconds * 1000] + [s * 1000 for s in step_seconds]
    colours = ["#0072B2"] + ["#E69F00"] * len(step_seconds)
    fig = go.Figure(go.Bar(x=labels, y=values, marker_color=colours, hovertemplate="%{x}: %{y:.1f} ms<extra></extra>"))
    base_layout(fig, f"Measured time: one encoder pass vs {len(step_seconds)} decoder steps "
                     f"(total decoding {sum(step_seconds) * 1000:.0f} ms)", height=320)
    fig.update_layout(yaxis_title="milliseconds")
    return fig
