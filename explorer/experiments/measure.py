"""The replication cards measured on a loaded model, over the named prompt sets.

Forwards go through the family adapters (so every number comes from the same traces the
pages show); the statistics are the pure functions of ``cards``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from explorer.adapters import decoder, encoder, moe, seq2seq
from explorer.adapters.common import tokenize
from explorer.experiments import cards
from explorer.experiments.cards import Card, mean_and_spread
from explorer.experiments.prompts import (
    MASKED_PAIRS,
    PAIRS,
    PROMPT_SETS,
    SENTENCES,
    WORD_CONTEXTS,
    Pair,
    repeated_random_tokens,
)

PUNCTUATION = set(".,;:!?")
DEPTH_AXIS = "depth (0 = embeddings, d = output of block d)"
MOE_AXIS = "MoE layer (0 = the first MoE layer)"

# What each paper reports, read in the paper's own text (quoted where it gives no table), with
# where; a card whose paper gives no number in its text says so. No value is guessed or read
# off a plot. The numeric ``published`` field stays None: none of these is the same quantity on
# the same kind of model as the card's headline, so the text is shown beside it instead.
NO_NUMBER = "no number in the paper's text (only a figure); left out rather than read off the plot"
FINDINGS = {
    "sink": "Llama-2-7B, attention of the 4096th token: 'the attention scores for the first token are significantly "
    "high, often exceeding half of the total attention, except for the two bottom layers'",
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
    "depth": "no published value for this statistic",
    "same-first": "Mixtral 8x7B on Gutenberg (The Pile): 13.9% / 26.1% / 26.3% at layers 0 / 15 / 31 (random: 12.5%)",
    "topk-overlap": "Mixtral 8x7B on Gutenberg (The Pile), 'first or second choice': 49.5% / 63.1% / 52.2% at "
    "layers 0 / 15 / 31 (random: 1 - 6/8 x 5/7 = 46%)",
    "first-in-topk": "not reported (the project's third view of the same routes)",
    "token-id": "qualitative only: 'routing decisions in MoE models are predominantly based on token IDs, with "
    "minimal context relevance' (no number in the abstract; the section was not read here)",
}
SOURCES = {
    "sink": "Xiao et al. 2023, Efficient Streaming Language Models with Attention Sinks (arXiv 2309.17453), "
    "Appendix F, text on Fig. 12",
    "induction": "Olsson et al. 2022, In-context Learning and Induction Heads (transformer-circuits.pub), Argument 1",
    "clark": "Clark et al. 2019, What Does BERT Look At? (arXiv 1906.04341), section 3.2 and Fig. 2",
    "anisotropy": "Ethayarajh 2019, How Contextual are Contextualized Word Representations? (arXiv 1909.00512), "
    "section 4.1 and Fig. 1",
    "depth": "logit-lens prediction depth (this project's statistic)",
    "mixtral": "Jiang et al. 2024, Mixtral of Experts (arXiv 2401.04088v1), section 5, Table 5",
    "openmoe": "Xue et al. 2024, OpenMoE (arXiv 2402.01739), abstract",
}


def _trace(loaded, ids):
    # encoder cards read hidden states and attention only: no vocabulary head over every position
    if loaded.family == "moe":
        return moe.trace_ids(loaded, ids)
    if loaded.family == "encoder":
        return encoder.trace_ids(loaded, ids, with_logits=False)
    return decoder.trace_ids(loaded, ids)


def sentence_traces(loaded, texts=SENTENCES):
    return [_trace(loaded, tokenize(loaded, text)[0]) for text in texts]


def sink_card(loaded, traces) -> Card:
    masses = [cards.first_token_mass(t.attentions) for t in traces]  # each [L, H]
    measured, spread = mean_and_spread([m.mean() for m in masses])
    chance = float(np.mean([cards.uniform_first_token_mass(len(t.tokens), t.causal) for t in traces]))
    return Card(
        name="attention sink",
        quantity="attention mass on the first token (queries 1..T-1), mean over layers and heads",
        method="cards.first_token_mass over every layer and head of each sentence's trace",
        prompt_set="everyday-sentences",
        measured=measured,
        spread=spread,
        chance=chance,
        chance_note="uniform attention over the keys each query may see",
        published=None,
        source=SOURCES["sink"],
        published_text=FINDINGS["sink"],
        by_layer=np.mean(masses, axis=0),
        model_id=loaded.model_id,
    )


def random_token_ids(loaded, seed: int, period: int = 24) -> tuple[np.ndarray, int]:
    """Repeated random tokens from the upper 90% of the vocabulary (away from special and
    byte tokens), after the tokenizer's BOS when it has one."""
    vocab = int(loaded.model.config.vocab_size)
    bos = getattr(loaded.tokenizer, "bos_token_id", None) if loaded.tokenizer is not None else None
    return repeated_random_tokens(
        vocab, period=period, seed=seed, low=vocab // 10, prefix=(bos,) if bos is not None else ()
    )


