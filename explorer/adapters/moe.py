"""Mixture-of-Experts adapter (Mixtral, Qwen2-MoE, OLMoE decoders; Switch Transformers).

Router logits come from the library's ``output_router_logits`` flag. The experts each token
is sent to, and their gate weights, are recomputed from those logits with the model's own
rule (softmax, top-k, optional renormalisation; Switch: top-1 with expert capacity);
tests check them against what the router modules really returned.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace

import numpy as np

from explorer.adapters import decoder, family, seq2seq
from explorer.adapters.common import display_tokens, to_numpy, tokenize
from explorer.adapters.runs import FamilyRun
from explorer.decoding import softmax
from explorer.models.accounting import account
from explorer.trace import ForwardTrace, RouterTrace, Seq2SeqTrace

_LAYER_INDEX = re.compile(r"\.(?:layers|block)\.(\d+)\.")


def router_class(model):
    """The module class whose output transformers records as router logits."""
    # Decoder MoEs declare it on the model class, Switch on its encoder/decoder stacks.
    for module in model.modules():
        target = (getattr(type(module), "_can_record_outputs", None) or {}).get("router_logits")
        if target is not None:
            return getattr(target, "target_class", target)
    raise ValueError(f"{type(model).__name__} does not record router logits")


def has_router(model) -> bool:
    """Whether the model routes tokens to experts (it records router logits): the question a page or an
    experiment asks of a model, instead of its family's name."""
    try:
        router_class(model)
    except ValueError:
        return False
    return True


def router_module_names(model, stack: str) -> list[str]:
    """Names of the router modules of one stack ('model', 'encoder' or 'decoder'), in
    execution order; each MoE layer has exactly one."""
    cls = router_class(model)
    names = [n for n, m in model.named_modules() if isinstance(m, cls)]
    if stack in ("encoder", "decoder"):
        names = [n for n in names if f"{stack}." in n]
    return names


def moe_layer_indices(model, stack: str) -> np.ndarray:
    return np.asarray(
        [int(_LAYER_INDEX.search("." + n + ".").group(1)) for n in router_module_names(model, stack)], dtype=np.int64
    )


def top_k(config) -> int:
    return int(getattr(config, "num_experts_per_tok", None) or 1)


def renormalises(config) -> bool:
    """Whether the gate weights are the top-k probabilities divided by their sum (Mixtral always;
    Qwen2-MoE and OLMoE only with ``norm_topk_prob``, false by default for both)."""
    return config.model_type == "mixtral" or bool(getattr(config, "norm_topk_prob", False))


def gate_rule(config) -> str:
    """One sentence: how this model turns router probabilities into gate weights."""
    k = top_k(config)
    if config.model_type == "switch_transformers":
        return (
            "Gate weight = the router probability of the one chosen expert (top-1, not renormalised); "
            "tokens beyond an expert's capacity skip the FFN."
        )
    if renormalises(config):
        return f"Gate weights = the top-{k} router probabilities divided by their sum (renormalised: they add up to 1)."
    return (
        f"Gate weights = the top-{k} router probabilities as they are (not renormalised: `norm_topk_prob` is false "
        "for this model, so they add up to less than 1)."
    )


