"""Answer keys on the encoder-only page: masked words, bidirectional attention, context-dependent vectors.

Every key reads the page's own computations through the adapter: ``encoder.trace_text`` without the
vocabulary head, then the masked-language head at the masked position (``encoder.mlm_lens``, whose last
depth is the model's output), as the page's masked-token bars do.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from explorer.adapters import encoder
from explorer.adapters.common import display_token
from explorer.decoding import softmax
from explorer.lessons.core import NO, YES, Key, LabRefused, clamp, distinct, percent, quoted, setting, shuffled

TEXT = "encoder_text"


def _text(view: Mapping) -> str:
    text = str(setting(view, TEXT, "")).strip()
    if not text:
        raise LabRefused("Type a text first: this question reads the text on the encoder page.")
    return text


def _mask(loaded) -> str:
    return getattr(loaded.tokenizer, "mask_token", None) or "[MASK]"


def masked_prediction(loaded, text: str):
    """(trace, masked position, probabilities [V] there): the page's masked-token bars for the first
    [MASK] of ``text``."""
    if not encoder.can_fill_masks(loaded):
        raise LabRefused(
            f"{loaded.model_id} has no trained masked-language head: pick a model that fills in {_mask(loaded)}."
        )
    trace = encoder.trace_text(loaded, text, with_logits=False)
    positions = np.flatnonzero(trace.token_ids == loaded.tokenizer.mask_token_id)
    if positions.size == 0:
        raise LabRefused(f"Type {_mask(loaded)} in the text where the model should guess a word.")
    position = int(positions[0])
    probs = softmax(encoder.mlm_lens(loaded, trace.hidden_states[:, position])[-1])  # [V]
    return trace, position, probs


def _ranked(loaded, probs: np.ndarray, count: int) -> list[tuple[str, float]]:
    """The ``count`` most likely words, as the page labels them, with their probabilities."""
    order = [int(i) for i in np.argsort(-probs)[: 4 * count]]
    labels = [display_token(loaded.tokenizer, i) for i in order]
    words = distinct(labels, count)
    return [(w, float(probs[order[labels.index(w)]])) for w in words]


def _listing(ranked: list[tuple[str, float]]) -> str:
    return ", ".join(f"'{w}' {100 * p:.1f}%" for w, p in ranked)


def top_word(loaded, view: Mapping, params: Mapping) -> Key:
    """Which word wins at [MASK]: the four most likely words as choices."""
    _trace, position, probs = masked_prediction(loaded, _text(view))
    ranked = _ranked(loaded, probs, 4)
    explanation = (
        f"The masked-language head reads the vector of position {position} after the last block and ranks every "
        f"word of its vocabulary: {_listing(ranked)}. That vector was built from the words on both sides of the gap, "
        "since every encoder block lets each token attend left and right."
    )
    return Key(
        ranked[0][0],
        explanation,
        {"ranked": [[w, round(p, 4)] for w, p in ranked], "position": position},
        shuffled([w for w, _ in ranked], "top-word"),
        {"text": _text(view), "mask": _mask(loaded)},
    )


def top_probability(loaded, view: Mapping, params: Mapping) -> Key:
    """How sure the model is of its top word, in percent."""
    _trace, _position, probs = masked_prediction(loaded, _text(view))
    ranked = _ranked(loaded, probs, 5)
    word, p = ranked[0]
    explanation = (
        f"'{word}' gets {100 * p:.1f}% of the probability; the next ones: {_listing(ranked[1:])}. The rest, "
        f"{100 * (1 - sum(q for _, q in ranked)):.0f}%, is spread over the other {len(probs) - 5:,} words of the "
        "vocabulary: even a right answer rarely takes most of the mass."
    )
    return Key(percent(p), explanation, {"word": word, "probability": round(p, 4)}, fields={"word": word})


def attention_right(loaded, view: Mapping, params: Mapping) -> Key:
    """Share of the [MASK] token's attention (one block, mean over heads) that goes to tokens on its right."""
    trace, position, _probs = masked_prediction(loaded, _text(view))
    block = clamp(setting(view, "encoder_attn_layer", 1), 1, trace.num_layers)
    row = trace.attentions[block - 1, :, position, :].mean(axis=0)  # [T], sums to 1
    right, left, own = float(row[position + 1 :].sum()), float(row[:position].sum()), float(row[position])
    last = trace.tokens[-1]
    explanation = (
        f"In block {block}, averaged over its {trace.num_heads} heads, the {_mask(loaded)} token at position "
        f"{position} spends {100 * right:.0f}% of its attention on the {len(trace.tokens) - position - 1} tokens to "
        f"its right ({100 * float(row[-1]):.0f}% of it on the closing {last}), {100 * left:.0f}% on the tokens to "
        f"its left and {100 * own:.0f}% on itself. A decoder's causal mask would make the right-hand share exactly 0%."
    )
    return Key(
        percent(right),
        explanation,
        {"block": block, "right": round(right, 4), "left": round(left, 4), "self": round(own, 4)},
        fields={"block": block, "mask": _mask(loaded)},
    )


