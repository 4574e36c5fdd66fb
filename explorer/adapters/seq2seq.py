"""Encoder-decoder adapter (T5, BART, Marian, Whisper; Switch Transformers reuses it).

The encoder runs once (``encode``) and its output is kept in an ``EncoderPass``; every
decoder step then cross-attends to that same output, which is how these models generate.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
import torch
from transformers.modeling_outputs import MoEModelOutput

from explorer.adapters import family
from explorer.adapters.common import (
    MAX_TRACE_TOKENS,
    Stopwatch,
    as_batch,
    display_tokens,
    exclusive,
    fused_attention,
    stack_batch0,
    to_numpy,
    to_torch,
    tokenize,
)
from explorer.adapters.runs import FamilyRun, dense_parameters
from explorer.decoding import SamplingSettings, choose_token, softmax
from explorer.text import InputError
from explorer.trace import DecodingStep, EncoderPass, ForwardTrace, Seq2SeqTrace

FRAME_SECONDS = 0.02  # one Whisper encoder position covers 20 ms of audio


def audio_features(loaded, samples: np.ndarray) -> np.ndarray:
    """Log-mel features [mels, frames] of 16 kHz samples, padded to Whisper's 30 s window."""
    extractor = loaded.processor.feature_extractor
    return extractor(samples, sampling_rate=extractor.sampling_rate, return_tensors="np").input_features[0]


def encode_ids(loaded, ids: np.ndarray, notes: tuple[str, ...] = (), router_extractor=None) -> EncoderPass:
    return _encode(
        loaded,
        {"input_ids": as_batch(ids, loaded.device)},
        display_tokens(loaded.tokenizer, ids),
        np.asarray(ids, dtype=np.int64),
        notes,
        "text",
        router_extractor,
    )


def encode_text(loaded, text: str, router_extractor=None) -> EncoderPass:
    ids, notes = tokenize(loaded, text)
    return encode_ids(loaded, ids, notes, router_extractor)


def encode_features(loaded, features: np.ndarray, audio_seconds: float | None = None) -> EncoderPass:
    """Whisper: ``features`` [mels, frames]; one encoder position per 2 mel frames (20 ms)."""
    positions = features.shape[1] // 2
    tokens = tuple(f"{i * FRAME_SECONDS:.2f}s" for i in range(positions))
    batch = torch.as_tensor(features, dtype=torch.float32, device=loaded.device)[None]
    extras = {"audio_seconds": audio_seconds} if audio_seconds is not None else {}
    return _encode(
        loaded, {"input_features": batch}, tokens, np.full(positions, -1, dtype=np.int64), (), "audio", None, extras
    )


def encode_audio(loaded, samples: np.ndarray) -> EncoderPass:
    return encode_features(loaded, audio_features(loaded, samples), audio_seconds=len(samples) / 16_000)


def _encode(loaded, inputs, tokens, token_ids, notes, kind, router_extractor, extras=None) -> EncoderPass:
    # A Whisper encoder attends 1500 x 1500 frames per head: too large to keep, so
    # self-attention maps are kept only for inputs a student can read.
    keep_attentions = len(tokens) <= MAX_TRACE_TOKENS
    flags = dict(output_hidden_states=True, output_attentions=keep_attentions, return_dict=True)
    if router_extractor is not None:
        flags["output_router_logits"] = True
    with exclusive(loaded), Stopwatch() as clock:
        attention = contextlib.nullcontext() if keep_attentions else fused_attention(loaded.model)
        with attention:
            out = loaded.model.get_encoder()(**inputs, **flags)
    trace = ForwardTrace(
        tokens=tokens,
        token_ids=token_ids,
        hidden_states=stack_batch0(out.hidden_states),  # [L_enc+1, S, D]
        attentions=stack_batch0(out.attentions) if keep_attentions else None,  # [L_enc, H, S, S]
        logits=None,
        causal=False,
        router=router_extractor(loaded, out, len(tokens), "encoder") if router_extractor else None,
        notes=notes,
    )
    return EncoderPass(
        trace=trace,
        last_hidden=to_numpy(out.last_hidden_state[0]),
        seconds=clock.seconds,
        source_kind=kind,
        extras=extras or {},
    )


def _decoder_forward(loaded, encoder: EncoderPass, decoder_ids: np.ndarray, router: bool = False):
    # MoEModelOutput: a BaseModelOutput that also has the (empty) router_logits Switch reads
    encoder_outputs = MoEModelOutput(last_hidden_state=to_torch(encoder.last_hidden, loaded.device)[None])
    # use_cache=False: each call reads the whole decoder prefix, so a cache (the source's keys and
    # values for every layer: 18 MB for Whisper's 1500 frames) would only be built and dropped
    flags = dict(output_hidden_states=True, output_attentions=True, return_dict=True, use_cache=False)
    if router:
        flags["output_router_logits"] = True
    return loaded.model(
        encoder_outputs=encoder_outputs, decoder_input_ids=as_batch(decoder_ids, loaded.device), **flags
    )


