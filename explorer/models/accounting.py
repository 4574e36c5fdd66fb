"""Parameter accounting from a configuration alone: the model is built on the meta device
(no memory for weights), and its real parameter tensors are counted by role."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig

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
    if arch is not None and FAMILIES[arch.family].encoder_only and type(config) in transformers.AutoModelForPreTraining._model_mapping:
        # papers count encoders as pre-trained: with the pooler and pre-training heads
        auto = transformers.AutoModelForPreTraining
    with torch.device("meta"):
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
    return Accounting(name=name or config.model_type, model_type=config.model_type, total=total, active=active, by_role=by_role,
                      num_experts=experts, experts_per_token=k, expert_size=per_expert, moe_layers=moe_layers,
                      published=published or {})


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


def explain_moe(acc: Accounting) -> str:
    """Why an MoE holds far fewer than N x (dense size) parameters, in numbers."""
    if not acc.num_experts:
        return f"{acc.name} is dense: every token uses all {acc.total / 1e9:.2f} B parameters."
    experts = acc.by_role.get("experts", 0)
    shared = acc.total - experts
    naive = acc.num_experts * (shared + experts / acc.num_experts)
    return (
        f"{acc.name}: {acc.num_experts} experts per MoE layer in {acc.moe_layers} layers, {acc.experts_per_token} used per token. "
        f"Only the expert feed-forward networks are replicated: they hold {experts / 1e9:.2f} B parameters "
        f"({acc.expert_size / 1e6:.0f} M per expert per layer), while attention, embeddings, norms and the router "
        f"({shared / 1e9:.2f} B) exist once. So the model holds {acc.total / 1e9:.2f} B parameters, not the "
        f"{naive / 1e9:.1f} B of {acc.num_experts} full copies of a dense model, and each token passes through "
        f"{acc.active / 1e9:.2f} B ({acc.active / acc.total:.0%}). Holding it takes {acc.memory_gib('float16'):.0f} GiB "
        f"in float16, although each token computes with only a {acc.experts_per_token}-expert slice."
    )


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
    with torch.device("meta"):
        model = getattr(transformers, arch.auto_class).from_config(config)
    return architecture_graph(model, arch.family)
