"""The architecture of a loaded model as a networkx graph, read from its real modules.

Nodes are the parts a student should see (embeddings, per block: attention, cross-attention,
feed-forward or router + experts, the output head); each carries its parameter count and
tensor shapes, taken from the model's own parameters. Layout coordinates are stored on the
nodes (``x``, ``y``) so the plot is a pure drawing of this graph.
"""

from __future__ import annotations

import re
from collections import defaultdict

import networkx as nx

from explorer.models.roles import parameter_role
from explorer.registry import FAMILIES

_BLOCK = re.compile(
    r"^(?P<stack>.*?)(?:\.|^)(?P<list>layers|layer|h|block|albert_layers)"
    r"\.(?P<index>\d+)\.(?P<rest>.*)$"
)
_CROSS = re.compile(r"(encoder_attn|EncDecAttention|crossattention|cross_attn|layer\.1\.EncDecAttention)")
_EXPERT_INDEX = re.compile(r"experts\.(?:expert_)?(\d+)\.")


def _part(rest: str, role: str) -> str:
    if _CROSS.search(rest):
        return "cross-attention"
    return {
        "attention": "attention",
        "ffn": "feed-forward",
        "experts": "experts",
        "router": "router",
        "norms": "norms",
        "embeddings": "attention",
    }.get(role, "other")


def _stack_name(prefix: str, encoder_decoder: bool) -> str:
    if not encoder_decoder:
        return "decoder" if prefix else "encoder"
    return "encoder" if "encoder" in prefix else "decoder"


def architecture_graph(model, family: str) -> nx.DiGraph:
    """A DiGraph of the model's parts. Node attributes: label, kind, params, shapes, stack,
    block (or None), x, y. Sum of ``params`` over nodes = the model's parameter count."""
    encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
    only_encoder = FAMILIES[family].encoder_only
    parts, experts_seen = _parts(model, only_encoder, encoder_decoder)
    graph = nx.DiGraph()
    stacks = ["encoder", "decoder"] if encoder_decoder else (["encoder"] if only_encoder else ["decoder"])
    column = {s: i * 2 for i, s in enumerate(stacks)}
    _add_node(
        graph,
        parts,
        "embeddings",
        "Token embeddings",
        "embeddings",
        "model",
        None,
        sum(column.values()) / max(len(column), 1),
        0,
        ("model", None, "embeddings"),
    )
    labels = _BlockLabels(model.config, parts, experts_seen)
    last_of_stack = {stack: _add_stack(graph, parts, labels, stack, column[stack]) for stack in stacks}
    if encoder_decoder:
        encoder_out = last_of_stack["encoder"]
        for node, data in list(graph.nodes(data=True)):
            if data["kind"] == "cross-attention":
                graph.add_edge(encoder_out, node, cross=True)
    depth = min(d["y"] for _n, d in graph.nodes(data=True)) - 2
    head_x = column[stacks[-1]]
    _add_node(
        graph,
        parts,
        "head",
        "Output head" if not only_encoder else "Output (head, pooler)",
        "head",
        "model",
        None,
        head_x,
        depth,
        ("model", None, "head"),
    )
    graph.add_edge(last_of_stack[stacks[-1]], "head")
    return graph


def _parts(model, only_encoder: bool, encoder_decoder: bool) -> tuple[dict[tuple, dict], dict[tuple, set]]:
    """({(stack, block, part) or ('model', None, kind): {'params', 'shapes'}}, {(stack, block): expert
    indices seen}) from the model's named parameters."""
    parts: dict[tuple, dict] = defaultdict(lambda: {"params": 0, "shapes": []})
    experts_seen: dict[tuple, set] = defaultdict(set)
    for name, p in model.named_parameters():
        role = parameter_role(name)
        match = _BLOCK.match(name)
        if match and role not in ("embeddings",) or (match and "relative_attention_bias" in name):
            stack = "encoder" if only_encoder else _stack_name(match["stack"], encoder_decoder)
            block = int(match["index"])
            part = _part(match["rest"], role)
            if part == "norms" or part == "other":
                part = (
                    "feed-forward"
                    if "mlp" in match["rest"] or "ffn" in match["rest"] or "output" in match["rest"]
                    else "attention"
                )
            key = (stack, block, part)
            if part == "experts":
                expert = _EXPERT_INDEX.search(match["rest"])
                if expert:
                    experts_seen[(stack, block)].add(int(expert.group(1)))
        else:
            kind = "embeddings" if role == "embeddings" else "head"
            key = ("model", None, kind)
        parts[key]["params"] += p.numel()
        parts[key]["shapes"].append(f"{name.split('.', 1)[-1] if len(name) > 60 else name}: {tuple(p.shape)}")
    return parts, experts_seen


