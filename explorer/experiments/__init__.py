"""Experiments (issue #15): interventions on a live model and published findings reproduced.

``cards`` and ``results`` are pure numpy (statistics over trace arrays); the interventions are
adapter-level code (torch, context-managed hooks) in ``explorer.adapters.interventions``;
``measure`` computes the cards on a loaded model over the named prompt sets of ``prompts``;
``python -m explorer.experiments`` prints them.
"""
