"""The replication cards, each built from what its prompt set's reading holds (explorer.experiments.readings).

A card is a statistic of traces read once (``statistics``, pure numpy) beside its null, plus what it
says that does not depend on the model: its ``Spec`` (name, method, prompt set, what chance and the
null are, which paper). The builders here run no model; ``loaded`` gives them only the model's id
(its cards' own seeded nulls) and its tokenizer's ids (special tokens, the vocabulary's size).

Every card carries its per-prompt values, a resampled null per prompt that keeps what the
statistic depends on besides the finding (shuffled positions, random visible keys, permuted
labels, random signs) and so a verdict by one rule (``statistics.VERDICT_RULE``).
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass

import numpy as np

from explorer.adapters import family
from explorer.experiments import statistics as stats
from explorer.experiments.papers import FINDINGS, SOURCES
from explorer.experiments.prompts import RANDOM_PERIOD
from explorer.experiments.readings import MASK_EVERY
from explorer.experiments.statistics import Card, mean_and_spread

PUNCTUATION = set(".,;:!?")
DEPTH_AXIS = "depth (0 = embeddings, d = output of block d)"
MOE_AXIS = "MoE layer (0 = the first MoE layer)"
LAYER_AXIS = "layer (0 = first block)"
DRAWS = stats.NULL_DRAWS


@dataclass(frozen=True)
class Spec:
    """What a card says whatever the model: its texts (``{name}`` fields filled in per model by
    ``card``), the paper it tests (a ``SOURCES`` key) and which way the finding lies."""

    name: str
    method: str
    prompt_set: str
    chance_note: str
    null_note: str
    paper: str
    layer_axis: str = LAYER_AXIS
    direction: int = 1


SPECS = {
    "sink": Spec(
        "attention sink (on {sink})",
        "attention mass on each candidate key (the first token, each special token), every layer and head of "
        "each sentence's trace",
        "everyday-sentences",
        "uniform attention over the keys each query may see",
        "the same attention on as many random keys as {candidate} takes, among those each query may see "
        "(same length and causal positions)",
        "sink",
    ),
    "induction-loss": Spec(
        "induction: loss on the repeat",
        "next-token loss of every token of each copy but its first (nothing earlier predicts it)",
        "repeated-random-tokens",
        "no copying: both copies are equally unpredictable",
        "the copy labels permuted over the prompt's scored tokens (the same tokens and losses, no second copy)",
        "induction",
    ),
    "induction-head": Spec(
        "induction: best head",
        "attention of every head from each token of the second copy, chosen as the head with the highest mean "
        "over the prompts",
        "repeated-random-tokens",
        "uniform causal attention",
        "the best head (max over all heads, as the measured one is) scored on a random earlier key instead of the "
        "token after the earlier occurrence",
        "induction",
    ),
    "clark": Spec(
        "BERT looks at {kind}",
        "attention of every layer and head on '[CLS] A [SEP] B [SEP]' inputs",
        "sentence-pairs",
        "uniform attention: the share of such tokens",
        "the same attention on as many random positions as the prompt has {kind} tokens",
        "clark",
    ),
    "anisotropy": Spec(
        "anisotropy",
        "every pair of tokens from two different sentences, the first position (and an encoder's [SEP]) left out",
        "everyday-sentences",
        "isotropic vectors",
        "the same vectors with their signs flipped at random (the same angles, no shared direction)",
        "anisotropy",
        DEPTH_AXIS,
    ),
    "self-similarity": Spec(
        "self-similarity minus anisotropy",
        "the word's vector in each context against the same word in the others",
        "word-in-contexts",
        "the word is no more like itself than tokens of different sentences are alike",
        "each other occurrence of the word replaced by a random other token of the same sentence",
        "anisotropy",
        DEPTH_AXIS,
    ),
    "depth": Spec(
        "prediction depth",
        "{method}",
        "everyday-sentences",
        "ceiling, not chance: settled only at the output (lower = earlier)",
        "each position's target replaced by another position's final prediction (the same predicted tokens and "
        "their frequencies)",
        "depth",
        direction=-1,
    ),
    "routing": Spec(
        "{name}",
        "the routes of every token of each sentence, every MoE layer",
        "everyday-sentences",
        "{note}",
        "token positions shuffled within the sentence (each token keeps its experts, so the load stays the "
        "sentence's own)",
        "mixtral",
        MOE_AXIS,
    ),
    "token-id": Spec(
        "token-id routing",
        "the most common first expert of each id in the fitting sentences (ids never seen: the most used expert), "
        "scored on each test sentence",
        "austen-held-out",
        "always the fitting text's most used expert",
        "the table fitted on the fitting sentences' first choices shuffled over their positions (each expert keeps "
        "its load, each id its frequency)",
        "openmoe",
        MOE_AXIS,
    ),
}


def _rng(key: str, model_id: str = "") -> np.random.Generator:
    """A card's own seeded generator: its null draws do not depend on which cards ran before."""
    return np.random.default_rng([stats.NULL_SEED, zlib.crc32(f"{model_id}|{key}".encode())])


