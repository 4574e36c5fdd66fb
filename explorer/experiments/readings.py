"""The named prompt sets as the loaded model reads them: every forward the replication cards need.

A card step (explorer.experiments.measure) reads its prompt set here once, one traced forward per
prompt (in padded batches, ``adapters.batched``, equal to the family adapters' own traces), and
where it measures prediction depth the lens top-1 of those same hidden states (the model's own head
applied to them, not another forward of the prompts); every card is then a statistic of what these
functions return (explorer.experiments.findings), with no model call of its own.
"""

from __future__ import annotations

import numpy as np

from explorer.adapters import batched, decoder, encoder, family, interventions, seq2seq
from explorer.adapters.common import tokenize
from explorer.adapters.lookup import adapter_for
from explorer.experiments.prompts import (
    MASKED_PAIRS,
    PAIRS,
    RANDOM_PERIOD,
    RANDOM_SEEDS,
    SENTENCE_PAIRS,
    SENTENCES,
    WORD_CONTEXTS,
    Pair,
    repeated_random_tokens,
)


def read(loaded, prompts: list[np.ndarray], with_logits: bool = False) -> list:
    """One ForwardTrace per prompt (ids [T_i] each): batched forwards for encoder-only and
    decoder-only models, one forward per prompt through the family adapter otherwise (an
    encoder-decoder: Switch, the translator)."""
    adapter = adapter_for(loaded)
    if adapter.encoder_decoder(loaded):
        return [adapter.trace(loaded, ids, with_logits=False) for ids in prompts]
    return batched.trace_batch(loaded, [np.asarray(p) for p in prompts], with_logits=with_logits)


def sentence_ids(loaded, texts=SENTENCES) -> list[np.ndarray]:
    return [tokenize(loaded, text)[0] for text in texts]


def sentence_traces(loaded, texts=SENTENCES):
    return read(loaded, sentence_ids(loaded, texts))


def random_token_ids(loaded, seed: int, period: int = RANDOM_PERIOD) -> tuple[np.ndarray, int]:
    """Repeated random tokens from the upper 90% of the vocabulary (away from special and
    byte tokens), after the tokenizer's BOS when it has one."""
    vocab = int(loaded.model.config.vocab_size)
    bos = getattr(loaded.tokenizer, "bos_token_id", None) if loaded.tokenizer is not None else None
    return repeated_random_tokens(
        vocab, period=period, seed=seed, low=vocab // 10, prefix=(bos,) if bos is not None else ()
    )


def random_token_prompts(loaded, seeds=RANDOM_SEEDS, period: int = RANDOM_PERIOD) -> list[tuple[np.ndarray, int]]:
    return [random_token_ids(loaded, seed, period) for seed in seeds]


def sentence_pair_ids(loaded, pairs=SENTENCE_PAIRS) -> list[np.ndarray]:
    return [np.asarray(loaded.tokenizer(a, b)["input_ids"], dtype=np.int64) for a, b in pairs]


def word_context_prompts(loaded) -> list[tuple[np.ndarray, int, int]]:
    """(ids [T], position of the word, which word) for every context where the word is one token."""
    out = []
    for group, (word, contexts) in enumerate(WORD_CONTEXTS.items()):
        candidates = set()
        for form in (word, " " + word):
            ids = loaded.tokenizer(form, add_special_tokens=False)["input_ids"]
            if len(ids) == 1:
                candidates.add(ids[0])
        for text in contexts:
            ids = tokenize(loaded, text)[0]
            where = [i for i, token in enumerate(ids) if int(token) in candidates]
            if where:
                out.append((ids, where[0], group))
    return out


# --- prediction depth: the lens top-1 of hidden states already traced (encoder-decoder: of its own output)

MASK_EVERY = 5  # an encoder reads each everyday sentence once with every fifth ordinary token masked


def masked_sentence_prompts(loaded, texts=SENTENCES) -> list[tuple[np.ndarray, np.ndarray]]:
    """(ids [T] with every MASK_EVERY-th ordinary token masked, the masked positions [P])."""
    special, out = set(loaded.tokenizer.all_special_ids), []
    for text in texts:
        ids = tokenize(loaded, text)[0].copy()
        chosen = np.array([i for i, t in enumerate(ids) if int(t) not in special][::MASK_EVERY])
        ids[chosen] = loaded.tokenizer.mask_token_id
        out.append((ids, chosen))
    return out


def lens_from_top(loaded, traces) -> list[np.ndarray]:
    """[L+1, T] lens top-1 per prompt, computed from the output down and only as far as each
    position still agrees with the output (-1 below: a settled depth needs no more), so the head
    runs over about (1 + L x (1 - depth)) rows per position instead of L + 1."""
    hidden = np.concatenate([t.hidden_states for t in traces], axis=1)  # [L+1, N, D]
    layers = hidden.shape[0] - 1
    top = np.full(hidden.shape[:2], -1, dtype=np.int64)
    top[layers] = decoder.lens_top1(loaded, hidden[layers], final=True)
    active = np.arange(hidden.shape[1])
    for depth in range(layers - 1, -1, -1):
        if not active.size:
            break
        top[depth, active] = decoder.lens_top1(loaded, hidden[depth, active])
        active = active[top[depth, active] == top[layers, active]]
    return np.split(top, np.cumsum([len(t.token_ids) for t in traces])[:-1], axis=1)


def masked_lens(loaded, traces, chosen: list[np.ndarray]) -> list[np.ndarray]:
    """Encoder: [L+1, P] the MLM head's top-1 at every depth of each masked position."""
    return [encoder.mlm_lens(loaded, t.hidden_states[:, c]).argmax(-1) for t, c in zip(traces, chosen)]


def translation_lens(loaded, texts=SENTENCES) -> list[np.ndarray]:
    """Encoder-decoder: [L_dec+1, T] the decoder's lens top-1 at every position of its own greedy output."""
    out = []
    for text in texts:
        encoded = seq2seq.encode_text(loaded, text)
        ids = np.concatenate([seq2seq.start_ids(loaded), seq2seq.greedy_decode(loaded, encoded, max_new_tokens=48)])
        trace = seq2seq.trace(loaded, encoded, ids)
        out.append(seq2seq.decoder_lens(loaded, trace.decoder.hidden_states).argmax(-1))
    return out


# --- activation patching's prompt pairs


def patching_pairs(loaded) -> tuple[Pair, ...]:
    """The prompt pairs of the family's kind of answer (a masked word, or the next token)."""
    return MASKED_PAIRS if adapter_for(loaded).answer == family.MASKED else PAIRS


def patchable_pairs(loaded) -> list[Pair]:
    """The family's pairs that this model's tokenizer can patch (equal lengths, one-token answers)."""
    return interventions.patchable(loaded, patching_pairs(loaded))