def trace_ids(loaded, ids: np.ndarray, notes: tuple[str, ...] = (), router_extractor=None) -> Seq2SeqTrace:
    """The encoder reads ``ids`` [S] once, the decoder its start ids against it (a prompt alone, as
    the experiments read one)."""
    encoded = encode_ids(loaded, ids, notes, router_extractor=router_extractor)
    return trace(loaded, encoded, start_ids(loaded), router_extractor=router_extractor)


def trace(loaded, encoder: EncoderPass, decoder_ids: np.ndarray, router_extractor=None) -> Seq2SeqTrace:
    """The decoder's forward over ``decoder_ids`` [T] against a finished encoder pass."""
    decoder_ids = np.asarray(decoder_ids, dtype=np.int64)
    with exclusive(loaded):
        out = _decoder_forward(loaded, encoder, decoder_ids, router=router_extractor is not None)
    decoder = ForwardTrace(
        tokens=display_tokens(loaded.tokenizer, decoder_ids),
        token_ids=decoder_ids,
        hidden_states=stack_batch0(out.decoder_hidden_states),  # [L_dec+1, T, D]
        attentions=stack_batch0(out.decoder_attentions),  # [L_dec, H, T, T]
        logits=to_numpy(out.logits[0]),  # [T, V]
        causal=True,
        router=router_extractor(loaded, out, len(decoder_ids), "decoder") if router_extractor else None,
    )
    return Seq2SeqTrace(encoder=encoder.trace, decoder=decoder, cross_attentions=stack_batch0(out.cross_attentions))


def step(loaded, encoder: EncoderPass, decoder_ids: np.ndarray) -> DecodingStep:
    """Next-token distribution of the decoder after ``decoder_ids`` [T], given the source."""
    decoder_ids = np.asarray(decoder_ids, dtype=np.int64)
    limit = getattr(loaded.model.config, "max_target_positions", None) or getattr(
        loaded.model.config, "max_position_embeddings", None
    )
    if limit and len(decoder_ids) >= limit:
        raise InputError(f"The output has reached the decoder's maximum length ({limit:,} tokens).")
    with exclusive(loaded), Stopwatch() as clock:
        out = _decoder_forward(loaded, encoder, decoder_ids)
    logits = to_numpy(out.logits[0, -1])  # [V]
    return DecodingStep(
        context_ids=decoder_ids,
        logits=logits,
        probs=softmax(logits),
        last_attention=stack_batch0(out.decoder_attentions)[
            :, :, -1, :
        ].copy(),  # [L, H, T], not a view of [L, H, T, T]
        last_hidden=stack_batch0(out.decoder_hidden_states)[:, -1, :].copy(),  # [L+1, D]
        cross_attention=stack_batch0(out.cross_attentions)[:, :, -1, :].copy(),  # [L, H, S]
        seconds=clock.seconds,
    )


def start_ids(loaded) -> np.ndarray:
    """The decoder's first tokens: its start token, and for Whisper the task tokens."""
    config, generation = loaded.model.config, loaded.model.generation_config
    start = generation.decoder_start_token_id
    if start is None:
        start = config.decoder_start_token_id
    ids = [int(start)]
    if loaded.arch.audio and loaded.tokenizer is not None:
        tok = loaded.tokenizer
        english, transcribe = tok.convert_tokens_to_ids("<|en|>"), tok.convert_tokens_to_ids("<|transcribe|>")
        multilingual = config.vocab_size >= 51865  # the .en models have 51864 tokens
        if multilingual and english != tok.unk_token_id and transcribe != tok.unk_token_id:
            ids += [english, transcribe]
        ids.append(tok.convert_tokens_to_ids("<|notimestamps|>"))
    return np.asarray(ids, dtype=np.int64)


def suppressed_ids(loaded, first_step: bool) -> tuple[int, ...]:
    """Ids the decoder never writes, as a decoding filter: what the generation config forbids
    (suppress_tokens, begin_suppress_tokens on the first step, single-token bad_words_ids, which
    Marian's hub configs use for padding) and the padding token itself unless it doubles as the
    end of the sequence (Whisper's does)."""
    generation = loaded.model.generation_config
    ids = list(getattr(generation, "suppress_tokens", None) or [])
    if first_step:
        ids += list(getattr(generation, "begin_suppress_tokens", None) or [])
    ids += [words[0] for words in (getattr(generation, "bad_words_ids", None) or []) if len(words) == 1]
    pad = loaded.model.config.pad_token_id
    if pad is not None and int(pad) not in eos_ids(loaded):
        ids.append(pad)
    return tuple(sorted(set(int(i) for i in ids)))


