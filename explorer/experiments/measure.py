"""The replication cards measured on a loaded model, over the named prompt sets.

Each prompt set is read once: one traced forward per prompt (in padded batches,
``adapters.batched``, equal to the family adapters' own traces), and every card of that set is a
statistic of those traces (``statistics``); the logit lens applies the model's own head to hidden
states already traced, it does not run the model again. A step of the plan is one prompt set: a
page caches each step per (model, prompt set) and shows progress between steps.

Every card carries its per-prompt values, a resampled null per prompt that keeps what the
statistic depends on besides the finding (``statistics``: shuffled positions, random visible keys,
permuted labels, random signs) and so a verdict by one rule (``statistics.VERDICT_RULE``).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from explorer.adapters import batched, decoder, encoder, family, interventions, seq2seq
from explorer.adapters.common import tokenize
from explorer.adapters.lookup import adapter_for
from explorer.experiments import statistics as stats
from explorer.experiments.prompts import (
    MASKED_PAIRS,
    PAIRS,
    PROMPT_SETS,
    RANDOM_PERIOD,
    RANDOM_SEEDS,
    SENTENCE_PAIRS,
    SENTENCES,
    WORD_CONTEXTS,
    Pair,
    held_out,
    repeated_random_tokens,
)
from explorer.experiments.statistics import Card, mean_and_spread
from explorer.models.accounting import account

PUNCTUATION = set(".,;:!?")
DEPTH_AXIS = "depth (0 = embeddings, d = output of block d)"
MOE_AXIS = "MoE layer (0 = the first MoE layer)"
DRAWS = stats.NULL_DRAWS

# What each paper reports, read in the paper's own text (quoted where it gives no table), with
# where; a card whose paper gives no number in its text says so. No value is guessed or read
# off a plot. The numeric ``published`` field stays None: none of these is the same quantity on
# the same kind of model as the card's headline, so the text is shown beside it instead.
NO_NUMBER = "no number in the paper's text (only a figure); left out rather than read off the plot"
FINDINGS = {
    "sink": "Llama-2-7B, attention of the 4096th token: 'the attention scores for the first token are significantly "
    "high, often exceeding half of the total attention, except for the two bottom layers'",
    "sink-sep": "BERT-base: 'over half of BERT's attention in layers 6-10 focuses on [SEP]' (Clark et al. 2019, "
    "section 3.2); StreamingLLM's Appendix H discusses BERT's [SEP] as its sink (no number quoted here)",
    "induction-loss": "a related quantity on natural text, not repeated random tokens: in-context learning score "
    "(loss of the 500th token minus the 50th) 'roughly 0.4 nats' after the induction-head phase change, 'constant "
    "across many different model sizes'",
    "induction-head": NO_NUMBER,
    "[SEP]": "BERT-base: 'over half of BERT's attention in layers 6-10 focuses on [SEP]'",
    "[CLS]": NO_NUMBER,
    "punctuation": NO_NUMBER,
    "anisotropy": "GPT-2: 'the average cosine similarity between uniformly randomly [sampled] words is roughly 0.6 in "
    "layers 2 through 8', and in the last layer 'any two words have on average an almost perfect cosine similarity'",
    "self-similarity": NO_NUMBER,
    "depth": "no published value for this statistic (the 'settled' reading is Baldock et al.'s definition of "
    "prediction depth, with the logit lens in place of their k-NN probes)",
    "same-first": "Mixtral 8x7B on Gutenberg (The Pile): 13.9% / 26.1% / 26.3% at layers 0 / 15 / 31 (random: 12.5%)",
    "topk-overlap": "Mixtral 8x7B on Gutenberg (The Pile), 'first or second choice': 49.5% / 63.1% / 52.2% at "
    "layers 0 / 15 / 31 (random: 1 - 6/8 x 5/7 = 46%)",
    "first-in-topk": "not reported (the project's third view of the same routes)",
    "token-id": "qualitative only: routing decisions 'are predominantly based on token IDs' with 'minimal context "
    "relevance' (no number in the abstract; the section was not read here)",
}
SOURCES = {
    "sink": "Xiao et al. 2023, Efficient Streaming Language Models with Attention Sinks (arXiv 2309.17453), "
    "Appendix F, text on Fig. 12",
    "sink-sep": "Clark et al. 2019, What Does BERT Look At? (arXiv 1906.04341), section 3.2; Xiao et al. 2023 "
    "(arXiv 2309.17453), Appendix H",
    "induction": "Olsson et al. 2022, In-context Learning and Induction Heads (transformer-circuits.pub), Argument 1",
    "clark": "Clark et al. 2019, What Does BERT Look At? (arXiv 1906.04341), section 3.2 and Fig. 2",
    "anisotropy": "Ethayarajh 2019, How Contextual are Contextualized Word Representations? (arXiv 1909.00512), "
    "section 4.1 and Fig. 1",
    "depth": "logit-lens prediction depth (this project's statistic; Baldock et al. 2021, arXiv 2106.09647, define "
    "prediction depth as the depth after which the probes agree)",
    "mixtral": "Jiang et al. 2024, Mixtral of Experts (arXiv 2401.04088v1), section 5, Table 5",
    "openmoe": "Xue et al. 2024, OpenMoE (arXiv 2402.01739), abstract",
}


def _rng(key: str, model_id: str = "") -> np.random.Generator:
    """A card's own seeded generator: its null draws do not depend on which cards ran before."""
    return np.random.default_rng([stats.NULL_SEED, zlib.crc32(f"{model_id}|{key}".encode())])