def induction_cards(loaded, seeds=range(5), period: int = 24) -> list[Card]:
    drops, firsts, seconds, scores, chances = [], [], [], [], []
    vocab = int(loaded.model.config.vocab_size)
    for seed in seeds:
        ids, start = random_token_ids(loaded, seed, period)
        trace = _trace(loaded, ids)
        first, second = cards.repeated_copy_losses(trace.logits, ids, start, period)
        firsts.append(first)
        seconds.append(second)
        drops.append(first - second)
        scores.append(cards.induction_scores(trace.attentions, ids))  # [L, H]
        chances.append(cards.uniform_induction_score(ids))
    scores = np.stack(scores)  # [seeds, L, H]
    best = np.unravel_index(np.nanargmax(scores.mean(0)), scores.shape[1:])
    drop, drop_spread = mean_and_spread(drops)
    score, score_spread = mean_and_spread(scores[:, best[0], best[1]])
    return [
        Card(
            name="induction: loss on the repeat",
            quantity="loss on the first copy minus loss on the second copy (nats)",
            method=f"cards.repeated_copy_losses: first copy {np.mean(firsts):.2f} nats, second {np.mean(seconds):.2f} "
            f"(log V = {np.log(vocab):.2f})",
            prompt_set="repeated-random-tokens",
            measured=drop,
            spread=drop_spread,
            chance=0.0,
            chance_note="no copying: both copies are equally unpredictable",
            published=None,
            source=SOURCES["induction"],
            published_text=FINDINGS["induction-loss"],
            model_id=loaded.model_id,
        ),
        Card(
            name="induction: best head",
            quantity=f"induction score of the strongest head (layer {best[0]}, head {best[1]})",
            method="cards.induction_scores: attention from a repeated token to the token after its previous occurrence",
            prompt_set="repeated-random-tokens",
            measured=score,
            spread=score_spread,
            chance=float(np.mean(chances)),
            chance_note="uniform causal attention",
            published=None,
            source=SOURCES["induction"],
            published_text=FINDINGS["induction-head"],
            by_layer=scores.mean(0),
            model_id=loaded.model_id,
        ),
    ]


def clark_cards(loaded, texts=SENTENCES) -> list[Card]:
    """[CLS], [SEP] and punctuation mass by layer over sentence pairs read as two segments."""
    tok = loaded.tokenizer
    per_kind = {"[CLS]": [], "[SEP]": [], "punctuation": []}
    chance = {kind: [] for kind in per_kind}
    for a, b in zip(texts[0::2], texts[1::2]):
        ids = np.asarray(tok(a, b)["input_ids"], dtype=np.int64)
        trace = encoder.trace_ids(loaded, ids, with_logits=False)
        masks = {
            "[CLS]": ids == tok.cls_token_id,
            "[SEP]": ids == tok.sep_token_id,
            "punctuation": np.array([t in PUNCTUATION for t in trace.tokens]),
        }
        for kind, mask in masks.items():
            per_kind[kind].append(cards.attention_to_keys(trace.attentions, mask))  # [L]
            chance[kind].append(mask.mean())
    out = []
    for kind, values in per_kind.items():
        by_layer = np.mean(values, axis=0)
        measured, spread = mean_and_spread([v.mean() for v in values])
        out.append(
            Card(
                name=f"BERT looks at {kind}",
                quantity=f"attention mass on {kind}, mean over layers, heads and queries "
                f"(peak {by_layer.max():.2f} at layer {int(by_layer.argmax())})",
                method="cards.attention_to_keys on '[CLS] A [SEP] B [SEP]' inputs",
                prompt_set="sentence-pairs",
                measured=measured,
                spread=spread,
                chance=float(np.mean(chance[kind])),
                chance_note="uniform attention: the share of such tokens",
                published=None,
                source=SOURCES["clark"],
                published_text=FINDINGS[kind],
                by_layer=by_layer,
                model_id=loaded.model_id,
            )
        )
    return out


def _content_positions(trace) -> slice:
    # leave out the first position (a decoder's sink, an encoder's [CLS]) and an encoder's final [SEP]
    return slice(1, None) if trace.causal else slice(1, -1)