def card(
    loaded,
    key: str,
    spec: Spec,
    per_prompt,
    null,
    quantity: str,
    chance: float,
    finding: str | None = None,
    paper: str | None = None,
    values: dict | None = None,
    **arrays,
) -> Card:
    """A card from its per-prompt values [P] and null [P, D] (a list of [D]): the headline is their
    mean, the spread their standard deviation over the prompts; the texts are ``spec``'s with
    ``values`` filled in, the paper's words ``FINDINGS[finding or key]``; ``arrays``: by_layer,
    null_by_layer."""
    per_prompt = np.asarray(per_prompt, dtype=np.float64)
    measured, spread = mean_and_spread(per_prompt)
    text = {f: getattr(spec, f).format(**(values or {})) for f in ("name", "method", "chance_note", "null_note")}
    return Card(key=key, measured=measured, spread=spread, per_prompt=per_prompt,
                null=np.stack(null).astype(np.float64), model_id=loaded.model_id, quantity=quantity, chance=chance,
                prompt_set=spec.prompt_set, layer_axis=spec.layer_axis, direction=spec.direction,
                source=SOURCES[paper or spec.paper], published_text=FINDINGS[finding or key], **text,
                **arrays)  # fmt: skip


def _content_positions(trace) -> np.ndarray:
    # leave out the first position (a decoder's sink, an encoder's [CLS]) and an encoder's final [SEP]
    t = len(trace.token_ids)
    return np.arange(1, t) if trace.causal else np.arange(1, t - 1)


def _special_tokens(loaded) -> dict[int, str]:
    tok = loaded.tokenizer
    if tok is None:
        return {}
    return {int(i): str(tok.convert_ids_to_tokens(int(i))) for i in tok.all_special_ids}


# --- attention sink, by family ------------------------------------------------------------------


def _sink_candidates(loaded, traces) -> dict[str, list[np.ndarray | None]]:
    """Every key a sink may sit on, per prompt: the first token, and each special token elsewhere
    ([SEP] at an encoder's end); a [T] mask per prompt, None where the prompt lacks it."""
    specials = _special_tokens(loaded)
    firsts = {specials.get(int(t.token_ids[0])) for t in traces}
    first = "first token" + (f" ({firsts.pop()})" if len(firsts) == 1 and None not in firsts else "")
    out: dict[str, list] = {first: []}
    for i, trace in enumerate(traces):
        mask = np.zeros(len(trace.token_ids), dtype=bool)
        mask[0] = True
        out[first].append(mask)
        for token, name in specials.items():
            where = trace.token_ids == token
            where[0] = False
            if where.any():
                out.setdefault(name, [None] * i)
            if name in out:
                out[name].append(where if where.any() else None)
    return out


