"""The same text through one model of each family, with measured costs."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from explorer.adapters import decoder, encoder, moe, seq2seq
from explorer.adapters.common import display_tokens, tokenize


@dataclass(frozen=True)
class FamilyRun:
    family: str
    model_id: str
    tokens: tuple[str, ...]  # what the model reads (for Whisper: the words it was told to hear)
    computes: str  # one sentence: what the output is
    output: str
    encoder_seconds: float  # one pass over the whole input (0 for decoder-only)
    step_seconds: tuple[float, ...]  # each autoregressive step (empty for encoder-only)
    total_parameters: int
    active_parameters: int


def _params(loaded) -> tuple[int, int]:
    from explorer.models.accounting import account

    total = sum(p.numel() for p in loaded.model.parameters())
    if loaded.family != "moe":
        return total, total
    acc = account(loaded.model.config)
    return total, total - (acc.total - acc.active)


def run_family(loaded, text: str, new_tokens: int = 8, speech=None) -> FamilyRun:
    """One measured run: an encoder pass, or decoding ``new_tokens`` greedy steps."""
    total, active = _params(loaded)
    family = loaded.family
    if family == "encoder":
        start = time.perf_counter()
        trace = encoder.trace_text(loaded, text)
        seconds = time.perf_counter() - start
        return FamilyRun(family, loaded.model_id, trace.tokens, "one contextual vector per token (all tokens at once)",
                         f"{len(trace.tokens)} vectors of {trace.hidden_states.shape[2]} numbers", seconds, (), total, active)
    if family == "seq2seq":
        start = time.perf_counter()
        if loaded.arch.audio:
            encoded = seq2seq.encode_audio(loaded, speech.samples)
            tokens = tuple(text.split())
        else:
            encoded = seq2seq.encode_text(loaded, text)
            tokens = encoded.trace.tokens
        enc_seconds = time.perf_counter() - start
        ids, steps = list(seq2seq.start_ids(loaded)), []
        for _ in range(new_tokens):
            step = seq2seq.step(loaded, encoded, np.asarray(ids))
            steps.append(step.seconds)
            ids.append(int(np.argmax(step.logits)))
            if ids[-1] in seq2seq.eos_ids(loaded):
                break
        output = loaded.tokenizer.decode(ids[len(seq2seq.start_ids(loaded)):], skip_special_tokens=True)
        return FamilyRun(family, loaded.model_id, tokens, "reads the whole input once, then writes new text token by token",
                         output, enc_seconds, tuple(steps), total, active)
    # decoder-only and MoE decoders: generate; MoE also reports its routes
    ids, _notes = tokenize(loaded, text)
    if family == "moe" and getattr(loaded.model.config, "is_encoder_decoder", False):
        start = time.perf_counter()
        moe.trace_ids(loaded, ids)
        return FamilyRun(family, loaded.model_id, display_tokens(loaded.tokenizer, ids), "routes every token to its experts",
                         "routes", time.perf_counter() - start, (), total, active)
    context, steps = list(ids), []
    for _ in range(min(new_tokens, decoder.context_limit(loaded) - len(context))):
        step = decoder.step(loaded, np.asarray(context))
        steps.append(step.seconds)
        context.append(int(np.argmax(step.logits)))
    computes = ("predicts the next token from the left context only, one step at a time" if family == "decoder" else
                "like a decoder, but each token's feed-forward work goes to 2 of the router's experts")
    return FamilyRun(family, loaded.model_id, display_tokens(loaded.tokenizer, ids), computes,
                     loaded.tokenizer.decode(context[len(ids):]), 0.0, tuple(steps), total, active)
