"""Decoder-only adapter (GPT-2, Llama, Qwen2, GPT-NeoX; MoE decoders reuse it).

Decoding is exposed one step at a time: ``step(loaded, context_ids)`` returns the full
next-token distribution for a context. Going back is dropping the last id; forcing a token
is appending it. A step feeds the model only the tokens it has not read yet: the keys and
values (KV cache) of the longest recent context sharing a prefix are reused, cropped to
that prefix, as ``model.generate`` does. Its logits, newest attention row and hidden
states equal a full re-read of the context (tested to 1e-4).
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass, replace

import numpy as np
import torch

from explorer.adapters import family
from explorer.adapters.common import (
    Stopwatch,
    as_batch,
    display_tokens,
    exclusive,
    max_positions,
    stack_batch0,
    to_numpy,
    to_torch,
    tokenize,
)
from explorer.adapters.runs import FamilyRun, dense_parameters
from explorer.decoding import softmax
from explorer.text import InputError
from explorer.trace import DecodingStep, ForwardTrace

log = logging.getLogger(__name__)


def trace_ids(loaded, ids: np.ndarray, notes: tuple[str, ...] = (), router_extractor=None) -> ForwardTrace:
    """One causal forward over ``ids`` [T]. ``router_extractor`` (see adapters.moe) adds MoE routes."""
    input_ids = as_batch(ids, loaded.device)
    flags = dict(output_hidden_states=True, output_attentions=True, return_dict=True)
    if router_extractor is not None:
        flags["output_router_logits"] = True
    with exclusive(loaded):
        out = loaded.model(input_ids=input_ids, **flags)
    return ForwardTrace(
        tokens=display_tokens(loaded.tokenizer, ids),
        token_ids=np.asarray(ids, dtype=np.int64),
        hidden_states=stack_batch0(out.hidden_states),  # [L+1, T, D]
        attentions=stack_batch0(out.attentions),  # [L, H, T, T]
        logits=to_numpy(out.logits[0]),  # [T, V]
        causal=True,
        router=router_extractor(loaded, out, len(ids), "model") if router_extractor else None,
        notes=notes,
    )


def trace_text(loaded, text: str) -> ForwardTrace:
    ids, notes = tokenize(loaded, text)
    return trace_ids(loaded, ids, notes)


def prompt_ids(loaded, text: str, use_chat_template: bool = False) -> tuple[np.ndarray, tuple[str, ...]]:
    """Token ids of the prompt; with ``use_chat_template`` the text becomes a user turn."""
    tokenizer = loaded.tokenizer
    if use_chat_template and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
        return tokenize(loaded, text, add_special_tokens=False)
    return tokenize(loaded, text)


@dataclass
class _CachedPrefix:
    ids: tuple[int, ...]  # the tokens whose keys and values ``cache`` holds
    cache: object  # transformers Cache, mutated in place by the next forward that uses it


# Per model: the KV caches of the most recent contexts, newest first. A few entries let
# sessions stepping different prompts on one shared model take turns without re-reading.
_PREFIXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
MAX_CACHED_PREFIXES = 8


def _common_prefix(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _take_prefix(entries: list[_CachedPrefix], context: tuple[int, ...]) -> tuple[object | None, int]:
    """The cache sharing the longest prefix with ``context[:-1]``, taken out of ``entries``
    and cropped to it, and its length (the last token is always fed, so the step has its
    own outputs)."""
    best, length = None, 0
    for entry in entries:
        n = min(_common_prefix(entry.ids, context), len(context) - 1)
        if n > length:
            best, length = entry, n
    if best is None:
        return None, 0
    entries.remove(best)
    surplus = len(best.ids) - length
    try:
        if surplus:
            best.cache.crop(-surplus)  # transformers 5: a negative count of tokens to drop
    except (RuntimeError, ValueError):  # e.g. a sliding-window layer that no longer holds them
        log.debug("cached prefix could not be cropped; recomputing", exc_info=True)
        return None, 0
    if best.cache.get_seq_length() != length:
        return None, 0
    return best.cache, length


def forget_cached_prefixes(loaded) -> None:
    with exclusive(loaded):
        _PREFIXES.pop(loaded.model, None)


def context_limit(loaded) -> int:
    """Most tokens the model reads at once (prompt + generated)."""
    return max_positions(loaded.model, default=10**9)


def step(loaded, context_ids: np.ndarray) -> DecodingStep:
    """The model's next-token distribution after ``context_ids`` [T]."""
    context_ids = np.asarray(context_ids, dtype=np.int64)
    if len(context_ids) >= context_limit(loaded):
        raise InputError(
            f"The text has reached this model's maximum length ({context_limit(loaded):,} tokens): "
            "shorten the prompt or go back a few tokens."
        )
    context = tuple(int(i) for i in context_ids)
    with exclusive(loaded), Stopwatch() as clock:
        entries = _PREFIXES.setdefault(loaded.model, [])
        cache, known = _take_prefix(entries, context)
        # logits_to_keep=1: the vocabulary head on the last position only (a step reads no other)
        out = loaded.model(
            input_ids=as_batch(context_ids[known:], loaded.device),
            cache=cache,
            logits_to_keep=1,
            use_cache=True,
            output_hidden_states=True,
            output_attentions=True,
            return_dict=True,
        )
        entries.insert(0, _CachedPrefix(context, out.cache))
        del entries[MAX_CACHED_PREFIXES:]
    # out.attentions: per layer [1, H, T - known, T]; out.hidden_states: per depth [1, T - known, D]
    logits = to_numpy(out.logits[0, -1])  # [V]
    return DecodingStep(
        context_ids=context_ids,
        logits=logits,
        probs=softmax(logits),
        last_attention=stack_batch0(out.attentions)[:, :, -1, :].copy(),  # [L, H, T], not a view of [L, H, q, T]
        last_hidden=stack_batch0(out.hidden_states)[:, -1, :].copy(),  # [L+1, D]
        seconds=clock.seconds,
    )


