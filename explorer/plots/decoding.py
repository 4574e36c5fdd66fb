"""Figures of one autoregressive decoding step."""

from __future__ import annotations

from functools import partial

import numpy as np
import plotly.graph_objects as go

from explorer.plots.common import base_layout, dict_figure, require, safe_label


def next_token_bars(
    probs: np.ndarray,
    kept: np.ndarray,
    chosen_id: int | None,
    labels: dict[int, str],
    top: int = 15,
    title: str = ("Next-token distribution (orange = chosen, grey = removed by top-k/top-p)"),
) -> go.Figure:
    """The ``top`` most likely next tokens under the model (probs [V], temperature 1).

    kept [V] marks tokens the decoding rules (top-k / top-p / suppression) leave in play;
    the others are drawn hatched grey as removed. The chosen token is drawn in orange.
    """
    require(probs.shape == kept.shape and probs.ndim == 1, "probs and kept must both be [V]")
    order = np.argsort(-probs, kind="stable")[:top]
    if chosen_id is not None and chosen_id not in order:
        order = np.append(order, chosen_id)
    names = [f"{safe_label(labels.get(int(i), f'#{i}'))}" for i in order]
    colours = ["#E69F00" if int(i) == chosen_id else ("#0072B2" if kept[i] else "#BBBBBB") for i in order]
    patterns = ["" if kept[i] else "/" for i in order]
    status = [
        "chosen" if int(i) == chosen_id else ("in play" if kept[i] else "removed by the decoding rules") for i in order
    ]
    fig = dict_figure(
        [
            dict(
                type="bar",
                x=probs[order],
                y=[f"{n}  " for n in names],
                orientation="h",
                marker=dict(color=colours, pattern=dict(shape=patterns)),
                customdata=[[str(int(i)), s] for i, s in zip(order, status, strict=True)],
                hovertemplate="token %{y}<br>id %{customdata[0]}<br>p = %{x:.4f}<br>%{customdata[1]}<extra></extra>",
                text=[f"{p:.1%}" for p in probs[order]],
                textposition="outside",
                cliponaxis=False,
            )
        ],
        dict(
            xaxis=dict(title=dict(text="probability"), range=[0, min(1.0, float(probs[order].max()) * 1.25 + 0.02)]),
            yaxis=dict(autorange="reversed"),
        ),
    )
    base_layout(fig, title, height=max(300, 26 * len(order) + 100))
    return fig.update_layout(margin=dict(r=60))  # room for a near-certain bar's label beyond the axis's end at 1


RAW_GREY, DRAWN_BLUE, CHOSEN_ORANGE = "#BBBBBB", "#0072B2", "#E69F00"


def shown_tokens(raw: np.ndarray, drawn: np.ndarray, top: int = 15, marked: int | None = None) -> np.ndarray:
    """Token ids [~top] for the raw-vs-drawn bars: the union of the top of both distributions
    (taken rank by rank until ``top`` are in), plus ``marked``, ordered by raw probability so the
    bars keep their places while the rules change."""
    raw_order = np.argsort(-raw, kind="stable")[:top]
    drawn_order = np.argsort(-drawn, kind="stable")[:top]
    drawn_order = drawn_order[drawn[drawn_order] > 0]  # tokens Step can draw at all
    ids: list[int] = []
    for rank in range(top):
        for ranking in (raw_order, drawn_order):
            if rank < len(ranking) and int(ranking[rank]) not in ids and len(ids) < top:
                ids.append(int(ranking[rank]))
    if marked is not None and int(marked) not in ids:
        ids.append(int(marked))
    return np.array(sorted(ids, key=lambda i: (-float(raw[i]), i)), dtype=np.int64)


def _percent(p: float) -> str:
    return f"{p:.1%}" if p >= 0.0005 or p == 0 else "<0.1%"


