"""Figures of what an encoder computes: token trajectories, similarity and attention."""

from __future__ import annotations

import copy
import functools

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.plots.common import (
    QUALITATIVE,
    base_layout,
    dict_figure,
    named_colorscale,
    pca_2d,
    require,
    safe_label,
    unique_labels,
)
from explorer.trace import ForwardTrace


def token_trajectories(trace: ForwardTrace, dims: int = 2) -> go.Figure:
    """Every token's hidden state at every depth, on ONE PCA (2-D or 3-D) fitted across all
    layers, so a token can be followed from its embedding (layer 0) to the last layer."""
    require(dims in (2, 3), "dims is 2 or 3")
    states = trace.hidden_states  # [L+1, T, D]
    layers, tokens, width = states.shape
    coords, ratio = pca_2d(states.reshape(layers * tokens, width), components=dims)
    coords = coords.reshape(layers, tokens, dims)
    norms = np.linalg.norm(states, axis=-1)  # [L+1, T]
    kind, size = ("scatter", np.linspace(5, 13, layers)) if dims == 2 else ("scatter3d", np.linspace(2, 6, layers))
    data = []
    for t, token in enumerate(trace.tokens):
        colour = QUALITATIVE[t % len(QUALITATIVE)]
        label = safe_label(token)
        axes = dict(zip("xyz", coords[:, t].T))
        data.append(dict(
            type=kind, **axes, mode="lines+markers+text", name=f"{t}: {label}",
            line=dict(color=colour, width=2 if dims == 3 else 1.5), marker=dict(color=colour, size=size),
            text=[""] * (layers - 1) + [label], textposition="top center", textfont=dict(color=colour),
            customdata=np.stack([np.arange(layers), norms[:, t]], axis=-1),
            hovertemplate=f"<b>{label}</b> (position {t})<br>layer %{{customdata[0]}}"
                          f"<br>norm %{{customdata[1]:.2f}}<extra></extra>",
        ))  # fmt: skip
    fig = dict_figure(data)
    base_layout(fig, "How each token's representation moves through the layers", height=560)
    axes = [f"principal component {i + 1} ({ratio[i]:.0%} of variance)" for i in range(dims)]
    if dims == 2:
        # title=dict(text=...): unvalidated, a plain string title would reach plotly.js 3 unconverted
        fig.update_layout(xaxis=dict(title=dict(text=axes[0])), yaxis=dict(title=dict(text=axes[1])))
    else:
        fig.update_layout(scene={f"{a}axis": dict(title=dict(text=f"PC{i + 1}")) for i, a in enumerate("xyz")})
    fig.update_layout(legend=dict(title=dict(text="token (small dot = embedding, large = last layer)")))
    return fig


def pair_similarity_by_depth(trace: ForwardTrace, first: int, second: int) -> go.Figure:
    """Cosine similarity of two tokens' vectors at every depth (0 = embeddings)."""
    t = len(trace.tokens)
    require(0 <= first < t and 0 <= second < t, "token positions out of range")
    a, b = trace.hidden_states[:, first], trace.hidden_states[:, second]  # [L+1, D]
    cos = (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)
    fig = dict_figure(
        [
            dict(
                type="scatter",
                x=np.arange(len(cos)),
                y=cos,
                mode="lines+markers",
                line=dict(color="#0072B2"),
                hovertemplate="depth %{x}: cosine %{y:.3f}<extra></extra>",
            )
        ],
        dict(
            xaxis=dict(title=dict(text="depth (0 = embeddings, then after each block)")),
            yaxis=dict(title=dict(text="cosine similarity"), range=[min(-0.05, float(cos.min()) - 0.05), 1.05]),
        ),
    )
    return base_layout(
        fig,
        f"Similarity of '{safe_label(trace.tokens[first])}' and '{safe_label(trace.tokens[second])}' with depth",
        height=320,
    )


def attention_entropy_overview(trace: ForwardTrace) -> go.Figure:
    """[L, H] mean entropy (bits) of every head's attention rows: low = focused heads that
    look at one token, high = heads that spread their attention broadly."""
    require(trace.attentions is not None, "this trace kept no attention maps")
    a = np.clip(trace.attentions, 1e-12, 1.0)  # [L, H, T, T]
    entropy = -(a * np.log2(a)).sum(-1).mean(-1)  # [L, H]
    fig = dict_figure(
        [
            dict(
                type="heatmap",
                z=entropy,
                x=[f"head {h}" for h in range(entropy.shape[1])],
                y=[f"block {b + 1}" for b in range(entropy.shape[0])],
                colorscale=named_colorscale("Magma"),
                colorbar=dict(title=dict(text="bits")),
                hovertemplate="%{y}, %{x}<br>mean entropy %{z:.2f} bits<extra></extra>",
            )
        ],
        dict(yaxis=dict(autorange="reversed")),
    )
    return base_layout(
        fig,
        f"All heads at a glance: how spread out each head's attention is (max {np.log2(len(trace.tokens)):.1f} bits)",
        height=max(300, 28 * entropy.shape[0] + 140),
    )


def mask_comparison(tokens) -> go.Figure:
    """Which positions each query may attend to: bidirectional (encoder) vs causal (decoder)."""
    t = len(tokens)
    labels = unique_labels(tokens)
    data = [
        dict(
            type="heatmap",
            z=mask,
            x=labels,
            y=labels,
            zmin=0,
            zmax=1,
            showscale=False,
            xaxis=f"x{suffix}",
            yaxis=f"y{suffix}",
            colorscale=[[0, "#F2F2F2"], [1, "#0072B2"]],
            hovertemplate="query %{y}<br>key %{x}<br>%{z:.0f} = allowed if 1<extra></extra>",
        )
        for suffix, mask in (("", np.ones((t, t), dtype=np.uint8)), ("2", np.tril(np.ones((t, t), dtype=np.uint8))))
    ]
    return base_layout(dict_figure(data, _two_panels()), "Who may attend to whom (blue = allowed)", height=380)