def sink_card(loaded, traces, prompt_set: str = "everyday-sentences") -> Card:
    """Attention on each candidate sink; the card reports the largest (the model's sink)."""
    candidates = _sink_candidates(loaded, traces)
    mass = {
        name: np.array([np.nan if m is None else stats.key_mass(t.attentions, m, t.causal) for t, m in zip(traces, ms)])
        for name, ms in candidates.items()
    }  # name -> [P]
    sink = max(mass, key=lambda name: np.nanmean(mass[name]))
    pairs = [(t, m) for t, m in zip(traces, candidates[sink]) if m is not None]
    rng = _rng("sink", loaded.model_id)
    null = [stats.key_mass_null(t.attentions, m, t.causal, DRAWS, rng) for t, m in pairs]
    by_layer = np.mean(
        [
            t.attentions[:, :, stats.scored_queries(len(m), t.causal)][..., m].sum(-1).mean(axis=(1, 2))
            for t, m in pairs
        ],
        axis=0,
    )  # [L]
    others = ", ".join(f"{name} {np.nanmean(v):.3f}" for name, v in mass.items())
    which = f"the largest of {others}" if len(mass) > 1 else "the only candidate: no special token in these prompts"
    paper = "sink" if sink.startswith("first token") else "sink-sep"
    spec = dataclasses.replace(SPECS["sink"], prompt_set=prompt_set)
    return card(
        loaded, "sink", spec, mass[sink][np.isfinite(mass[sink])], null,
        f"attention on the model's sink, {sink}: {which} (mean over layers, heads and queries)",
        float(np.mean([stats.uniform_key_mass(m, t.causal) for t, m in pairs])),
        finding=paper, paper=paper, values={"sink": sink.replace("first token", "the first token"), "candidate": sink},
        by_layer=by_layer,
    )  # fmt: skip


# --- induction (Olsson et al.) ------------------------------------------------------------------


def induction_cards(loaded, traces, starts: list[int], period: int = RANDOM_PERIOD) -> list[Card]:
    """The loss drop on the repeat and the best induction head, from the traces (with logits) of
    repeated random tokens whose first copy starts at ``starts``."""
    vocab = int(loaded.model.config.vocab_size)
    losses = [stats.copy_token_losses(t.logits, t.token_ids, s, period) for t, s in zip(traces, starts)]
    rng = _rng("induction-loss", loaded.model_id)
    loss_null = [stats.copy_label_null(first, second, DRAWS, rng) for first, second in losses]
    scores = np.stack([stats.induction_scores(t.attentions, t.token_ids) for t in traces])  # [P, L, H]
    best = np.unravel_index(np.nanargmax(scores.mean(0)), scores.shape[1:])
    rng = _rng("induction-head", loaded.model_id)
    head_null = [stats.induction_head_null(t.attentions, t.token_ids, DRAWS, rng) for t in traces]
    first_mean = np.mean([f.mean() for f, _ in losses])
    second_mean = np.mean([s.mean() for _, s in losses])
    return [
        card(
            loaded, "induction-loss", SPECS["induction-loss"], [f.mean() - s.mean() for f, s in losses], loss_null,
            f"loss on the first copy minus loss on the second copy, nats (first {first_mean:.2f}, second "
            f"{second_mean:.2f}; log V = {np.log(vocab):.2f})",
            0.0,
        ),
        card(
            loaded, "induction-head", SPECS["induction-head"], scores[:, best[0], best[1]], head_null,
            f"induction score of the strongest head (layer {best[0]}, head {best[1]}): attention from a repeated "
            "token to the token after its earlier occurrence",
            float(np.mean([stats.uniform_induction_score(t.token_ids) for t in traces])),
            by_layer=scores.mean(0),
        ),
    ]  # fmt: skip


def taxonomy_from(trace) -> stats.Taxonomy:
    """Head kinds of one trace of repeated random tokens (so induction heads can show), sink removed."""
    return stats.head_taxonomy(trace.attentions, trace.token_ids, causal=trace.causal)


# --- "What does BERT look at?" (Clark et al. 2019) --------------------------------------------


