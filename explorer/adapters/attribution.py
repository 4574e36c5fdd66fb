"""Which input tokens mattered: token attribution for every family, each map with its faithfulness.

``explain(loaded, ids, target, method)`` returns an ``Attribution``: one score per input position
(``scores [N]``) for one scalar output ``f`` of the model, plus ``f`` and the target's probability on
the real input and on the all-baseline input. ``faithfulness(loaded, attribution)`` then measures the
map: deletion and insertion curves in attribution order against a band of random orders.

What is explained (``Target``), per family:

* decoder (and MoE decoders): the next token after ``ids`` (``Target.next_token()``; ``at=k`` explains
  the token ``ids[k]`` from the prefix ``ids[:k]``: a generated token at a given step);
* encoder: the token predicted at one ``[MASK]`` position (``Target.masked()``; the MLM head is needed);
* encoder-decoder: one output token (``Target.output(output_ids, step)``) over the source tokens and the
  target prefix (start tokens + ``output_ids[:step]``); ``seq2seq_matrix`` explains every output token
  over the source (a matrix to set beside cross-attention). Speech sources (Whisper) are refused;
* MoE decoder: the next token, or ``Target.router(position, layer)``: the router logit of the expert a
  token is sent to first in one MoE layer (what in the input sent it to that expert), over ids[:position+1]
  (a causal router reads nothing after its token). Switch Transformers is explained like an encoder-decoder.

``f`` (``measure``): ``"prob"`` (default) is the target token's probability softmax(logits)[y], the quantity
the faithfulness curves plot; ``"logprob"`` its log-probability, ``"logit"`` its raw logit. A router target
always uses the router logit of the expert (its probability among the experts is the "probability" of the
faithfulness curves). Why probability by default: on SmolLM2-135M, log p along the straight path from the
baseline has sharp dips (one fell by 4 nats and came back within 3% of the path: interpolated embeddings
no text produces), which 32 integration steps cannot resolve. On one 20-token prompt IG-32's completeness
error was 10x (1033%) with log p and the pad baseline, 59% with the zero baseline, 9% even with 512 steps;
those dips lie where p is ~1e-5, so with p itself the error was 22% (pad) and 1.5% (zero) at 32 steps, 2.2%
(pad) at 64. An ``Attribution`` whose completeness error exceeds COMPLETENESS_TOLERANCE carries a note.

Methods (scores over the N explained positions, summed over the embedding width where there is one):

* ``gradient_x_input``: sum_d grad_e f(x) * e, with e the input embedding (not baseline-relative);
* ``integrated_gradients``: sum_d (e - e') * integral_0^1 grad f(e' + a (e - e')) da, with Gauss-Legendre
  nodes (``steps`` of them; the rule Captum uses by default), all steps batched in chunks, one forward and
  one backward per chunk. Completeness: sum(scores) = f(x) - f(x') up to the quadrature error, reported as
  ``completeness_error = |sum(scores) - (f(x) - f(x'))| / |f(x) - f(x')|``;
* ``occlusion``: leave-one-out, exact: f(x) - f(x with position i replaced by the baseline), every
  position one row of a batched forward;
* ``attention_rollout`` (Abnar & Zuidema 2020): the product over layers of 0.5 * head-mean attention +
  0.5 * I, the row of the explained position. It ignores the target token: a contrast, not an explanation.

The baseline x' (``baseline``): every movable position replaced by the padding token (``"pad"``; the
end-of-sequence token where the model has no padding token), the mask token (``"mask"``), the unknown-word
token (``"unk"``, Inseq's default), or a zero embedding vector (``"zero"``). Special tokens (BOS, [CLS],
[SEP], </s>, a decoder's start tokens) and the encoder's query [MASK] are not movable: they keep their
embedding in the baseline, are never removed by the faithfulness curves, and get 0 from integrated gradients
and occlusion.

Captum (0.9) and this module's own code (``engine``; where Captum is not installed, "own" runs instead):

* ``gradient_x_input`` runs this module's own code by default: one forward of the input and the baseline as
  two rows (the endpoints every map reports, and the target when the caller left it open) and one backward,
  under the model lock: 0.3 s on a 20-token SmolLM2 prompt where a separate endpoint forward made it 0.5 s.
  ``engine="captum"`` runs Captum's ``InputXGradient`` over the input embeddings and gives the same numbers
  (tested).
* ``occlusion`` runs Captum's ``FeatureAblation`` over the embeddings (one feature group per position,
  baseline rows for the ablated position, ``perturbations_per_eval`` rows per forward) by default; its
  forward takes the model lock per call. ``engine="own"`` gives the same numbers (tested).
* ``integrated_gradients`` runs this module's own loop by default: Captum's IG interleaves forwards and
  backwards inside one call, so the shared model's lock would have to be held for the whole run (seconds
  on SmolLM2, every other visitor waiting), while the own loop takes it per chunk; the own loop also
  evaluates f(x) and f(x') in the same batch as the completeness check. ``engine="captum"`` runs Captum's
  ``IntegratedGradients`` over the embeddings (lock held for the call) and agrees (tested). Captum's
  ``LayerIntegratedGradients`` on the embedding layer, the usual recipe, is the same computation (the test
  checks it on a tiny Llama) but registers a hook on the shared model's embedding layer, cannot express a
  zero-vector baseline, and sees T5's shared embedding called twice (encoder and decoder); interpolating
  ``inputs_embeds`` needs no hook at all.
* ``attention_rollout`` is not in Captum; own code (numpy, from an eager-attention trace).

Faithfulness (``faithfulness``): the deletion curve replaces the movable positions by the baseline in
decreasing score order, the insertion curve starts from the baseline and restores them in that order; the
target's probability is read after each step. Their areas are AOPC comprehensiveness (mean drop from p(x)
while deleting: higher is better) and sufficiency (mean gap below p(x) while inserting: lower is better). The
same for ``orders`` (>= 20) seeded random orders gives the band (mean, 5th, 95th percentile). The map
``beats_random`` when its comprehensiveness is at or above the random 95th percentile (and above the random
mean) and its sufficiency at or below the random 5th percentile (and below the random mean).

Concurrency: every forward (and its backward) holds ``loaded.lock`` for one chunk; no hook is ever
registered on the model, parameters are never written, and the model stays in eval mode.
"""

from __future__ import annotations