def _two_panels() -> dict:
    """make_subplots' layout for the two panels (axes domains, titles): a copy of one built once."""
    return copy.deepcopy(_two_panels_layout())


@functools.cache
def _two_panels_layout() -> dict:
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("Encoder: bidirectional", "Decoder: causal"), horizontal_spacing=0.12
    )
    fig.update_yaxes(autorange="reversed")
    return fig.layout.to_plotly_json()


def cosine_similarity_matrix(trace: ForwardTrace, layer: int) -> go.Figure:
    """Cosine similarity between every pair of tokens at one depth."""
    require(0 <= layer <= trace.num_layers, f"layer {layer} outside 0..{trace.num_layers}")
    h = trace.hidden_states[layer]  # [T, D]
    unit = h / np.maximum(np.linalg.norm(h, axis=-1, keepdims=True), 1e-12)
    sim = unit @ unit.T  # [T, T]
    labels = unique_labels(trace.tokens)
    fig = dict_figure(
        [
            dict(
                type="heatmap",
                z=sim,
                x=labels,
                y=labels,
                zmin=-1,
                zmax=1,
                colorscale=named_colorscale("RdBu"),
                reversescale=True,
                colorbar=dict(title=dict(text="cosine")),
                hovertemplate="%{y} vs %{x}<br>cosine %{z:.3f}<extra></extra>",
            )
        ],
        dict(yaxis=dict(autorange="reversed")),
    )
    return base_layout(
        fig,
        f"Token similarity at layer {layer} ({'embeddings' if layer == 0 else 'after block ' + str(layer)})",
        height=480,
    )


def attention_heatmap(tokens, attention: np.ndarray, title: str, key_tokens=None) -> go.Figure:
    """One attention map [queries, keys] (a head or the head average); rows sum to 1."""
    require(attention.ndim == 2, f"attention must be [q, k], got {attention.shape}")
    key_tokens = tokens if key_tokens is None else key_tokens
    require(
        attention.shape == (len(tokens), len(key_tokens)),
        f"attention {attention.shape} vs {len(tokens)}x{len(key_tokens)} tokens",
    )
    fig = dict_figure(
        [
            dict(
                type="heatmap",
                z=attention,
                x=unique_labels(key_tokens),
                y=unique_labels(tokens),
                zmin=0,
                colorscale=named_colorscale("Blues"),
                colorbar=dict(title=dict(text="weight")),
                hovertemplate="query %{y}<br>key %{x}<br>weight %{z:.3f}<extra></extra>",
            )
        ],
        dict(
            xaxis=dict(title=dict(text="attended-to token (key)")),
            yaxis=dict(title=dict(text="attending token (query)"), autorange="reversed"),
        ),
    )
    return base_layout(fig, title, height=480)


def layer_attention(trace: ForwardTrace, layer: int, head: int | None) -> go.Figure:
    """The attention map of one block: one head, or the average over heads (head=None)."""
    require(trace.attentions is not None, "this trace kept no attention maps")
    require(0 <= layer < trace.num_layers, f"layer {layer} outside 0..{trace.num_layers - 1}")
    maps = trace.attentions[layer]  # [H, T, T]
    attn = maps.mean(axis=0) if head is None else maps[head]
    which = "average of all heads" if head is None else f"head {head}"
    return attention_heatmap(trace.tokens, attn, f"Attention in block {layer + 1}, {which}")


def same_word_by_depth(traces: dict[str, ForwardTrace], word: str) -> go.Figure:
    """One word in several sentences (``traces``: sentence -> its trace, by one model): at every depth
    (0 = embeddings), the cosine similarity of the word's vector in the first sentence with its vector
    in each other sentence, one line each. Depth 0 is the embedding layer's output: the word's embedding
    plus, in models that add one, its position's; so it is one vector (cosine 1) only where the word sits
    at the same position."""
    require(len(traces) >= 2, "two sentences or more")
    vectors = {}
    for sentence, trace in traces.items():
        # the word as one token, spelt alone (BERT) or with its leading space (RoBERTa, GPT-2 style: '␣bank')
        where = [i for i, t in enumerate(trace.tokens) if t in (word, "␣" + word)]
        require(bool(where), f"'{word}' is not one token of {sentence!r}")
        vectors[sentence] = trace.hidden_states[:, where[0]]  # [L+1, D]
    (first, a), *others = vectors.items()
    require(all(b.shape == a.shape for _s, b in others), "the traces come from different models")
    data, lowest = [], 0.0
    for n, (sentence, b) in enumerate(others):
        cos = (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)
        lowest = min(lowest, float(cos.min()))
        data.append(
            dict(
                type="scatter",
                x=np.arange(len(cos)),
                y=cos,
                mode="lines+markers",
                name=safe_label(sentence),
                line=dict(color=QUALITATIVE[n % len(QUALITATIVE)]),
                hovertemplate=f"{safe_label(sentence)}<br>depth %{{x}}: cosine %{{y:.3f}}<extra></extra>",
            )
        )
    fig = dict_figure(
        data,
        dict(
            xaxis=dict(title=dict(text="depth (0 = embeddings, then after each block)"), dtick=1),
            yaxis=dict(
                title=dict(text=f"cosine with '{safe_label(word)}' in the first sentence"), range=[lowest - 0.05, 1.05]
            ),
            legend=dict(orientation="h", yanchor="top", y=-0.25, x=0.0),
        ),
    )
    return base_layout(
        fig,
        f"'{safe_label(word)}' in different sentences, against '{safe_label(word)}' in “{safe_label(first)}”",
        height=380,
    )