def _word_vectors(loaded, word: str, contexts) -> np.ndarray | None:
    """[L+1, C, D] the word's hidden states in each context where it is one token."""
    candidates = set()
    for form in (word, " " + word):
        ids = loaded.tokenizer(form, add_special_tokens=False)["input_ids"]
        if len(ids) == 1:
            candidates.add(ids[0])
    vectors = []
    for text in contexts:
        ids = tokenize(loaded, text)[0]
        where = [i for i, token in enumerate(ids) if token in candidates]
        if where:
            vectors.append(_trace(loaded, ids).hidden_states[:, where[0]])
    return np.stack(vectors, axis=1) if len(vectors) >= 2 else None


def anisotropy_cards(loaded, traces) -> list[Card]:
    hidden = [t.hidden_states[:, _content_positions(t)] for t in traces]
    pair_cosines = cards.random_pair_cosines(hidden, pairs=1000)  # [pairs, L+1]
    baseline = pair_cosines.mean(axis=0)  # [L+1]
    out = [
        Card(
            name="anisotropy",
            quantity="mean cosine between random tokens of different sentences, last layer; spread over the pairs "
            f"(embeddings {baseline[0]:.2f})",
            method="cards.random_pair_cosine, 1000 pairs, first/special positions left out",
            prompt_set="everyday-sentences",
            measured=float(baseline[-1]),
            spread=float(pair_cosines[:, -1].std()),
            chance=0.0,
            chance_note="isotropic vectors",
            published=None,
            source=SOURCES["anisotropy"],
            published_text=FINDINGS["anisotropy"],
            by_layer=baseline,
            model_id=loaded.model_id,
            layer_axis=DEPTH_AXIS,
        )
    ]
    adjusted = []
    for word, contexts in WORD_CONTEXTS.items():
        vectors = _word_vectors(loaded, word, contexts)
        if vectors is not None:
            adjusted.append(cards.self_similarity(vectors) - baseline)  # [L+1]
    if adjusted:
        by_layer = np.mean(adjusted, axis=0)
        out.append(
            Card(
                name="self-similarity minus anisotropy",
                quantity="a word's mean cosine with itself across contexts "
                f"minus the random-token baseline, last layer ({len(adjusted)} words; spread over the words)",
                method="cards.self_similarity - cards.random_pair_cosine",
                prompt_set="word-in-contexts",
                measured=float(by_layer[-1]),
                spread=float(np.std([a[-1] for a in adjusted])),
                chance=0.0,
                chance_note="the word is no more like itself than random tokens are alike",
                published=None,
                source=SOURCES["anisotropy"],
                published_text=FINDINGS["self-similarity"],
                by_layer=by_layer,
                model_id=loaded.model_id,
                layer_axis=DEPTH_AXIS,
            )
        )
    return out


MASK_EVERY = 5  # an encoder reads each everyday sentence once with every fifth ordinary token masked


def _masked_depths(loaded, texts) -> list[np.ndarray]:
    """Encoder: the MLM head read at every depth of each masked position."""
    special, out = set(loaded.tokenizer.all_special_ids), []
    for text in texts:
        ids = tokenize(loaded, text)[0].copy()
        chosen = [i for i, t in enumerate(ids) if int(t) not in special][::MASK_EVERY]
        ids[chosen] = loaded.tokenizer.mask_token_id
        trace = encoder.trace_ids(loaded, ids, with_logits=False)
        lens = encoder.mlm_lens(loaded, trace.hidden_states[:, chosen])  # [L+1, P, V]
        out.append(cards.prediction_depth(lens.argmax(-1)))
    return out


def _translation_depths(loaded, texts) -> list[np.ndarray]:
    """Encoder-decoder: the decoder's lens at every position of its own greedy output."""
    out = []
    for text in texts:
        encoded = seq2seq.encode_text(loaded, text)
        ids = np.concatenate([seq2seq.start_ids(loaded), seq2seq.greedy_decode(loaded, encoded, max_new_tokens=48)])
        trace = seq2seq.trace(loaded, encoded, ids)
        lens = seq2seq.decoder_lens(loaded, trace.decoder.hidden_states)  # [L_dec+1, T, V]
        out.append(cards.prediction_depth(lens.argmax(-1)))
    return out


DEPTH_METHODS = {
    "decoder": "decoder.logit_lens at every position of each sentence (the next-token prediction)",
    "moe": "decoder.logit_lens at every position of each sentence (the next-token prediction)",
    "encoder": f"the MLM head (encoder.mlm_lens) at every depth of every {MASK_EVERY}th ordinary token, masked",
    "seq2seq": "the decoder's lens (seq2seq.decoder_lens) at every position of its greedy output for each sentence",
}


