"""Answer keys on the encoder-decoder page (a text model: the English -> Portuguese translator by default):
the output the decoder writes, its cross-attention over the source, and what the encoder costs against
the decoder's steps.

The page encodes the source once (``seq2seq.encode_text``) and decodes with a ``DecodingSession`` whose
rules add the model's suppressed ids; the keys decode the same way (``translate``), so the output they
reason about is the one on screen.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from explorer.adapters import seq2seq
from explorer.adapters.common import display_token
from explorer.decoding import SamplingSettings, choose_token, filtered_distribution
from explorer.lessons.core import NO, YES, Key, LabRefused, clamp, distinct, percent, setting, shuffled
from explorer.lessons.keys_decoder import rules
from explorer.session import DecodingSession

TEXT = "s2s_text"
MAX_OUTPUT = 64  # the page opens with this many tokens decoded (auto_tokens)
TIMING_RUNS = 5  # passes timed for each median


def encoded(loaded, view: Mapping):
    """The encoder's one pass over the view's source text."""
    if loaded.arch.audio:
        raise LabRefused(
            "This question needs a text encoder-decoder (the English → Portuguese translator); the "
            "model chosen for this family reads speech."
        )
    text = str(setting(view, TEXT, "")).strip()
    if not text:
        raise LabRefused("Type an English sentence first: this question reads the source text.")
    return seq2seq.encode_text(loaded, text)


def _settings_for(loaded, settings: SamplingSettings):
    return lambda index: SamplingSettings(
        **{**settings.__dict__, "suppressed_ids": seq2seq.suppressed_ids(loaded, first_step=index == 0)}
    )


def translate(loaded, encoder_pass, settings: SamplingSettings) -> list[int]:
    """The output ids (end token included) the page's Step writes under ``settings``."""
    session = DecodingSession(
        seq2seq.start_ids(loaded),
        step_fn=lambda context: seq2seq.step(loaded, encoder_pass, np.asarray(context, dtype=np.int64)),
        settings_for=_settings_for(loaded, settings),
        eos_ids=seq2seq.eos_ids(loaded),
        max_tokens=MAX_OUTPUT,
    )
    session.advance(MAX_OUTPUT)
    return list(session.generated)


def _words(loaded, ids) -> str:
    return loaded.tokenizer.decode(ids, skip_special_tokens=True)


def label(loaded, token_id: int) -> str:
    return display_token(loaded.tokenizer, int(token_id))


def first_output(loaded, view: Mapping, params: Mapping) -> Key:
    """The first token the decoder writes; its four most likely first tokens as choices."""
    encoder_pass = encoded(loaded, view)
    start = seq2seq.start_ids(loaded)
    step = seq2seq.step(loaded, encoder_pass, start)
    settings = _settings_for(loaded, SamplingSettings())(0)
    probs, kept = filtered_distribution(step.logits, settings)  # suppressed tokens removed
    order = [int(i) for i in np.argsort(-probs)[:16] if kept[i]]  # most likely first, suppressed ids left out
    names = [label(loaded, i) for i in order]
    labels = distinct(names, 4)
    chosen = label(loaded, choose_token(step.logits, settings, 0))
    shares = ", ".join(f"'{w}' {100 * probs[order[names.index(w)]]:.1f}%" for w in labels)
    whole = _words(loaded, translate(loaded, encoder_pass, SamplingSettings()))
    explanation = (
        f"Before writing anything the decoder has only its start token and the encoder's "
        f"{len(encoder_pass.trace.tokens)} source vectors. Its first distribution: {shares}. Greedy writes "
        f"'{chosen}'; the whole translation reads \"{whole}\"."
    )
    return Key(
        chosen,
        explanation,
        {"ranked": labels},
        shuffled(labels, "first-output"),
        {"text": str(setting(view, TEXT, "")).strip()},
    )


def _cross(loaded, view: Mapping):
    """(encoder pass, output ids, cross-attention [T_out, S] of the view's block or the mean, block name)."""
    encoder_pass = encoded(loaded, view)
    output = translate(loaded, encoder_pass, SamplingSettings())
    ids = np.concatenate([seq2seq.start_ids(loaded), np.asarray(output, dtype=np.int64)])
    trace = seq2seq.trace(loaded, encoder_pass, ids)
    maps = trace.cross_attentions.mean(axis=1)  # [L_dec, T, S], head average
    choice = setting(view, "s2s_cross_layer", "mean")
    if choice == "mean":
        return encoder_pass, output, maps.mean(axis=0), "averaged over blocks"
    block = clamp(choice, 1, maps.shape[0])
    return encoder_pass, output, maps[block - 1], f"in block {block}"


def aligned_source(loaded, view: Mapping, params: Mapping) -> Key:
    """Which source token the decoder reads most while writing output token k (the inspected step)."""
    encoder_pass, output, cross, where = _cross(loaded, view)
    k = clamp(setting(view, "s2s_inspect", 1), 1, len(output))
    row = cross[k - 1]  # [S]: row k-1 reads the start token and outputs 1..k-1, and writes output token k
    source = encoder_pass.trace.tokens
    order = [int(i) for i in np.argsort(-row, kind="stable")[:4]]
    labels = [f"{i}: {source[i]}" for i in order]
    written = label(loaded, output[k - 1])
    explanation = (
        f"The translation is \"{_words(loaded, output)}\". While writing its token {k}, '{written}', the decoder's "
        f"cross-attention ({where}, head average) gives "
        + ", ".join(f"{100 * row[i]:.0f}% to '{lab}'" for i, lab in zip(order, labels))
        + f". Read across the row of '{written}' in the alignment matrix: its brightest cell is '{labels[0]}'."
    )
    return Key(
        labels[0],
        explanation,
        {"written": written, "weights": [round(float(row[i]), 4) for i in order]},
        shuffled(labels, "aligned-source"),
        {"k": k, "written": written, "where": where},
    )