def _null_stack(nulls: list[np.ndarray]) -> np.ndarray:
    return np.stack(nulls).astype(np.float64)  # [P, D]


def _card(loaded, key: str, per_prompt, null, **fields) -> Card:
    """A card from its per-prompt values [P] and null [P, D]: the headline is their mean, the spread
    their standard deviation over the prompts."""
    per_prompt = np.asarray(per_prompt, dtype=np.float64)
    measured, spread = mean_and_spread(per_prompt)
    return Card(key=key, measured=measured, spread=spread, per_prompt=per_prompt, null=_null_stack(null),
                model_id=loaded.model_id, **fields)  # fmt: skip


# --- reading the prompt sets: one traced forward per prompt ---------------------------------------


def read(loaded, prompts: list[np.ndarray], with_logits: bool = False) -> list:
    """One ForwardTrace per prompt (ids [T_i] each): batched forwards for encoder-only and
    decoder-only models, one forward per prompt through the family adapter otherwise (an
    encoder-decoder: Switch, the translator)."""
    adapter = adapter_for(loaded)
    if adapter.encoder_decoder(loaded):
        return [adapter.trace(loaded, ids, with_logits=False) for ids in prompts]
    return batched.trace_batch(loaded, [np.asarray(p) for p in prompts], with_logits=with_logits)


def sentence_ids(loaded, texts=SENTENCES) -> list[np.ndarray]:
    return [tokenize(loaded, text)[0] for text in texts]


def sentence_traces(loaded, texts=SENTENCES):
    return read(loaded, sentence_ids(loaded, texts))


def random_token_ids(loaded, seed: int, period: int = RANDOM_PERIOD) -> tuple[np.ndarray, int]:
    """Repeated random tokens from the upper 90% of the vocabulary (away from special and
    byte tokens), after the tokenizer's BOS when it has one."""
    vocab = int(loaded.model.config.vocab_size)
    bos = getattr(loaded.tokenizer, "bos_token_id", None) if loaded.tokenizer is not None else None
    return repeated_random_tokens(
        vocab, period=period, seed=seed, low=vocab // 10, prefix=(bos,) if bos is not None else ()
    )


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
    on_first = sink.startswith("first token")
    return _card(
        loaded, "sink", mass[sink][np.isfinite(mass[sink])], null,
        name=f"attention sink (on {sink.replace('first token', 'the first token')})",
        quantity=f"attention on the model's sink, {sink}: {which} (mean over layers, heads and queries)",
        method="attention mass on each candidate key (the first token, each special token), every layer and head of "
        "each sentence's trace",
        prompt_set=prompt_set,
        chance=float(np.mean([stats.uniform_key_mass(m, t.causal) for t, m in pairs])),
        chance_note="uniform attention over the keys each query may see",
        null_note=f"the same attention on as many random keys as {sink} takes, among those each query may see "
        "(same length and causal positions)",
        source=SOURCES["sink" if on_first else "sink-sep"],
        published_text=FINDINGS["sink" if on_first else "sink-sep"],
        by_layer=by_layer,
    )  # fmt: skip


