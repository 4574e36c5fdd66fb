"""Replication cards: the statistics of published findings, as pure numpy over trace arrays.

Shapes: attentions [L, H, T, T] (rows = queries, sum to 1), hidden_states [L+1, T, D],
router arrays from ``RouterTrace`` ([M, T, K] choices). Nothing here imports torch: every
statistic is tested on a planted case (a hand-built pattern with a known answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np


@dataclass(frozen=True)
class Card:
    """One published finding, measured on the loaded model.

    measured        the headline number (mean over the prompt set)
    spread          its standard deviation over the prompts of the set (0 for one prompt)
    by_layer        [L] (or [L, H]) the per-layer (per-head) values behind the headline, or None;
                    ``layer_axis`` says what its first index counts
    chance          what the statistic gives without the phenomenon (uniform attention,
                    random routing, ...), stated in ``chance_note``
    published       the paper's value, read in the paper itself, when it is the same quantity;
                    None otherwise, and ``published_text`` says what the paper reports instead
    """

    name: str
    quantity: str
    method: str
    prompt_set: str
    measured: float
    spread: float
    chance: float
    chance_note: str
    published: float | None
    source: str
    by_layer: np.ndarray | None = None
    model_id: str = ""
    layer_axis: str = "layer (0 = first block)"  # what by_layer's first index counts
    published_text: str = ""  # what the paper reports, in its words, for the model it names

    def line(self) -> str:
        published = self.published_text if self.published is None else f"{self.published:.3g}"
        return (
            f"{self.name}: measured {self.measured:.3f} ± {self.spread:.3f} on '{self.prompt_set}' "
            f"(chance {self.chance:.3f}; published: {published or 'n/a'} [{self.source}])"
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


# --- induction heads (Olsson et al.) ---------------------------------------------------------


def repeated_copy_losses(logits: np.ndarray, token_ids: np.ndarray, start: int, period: int) -> tuple[float, float]:
    """Mean next-token loss (nats) on the first and on the second copy of a sequence of
    ``period`` tokens that starts at ``start`` and is repeated once (logits [T, V]).

    The first token of each copy is not scored: nothing earlier predicts it. An induction
    mechanism shows as a second-copy loss far below the first (which stays near log V for
    random tokens)."""
    logits = np.asarray(logits, dtype=np.float64)
    logprobs = logits - _logsumexp(logits)  # [T, V]

    def loss(targets):
        return float(-np.mean([logprobs[t - 1, token_ids[t]] for t in targets]))

    first = range(start + 1, start + period)
    second = range(start + period + 1, start + 2 * period)
    return loss(first), loss(second)


def _logsumexp(logits: np.ndarray) -> np.ndarray:
    top = logits.max(axis=-1, keepdims=True)
    return top + np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))


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


def random_pair_cosines(hidden_states: list[np.ndarray], pairs: int = 500, seed: int = 0) -> np.ndarray:
    """[pairs, L+1] cosine between the vectors of randomly drawn token pairs, each pair from
    two different texts (hidden_states: one [L+1, T_i, D] per text). Their mean over pairs is
    Ethayarajh's baseline for anisotropy (0 for isotropic vectors)."""
    rng = np.random.default_rng(seed)
    n = len(hidden_states)
    if n < 2:
        raise ValueError("random-pair cosine needs at least two texts")
    out = np.zeros((pairs, hidden_states[0].shape[0]))
    for i in range(pairs):
        a, b = rng.choice(n, size=2, replace=False)
        u = hidden_states[a][:, rng.integers(hidden_states[a].shape[1])]  # [L+1, D]
        v = hidden_states[b][:, rng.integers(hidden_states[b].shape[1])]
        out[i] = (_unit(u) * _unit(v)).sum(axis=-1)
    return out


def random_pair_cosine(hidden_states: list[np.ndarray], pairs: int = 500, seed: int = 0) -> np.ndarray:
    """[L+1] mean of ``random_pair_cosines``."""
    return random_pair_cosines(hidden_states, pairs, seed).mean(axis=0)


def self_similarity(word_vectors: np.ndarray) -> np.ndarray:
    """[L+1] mean pairwise cosine of one word's vectors in C different contexts
    (word_vectors [L+1, C, D]); Ethayarajh subtracts the random-pair baseline."""
    return mean_pairwise_cosine(word_vectors)


# --- prediction depth (logit lens) --------------------------------------------------------------


def prediction_depth(lens_top1: np.ndarray) -> np.ndarray:
    """[T] for each position the first depth l (0 = embeddings) whose lens top-1 equals
    the final prediction (the last row), divided by L: 1.0 = settled only at the output.

    lens_top1 [L+1, T]: argmax of the lens logits at every depth."""
    lens_top1 = np.asarray(lens_top1)
    depth = lens_top1.shape[0] - 1
    agrees = lens_top1 == lens_top1[-1]  # [L+1, T], the last row always agrees
    return agrees.argmax(axis=0) / depth