def prediction_depth_card(loaded, traces=None, texts=SENTENCES) -> Card:
    """Matched prompts across the families: the same everyday sentences, read as each family reads them."""
    if loaded.family == "encoder":
        depths = _masked_depths(loaded, texts)
    elif loaded.family == "seq2seq":
        depths = _translation_depths(loaded, texts)
    else:
        traces = traces if traces is not None else sentence_traces(loaded, texts)
        depths = [cards.prediction_depth(decoder.logit_lens(loaded, t.hidden_states).argmax(-1)) for t in traces]
    measured, spread = mean_and_spread([d.mean() for d in depths])
    return Card(
        name="prediction depth",
        quantity="first depth whose lens top-1 equals the final prediction, as a fraction of the blocks",
        method=DEPTH_METHODS[loaded.family] + "; cards.prediction_depth",
        prompt_set="everyday-sentences",
        measured=measured,
        spread=spread,
        chance=1.0,
        chance_note="intermediate layers that never agree early (settled only at the output)",
        published=None,
        source=SOURCES["depth"],
        published_text=FINDINGS["depth"],
        model_id=loaded.model_id,
    )


def routing_cards(loaded, traces) -> list[Card]:
    routers = [t.router for t in traces]
    e, k = routers[0].num_experts, routers[0].top_k
    same = [cards.consecutive_same_first(r.chosen) for r in routers]  # each [M]
    overlap = [cards.consecutive_topk_overlap(r.chosen) for r in routers]
    first_in = [cards.consecutive_first_in_topk(r.chosen) for r in routers]
    out = []
    for name, values, chance, note, method, finding in (
        (
            "Mixtral: same first expert",
            same,
            cards.chance_same_first(e),
            f"1/N, N = {e}",
            "cards.consecutive_same_first",
            "same-first",
        ),
        (
            f"Mixtral: top-{k} sets overlap",
            overlap,
            cards.chance_topk_overlap(e, k),
            f"1 - C(N-k,k)/C(N,k), N = {e}, k = {k}",
            "cards.consecutive_topk_overlap",
            "topk-overlap",
        ),
        (
            f"Mixtral: next first choice in top-{k}",
            first_in,
            k / e,
            f"k/N, N = {e}, k = {k}",
            "cards.consecutive_first_in_topk",
            "first-in-topk",
        ),
    ):
        measured, spread = mean_and_spread([v.mean() for v in values])
        out.append(
            Card(
                name=name,
                quantity="share of neighbouring tokens, mean over MoE layers",
                method=method,
                prompt_set="everyday-sentences",
                measured=measured,
                spread=spread,
                chance=chance,
                chance_note=note,
                published=None,
                source=SOURCES["mixtral"],
                published_text=FINDINGS[finding],
                by_layer=np.mean(values, axis=0),
                model_id=loaded.model_id,
                layer_axis=MOE_AXIS,
            )
        )
    return out


def token_id_cards(loaded, train_texts, test_texts, prompt_set: str) -> list[Card]:
    def first_choices(texts):
        ids, first = [], []
        for text in texts:
            token_ids = tokenize(loaded, text)[0]
            ids.append(token_ids)
            first.append(_trace(loaded, token_ids).router.chosen[..., 0])  # [M, T]
        return np.concatenate(ids), np.concatenate(first, axis=1)

    train_ids, train_first = first_choices(train_texts)
    test_ids, test_first = first_choices(test_texts)
    result = cards.token_id_predictability(train_ids, train_first, test_ids, test_first)
    out = []
    for name, values in (
        ("token-id routing: id only", result.by_id),
        ("token-id routing: previous id + id", result.by_bigram),
    ):
        out.append(
            Card(
                name=name,
                quantity=f"accuracy predicting the router's first choice on held-out text, mean over MoE "
                f"layers ({result.coverage:.0%} of held-out ids seen in fitting)",
                method="cards.token_id_predictability (most common expert per id / id pair, majority fallback)",
                prompt_set=prompt_set,
                measured=float(values.mean()),
                spread=float(values.std()),
                chance=float(result.majority.mean()),
                chance_note="always the training text's most common expert",
                published=None,
                source=SOURCES["openmoe"],
                published_text=FINDINGS["token-id"],
                by_layer=values,
                model_id=loaded.model_id,
                layer_axis=MOE_AXIS,
            )
        )
    return out


def taxonomy(loaded, seed: int = 0) -> cards.Taxonomy:
    """Head kinds on repeated random tokens (so induction heads can show), sink removed."""
    ids, _ = random_token_ids(loaded, seed)
    trace = _trace(loaded, ids)
    return cards.head_taxonomy(trace.attentions, ids, causal=trace.causal)