def sampling_bars(
    raw: np.ndarray,
    drawn: np.ndarray,
    kept: np.ndarray,
    ids: np.ndarray,
    labels: dict[int, str],
    rules: str,
    greedy: bool,
    marked: int | None = None,
    marked_is_next: bool = False,
    removed_by: str = "top-k / top-p",
) -> go.Figure:
    """The next-token distribution before and after the decoding rules, token by token.

    raw [V]: the model's probabilities (softmax of the logits, temperature 1); drawn [V]: the
    distribution Step draws from (explorer.decoding.drawn_distribution: after temperature, top-k
    and top-p, or all on the top token when greedy); kept [V]: tokens the rules leave in play.
    ids: the tokens shown (``shown_tokens``), top to bottom. ``marked`` is drawn in orange: the
    token chosen at this step, or (``marked_is_next``) the one Step will choose. ``rules`` names
    them in the title (explorer.decoding.rules_text), ``removed_by`` what can remove a token."""
    require(raw.shape == drawn.shape == kept.shape and raw.ndim == 1, "raw, drawn and kept must all be [V]")
    ids = np.asarray(ids, dtype=np.int64)
    require(ids.ndim == 1 and len(ids) > 0, "ids must be a non-empty [N]")
    y = np.arange(len(ids))
    names = [safe_label(labels.get(int(i), f"#{i}")) for i in ids]
    is_marked = np.array([int(i) == marked for i in ids])
    removed = ~kept[ids]
    marked_name = names[int(np.flatnonzero(is_marked)[0])] if is_marked.any() else None
    marked_role = "next" if marked_is_next else "chosen"
    status = ["removed by the decoding rules: Step cannot draw it" if r else "in play" for r in removed]
    custom = [[n, str(int(i)), float(raw[i]), float(drawn[i]), s] for n, i, s in zip(names, ids, status, strict=True)]
    bars = partial(_bars, y, custom)
    raw_shown, drawn_shown = raw[ids].astype(np.float64), drawn[ids].astype(np.float64)
    drawn_texts = [
        "0 (removed)" if r else ("" if greedy and d == 0 else _percent(float(d)))
        for r, d in zip(removed, drawn_shown, strict=True)
    ]
    drawn_name = (
        "what Step draws from: greedy puts it all on the top token"
        if greedy
        else f"what Step draws from: after {rules}"
    )
    names_of = {
        "removed": f"removed by {removed_by}: Step draws it with probability 0",
        "drawn": drawn_name,
        "marked": f"{marked_role}: {marked_name}" + (" (what Step will choose)" if marked_is_next else ""),
    }
    traces = _sampling_traces(bars, removed, is_marked, raw_shown, drawn_shown, drawn_texts, names_of)
    top_value = float(max(raw_shown.max(), drawn_shown.max()))
    fig = dict_figure(traces, _sampling_axes(y, names, is_marked, marked_role, top_value))
    lines = _sampling_subtitle(names, raw_shown, drawn_shown, removed, rules, greedy)
    title = "Next-token distribution: the model's probabilities (grey) and what Step draws from (blue)"
    base_layout(fig, title + "".join(f"<br><sup>{line}</sup>" for line in lines), height=max(380, 38 * len(ids) + 250))
    return fig.update_layout(margin=dict(r=70, t=100, b=60))  # room for a near-certain bar's label beyond 100%


def _sampling_traces(bars, removed, is_marked, raw_shown, drawn_shown, drawn_texts, names_of: dict) -> list:
    """The bars of ``sampling_bars``: raw (kept, removed) then drawn (others, removed, the marked token); empty
    groups left out. ``names_of``: the legend's "removed", "drawn" and "marked" entries."""
    traces = [
        bars(~removed, raw_shown, "raw: the model's probability (temperature 1, nothing removed)", RAW_GREY, -0.42),
        bars(removed, raw_shown, names_of["removed"], RAW_GREY, -0.42, pattern="/"),
        bars(
            ~is_marked & ~removed,
            drawn_shown,
            names_of["drawn"],
            DRAWN_BLUE,
            0.02,
            text_colour=DRAWN_BLUE,
            texts=drawn_texts,
        ),
        bars(~is_marked & removed, drawn_shown, "", DRAWN_BLUE, 0.02, texts=drawn_texts, legend=False),
        bars(is_marked, drawn_shown, names_of["marked"], CHOSEN_ORANGE, 0.02, text_colour="#B07800", texts=drawn_texts),
    ]
    return [t for t in traces if len(t["y"])]


def _sampling_axes(y: np.ndarray, names: list[str], is_marked: np.ndarray, marked_role: str, top: float) -> dict:
    """The layout of ``sampling_bars``: probability axis to just past the tallest bar, the marked token's tick in
    orange, the legend below."""
    ticks = [
        f'<span style="color:#B07800"><b>{marked_role} ▶ {n}</b></span>' if m else n
        for n, m in zip(names, is_marked, strict=True)
    ]
    return dict(
        barmode="overlay",
        xaxis=dict(
            title=dict(text="probability (grey: raw, temperature 1 · blue: what Step draws from)"),
            range=[0, min(1.0, top * 1.2 + 0.03)],
            tickformat=".0%",
        ),
        yaxis=dict(autorange="reversed", tickmode="array", tickvals=y.tolist(), ticktext=[f"{t}  " for t in ticks]),
        legend=dict(orientation="h", x=0, xanchor="left", y=-0.12, yanchor="top", traceorder="normal"),
    )


_SAMPLING_HOVER = (
    "token %{customdata[0]} (id %{customdata[1]})<br>raw p = %{customdata[2]:.4f}"
    "<br>Step draws it with p = %{customdata[3]:.4f}<br>%{customdata[4]}<extra></extra>"
)


