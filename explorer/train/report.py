"""Routing statistics of a trained MoE on held-out text, through the app's own adapter."""

from __future__ import annotations

import numpy as np

from explorer import routing
from explorer.adapters import moe
from explorer.train.corpus import load_corpus


def routing_report(loaded, corpus, seq_len: int = 128, max_rows: int = 64) -> dict:
    """Load per expert per MoE layer, load-balancing value, and how consistently one token id
    goes to the same first-choice expert, over held-out sequences."""
    from explorer.train.lm import rows, token_stream

    held = rows(token_stream(loaded.tokenizer, load_corpus(corpus).held_out), seq_len)[:max_rows]
    loads, balances, firsts, ids = [], [], [], []
    for row in held:
        router = moe.trace_ids(loaded, row).router
        loads.append(router.expert_load())  # [M, E]
        balances.append(routing.load_balancing_value(router))
        firsts.append(router.chosen[..., 0])  # [M, T]
        ids.append(row)
    first = np.concatenate(firsts, axis=1)  # [M, N]
    all_ids = np.concatenate(ids)
    values, counts = np.unique(all_ids, return_counts=True)
    frequent = values[counts >= 5]
    consistency = []
    for layer in range(first.shape[0]):
        shares = [np.bincount(first[layer, all_ids == v]).max() / (all_ids == v).sum() for v in frequent]
        consistency.append(float(np.mean(shares)))
    load = np.mean(loads, axis=0)
    return {
        "held_out_tokens": int(all_ids.size),
        "load_per_expert_per_layer": np.round(load, 4).tolist(),
        "max_load_share": float(load.max()),
        "min_load_share": float(load.min()),
        "load_balancing_value_per_layer": np.round(np.mean(balances, axis=0), 3).tolist(),
        "same_token_id_same_first_expert_per_layer": np.round(consistency, 3).tolist(),
        "token_ids_counted": int(len(frequent)),
        "chance_level": 1 / load.shape[1],
    }