@dataclass(frozen=True)
class PatchingSetup:
    """A clean/corrupted pair as token ids for activation patching: ids [T] each, the answers'
    single token ids, the position read and the metric ('probability' of the masked word for an
    encoder, else the logit difference)."""

    pair: Pair
    clean: np.ndarray
    corrupted: np.ndarray
    clean_answer: int
    corrupted_answer: int
    position: int
    metric: str


def patching_pairs(loaded) -> tuple[Pair, ...]:
    return MASKED_PAIRS if loaded.family == "encoder" else PAIRS


def patchable_pairs(loaded) -> list[Pair]:
    """The family's pairs that this model's tokenizer can patch (equal lengths, one-token answers)."""
    out = []
    for pair in patching_pairs(loaded):
        try:
            patching_setup(loaded, pair)
        except ValueError:
            continue
        out.append(pair)
    return out


def patching_setup(loaded, pair: Pair) -> PatchingSetup:
    """Tokenise a pair; ValueError (saying what differs) when the two prompts are not equally long
    or an answer is not one token in this model's tokenizer."""
    tokenizer = loaded.tokenizer
    if loaded.family == "encoder":
        texts = [text.format(mask=tokenizer.mask_token) for text in (pair.clean, pair.corrupted)]
    else:
        texts = [pair.clean, pair.corrupted]
    clean, corrupted = (tokenize(loaded, text)[0] for text in texts)
    answers = []
    for answer in (pair.clean_answer, pair.corrupted_answer):
        ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ValueError(f"the answer {answer!r} is {len(ids)} tokens in this model's tokenizer; it must be one")
        answers.append(ids[0])
    if len(clean) != len(corrupted):
        raise ValueError(
            f"the clean prompt is {len(clean)} tokens and the corrupted one {len(corrupted)}: patching needs them "
            "equally long (words that are one token each)"
        )
    position = int(np.argmax(clean == tokenizer.mask_token_id)) if loaded.family == "encoder" else len(clean) - 1
    metric = "probability" if loaded.family == "encoder" else "logit_diff"
    return PatchingSetup(pair, clean, corrupted, answers[0], answers[1], position, metric)


@dataclass(frozen=True)
class CardStep:
    """One part of the card run: the prompt set it reads and the cards it yields (a UI caches
    each step per (model, key) and shows progress between steps)."""

    key: str  # names the prompt set: the cache key beside the model
    label: str
    run: Callable[[], list[Card]]


def card_plan(loaded, corpus_texts: tuple[list[str], list[str]] | None = None) -> list[CardStep]:
    """The steps that measure every card applying to the loaded model's family."""
    if loaded.family == "seq2seq":
        if loaded.arch.audio:
            raise ValueError("the encoder-decoder's card (prediction depth) reads text: pick a text encoder-decoder")
        return [
            CardStep(
                "everyday-sentences", "everyday sentences: prediction depth", lambda: [prediction_depth_card(loaded)]
            )
        ]

    def sentences() -> list[Card]:
        traces = sentence_traces(loaded)
        out = [sink_card(loaded, traces), prediction_depth_card(loaded, traces)]
        out += anisotropy_cards(loaded, traces)
        if loaded.family == "moe":
            out += routing_cards(loaded, traces)
        return out

    steps = [CardStep("everyday-sentences", "everyday sentences: sink, geometry, depth, routing", sentences)]
    if loaded.family == "encoder":
        steps.append(
            CardStep("sentence-pairs", "sentence pairs: [CLS], [SEP], punctuation", lambda: clark_cards(loaded))
        )
    else:
        steps.append(
            CardStep("repeated-random-tokens", "repeated random tokens: induction", lambda: induction_cards(loaded))
        )
    if loaded.family == "moe":
        if corpus_texts is not None:
            name = "corpus held-out text (first half fits, second half tests)"
            steps.append(CardStep("corpus", "token-id routing", lambda: token_id_cards(loaded, *corpus_texts, name)))
        else:
            half = len(SENTENCES) // 2
            steps.append(
                CardStep(
                    "everyday-sentences-split",
                    "token-id routing",
                    lambda: token_id_cards(
                        loaded, SENTENCES[:half], SENTENCES[half:], "everyday-sentences (6 fit, 6 test)"
                    ),
                )
            )
    return steps


def all_cards(loaded, corpus_texts: tuple[list[str], list[str]] | None = None) -> list[Card]:
    """Every card that applies to the loaded model's family."""
    return [card for step in card_plan(loaded, corpus_texts) for card in step.run()]


__all__ = ["all_cards", "card_plan", "taxonomy", "PROMPT_SETS"]
