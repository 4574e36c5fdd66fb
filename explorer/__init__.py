"""LLM architecture explorer: watch small real transformer models work.

Layers (imports only flow downwards):
    trace, decoding, text, catalogue     pure numpy/stdlib, the contract between layers
    models, adapters                     the only code that imports torch / transformers
    plots                                pure functions trace -> plotly figure
    ui                                   the only package (with app.py) that imports streamlit
"""

__version__ = "0.1.0"