def clark_cards(loaded, traces) -> list[Card]:
    """[CLS], [SEP] and punctuation mass by layer over sentence pairs read as two segments."""
    tok = loaded.tokenizer
    out = []
    for kind in ("[CLS]", "[SEP]", "punctuation"):
        masks = [
            np.array([token in PUNCTUATION for token in t.tokens]) if kind == "punctuation"
            else t.token_ids == (tok.cls_token_id if kind == "[CLS]" else tok.sep_token_id)
            for t in traces
        ]  # fmt: skip
        rng = _rng(f"clark-{kind}", loaded.model_id)
        by_layer = np.mean([stats.attention_to_keys(t.attentions, m) for t, m in zip(traces, masks)], axis=0)  # [L]
        out.append(
            card(
                loaded, kind, SPECS["clark"], [stats.key_mass(t.attentions, m, False) for t, m in zip(traces, masks)],
                [stats.key_mass_null(t.attentions, m, False, DRAWS, rng) for t, m in zip(traces, masks)],
                f"attention mass on {kind}, mean over layers, heads and queries (peak {by_layer.max():.2f} at layer "
                f"{int(by_layer.argmax())})",
                float(np.mean([m.mean() for m in masks])), values={"kind": kind}, by_layer=by_layer,
            )
        )  # fmt: skip
    return out


# --- anisotropy and self-similarity (Ethayarajh 2019) -----------------------------------------------


def anisotropy_card(loaded, traces) -> Card:
    vectors = [t.hidden_states[:, _content_positions(t)] for t in traces]  # each [L+1, T_i, D]
    cosines = stats.cross_prompt_cosine(vectors)  # [P, L+1]
    rng = _rng("anisotropy", loaded.model_id)
    null = []
    for i, own in enumerate(vectors):
        others = np.concatenate([v[-1] for j, v in enumerate(vectors) if j != i])  # [M, D]
        null.append(stats.sign_flip_null(stats.cross_cosines(own[-1], others), DRAWS, rng))
    return card(
        loaded, "anisotropy", SPECS["anisotropy"], cosines[:, -1], null,
        f"mean cosine between a sentence's tokens and the other sentences' tokens, last layer (embeddings "
        f"{cosines[:, 0].mean():.2f})",
        0.0, by_layer=cosines.mean(0),
    )  # fmt: skip


def self_similarity_card(loaded, traces, positions: list[int], groups: list[int]) -> Card | None:
    """Ethayarajh's self-similarity minus anisotropy, one value per context (None with fewer than two
    contexts of one word)."""
    groups = np.asarray(groups)
    if len(traces) < 2 or np.bincount(groups).max() < 2:
        return None

    def at(depth: int, draws: int, rng):
        word = np.stack([t.hidden_states[depth, p] for t, p in zip(traces, positions)])  # [C, D]
        others = [t.hidden_states[depth, np.setdiff1d(_content_positions(t), [p])] for t, p in zip(traces, positions)]
        return stats.self_similarity_by_context(word, others, groups, draws, rng)

    measured, null, baseline = at(-1, DRAWS, _rng("self-similarity", loaded.model_id))
    depths = traces[0].hidden_states.shape[0]
    by_layer = np.array([np.nanmean(at(d, 0, np.random.default_rng(0))[0]) for d in range(depths)])  # [L+1]
    return card(
        loaded, "self-similarity", SPECS["self-similarity"], measured, null,
        f"a word's mean cosine with itself in its other contexts minus the cosine of tokens of different contexts "
        f"({baseline:.2f}), last layer; {len(traces)} contexts of {len(set(groups.tolist()))} words",
        0.0, by_layer=by_layer,
    )  # fmt: skip


# --- prediction depth (logit lens) --------------------------------------------------------------

