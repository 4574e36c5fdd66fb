"""Answer keys on the decoder-only page: the next-token distribution under the decoding rules, causal
attention of the newest token, and the logit lens.

The page's first step ('Inspect step' 1) is the model's distribution right after the prompt: every key
here reads that step (``decoder.step`` on the prompt's ids, with the chat template when the view turns it
on) and applies the rules with the same functions Step uses (``explorer.decoding``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from explorer.adapters import decoder
from explorer.adapters.common import display_token
from explorer.decoding import SamplingSettings, choose_token, depth_readout, drawn_distribution, rules_text
from explorer.lessons.core import NO, YES, Key, LabRefused, clamp, distinct, percent, setting, shuffled

PROMPT = "decoder_prompt"


def prompt_ids(loaded, view: Mapping) -> np.ndarray:
    """The prompt's ids [P] as the page feeds them (wrapped in the chat template when the view asks)."""
    text = str(setting(view, PROMPT, "")).strip()
    if not text:
        raise LabRefused("Type a prompt first: this question reads the prompt on the decoder page.")
    chat = bool(setting(view, "decoder_chat", False)) and bool(getattr(loaded.tokenizer, "chat_template", None))
    return decoder.prompt_ids(loaded, text, use_chat_template=chat)[0]


def first_step(loaded, view: Mapping):
    """(prompt ids [P], the step after them): what 'Inspect step 1' shows."""
    ids = prompt_ids(loaded, view)
    return ids, decoder.step(loaded, ids)


def rules(view: Mapping, prefix: str = "decoder") -> SamplingSettings:
    """The decoding rules the view sets (the widgets' defaults where it sets none)."""
    return SamplingSettings(
        greedy=bool(setting(view, f"{prefix}_greedy", True)),
        temperature=float(setting(view, f"{prefix}_temperature", 1.0)),
        top_k=int(setting(view, f"{prefix}_top_k", 0)),
        top_p=float(setting(view, f"{prefix}_top_p", 1.0)),
        seed=int(setting(view, f"{prefix}_seed", 0)),
    )


def label(loaded, token_id: int) -> str:
    return display_token(loaded.tokenizer, int(token_id))


def _top(loaded, probs: np.ndarray, count: int) -> list[tuple[str, float]]:
    order = [int(i) for i in np.argsort(-probs)[: 4 * count]]
    labels = [label(loaded, i) for i in order]
    return [(w, float(probs[order[labels.index(w)]])) for w in distinct(labels, count)]


def _listing(ranked) -> str:
    return ", ".join(f"'{w}' {100 * p:.1f}%" for w, p in ranked)


def next_token(loaded, view: Mapping, params: Mapping) -> Key:
    """The token greedy decoding appends first; the four most likely tokens as choices."""
    _ids, step = first_step(loaded, view)
    ranked = _top(loaded, step.probs, 4)
    chosen = label(loaded, int(np.argmax(step.logits)))
    explanation = (
        f"The model gives every one of its {len(step.probs):,} tokens a probability; the four highest are "
        f"{_listing(ranked)}. Greedy decoding always appends the most likely one, '{chosen}' (spaces show as ␣: "
        "most words start with the space before them)."
    )
    return Key(
        chosen,
        explanation,
        {"ranked": [[w, round(p, 4)] for w, p in ranked]},
        shuffled([w for w, _ in ranked], "next-token"),
        {"prompt": str(setting(view, PROMPT, "")).strip()},
    )


def drawn_top_probability(loaded, view: Mapping, params: Mapping) -> Key:
    """Probability of the most likely token in the distribution Step draws from (after the rules)."""
    _ids, step = first_step(loaded, view)
    settings = rules(view)
    drawn, _kept = drawn_distribution(step.logits, settings)  # [V] float64
    top = int(np.argmax(step.logits))
    raw, after = float(step.probs[top]), float(drawn[top])
    moved = "rises" if after > raw + 5e-4 else "falls" if after < raw - 5e-4 else "stays"
    explanation = (
        f"Raw (grey bar), '{label(loaded, top)}' has {100 * raw:.1f}%. Under {rules_text(settings)} the logits are "
        f"divided by {settings.temperature:g} before the softmax, so the gaps between tokens grow "
        f"{'larger' if settings.temperature < 1 else 'smaller'}: its share {moved} to {100 * after:.1f}% (blue bar)."
    )
    return Key(
        percent(after),
        explanation,
        {"token": label(loaded, top), "raw": round(raw, 4), "drawn": round(after, 4)},
        fields={"temperature": f"{settings.temperature:g}", "token": label(loaded, top)},
    )


def pool_size(loaded, view: Mapping, params: Mapping) -> Key:
    """How many tokens Step can still draw after temperature, top-k and top-p."""
    _ids, step = first_step(loaded, view)
    settings = rules(view)
    drawn, kept = drawn_distribution(step.logits, settings)
    pool = [int(i) for i in np.flatnonzero(kept)]
    pool.sort(key=lambda i: -drawn[i])
    shown = ", ".join(f"'{label(loaded, i)}' {100 * drawn[i]:.1f}%" for i in pool[:5])
    explanation = (
        f"Top-p {settings.top_p:g} keeps the smallest set of most likely tokens whose probabilities (after "
        f"temperature {settings.temperature:g}) add up to at least {settings.top_p:g}: here {len(pool):,} token(s), "
        f"{shown}{' …' if len(pool) > 5 else ''}. A confident prompt leaves one or two; an open one leaves many."
    )
    return Key(
        float(len(pool)),
        explanation,
        {"pool": len(pool)},
        fields={"temperature": f"{settings.temperature:g}", "top_p": f"{settings.top_p:g}"},
    )


