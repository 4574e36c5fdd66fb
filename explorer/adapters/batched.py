"""A whole prompt set in a few forwards: the replication cards read every prompt of a named set
from padded batches instead of one forward per prompt.

Small matrix products leave most of a CPU idle (a [16, 576] x [576, 1536] product runs at a
fifth of the rate of a [256, 576] one on two cores), so a batch of a dozen sentences costs about
what three of them cost alone. Prompts are right-padded and the padding is masked out: in a
causal model no real position can see a later one, and in an encoder the mask removes the
padding keys, so each prompt's rows equal its own forward (tested to 1e-5 against the family
adapters' ``trace_ids``). Each forward holds the model's lock on its own and carries at most
BATCH_TOKENS padded tokens, so another visitor's forward waits for one batch, not for the set.
"""

from __future__ import annotations

import numpy as np
import torch

from explorer.adapters import moe
from explorer.adapters.common import display_tokens, exclusive, to_numpy
from explorer.registry import FAMILIES
from explorer.trace import ForwardTrace, RouterTrace

BATCH_TOKENS = 256  # padded tokens per forward: large enough for efficient products, short enough to share


def chunks(lengths: list[int], budget: int) -> list[list[int]]:
    """Consecutive prompt indices grouped so that (prompts x longest) stays within ``budget``."""
    groups, current, longest = [], [], 0
    for i, n in enumerate(lengths):
        if current and max(longest, n) * (len(current) + 1) > budget:
            groups.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, n)
    return groups + ([current] if current else [])


def padded(prompts: list[np.ndarray], device) -> tuple[torch.Tensor, torch.Tensor]:
    """([B, T] ids right-padded with id 0, [B, T] mask: 1 on real tokens)."""
    longest = max(len(p) for p in prompts)
    ids = torch.zeros(len(prompts), longest, dtype=torch.long)
    mask = torch.zeros(len(prompts), longest, dtype=torch.long)
    for b, prompt in enumerate(prompts):
        ids[b, : len(prompt)] = torch.tensor(np.asarray(prompt), dtype=torch.long)  # a copy: trace ids are read-only
        mask[b, : len(prompt)] = 1
    return ids.to(device), mask.to(device)


def trace_batch(loaded, prompts: list[np.ndarray], with_logits: bool = False) -> list[ForwardTrace]:
    """One ForwardTrace per prompt (ids [T_i] each), as ``decoder.trace_ids`` / ``moe.trace_ids`` /
    ``encoder.trace_ids(with_logits=False)`` give it, from batched forwards. ``with_logits``: also
    the vocabulary logits [T_i, V] (a decoder's next-token predictions); without it the head is not
    run (an MoE decoder runs its whole model: the router logits come with it). Encoder-decoders are
    refused (their cards read their own traces)."""
    if getattr(loaded.model.config, "is_encoder_decoder", False):
        raise ValueError("batched traces cover encoder-only and decoder-only models")
    out: list[ForwardTrace] = []
    for group in chunks([len(p) for p in prompts], BATCH_TOKENS):
        out += _trace_group(loaded, [prompts[i] for i in group], with_logits)
    return out


def _trace_group(loaded, prompts: list[np.ndarray], with_logits: bool) -> list[ForwardTrace]:
    causal = not FAMILIES[loaded.family].encoder_only
    routed = moe.has_router(loaded.model)
    keep_logits = causal and (with_logits or routed)
    model = loaded.model if keep_logits else loaded.model.base_model
    flags = dict(output_hidden_states=True, output_attentions=True, return_dict=True)
    if routed:
        flags["output_router_logits"] = True
    ids, mask = padded(prompts, loaded.device)
    with exclusive(loaded):
        result = model(input_ids=ids, attention_mask=mask, **flags)
    batch, longest = ids.shape
    routers = None
    if routed:
        experts = result.router_logits[0].shape[-1]
        routers = [to_numpy(r).reshape(batch, longest, experts) for r in result.router_logits]  # M x [B, T, E]
    traces = []
    for b, prompt in enumerate(prompts):
        n = len(prompt)
        router = None if routers is None else _router(loaded, np.stack([r[b, :n] for r in routers]))  # [M, T, E]
        traces.append(
            ForwardTrace(
                tokens=display_tokens(loaded.tokenizer, prompt),
                token_ids=np.asarray(prompt, dtype=np.int64),
                hidden_states=np.stack([to_numpy(h[b, :n]) for h in result.hidden_states]),  # [L+1, T, D]
                attentions=np.stack([to_numpy(a[b, :, :n, :n]) for a in result.attentions]),  # [L, H, T, T]
                logits=to_numpy(result.logits[b, :n]) if with_logits and causal else None,  # [T, V]
                causal=causal,
                router=router,
            )
        )
    return traces


def _router(loaded, logits: np.ndarray) -> RouterTrace:
    """The routes of one prompt from its router logits [M, T, E], as ``moe.extract_router`` reads them."""
    probs, chosen, gates, kept = moe.routes_from_logits(loaded.model.config, logits)
    layers = moe.moe_layer_indices(loaded.model, "model")
    return RouterTrace(layer_indices=layers, probs=probs, chosen=chosen, gates=gates, kept=kept, top_k=chosen.shape[-1])