def routes_from_logits(config, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Apply the architecture's routing rule to router logits [M, T, E].

    Returns probs [M, T, E], chosen [M, T, K], gates [M, T, K], kept [M, T, K].
    """
    probs = softmax(logits)
    k = top_k(config)
    chosen = np.argsort(-probs, axis=-1, kind="stable")[..., :k]
    gates = np.take_along_axis(probs, chosen, axis=-1)
    if renormalises(config):
        gates = gates / gates.sum(axis=-1, keepdims=True)
    kept = np.ones_like(chosen, dtype=bool)
    capacity = getattr(config, "expert_capacity", None)
    if config.model_type == "switch_transformers" and capacity:
        # A Switch expert takes at most `capacity` tokens, in position order; later ones
        # skip the FFN (only the residual connection carries them).
        one_hot = np.eye(probs.shape[-1], dtype=np.int64)[chosen[..., 0]]  # [M, T, E]
        priority = np.cumsum(one_hot, axis=1)
        kept[..., 0] = np.take_along_axis(priority, chosen, axis=-1)[..., 0] <= capacity
    return probs, chosen, gates, kept


def extract_router(loaded, out, num_tokens: int, stack: str) -> RouterTrace:
    """Router trace from a forward output produced with ``output_router_logits=True``."""
    recorded = getattr(out, "router_logits", None)
    if recorded is None:
        recorded = getattr(out, f"{stack}_router_logits", None)
    if not recorded:
        raise ValueError("the forward returned no router logits")
    num_experts = recorded[0].shape[-1]
    # Routers flatten batch x position; with batch 1 the last T rows are this input.
    logits = np.stack([to_numpy(r).reshape(-1, num_experts)[-num_tokens:] for r in recorded])  # [M, T, E]
    probs, chosen, gates, kept = routes_from_logits(loaded.model.config, logits)
    return RouterTrace(
        layer_indices=moe_layer_indices(loaded.model, stack),
        probs=probs,
        chosen=chosen,
        gates=gates,
        kept=kept,
        top_k=chosen.shape[-1],
    )


def is_encoder_decoder(loaded) -> bool:
    return bool(getattr(loaded.model.config, "is_encoder_decoder", False))


def trace_ids(loaded, ids: np.ndarray, notes: tuple[str, ...] = ()) -> ForwardTrace | Seq2SeqTrace:
    """Decoder MoE: a causal forward with routes. Switch: the encoder reads ``ids`` and the
    decoder its start token, both with routes."""
    if is_encoder_decoder(loaded):
        encoder = seq2seq.encode_ids(loaded, ids, notes, router_extractor=extract_router)
        return seq2seq.trace(loaded, encoder, seq2seq.start_ids(loaded), router_extractor=extract_router)
    return decoder.trace_ids(loaded, ids, notes, router_extractor=extract_router)


def trace_text(loaded, text: str) -> ForwardTrace | Seq2SeqTrace:
    ids, notes = tokenize(loaded, text)
    return trace_ids(loaded, ids, notes)


def parameters(loaded) -> tuple[int, int]:
    """(parameters in memory, parameters one token uses: all but the experts it is not routed to)."""
    total = sum(p.numel() for p in loaded.model.parameters())
    acc = account(loaded.model.config)
    return total, total - (acc.total - acc.active)


def compare_run(loaded, text: str, new_tokens: int = 8, speech=None) -> FamilyRun:
    """An MoE decoder generates like a decoder; an encoder-decoder MoE (Switch) is timed routing its input."""
    params = parameters(loaded)
    ids, notes = tokenize(loaded, text)
    if is_encoder_decoder(loaded):
        start = time.perf_counter()
        trace_ids(loaded, ids)
        return FamilyRun(
            loaded.family,
            loaded.model_id,
            display_tokens(loaded.tokenizer, ids),
            "routes every token to its experts",
            "routes",
            time.perf_counter() - start,
            (),
            *params,
            notes,
        )
    computes = (
        f"like a decoder, but each token's feed-forward work goes to {top_k(loaded.model.config)} of the "
        "router's experts"
    )
    return replace(decoder.greedy_run(loaded, ids, new_tokens, computes, params), notes=notes)


class MoeAdapter:
    """The mixture-of-experts family's answers (explorer.adapters.family.FamilyAdapter): a decoder MoE
    answers as a decoder; Switch Transformers is an encoder-decoder that routes."""

    key = "moe"
    causal = True
    answer = family.NEXT
    keep_end = False
    head_modes = family.HEAD_MODES_CAUSAL
    experiments = (family.ROUTING, family.SINK, family.HEADS, family.PATCHING, family.ATTRIBUTION, family.CARDS)

    def trace(self, loaded, ids: np.ndarray, notes: tuple[str, ...] = (),
              with_logits: bool = True) -> ForwardTrace | Seq2SeqTrace:  # fmt: skip
        return trace_ids(loaded, ids, notes)

    def lens(self, loaded, hidden: np.ndarray) -> np.ndarray | None:
        return (seq2seq.decoder_lens if is_encoder_decoder(loaded) else decoder.logit_lens)(loaded, hidden)

    def routed(self, loaded) -> bool:
        return has_router(loaded.model)

    def encoder_decoder(self, loaded) -> bool:
        return is_encoder_decoder(loaded)

    def card_steps(self, loaded) -> tuple[str, ...]:
        if is_encoder_decoder(loaded):
            raise ValueError("the cards cover decoder-only mixtures of experts; this one is an encoder-decoder")
        return (family.SENTENCES, family.WORDS, family.RANDOM_TOKENS, family.HELD_OUT)

    def compare_run(self, loaded, text: str, new_tokens: int = 8, speech=None) -> FamilyRun:
        return compare_run(loaded, text, new_tokens, speech)


ADAPTER = MoeAdapter()
