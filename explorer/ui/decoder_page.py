"""Decoder-only page: autoregressive decoding, one token at a time."""

from __future__ import annotations

import html

import numpy as np
import streamlit as st

from explorer.adapters import decoder
from explorer.adapters.attribution import Target
from explorer.adapters.common import display_token, vocabulary_size
from explorer.decoding import depth_readout
from explorer.plots import decoding as decoding_plots
from explorer.session import DecodingSession, history
from explorer.ui import attribution_panel, stepper
from explorer.ui.view import View, cached, notes

VIEW = View.of_family(
    "decoder",
    text_key="decoder_prompt",
    settings={
        **stepper.link_settings("decoder"),
        **attribution_panel.link_settings("decoder"),
        "decoder_chat": "bool",
        "decoder_layer": "int 1 1000",
    },
    tokens="decoder_generated",
)

EXAMPLES = [
    "The capital of France is",
    "Once upon a time, a little robot",
    "1, 2, 3, 4,",
    "def fibonacci(n):",
]
# What each example shows, measured on the embedded default (tests/test_example_notes.py checks every claim).
EXAMPLE_NOTES = {
    "The capital of France is": "A fact: ' Paris' is the top next token, with about three quarters of the probability.",
    "Once upon a time, a little robot": (
        "A story with no single right answer, yet the model is sure of the next token (' named', over 80%); "
        "turn Greedy off to sample other stories."
    ),
    "1, 2, 3, 4,": (
        "A pattern: its first 8 tokens continue the count, ' 5, 6, 7'. Each number takes three tokens: a space, "
        "the digit and the comma."
    ),
    "def fibonacci(n):": (
        "Where it fails: press Step until the function is written (about 24 tokens): it returns "
        "n * fibonacci(n - 1), a factorial, not the Fibonacci numbers."
    ),
}


HEADLINE = "Decoder-only: writing one token at a time"
INTRO = (
    "A decoder-only model (the GPT family) reads the text so far and outputs a probability for **every** "
    "token in its vocabulary. A decoding rule picks one, it is appended, and the model runs again. "
    "Each token may only attend to itself and earlier tokens (causal attention)."
)


@cached(max_entries=384)  # ~0.4 MB each: logits and probs over V
def cached_step(loaded, context: tuple[int, ...]):
    return decoder.step(loaded, np.asarray(context, dtype=np.int64))


@cached(max_entries=16)
def cached_lens(loaded, context: tuple[int, ...]):
    step = cached_step(loaded, context)
    return depth_readout(decoder.logit_lens(loaded, step.last_hidden))  # from logits [L+1, V]


def render() -> None:
    VIEW.text_page(HEADLINE, INTRO, "Prompt", EXAMPLES, _body, example_notes=EXAMPLE_NOTES)


def _body(loaded, text: str) -> None:
    with VIEW.side():
        prompt_ids = _prompt_ids(loaded, text)
        settings = stepper.sampling_controls("decoder")
    session = DecodingSession(
        prompt_ids,
        step_fn=lambda ctx: cached_step(loaded, ctx),
        settings_for=lambda i: settings,
        eos_ids=decoder.eos_ids(loaded),
        max_tokens=max(0, min(128, decoder.context_limit(loaded) - len(prompt_ids))),
        vocab_size=vocabulary_size(loaded),
    )
    labels = stepper.token_labels(loaded.tokenizer)
    with VIEW.side():
        result = stepper.run_stepper(
            VIEW,
            "decoder",
            (loaded.model_id, loaded.device, tuple(prompt_ids.tolist())),
            session,
            labels,
            auto_tokens=8,
        )
        _text_so_far(loaded, prompt_ids, result.generated)
    with VIEW.main():
        inspect, step = _bars(loaded, result, labels)
    _after_bars(loaded, result, inspect, step)


def _bars(loaded, result, labels):
    return stepper.inspect_step(
        VIEW,
        "decoder",
        result,
        labels,
        caption=lambda k, s: (
            f"Step {k}: the next-token distribution after {len(s.context_ids)} tokens of context, raw (grey) "
            f"and as Step draws from it under the decoding rules set now (blue); the forward took "
            f"{s.seconds * 1000:.0f} ms."
        ),
        how_to_read=(
            "Each token has two bars. **Grey** is the model's raw probability: the softmax of its logits at "
            "temperature 1, before any decoding rule. **Blue** is what Step actually draws from: the logits "
            "divided by the temperature, then only the top-k tokens kept, then only the smallest set whose "
            "probabilities add up to top-p, renormalised to sum to 1. A temperature below 1 sharpens it (the top "
            "token takes more), above 1 flattens it; grey hatched tokens were removed by top-k or top-p and are "
            "never drawn (blue 0). With greedy on there is nothing to draw: Step always takes the most likely "
            "token, so the blue bar is 100% on it. **Orange** marks the token chosen at this step; on the last "
            "step, the one Step will append next (the draw is fixed by the seed and the step number, so what you "
            "see is what you get). Change the rules under *Decoding rules* and watch the blue bars move."
        ),
        help=(
            "Step k shows the distribution the k-th generated token was chosen from; the last one is the next "
            "token to come."
        ),
    )


