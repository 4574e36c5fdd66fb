"""Answer keys on the Mixture-of-Experts page (routes, load) and on what an MoE costs (parameters held
against parameters used per token; the top-k sweep on the experiments page; Mixtral 8x7B's published
configuration counted on PyTorch's meta device).

Routes come from ``moe.trace_text`` as on the page; a Switch Transformer's are its encoder's, as the page
shows them. Parameter counts come from the loaded model and ``explorer.models.accounting``: none is typed in.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from explorer.adapters import interventions, moe
from explorer.lessons.core import NO, YES, Key, LabRefused, clamp, percent, setting, shuffled
from explorer.lessons.keys_experiments import text_ids
from explorer.models.accounting import dense_counterpart, explain_totals, gallery, name_count

TEXT = "moe_text"


def routes(loaded, view: Mapping):
    """(the routed stack's trace, its RouterTrace, the view's MoE layer, 0-based)."""
    text = str(setting(view, TEXT, "")).strip()
    if not text:
        raise LabRefused("Type a text first: this question reads the routes of the text on the MoE page.")
    result = moe.trace_text(loaded, text)
    stack = result.encoder if hasattr(result, "encoder") else result  # Switch: the encoder's routes
    layer = clamp(setting(view, "moe_layer", 0), 0, len(stack.router.layer_indices) - 1)
    return stack, stack.router, layer


def _occurrences(stack, word: str) -> list[int]:
    found = [i for i, t in enumerate(stack.tokens) if t in (word, "␣" + word)]
    if not found:
        raise LabRefused(f"This question follows the token '{word}': put it in the text (lower case, as one word).")
    return found


def word_expert(loaded, view: Mapping, params: Mapping) -> Key:
    """The first-choice expert of the first occurrence of the step's word at the view's layer."""
    stack, router, layer = routes(loaded, view)
    word = str(params["word"])
    position = _occurrences(stack, word)[0]
    probs = router.probs[layer, position]  # [E]
    order = [int(e) for e in np.argsort(-probs, kind="stable")[:4]]
    chosen = [int(e) for e in router.chosen[layer, position]]
    explanation = (
        f"At MoE layer {layer} (block {int(router.layer_indices[layer]) + 1}) the router scores the "
        f"{router.num_experts} experts for '{word}' (token {position}): "
        + ", ".join(f"expert {e} {100 * probs[e]:.0f}%" for e in order)
        + f". It keeps the top {router.top_k} ({', '.join(f'expert {e}' for e in chosen)}); the first is expert "
        f"{chosen[0]}. The router reads the token's vector at that depth, so its context counts, not only the word."
    )
    return Key(
        f"expert {chosen[0]}",
        explanation,
        {"position": position, "chosen": chosen, "probs": [round(float(p), 4) for p in probs]},
        shuffled([f"expert {e}" for e in order], "word-expert"),
        {"word": word, "layer": layer},
    )


def word_agrees(loaded, view: Mapping, params: Mapping) -> Key:
    """Do all occurrences of the step's word share their first-choice expert at the view's layer?"""
    stack, router, layer = routes(loaded, view)
    word = str(params["word"])
    positions = _occurrences(stack, word)
    if len(positions) < 2:
        raise LabRefused(f"This question compares the '{word}'s of the text: use '{word}' at least twice.")
    firsts = [int(router.chosen[layer, p, 0]) for p in positions]
    agree = len(set(firsts)) == 1
    explanation = (
        f"The {len(positions)} '{word}'s (tokens {', '.join(map(str, positions))}) go first to experts "
        f"{', '.join(map(str, firsts))} at MoE layer {layer}. "
        + (
            "One token id, one expert: routers often learn to send a frequent token to the same place."
            if agree
            else "The same token id goes to different experts: what came before it changed its vector, and the router "
            "reads the vector."
        )
    )
    return Key(
        YES if agree else NO,
        explanation,
        {"positions": positions, "first_choices": firsts},
        fields={"word": word, "layer": layer},
    )


def experts_used(loaded, view: Mapping, params: Mapping) -> Key:
    """How many experts receive at least one token-slot of the text at the view's layer."""
    stack, router, layer = routes(loaded, view)
    counts = np.bincount(router.chosen[layer].ravel(), minlength=router.num_experts)  # [E] slots per expert
    used = int((counts > 0).sum())
    tokens = len(stack.tokens)
    explanation = (
        f"{tokens} tokens × top-{router.top_k} = {tokens * router.top_k} token-slots at MoE layer {layer}, shared "
        f"out as {', '.join(f'{int(c)}' for c in counts)} (experts 0 to {router.num_experts - 1}): {used} of the "
        f"{router.num_experts} experts do some work. Any text can need any expert, so all of them must sit in "
        "memory even though each token uses only a few."
    )
    return Key(
        float(used),
        explanation,
        {"slots": [int(c) for c in counts]},
        fields={"tokens": tokens, "layer": layer, "experts": router.num_experts},
    )


