"""Routing statistics of a trained MoE on held-out text, through the app's own adapter."""

from __future__ import annotations

import numpy as np

from explorer import routing
from explorer.adapters import moe
from explorer.train.corpus import load_corpus


def routing_report(loaded, corpus, seq_len: int = 128, max_rows: int = 96) -> dict:
    """Load per expert per MoE layer, load-balancing value, first-choice load entropy, and how
    consistently one token id goes to the same first-choice expert, over ``max_rows`` held-out
    sequences spread evenly over every corpus file's held-out part."""
    from explorer.train.lm import rows, token_stream

    held = rows(token_stream(loaded.tokenizer, load_corpus(corpus).held_out), seq_len)
    # evenly spaced rows: the held-out stream runs file by file, so the first rows would all be Emma
    held = held[np.unique(np.linspace(0, len(held) - 1, max_rows).astype(int))]
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
    # [M, E] share of tokens whose first choice is each expert, and its entropy / ln E per layer
    first_share = np.stack(
        [np.bincount(first[layer], minlength=load.shape[1]) / first.shape[1] for layer in range(first.shape[0])]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.nansum(first_share * np.log(first_share), axis=1) / np.log(load.shape[1])
    return {
        "held_out_tokens": int(all_ids.size),
        "load_per_expert_per_layer": np.round(load, 4).tolist(),
        "max_load_share": float(load.max()),
        "min_load_share": float(load.min()),
        "load_balancing_value_per_layer": np.round(np.mean(balances, axis=0), 3).tolist(),
        "first_choice_share_per_layer": np.round(first_share, 4).tolist(),
        "first_choice_entropy_per_layer": np.round(entropy, 4).tolist(),  # entropy / ln E: 1.0 = uniform
        "same_token_id_same_first_expert_per_layer": np.round(consistency, 3).tolist(),
        "token_ids_counted": int(len(frequent)),
        "chance_level": 1 / load.shape[1],
    }