# --- induction (Olsson et al.) ------------------------------------------------------------------


def random_token_prompts(loaded, seeds=RANDOM_SEEDS, period: int = RANDOM_PERIOD) -> list[tuple[np.ndarray, int]]:
    return [random_token_ids(loaded, seed, period) for seed in seeds]


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
        _card(
            loaded, "induction-loss", [f.mean() - s.mean() for f, s in losses], loss_null,
            name="induction: loss on the repeat",
            quantity=f"loss on the first copy minus loss on the second copy, nats (first {first_mean:.2f}, second "
            f"{second_mean:.2f}; log V = {np.log(vocab):.2f})",
            method="next-token loss of every token of each copy but its first (nothing earlier predicts it)",
            prompt_set="repeated-random-tokens",
            chance=0.0,
            chance_note="no copying: both copies are equally unpredictable",
            null_note="the copy labels permuted over the prompt's scored tokens (the same tokens and losses, no "
            "second copy)",
            source=SOURCES["induction"], published_text=FINDINGS["induction-loss"],
        ),
        _card(
            loaded, "induction-head", scores[:, best[0], best[1]], head_null,
            name="induction: best head",
            quantity=f"induction score of the strongest head (layer {best[0]}, head {best[1]}): attention from a "
            "repeated token to the token after its earlier occurrence",
            method="attention of every head from each token of the second copy, chosen as the head with the highest "
            "mean over the prompts",
            prompt_set="repeated-random-tokens",
            chance=float(np.mean([stats.uniform_induction_score(t.token_ids) for t in traces])),
            chance_note="uniform causal attention",
            null_note="the best head (max over all heads, as the measured one is) scored on a random earlier key "
            "instead of the token after the earlier occurrence",
            source=SOURCES["induction"], published_text=FINDINGS["induction-head"],
            by_layer=scores.mean(0),
        ),
    ]  # fmt: skip


def taxonomy_from(trace) -> stats.Taxonomy:
    """Head kinds of one trace of repeated random tokens (so induction heads can show), sink removed."""
    return stats.head_taxonomy(trace.attentions, trace.token_ids, causal=trace.causal)


def taxonomy(loaded, seed: int = 0) -> stats.Taxonomy:
    """Head kinds on repeated random tokens (seed 0 of the card's prompt set)."""
    ids, _ = random_token_ids(loaded, seed)
    return taxonomy_from(read(loaded, [ids])[0])


# --- "What does BERT look at?" (Clark et al. 2019) --------------------------------------------