def busiest_share(loaded, view: Mapping, params: Mapping) -> Key:
    """Share of the layer's token-slots that its busiest expert takes, in percent."""
    stack, router, layer = routes(loaded, view)
    load = router.expert_load()[layer]  # [E], sums to 1
    busiest = int(np.argmax(load))
    explanation = (
        f"At MoE layer {layer}, expert {busiest} takes {100 * load[busiest]:.1f}% of the "
        f"{len(stack.tokens) * router.top_k} token-slots; perfect balance would give every expert "
        f"{100 / router.num_experts:.1f}%. Training adds a load-balancing loss against this, but one short text "
        "can still lean on a few experts."
    )
    return Key(
        percent(load[busiest]),
        explanation,
        {"load": [round(float(x), 4) for x in load], "busiest": busiest},
        fields={"layer": layer, "balanced": f"{100 / router.num_experts:.1f}"},
    )


# --- what it costs -----------------------------------------------------------------------------------------


def _counts(loaded) -> tuple[int, int, int, int]:
    """(parameters in memory, used per token, experts per MoE layer, experts per token) of the loaded model."""
    total, active = moe.parameters(loaded)
    config = loaded.model.config
    return total, active, interventions.num_experts(config), moe.top_k(config)


def held_parameters(loaded, view: Mapping, params: Mapping) -> Key:
    """Parameters the loaded MoE holds in memory, in millions."""
    total, active, experts, k = _counts(loaded)
    explanation = (
        f"Counted from the loaded model's own tensors: {total:,} parameters, every one of its {experts} experts in "
        f"every MoE layer included, although each token is routed to only {k} of them per layer."
    )
    return Key(round(total / 1e6, 2), explanation, {"total": total, "experts": experts, "top_k": k})


def token_parameters(loaded, view: Mapping, params: Mapping) -> Key:
    """Parameters one token passes through (all but the experts it is not routed to), in millions."""
    total, active, experts, k = _counts(loaded)
    explanation = (
        f"Of the {total:,} parameters, a token skips the {experts - k} experts per MoE layer that it is not routed "
        f"to: it passes through {active:,} ({100 * active / total:.0f}%), embeddings, attention and the router "
        f"included. That is the compute per token; the memory is still all {total:,}."
    )
    return Key(round(active / 1e6, 2), explanation, {"total": total, "active": active})


