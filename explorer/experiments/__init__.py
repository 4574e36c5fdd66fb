"""Experiments (issue #15): interventions on a live model and published findings reproduced.

``statistics`` is pure numpy (statistics over trace arrays); the interventions are adapter-level code
(torch, context-managed hooks) in ``explorer.adapters.interventions``, and what they return
(``explorer.effects``) sits below the adapters, beside the trace;
``measure`` computes the cards on a loaded model over the named prompt sets of ``prompts`` (one
forward per prompt, every card against its null); ``report`` turns them into the page's tables and
the README's card block; ``python -m explorer.experiments`` prints them (``--write``: stores the
embedded defaults' cards and rewrites that block).
"""
