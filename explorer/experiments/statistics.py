"""Replication cards: the statistics of published findings, as pure numpy over trace arrays.

Shapes: attentions [L, H, T, T] (rows = queries, sum to 1), hidden_states [L+1, T, D],
router arrays from ``RouterTrace`` ([M, T, K] choices). Nothing here imports torch: every
statistic is tested on a planted case (a hand-built pattern with a known answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np

from explorer.decoding import log_softmax

# --- the verdict: one rule for every card --------------------------------------------------------

NULL_DRAWS = 1000  # resampled nulls: draws per prompt
NULL_SEED = 0
REPRODUCES, NOT_HERE, INCONCLUSIVE = "reproduces here", "not here", "inconclusive"
VERDICTS = (REPRODUCES, INCONCLUSIVE, NOT_HERE)
AT_LEAST = 0.8  # reproduces: share of prompts beyond their null's 95th percentile
LIKE_NULL = 0.5  # not here: at most this share of prompts beyond their null's median
VERDICT_RULE = (
    "Verdict, one rule for every card: on each prompt of the set the measured value is compared with that "
    "prompt's null (1,000 seeded draws that keep what the statistic depends on besides the finding: load, "
    "position, length, token frequency). **Reproduces here** when it lies beyond the null's 95th percentile (the "
    "5th where the finding is a lower value) in at least 80% of the prompts; **not here** when it lies beyond the "
    "null's median in at most half of them (the prompts look like the null); **inconclusive** otherwise (a shift, "
    "but too small to clear the 95th percentile in 80% of the prompts)."
)


def null_threshold(null: np.ndarray, direction: int, percentile: float = 95) -> np.ndarray:
    """[P] each prompt's ``percentile`` of its null draws (null [P, D]); mirrored (100 - percentile)
    when the finding is a value below the null (``direction`` -1)."""
    q = percentile if direction > 0 else 100 - percentile
    return np.percentile(np.asarray(null, dtype=np.float64), q, axis=-1)


def beyond_null(per_prompt: np.ndarray, null: np.ndarray, direction: int, percentile: float = 95) -> np.ndarray:
    """[P] True where a prompt's value lies beyond its null's threshold by more than float rounding
    (a null that cannot differ from the measure, such as uniform attention, is not beaten; nan: False)."""
    values = np.asarray(per_prompt, dtype=np.float64)
    threshold = null_threshold(null, direction, percentile)
    margin = 1e-9 * np.maximum(1.0, np.abs(threshold))
    return values > threshold + margin if direction > 0 else values < threshold - margin


def share_beyond(per_prompt: np.ndarray, null: np.ndarray, direction: int, percentile: float = 95) -> float:
    """Share of the measurable (finite) prompts whose value lies beyond their null's ``percentile``."""
    finite = np.isfinite(np.asarray(per_prompt, dtype=np.float64))
    if not finite.any():
        return float("nan")
    return float(beyond_null(per_prompt, null, direction, percentile)[finite].mean())


def verdict(per_prompt: np.ndarray, null: np.ndarray, direction: int) -> str:
    """VERDICT_RULE: reproduces here (>= 80% of prompts beyond their null's 95th percentile), not
    here (<= 50% beyond its median), inconclusive otherwise or when no prompt could be measured."""
    share = share_beyond(per_prompt, null, direction)
    if not np.isfinite(share):
        return INCONCLUSIVE
    if share >= AT_LEAST:
        return REPRODUCES
    return NOT_HERE if share_beyond(per_prompt, null, direction, 50) <= LIKE_NULL else INCONCLUSIVE


