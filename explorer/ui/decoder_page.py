"""Decoder-only page: autoregressive decoding, one token at a time."""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer.adapters import decoder
from explorer.adapters.common import display_token
from explorer.decoding import softmax
from explorer.plots import decoding as decoding_plots
from explorer.ui import common, stepper

EXAMPLES = [
    "The capital of France is",
    "Once upon a time, a little robot",
    "def fibonacci(n):",
    "The three primary colours are",
]


# cache_resource: steps are frozen and read-only, so every rerun shares them instead of
# unpickling a copy of each [V]-sized distribution.
@st.cache_resource(max_entries=16, show_spinner=False)  # [L+1, V]: 6 MB each for SmolLM2
def cached_lens(_loaded, model_id: str, device: str, context: tuple[int, ...]):
    step = cached_step(_loaded, model_id, device, context)
    lens = softmax(decoder.logit_lens(_loaded, step.last_hidden))  # [L+1, V]
    lens.flags.writeable = False  # shared by every session, like the steps
    return lens


# cache_resource: steps are frozen and read-only, so every rerun shares them instead of
# unpickling a copy of each [V]-sized distribution.
@st.cache_resource(max_entries=384, show_spinner=False)  # ~0.4 MB each: logits and probs over V
def cached_step(_loaded, model_id: str, device: str, context: tuple[int, ...]):
    return decoder.step(_loaded, np.asarray(context, dtype=np.int64))


def render() -> None:
    st.title("Decoder-only: writing one token at a time")
    st.markdown(
        "A decoder-only model (the GPT family) reads the text so far and outputs a probability for **every** "
        "token in its vocabulary. A decoding rule picks one, it is appended, and the model runs again. "
        "Each token may only attend to itself and earlier tokens (causal attention)."
    )
    common.start_view()
    loaded = common.load_for_page("decoder")
    if loaded is None:
        return
    common.run_safely(lambda: _body(loaded))
    common.run_safely(lambda: common.show_architecture(loaded))
    common.export_view("Decoder-only view")


def _body(loaded) -> None:
    cleaned = common.text_input("decoder_prompt", "Prompt", EXAMPLES[0], EXAMPLES)
    if cleaned is None:
        return
    has_template = bool(getattr(loaded.tokenizer, "chat_template", None))
    use_chat = st.toggle("Wrap the prompt in the model's chat template (as a user message)", value=False,
                         key="decoder_chat", disabled=not has_template,
                         help="Instruct models were fine-tuned on conversations in this format.")
    prompt_ids, notes = decoder.prompt_ids(loaded, cleaned.text, use_chat_template=use_chat and has_template)
    common.notes(notes)
    settings = stepper.sampling_controls("decoder")
    labels = lambda ids: {i: display_token(loaded.tokenizer, i) for i in ids}  # noqa: E731
    result = stepper.run_stepper(
        "decoder", (loaded.model_id, loaded.device, tuple(prompt_ids.tolist())), prompt_ids,
        step_fn=lambda ctx: cached_step(loaded, loaded.model_id, loaded.device, ctx),
        settings_for=lambda i: settings, eos_ids=decoder.eos_ids(loaded), labels_fn=labels, auto_tokens=8,
        max_tokens=max(0, min(128, decoder.context_limit(loaded) - len(prompt_ids))),
    )
    prompt_text = loaded.tokenizer.decode(prompt_ids, skip_special_tokens=False)
    new_text = loaded.tokenizer.decode(result.generated, skip_special_tokens=False)
    st.markdown("**Text so far** (prompt, then the generated tokens in orange)")
    st.html(
        "<div style='font-size:1.15rem;line-height:1.6;padding:0.6rem;border:1px solid #ddd;border-radius:6px;white-space:pre-wrap'>"
        f"{_escape(prompt_text)}<span style='color:#b35900;font-weight:600'>{_escape(new_text)}</span></div>"
    )

    n = len(result.generated)
    inspect = st.slider("Inspect step", 1, n + 1, n + 1, key="decoder_inspect",
                        help="Step k shows the distribution the k-th generated token was chosen from; the last one is the next token to come.") if n else 1
    step = result.steps[inspect - 1]
    chosen = result.generated[inspect - 1] if inspect <= n else None
    kept = stepper.kept_mask(step, result.settings[inspect - 1])
    top = [int(i) for i in np.argsort(-step.probs)[:15]]
    label_ids = top + ([chosen] if chosen is not None else [])
    common.show_figure(
        decoding_plots.next_token_bars(step.probs, kept, chosen, labels(label_ids)), key="decoder_bars",
        caption=f"Step {inspect}: the model's probabilities for the next token after {len(step.context_ids)} tokens of context "
                f"(forward took {step.seconds * 1000:.0f} ms).",
        how_to_read="Bars are the model's raw probabilities (temperature 1). Blue tokens are still allowed by the decoding "
                    "rules, grey hatched ones were removed by top-k or top-p, and the orange bar is the token that was chosen. "
                    "Greedy decoding always takes the longest bar.",
    )
    context_tokens = [display_token(loaded.tokenizer, i) for i in step.context_ids]
    layer = st.slider("Block", 1, step.last_attention.shape[0], step.last_attention.shape[0], key="decoder_layer") - 1
    common.show_figure(
        decoding_plots.context_attention(context_tokens, step.last_attention, layer), key="decoder_attention",
        caption="Attention of the newest position over everything before it (causal: it cannot see the future).",
        how_to_read="Each bar is how much weight the newest token's query gives that earlier token, averaged over the "
                    "heads of this block. Many heads put weight on the first token (an 'attention sink'). Attention "
                    "weights show where information is read from, not why the model decided.",
    )
    lens = cached_lens(loaded, loaded.model_id, loaded.device, tuple(int(i) for i in step.context_ids))
    common.show_depth_lens(
        lens, loaded.tokenizer, f"Logit lens of step {inspect}: the next token read from every depth (approximation)",
        key="decoder_lens",
        caption="The model's final norm and output head applied to the newest position's hidden state after each block.",
        how_to_read="Bars name the token the head would pick if the network stopped at that depth; the orange line is the "
                    "probability of the final answer. The head was trained on the last layer only, so earlier depths are "
                    "an approximation (the 'logit lens'), often unreadable in the first blocks.",
    )
    if n:
        entropies, chosen_p = stepper.history(result)
        common.show_figure(
            decoding_plots.step_history(entropies, chosen_p, [display_token(loaded.tokenizer, t) for t in result.generated]),
            key="decoder_history",
            caption="Entropy of each step's distribution (how unsure the model was) and the probability of the token chosen.",
        )


def _escape(text: str) -> str:
    import html

    return html.escape(text)
