"""Step-by-step decoding controls shared by the decoder-only and encoder-decoder pages.

State per page: the generated token ids (a list in session_state), reset whenever the
model or the prompt/source changes. Every step's distribution is a cached forward, so
moving back and forth never recomputes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st

from explorer.decoding import SamplingSettings, choose_token, entropy_bits, filtered_distribution
from explorer.trace import DecodingStep
from explorer.ui.common import guarded

log = logging.getLogger(__name__)

PLAY_TOKENS = 10


@dataclass
class Decoding:
    start_ids: np.ndarray  # [P] prompt (decoder-only) or start tokens (encoder-decoder)
    generated: list[int]
    steps: list[DecodingStep]  # steps[i] produced generated[i]; steps[-1] is the frontier
    settings: list[SamplingSettings]  # the rules in force at each step (suppression can vary)


def sampling_controls(prefix: str) -> SamplingSettings:
    with st.expander("Decoding rules (greedy, temperature, top-k, top-p, seed)", expanded=False):
        greedy = st.toggle("Greedy (always take the most likely token)", value=True, key=f"{prefix}_greedy")
        c1, c2, c3, c4 = st.columns(4)
        temperature = c1.slider("Temperature", 0.1, 2.0, 1.0, 0.05, key=f"{prefix}_temperature", disabled=greedy,
                                help="Divides the logits: below 1 sharpens the distribution, above 1 flattens it.")
        top_k = c2.number_input("Top-k (0 = off)", 0, 1000, 0, key=f"{prefix}_top_k", disabled=greedy)
        top_p = c3.slider("Top-p", 0.05, 1.0, 1.0, 0.05, key=f"{prefix}_top_p", disabled=greedy,
                          help="Keep the smallest set of tokens whose probabilities add up to p.")
        seed = c4.number_input("Seed", 0, 2**31 - 1, 0, key=f"{prefix}_seed", disabled=greedy)
    return SamplingSettings(greedy=greedy, temperature=float(temperature), top_k=int(top_k), top_p=float(top_p), seed=int(seed))


def run_stepper(prefix: str, signature: tuple, start_ids: np.ndarray, step_fn: Callable[[tuple], DecodingStep],
                settings_for: Callable[[int], SamplingSettings], eos_ids: set[int], labels_fn: Callable[[list[int]], dict],
                auto_tokens: int, max_tokens: int = 128) -> Decoding:
    """Buttons Step / Play / Back / Reset / Force, and the decoding state they change.

    ``signature`` identifies model + input: when it changes the generated tokens reset and
    ``auto_tokens`` are generated so the page opens with something to look at.
    """
    gen_key, sig_key = f"{prefix}_generated", f"{prefix}_signature"
    shared = _shared_tokens(prefix)
    if st.session_state.get(sig_key) != signature:
        st.session_state[sig_key] = signature
        st.session_state[gen_key] = shared if shared is not None else []
        st.session_state[f"{prefix}_pending"] = 0 if shared is not None else auto_tokens
    prompt = tuple(int(i) for i in start_ids)

    def generated() -> list[int]:
        return st.session_state[gen_key]

    def finished() -> bool:
        ids = generated()
        return (bool(ids) and ids[-1] in eos_ids) or len(ids) >= max_tokens

    # Callbacks run before the next script run, so every widget below sees the new state.
    def advance(n: int) -> None:
        ids = generated()
        for _ in range(n):
            if finished():
                break
            current = step_fn(prompt + tuple(ids))
            ids.append(choose_token(current.logits, settings_for(len(ids)), len(ids)))

    def back() -> None:
        if generated():
            generated().pop()

    def force() -> None:
        choice = st.session_state.get(f"{prefix}_force_choice")
        if choice is not None and not finished():
            generated().append(int(choice))

    pending = st.session_state.pop(f"{prefix}_pending", 0)
    if pending:
        with st.spinner(f"Generating {pending} tokens…"):
            advance(pending)

    c1, c2, c3, c4 = st.columns(4)
    c1.button("Step ▶", key=f"{prefix}_step", help="Choose one more token with the decoding rules", disabled=finished(),
              on_click=guarded(advance), args=(1,), width="stretch")
    c2.button(f"Play ▶▶ {PLAY_TOKENS}", key=f"{prefix}_play", help=f"Generate up to {PLAY_TOKENS} tokens", disabled=finished(),
              on_click=guarded(advance), args=(PLAY_TOKENS,), width="stretch")
    c3.button("◀ Back", key=f"{prefix}_back", help="Remove the last generated token", disabled=not generated(),
              on_click=guarded(back), width="stretch")
    c4.button("Reset ⟲", key=f"{prefix}_reset", help="Remove every generated token", disabled=not generated(),
              on_click=guarded(lambda: generated().clear()), width="stretch")

    ids = list(generated())
    st.query_params[_param(prefix)] = ",".join(str(i) for i in ids)  # a shared link restores this exact step
    steps = [step_fn(prompt + tuple(ids[:i])) for i in range(len(ids) + 1)]
    current = steps[-1]
    if not finished():
        top = [int(i) for i in np.argsort(-current.probs)[:10]]
        labels = labels_fn(top)
        f1, f2 = st.columns([3, 1], vertical_alignment="bottom")
        f1.selectbox("Force a token instead (top 10 candidates now)", top, key=f"{prefix}_force_choice",
                     format_func=lambda i: f"{labels.get(i, i)!s}  (p = {current.probs[i]:.3f})")
        f2.button("Force it", key=f"{prefix}_force", on_click=guarded(force), width="stretch",
                  help="Append this token instead of the one the rules would pick, and continue from there")
    elif ids and ids[-1] in eos_ids:
        st.caption("The model produced its end-of-sequence token: decoding stopped. Use Back to undo it.")
    return Decoding(start_ids=start_ids, generated=ids, steps=steps,
                    settings=[settings_for(i) for i in range(len(steps))])


def _param(prefix: str) -> str:
    """URL parameter of a page's generated tokens ('tokens' on the decoder page)."""
    return "tokens" if prefix == "decoder" else f"{prefix}_tokens"


def _shared_tokens(prefix: str) -> list[int] | None:
    """Generated token ids carried by a shared link (?tokens=1,2,3), read once per session."""
    flag = f"_restored_{prefix}_tokens"
    if st.session_state.get(flag):
        return None
    st.session_state[flag] = True
    raw = st.query_params.get(_param(prefix))
    if raw is None:
        return None
    try:
        return [int(t) for t in raw.split(",") if t.strip()][:128]
    except ValueError:
        log.info("ignored a shared link's unreadable tokens %r", raw[:80], exc_info=True)
        return None


def history(decoding: Decoding) -> tuple[list[float], list[float]]:
    """Entropy (bits) of each step's full distribution and the chosen token's probability."""
    entropies = [entropy_bits(s.probs) for s in decoding.steps[: len(decoding.generated)]]
    chosen = [float(s.probs[t]) for s, t in zip(decoding.steps, decoding.generated)]
    return entropies, chosen


def kept_mask(step: DecodingStep, settings: SamplingSettings) -> np.ndarray:
    return filtered_distribution(step.logits, settings)[1]