@dataclass(frozen=True)
class Card:
    """One published finding, measured on the loaded model.

    measured        the headline number: the mean of ``per_prompt``
    spread          its standard deviation over the prompts of the set (always that, on every card)
    per_prompt      [P] the statistic on each prompt of the set
    null            [P, D] the statistic on D resampled versions of each prompt that keep its
                    confounds and remove the finding (``null_note`` says how)
    direction       +1: the finding is a value above its null; -1: below (prediction depth)
    by_layer        [L] (or [L, H]) the per-layer (per-head) values behind the headline, or None;
                    ``layer_axis`` says what its first index counts; ``null_by_layer`` [L] the
                    null's mean there when it has one
    chance          the analytic value without the phenomenon (uniform attention, random routing,
                    ...), stated in ``chance_note``; nan where there is none
    published_text  what the paper reports, in its words, for the model it names
    """

    name: str
    quantity: str
    method: str
    prompt_set: str
    measured: float
    spread: float
    chance: float
    chance_note: str
    source: str
    by_layer: np.ndarray | None = None
    model_id: str = ""
    layer_axis: str = "layer (0 = first block)"  # what by_layer's first index counts
    published_text: str = ""  # what the paper reports, in its words, for the model it names
    per_prompt: np.ndarray | None = None
    null: np.ndarray | None = None
    null_note: str = ""
    direction: int = 1
    null_by_layer: np.ndarray | None = None
    key: str = ""  # stable identifier across models (README rows, stored results)

    @property
    def prompts(self) -> int:
        return 0 if self.per_prompt is None else int(np.isfinite(self.per_prompt).sum())

    @property
    def null_mean(self) -> float:
        return float("nan") if self.null is None else float(np.nanmean(self.null))

    @property
    def null_cut(self) -> float:
        """Mean over the prompts of the null's 95th percentile (5th when lower is the finding)."""
        return float("nan") if self.null is None else float(np.nanmean(null_threshold(self.null, self.direction)))

    @property
    def share_beyond(self) -> float:
        if self.null is None or self.per_prompt is None:
            return float("nan")
        return share_beyond(self.per_prompt, self.null, self.direction)

    @property
    def verdict(self) -> str:
        if self.null is None or self.per_prompt is None:
            return INCONCLUSIVE
        return verdict(self.per_prompt, self.null, self.direction)

    def line(self) -> str:
        return (
            f"{self.name}: measured {self.measured:.3f} ± {self.spread:.3f} over {self.prompts} prompts of "
            f"'{self.prompt_set}' (null {self.null_mean:.3f}, {'95th' if self.direction > 0 else '5th'} percentile "
            f"{self.null_cut:.3f}; beyond it in {self.share_beyond:.0%}: {self.verdict}; chance {self.chance:.3f}; "
            f"published: {self.published_text or 'n/a'} [{self.source}])"
        )


def mean_and_spread(values) -> tuple[float, float]:
    """(mean, standard deviation) of per-prompt values, nan-free."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std())


# --- attention sinks (Xiao et al., StreamingLLM) ---------------------------------------------


def first_token_mass(attentions: np.ndarray) -> np.ndarray:
    """[L, H] mean attention on position 0 over the queries 1..T-1 (query 0 can only
    attend to itself in a causal model, so it says nothing about a sink)."""
    return attentions[:, :, 1:, 0].mean(axis=-1)


def uniform_first_token_mass(num_tokens: int, causal: bool) -> float:
    """The same statistic for uniform attention: query q spreads over q+1 keys (causal)
    or all T keys (bidirectional)."""
    if num_tokens < 2:
        return float("nan")
    if not causal:
        return 1.0 / num_tokens
    return float(np.mean([1.0 / (q + 1) for q in range(1, num_tokens)]))


def remove_sink(attentions: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    """Attention [..., T, T] with the first key removed and every query row from 1 on
    renormalised over the remaining keys; a row that put all its mass on the sink becomes
    all zeros (nothing left to describe). Query 0 is left as it is."""
    out = np.array(attentions, dtype=np.float64, copy=True)
    out[..., 1:, 0] = 0.0
    rest = out[..., 1:, :].sum(axis=-1, keepdims=True)  # [..., T-1, 1]
    out[..., 1:, :] = np.where(rest > eps, out[..., 1:, :] / np.maximum(rest, eps), 0.0)
    return out


def scored_queries(num_tokens: int, causal: bool) -> np.ndarray:
    """The queries an attention-mass statistic averages over: 1..T-1 in a causal model (query 0
    can only attend to itself, so it says nothing about where attention goes), every query otherwise."""
    return np.arange(1 if causal else 0, num_tokens)


def visible(num_tokens: int, causal: bool) -> np.ndarray:
    """[T, T] True where query (row) may attend to key (column)."""
    if causal:
        return np.tril(np.ones((num_tokens, num_tokens), dtype=bool))
    return np.ones((num_tokens, num_tokens), dtype=bool)


def key_mass(attentions: np.ndarray, key_mask: np.ndarray, causal: bool) -> float:
    """Mean over layers, heads and scored queries of the attention mass on the keys where
    ``key_mask`` [T] is True (attentions [L, H, T, T])."""
    queries = scored_queries(attentions.shape[-1], causal)
    return float(attentions[:, :, queries][..., np.asarray(key_mask, dtype=bool)].sum(axis=-1).mean())


def uniform_key_mass(key_mask: np.ndarray, causal: bool) -> float:
    """``key_mass`` of uniform attention: each scored query's share of marked keys among those it sees."""
    key_mask = np.asarray(key_mask, dtype=bool)
    seen = visible(len(key_mask), causal)[scored_queries(len(key_mask), causal)]  # [Q, T]
    return float(((seen & key_mask).sum(axis=1) / seen.sum(axis=1)).mean())


