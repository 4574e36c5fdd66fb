"""Pure figure functions: trace (numpy) in, Plotly figure out. They never load models."""