# --- Mixtral's routing analysis (Jiang et al. 2024, section 5) ----------------------------------


def consecutive_same_first(chosen: np.ndarray) -> np.ndarray:
    """[M] share of neighbouring token pairs (t, t+1) whose first-choice expert is the same
    (chosen [M, T, K])."""
    first = chosen[..., 0]
    return (first[:, 1:] == first[:, :-1]).mean(axis=1)


def consecutive_topk_overlap(chosen: np.ndarray) -> np.ndarray:
    """[M] share of neighbouring token pairs whose top-k expert sets share at least one
    expert."""
    shared = (chosen[:, 1:, :, None] == chosen[:, :-1, None, :]).any(axis=(-1, -2))  # [M, T-1]
    return shared.mean(axis=1)


def consecutive_first_in_topk(chosen: np.ndarray) -> np.ndarray:
    """[M] share of neighbouring pairs where token t+1's first choice is among token t's
    top-k (a second reading of 'first or second choice'; chance k/N)."""
    return (chosen[:, 1:, 0, None] == chosen[:, :-1, :]).any(axis=-1).mean(axis=1)


def chance_same_first(num_experts: int) -> float:
    """Two independent uniform first choices agree with probability 1/N."""
    return 1.0 / num_experts


def chance_topk_overlap(num_experts: int, k: int) -> float:
    """Two independent uniform k-subsets of N experts intersect with probability
    1 - C(N-k, k) / C(N, k) (0.464 for N = 8, k = 2)."""
    return 1.0 - comb(num_experts - k, k) / comb(num_experts, k)


# --- token-id routing (OpenMoE) -----------------------------------------------------------------


@dataclass(frozen=True)
class Predictability:
    """Per MoE layer, how well a table fitted on training text predicts the router's first
    choice on held-out text.

    by_id        [M] accuracy of the table token id -> most common expert
    by_bigram    [M] accuracy of (previous id, id) -> most common expert, backing off to
                 the id table, then to the majority expert
    majority     [M] accuracy of always answering the training text's most common expert
    coverage     share of held-out tokens whose id occurs in the training text
    """

    by_id: np.ndarray
    by_bigram: np.ndarray
    majority: np.ndarray
    coverage: float


def _most_common(table: dict) -> dict:
    return {key: int(np.bincount(values).argmax()) for key, values in table.items()}


def token_id_predictability(
    train_ids: np.ndarray, train_first: np.ndarray, test_ids: np.ndarray, test_first: np.ndarray
) -> Predictability:
    """train_ids [N], train_first [M, N] (first-choice experts), test_ids [N'], test_first [M, N']."""
    train_ids, test_ids = np.asarray(train_ids), np.asarray(test_ids)
    m = train_first.shape[0]
    by_id, by_bigram, majority = np.zeros(m), np.zeros(m), np.zeros(m)
    for layer in range(m):
        unigram, bigram = {}, {}
        for t, token in enumerate(train_ids):
            unigram.setdefault(int(token), []).append(train_first[layer, t])
            if t:
                bigram.setdefault((int(train_ids[t - 1]), int(token)), []).append(train_first[layer, t])
        unigram, bigram = _most_common(unigram), _most_common(bigram)
        common = int(np.bincount(train_first[layer]).argmax())
        guess_id = np.array([unigram.get(int(tok), common) for tok in test_ids])
        guess_bi = np.array(
            [
                bigram.get((int(test_ids[t - 1]), int(tok)), guess_id[t]) if t else guess_id[t]
                for t, tok in enumerate(test_ids)
            ]
        )
        by_id[layer] = (guess_id == test_first[layer]).mean()
        by_bigram[layer] = (guess_bi == test_first[layer]).mean()
        majority[layer] = (test_first[layer] == common).mean()
    coverage = float(np.isin(test_ids, train_ids).mean())
    return Predictability(by_id=by_id, by_bigram=by_bigram, majority=majority, coverage=coverage)


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


def mean_probs_by_token(runs: list[tuple[np.ndarray, np.ndarray]], vocab_size: int) -> np.ndarray:
    """[M, V, E] mean router probabilities of each token id over reference runs, each
    (token_ids [T], probs [M, T, E]); nan rows for ids that never occur. A router that
    'sees only the token id' routes every occurrence by its id's row."""
    m, _, e = runs[0][1].shape
    sums, counts = np.zeros((m, vocab_size, e)), np.zeros(vocab_size)
    for ids, probs in runs:
        for t, token in enumerate(ids):
            sums[:, token] += probs[:, t]
            counts[token] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts[None, :, None] > 0, sums / counts[None, :, None], np.nan)
