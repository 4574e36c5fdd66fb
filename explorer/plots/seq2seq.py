"""Figures of an encoder-decoder: what each output token reads from the source."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from explorer.plots.common import base_layout, require, safe_label, unique_labels

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


def cross_attention_heatmap(
    decoder_tokens,
    source_tokens,
    cross: np.ndarray,
    layer: int | None,
    source_positions: int | None = None,
    source_kind: str = "text",
) -> go.Figure:
    """Cross-attention [L, H, T_dec, S] of one block (or the mean over blocks, layer=None),
    averaged over heads. ``source_positions`` limits audio to the frames that hold speech."""
    require(
        cross.ndim == 4 and cross.shape[2] == len(decoder_tokens) and cross.shape[3] == len(source_tokens),
        f"cross attention {cross.shape} vs {len(decoder_tokens)} x {len(source_tokens)} tokens",
    )
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
    # Row t is the decoder step that reads tokens 0..t and writes token t+1: label it by what it wrote
    # (the last row's token is still to come), not by its input, or every row is one token off.
    written = [f"{i + 1}:{safe_label(t)}" for i, t in enumerate(list(decoder_tokens)[1:])] + ["(next)"]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=x,
            y=written,
            colorscale="Viridis",
            zmin=0,
            colorbar=dict(title="weight"),
            hovertemplate="writing %{y}<br>source %{x}<br>weight %{z:.3f}<extra></extra>",
        )
    )
    base_layout(
        fig, f"Cross-attention: what each output token reads from the source ({which}, head average)", height=460
    )
    fig.update_layout(
        xaxis_title="audio time (s)" if source_kind == "audio" else "source token",
        yaxis_title="output token being written",
    )
    fig.update_yaxes(autorange="reversed")
    return fig


@dataclass(frozen=True)
class TimingSummary:
    """What the timing figure draws and its caption states, in milliseconds.

    encoder_runs  every timed encoder pass over this source (the median is drawn)
    step_runs     every decoder step of this output, each timed once when it was first computed
    """

    encoder_runs: tuple[float, ...]
    step_runs: tuple[float, ...]

    @property
    def encoder_ms(self) -> float:
        return float(np.median(self.encoder_runs))

    @property
    def step_ms(self) -> float:
        return float(np.median(self.step_runs))

    @property
    def decoder_ms(self) -> float:
        return float(sum(self.step_runs))

    @property
    def steps(self) -> int:
        return len(self.step_runs)


def timing_summary(encoder_seconds, step_seconds) -> TimingSummary:
    require(len(encoder_seconds) > 0 and len(step_seconds) > 0, "need at least one encoder pass and one step")
    require(all(s >= 0 for s in (*encoder_seconds, *step_seconds)), "times must be non-negative")
    return TimingSummary(tuple(float(s) * 1000 for s in encoder_seconds), tuple(float(s) * 1000 for s in step_seconds))


def timing_sentence(summary: TimingSummary) -> str:
    """The caption beside ``encoder_vs_decoder_time``: every number in it is one the figure draws,
    and its claim (the decoder's cost grows with the output, the encoder's does not) holds whatever
    the timings are."""
    ratio = summary.decoder_ms / summary.encoder_ms if summary.encoder_ms > 0 else float("inf")
    return (
        f"Measured on this machine. The encoder runs once per source: one pass took {summary.encoder_ms:.1f} ms "
        f"(median of {len(summary.encoder_runs)} passes). The decoder runs once per output token: its "
        f"{summary.steps} steps for this output took {summary.decoder_ms:.0f} ms in all "
        f"({ratio:.1f}× the encoder pass), {summary.step_ms:.1f} ms per step (median). So the cost that grows "
        "with the output's length is the decoder's. Each step is timed once, when first computed; a single step "
        "can take longer than the encoder pass (here every step re-reads the whole output so far)."
    )


def encoder_vs_decoder_time(encoder_seconds, step_seconds) -> go.Figure:
    """The encoder pass (``encoder_seconds``: one time, or every timed run; the median is drawn, whiskers
    from the fastest to the slowest) against every decoder step of this output, with the median step as a
    dashed line. ``timing_sentence(timing_summary(...))`` of the same arguments states what it draws."""
    summary = timing_summary(np.atleast_1d(encoder_seconds), step_seconds)
    labels = ["encoder (once)"] + [f"decoder step {i + 1}" for i in range(summary.steps)]
    values = [summary.encoder_ms, *summary.step_runs]
    colours = ["#0072B2"] + ["#E69F00"] * summary.steps
    low, high = min(summary.encoder_runs), max(summary.encoder_runs)
    whiskers = dict(
        type="data",
        symmetric=False,
        array=[high - summary.encoder_ms] + [0] * summary.steps,
        arrayminus=[summary.encoder_ms - low] + [0] * summary.steps,
        color="#444",
        width=0,
        thickness=2,
    )  # no caps: the steps' zero-length whiskers stay invisible
    fig = go.Figure(
        go.Bar(
            x=labels, y=values, marker_color=colours, error_y=whiskers, hovertemplate="%{x}: %{y:.1f} ms<extra></extra>"
        )
    )
    fig.add_hline(
        y=summary.step_ms,
        line_dash="dash",
        line_color="#E69F00",
        annotation_text=f"median step {summary.step_ms:.1f} ms",
        annotation_position="top right",
    )
    base_layout(
        fig,
        f"Measured time: one encoder pass ({summary.encoder_ms:.1f} ms, median of "
        f"{len(summary.encoder_runs)}) vs {summary.steps} decoder steps "
        f"({summary.decoder_ms:.0f} ms in all)",
        height=340,
    )
    fig.update_layout(yaxis_title="milliseconds")
    return fig
