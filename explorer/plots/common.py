"""Shared figure styling and checks."""

from __future__ import annotations

import base64
import functools
import html
import os
import re

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
QUALITATIVE = [
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
    "#999999",
    "#882255",
    "#44AA99",
    "#117733",
    "#332288",
    "#DDCC77",
    "#AA4499",
    "#88CCEE",
]


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
_TYPED = {
    ("f", 8): "f8",
    ("f", 4): "f4",
    ("i", 4): "i4",
    ("i", 2): "i2",
    ("i", 1): "i1",
    ("u", 4): "u4",
    ("u", 2): "u2",
    ("u", 1): "u1",
}


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
    fig.update_layout(
        title=dict(text=title, x=0.0, xanchor="left"), height=height, font=FONT, margin=dict(l=60, r=20, t=60, b=50)
    )
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


CLASSROOM_TEXT_PX = 18  # the smallest text of a figure in Classroom mode (a projector at the back of a room)
CLASSROOM_CONTRAST = 4.5  # WCAG AA for normal text, against the figure's white background


def relative_luminance(color: str) -> float:
    """WCAG relative luminance of a CSS colour ('#rrggbb', '#rgb', 'rgb(...)', 'rgba(...)' or a name)."""
    r, g, b = (channel / 255 for channel in plotly.colors.unlabel_rgb(_as_rgb(color))[:3])
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(color: str, background: str = "#ffffff") -> float:
    """WCAG contrast ratio (L1 + 0.05) / (L2 + 0.05) of two colours, the lighter on top."""
    a, b = sorted((relative_luminance(color), relative_luminance(background)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def legible(color: str | None, background: str = "#ffffff") -> str:
    """``color`` darkened just enough (same hue) to reach CLASSROOM_CONTRAST on ``background``."""
    if not color:
        return "#000000"
    rgb = np.array(plotly.colors.unlabel_rgb(_as_rgb(color))[:3], dtype=float)
    for _ in range(40):
        candidate = "rgb({:.0f}, {:.0f}, {:.0f})".format(*rgb)
        if contrast_ratio(candidate, background) >= CLASSROOM_CONTRAST:
            return candidate
        rgb *= 0.9
    return "#000000"


def _as_rgb(color: str) -> str:
    color = color.strip()
    if color.startswith("#"):
        return plotly.colors.label_rgb(
            plotly.colors.hex_to_rgb(color if len(color) == 7 else "#" + "".join(c * 2 for c in color[1:4]))
        )
    if color.startswith("rgba"):
        return "rgb(" + ",".join(color[5:-1].split(",")[:3]) + ")"
    if color.startswith("rgb"):
        return color
    return plotly.colors.label_rgb(plotly.colors.hex_to_rgb(_CSS_NAMES.get(color.lower(), "#000000")))


_CSS_NAMES = {
    "black": "#000000",
    "white": "#ffffff",
    "grey": "#808080",
    "gray": "#808080",
    "red": "#ff0000",
    "orange": "#ffa500",
    "blue": "#0000ff",
    "green": "#008000",
    "darkorange": "#ff8c00",
}


def _bigger(font, color: bool = True) -> dict:
    """A font dict at least CLASSROOM_TEXT_PX, its colour legible on white."""
    size = max(CLASSROOM_TEXT_PX, (font.size if font is not None and font.size else 0))
    out = {"size": size}
    if color:
        out["color"] = legible(font.color if font is not None and isinstance(font.color, str) else "#000000")
    return out


_TAG = re.compile(r"<[^>]+>")


def wrap_title(text: str, chars: int) -> str:
    """A title's lines (split at <br>) wrapped at about ``chars`` visible characters per line, never
    inside an HTML tag (Plotly draws a title on one line however narrow the figure is)."""
    out = []
    for line in text.split("<br>"):
        line = _TAG.sub(lambda m: m.group(0).replace(" ", "\x00"), line)  # a tag's own spaces never break a line
        words, current, width = line.split(" "), [], 0
        for word in words:
            visible = len(_TAG.sub("", word))
            if current and width + 1 + visible > chars:
                out.append(" ".join(current))
                current, width = [], 0
            current.append(word)
            width += visible + (1 if width else 0)
        out.append(" ".join(current))
    # a <sup>/<sub> opened on one line and closed on the next must be closed and reopened around the break
    fixed = []
    for line in out:
        for tag in ("sup", "sub", "b", "i"):
            opened, closed = line.count(f"<{tag}>"), line.count(f"</{tag}>")
            if opened > closed:
                line += f"</{tag}>"
            elif closed > opened:
                line = f"<{tag}>" + line
        fixed.append(line)
    return "<br>".join(fixed).replace("\x00", " ")


def fit_title(fig: go.Figure, chars: int, line_px: int) -> go.Figure:
    """Wrap the title at ``chars`` and give it the top margin its lines need."""
    title = fig.layout.title.text if fig.layout.title is not None else None
    if not title:
        return fig
    wrapped = wrap_title(title, chars)
    lines = wrapped.count("<br>") + 1
    top = max(fig.layout.margin.t or 0, 30 + int(line_px * 1.25 * lines))
    return fig.update_layout(title_text=wrapped, margin_t=top + 12, title_y=1, title_yanchor="top", title_pad_t=24)


_INLINE_COLOR = re.compile(r"color:\s*(#[0-9a-fA-F]{3,6}|rgba?\([^)]*\))")


def legible_markup(text):
    """Inline colours in Plotly's HTML subset (``<span style='color:…'>``) darkened to CLASSROOM_CONTRAST;
    ``<sup>``/``<sub>`` (70% of the font) become spans at CLASSROOM_TEXT_PX. Non-strings pass through."""
    if not isinstance(text, str) or "<" not in text:
        return text
    text = _INLINE_COLOR.sub(lambda m: "color:" + legible(m.group(1)), text)
    for tag in ("sup", "sub"):
        text = text.replace(f"<{tag}>", f"<span style='font-size:{CLASSROOM_TEXT_PX}px'>")
        text = text.replace(f"</{tag}>", "</span>")
    return text


def _legible_labels(values):
    if isinstance(values, (list, tuple)) and any(isinstance(v, str) and "<" in v for v in values):
        return [legible_markup(v) for v in values]
    return values


def classroom_style(fig: go.Figure) -> go.Figure:
    """Large fonts, thick lines and a high-contrast background that read from the back of a room:
    every text a figure draws (titles, ticks, legends, colour bars, annotations, bar labels) at least
    CLASSROOM_TEXT_PX and CLASSROOM_CONTRAST against white (coloured annotations keep their hue,
    darkened); the app draws it with Plotly's own theme, not Streamlit's grey one."""
    fig = go.Figure(fig)
    fig.update_layout(
        font=dict(size=20, color="#000000"),
        title_font=dict(size=24, color="#000000"),
        template="simple_white",
        paper_bgcolor="#ffffff",
        plot_bgcolor="#ffffff",
        hoverlabel=dict(font_size=CLASSROOM_TEXT_PX),
        legend=dict(font=dict(size=CLASSROOM_TEXT_PX)),
        margin=dict(l=90, r=30, t=80, b=80),
    )
    axis = dict(
        tickfont=dict(size=CLASSROOM_TEXT_PX, color="#000000"),
        title_font=dict(size=20, color="#000000"),
        showgrid=True,
        gridcolor="#DDDDDD",
    )
    fig.update_xaxes(**axis)
    fig.update_yaxes(**axis)
    for annotation in fig.layout.annotations:
        annotation.font = _bigger(annotation.font)
        annotation.text = legible_markup(annotation.text)
    if fig.layout.title is not None and fig.layout.title.text:
        fig.layout.title.text = legible_markup(fig.layout.title.text)
    for axis_name in ("xaxis", "yaxis", "xaxis2", "yaxis2"):
        axis_layout = fig.layout[axis_name] if axis_name in fig.layout else None
        if axis_layout is not None and axis_layout.ticktext is not None:
            axis_layout.ticktext = _legible_labels(list(axis_layout.ticktext))
    for trace in fig.data:
        _trace_for_classroom(trace)
    if fig.layout.coloraxis is not None and fig.layout.coloraxis.colorbar is not None:
        fig.layout.coloraxis.colorbar.tickfont = dict(size=CLASSROOM_TEXT_PX, color="#000000")
    if fig.layout.height:  # larger text needs room, but a figure already taller than a projector stays as tall
        fig.update_layout(height=max(fig.layout.height, min(int(fig.layout.height * 1.25), 640)))
    if fig.layout.showlegend is not False and len(fig.data) > 1:  # below the plot: a figure in a panel is narrow
        fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.18, x=0, xanchor="left"))
    if any(t.type == "bar" and t.text is not None for t in fig.data):
        # labels drawn beyond a bar's end; Plotly would shrink a label that does not fit (7-10 px): never below 18
        fig.update_layout(margin_r=90, uniformtext=dict(minsize=CLASSROOM_TEXT_PX, mode="show"))
    return fit_title(fig, chars=44, line_px=24)