def _bars(y, custom, mask, values, name, colour, offset, pattern="", text_colour="#555555", texts=None, legend=True):
    """One bar trace of sampling_bars: the shown tokens where ``mask`` holds, at their rows ``y``."""
    chosen = np.flatnonzero(mask)
    return dict(
        type="bar",
        orientation="h",
        y=y[chosen],
        x=values[chosen],
        name=name,
        showlegend=legend,
        offset=offset,
        width=0.4,
        marker=dict(color=colour, pattern=dict(shape=pattern)),
        text=[texts[k] if texts is not None else _percent(float(values[k])) for k in chosen],
        textposition="outside",
        cliponaxis=False,
        textfont=dict(color=text_colour, size=11),
        customdata=[custom[k] for k in chosen],
        hovertemplate=_SAMPLING_HOVER,
    )


def _sampling_subtitle(names, raw_shown, drawn_shown, removed, rules: str, greedy: bool) -> list[str]:
    if greedy:
        return [
            f"Greedy: Step always takes the most likely token, so all it draws from (100%) is on "
            f"{names[int(np.argmax(drawn_shown))]}",
            "Temperature, top-k and top-p do nothing until greedy is turned off",
        ]
    return [
        f"Blue: probability after {rules}" + ("; hatched: removed, never drawn" if removed.any() else ""),
        f"The {len(names)} tokens shown hold {_percent(float(drawn_shown.sum()))} of what Step draws from "
        f"({_percent(float(raw_shown.sum()))} of the raw probability)",
    ]


def context_attention(tokens, last_attention: np.ndarray, layer: int) -> go.Figure:
    """How the newest position spreads its attention over the context at one block,
    averaged over heads; last_attention is [L, H, T]."""
    require(last_attention.ndim == 3 and last_attention.shape[2] == len(tokens), "last_attention must be [L, H, T]")
    weights = last_attention[layer].mean(axis=0)
    labels = [f"{i}:{safe_label(t)}" for i, t in enumerate(tokens)]
    fig = go.Figure(
        go.Bar(x=labels, y=weights, marker_color="#009E73", hovertemplate="%{x}<br>weight %{y:.3f}<extra></extra>")
    )
    base_layout(fig, f"Where the newest token looks, block {layer + 1} (average of heads)", height=340)
    fig.update_layout(yaxis_title="attention weight", xaxis_title="context token")
    return fig


def step_history(entropies: list[float], chosen_probs: list[float], tokens: list[str]) -> go.Figure:
    """Over the generated tokens: entropy of each step's distribution and the chosen token's probability."""
    require(len(entropies) == len(chosen_probs) == len(tokens), "one value per generated token")
    x = [f"{i + 1}:{safe_label(t)}" for i, t in enumerate(tokens)]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=entropies, name="entropy (bits)", mode="lines+markers", line=dict(color="#0072B2")))
    fig.add_trace(
        go.Scatter(
            x=x, y=chosen_probs, name="p(chosen token)", mode="lines+markers", yaxis="y2", line=dict(color="#E69F00")
        )
    )
    base_layout(fig, "Uncertainty at each step", height=320)
    fig.update_layout(
        yaxis=dict(title="entropy (bits)", rangemode="tozero"),
        yaxis2=dict(title="p(chosen)", overlaying="y", side="right", range=[0, 1], tickformat=".0%"),
        legend=dict(orientation="h", y=-0.3),
    )
    return fig


def depth_lens(
    top_tokens: list[str], top_probs: np.ndarray, final_token: str, final_probs: np.ndarray, title: str
) -> go.Figure:
    """What the output head reads from each depth of one position.

    top_tokens [L+1] the most likely token at each depth, top_probs [L+1] its probability,
    final_probs [L+1] the probability, at each depth, of the token the last layer ranks first.
    """
    require(len(top_tokens) == len(top_probs) == len(final_probs), "one value per depth")
    depths = list(range(len(top_tokens)))
    fig = dict_figure(
        [
            dict(
                type="bar",
                x=depths,
                y=top_probs,
                name="p(top token at this depth)",
                marker=dict(color="#56B4E9"),
                text=[safe_label(t) for t in top_tokens],
                textposition="outside",
                cliponaxis=False,
                hovertemplate="depth %{x}: top token %{text} (p = %{y:.3f})<extra></extra>",
            ),
            dict(
                type="scatter",
                x=depths,
                y=final_probs,
                name=f"p('{safe_label(final_token)}', the final answer)",
                mode="lines+markers",
                line=dict(color="#E69F00", width=3),
                hovertemplate="depth %{x}: %{y:.3f}<extra></extra>",
            ),
        ],
        dict(
            xaxis=dict(title=dict(text="depth (0 = embeddings, then after each block)")),
            yaxis=dict(title=dict(text="probability"), range=[0, 1.12]),
            legend=dict(orientation="h", y=-0.25),
        ),
    )
    return base_layout(fig, title, height=380)
