"""Shared figure styling and checks."""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

FONT = dict(family="Inter, Segoe UI, Helvetica, Arial, sans-serif", size=13)
# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
QUALITATIVE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
               "#999999", "#882255", "#44AA99", "#117733", "#332288", "#DDCC77", "#AA4499", "#88CCEE"]


def safe_label(token: str) -> str:
    """Token text for axis labels and hovers: HTML-escaped (Plotly renders a subset of HTML)."""
    return html.escape(token, quote=False)


def unique_labels(tokens) -> list[str]:
    """Category axes merge equal labels; prefix the position so repeated tokens stay apart."""
    return [f"{i}:{safe_label(t)}" for i, t in enumerate(tokens)]


def base_layout(fig: go.Figure, title: str, height: int = 420) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0.0, xanchor="left"), height=height, font=FONT,
                      margin=dict(l=60, r=20, t=60, b=50), template="plotly_white")
    return fig


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def pca_2d(points: np.ndarray, components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Project [N, D] points on their top principal components.

    Returns (coords [N, components], explained variance ratio [components])."""
    centred = points - points.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    var = s**2
    ratio = var[:components] / max(var.sum(), 1e-12)
    return centred @ vt[:components].T, ratio
