"""Encoder-only adapter (BERT, RoBERTa, DistilBERT, ALBERT, DeBERTa-v2, ELECTRA)."""

from __future__ import annotations

import numpy as np

from explorer.adapters.common import as_batch, display_tokens, exclusive, stack_batch0, to_numpy, tokenize
from explorer.trace import ForwardTrace


def trace_ids(loaded, ids: np.ndarray, notes: tuple[str, ...] = ()) -> ForwardTrace:
    """One bidirectional forward over ``ids`` [T]; logits only when a trained MLM head exists."""
    input_ids = as_batch(ids, loaded.device)
    with exclusive(loaded):
        out = loaded.model(input_ids=input_ids, output_hidden_states=True, output_attentions=True, return_dict=True)
    logits = to_numpy(out.logits[0]) if loaded.has_mlm_head else None  # [T, V]
    return ForwardTrace(
        tokens=display_tokens(loaded.tokenizer, ids),
        token_ids=np.asarray(ids, dtype=np.int64),
        hidden_states=stack_batch0(out.hidden_states),  # [L+1, T, D]
        attentions=stack_batch0(out.attentions),  # [L, H, T, T]
        logits=logits,
        causal=False,
        notes=notes,
    )


def trace_text(loaded, text: str) -> ForwardTrace:
    ids, notes = tokenize(loaded, text)
    return trace_ids(loaded, ids, notes)
