"""Step-by-step decoding widgets shared by the decoder-only and encoder-decoder pages: a thin
layer over explorer.session.DecodingSession (which holds the logic and is tested without
Streamlit).

State per page: the generated token ids (a list under '<prefix>_generated'), reset whenever
the model or the prompt/source changes, and shared in the URL under the page's declared
parameter (?tokens= on the decoder page).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import streamlit as st

from explorer.adapters.common import display_token
from explorer.decoding import SamplingSettings, choose_token, drawn_distribution, rules_text
from explorer.plots import decoding as decoding_plots
from explorer.session import Decoding, DecodingSession, parse_token_ids
from explorer.text import InputError, plain
from explorer.trace import DecodingStep
from explorer.ui.boundary import guarded
from explorer.ui.links import take_once
from explorer.ui.view import View

log = logging.getLogger(__name__)

PLAY_TOKENS = 10
SHARED_TOKENS_LIMIT = 128


def token_labels(tokenizer) -> Callable[[list[int]], dict]:
    """ids -> their display strings, for bar labels and the force menu."""
    return lambda ids: {i: display_token(tokenizer, i) for i in ids}


def link_settings(prefix: str) -> dict[str, str]:
    """The decoding rules and the inspected step, as a link carries them (explorer/linkvalues.py specs:
    the widgets' own ranges; the inspected step is clamped to the steps there are when drawn)."""
    return {
        f"{prefix}_greedy": "bool",
        f"{prefix}_temperature": "float 0.1 2.0",
        f"{prefix}_top_k": "int 0 1000",
        f"{prefix}_top_p": "float 0.05 1.0",
        f"{prefix}_seed": f"int 0 {2**31 - 1}",
        f"{prefix}_inspect": f"int 1 {SHARED_TOKENS_LIMIT + 1}",
    }


def kept_keys(prefix: str) -> tuple[str, ...]:
    """The decoding rules and the inspected step: settings a page keeps through an invalid input."""
    return tuple(f"{prefix}_{name}" for name in ("greedy", "temperature", "top_k", "top_p", "seed", "inspect"))


def sampling_controls(prefix: str) -> SamplingSettings:
    with st.expander("Decoding rules (greedy, temperature, top-k, top-p, seed)", expanded=False):
        greedy = st.toggle("Greedy (always take the most likely token)", value=True, key=f"{prefix}_greedy")
        c1, c2, c3, c4 = st.columns(4)
        temperature = c1.slider(
            "Temperature",
            0.1,
            2.0,
            1.0,
            0.05,
            key=f"{prefix}_temperature",
            disabled=greedy,
            help=(
                "Divides the logits: below 1 sharpens the distribution, above 1 flattens it. The blue bars of "
                "the next-token chart below show the result."
            ),
        )
        top_k = c2.number_input("Top-k (0 = off)", 0, 1000, 0, key=f"{prefix}_top_k", disabled=greedy)
        top_p = c3.slider(
            "Top-p",
            0.05,
            1.0,
            1.0,
            0.05,
            key=f"{prefix}_top_p",
            disabled=greedy,
            help="Keep the smallest set of tokens whose probabilities add up to p.",
        )
        seed = c4.number_input("Seed", 0, 2**31 - 1, 0, key=f"{prefix}_seed", disabled=greedy)
    return SamplingSettings(
        greedy=greedy, temperature=float(temperature), top_k=int(top_k), top_p=float(top_p), seed=int(seed)
    )


def run_stepper(
    view: View,
    prefix: str,
    signature: tuple,
    session: DecodingSession,
    labels_fn: Callable[[list[int]], dict],
    auto_tokens: int,
) -> Decoding:
    """Buttons Step / Play / Back / Reset / Force over ``session``, whose generated tokens this
    binds to the page's state. ``signature`` identifies model + input: when it changes the tokens
    reset (or come from a shared link) and ``auto_tokens`` are generated so the page opens with
    something to look at."""
    param = view.param_of(f"{prefix}_generated")
    session.generated = _generated_for(prefix, param, signature, auto_tokens, session)
    pending = st.session_state.pop(f"{prefix}_pending", 0)
    if pending:
        with st.spinner(f"Generating {pending} tokens…"):
            session.advance(pending)
    if _play_one(prefix, session):
        view.another_run()
    _buttons(prefix, session)
    st.query_params[param] = ",".join(str(i) for i in session.generated)  # a shared link restores this exact step
    result = session.snapshot()
    if not session.finished():
        _force_controls(prefix, session, result.steps[-1], labels_fn)
    elif session.ended_by_model():
        st.caption("The model produced its end-of-sequence token: decoding stopped. Use Back to undo it.")
    return result


def _generated_for(prefix: str, param: str, signature: tuple, auto_tokens: int, session: DecodingSession) -> list[int]:
    """The page's token list; a new signature starts a new one (from a shared link, or empty
    with ``auto_tokens`` pending)."""
    gen_key, sig_key = f"{prefix}_generated", f"{prefix}_signature"
    shared = _shared_tokens(prefix, param, session)
    if st.session_state.get(sig_key) != signature:
        st.session_state[sig_key] = signature
        st.session_state[gen_key] = shared if shared is not None else []
        st.session_state[f"{prefix}_pending"] = 0 if shared is not None else auto_tokens
        st.session_state[f"{prefix}_playing"] = 0
    return st.session_state[gen_key]


def _play_one(prefix: str, session: DecodingSession) -> bool:
    """Play appends one token per run and asks for the next run once the page has drawn this one, so
    every figure animates token by token (about one full run per token) until Pause or the end.
    Returns whether another token is still to come."""
    key = f"{prefix}_playing"
    left = st.session_state.get(key, 0)
    if left and not session.finished():
        session.advance(1)
        left -= 1
    st.session_state[key] = left if left and not session.finished() else 0
    return bool(st.session_state[key])


def _set_playing(prefix: str, tokens: int) -> None:
    st.session_state[f"{prefix}_playing"] = tokens


def _buttons(prefix: str, session: DecodingSession) -> None:
    # Callbacks run before the next script run, so every widget below sees the new state.
    done, empty = session.finished(), not session.generated
    playing = bool(st.session_state.get(f"{prefix}_playing"))
    play = (
        ("Pause ⏸", "play", "Stop playing after this token", False, _set_playing, (prefix, 0))
        if playing
        else (
            f"Play ▶▶ {PLAY_TOKENS}",
            "play",
            f"Generate up to {PLAY_TOKENS} tokens, one at a time, every figure following",
            done,
            _set_playing,
            (prefix, PLAY_TOKENS),
        )
    )
    buttons = [  # label, key suffix, help, disabled, action, its arguments
        ("Step ▶", "step", "Choose one more token with the decoding rules", done or playing, session.advance, (1,)),
        play,
        ("◀ Back", "back", "Remove the last generated token", empty, session.back, ()),
        ("Reset ⟲", "reset", "Remove every generated token", empty, session.reset, ()),
    ]
    columns = st.columns(2) + st.columns(2)  # two rows of two: the labels fit a narrow panel at projector size
    for column, (label, name, help, disabled, action, args) in zip(columns, buttons):
        column.button(
            label,
            key=f"{prefix}_{name}",
            help=help,
            disabled=disabled,
            on_click=guarded(action),
            args=args,
            width="stretch",
        )


def _force_controls(prefix: str, session: DecodingSession, current: DecodingStep, labels_fn) -> None:
    top = [int(i) for i in np.argsort(-current.probs)[:10]]
    labels = labels_fn(top)
    choice_key = f"{prefix}_force_choice"
    f1, f2 = st.columns([3, 1], vertical_alignment="bottom")
    f1.selectbox(
        "Force a token instead (top 10 candidates now)",
        top,
        key=choice_key,
        format_func=lambda i: f"{labels.get(i, i)!s}  (p = {current.probs[i]:.3f})",
    )
    f2.button(
        "Force it",
        key=f"{prefix}_force",
        on_click=guarded(lambda: session.force(st.session_state.get(choice_key))),
        width="stretch",
        help="Append this token instead of the one the rules would pick, and continue from there",
    )


def _shared_tokens(prefix: str, param: str, session: DecodingSession) -> list[int] | None:
    """Generated token ids carried by a shared link (?tokens=1,2,3), read once per session and
    checked against the model's vocabulary and length limit (a sentence, not an error, if wrong)."""
    raw = take_once(param, f"{prefix}_tokens")
    if raw is None:
        return None
    try:
        return parse_token_ids(raw, session.vocab_size, min(SHARED_TOKENS_LIMIT, session.max_tokens))
    except InputError as refusal:
        log.info("a shared link's tokens refused: %r", raw[:80])
        st.warning(plain(refusal))
        return None


def inspect_step(
    view: View,
    prefix: str,
    result: Decoding,
    labels_fn,
    caption: Callable[[int, DecodingStep], str],
    how_to_read: str,
    help: str | None = None,
) -> tuple[int, DecodingStep]:
    """The 'Inspect step' slider and the bars of that step's distribution, raw and as Step draws
    from it (the chosen token, or at the frontier the one Step will choose, in orange; tokens the
    rules removed hatched). Returns (step number from 1, the step)."""
    last = len(result.steps)  # len(result.generated) once decoding has finished
    inspect = st.slider("Inspect step", 1, last, key=_follow_frontier(prefix, last), help=help) if last > 1 else 1
    step = result.steps[inspect - 1]
    if inspect > len(result.generated):
        note = " Orange: the token Step will append next under these rules (the same seed and step give the same draw)."
    else:
        note = " Orange: the token that was chosen here."
    view.figure(
        bars_figure(result, inspect, labels_fn),
        key=f"{prefix}_bars",
        caption=caption(inspect, step) + note,
        how_to_read=how_to_read,
    )
    return inspect, step


def _follow_frontier(prefix: str, last: int) -> str:
    """The Inspect slider's key, its value set so that it stays on the last step as Step, Play,
    Back or Force move that step (the bars then show the token Step will choose next); a step the
    student picked away from the end stays picked (clamped to the steps there are)."""
    key, seen = f"{prefix}_inspect", f"{prefix}_inspect_last"
    current, previous = st.session_state.get(key), st.session_state.get(seen)
    st.session_state[seen] = last
    if current is None or current == previous or current > last:
        st.session_state[key] = last
    return key


def marked_token(result: Decoding, inspect: int) -> tuple[int, bool]:
    """The token the bars of step ``inspect`` (from 1) mark, and whether it is still to come: the
    generated token on earlier steps; at the frontier the token Step will append, since
    choose_token with the rules, step index and seed DecodingSession.advance uses is
    deterministic."""
    index = inspect - 1
    if index < len(result.generated):
        return int(result.generated[index]), False
    return choose_token(result.steps[index].logits, result.settings[index], index), True


def bars_figure(result: Decoding, inspect: int, labels_fn, top: int = 15):
    """The raw-vs-drawn bars of step ``inspect`` (from 1) under the rules in force there."""
    index = inspect - 1
    step, rules = result.steps[index], result.settings[index]
    marked, is_next = marked_token(result, inspect)
    drawn, kept = drawn_distribution(step.logits, rules)
    ids = decoding_plots.shown_tokens(step.probs, drawn, top=top, marked=marked)
    return decoding_plots.sampling_bars(
        step.probs,
        drawn,
        kept,
        ids,
        labels_fn([int(i) for i in ids]),
        rules_text(rules),
        rules.greedy,
        marked=marked,
        marked_is_next=is_next,
        removed_by="top-k / top-p / suppression" if rules.suppressed_ids else "top-k / top-p",
    )