# How each card step that measures prediction depth reads its lens (family.CARD_STEPS).
DEPTH_METHODS = {
    family.SENTENCES: "the logit lens (final norm and output head) at every depth of every position of each sentence",
    family.MASKED_SENTENCES: f"the masked-language head at every depth of every {MASK_EVERY}th ordinary token, masked",
    family.TRANSLATIONS: "the decoder's lens at every depth of every position of its greedy output for each sentence",
}


def prediction_depth_card(
    loaded, lens: list[np.ndarray], step: str = family.SENTENCES, prompt_set: str = "everyday-sentences"
) -> Card:
    """Settled depth from each prompt's lens top-1 [L+1, T] (matched prompts across the families:
    the same everyday sentences, read as each family reads them; ``step``: the card step whose lens
    it is, DEPTH_METHODS)."""
    depths = [stats.settled_depth(top) for top in lens]  # each [T]
    rng = _rng("depth", loaded.model_id)
    null = [stats.settled_depth_null(d, top[-1], DRAWS, rng) for d, top in zip(depths, lens)]
    return card(
        loaded, "depth", dataclasses.replace(SPECS["depth"], prompt_set=prompt_set), [d.mean() for d in depths], null,
        "first depth from which every later depth's lens top-1 equals the final prediction, as a fraction of the "
        "blocks (lower = earlier)",
        1.0, values={"method": DEPTH_METHODS[step]},
    )  # fmt: skip


# --- Mixtral's routing analysis (Jiang et al. 2024, section 5) --------------------------------


def routing_cards(loaded, traces) -> list[Card]:
    routers = [t.router for t in traces]
    e, k = routers[0].num_experts, routers[0].top_k
    out = []
    for key, name, statistic, chance, note in (
        ("same-first", "Mixtral: same first expert", stats.consecutive_same_first, stats.chance_same_first(e),
         f"1/N, N = {e}: uniform load"),
        ("topk-overlap", f"Mixtral: top-{k} sets overlap", stats.consecutive_topk_overlap,
         stats.chance_topk_overlap(e, k), f"1 - C(N-k,k)/C(N,k), N = {e}, k = {k}: uniform load"),
        ("first-in-topk", f"Mixtral: next first choice in top-{k}", stats.consecutive_first_in_topk, k / e,
         f"k/N, N = {e}, k = {k}: uniform load"),
    ):  # fmt: skip
        rng = _rng(key, loaded.model_id)
        values = np.stack([statistic(r.chosen) for r in routers])  # [P, M]
        nulls = np.stack([stats.shuffled_positions_null(r.chosen, statistic, DRAWS, rng) for r in routers])  # [P, D, M]
        out.append(
            card(
                loaded, key, SPECS["routing"], values.mean(axis=1), nulls.mean(axis=2),
                "share of neighbouring tokens, mean over MoE layers", chance, values={"name": name, "note": note},
                by_layer=values.mean(axis=0), null_by_layer=nulls.mean(axis=(0, 1)),
            )
        )  # fmt: skip
    return out


# --- token-id routing (OpenMoE) -----------------------------------------------------------------


def token_id_card(loaded, fit_traces, test_traces) -> Card:
    """A table token id -> most common first expert, fitted on the held-out fitting sentences,
    scored on each held-out test sentence."""
    fit_ids = np.concatenate([t.token_ids for t in fit_traces])
    fit_first = np.concatenate([t.router.chosen[..., 0] for t in fit_traces], axis=1)  # [M, N]
    test = [(t.token_ids, t.router.chosen[..., 0]) for t in test_traces]
    experts = fit_traces[0].router.num_experts
    result = stats.token_id_routing(fit_ids, fit_first, test, experts, DRAWS, _rng("token-id", loaded.model_id))
    return card(
        loaded, "token-id", SPECS["token-id"], result.per_prompt, result.null,
        f"accuracy predicting the router's first choice from the token id alone, mean over MoE layers "
        f"({result.coverage:.0%} of test ids seen in fitting; {len(fit_ids)} fitting tokens)",
        float(result.majority.mean()), by_layer=result.by_layer,
    )  # fmt: skip