def _cut_after_mask(loaded, text: str) -> str:
    mask = _mask(loaded)
    return text[: text.index(mask) + len(mask)] if mask in text else text


def cut_right(loaded, view: Mapping, params: Mapping) -> Key:
    """Does the top word stay when every word after [MASK] is deleted?"""
    text = _text(view)
    _t, _p, probs = masked_prediction(loaded, text)
    cut = _cut_after_mask(loaded, text)
    if cut == text:
        raise LabRefused(f"Put some words after {_mask(loaded)}: this question deletes them.")
    _t, _p, cut_probs = masked_prediction(loaded, cut)
    (full_word, full_p), (cut_word, cut_p) = _ranked(loaded, probs, 1)[0], _ranked(loaded, cut_probs, 1)[0]
    same = full_word == cut_word
    explanation = (
        f"With the whole text the top word is '{full_word}' ({100 * full_p:.1f}%). Cut to \"{cut}\", the model "
        f"answers '{cut_word}' ({100 * cut_p:.1f}%): "
        + (
            "the words on the left were enough to keep the same guess."
            if same
            else "the words after the gap were part of what it read, which a left-to-right model could never use."
        )
    )
    return Key(
        YES if same else NO,
        explanation,
        {"full": full_word, "cut": cut_word, "cut_text": cut},
        fields={"word": full_word, "mask": _mask(loaded)},
    )


# --- vectors in context (the similarity matrix) -----------------------------------------------------------


def word_positions(trace, word: str) -> list[int]:
    """Positions of the token ``word`` (alone as WordPiece spells it, or with RoBERTa's leading space)."""
    return [i for i, t in enumerate(trace.tokens) if t in (word, "␣" + word)]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _twin(loaded, view: Mapping, params: Mapping):
    """(trace, the word's first two positions, depth) for the word-twice questions."""
    word = str(params["word"])
    trace = encoder.trace_text(loaded, _text(view), with_logits=False)
    positions = word_positions(trace, word)
    if len(positions) < 2:
        raise LabRefused(f"This question compares the two '{word}'s of the text: use '{word}' twice.")
    depth = clamp(setting(view, "encoder_sim_layer", trace.num_layers), 0, trace.num_layers)
    return trace, positions[:2], depth


def twin_cosine(loaded, view: Mapping, params: Mapping) -> Key:
    """Cosine similarity of the word's two occurrences at the view's depth."""
    trace, (a, b), depth = _twin(loaded, view, params)
    by_depth = [_cosine(trace.hidden_states[d, a], trace.hidden_states[d, b]) for d in range(trace.num_layers + 1)]
    word, value = params["word"], by_depth[depth]
    where = "before any block (the embedding layer's output)" if depth == 0 else f"after block {depth}"
    sentences = [
        f"'{word}' is token {a} and token {b}.",
        f"{where.capitalize()} their vectors have cosine similarity {value:.3f}.",
    ]
    if depth == 0 and value > 1 - 1e-6:
        sentences.append("One token id, and this model adds no position embedding: the same vector.")
    elif depth == 0:
        sentences.append(
            "They are one token id at two positions, and this model adds a position embedding: even "
            "before any context they are not the same vector."
        )
    sentences.append(
        "Depth by depth, from 0 to the last block: "
        + ", ".join(f"{c:.2f}" for c in by_depth)
        + ". Context pulls the two apart when they mean different things."
    )
    explanation = " ".join(sentences)
    return Key(
        round(value, 3),
        explanation,
        {"cosine_by_depth": [round(c, 4) for c in by_depth], "positions": [a, b], "depth": depth},
        fields={"word": word, "depth": depth, "where": where},
    )


def referent(loaded, view: Mapping, params: Mapping) -> Key:
    """Which of two candidate words the pronoun's vector is closer to, at the view's depth."""
    pronoun, candidates = str(params["pronoun"]), tuple(params["candidates"])
    trace = encoder.trace_text(loaded, _text(view), with_logits=False)
    found = {w: word_positions(trace, w) for w in (pronoun, *candidates)}
    missing = [w for w, at in found.items() if not at]
    if missing:
        raise LabRefused(
            f"This question needs the words {', '.join(map(quoted, (pronoun, *candidates)))} in the "
            f"text; {', '.join(map(quoted, missing))} is not there as one token."
        )
    depth = clamp(setting(view, "encoder_sim_layer", trace.num_layers), 0, trace.num_layers)
    h = trace.hidden_states[depth]  # [T, D]
    p = found[pronoun][0]
    cosines = {w: _cosine(h[p], h[found[w][0]]) for w in candidates}
    best = max(candidates, key=lambda w: cosines[w])
    explanation = (
        f"After block {depth}, the vector of '{pronoun}' (token {p}) has cosine "
        + " and ".join(f"{cosines[w]:.3f} with '{w}'" for w in candidates)
        + f": it is closer to '{best}'. This is a similarity between vectors, not proof that the model resolved "
        "the pronoun; change one word of the sentence and watch whether it follows."
    )
    return Key(
        best,
        explanation,
        {"cosines": {w: round(c, 4) for w, c in cosines.items()}, "depth": depth},
        fields={"pronoun": pronoun, "depth": depth},
    )