def eos_ids(loaded) -> set[int]:
    ids = loaded.model.generation_config.eos_token_id
    if ids is None:
        ids = loaded.model.config.eos_token_id
    return set(ids) if isinstance(ids, (list, tuple)) else {int(ids)}


def greedy_decode(loaded, encoder: EncoderPass, max_new_tokens: int = 64) -> np.ndarray:
    """Greedy decoding with the model's suppression rules: the output ids after the start ids."""
    ids = list(start_ids(loaded))
    first = len(ids)
    stop = eos_ids(loaded)
    for n in range(max_new_tokens):
        current = step(loaded, encoder, np.asarray(ids))
        settings = SamplingSettings(suppressed_ids=suppressed_ids(loaded, first_step=(n == 0)))
        token = choose_token(current.logits, settings, n)
        ids.append(token)
        if token in stop:
            break
    return np.asarray(ids[first:], dtype=np.int64)


def compare_run(loaded, text: str, new_tokens: int = 8, speech=None) -> FamilyRun:
    """One timed encoder pass (over ``speech`` for a speech model), then up to ``new_tokens``
    greedy decoder steps, each timed."""
    total, active = dense_parameters(loaded)
    start = time.perf_counter()
    if loaded.arch.audio:
        encoded = encode_audio(loaded, speech.samples)
        tokens = tuple(text.split())
    else:
        encoded = encode_text(loaded, text)
        tokens = encoded.trace.tokens
    enc_seconds = time.perf_counter() - start
    ids, steps = list(start_ids(loaded)), []
    for _ in range(new_tokens):
        current = step(loaded, encoded, np.asarray(ids))
        steps.append(current.seconds)
        ids.append(int(np.argmax(current.logits)))
        if ids[-1] in eos_ids(loaded):
            break
    output = loaded.tokenizer.decode(ids[len(start_ids(loaded)) :], skip_special_tokens=True)
    return FamilyRun(
        loaded.family,
        loaded.model_id,
        tokens,
        "reads the whole input once, then writes new text token by token",
        output,
        enc_seconds,
        tuple(steps),
        total,
        active,
        () if loaded.arch.audio else encoded.trace.notes,
    )


def decoder_lens(loaded, hidden: np.ndarray) -> np.ndarray:
    """Next-token logits [L_dec+1, V] read from every depth of one decoder position (hidden
    [L_dec+1, D]): the decoder's final norm (where it has one) and the output head applied to
    each intermediate state, as decoder.logit_lens does; the last state already went through the
    norm, so its row equals the real logits (T5's tied head scales by d_model^-0.5, Marian and
    BART add their final_logits_bias, as their forwards do)."""
    model = loaded.model
    decoder = model.get_decoder()
    norm = next(
        (getattr(decoder, n) for n in ("layer_norm", "final_layer_norm") if getattr(decoder, n, None) is not None), None
    )
    h = to_torch(hidden, loaded.device)
    with exclusive(loaded):
        states = torch.cat([norm(h[:-1]) if norm is not None else h[:-1], h[-1:]])
        if model.config.model_type == "t5" and model.config.tie_word_embeddings:
            states = states * model.config.d_model**-0.5
        logits = model.get_output_embeddings()(states)
        bias = getattr(model, "final_logits_bias", None)
        if bias is not None:
            logits = logits + bias[0]
    return to_numpy(logits)


class Seq2SeqAdapter:
    """The encoder-decoder family's answers (explorer.adapters.family.FamilyAdapter)."""

    key = "seq2seq"
    causal = True  # the decoder's: each output token reads the source and the output before it
    answer = family.OUTPUT
    keep_end = False
    head_modes = family.HEAD_MODES_CAUSAL
    experiments = (family.CROSS_ATTENTION, family.ATTRIBUTION, family.CARDS)

    def trace(self, loaded, ids: np.ndarray, notes: tuple[str, ...] = (), with_logits: bool = True) -> Seq2SeqTrace:
        return trace_ids(loaded, ids, notes)

    def lens(self, loaded, hidden: np.ndarray) -> np.ndarray | None:
        return decoder_lens(loaded, hidden)

    def routed(self, loaded) -> bool:
        return False

    def encoder_decoder(self, loaded) -> bool:
        return True

    def card_steps(self, loaded) -> tuple[str, ...]:
        if loaded.arch.audio:
            raise ValueError("the encoder-decoder's card (prediction depth) reads text: pick a text encoder-decoder")
        return (family.TRANSLATIONS,)

    def compare_run(self, loaded, text: str, new_tokens: int = 8, speech=None) -> FamilyRun:
        return compare_run(loaded, text, new_tokens, speech)


ADAPTER = Seq2SeqAdapter()
