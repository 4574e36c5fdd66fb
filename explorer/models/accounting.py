"""Parameter accounting from a configuration alone: the model is built on the meta device
(no memory for weights), and its real parameter tensors are counted by role."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig

from explorer.locks import BUILD_LOCK
from explorer.models.roles import parameter_role
from explorer.models.structure import architecture_graph
from explorer.registry import ARCHITECTURES, FAMILIES

CONFIGS = Path(__file__).resolve().parent.parent.parent / "assets" / "configs"
BYTES = {"float32": 4, "float16": 2, "int8": 1}


@dataclass(frozen=True)
class Accounting:
    name: str
    model_type: str
    total: int
    active: int  # parameters one token passes through (all but the unchosen experts)
    by_role: dict[str, int]  # embeddings, attention, ffn, experts, router, norms, head, other
    num_experts: int = 0
    experts_per_token: int = 0
    expert_size: int = 0  # parameters of ONE expert FFN in one layer
    moe_layers: int = 0
    published: dict = field(default_factory=dict)

    def memory_gib(self, dtype: str) -> float:
        return self.total * BYTES[dtype] / 2**30


def account(config, name: str = "", published: dict | None = None, untied_head: bool = False) -> Accounting:
    """Count a configuration's parameters. ``untied_head``: the original checkpoint has its own
    output head although this transformers version ties it to the embeddings (T5 v1.1 / Flan-T5)."""
    arch = ARCHITECTURES.get(config.model_type)
    auto = getattr(transformers, arch.auto_class if arch else "AutoModel")
    if (
        arch is not None
        and FAMILIES[arch.family].encoder_only
        and type(config) in transformers.AutoModelForPreTraining._model_mapping
    ):
        # papers count encoders as pre-trained: with the pooler and pre-training heads
        auto = transformers.AutoModelForPreTraining
    with BUILD_LOCK, torch.device("meta"):  # one build at a time (explorer/locks.py)
        model = auto.from_config(config)
    by_role: dict[str, int] = {}
    for param_name, p in model.named_parameters():  # tied weights are listed once
        role = parameter_role(param_name)
        by_role[role] = by_role.get(role, 0) + p.numel()
    head, embeddings = model.get_output_embeddings(), model.get_input_embeddings()
    if untied_head and head is not None and head.weight is embeddings.weight:
        by_role["head"] = by_role.get("head", 0) + head.weight.numel()
    total = sum(by_role.values())
    experts = int(getattr(config, "num_local_experts", None) or getattr(config, "num_experts", None) or 0)
    k = int(getattr(config, "num_experts_per_tok", None) or (1 if experts else 0))
    expert_params = by_role.get("experts", 0)
    moe_layers = sum(1 for n, m in model.named_modules() if n.endswith(".experts"))
    per_expert = expert_params // max(experts * moe_layers, 1) if experts else 0
    active = total - expert_params + (expert_params * k // experts if experts else 0)
    return Accounting(
        name=name or config.model_type,
        model_type=config.model_type,
        total=total,
        active=active,
        by_role=by_role,
        num_experts=experts,
        experts_per_token=k,
        expert_size=per_expert,
        moe_layers=moe_layers,
        published=published or {},
    )


@lru_cache(maxsize=1)
def gallery() -> tuple[Accounting, ...]:
    """Every configuration shipped in assets/configs, accounted (once per process)."""
    items = []
    for path in sorted(CONFIGS.glob("*.json")):
        raw = json.loads(path.read_text())
        published = raw.pop("_published", {})
        model_type = raw.pop("model_type")
        untied = raw.get("tie_word_embeddings") is False
        config = AutoConfig.for_model(model_type, **raw)
        items.append(account(config, name=path.stem, published=published, untied_head=untied))
    return tuple(items)


# The dense model each gallery MoE is built from ("Mixtral has the same architecture as Mistral 7B, with the
# difference that each layer is composed of 8 feedforward blocks": Jiang et al. 2024, arXiv:2401.04088, abstract).
_DENSE_BASE = {"mixtral-8x7b": "Mistral 7B"}
# Where a published total comes from, in words, when the config's short source needs it: Mistral AI's release post
# (11 Dec 2023) gives 46.7 B total and 12.9 B active; the paper itself rounds them.
_PUBLISHED_WORDS = {
    "mixtral-8x7b": "Mistral AI's release post (Dec 2023); the Mixtral paper (Jiang et al. 2024, \"Mixtral of "
    'Experts", arXiv:2401.04088) rounds them to 47 B and 13 B',
}


def dense_counterpart(acc: Accounting) -> int:
    """Parameters of the same model with one expert FFN per MoE layer and no router: the dense model
    whose feed-forward networks the experts copy (for Mixtral 8x7B, Mistral 7B's 7,241,732,096)."""
    if not acc.num_experts:
        return acc.total
    return acc.total - acc.by_role.get("experts", 0) - acc.by_role.get("router", 0) + acc.expert_size * acc.moe_layers


def name_count(acc: Accounting) -> tuple[int, float] | None:
    """(copies, billions) that a name like 'mixtral-8x7b' advertises, or None (OLMoE's '1b-7b' means
    active-total, not copies)."""
    match = re.search(r"(\d+)x(\d+(?:\.\d+)?)b", acc.name, re.IGNORECASE)
    return (int(match.group(1)), float(match.group(2))) if match else None


def explain_totals(acc: Accounting) -> str:
    """One sentence reconciling the totals quoted for an MoE: N x size read off its name, N full copies of its
    dense counterpart, and what it really holds; every number but the name's is counted from the config."""
    experts = acc.by_role.get("experts", 0)
    dense = dense_counterpart(acc)
    base = _DENSE_BASE.get(acc.name)
    dense_words = (
        f"{base}'s actual {dense / 1e9:.2f} B parameters"
        if base
        else f"its dense counterpart (the same blocks with one FFN each: {dense / 1e9:.2f} B)"
    )
    copies = f"{acc.num_experts} full copies of {dense_words} would be {acc.num_experts * dense / 1e9:.1f} B"
    named = name_count(acc)
    naive = (
        f"{named[0]} × {named[1]:g} B = {named[0] * named[1]:g} B is the naive count read off the name; "
        if named
        else ""
    )
    rest = (
        "attention, embeddings, norms and the dense FFN layers"
        if acc.by_role.get("ffn")
        else "attention, embeddings and norms"
    )
    return (
        f"{naive}{copies}; it holds {acc.total / 1e9:.1f} B because only the FFN experts are copied, while "
        f"{rest} are shared ({(acc.total - experts) / 1e9:.2f} B with the router)."
    )


def explain_moe(acc: Accounting) -> str:
    """Why an MoE holds far fewer than N x (dense size) parameters, in numbers."""
    if not acc.num_experts:
        return f"{acc.name} is dense: every token uses all {acc.total / 1e9:.2f} B parameters."
    experts = acc.by_role.get("experts", 0)
    shared = acc.total - experts
    text = (
        f"{acc.name}: {acc.num_experts} experts per MoE layer in {acc.moe_layers} layers, "
        f"{acc.experts_per_token} used per token. "
        f"Only the expert feed-forward networks are replicated: they hold {experts / 1e9:.2f} B parameters "
        f"({acc.expert_size / 1e6:.0f} M per expert per layer), while attention, embeddings, norms and the router "
        f"({shared / 1e9:.2f} B) exist once. So the model holds {acc.total / 1e9:.2f} B parameters "
        f"and each token passes through {acc.active / 1e9:.2f} B ({acc.active / acc.total:.0%}). "
    )
    named = name_count(acc)
    if named:  # the three totals quoted for it, as a question the next sentence answers
        text += (
            f"**{named[0] * named[1]:g} B, {acc.num_experts * dense_counterpart(acc) / 1e9:.1f} B or "
            f"{acc.total / 1e9:.1f} B?** "
        )
    text += explain_totals(acc) + " "
    published = acc.published.get("total_parameters")
    if published:
        active = acc.published.get("active_parameters")
        words = _PUBLISHED_WORDS.get(acc.name) or acc.published.get("source", "")
        text += (
            f"Published: {_spaced(published)} total"
            + (f" and {_spaced(active)} active per token" if active else "")
            + (f", in {words}" if words else "")
            + ". "
        )
    return text + (
        f"Holding it takes {acc.memory_gib('float16'):.0f} GiB in float16, although each token computes with only "
        f"{acc.experts_per_token} of its {acc.num_experts} experts per layer."
    )


def _spaced(figure: str) -> str:
    """'46.7B' -> '46.7 B' (the published figure as the page writes numbers)."""
    return f"{figure[:-1]} {figure[-1]}"


def parse_published(figure: str) -> tuple[float, float]:
    """'46.7B' -> (46.7e9, 0.05e9): the value and half a unit of its last written digit
    (a figure written '12M' only claims 11.5M-12.5M)."""
    scale = {"K": 1e3, "M": 1e6, "B": 1e9}[figure[-1]]
    digits = figure[:-1]
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    return float(digits) * scale, 0.5 * 10 ** (-decimals) * scale


def gallery_graph(name: str):
    """The architecture graph of a gallery configuration, built on the meta device."""
    path = CONFIGS / f"{name}.json"
    raw = json.loads(path.read_text())
    raw.pop("_published", None)
    model_type = raw.pop("model_type")
    config = AutoConfig.for_model(model_type, **raw)
    arch = ARCHITECTURES[model_type]
    with BUILD_LOCK, torch.device("meta"):  # one build at a time (explorer/locks.py)
        model = getattr(transformers, arch.auto_class).from_config(config)
    return architecture_graph(model, arch.family)
