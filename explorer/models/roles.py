"""Which part of a transformer a parameter belongs to, read from its name: shared by the
parameter accounting (counts per role) and the architecture diagram (nodes per part)."""

from __future__ import annotations

import re

# First match wins: a router's "gate" before the feed-forward's, embeddings before norms.
_ROLE_PATTERNS = [
    (
        "router",
        re.compile(
            r"(\.gate\.weight$|\.router\.|block_sparse_moe\.gate|mlp\.gate\.weight$"
            r"|shared_expert_gate)"
        ),
    ),
    ("experts", re.compile(r"\.experts\.")),
    (
        "embeddings",
        re.compile(
            r"(embed|wte|wpe|shared\.weight|word_embeddings|position_embeddings|token_type"
            r"|rel_embeddings|relative_attention_bias)"
        ),
    ),
    (
        "head",
        re.compile(
            r"(lm_head|cls\.|predictions|embed_out|generator_lm_head|vocab_projector|vocab_transform"
            r"|proj_out|lm_predictions)"
        ),
    ),
    ("norms", re.compile(r"(norm|ln_|LayerNorm|layernorm)")),
    (
        "attention",
        re.compile(
            r"(attn|attention|self_attn|\.SelfAttention\.|\.EncDecAttention\."
            r"|q_proj|k_proj|v_proj|o_proj)"
        ),
    ),
    (
        "ffn",
        re.compile(
            r"(mlp|ffn|fc1|fc2|intermediate|output\.dense|DenseReluDense|shared_expert"
            r"|\.layer\.\d+\.mlp|ffn_output)"
        ),
    ),
]


def parameter_role(name: str) -> str:
    """embeddings, attention, ffn, experts, router, norms, head or other."""
    for role, pattern in _ROLE_PATTERNS:
        if pattern.search(name):
            return role
    return "other"