def _add_node(graph: nx.DiGraph, parts: dict, node, label, kind, stack, block, x, y, key=None) -> None:
    info = parts.get(key, {"params": 0, "shapes": []}) if key else {"params": 0, "shapes": []}
    graph.add_node(
        node,
        label=label,
        kind=kind,
        params=info["params"],
        shapes=info["shapes"][:12],
        stack=stack,
        block=block,
        x=x,
        y=y,
    )


class _BlockLabels:
    """The label of each part of a block, as the diagram shows it."""

    def __init__(self, config, parts: dict, experts_seen: dict):
        self.config, self.parts, self.experts_seen = config, parts, experts_seen
        self.num_experts = int(getattr(config, "num_local_experts", None) or getattr(config, "num_experts", None) or 0)

    def __call__(self, stack: str, b: int, part: str) -> str:
        config = self.config
        shared = f" (weights shared by all {config.num_hidden_layers} blocks)" if config.model_type == "albert" else ""
        return {
            "attention": (
                f"{stack} block {b + 1}: self-attention" + (" (causal)" if stack == "decoder" else "") + shared
            ),
            "cross-attention": f"block {b + 1}: cross-attention",
            "feed-forward": f"block {b + 1}: "
            + ("shared expert (always on)" if (stack, b, "router") in self.parts else "dense feed-forward"),
            "router": f"block {b + 1}: router (top-{getattr(config, 'num_experts_per_tok', 1) or 1})",
            "experts": f"block {b + 1}: {len(self.experts_seen[(stack, b)]) or self.num_experts} experts",
        }[part]


def _add_stack(graph: nx.DiGraph, parts: dict, labels: _BlockLabels, stack: str, x0: float) -> str:
    """Add the blocks of one stack below the embeddings, in a column at ``x0``; returns its last node."""
    previous = "embeddings"
    for b in sorted({b for (s, b, _p) in parts if s == stack and b is not None}):
        y = -(1 + 3 * b)
        for part, dx, dy in (
            ("attention", 0, 0),
            ("cross-attention", 0.5, -0.9),
            ("feed-forward", 0, -1.8),
            ("router", 0, -1.8),
            ("experts", 0.9, -1.8),
        ):
            key = (stack, b, part)
            if key in parts:
                _add_node(
                    graph, parts, f"{stack}.{b}.{part}", labels(stack, b, part), part, stack, b, x0 + dx, y + dy, key
                )
        previous = _connect_block(graph, f"{stack}.{b}", previous)
    return previous


def _connect_block(graph: nx.DiGraph, block: str, previous: str) -> str:
    """Edges from ``previous`` through the block's attention (cross-attention) and feed-forward or
    router and experts; returns the block's last node."""
    attention = f"{block}.attention"
    graph.add_edge(previous, attention)
    tail = attention
    cross = f"{block}.cross-attention"
    if cross in graph:
        graph.add_edge(tail, cross)
        tail = cross
    if f"{block}.router" in graph:
        graph.add_edge(tail, f"{block}.router")
        graph.add_edge(f"{block}.router", f"{block}.experts")
        if f"{block}.feed-forward" in graph:  # Qwen2-MoE's shared expert runs beside the routed ones
            graph.add_edge(tail, f"{block}.feed-forward")
        return f"{block}.experts"
    if f"{block}.feed-forward" in graph:
        graph.add_edge(tail, f"{block}.feed-forward")
        return f"{block}.feed-forward"
    return tail
