"""Shared figure styling and checks."""

from __future__ import annotations

import base64
import functools
import html
import os

import numpy as np
import plotly.colors
import plotly.graph_objects as go
import plotly.io as pio
import scipy.linalg

# Every figure starts from this template (applied once, when the figure is created): setting
# it again per figure cost a second full template validation, ~10 ms each.
pio.templates.default = "plotly_white"

FONT = dict(family="Inter, Segoe UI, Helvetica, Arial, sans-serif", size=13)
# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
QUALITATIVE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
               "#999999", "#882255", "#44AA99", "#117733", "#332288", "#DDCC77", "#AA4499", "#88CCEE"]


# Set to "1" (tests/conftest.py does) to have Plotly check every property of dict_figure's figures.
VALIDATE_ENV = "EXPLORER_VALIDATE_FIGURES"


def dict_figure(data: list[dict], layout: dict | None = None) -> go.Figure:
    """A figure from plain trace and layout dicts (``type`` names each trace's kind), built without
    Plotly's per-property validation, its numeric arrays already in Plotly's base64 form.

    Validation is most of a figure's build time (a 64-token trajectory figure: 90 ms -> 9 ms on one
    core), and Plotly's own array encoding, run again on every rerun's ``to_dict``, cost 15 ms more
    for that figure's 256 small arrays; both are paid for every new text a class types. The tests
    build every such figure the validated way (VALIDATE_ENV: Plotly's checks and its own encoding),
    and test_plots checks that both ways reach the browser as the same JSON."""
    if os.environ.get(VALIDATE_ENV) == "1":  # Plotly checks and encodes everything itself
        return go.Figure(data=data, layout=layout)
    return go.Figure(data=[_encode_arrays(t) for t in data], layout=layout, _validate=False)


# numpy kind and item size -> plotly.js typed-array code (64-bit integers have none)
_TYPED = {("f", 8): "f8", ("f", 4): "f4", ("i", 4): "i4", ("i", 2): "i2", ("i", 1): "i1",
          ("u", 4): "u4", ("u", 2): "u2", ("u", 1): "u1"}


def typed_array(values: np.ndarray) -> dict | np.ndarray:
    """A numeric array as Plotly's typed-array spec (dtype, base64 bytes, shape), exactly as Plotly
    encodes numpy arrays (64-bit integers narrowed to the smallest type that holds them); an array
    with no such spec comes back as it is."""
    array = np.asarray(values)
    if array.dtype.kind in "iu" and array.dtype.itemsize == 8:
        narrower = (np.int8, np.int16, np.int32) if array.dtype.kind == "i" else (np.uint8, np.uint16, np.uint32)
        fits = [t for t in narrower if np.iinfo(t).min <= array.min() and array.max() <= np.iinfo(t).max]
        if not fits:
            return array
        array = array.astype(fits[0])
    code = _TYPED.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        return array
    spec = {"dtype": code, "bdata": base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")}
    if array.ndim > 1:
        spec["shape"] = ", ".join(str(n) for n in array.shape)
    return spec


@functools.cache
def _named_colorscale(name: str) -> tuple:
    return tuple(tuple(step) for step in plotly.colors.get_colorscale(name))


def named_colorscale(name: str) -> list[list]:
    """A named colorscale as [[position, colour], ...], as Plotly's validation expands it (plotly.js
    itself knows only some names: "Magma" is not among them)."""
    return [list(step) for step in _named_colorscale(name)]


def _encode_arrays(value):
    if isinstance(value, dict):
        return {key: _encode_arrays(item) for key, item in value.items()}
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiu" and value.size:
        return typed_array(value)
    return value


def safe_label(token: str) -> str:
    """Token text for axis labels and hovers: HTML-escaped (Plotly renders a subset of HTML)."""
    return html.escape(token, quote=False)


def unique_labels(tokens) -> list[str]:
    """Category axes merge equal labels; prefix the position so repeated tokens stay apart."""
    return [f"{i}:{safe_label(t)}" for i, t in enumerate(tokens)]


def base_layout(fig: go.Figure, title: str, height: int = 420) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0.0, xanchor="left"), height=height, font=FONT,
                      margin=dict(l=60, r=20, t=60, b=50))
    return fig


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def pca_2d(points: np.ndarray, components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Project [N, D] points on their top principal components.

    Returns (coords [N, components], explained variance ratio [components]). Computed from the top
    eigenvectors of the smaller of the Gram matrix [N, N] and the covariance [D, D] (exact; only the
    top ones are solved for, and the total variance is the matrix's trace: ~10x faster than an SVD
    for a page's 7 x 64 tokens of 768 numbers); each component's sign is fixed so that its largest
    coordinate is positive (an SVD's sign is arbitrary too)."""
    centred = (points - points.mean(axis=0, keepdims=True)).astype(np.float64)
    n, d = centred.shape
    gram = centred @ centred.T if n <= d else centred.T @ centred
    size = gram.shape[0]
    k = min(components, size)
    values, vectors = scipy.linalg.eigh(gram, subset_by_index=[size - k, size - 1])  # ascending
    top = np.clip(values[::-1], 0.0, None)
    vectors = vectors[:, ::-1]
    ratio = top / max(float(np.trace(gram)), 1e-12)
    coords = vectors * np.sqrt(top) if n <= d else centred @ vectors
    signs = np.sign(coords[np.abs(coords).argmax(axis=0), np.arange(coords.shape[1])])
    signs[signs == 0] = 1.0
    return coords * signs, ratio


def classroom_style(fig: go.Figure) -> go.Figure:
    """Large fonts, thick lines and a high-contrast background that read from the back of a room."""
    fig = go.Figure(fig)
    fig.update_layout(font=dict(size=20, color="#000000"), title_font=dict(size=24), template="simple_white",
                      hoverlabel=dict(font_size=18), margin=dict(l=90, r=30, t=80, b=80))
    fig.update_xaxes(tickfont=dict(size=18), title_font=dict(size=20), showgrid=True, gridcolor="#DDDDDD")
    fig.update_yaxes(tickfont=dict(size=18), title_font=dict(size=20), showgrid=True, gridcolor="#DDDDDD")
    for trace in fig.data:
        if trace.type == "scatter" and trace.line is not None and trace.line.width is not None:
            trace.line.width = max(trace.line.width, 3)
    if fig.layout.height:
        fig.update_layout(height=int(fig.layout.height * 1.25))
    return fig


def standalone_html(figures: list[tuple[str, go.Figure]], title: str) -> str:
    """One HTML file with every figure of a view; plotly.js is embedded once, so the file
    opens offline."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
             f"<body style='font-family:sans-serif;max-width:1200px;margin:auto'><h1>{html.escape(title)}</h1>"]
    for index, (caption, fig) in enumerate(figures):
        parts.append(pio.to_html(fig, full_html=False, include_plotlyjs=index == 0))
        parts.append(f"<p style='color:#555'>{html.escape(caption)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