def sentence_pair_ids(loaded, pairs=SENTENCE_PAIRS) -> list[np.ndarray]:
    return [np.asarray(loaded.tokenizer(a, b)["input_ids"], dtype=np.int64) for a, b in pairs]


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
            _card(
                loaded, kind, [stats.key_mass(t.attentions, m, False) for t, m in zip(traces, masks)],
                [stats.key_mass_null(t.attentions, m, False, DRAWS, rng) for t, m in zip(traces, masks)],
                name=f"BERT looks at {kind}",
                quantity=f"attention mass on {kind}, mean over layers, heads and queries (peak {by_layer.max():.2f} "
                f"at layer {int(by_layer.argmax())})",
                method="attention of every layer and head on '[CLS] A [SEP] B [SEP]' inputs",
                prompt_set="sentence-pairs",
                chance=float(np.mean([m.mean() for m in masks])),
                chance_note="uniform attention: the share of such tokens",
                null_note=f"the same attention on as many random positions as the prompt has {kind} tokens",
                source=SOURCES["clark"], published_text=FINDINGS[kind], by_layer=by_layer,
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
    return _card(
        loaded, "anisotropy", cosines[:, -1], null,
        name="anisotropy",
        quantity=f"mean cosine between a sentence's tokens and the other sentences' tokens, last layer (embeddings "
        f"{cosines[:, 0].mean():.2f})",
        method="every pair of tokens from two different sentences, the first position (and an encoder's [SEP]) "
        "left out",
        prompt_set="everyday-sentences",
        chance=0.0,
        chance_note="isotropic vectors",
        null_note="the same vectors with their signs flipped at random (the same angles, no shared direction)",
        source=SOURCES["anisotropy"], published_text=FINDINGS["anisotropy"],
        by_layer=cosines.mean(0), layer_axis=DEPTH_AXIS,
    )  # fmt: skip


def word_context_prompts(loaded) -> list[tuple[np.ndarray, int, int]]:
    """(ids [T], position of the word, which word) for every context where the word is one token."""
    out = []
    for group, (word, contexts) in enumerate(WORD_CONTEXTS.items()):
        candidates = set()
        for form in (word, " " + word):
            ids = loaded.tokenizer(form, add_special_tokens=False)["input_ids"]
            if len(ids) == 1:
                candidates.add(ids[0])
        for text in contexts:
            ids = tokenize(loaded, text)[0]
            where = [i for i, token in enumerate(ids) if int(token) in candidates]
            if where:
                out.append((ids, where[0], group))
    return out


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
    return _card(
        loaded, "self-similarity", measured, null,
        name="self-similarity minus anisotropy",
        quantity=f"a word's mean cosine with itself in its other contexts minus the cosine of tokens of different "
        f"contexts ({baseline:.2f}), last layer; {len(traces)} contexts of {len(set(groups.tolist()))} words",
        method="the word's vector in each context against the same word in the others",
        prompt_set="word-in-contexts",
        chance=0.0,
        chance_note="the word is no more like itself than tokens of different sentences are alike",
        null_note="each other occurrence of the word replaced by a random other token of the same sentence",
        source=SOURCES["anisotropy"], published_text=FINDINGS["self-similarity"],
        by_layer=by_layer, layer_axis=DEPTH_AXIS,
    )  # fmt: skip


# --- prediction depth (logit lens) --------------------------------------------------------------

MASK_EVERY = 5  # an encoder reads each everyday sentence once with every fifth ordinary token masked


def masked_sentence_prompts(loaded, texts=SENTENCES) -> list[tuple[np.ndarray, np.ndarray]]:
    """(ids [T] with every MASK_EVERY-th ordinary token masked, the masked positions [P])."""
    special, out = set(loaded.tokenizer.all_special_ids), []
    for text in texts:
        ids = tokenize(loaded, text)[0].copy()
        chosen = np.array([i for i, t in enumerate(ids) if int(t) not in special][::MASK_EVERY])
        ids[chosen] = loaded.tokenizer.mask_token_id
        out.append((ids, chosen))
    return out


def lens_from_top(loaded, traces) -> list[np.ndarray]:
    """[L+1, T] lens top-1 per prompt, computed from the output down and only as far as each
    position still agrees with the output (-1 below: a settled depth needs no more), so the head
    runs over about (1 + L x (1 - depth)) rows per position instead of L + 1."""
    hidden = np.concatenate([t.hidden_states for t in traces], axis=1)  # [L+1, N, D]
    layers = hidden.shape[0] - 1
    top = np.full(hidden.shape[:2], -1, dtype=np.int64)
    top[layers] = decoder.lens_top1(loaded, hidden[layers], final=True)
    active = np.arange(hidden.shape[1])
    for depth in range(layers - 1, -1, -1):
        if not active.size:
            break
        top[depth, active] = decoder.lens_top1(loaded, hidden[depth, active])
        active = active[top[depth, active] == top[layers, active]]
    return np.split(top, np.cumsum([len(t.token_ids) for t in traces])[:-1], axis=1)


def masked_lens(loaded, traces, chosen: list[np.ndarray]) -> list[np.ndarray]:
    """Encoder: [L+1, P] the MLM head's top-1 at every depth of each masked position."""
    return [encoder.mlm_lens(loaded, t.hidden_states[:, c]).argmax(-1) for t, c in zip(traces, chosen)]


def translation_lens(loaded, texts=SENTENCES) -> list[np.ndarray]:
    """Encoder-decoder: [L_dec+1, T] the decoder's lens top-1 at every position of its own greedy output."""
    out = []
    for text in texts:
        encoded = seq2seq.encode_text(loaded, text)
        ids = np.concatenate([seq2seq.start_ids(loaded), seq2seq.greedy_decode(loaded, encoded, max_new_tokens=48)])
        trace = seq2seq.trace(loaded, encoded, ids)
        out.append(seq2seq.decoder_lens(loaded, trace.decoder.hidden_states).argmax(-1))
    return out


# How each card step that measures prediction depth reads its lens (family.CARD_STEPS).
DEPTH_METHODS = {
    family.SENTENCES: "the logit lens (final norm and output head) at every depth of every position of each "
    "sentence",
    family.MASKED_SENTENCES: f"the masked-language head at every depth of every {MASK_EVERY}th ordinary token, "
    "masked",
    family.TRANSLATIONS: "the decoder's lens at every depth of every position of its greedy output for each "
    "sentence",
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
    return _card(
        loaded, "depth", [d.mean() for d in depths], null,
        name="prediction depth",
        quantity="first depth from which every later depth's lens top-1 equals the final prediction, as a "
        "fraction of the blocks (lower = earlier)",
        method=DEPTH_METHODS[step],
        prompt_set=prompt_set,
        chance=1.0,
        chance_note="ceiling, not chance: settled only at the output (lower = earlier)",
        null_note="each position's target replaced by another position's final prediction (the same predicted "
        "tokens and their frequencies)",
        direction=-1,
        source=SOURCES["depth"], published_text=FINDINGS["depth"],
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
            _card(
                loaded, key, values.mean(axis=1), nulls.mean(axis=2),
                name=name,
                quantity="share of neighbouring tokens, mean over MoE layers",
                method="the routes of every token of each sentence, every MoE layer",
                prompt_set="everyday-sentences",
                chance=chance, chance_note=note,
                null_note="token positions shuffled within the sentence (each token keeps its experts, so the "
                "load stays the sentence's own)",
                source=SOURCES["mixtral"], published_text=FINDINGS[key],
                by_layer=values.mean(axis=0), null_by_layer=nulls.mean(axis=(0, 1)), layer_axis=MOE_AXIS,
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
    return _card(
        loaded, "token-id", result.per_prompt, result.null,
        name="token-id routing",
        quantity=f"accuracy predicting the router's first choice from the token id alone, mean over MoE layers "
        f"({result.coverage:.0%} of test ids seen in fitting; {len(fit_ids)} fitting tokens)",
        method="the most common first expert of each id in the fitting sentences (ids never seen: the most used "
        "expert), scored on each test sentence",
        prompt_set="austen-held-out",
        chance=float(result.majority.mean()),
        chance_note="always the fitting text's most used expert",
        null_note="the table fitted on the fitting sentences' first choices shuffled over their positions (each "
        "expert keeps its load, each id its frequency)",
        source=SOURCES["openmoe"], published_text=FINDINGS["token-id"],
        by_layer=result.by_layer, layer_axis=MOE_AXIS,
    )  # fmt: skip


def patching_pairs(loaded) -> tuple[Pair, ...]:
    """The prompt pairs of the family's kind of answer (a masked word, or the next token)."""
    return MASKED_PAIRS if adapter_for(loaded).answer == family.MASKED else PAIRS


def patchable_pairs(loaded) -> list[Pair]:
    """The family's pairs that this model's tokenizer can patch (equal lengths, one-token answers)."""
    return interventions.patchable(loaded, patching_pairs(loaded))


# --- the plan: one step per prompt set -----------------------------------------------------------


@dataclass(frozen=True)
class StepResult:
    """What one prompt set yields: its cards, and the head taxonomy where the set is the repeated
    random tokens (read from the same traces)."""

    cards: tuple[Card, ...]
    taxonomy: stats.Taxonomy | None = None


@dataclass(frozen=True)
class CardStep:
    """One part of the card run: the prompt set it reads (one forward per prompt) and what it yields."""

    key: str  # the prompt set: the cache key beside the model
    label: str
    run: Callable[[], StepResult]
    tokens: Callable[[], int]  # tokens the step's forwards read (the estimate before a click)
    name: str = ""  # the step (explorer.adapters.family.CARD_STEPS)


def _sentences_step(loaded) -> StepResult:
    traces = sentence_traces(loaded)
    adapter = adapter_for(loaded)
    out = [sink_card(loaded, traces), anisotropy_card(loaded, traces)]
    if adapter.causal:  # the logit lens reads the next token at every position
        out.append(prediction_depth_card(loaded, lens_from_top(loaded, traces)))
    if adapter.routed(loaded):
        out += routing_cards(loaded, traces)
    return StepResult(tuple(out))


def _masked_step(loaded) -> StepResult:
    prompts = masked_sentence_prompts(loaded)
    traces = read(loaded, [ids for ids, _ in prompts])
    lens = masked_lens(loaded, traces, [chosen for _, chosen in prompts])
    return StepResult((prediction_depth_card(loaded, lens, family.MASKED_SENTENCES, "everyday-sentences-masked"),))


def _words_step(loaded) -> StepResult:
    prompts = word_context_prompts(loaded)
    traces = read(loaded, [ids for ids, _, _ in prompts])
    card = self_similarity_card(loaded, traces, [p for _, p, _ in prompts], [g for _, _, g in prompts])
    return StepResult(() if card is None else (card,))


def _random_step(loaded) -> StepResult:
    prompts = random_token_prompts(loaded)
    traces = read(loaded, [ids for ids, _ in prompts], with_logits=True)
    return StepResult(tuple(induction_cards(loaded, traces, [s for _, s in prompts])), taxonomy_from(traces[0]))


def _held_out_step(loaded) -> StepResult:
    fit, test = held_out()
    traces = read(loaded, sentence_ids(loaded, fit + test))
    return StepResult((token_id_card(loaded, traces[: len(fit)], traces[len(fit) :]),))


def _pairs_step(loaded) -> StepResult:
    return StepResult(tuple(clark_cards(loaded, read(loaded, sentence_pair_ids(loaded)))))


def _translation_step(loaded) -> StepResult:
    return StepResult((prediction_depth_card(loaded, translation_lens(loaded), family.TRANSLATIONS),))


def _count(loaded, prompts) -> int:
    return int(sum(len(p) for p in prompts))


def _sentences_label(loaded) -> str:
    adapter = adapter_for(loaded)
    return ("everyday sentences: sink, anisotropy" + (", depth" if adapter.causal else "")
            + (", routing" if adapter.routed(loaded) else ""))  # fmt: skip


# Each card step (family.CARD_STEPS): (its prompt set, the cache key beside the model; its label; what it
# yields; the prompts it reads, for the estimate).
STEPS: dict[str, tuple[str, Callable, Callable, Callable]] = {
    family.SENTENCES: ("everyday-sentences", _sentences_label, _sentences_step, lambda loaded: sentence_ids(loaded)),
    family.MASKED_SENTENCES: ("everyday-sentences-masked", lambda loaded: "masked sentences: prediction depth",
                              _masked_step, lambda loaded: [ids for ids, _ in masked_sentence_prompts(loaded)]),
    family.WORDS: ("word-in-contexts", lambda loaded: "one word in many contexts: self-similarity", _words_step,
                   lambda loaded: [ids for ids, _, _ in word_context_prompts(loaded)]),
    family.RANDOM_TOKENS: ("repeated-random-tokens", lambda loaded: "repeated random tokens: induction, head kinds",
                           _random_step, lambda loaded: [ids for ids, _ in random_token_prompts(loaded)]),
    family.HELD_OUT: ("austen-held-out", lambda loaded: "held-out corpus sentences: token-id routing", _held_out_step,
                      lambda loaded: sentence_ids(loaded, sum(held_out(), ()))),
    family.SENTENCE_PAIRS: ("sentence-pairs", lambda loaded: "sentence pairs: [CLS], [SEP], punctuation",
                            _pairs_step, lambda loaded: sentence_pair_ids(loaded)),
    family.TRANSLATIONS: ("everyday-sentences", lambda loaded: "everyday sentences: prediction depth",
                          _translation_step, lambda loaded: sentence_ids(loaded)),
}  # fmt: skip


def card_plan(loaded) -> list[CardStep]:
    """The steps that measure every card applying to the loaded model (its family adapter's
    ``card_steps``; ValueError when none applies)."""

    def step(name: str) -> CardStep:
        key, label, run, prompts = STEPS[name]
        return CardStep(key, label(loaded), lambda: run(loaded), lambda: _count(loaded, prompts(loaded)), name)

    return [step(name) for name in adapter_for(loaded).card_steps(loaded)]


def measure_all(loaded) -> tuple[list[Card], stats.Taxonomy | None]:
    """Every card that applies to the loaded model's family, and its head taxonomy (None for an encoder-decoder)."""
    results = [step.run() for step in card_plan(loaded)]
    taxonomies = [r.taxonomy for r in results if r.taxonomy is not None]
    return [card for r in results for card in r.cards], (taxonomies[0] if taxonomies else None)


def all_cards(loaded) -> list[Card]:
    return measure_all(loaded)[0]


# The estimate a page shows before the click, fitted to the embedded defaults on one core of this project's
# 2-core machine (torch with 1 thread: SmolLM2 8.0 s, the DistilBERT 3.4 s, the tiny MoE 2.1 s, the translator
# 3.1 s, each within 25% of its estimate); two cores that nothing else uses are faster still.
SECONDS_FIXED = 1.0  # tokenising, 1,000 null draws per prompt and card, the statistics
FLOPS_PER_SECOND = 3e10
SECONDS_PER_FORWARD = 0.005  # a forward's own overhead (Python, hooks, copies), beside its arithmetic
LENS_DEPTHS = 5  # depths the lens reads per position from the top before it disagrees (SmolLM2: 4.7)
GREEDY_STEPS = 30  # an encoder-decoder's output tokens per sentence, one decoder forward each


def estimate_seconds(loaded, steps: list[CardStep] | None = None) -> float:
    """Before a click: about how long the card set takes, from the tokens its prompt sets hold and the
    model's arithmetic per token (parameters a token passes through, and the vocabulary head where
    the cards read it: every position of the repeated tokens, a few depths of the sentences' lens)."""
    steps = card_plan(loaded) if steps is None else steps
    adapter = adapter_for(loaded)
    tokens = {step.name: step.tokens() for step in steps}
    acc = account(loaded.model.config)
    per_token = acc.active - acc.by_role.get("embeddings", 0) - acc.by_role.get("head", 0)
    flops = 2 * per_token * sum(tokens.values())
    forwards = sum(-(-n // batched.BATCH_TOKENS) for n in tokens.values())
    # the vocabulary head over every repeated token, and the sentences' logit lens where it is read (causal)
    lens_rows = LENS_DEPTHS * tokens.get(family.SENTENCES, 0) if adapter.causal else 0
    rows = tokens.get(family.RANDOM_TOKENS, 0) + lens_rows
    if rows:
        vocab, width = loaded.model.get_output_embeddings().weight.shape
        flops += 2 * width * vocab * rows
    if adapter.encoder_decoder(loaded):
        forwards += len(SENTENCES) * GREEDY_STEPS
    return SECONDS_FIXED + flops / FLOPS_PER_SECOND + SECONDS_PER_FORWARD * forwards


__all__ = ["all_cards", "card_plan", "measure_all", "taxonomy", "PROMPT_SETS"]