def eos_ids(loaded) -> set[int]:
    ids = loaded.model.generation_config.eos_token_id
    if ids is None:
        ids = loaded.tokenizer.eos_token_id if loaded.tokenizer is not None else None
    if ids is None:
        return set()
    return set(ids) if isinstance(ids, (list, tuple)) else {int(ids)}


_FINAL_NORMS = ("norm", "ln_f", "final_layer_norm")


def final_norm(model):
    base = model.base_model
    for name in _FINAL_NORMS:
        module = getattr(base, name, None)
        if module is not None:
            return module
    raise ValueError(f"no final norm found on {type(base).__name__}")


def logit_lens(loaded, hidden: np.ndarray) -> np.ndarray:
    """Next-token logits [L+1, V] read from every depth of one position (hidden [L+1, D]).

    The model's final norm and output head are applied to each intermediate hidden state:
    an approximation of what the model 'would say' if it stopped there. The library's last
    hidden state already went through the final norm, so it gets the head alone and its
    row equals the real logits.
    """
    h = to_torch(hidden, loaded.device)
    with exclusive(loaded):
        head, norm = loaded.model.get_output_embeddings(), final_norm(loaded.model)
        logits = torch.cat([head(norm(h[:-1])), head(h[-1:])])
    return to_numpy(logits)


def lens_top1(loaded, hidden: np.ndarray, final: bool = False, chunk: int = 256) -> np.ndarray:
    """[N] the logit lens's top-1 token of N hidden states [N, D] taken at one depth: the final
    norm and the output head, then the argmax over the vocabulary (``final``: the last depth,
    which the library already normalised, so the head alone: the model's own prediction). Rows go
    through the head ``chunk`` at a time, so at most [chunk, V] logits exist at once."""
    out = []
    with exclusive(loaded):
        head, norm = loaded.model.get_output_embeddings(), final_norm(loaded.model)
        for start in range(0, len(hidden), chunk):
            h = to_torch(hidden[start : start + chunk], loaded.device)
            out.append(head(h if final else norm(h)).argmax(dim=-1).cpu().numpy().astype(np.int64))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def greedy_run(loaded, ids: np.ndarray, new_tokens: int, computes: str, parameters: tuple[int, int]) -> FamilyRun:
    """Up to ``new_tokens`` greedy steps after ``ids`` [T], each timed."""
    context, steps = list(ids), []
    for _ in range(min(new_tokens, context_limit(loaded) - len(context))):
        current = step(loaded, np.asarray(context))
        steps.append(current.seconds)
        context.append(int(np.argmax(current.logits)))
    return FamilyRun(
        loaded.family,
        loaded.model_id,
        display_tokens(loaded.tokenizer, ids),
        computes,
        loaded.tokenizer.decode(context[len(ids) :]),
        0.0,
        tuple(steps),
        *parameters,
    )


def compare_run(loaded, text: str, new_tokens: int = 8, speech=None) -> FamilyRun:
    parameters = dense_parameters(loaded)
    ids, notes = tokenize(loaded, text)
    run = greedy_run(
        loaded, ids, new_tokens, "predicts the next token from the left context only, one step at a time", parameters
    )
    return replace(run, notes=notes)


class DecoderAdapter:
    """The decoder-only family's answers (explorer.adapters.family.FamilyAdapter)."""

    key = "decoder"
    causal = True
    answer = family.NEXT
    keep_end = False
    head_modes = family.HEAD_MODES_CAUSAL
    experiments = (family.SINK, family.HEADS, family.PATCHING, family.ATTRIBUTION, family.CARDS)

    def trace(self, loaded, ids: np.ndarray, notes: tuple[str, ...] = (), with_logits: bool = True) -> ForwardTrace:
        return trace_ids(loaded, ids, notes)  # the logits are the model's own output: always kept

    def lens(self, loaded, hidden: np.ndarray) -> np.ndarray | None:
        return logit_lens(loaded, hidden)

    def routed(self, loaded) -> bool:
        return False

    def encoder_decoder(self, loaded) -> bool:
        return False

    def card_steps(self, loaded) -> tuple[str, ...]:
        return (family.SENTENCES, family.WORDS, family.RANDOM_TOKENS)

    def compare_run(self, loaded, text: str, new_tokens: int = 8, speech=None) -> FamilyRun:
        return compare_run(loaded, text, new_tokens, speech)


ADAPTER = DecoderAdapter()