def sampled_is_greedy(loaded, view: Mapping, params: Mapping) -> Key:
    """Does the first sampled token (the view's rules and seed) equal greedy's?"""
    _ids, step = first_step(loaded, view)
    settings = rules(view)
    if settings.greedy:
        raise LabRefused("Turn Greedy off: this question is about sampling.")
    sampled, greedy = choose_token(step.logits, settings, 0), int(np.argmax(step.logits))
    drawn, _kept = drawn_distribution(step.logits, settings)
    explanation = (
        f"Greedy takes '{label(loaded, greedy)}'. Sampling draws from the blue bars, where it has "
        f"{100 * drawn[greedy]:.1f}%; with seed {settings.seed} the draw lands on '{label(loaded, sampled)}' "
        f"({100 * drawn[sampled]:.1f}%). The same seed and step always give the same draw, so a class sees one result."
    )
    return Key(
        YES if sampled == greedy else NO,
        explanation,
        {
            "greedy": label(loaded, greedy),
            "sampled": label(loaded, sampled),
            "greedy_share": round(float(drawn[greedy]), 4),
        },
        fields={"temperature": f"{settings.temperature:g}", "seed": settings.seed},
    )


# --- inside the step: attention of the newest token, the logit lens ------------------------------------------


def _block(loaded, view: Mapping, step) -> int:
    blocks = step.last_attention.shape[0]  # [L, H, T]
    return clamp(setting(view, "decoder_layer", blocks), 1, blocks)


def most_attended(loaded, view: Mapping, params: Mapping) -> Key:
    """Which context token the newest position attends to most in the view's block (mean over heads)."""
    ids, step = first_step(loaded, view)
    block = _block(loaded, view, step)
    row = step.last_attention[block - 1].mean(axis=0)  # [T]
    order = [int(i) for i in np.argsort(-row, kind="stable")[:4]]
    labels = [f"{i}: {label(loaded, ids[i])}" for i in order]
    explanation = (
        f"In block {block}, averaged over its {step.last_attention.shape[1]} heads, the newest token "
        f"('{label(loaded, ids[-1])}', position {len(ids) - 1}) gives "
        + ", ".join(f"{100 * row[i]:.0f}% to '{lab}'" for i, lab in zip(order, labels))
        + ". It can only look left (causal mask). "
        + (
            "Most of it goes to the very first token, whatever it says: an attention sink, where heads park "
            "attention they have no use for."
            if order[0] == 0
            else ""
        )
    )
    return Key(
        labels[0],
        explanation.strip(),
        {"block": block, "weights": [round(float(row[i]), 4) for i in order]},
        shuffled(labels, "most-attended"),
        {"block": block},
    )


def sink_share(loaded, view: Mapping, params: Mapping) -> Key:
    """Share of the newest token's attention on the first token, over every block and head."""
    ids, step = first_step(loaded, view)
    first = step.last_attention[:, :, 0]  # [L, H]
    share, uniform = float(first.mean()), 1.0 / len(ids)
    by_block = first.mean(axis=1)
    explanation = (
        f"Averaged over all {first.shape[0]} blocks and {first.shape[1]} heads, the newest token puts "
        f"{100 * share:.0f}% of its attention on the first token '{label(loaded, ids[0])}'; spread evenly over the "
        f"{len(ids)} tokens it may see, it would be {100 * uniform:.0f}%. Per block it ranges from "
        f"{100 * by_block.min():.0f}% (block {int(by_block.argmin()) + 1}) to {100 * by_block.max():.0f}% "
        f"(block {int(by_block.argmax()) + 1})."
    )
    return Key(
        percent(share),
        explanation,
        {"share": round(share, 4), "uniform": round(uniform, 4)},
        fields={"blocks": first.shape[0], "heads": first.shape[1]},
    )


def lens_depth(loaded, view: Mapping, params: Mapping) -> Key:
    """The block from which the logit lens ranks the model's final answer first and keeps it there."""
    _ids, step = first_step(loaded, view)
    readout = depth_readout(decoder.logit_lens(loaded, step.last_hidden))  # from logits [L+1, V]
    tops = readout.top_ids  # [L+1]: depth 0 = embeddings, depth d = after block d
    settled = next(d for d in range(len(tops)) if np.all(tops[d:] == readout.final_id))
    first = int(np.argmax(tops == readout.final_id))
    answer = label(loaded, readout.final_id)
    before = label(loaded, tops[settled - 1]) if settled > 0 else ""
    explanation = (
        f"The model's answer is '{answer}'. Read through the final norm and output head, the hidden state after "
        f"block {settled} already ranks it first, and every later block keeps it there"
        + (f" (after block {settled - 1} the lens said '{before}')" if settled > 0 else "")
        + (
            f". It had reached the top once before, at depth {first} (0 = the embeddings), then lost it"
            if first < settled
            else ""
        )
        + f". Its probability is {100 * readout.final_probs[max(settled - 1, 0)]:.1f}% one depth earlier and "
        f"{100 * readout.final_probs[-1]:.1f}% at the output."
    )
    return Key(
        float(settled),
        explanation,
        {"settled": settled, "first": first, "answer": answer, "blocks": len(tops) - 1},
        fields={"blocks": len(tops) - 1},
    )