def random_keys(rng: np.random.Generator, counts: np.ndarray, seen: np.ndarray, draws: int) -> np.ndarray:
    """[draws, Q, T] 0/1: for each query (row of ``seen`` [Q, T]) ``counts[q]`` keys drawn without
    replacement among those it may see, independently per query and per draw."""
    draws_q_t = (draws, *seen.shape)
    if np.all(counts <= 1):  # the usual case (one sink, one earlier occurrence): one index per query
        n_seen = seen.sum(axis=1)  # [Q]
        # the i-th visible key of each row: visible keys are a prefix (causal) or every key
        index = np.floor(rng.random((draws, len(counts))) * n_seen).astype(np.int64)  # [draws, Q]
        out = np.zeros(draws_q_t)
        np.put_along_axis(out, index[..., None], 1.0, axis=-1)
        return out * (counts[None, :, None] > 0)
    score = np.where(seen, rng.random(draws_q_t), 2.0)  # invisible keys rank last
    rank = score.argsort(axis=-1).argsort(axis=-1)
    return (rank < counts[None, :, None]).astype(np.float64)


def key_mass_null(
    attentions: np.ndarray, key_mask: np.ndarray, causal: bool, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """[draws] ``key_mass`` on random keys instead of the marked ones: each scored query gets as
    many keys as it sees marked, drawn among the keys it may see. Keeps the length, the causal
    position of every query and each row's own attention; removes what is special about the key."""
    t = attentions.shape[-1]
    queries = scored_queries(t, causal)
    seen = visible(t, causal)[queries]  # [Q, T]
    counts = (seen & np.asarray(key_mask, dtype=bool)).sum(axis=1)  # [Q]
    mean_rows = attentions.mean(axis=(0, 1))[queries]  # [Q, T]: the statistic is linear in it
    chosen = random_keys(rng, counts, seen, draws)  # [draws, Q, T]
    return (chosen * mean_rows).sum(axis=-1).mean(axis=-1)


# --- induction heads (Olsson et al.) ---------------------------------------------------------


def repeated_copy_losses(logits: np.ndarray, token_ids: np.ndarray, start: int, period: int) -> tuple[float, float]:
    """Mean next-token loss (nats) on the first and on the second copy of a sequence of
    ``period`` tokens that starts at ``start`` and is repeated once (logits [T, V]).

    The first token of each copy is not scored: nothing earlier predicts it. An induction
    mechanism shows as a second-copy loss far below the first (which stays near log V for
    random tokens)."""
    first, second = copy_token_losses(logits, token_ids, start, period)
    return float(first.mean()), float(second.mean())


def induction_targets(token_ids: np.ndarray) -> list[tuple[int, list[int]]]:
    """For every query q whose token occurred before: (q, [j + 1 for each earlier j with
    ids[j] == ids[q]]), the positions an induction head attends to (the token that
    followed the previous occurrence, which it then copies)."""
    out = []
    for q in range(len(token_ids)):
        earlier = [j + 1 for j in range(q) if token_ids[j] == token_ids[q]]
        if earlier:
            out.append((q, earlier))
    return out


def induction_scores(attentions: np.ndarray, token_ids: np.ndarray) -> np.ndarray:
    """[L, H] mean attention mass from a repeated token onto the token after its previous
    occurrence(s); 1 for a perfect induction head, nan when no token repeats."""
    targets = induction_targets(np.asarray(token_ids))
    if not targets:
        return np.full(attentions.shape[:2], np.nan)
    scores = [attentions[:, :, q, keys].sum(axis=-1) for q, keys in targets]  # each [L, H]
    return np.mean(scores, axis=0)


def uniform_induction_score(token_ids: np.ndarray) -> float:
    """Induction score of uniform causal attention (query q spreads over q+1 keys)."""
    targets = induction_targets(np.asarray(token_ids))
    return float(np.mean([len(keys) / (q + 1) for q, keys in targets])) if targets else float("nan")


def copy_token_losses(
    logits: np.ndarray, token_ids: np.ndarray, start: int, period: int
) -> tuple[np.ndarray, np.ndarray]:
    """([period-1], [period-1]) next-token loss (nats) of each scored token of the first and the
    second copy (see ``repeated_copy_losses``; logits [T, V])."""
    logprobs = log_softmax(logits)  # [T, V]
    first = np.arange(start + 1, start + period)
    second = np.arange(start + period + 1, start + 2 * period)
    ids = np.asarray(token_ids)
    return -logprobs[first - 1, ids[first]], -logprobs[second - 1, ids[second]]


def copy_label_null(first: np.ndarray, second: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """[draws] first-minus-second mean loss with the copy labels permuted over the pooled tokens:
    the same tokens and losses, no 'second copy' (a drop this size happens without copying)."""
    pooled = np.concatenate([first, second])
    order = rng.random((draws, len(pooled))).argsort(axis=1)
    shuffled = pooled[order]
    return shuffled[:, : len(first)].mean(axis=1) - shuffled[:, len(first) :].mean(axis=1)


def induction_head_null(
    attentions: np.ndarray, token_ids: np.ndarray, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """[draws] the best head's induction score when each repeated token's targets are replaced by
    as many random keys it may see: max over heads, as the measured best head is. Keeps every
    head's attention and the causal positions; removes 'the token after the earlier copy'."""
    targets = induction_targets(np.asarray(token_ids))
    if not targets:
        return np.full(draws, np.nan)
    t = attentions.shape[-1]
    queries = np.array([q for q, _ in targets])
    counts = np.array([len(keys) for _, keys in targets])
    seen = visible(t, causal=True)[queries]  # [Q, T]
    chosen = random_keys(rng, counts, seen, draws).reshape(draws, -1)  # [draws, Q*T]
    rows = attentions[:, :, queries].reshape(-1, len(queries) * t)  # [L*H, Q*T]
    return (rows @ chosen.T / len(queries)).max(axis=0)


def previous_token_scores(attentions: np.ndarray) -> np.ndarray:
    """[L, H] mean attention from each query q >= 1 onto q - 1."""
    t = attentions.shape[-1]
    q = np.arange(1, t)
    return attentions[:, :, q, q - 1].mean(axis=-1)


# --- "What does BERT look at?" (Clark et al. 2019) --------------------------------------------


def attention_to_keys(attentions: np.ndarray, key_mask: np.ndarray) -> np.ndarray:
    """[L] mean over heads and queries of the attention mass on the keys where ``key_mask``
    [T] is True ([CLS], [SEP], punctuation, ...). Uniform attention gives key_mask.mean()."""
    mass = attentions[..., np.asarray(key_mask, dtype=bool)].sum(axis=-1)  # [L, H, T]
    return mass.mean(axis=(1, 2))


# --- anisotropy (Ethayarajh 2019) ---------------------------------------------------------------


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def mean_pairwise_cosine(vectors: np.ndarray) -> np.ndarray:
    """[...] mean cosine over the distinct pairs of the N vectors of ``vectors`` [..., N, D]."""
    unit = _unit(vectors)
    n = unit.shape[-2]
    if n < 2:
        return np.full(unit.shape[:-2], np.nan)
    gram = unit @ np.swapaxes(unit, -1, -2)  # [..., N, N]
    off_diagonal = gram.sum(axis=(-1, -2)) - np.trace(gram, axis1=-2, axis2=-1)
    return off_diagonal / (n * (n - 1))


def cross_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[..., n, m] cosine of every vector of ``a`` [..., n, D] with every vector of ``b`` [..., m, D]."""
    return _unit(a) @ np.swapaxes(_unit(b), -1, -2)


def cross_prompt_cosine(vectors: list[np.ndarray]) -> np.ndarray:
    """[P, L+1] for each prompt, the mean cosine between its token vectors and every token vector of
    the other prompts (vectors: one [L+1, T_i, D] per prompt): Ethayarajh's anisotropy baseline
    (0 for isotropic vectors), read once per prompt so that its spread is over the prompts."""
    if len(vectors) < 2:
        raise ValueError("the cross-prompt cosine needs at least two prompts")
    sizes = [v.shape[1] for v in vectors]
    unit = _unit(np.concatenate(vectors, axis=1))  # [L+1, N, D]
    # the sum of each prompt's unit vectors, then every pair of prompts at once: sum of cosines
    sums = np.stack([part.sum(axis=1) for part in np.split(unit, np.cumsum(sizes)[:-1], axis=1)])  # [P, L+1, D]
    pair_sums = np.einsum("pld,qld->lpq", sums, sums)  # [L+1, P, P]: sum of cosines between prompts p and q
    own = np.diagonal(pair_sums, axis1=1, axis2=2)  # [L+1, P]
    others = pair_sums.sum(axis=2) - own  # [L+1, P]
    sizes = np.asarray(sizes, dtype=np.float64)
    return (others / (sizes * (sizes.sum() - sizes))).T


def sign_flip_null(cosines: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """[draws] mean of ``cosines`` [n, m] after flipping the sign of each vector at random: the same
    vectors and the same spread of angles, no shared direction (the null of isotropy; mean 0)."""
    n, m = cosines.shape
    left = rng.choice((-1.0, 1.0), size=(draws, n))
    right = rng.choice((-1.0, 1.0), size=(draws, m))
    return np.einsum("dn,nm,dm->d", left, cosines, right) / (n * m)


def self_similarity(word_vectors: np.ndarray) -> np.ndarray:
    """[L+1] mean pairwise cosine of one word's vectors in C different contexts
    (word_vectors [L+1, C, D]); Ethayarajh subtracts the random-pair baseline."""
    return mean_pairwise_cosine(word_vectors)


def self_similarity_by_context(
    word: np.ndarray, others: list[np.ndarray], groups: np.ndarray, draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, float]:
    """Self-similarity of a word with itself, one value per context, against random tokens of the
    same sentences, at one depth.

    word    [C, D] the word's vector in each context;  groups [C] which word each context is of
    others  C arrays [n_c, D]: the other (content) tokens of each context

    Returns (measured [C], null [C, draws], baseline): measured[c] is the mean cosine of the word
    in context c with the same word in its other contexts, minus ``baseline`` (the mean cosine of
    tokens from different contexts, Ethayarajh's adjustment); the null replaces each of those
    other occurrences by a random other token of the same sentence (same contexts, same lengths,
    not the same word)."""
    c = len(word)
    pairs = [cross_cosines(others[i], others[j]).mean() for i in range(c) for j in range(c) if i != j]
    baseline = float(np.mean(pairs))
    measured, null = np.full(c, np.nan), np.full((c, draws), np.nan)
    for i in range(c):
        mates = [j for j in range(c) if j != i and groups[j] == groups[i]]
        if not mates:
            continue
        measured[i] = float(np.mean([cross_cosines(word[i][None], word[j][None])[0, 0] for j in mates])) - baseline
        random_mates = []
        for j in mates:
            to_tokens = cross_cosines(word[i][None], others[j])[0]  # [n_j]
            random_mates.append(to_tokens[rng.integers(len(to_tokens), size=draws)])
        null[i] = np.mean(random_mates, axis=0) - baseline
    return measured, null, baseline


# --- prediction depth (logit lens) --------------------------------------------------------------


def settled_depth(lens_top1: np.ndarray) -> np.ndarray:
    """[T] for each position the first depth d (0 = embeddings) from which every depth's lens
    top-1 equals the final prediction (the last row), divided by L: 1.0 = settled only at the
    output, lower = earlier (the definition of Baldock et al.'s prediction depth).

    lens_top1 [L+1, T]: argmax of the lens logits at every depth; an entry that was not computed
    (below a depth that already disagrees) may hold any other value, e.g. -1."""
    lens_top1 = np.asarray(lens_top1)
    depth = lens_top1.shape[0] - 1
    disagrees = lens_top1 != lens_top1[-1]  # [L+1, T]
    # one past the last disagreeing depth; 0 when every depth agrees
    last = np.where(disagrees.any(axis=0), depth - disagrees[::-1].argmax(axis=0) + 1, 0)
    return last / depth


def first_agreement_depth(lens_top1: np.ndarray) -> np.ndarray:
    """[T] the first depth whose lens top-1 equals the final prediction, over L (it may disagree
    again later: ``settled_depth`` is the stricter reading)."""
    lens_top1 = np.asarray(lens_top1)
    agrees = lens_top1 == lens_top1[-1]  # [L+1, T], the last row always agrees
    return agrees.argmax(axis=0) / (lens_top1.shape[0] - 1)


def settled_depth_null(depths: np.ndarray, finals: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """[draws] mean settled depth when each position's target is the final prediction of another,
    random position of the same prompt (the same predicted tokens and their frequencies, not the
    position's own answer). A lens that settles on the target must agree with the output first,
    so the null depth is the measured one where the two answers coincide and 1.0 elsewhere."""
    finals, depths = np.asarray(finals), np.asarray(depths, dtype=np.float64)
    t = len(finals)
    if t < 2:
        return np.full(draws, np.nan)
    other = (np.arange(t)[None, :] + rng.integers(1, t, size=(draws, t))) % t  # never the position itself
    same = finals[other] == finals[None, :]
    return np.where(same, depths[None, :], 1.0).mean(axis=1)


# --- Mixtral's routing analysis (Jiang et al. 2024, section 5) ----------------------------------


def consecutive_same_first(chosen: np.ndarray) -> np.ndarray:
    """[...] share of neighbouring token pairs (t, t+1) whose first-choice expert is the same
    (chosen [..., T, K], e.g. [M, T, K]: one value per MoE layer)."""
    first = chosen[..., 0]
    return (first[..., 1:] == first[..., :-1]).mean(axis=-1)


def consecutive_topk_overlap(chosen: np.ndarray) -> np.ndarray:
    """[...] share of neighbouring token pairs whose top-k expert sets share at least one
    expert (chosen [..., T, K])."""
    shared = (chosen[..., 1:, :, None] == chosen[..., :-1, None, :]).any(axis=(-1, -2))  # [..., T-1]
    return shared.mean(axis=-1)


def consecutive_first_in_topk(chosen: np.ndarray) -> np.ndarray:
    """[...] share of neighbouring pairs where token t+1's first choice is among token t's
    top-k (a second reading of 'first or second choice'; chance k/N)."""
    return (chosen[..., 1:, 0, None] == chosen[..., :-1, :]).any(axis=-1).mean(axis=-1)


def chance_same_first(num_experts: int) -> float:
    """Two independent uniform first choices agree with probability 1/N."""
    return 1.0 / num_experts


def chance_topk_overlap(num_experts: int, k: int) -> float:
    """Two independent uniform k-subsets of N experts intersect with probability
    1 - C(N-k, k) / C(N, k) (0.464 for N = 8, k = 2)."""
    return 1.0 - comb(num_experts - k, k) / comb(num_experts, k)


def shuffled_positions_null(chosen: np.ndarray, statistic, draws: int, rng: np.random.Generator) -> np.ndarray:
    """[draws, M] ``statistic`` (one of the consecutive_* above) of one prompt's routes
    (chosen [M, T, K]) with its token positions shuffled: every token keeps its experts in every
    layer, so the load on each expert is the prompt's own, but neighbours are no longer
    neighbours. The baseline for 'neighbouring tokens share experts' under uneven load (1/N
    holds only for uniform load)."""
    order = rng.random((draws, chosen.shape[1])).argsort(axis=1)  # [draws, T]
    shuffled = np.moveaxis(chosen[:, order], 0, 1)  # [draws, M, T, K]
    return statistic(shuffled)


# --- token-id routing (OpenMoE) -----------------------------------------------------------------


@dataclass(frozen=True)
class TokenIdRouting:
    """How well a table token id -> most common first-choice expert, fitted on one text, predicts
    the router on held-out prompts.

    per_prompt  [P] accuracy on each held-out prompt, mean over MoE layers
    by_layer    [M] accuracy over all held-out tokens, per layer
    null        [P, D] the same with the table fitted on the fitting text's first choices
                shuffled over its positions (each expert keeps its load, ids their frequency; the
                id-expert link is gone)
    majority    [P] accuracy of always answering the fitting text's most used expert
    coverage    share of held-out tokens whose id occurs in the fitting text
    """

    per_prompt: np.ndarray
    by_layer: np.ndarray
    null: np.ndarray
    majority: np.ndarray
    coverage: float


def _id_table(ids: np.ndarray, first: np.ndarray, num_ids: int, num_experts: int) -> np.ndarray:
    """[M, num_ids] most common expert of each (compact) id in each layer, -1 for unseen ids
    (ids [N] in 0..num_ids-1, first [M, N])."""
    m = first.shape[0]
    cells = (np.arange(m)[:, None] * num_ids + ids[None, :]) * num_experts + first  # [M, N]
    counts = np.bincount(cells.ravel(), minlength=m * num_ids * num_experts).reshape(m, num_ids, num_experts)
    return np.where(counts.any(axis=-1), counts.argmax(axis=-1), -1)


def token_id_routing(
    fit_ids: np.ndarray,
    fit_first: np.ndarray,
    test: list[tuple[np.ndarray, np.ndarray]],
    num_experts: int,
    draws: int,
    rng: np.random.Generator,
) -> TokenIdRouting:
    """fit_ids [N], fit_first [M, N] (first-choice experts); test: (ids [T], first [M, T]) per
    held-out prompt. Ids the fitting text lacks are answered with its most used expert."""
    fit_ids = np.asarray(fit_ids)
    vocab = np.unique(np.concatenate([fit_ids, *[np.asarray(ids) for ids, _ in test]]))
    compact = {int(token): i for i, token in enumerate(vocab)}
    fit_c = np.array([compact[int(t)] for t in fit_ids])
    tests = [(np.array([compact[int(t)] for t in ids]), np.asarray(first)) for ids, first in test]
    majority_expert = np.array([np.bincount(f, minlength=num_experts).argmax() for f in fit_first])  # [M]

    def accuracy(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # -> per prompt [P], hits [M, sum T]
        hits = []
        for ids, first in tests:
            guess = table[:, ids]  # [M, T]
            guess = np.where(guess < 0, majority_expert[:, None], guess)
            hits.append(guess == first)
        return np.array([h.mean() for h in hits]), np.concatenate(hits, axis=1)

    per_prompt, hits = accuracy(_id_table(fit_c, fit_first, len(vocab), num_experts))
    null = np.empty((len(tests), draws))
    for d in range(draws):
        shuffled = fit_first[:, rng.permutation(fit_first.shape[1])]
        null[:, d] = accuracy(_id_table(fit_c, shuffled, len(vocab), num_experts))[0]
    majority = np.array([(first == majority_expert[:, None]).mean() for _, first in tests])
    coverage = float(np.isin(np.concatenate([ids for ids, _ in test]), fit_ids).mean())
    return TokenIdRouting(per_prompt, hits.mean(axis=1), null, majority, coverage)


# --- head taxonomy, after removing the sink -----------------------------------------------------

HEAD_KINDS = ("induction", "previous-token", "positional", "broad", "other")


@dataclass(frozen=True)
class Taxonomy:
    """One label per head, from its attention with the first-token sink removed.

    labels        [L, H] one of HEAD_KINDS
    sink          [L, H] attention mass on position 0 before removal
    previous      [L, H] mass on q-1;  induction [L, H] (nan without repeated tokens)
    positional    [L, H] largest mean mass on one fixed offset q-d other than d = 1 (d = 0 is self)
    breadth       [L, H] mean row entropy / log(keys available): 1 = uniform
    """

    labels: np.ndarray
    sink: np.ndarray
    previous: np.ndarray
    induction: np.ndarray
    positional: np.ndarray
    breadth: np.ndarray


def offset_scores(attentions: np.ndarray, max_offset: int = 8) -> np.ndarray:
    """[L, H, max_offset+1] mean attention from q onto q-d, over the queries q >= d."""
    t = attentions.shape[-1]
    out = np.zeros((*attentions.shape[:2], max_offset + 1))
    for d in range(min(max_offset, t - 1) + 1):
        q = np.arange(d, t)
        out[..., d] = attentions[:, :, q, q - d].mean(axis=-1)
    return out


def breadth(attentions: np.ndarray, causal: bool, skip_first: bool = False) -> np.ndarray:
    """[L, H] mean over query rows of the row's entropy divided by the log of the number of
    keys it may see (1 = uniform); ``skip_first`` leaves key 0 (a removed sink) out. Only
    rows with at least two keys count."""
    t = attentions.shape[-1]
    low = 1 if skip_first else 0
    values = []
    for q in range(low + 1 if causal else 0, t):
        high = q + 1 if causal else t
        p = attentions[:, :, q, low:high]  # [L, H, keys]
        entropy = -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=-1)
        values.append(entropy / np.log(high - low))
    return np.mean(values, axis=0) if values else np.full(attentions.shape[:2], np.nan)


def head_taxonomy(
    attentions: np.ndarray, token_ids: np.ndarray, causal: bool = True, threshold: float = 0.4, broad: float = 0.7
) -> Taxonomy:
    """Label every head after removing the sink: induction (score >= threshold), else
    previous-token (mass on q-1 >= threshold), else positional (one other fixed offset
    >= threshold), else broad (breadth >= ``broad``), else other."""
    sink = first_token_mass(attentions)
    clean = remove_sink(attentions)
    induction = induction_scores(clean, token_ids)
    previous = previous_token_scores(clean)
    offsets = offset_scores(clean)
    offsets[..., 1] = 0.0  # offset 1 is the previous-token kind
    positional = offsets.max(axis=-1)
    wide = breadth(clean, causal, skip_first=True)
    labels = np.full(sink.shape, "other", dtype=object)
    labels[wide >= broad] = "broad"
    labels[positional >= threshold] = "positional"
    labels[previous >= threshold] = "previous-token"
    labels[np.nan_to_num(induction) >= threshold] = "induction"
    return Taxonomy(
        labels=labels, sink=sink, previous=previous, induction=induction, positional=positional, breadth=wide
    )
