"""Encoder-only adapter (BERT, RoBERTa, DistilBERT, ALBERT, DeBERTa-v2, ELECTRA)."""

from __future__ import annotations

import time

import numpy as np

from explorer.adapters import family
from explorer.adapters.common import as_batch, display_tokens, exclusive, stack_batch0, to_numpy, to_torch, tokenize
from explorer.adapters.runs import FamilyRun, dense_parameters
from explorer.trace import ForwardTrace


def trace_ids(loaded, ids: np.ndarray, notes: tuple[str, ...] = (), with_logits: bool = True) -> ForwardTrace:
    """One bidirectional forward over ``ids`` [T]; logits only when a trained MLM head exists.

    ``with_logits=False`` runs the encoder without its vocabulary head (logits None): the head over
    every position is ~40% of a 64-token forward on one core, and a page that needs predictions at a
    few masked positions applies the head there (``mlm_lens``, whose last depth is the model's own
    output: test_contract)."""
    input_ids = as_batch(ids, loaded.device)
    keep_logits = with_logits and loaded.has_mlm_head
    model = loaded.model if keep_logits else loaded.model.base_model
    with exclusive(loaded):
        out = model(input_ids=input_ids, output_hidden_states=True, output_attentions=True, return_dict=True)
    logits = to_numpy(out.logits[0]) if keep_logits else None  # [T, V]
    return ForwardTrace(
        tokens=display_tokens(loaded.tokenizer, ids),
        token_ids=np.asarray(ids, dtype=np.int64),
        hidden_states=stack_batch0(out.hidden_states),  # [L+1, T, D]
        attentions=stack_batch0(out.attentions),  # [L, H, T, T]
        logits=logits,
        causal=False,
        notes=notes,
    )


def trace_text(loaded, text: str, with_logits: bool = True) -> ForwardTrace:
    ids, notes = tokenize(loaded, text, keep_end=True)
    return trace_ids(loaded, ids, notes, with_logits)


def _mlm_head(model):
    """What maps a final hidden state [.., D] to vocabulary logits [.., V] (a module, or the same
    steps as the model's forward where the head is not one module)."""
    for name in ("cls", "lm_head", "predictions"):  # BERT, RoBERTa, ALBERT, DeBERTa
        head = getattr(model, name, None)
        if head is not None:
            return head
    if hasattr(model, "vocab_projector"):  # DistilBERT: transform, activation, norm, tied projection
        return lambda h: model.vocab_projector(model.vocab_layer_norm(model.activation(model.vocab_transform(h))))
    if hasattr(model, "generator_lm_head"):  # ELECTRA's generator
        return lambda h: model.generator_lm_head(model.generator_predictions(h))
    return None


def can_fill_masks(loaded) -> bool:
    """Whether the model has a trained masked-language head that ``mlm_lens`` can apply."""
    return loaded.has_mlm_head and _mlm_head(loaded.model) is not None


def mlm_lens(loaded, hidden: np.ndarray) -> np.ndarray | None:
    """Masked-token logits [L+1, V] from the hidden state of one position at every depth
    (hidden [L+1, D]): the MLM head applied to intermediate layers, an approximation since
    the head was trained on the last layer only. None when the model has no usable head."""

    head = _mlm_head(loaded.model) if loaded.has_mlm_head else None
    if head is None:
        return None
    with exclusive(loaded):
        logits = head(to_torch(hidden, loaded.device))
    return to_numpy(logits)


def compare_run(loaded, text: str, new_tokens: int = 8, speech=None) -> FamilyRun:
    """One encoder pass over ``text``, timed (an encoder generates nothing)."""
    total, active = dense_parameters(loaded)
    start = time.perf_counter()
    trace = trace_text(loaded, text)
    seconds = time.perf_counter() - start
    output = f"{len(trace.tokens)} vectors of {trace.hidden_states.shape[2]} numbers"  # [T, D]
    computes = "one contextual vector per token (all tokens at once)"
    return FamilyRun(
        loaded.family, loaded.model_id, trace.tokens, computes, output, seconds, (), total, active, trace.notes
    )


class EncoderAdapter:
    """The encoder-only family's answers (explorer.adapters.family.FamilyAdapter)."""

    key = "encoder"
    causal = False
    answer = family.MASKED
    keep_end = True
    head_modes = family.HEAD_MODES_BIDIRECTIONAL
    experiments = (family.SINK, family.HEADS, family.PATCHING, family.ATTRIBUTION, family.CARDS)

    def trace(self, loaded, ids: np.ndarray, notes: tuple[str, ...] = (), with_logits: bool = True) -> ForwardTrace:
        return trace_ids(loaded, ids, notes, with_logits)

    def lens(self, loaded, hidden: np.ndarray) -> np.ndarray | None:
        return mlm_lens(loaded, hidden)

    def routed(self, loaded) -> bool:
        return False

    def encoder_decoder(self, loaded) -> bool:
        return False

    def card_steps(self, loaded) -> tuple[str, ...]:
        return (family.SENTENCES, family.MASKED_SENTENCES, family.WORDS, family.SENTENCE_PAIRS)

    def compare_run(self, loaded, text: str, new_tokens: int = 8, speech=None) -> FamilyRun:
        return compare_run(loaded, text, new_tokens, speech)


ADAPTER = EncoderAdapter()