def _after_bars(loaded, result, inspect, step) -> None:
    _attention_and_lens(loaded, inspect, step)
    _attribution(loaded, result, inspect, step)
    _history(loaded, result)


def _attribution(loaded, result, inspect: int, step) -> None:
    """Any step's token over its context (the first opens: why that first token; the last, not yet appended, is
    the one Step will choose)."""
    targets = []
    for k in range(1, len(result.steps) + 1):
        token, to_come = stepper.marked_token(result, k)
        name = display_token(loaded.tokenizer, token)
        label = f"Step {k}: {name!r}" + (" (next, not yet appended)" if to_come else "")
        targets.append((label, np.asarray(result.steps[k - 1].context_ids), Target.next_token(token_id=token)))
    attribution_panel.panel(VIEW, loaded, "decoder", targets)


def _prompt_ids(loaded, text: str):
    """The prompt's ids [P], wrapped in the chat template when the student asks for it."""
    has_template = bool(getattr(loaded.tokenizer, "chat_template", None))
    use_chat = st.toggle(
        "Wrap the prompt in the model's chat template (as a user message)",
        value=False,
        key="decoder_chat",
        disabled=not has_template,
        help="Instruct models were fine-tuned on conversations in this format.",
    )
    prompt_ids, prompt_notes = decoder.prompt_ids(loaded, text, use_chat_template=use_chat and has_template)
    notes(prompt_notes)
    return prompt_ids


def _history(loaded, result) -> None:
    if result.generated:
        entropies, chosen_p = history(result)
        VIEW.figure(
            decoding_plots.step_history(
                entropies, chosen_p, [display_token(loaded.tokenizer, t) for t in result.generated]
            ),
            key="decoder_history",
            caption=(
                "Entropy of each step's distribution (how unsure the model was) and the probability of the token "
                "chosen."
            ),
        )


def _text_so_far(loaded, prompt_ids, generated: list[int]) -> None:
    prompt_text = loaded.tokenizer.decode(prompt_ids, skip_special_tokens=False)
    new_text = loaded.tokenizer.decode(generated, skip_special_tokens=False)
    st.markdown("**Text so far** (prompt, then the generated tokens in orange)")
    st.html(
        "<div class='explorer-output' style='font-size:1.15rem;line-height:1.6;padding:0.6rem;"
        "border:1px solid #ddd;border-radius:6px;"
        f"white-space:pre-wrap'>{html.escape(prompt_text)}<span style='color:#b35900;font-weight:600'>"
        f"{html.escape(new_text)}</span></div>"
    )


def _attention_and_lens(loaded, inspect: int, step) -> None:
    context_tokens = [display_token(loaded.tokenizer, i) for i in step.context_ids]
    blocks = step.last_attention.shape[0]  # [L, H, T]
    VIEW.within("decoder_layer", 1, blocks)
    layer = st.slider("Block", 1, blocks, blocks, key="decoder_layer") - 1
    VIEW.figure(
        decoding_plots.context_attention(context_tokens, step.last_attention, layer),
        key="decoder_attention",
        caption="Attention of the newest position over everything before it (causal: it cannot see the future).",
        how_to_read=(
            "Each bar is how much weight the newest token's query gives that earlier token, averaged over the "
            "heads of this block. Many heads put weight on the first token (an 'attention sink'). Attention "
            "weights show where information is read from, not why the model decided."
        ),
    )
    lens = cached_lens(loaded, tuple(int(i) for i in step.context_ids))
    VIEW.depth_lens(
        lens,
        loaded.tokenizer,
        f"Logit lens of step {inspect}: the next token read from every depth (approximation)",
        key="decoder_lens",
        caption=(
            "The model's final norm and output head applied to the newest position's hidden state after each block."
        ),
        how_to_read=(
            "Bars name the token the head would pick if the network stopped at that depth; the orange line is "
            "the probability of the final answer. The head was trained on the last layer only, so earlier "
            "depths are an approximation (the 'logit lens'), often unreadable in the first blocks."
        ),
    )