import contextlib
import importlib.util
import time
import weakref
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch

from explorer.adapters import decoder, encoder, moe, seq2seq
from explorer.adapters.common import MAX_TRACE_TOKENS, display_tokens
from explorer.registry import FAMILIES
from explorer.text import InputError

METHODS = ("gradient_x_input", "integrated_gradients", "occlusion", "attention_rollout")
BASELINES = ("pad", "mask", "zero", "unk")
MEASURES = ("prob", "logprob", "logit")
COMPLETENESS_TOLERANCE = 0.05  # above it, an integrated-gradients map says that its steps were too few
# The engine each method runs by default (module docstring: why IG runs the own loop).
DEFAULT_ENGINE = {
    "gradient_x_input": "own",
    "integrated_gradients": "own",
    "occlusion": "captum",
    "attention_rollout": "own",
}
BATCH_TOKENS = 256  # most token positions one chunk reads (rows x positions): how long one chunk holds the lock
LOGIT_FLOATS = 2**24  # most logits one chunk's forward keeps (64 MB in float32)
HANDOFF_PAUSE_S = 0.002  # between chunks: a visitor waiting for the model's lock goes first
MAX_ATTRIBUTION_TOKENS = MAX_TRACE_TOKENS


# --- what is explained -------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The scalar output an attribution explains.

    kind        "next" (decoder, MoE), "masked" (encoder), "output" (encoder-decoder), "router" (MoE)
    token_id    the token whose (log-)probability is explained; None: the model's own top choice
    position    next: explain ids[position] from ids[:position] (None: the token after all of ids);
                masked: the [MASK] position (None: the first mask token); router: the routed token
    output_ids  output: the output tokens after the decoder's start tokens (teacher-forced prefix)
    step        output: which output token is explained (its prefix is output_ids[:step])
    layer       router: the block index of the MoE layer
    expert      router: the expert (None: the token's first choice on the real input)
    """

    kind: str
    token_id: int | None = None
    position: int | None = None
    output_ids: tuple[int, ...] = ()
    step: int = 0
    layer: int | None = None
    expert: int | None = None

    @classmethod
    def next_token(cls, token_id: int | None = None, at: int | None = None) -> Target:
        return cls("next", token_id=token_id, position=at)

    @classmethod
    def masked(cls, position: int | None = None, token_id: int | None = None) -> Target:
        return cls("masked", token_id=token_id, position=position)

    @classmethod
    def output(cls, output_ids=(), step: int = 0, token_id: int | None = None) -> Target:
        return cls("output", token_id=token_id, output_ids=tuple(int(i) for i in output_ids), step=int(step))

    @classmethod
    def router(cls, position: int, layer: int, expert: int | None = None) -> Target:
        return cls("router", position=int(position), layer=int(layer), expert=expert)


def _read_only(obj) -> None:
    for value in vars(obj).values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False


@dataclass(frozen=True)
class Attribution:
    """One attribution map. N = the explained positions (decoder: the prefix read; encoder-decoder: the
    source tokens, then the decoder's start tokens and output prefix).

    scores             [N] float64  the method's score per position (positive: raised f)
    token_ids          [N] int64    the tokens at those positions
    tokens             N display strings; segments: N of "input" / "source" / "target"
    movable            [N] bool     positions the baseline replaces (False: special tokens, the query)
    input_ids          [T] int64    the ids given to ``explain`` (to re-run the same problem)
    target             the Target, resolved (token_id, position, expert filled in)
    target_score       f(x): the measure on the real input; baseline_score f(x') on the baseline
    target_prob        the target's probability on the real input (router: the expert's router
                       probability); baseline_prob the same on the baseline input
    completeness_gap   integrated gradients: sum(scores) - (f(x) - f(x')); None for other methods
    completeness_error integrated gradients: |gap| / |f(x) - f(x')| (nan when f(x) = f(x')); else None
    """

    method: str
    engine: str
    baseline: str
    measure: str
    steps: int | None
    target: Target
    scores: np.ndarray
    token_ids: np.ndarray
    tokens: tuple[str, ...]
    segments: tuple[str, ...]
    movable: np.ndarray
    input_ids: np.ndarray
    target_score: float
    baseline_score: float
    target_prob: float
    baseline_prob: float
    baseline_id: int | None
    completeness_gap: float | None = None
    completeness_error: float | None = None
    seconds: float = 0.0
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.tokens)
        if not (self.scores.shape == self.token_ids.shape == self.movable.shape == (n,) and len(self.segments) == n):
            raise ValueError(f"scores {self.scores.shape}, token_ids {self.token_ids.shape}, {n} tokens")
        _read_only(self)


# --- the problem: embeddings in, f out ---------------------------------------------------------


@dataclass
class _Problem:
    loaded: object
    kind: str  # "decoder", "encoder", "seq2seq"
    target: Target
    measure: str
    ids: np.ndarray  # [N] explained positions' token ids
    source_len: int  # seq2seq: the first source_len positions are the source (else N)
    segments: tuple[str, ...]
    movable: np.ndarray  # [N] bool
    embeds: torch.Tensor  # [N, D], detached: what the model reads at each position
    base: torch.Tensor  # [N, D], detached: the baseline (non-movable rows equal ``embeds``)
    baseline_id: int | None
    rows: int  # most rows per chunk
    notes: tuple[str, ...] = ()
    raw: Callable | None = field(default=None, repr=False)  # embeds [B, N, D] -> logits [B, V] (router: [B, E])

    def score(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f [B] and the target's probability [B] of every row of ``batch`` [B, N, D]."""
        return self.measured(self.raw(self, batch))

    def measured(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.target.kind == "router":
            expert = self.target.expert
            return logits[:, expert], torch.softmax(logits, dim=-1)[:, expert]
        return _measure(logits, self.target.token_id, self.measure)

    @property
    def n(self) -> int:
        return len(self.ids)


@contextlib.contextmanager
def _locked(loaded, grad: bool):
    """One forward (and its backward) on the shared model: the lock, autograd on or off."""
    with loaded.lock, torch.enable_grad() if grad else torch.no_grad():
        yield


def _measure(logits: torch.Tensor, token: int, measure: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(f, probability) of ``token`` from logits [B, V]."""
    logp = torch.log_softmax(logits.float(), dim=-1)[:, token]
    if measure == "logit":
        return logits[:, token].float(), logp.exp()
    if measure == "prob":
        return logp.exp(), logp.exp()
    return logp, logp.exp()


def _next_logits(problem: _Problem, batch: torch.Tensor) -> torch.Tensor:
    out = problem.loaded.model(inputs_embeds=batch, logits_to_keep=1, use_cache=False, return_dict=True)
    return out.logits[:, -1].float()


def _masked_logits(problem: _Problem, batch: torch.Tensor) -> torch.Tensor:
    out = problem.loaded.model(inputs_embeds=batch, return_dict=True)
    return out.logits[:, problem.target.position].float()


def _seq2seq_logits(problem: _Problem, batch: torch.Tensor) -> torch.Tensor:
    s = problem.source_len
    out = problem.loaded.model(
        inputs_embeds=batch[:, :s], decoder_inputs_embeds=batch[:, s:], use_cache=False, return_dict=True
    )
    return out.logits[:, -1].float()


def _router_logits(problem: _Problem, batch: torch.Tensor) -> torch.Tensor:
    """[B, E] router logits of the routed position in the target's MoE layer."""
    target = problem.target
    out = problem.loaded.model(
        inputs_embeds=batch, output_router_logits=True, logits_to_keep=1, use_cache=False, return_dict=True
    )
    index = _moe_index(problem.loaded, target.layer)
    recorded = out.router_logits[index]  # [B * N, E]: routers flatten batch x position
    return recorded.reshape(batch.shape[0], batch.shape[1], -1)[:, target.position].float()


def _moe_index(loaded, layer: int) -> int:
    layers = [int(i) for i in moe.moe_layer_indices(loaded.model, "model")]
    if layer not in layers:
        raise InputError(f"Block {layer} has no router; the MoE blocks are {', '.join(map(str, layers))}.")
    return layers.index(layer)


# Per model: the factor the stacks multiply a token's embedding row by before adding positions,
# found by comparing a forward from ids with one from embeddings (Marian's encoder scales only ids).
_SCALES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _seq2seq_scales(loaded) -> tuple[float, float]:
    model = loaded.model
    if model in _SCALES:
        return _SCALES[model]
    ids = torch.tensor([[5, 6, 7]], device=loaded.device)
    dec = torch.tensor([[int(seq2seq.start_ids(loaded)[0]), 5]], device=loaded.device)
    enc_embed, dec_embed = model.get_encoder().get_input_embeddings(), model.get_decoder().get_input_embeddings()
    candidates = {1.0}
    for stack in (model.get_encoder(), model.get_decoder()):
        scale = getattr(stack, "embed_scale", None)
        if isinstance(scale, (int, float)):
            candidates.add(float(scale))
    with _locked(loaded, grad=False):
        reference = model(input_ids=ids, decoder_input_ids=dec, use_cache=False).logits
        for a in sorted(candidates):
            for b in sorted(candidates):
                logits = model(
                    inputs_embeds=enc_embed(ids) * a, decoder_inputs_embeds=dec_embed(dec) * b, use_cache=False
                ).logits
                if torch.allclose(logits, reference, atol=1e-4, rtol=1e-4):
                    _SCALES[model] = (a, b)
                    return a, b
    raise InputError(f"{type(model).__name__} reads embeddings differently from token ids: no attribution.")


def _embed(loaded, ids: np.ndarray, stack: str = "model") -> torch.Tensor:
    model = loaded.model
    tensor = torch.tensor(np.asarray(ids, dtype=np.int64), device=loaded.device)  # a copy: ids may be read-only
    with torch.no_grad():
        if stack == "model":
            return model.get_input_embeddings()(tensor).detach().float()
        enc_scale, dec_scale = _seq2seq_scales(loaded)
        if stack == "encoder":
            return (model.get_encoder().get_input_embeddings()(tensor) * enc_scale).detach().float()
        return (model.get_decoder().get_input_embeddings()(tensor) * dec_scale).detach().float()


def _special_ids(loaded) -> set[int]:
    tokenizer = loaded.tokenizer
    if tokenizer is None:
        return set()
    unk = getattr(tokenizer, "unk_token_id", None)
    return {int(i) for i in getattr(tokenizer, "all_special_ids", ()) if i is not None and i != unk}


def _baseline_id(loaded, baseline: str) -> int | None:
    """The token a removed position becomes (None for the zero vector)."""
    if baseline not in BASELINES:
        raise InputError(f"The baseline is one of {', '.join(BASELINES)}, not {baseline!r}.")
    if baseline == "zero":
        return None
    tokenizer, config = loaded.tokenizer, loaded.model.config
    if baseline == "unk":  # Inseq's default baseline (the unknown token)
        unk = getattr(tokenizer, "unk_token_id", None) if tokenizer is not None else None
        if unk is None:
            raise InputError(f"{loaded.model_id} has no unknown-word token: use the 'pad' or 'zero' baseline.")
        return int(unk)
    if baseline == "mask":
        mask = getattr(tokenizer, "mask_token_id", None) if tokenizer is not None else None
        if mask is None:
            raise InputError(f"{loaded.model_id} has no mask token: use the 'pad' or 'zero' baseline.")
        return int(mask)
    for source, name in (
        (tokenizer, "pad_token_id"),
        (config, "pad_token_id"),
        (tokenizer, "eos_token_id"),
        (config, "eos_token_id"),
    ):
        value = getattr(source, name, None) if source is not None else None
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        if value is not None:
            return int(value)
    raise InputError(f"{loaded.model_id} has neither a padding nor an end token: use the 'zero' baseline.")


def _check_ids(loaded, ids) -> np.ndarray:
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    rows = loaded.model.get_input_embeddings().num_embeddings
    if len(ids) == 0:
        raise InputError("There is no input token to attribute to.")
    if len(ids) > MAX_ATTRIBUTION_TOKENS:
        raise InputError(f"The input is {len(ids)} tokens; attribution reads at most {MAX_ATTRIBUTION_TOKENS}.")
    if ids.min() < 0 or ids.max() >= rows:
        raise InputError(f"A token id is outside this model's vocabulary (0..{rows - 1}).")
    return ids


def _kind(loaded) -> str:
    if loaded.arch.audio:
        raise InputError("Attribution over a speech source is not offered: it needs text tokens to score.")
    if moe.is_encoder_decoder(loaded):  # the model's own structure, not its family's name
        return "seq2seq"
    return "encoder" if FAMILIES[loaded.family].encoder_only else "decoder"


def _default_target(kind: str, target) -> Target:
    if isinstance(target, Target):
        return target
    token = None if target is None else int(target)
    return {"decoder": Target.next_token, "encoder": Target.masked, "seq2seq": Target.output}[kind](token_id=token)


def _check_kind(loaded, kind: str, target: Target) -> None:
    allowed = {"decoder": ("next", "router"), "encoder": ("masked",), "seq2seq": ("output",)}[kind]
    if target.kind not in allowed:
        raise InputError(f"A {loaded.arch.display} model explains {' or '.join(allowed)} targets, not {target.kind!r}.")
    if target.kind == "router" and not moe.has_router(loaded.model):
        raise InputError("Only a mixture-of-experts decoder has a router to explain.")
    if kind == "encoder" and not loaded.has_mlm_head:
        raise InputError(f"{loaded.model_id} has no trained masked-language head: there is no prediction to explain.")


def _rows(loaded, n: int, logit_positions: int) -> int:
    vocab = int(loaded.model.config.get_text_config().vocab_size or 1)
    return int(max(1, min(BATCH_TOKENS // max(n, 1), LOGIT_FLOATS // max(logit_positions * vocab, 1))))


def _problem(loaded, ids, target, baseline: str, measure: str) -> _Problem:
    """Everything a method needs; a target left open is resolved by the first forward (``_endpoints``)."""
    if measure not in MEASURES:
        raise InputError(f"The measure is one of {', '.join(MEASURES)}, not {measure!r}.")
    ids = _check_ids(loaded, ids)
    kind = _kind(loaded)
    target = _default_target(kind, target)
    _check_kind(loaded, kind, target)
    baseline_id = _baseline_id(loaded, baseline)
    special = _special_ids(loaded)
    if kind == "seq2seq":
        problem = _seq2seq_problem(loaded, ids, target, special)
    elif kind == "encoder":
        problem = _encoder_problem(loaded, ids, target, special)
    else:
        problem = _decoder_problem(loaded, ids, target, special)
    problem.measure = "logit" if target.kind == "router" else measure
    problem.baseline_id = baseline_id
    if baseline_id is None:
        replacement = torch.zeros_like(problem.embeds)
    elif kind == "seq2seq":
        s = problem.source_len
        replacement = torch.cat(
            [
                _embed(loaded, np.full(s, baseline_id), "encoder"),
                _embed(loaded, np.full(problem.n - s, baseline_id), "decoder"),
            ]
        )
    else:
        replacement = _embed(loaded, np.full(problem.n, baseline_id))
    keep = torch.as_tensor(~problem.movable, device=problem.embeds.device)[:, None]
    problem.base = torch.where(keep, problem.embeds, replacement)
    if not problem.movable.any():
        raise InputError("Every input position is a special token: there is nothing to attribute to.")
    return problem


def _decoder_problem(loaded, ids, target: Target, special: set[int]) -> _Problem:
    if target.kind == "router":
        if not 0 <= target.position < len(ids):
            raise InputError(f"Position {target.position} is outside the {len(ids)}-token input.")
        _moe_index(loaded, target.layer)
        read = ids[: target.position + 1]  # a causal router reads nothing after its token
        raw = _router_logits
    else:
        at = target.position
        if at is not None:
            if not 1 <= at < len(ids):
                raise InputError(f"Step {at} has no prefix inside the {len(ids)}-token text (1..{len(ids) - 1}).")
            target = replace(target, token_id=int(ids[at]) if target.token_id is None else target.token_id)
            read = ids[:at]
        else:
            read = ids
        raw = _next_logits
    movable = np.array([int(i) not in special for i in read], dtype=bool)
    embeds = _embed(loaded, read)
    return _Problem(
        loaded,
        "decoder",
        target,
        "logprob",
        read,
        len(read),
        ("input",) * len(read),
        movable,
        embeds,
        embeds,
        None,
        _rows(loaded, len(read), 1),
        raw=raw,
    )


def _encoder_problem(loaded, ids, target: Target, special: set[int]) -> _Problem:
    position = target.position
    if position is None:
        mask = getattr(loaded.tokenizer, "mask_token_id", None) if loaded.tokenizer is not None else None
        found = np.flatnonzero(ids == mask) if mask is not None else []
        if len(found) == 0:
            raise InputError("The text has no mask token: write [MASK] where the model should fill in a word.")
        position = int(found[0])
    if not 0 <= position < len(ids):
        raise InputError(f"Position {position} is outside the {len(ids)}-token input.")
    target = replace(target, position=position)
    movable = np.array([int(i) not in special for i in ids], dtype=bool)
    movable[position] = False  # the question itself stays
    embeds = _embed(loaded, ids)
    return _Problem(
        loaded,
        "encoder",
        target,
        "logprob",
        ids,
        len(ids),
        ("input",) * len(ids),
        movable,
        embeds,
        embeds,
        None,
        _rows(loaded, len(ids), len(ids)),
        raw=_masked_logits,
    )


def _seq2seq_problem(loaded, ids, target: Target, special: set[int]) -> _Problem:
    start = seq2seq.start_ids(loaded)
    outputs = np.asarray(target.output_ids, dtype=np.int64)
    if not 0 <= target.step <= len(outputs):
        raise InputError(f"Output step {target.step} is outside the {len(outputs)} output tokens given.")
    if target.step < len(outputs) and target.token_id is None:
        target = replace(target, token_id=int(outputs[target.step]))
    prefix = np.concatenate([start, outputs[: target.step]]).astype(np.int64)
    read = np.concatenate([ids, prefix])
    movable = np.array([int(i) not in special for i in read], dtype=bool)
    movable[len(ids) : len(ids) + len(start)] = False  # the decoder's start tokens stay
    embeds = torch.cat([_embed(loaded, ids, "encoder"), _embed(loaded, prefix, "decoder")])
    segments = ("source",) * len(ids) + ("target",) * len(prefix)
    return _Problem(
        loaded,
        "seq2seq",
        target,
        "logprob",
        read,
        len(ids),
        segments,
        movable,
        embeds,
        embeds,
        None,
        _rows(loaded, len(read), len(prefix)),
        raw=_seq2seq_logits,
    )


def _endpoints(problem: _Problem) -> tuple[np.ndarray, np.ndarray]:
    """f and the probability [2] on the real input and on the baseline, in one forward of two rows; a target the
    caller left open (token, expert) becomes the model's own top choice on the real input."""
    with _locked(problem.loaded, grad=False):
        logits = problem.raw(problem, torch.stack([problem.embeds, problem.base]))
    _resolve_target(problem, logits[0])
    f, p = problem.measured(logits)
    return f.double().cpu().numpy(), p.double().cpu().numpy()


def _resolve_target(problem: _Problem, logits: torch.Tensor) -> None:
    """A target the caller left open (token, expert) becomes the model's own top choice in ``logits`` [V or E]."""
    target = problem.target
    if target.kind == "router" and target.expert is None:
        problem.target = replace(target, expert=int(logits.argmax()))
    elif target.kind != "router" and target.token_id is None:
        problem.target = replace(target, token_id=int(logits.argmax()))


# --- batched evaluation ------------------------------------------------------------------------


def _chunks(total: int, size: int):
    for start in range(0, total, size):
        yield slice(start, min(start + size, total))


def _evaluate(problem: _Problem, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """f [B] and probability [B] of every row of ``batch`` [B, N, D], no gradient, lock per chunk."""
    f, p = [], []
    for i, rows in enumerate(_chunks(batch.shape[0], problem.rows)):
        if i:
            time.sleep(HANDOFF_PAUSE_S)
        with _locked(problem.loaded, grad=False):
            fx, px = problem.score(batch[rows])
        f.append(fx.double().cpu().numpy())
        p.append(px.double().cpu().numpy())
    return np.concatenate(f), np.concatenate(p)


def _masked_batch(problem: _Problem, replaced: np.ndarray) -> torch.Tensor:
    """[B, N, D]: the real embeddings with the positions True in ``replaced`` [B, N] taken from the baseline."""
    mask = torch.as_tensor(replaced, device=problem.embeds.device)[:, :, None]
    return torch.where(mask, problem.base[None], problem.embeds[None])


# --- methods -----------------------------------------------------------------------------------


def _gradient_x_input_own(problem: _Problem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(f [2], probability [2] on the input and the baseline, scores [N]) from one forward of both rows and one
    backward of the input's row (the target resolved on the way, as ``_endpoints`` does)."""
    with _locked(problem.loaded, grad=True):
        x = problem.embeds[None].clone().requires_grad_(True)
        logits = problem.raw(problem, torch.cat([x, problem.base[None]]))
        _resolve_target(problem, logits[0].detach())
        f, p = problem.measured(logits)
        (grad,) = torch.autograd.grad(f[0], x)
    scores = (grad[0] * problem.embeds).sum(-1).double().cpu().numpy()
    return f.detach().double().cpu().numpy(), p.detach().double().cpu().numpy(), scores


def _gradient_x_input_captum(problem: _Problem) -> np.ndarray:
    from captum.attr import InputXGradient

    with _locked(problem.loaded, grad=True):
        x = problem.embeds[None].clone().requires_grad_(True)
        attr = InputXGradient(lambda e: problem.score(e)[0]).attribute(x)
    return attr[0].sum(-1).detach().double().cpu().numpy()


def gauss_legendre(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes in (0, 1) and weights (summing to 1) of the ``steps``-point Gauss-Legendre rule (Captum's
    default for integrated gradients)."""
    nodes, weights = np.polynomial.legendre.leggauss(int(steps))
    return 0.5 * (nodes + 1.0), 0.5 * weights


def _integrated_gradients_own(problem: _Problem, steps: int) -> np.ndarray:
    alphas, weights = gauss_legendre(steps)
    diff = problem.embeds - problem.base  # [N, D]
    total = torch.zeros_like(problem.embeds, dtype=torch.float64)
    for i, rows in enumerate(_chunks(steps, problem.rows)):
        if i:
            time.sleep(HANDOFF_PAUSE_S)
        a = torch.as_tensor(alphas[rows], dtype=problem.embeds.dtype, device=problem.embeds.device)[:, None, None]
        w = torch.as_tensor(weights[rows], dtype=torch.float64, device=problem.embeds.device)[:, None, None]
        with _locked(problem.loaded, grad=True):
            x = (problem.base[None] + a * diff[None]).requires_grad_(True)
            f, _ = problem.score(x)
            (grad,) = torch.autograd.grad(f.sum(), x)
        total += (grad.double() * w).sum(0)
    return (total * diff.double()).sum(-1).cpu().numpy()


def _integrated_gradients_captum(problem: _Problem, steps: int) -> np.ndarray:
    from captum.attr import IntegratedGradients

    with _locked(problem.loaded, grad=True):
        attr = IntegratedGradients(lambda e: problem.score(e)[0]).attribute(
            problem.embeds[None].clone(),
            baselines=problem.base[None].clone(),
            n_steps=int(steps),
            method="gausslegendre",
            internal_batch_size=problem.rows,
        )
    return attr[0].sum(-1).detach().double().cpu().numpy()


def _occlusion_own(problem: _Problem, f_x: float) -> np.ndarray:
    positions = np.flatnonzero(problem.movable)
    replaced = np.zeros((len(positions), problem.n), dtype=bool)
    replaced[np.arange(len(positions)), positions] = True
    f, _ = _evaluate(problem, _masked_batch(problem, replaced))
    scores = np.zeros(problem.n)
    scores[positions] = f_x - f
    return scores


def _occlusion_captum(problem: _Problem) -> np.ndarray:
    from captum.attr import FeatureAblation

    def forward(batch):
        with _locked(problem.loaded, grad=False):
            return problem.score(batch)[0]

    groups = torch.arange(problem.n, device=problem.embeds.device)[None, :, None]  # one group per position
    attr = FeatureAblation(forward).attribute(
        problem.embeds[None].clone(),
        baselines=problem.base[None].clone(),
        feature_mask=groups,
        perturbations_per_eval=problem.rows,
    )
    scores = attr[0, :, 0].double().cpu().numpy()
    scores[~problem.movable] = 0.0  # unchanged rows: exactly 0 (Captum's batches leave float noise)
    return scores


def attention_rollout(attentions: np.ndarray, residual: float = 0.5) -> np.ndarray:
    """Abnar & Zuidema (2020): attentions [L, H, T, T] -> rollout [T, T], the product A_L ... A_1 of
    A_l = (1 - residual) * mean over heads + residual * I, each row renormalised to sum to 1. Row i: how
    much of position i's last representation each input position contributed, if attention alone mixed."""
    maps = np.asarray(attentions, dtype=np.float64).mean(axis=1)  # [L, T, T]
    t = maps.shape[-1]
    rollout = np.eye(t)
    for layer in maps:
        mixed = (1.0 - residual) * layer + residual * np.eye(t)
        mixed = mixed / mixed.sum(axis=-1, keepdims=True)
        rollout = mixed @ rollout
    return rollout


def _rollout(problem: _Problem) -> np.ndarray:
    loaded, target = problem.loaded, problem.target
    if problem.kind == "encoder":
        trace = encoder.trace_ids(loaded, problem.ids, with_logits=False)
        return attention_rollout(trace.attentions)[target.position]
    if problem.kind == "decoder":
        trace = decoder.trace_ids(loaded, problem.ids)
        row = target.position if target.kind == "router" else problem.n - 1
        return attention_rollout(trace.attentions)[row]
    s = problem.source_len
    encoded = seq2seq.encode_ids(loaded, problem.ids[:s])
    traced = seq2seq.trace(loaded, encoded, problem.ids[s:])
    cross = traced.cross_attentions[:, :, -1, :].mean(axis=(0, 1))  # [S]: the predicting position, all layers
    source = cross @ attention_rollout(encoded.trace.attentions)  # through the encoder's own mixing
    prefix = attention_rollout(traced.decoder.attentions)[-1]
    return np.concatenate([source, prefix])


# --- the public entry points -------------------------------------------------------------------


def default_baseline(loaded, target: Target) -> str:
    """The baseline a page opens with: the mask token for a masked word (the encoder's own "unknown word"),
    else the zero embedding. Measured on SmolLM2-135M, integrated gradients with 32 steps: completeness error
    0.0%, 1.0% and 13% with "zero" against 0.2%, 25% and 41% with "pad" on a 5-, 11- and 20-token prompt."""
    if target.kind == "masked" and getattr(loaded.tokenizer, "mask_token_id", None) is not None:
        return "mask"
    return "zero"


def explains_outputs(loaded) -> bool:
    """Whether this model's predictions are output tokens written over a source (an encoder-decoder)."""
    return _kind(loaded) == "seq2seq"


def explains_masks(loaded) -> bool:
    """Whether this model's prediction is the word at a [MASK] (an encoder)."""
    return _kind(loaded) == "encoder"


def default_method(loaded) -> str:
    """The method a page opens with: occlusion for a model with a router (routing is piecewise constant, so the
    gradient along the integration path never sees an expert switch and integrated gradients' completeness
    fails), else integrated gradients."""
    return "occlusion" if moe.has_router(loaded.model) else "integrated_gradients"


def baselines(loaded) -> tuple[str, ...]:
    """The baselines this model can use ("mask" needs a mask token, "unk" an unknown-word token)."""
    tokenizer = loaded.tokenizer
    has = {
        name: tokenizer is not None and getattr(tokenizer, f"{name}_token_id", None) is not None
        for name in ("mask", "unk")
    }
    return tuple(b for b in BASELINES if has.get(b, True))


def _has_captum() -> bool:
    return importlib.util.find_spec("captum") is not None


def explain(
    loaded,
    ids,
    target: Target | int | None = None,
    method: str = "integrated_gradients",
    *,
    steps: int = 32,
    baseline: str = "pad",
    engine: str | None = None,
    measure: str = "prob",
) -> Attribution:
    """Attribute one output of ``loaded`` on input ``ids`` [T] to its input positions (module docstring).

    ``target``: a Target, a token id (the family's default kind of target, explaining that token), or None
    (the model's own top choice). ``steps``: integration points of integrated gradients. ``engine``:
    "captum" or "own" (None: DEFAULT_ENGINE[method], or "own" where Captum is not installed; the two agree)."""
    engine = _checked_engine(method, engine, steps)
    began = time.perf_counter()
    problem = _problem(loaded, ids, target, baseline, measure)
    if method == "gradient_x_input" and engine == "own":
        f, p, scores = _gradient_x_input_own(problem)
    else:
        f, p = _endpoints(problem)
    gap = error = None
    if method == "gradient_x_input":
        scores = _gradient_x_input_captum(problem) if engine == "captum" else scores
    elif method == "integrated_gradients":
        run = _integrated_gradients_captum if engine == "captum" else _integrated_gradients_own
        scores = run(problem, int(steps))
        gap, error = _completeness(problem, scores, f, steps)
    elif method == "occlusion":
        scores = _occlusion_captum(problem) if engine == "captum" else _occlusion_own(problem, float(f[0]))
    else:
        scores = _rollout(problem)
    return Attribution(
        method=method,
        engine=engine,
        baseline=baseline,
        measure=problem.measure,
        steps=int(steps) if method == "integrated_gradients" else None,
        target=problem.target,
        scores=np.asarray(scores, dtype=np.float64),
        token_ids=problem.ids.copy(),
        tokens=display_tokens(loaded.tokenizer, problem.ids),
        segments=problem.segments,
        movable=problem.movable.copy(),
        input_ids=np.asarray(ids, dtype=np.int64).copy(),
        target_score=float(f[0]),
        baseline_score=float(f[1]),
        target_prob=float(p[0]),
        baseline_prob=float(p[1]),
        baseline_id=problem.baseline_id,
        completeness_gap=gap,
        completeness_error=error,
        seconds=time.perf_counter() - began,
        notes=problem.notes,
    )


def _checked_engine(method: str, engine: str | None, steps: int) -> str:
    """The engine that runs ``method``; InputError for an unknown method, a wrong engine or step count."""
    if method not in METHODS:
        raise InputError(f"The method is one of {', '.join(METHODS)}, not {method!r}.")
    engine = engine or (DEFAULT_ENGINE[method] if _has_captum() else "own")
    if engine not in ("own", "captum") or (method == "attention_rollout" and engine != "own"):
        raise InputError(f"{method} runs with engine 'own'{'' if method == 'attention_rollout' else ' or captum'}.")
    if method == "integrated_gradients" and not 1 <= int(steps) <= 1024:
        raise InputError("Integrated gradients needs between 1 and 1024 steps.")
    return engine


def _completeness(problem, scores: np.ndarray, f, steps: int) -> tuple[float, float]:
    """(gap, relative error) of integrated gradients' completeness: the scores [T] should add up to
    f(x) - f(x'); the problem gets a note when they miss by more than COMPLETENESS_TOLERANCE."""
    gap = float(scores.sum() - (f[0] - f[1]))
    error = abs(gap) / abs(f[0] - f[1]) if abs(f[0] - f[1]) > 1e-12 else float("nan")
    if not error <= COMPLETENESS_TOLERANCE:
        problem.notes += (
            f"The scores add up to {scores.sum():+.4g}, not f(x) - f(x') = {f[0] - f[1]:+.4g} "
            f"(completeness error {error:.0%}): {steps} steps miss sharp turns of the path from "
            "the baseline; more steps, or the zero baseline, usually close the gap.",
        )
    return gap, error


@dataclass(frozen=True)
class AttributionMatrix:
    """Every output token of an encoder-decoder explained over the source: one row per output token.

    scores           [T_out, S]  the method's score of each source token for each output token
    target_probs     [T_out]     each output token's probability (teacher-forced)
    cross_attention  [T_out, S]  the cross-attention of the position that predicts each output token,
                                 averaged over decoder layers and heads (to set beside ``scores``)
    completeness_errors [T_out]  integrated gradients only (else empty); over source and prefix together
    """

    method: str
    source_tokens: tuple[str, ...]
    output_tokens: tuple[str, ...]
    scores: np.ndarray
    target_probs: np.ndarray
    cross_attention: np.ndarray
    completeness_errors: np.ndarray

    def __post_init__(self) -> None:
        shape = (len(self.output_tokens), len(self.source_tokens))
        if self.scores.shape != shape or self.cross_attention.shape != shape:
            raise ValueError(f"scores {self.scores.shape} / cross {self.cross_attention.shape} != {shape}")
        _read_only(self)


def seq2seq_matrix(loaded, source_ids, output_ids, method: str = "gradient_x_input", **options) -> AttributionMatrix:
    """``explain`` for every output token (``output_ids``: after the decoder's start tokens), source part only;
    ``options`` go to ``explain``. One attribution per output token: the cost is T_out times one map."""
    source_ids = _check_ids(loaded, source_ids)
    output_ids = np.asarray(output_ids, dtype=np.int64)
    if _kind(loaded) != "seq2seq" or len(output_ids) == 0:
        raise InputError("The attribution matrix needs an encoder-decoder model and at least one output token.")
    rows = [
        explain(loaded, source_ids, Target.output(output_ids, step), method, **options)
        for step in range(len(output_ids))
    ]
    s = len(source_ids)
    start = seq2seq.start_ids(loaded)
    traced = seq2seq.trace(
        loaded, seq2seq.encode_ids(loaded, source_ids), np.concatenate([start, output_ids[:-1]]).astype(np.int64)
    )
    cross = traced.cross_attentions.mean(axis=(0, 1))[len(start) - 1 :]  # [T_out, S]: the predicting positions
    errors = [r.completeness_error for r in rows if r.completeness_error is not None]
    return AttributionMatrix(
        method=method,
        source_tokens=display_tokens(loaded.tokenizer, source_ids),
        output_tokens=display_tokens(loaded.tokenizer, output_ids),
        scores=np.stack([r.scores[:s] for r in rows]),
        target_probs=np.array([r.target_prob for r in rows]),
        cross_attention=np.asarray(cross, dtype=np.float64),
        completeness_errors=np.asarray(errors, dtype=np.float64),
    )


# --- faithfulness ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Faithfulness:
    """Deletion and insertion curves of one map, against random orders of the same positions.

    removed            [K] how many movable positions are replaced (deletion) / restored (insertion)
    deletion           [K] target probability with the top-``removed`` positions (by score) replaced by the
                           baseline; deletion[0] = p(x)
    insertion          [K] target probability with only the top-``removed`` positions kept, the rest baseline;
                           insertion[0] = p(x')
    random_deletion    [R, K], random_insertion [R, K]: the same for R random orders (seeded)
    comprehensiveness  AOPC of deletion: mean over k > 0 of p(x) - deletion[k] (higher: the top tokens matter)
    sufficiency        mean over k > 0 of p(x) - insertion[k] (lower: the top tokens alone suffice)
    random_comprehensiveness [R], random_sufficiency [R]: the same for each random order

    With more movable positions than ``max_points`` the curves are read at evenly spaced counts, and the
    areas are means over those counts.
    """

    removed: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    random_deletion: np.ndarray
    random_insertion: np.ndarray
    full_prob: float
    empty_prob: float
    comprehensiveness: float
    sufficiency: float
    random_comprehensiveness: np.ndarray
    random_sufficiency: np.ndarray
    method: str
    seed: int
    seconds: float = 0.0

    def __post_init__(self) -> None:
        _read_only(self)

    @staticmethod
    def band(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, 5th percentile, 95th percentile) over the random orders, per point: [K] each."""
        return curves.mean(axis=0), np.percentile(curves, 5, axis=0), np.percentile(curves, 95, axis=0)

    @property
    def beats_deletion(self) -> bool:
        """Comprehensiveness at or above the random orders' 95th percentile, and above their mean."""
        r = self.random_comprehensiveness
        return bool(self.comprehensiveness >= np.percentile(r, 95) and self.comprehensiveness > r.mean())

    @property
    def beats_insertion(self) -> bool:
        """Sufficiency at or below the random orders' 5th percentile, and below their mean."""
        r = self.random_sufficiency
        return bool(self.sufficiency <= np.percentile(r, 5) and self.sufficiency < r.mean())

    @property
    def beats_random(self) -> bool:
        """The rule: the map beats the random band on both curves (``beats_deletion`` and ``beats_insertion``)."""
        return self.beats_deletion and self.beats_insertion

    def verdict(self) -> str:
        both = self.beats_random
        head = "beats" if both else "partly beats" if self.beats_deletion or self.beats_insertion else "does not beat"
        top = np.percentile(self.random_comprehensiveness, 95)
        bottom = np.percentile(self.random_sufficiency, 5)
        return (
            f"{self.method} {head} {len(self.random_comprehensiveness)} random orders: comprehensiveness "
            f"{self.comprehensiveness:.3f} (random 95th percentile {top:.3f}), sufficiency {self.sufficiency:.3f} "
            f"(random 5th percentile {bottom:.3f})."
        )


def removal_counts(movable: int, max_points: int) -> np.ndarray:
    """Counts 0..movable at which the curves are read: every count, or ``max_points`` + 1 evenly spaced."""
    if movable <= max_points:
        return np.arange(movable + 1)
    return np.unique(np.round(np.linspace(0, movable, max_points + 1)).astype(np.int64))


def _order(scores: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Movable positions by decreasing score (ties: earlier position first)."""
    return positions[np.argsort(-scores[positions], kind="stable")]


def _curve_masks(n: int, order: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[K, N] replaced-position masks of the deletion and insertion curves of one order."""
    deletion = np.zeros((len(counts), n), dtype=bool)
    insertion = np.zeros((len(counts), n), dtype=bool)
    for row, k in enumerate(counts):
        deletion[row, order[:k]] = True
        insertion[row, order[k:]] = True
    return deletion, insertion


def faithfulness(
    loaded, attribution: Attribution, *, orders: int = 20, seed: int = 0, max_points: int = 10
) -> Faithfulness:
    """Deletion / insertion curves of ``attribution`` and of ``orders`` random orders (seeded), every
    distinct perturbed input evaluated once in batched forwards (lock per chunk): about 2 (1 + orders)
    (max_points - 1) forwards of the input (420 for 20 orders and 10 points), the price of the random band."""
    if orders < 1:
        raise InputError("The random band needs at least one random order.")
    began = time.perf_counter()
    problem = _problem(loaded, attribution.input_ids, attribution.target, attribution.baseline, attribution.measure)
    positions = np.flatnonzero(problem.movable)
    counts = removal_counts(len(positions), max_points)
    rng = np.random.default_rng(seed)
    all_orders = [_order(attribution.scores, positions)] + [rng.permutation(positions) for _ in range(orders)]
    masks = [_curve_masks(problem.n, order, counts) for order in all_orders]
    stacked = np.concatenate([np.concatenate(pair) for pair in masks])  # [(1 + R) * 2K, N]
    unique, inverse = np.unique(stacked, axis=0, return_inverse=True)
    _, probs = _evaluate(problem, _masked_batch(problem, unique))
    curves = probs[inverse.reshape(-1)].reshape(1 + orders, 2, len(counts))
    full, empty = float(curves[0, 0, 0]), float(curves[0, 1, 0])

    def area(curve):  # mean over k > 0 of p(x) - curve[k]
        return float(np.mean(full - curve[1:])) if len(curve) > 1 else 0.0

    return Faithfulness(
        removed=counts,
        deletion=curves[0, 0],
        insertion=curves[0, 1],
        random_deletion=curves[1:, 0],
        random_insertion=curves[1:, 1],
        full_prob=full,
        empty_prob=empty,
        comprehensiveness=area(curves[0, 0]),
        sufficiency=area(curves[0, 1]),
        random_comprehensiveness=np.array([area(c) for c in curves[1:, 0]]),
        random_sufficiency=np.array([area(c) for c in curves[1:, 1]]),
        method=attribution.method,
        seed=seed,
        seconds=time.perf_counter() - began,
    )


# --- words -------------------------------------------------------------------------------------

_WORD_START = ("Ġ", "▁", " ", "Ċ", "\n")


def word_groups(tokenizer, ids, text: str | None = None) -> tuple[tuple[int, ...], ...]:
    """The positions of ``ids`` grouped into words. With ``text`` (that the tokenizer turns into exactly
    ``ids``) a fast tokenizer's ``word_ids`` decide; otherwise the pieces' spelling: a piece starting with
    a space marker (Ġ, ▁) starts a word in byte-level BPE / SentencePiece vocabularies, a piece without '##'
    in WordPiece ones. Special tokens are words of their own."""
    ids = [int(i) for i in ids]
    if tokenizer is None:
        return tuple((i,) for i in range(len(ids)))
    special = {int(i) for i in getattr(tokenizer, "all_special_ids", ())}
    word_of = None
    if text is not None:
        with contextlib.suppress(Exception):  # slow tokenizers have no word_ids
            encoding = tokenizer(text, add_special_tokens=True)
            if list(encoding["input_ids"]) == ids:
                word_of = encoding.word_ids()
            else:
                encoding = tokenizer(text, add_special_tokens=False)
                word_of = encoding.word_ids() if list(encoding["input_ids"]) == ids else None
    if word_of is None:
        pieces = tokenizer.convert_ids_to_tokens(ids)
        marked = any(str(p).startswith(_WORD_START[:2]) for p in pieces)
        word_of, current = [], -1
        for i, (token_id, piece) in enumerate(zip(ids, pieces)):
            piece = str(piece)
            starts = (
                i == 0
                or token_id in special
                or ids[i - 1] in special
                or (piece.startswith(_WORD_START) if marked else not piece.startswith("##"))
            )
            current += starts
            word_of.append(None if token_id in special else current)
    groups: list[list[int]] = []
    last = object()
    for i, word in enumerate(word_of):
        if word is None or word != last:
            groups.append([i])
        else:
            groups[-1].append(i)
        last = word
    return tuple(tuple(g) for g in groups)


def _piece(token: str, index: int) -> str:
    return token[2:] if index and token.startswith("##") else token


def roll_up(scores: np.ndarray, groups) -> np.ndarray:
    """Word scores [W]: the sum of each group's subword scores (additive methods keep their total)."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.array([scores[list(g)].sum() for g in groups])


def word_scores(attribution: Attribution, tokenizer, text: str | None = None) -> tuple[tuple[str, ...], np.ndarray]:
    """(word labels, word scores [W]) of an attribution, segment by segment (a source word never merges with
    a target word)."""
    labels, values = [], []
    segments = np.asarray(attribution.segments)
    for segment in dict.fromkeys(attribution.segments):
        where = np.flatnonzero(segments == segment)
        ids = attribution.token_ids[where]
        groups = word_groups(tokenizer, ids, text if segment in ("input", "source") else None)
        values.extend(roll_up(attribution.scores[where], groups))
        labels.extend("".join(_piece(attribution.tokens[where[i]], j) for j, i in enumerate(g)) for g in groups)
    return tuple(labels), np.asarray(values, dtype=np.float64)