def steps_back(loaded, view: Mapping, params: Mapping) -> Key:
    """Does the alignment ever step back to an earlier source word than the one before it read?"""
    encoder_pass, output, cross, where = _cross(loaded, view)
    special = set(loaded.tokenizer.all_special_ids)
    words = [i for i, t in enumerate(encoder_pass.trace.token_ids) if int(t) not in special]  # source words
    rows = [k for k, t in enumerate(output) if int(t) not in special]  # output tokens that are words
    source, aligned = encoder_pass.trace.tokens, {}
    for k in rows:
        aligned[k] = words[int(np.argmax(cross[k, words]))]
    back = [(a, b) for a, b in zip(rows, rows[1:]) if aligned[b] < aligned[a]]
    path = ", ".join(f"'{label(loaded, output[k])}' reads '{source[aligned[k]]}'" for k in rows)
    explanation = f"Each output token with the source token it reads most ({where}): {path}. " + (
        f"It steps back {len(back)} time(s), first at '{label(loaded, output[back[0][1]])}', which reads "
        f"'{source[aligned[back[0][1]]]}' after '{label(loaded, output[back[0][0]])}' read "
        f"'{source[aligned[back[0][0]]]}': the two languages order these words differently."
        if back
        else "It only moves forward: the two languages put these words in the same order."
    )
    return Key(YES if back else NO, explanation, {"path": path, "steps_back": len(back)})


def decoder_steps(loaded, view: Mapping, params: Mapping) -> Key:
    """How many decoder steps (forwards) the greedy translation takes, the end token included."""
    encoder_pass = encoded(loaded, view)
    output = translate(loaded, encoder_pass, SamplingSettings())
    ended = bool(output) and output[-1] in seq2seq.eos_ids(loaded)
    explanation = (
        f"The encoder read the {len(encoder_pass.trace.tokens)} source tokens in one pass. The decoder then wrote "
        f'"{_words(loaded, output)}" one token per forward: {len(output)} steps ('
        + " ".join(label(loaded, t) for t in output)
        + (")." if ended else f"), stopped at the page's limit of {MAX_OUTPUT}.")
    )
    return Key(float(len(output)), explanation, {"steps": len(output), "source_tokens": len(encoder_pass.trace.tokens)})


def _median_seconds(run, repeats: int = TIMING_RUNS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def encoder_share(loaded, view: Mapping, params: Mapping) -> Key:
    """Share of the whole translation's time spent in the single encoder pass (medians of timed runs)."""
    text = str(setting(view, TEXT, ""))
    encoder_pass = encoded(loaded, view)
    output = translate(loaded, encoder_pass, SamplingSettings())
    ids = np.concatenate([seq2seq.start_ids(loaded), np.asarray(output, dtype=np.int64)])
    encode = _median_seconds(lambda: seq2seq.encode_text(loaded, text))
    steps = [
        _median_seconds(lambda n=n: seq2seq.step(loaded, encoder_pass, ids[:n]), 3)
        for n in range(len(seq2seq.start_ids(loaded)), len(ids))
    ]
    share = encode / (encode + sum(steps))
    explanation = (
        f"Timed now on this machine: one encoder pass over the {len(encoder_pass.trace.tokens)} source tokens takes "
        f"{1000 * encode:.1f} ms (median of {TIMING_RUNS}); the {len(steps)} decoder steps take "
        f"{1000 * float(np.median(steps)):.1f} ms each (median), {1000 * sum(steps):.0f} ms together. The encoder "
        f"runs once and its output is reused by every step, so it is {100 * share:.0f}% of the work; the longer "
        "the output, the smaller its share. Timings on a shared machine vary from run to run."
    )
    return Key(
        percent(share),
        explanation,
        {"encoder_ms": round(1000 * encode, 2), "step_ms": [round(1000 * s, 2) for s in steps]},
        fields={"steps": len(steps)},
    )


def sampled_same(loaded, view: Mapping, params: Mapping) -> Key:
    """Is the sampled translation (the view's rules and seed) the same as greedy's?"""
    settings = rules(view, "s2s")
    if settings.greedy:
        raise LabRefused("Turn Greedy off: this question is about sampling.")
    encoder_pass = encoded(loaded, view)
    greedy, sampled = (translate(loaded, encoder_pass, s) for s in (SamplingSettings(), settings))
    first = next((i for i, (a, b) in enumerate(zip(greedy, sampled)) if a != b), min(len(greedy), len(sampled)))
    same = greedy == sampled
    explanation = (
        f'Greedy writes "{_words(loaded, greedy)}". Sampling at temperature {settings.temperature:g} with seed '
        f'{settings.seed} writes "{_words(loaded, sampled)}"'
        + (
            ": the same, because at every step the most likely token took most of the probability and the draws "
            "landed on it."
            if same
            else f": they part at output token {first + 1}, where the draw took a less likely token, and from there on "
            "the decoder continues from its own different text."
        )
    )
    return Key(
        YES if same else NO,
        explanation,
        {"greedy": _words(loaded, greedy), "sampled": _words(loaded, sampled)},
        fields={"temperature": f"{settings.temperature:g}", "seed": settings.seed},
    )
