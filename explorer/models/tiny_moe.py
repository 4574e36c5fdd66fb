"""A tiny randomly initialised Mixtral-style MoE, shown only as a labelled stand-in.

Its weights are random (fixed seed): the router still computes real softmax scores and
real top-2 choices, so the mechanism is visible, but nothing it does is learned.
"""

from __future__ import annotations

import torch
from transformers import MixtralConfig, MixtralForCausalLM


def tiny_moe_config(vocab_size: int) -> MixtralConfig:
    return MixtralConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_local_experts=8,
        num_experts_per_tok=2,
        max_position_embeddings=2048,
        attn_implementation="eager",
        tie_word_embeddings=True,
    )


def build_tiny_random_moe(vocab_size: int, seed: int = 0) -> MixtralForCausalLM:
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = MixtralForCausalLM(tiny_moe_config(vocab_size))
    finally:
        torch.random.set_rng_state(generator_state)
    return model.eval()