def more_experts_help(loaded, view: Mapping, params: Mapping) -> Key:
    """On the experiments page's top-k sweep: does routing each token to 4 experts lower the loss?"""
    sweep = interventions.top_k_sweep(loaded, text_ids(loaded, view))
    losses = dict(zip(sweep.ks.tolist(), sweep.loss.tolist()))
    active = dict(zip(sweep.ks.tolist(), sweep.active_params.tolist()))
    trained, more = int(sweep.trained_k), int(max(sweep.ks))
    better = losses[more] < losses[trained]
    explanation = (
        f"Trained with top-{trained}, the model's loss on this text is {losses[trained]:.3f} nats at "
        f"{active[trained] / 1e6:.2f} M parameters per token. Sent to {more} experts it computes with "
        f"{active[more] / 1e6:.2f} M and scores {losses[more]:.3f} nats"
        + (
            ": more experts helped here."
            if better
            else ": worse, although it does more work. The other layers learned to expect the mixture of the trained "
            f"top-{trained}, not a blend of {more}."
        )
        + (f" With top-1: {losses[1]:.3f} nats." if 1 in losses else "")
    )
    return Key(
        YES if better else NO,
        explanation,
        {"loss": {str(k): round(v, 4) for k, v in losses.items()}},
        fields={"more": more, "trained": trained},
    )


def _gallery_entry(name: str):
    for acc in gallery():
        if acc.name == name:
            return acc
    raise LabRefused(f"No configuration named {name!r} in the gallery.")


# The gallery's MoE configurations as their papers write them (a file name otherwise)
DISPLAY_NAMES = {"mixtral-8x7b": "Mixtral 8x7B", "olmoe-1b-7b": "OLMoE-1B-7B", "switch-base-8": "Switch-Base-8"}


def _display_name(acc) -> str:
    return DISPLAY_NAMES.get(acc.name, acc.name)


def _billions(n: float) -> str:
    return f"{n / 1e9:.1f} B"


def _published(acc) -> str:
    """What the configuration's source published, in its own words (assets/configs/<name>.json)."""
    published = acc.published
    if not published.get("total_parameters"):
        return ""
    source = published.get("source", "")
    if published["total_parameters"] in source:  # the source already states both figures
        return f" Published: {source}."
    return (
        f" Published: {published['total_parameters']} total, {published.get('active_parameters', '?')} per "
        f"token ({source})."
    )


def gallery_total(loaded, view: Mapping, params: Mapping) -> Key:
    """The total parameters of a published MoE configuration (Mixtral 8x7B by default), counted from its config."""
    acc = _gallery_entry(str(params["config"]))
    dense = dense_counterpart(acc)
    named = name_count(acc)
    wrong = [named[0] * named[1] * 1e9 if named else acc.num_experts * dense, acc.active, dense]
    labels = [_billions(acc.total)] + [_billions(x) for x in wrong if _billions(x) != _billions(acc.total)]
    explanation = (
        f"Counted on PyTorch's meta device from {acc.name}'s configuration: {acc.total:,} parameters. "
        + explain_totals(acc)
        + _published(acc)
    )
    framing = (
        f"{named[0]} experts of a {named[1]:g} B model"
        if named
        else f"{acc.num_experts} experts per layer, {acc.experts_per_token} per token"
    )
    return Key(
        labels[0],
        explanation,
        {"total": acc.total, "active": acc.active, "dense": dense},
        shuffled(labels[:4], "gallery-total"),
        {"name": _display_name(acc), "framing": framing},
    )


def gallery_active(loaded, view: Mapping, params: Mapping) -> Key:
    """Parameters one token passes through in a published MoE configuration, in billions."""
    acc = _gallery_entry(str(params["config"]))
    experts = acc.by_role.get("experts", 0)
    explanation = (
        f"{acc.name}: of its {acc.total / 1e9:.2f} B parameters, {experts / 1e9:.2f} B are experts "
        f"({acc.num_experts} per layer in {acc.moe_layers} layers); a token runs {acc.experts_per_token} of them per "
        f"layer, so it passes through {experts * acc.experts_per_token // acc.num_experts / 1e9:.2f} B of expert "
        f"weights plus the {(acc.total - experts) / 1e9:.2f} B everyone shares: {acc.active / 1e9:.2f} B. "
        + _published(acc).strip()
    )
    return Key(
        round(acc.active / 1e9, 2),
        explanation.strip(),
        {"total": acc.total, "active": acc.active},
        fields={"name": _display_name(acc), "k": acc.experts_per_token, "experts": acc.num_experts},
    )
