"""Answer keys on the experiments page: removing the attention sink, and switching off the strongest
induction heads on repeated made-up words.

The page tokenises its text with at most ``EXPERIMENT_TOKENS`` tokens and needs 3 or more; the keys run
the same interventions (``explorer.adapters.interventions``) on the same ids.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from explorer.adapters import interventions
from explorer.adapters.common import display_token, tokenize
from explorer.adapters.lookup import adapter_for
from explorer.experiments import measure
from explorer.lessons.core import NO, YES, Key, LabRefused, setting

TEXT = "exp_text"
EXPERIMENT_TOKENS = 96  # explorer/ui/experiments/common.py MAX_TOKENS (tests/test_labs.py checks they agree)
# ui/experiments/heads.py INDUCTION_DEMO: made-up words in a fixed order, three times (the test checks they agree)
INDUCTION_TEXT = " ".join(["zebra lantern copper violin meadow quartz pickle saturn."] * 3)
INDUCTION_HEADS = 3


def text_ids(loaded, view: Mapping) -> np.ndarray:
    """The ids the experiments page feeds its tools for the view's text."""
    text = str(setting(view, TEXT, "")).strip()
    ids, _notes = tokenize(loaded, text or " ", limit=EXPERIMENT_TOKENS, keep_end=adapter_for(loaded).keep_end)
    if len(ids) < 3:
        raise LabRefused("Type a longer text: an intervention needs at least 3 tokens to compare.")
    return ids


def strongest_induction_heads(loaded, count: int = INDUCTION_HEADS) -> list[str]:
    """The heads the page's 'Suggest: the 3 strongest induction heads' picks ('L17H3'), strongest first:
    ranked by induction score on repeated random tokens (measure.taxonomy)."""
    scores = np.nan_to_num(measure.taxonomy(loaded).induction)  # [L, H]
    top = np.argsort(-scores.ravel())[:count]
    return [f"L{i // scores.shape[1]}H{i % scores.shape[1]}" for i in top]


def _label(loaded, token_id: int) -> str:
    return display_token(loaded.tokenizer, int(token_id))


def _sink(loaded, view: Mapping):
    ids = text_ids(loaded, view)
    return ids, interventions.sink_removal(loaded, ids)


def sink_next(loaded, view: Mapping, params: Mapping) -> Key:
    """Without attention to the first token, does the prediction after the last token change?"""
    ids, result = _sink(loaded, view)
    before, after = _label(loaded, result.base_top1[-1]), _label(loaded, result.modified_top1[-1])
    changed = before != after
    explanation = (
        f"After the last token ('{_label(loaded, ids[-1])}') the model predicts '{before}'; with every head's "
        f"weight on the first token '{_label(loaded, ids[0])}' removed (and the rest renormalised), it predicts "
        f"'{after}'"
        + (
            ": the sink mattered here."
            if changed
            else f": the same, although the distribution moved (KL {float(result.kl[-1]):.3f} nats at that position)."
        )
    )
    return Key(
        YES if changed else NO,
        explanation,
        {"before": before, "after": after, "kl_last": round(float(result.kl[-1]), 4)},
    )


def sink_flips(loaded, view: Mapping, params: Mapping) -> Key:
    """At how many positions the top-1 prediction flips when the sink is removed."""
    ids, result = _sink(loaded, view)
    flipped = [int(i) for i in np.flatnonzero(result.flipped)]
    listing = ", ".join(
        f"after '{_label(loaded, ids[i])}': '{_label(loaded, result.base_top1[i])}' → "
        f"'{_label(loaded, result.modified_top1[i])}'"
        for i in flipped[:4]
    )
    explanation = (
        f"Of the {len(ids)} positions, {len(flipped)} change their top prediction"
        + (f" ({listing}{' …' if len(flipped) > 4 else ''})" if flipped else "")
        + f". The mean KL divergence between the two runs is {result.mean_kl:.3f} nats: heads that parked their "
        "attention on the first token must now spend it on real tokens, mixing in information they used to ignore."
    )
    return Key(
        float(len(flipped)),
        explanation,
        {"flipped": flipped, "mean_kl": round(result.mean_kl, 4)},
        fields={"tokens": len(ids)},
    )


def sink_loss(loaded, view: Mapping, params: Mapping) -> Key:
    """Does the loss on the text rise or fall when the sink is removed?"""
    _ids, result = _sink(loaded, view)
    base, modified = result.base_loss, result.modified_loss
    rises = modified > base
    explanation = (
        f"The loss (mean −log p of each next token of the text) goes from {base:.3f} to {modified:.3f} nats: it "
        + (
            "rises. The model was trained with its sink; without it, heads that had nothing to read must attend to "
            "something, and the predictions get worse."
            if rises
            else "falls. Removing the sink does not always hurt: on this text the weight it held, spread over the real "
            "tokens, happened to help the next-token guesses."
        )
    )
    return Key("Rises" if rises else "Falls", explanation, {"base": round(base, 4), "modified": round(modified, 4)})


def _heads(view: Mapping) -> list[tuple[int, int]]:
    names = list(setting(view, "exp_heads", []))
    if not names:
        raise LabRefused("Pick the heads to switch off (the page's 'Suggest: the 3 strongest induction heads').")
    return [(int(n[1:].split("H")[0]), int(n.split("H")[1])) for n in names]


def induction_rise(loaded, view: Mapping, params: Mapping) -> Key:
    """By how many nats the loss rises when the view's heads are zeroed."""
    ids, heads = text_ids(loaded, view), _heads(view)
    result = interventions.head_ablation(loaded, ids, heads, "zero")
    rise = result.modified_loss - result.base_loss
    names = ", ".join(f"L{layer}H{h}" for layer, h in heads)
    explanation = (
        f"With heads {names} switched off (their output zeroed), the loss on the text goes from "
        f"{result.base_loss:.2f} to {result.modified_loss:.2f} nats, a change of {rise:+.2f}. "
        + (
            "Induction heads copy what followed an earlier occurrence of the current token: on a text that repeats "
            "itself they predict the repeats, and without them the model can only guess."
            if rise >= 0.5
            else "Little changes: on this text there is little to copy from earlier in it, so the induction heads had "
            "little to do."
        )
    )
    return Key(
        round(rise, 2),
        explanation,
        {"heads": names, "base": round(result.base_loss, 4), "modified": round(result.modified_loss, 4)},
        fields={"heads": names},
    )