def _columns(trace) -> int:
    z = trace.z
    if isinstance(z, dict) and "shape" in z:  # a typed-array spec (dict_figure)
        return int(str(z["shape"]).split(",")[-1])
    try:
        return len(z[0])
    except (TypeError, IndexError):
        return 0


def _trace_for_classroom(trace) -> None:
    for name in ("x", "y", "text"):  # category labels and bar texts may carry coloured spans
        if name in trace and isinstance(trace[name], (list, tuple)):
            trace[name] = _legible_labels(list(trace[name]))
    if trace.type == "scatter" and trace.line is not None and trace.line.width is not None:
        trace.line.width = max(trace.line.width, 3)
    if "colorbar" in trace and trace.colorbar is not None:
        trace.colorbar.tickfont = dict(size=CLASSROOM_TEXT_PX, color="#000000")
        trace.colorbar.title.font = dict(size=CLASSROOM_TEXT_PX, color="#000000")
    if "textfont" in trace and trace.textfont is not None:
        trace.textfont.size = (
            max(CLASSROOM_TEXT_PX, trace.textfont.size or 0)
            if not isinstance(trace.textfont.size, tuple)
            else CLASSROOM_TEXT_PX
        )
        if trace.type == "bar":  # labels drawn beside the bar, on white, so their colour can be checked
            trace.textposition = "outside" if trace.text is not None else trace.textposition
            trace.textfont.color = "#000000"
        elif trace.type in ("scatter", "scatter3d") and trace.textfont.color is not None:  # labels on white
            colors = trace.textfont.color
            trace.textfont.color = legible(colors) if isinstance(colors, str) else [legible(c) for c in colors]
    if trace.type == "sankey":
        trace.textfont = dict(size=CLASSROOM_TEXT_PX, color="#000000")
    if trace.type == "heatmap" and (trace.text is not None or trace.texttemplate) and _columns(trace) > 8:
        trace.texttemplate = ""  # 18 px labels do not fit that many cells: the colours and the hover say it
