"""Tiny randomly initialised models of every supported architecture (no download)."""

from __future__ import annotations

import torch
import transformers

from explorer.models.loading import wrap_model

V = 99  # vocabulary of every tiny model
COMMON = dict(vocab_size=V, attn_implementation="eager")


def _configs():
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
    llama_like = dict(small, num_key_value_heads=2, max_position_embeddings=64)
    # grouped-matmul experts need 16-byte aligned strides: keep MoE widths multiples of 4
    moe = dict(llama_like, num_experts_per_tok=2, intermediate_size=32)
    seq = dict(
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=37,
        decoder_ffn_dim=37,
        max_position_embeddings=64,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    return {
        "bert": ("BertConfig", "BertForMaskedLM", dict(small, max_position_embeddings=64)),
        "roberta": ("RobertaConfig", "RobertaForMaskedLM", dict(small, max_position_embeddings=68, pad_token_id=1)),
        "distilbert": (
            "DistilBertConfig",
            "DistilBertForMaskedLM",
            dict(dim=32, n_layers=2, n_heads=4, hidden_dim=37, max_position_embeddings=64),
        ),
        "albert": ("AlbertConfig", "AlbertForMaskedLM", dict(small, embedding_size=16, max_position_embeddings=64)),
        "deberta-v2": (
            "DebertaV2Config",
            "DebertaV2ForMaskedLM",
            dict(
                small,
                max_position_embeddings=64,
                relative_attention=True,
                position_buckets=16,
                pos_att_type=["p2c", "c2p"],
            ),
        ),
        "electra": ("ElectraConfig", "ElectraForMaskedLM", dict(small, embedding_size=16, max_position_embeddings=64)),
        "gpt2": (
            "GPT2Config",
            "GPT2LMHeadModel",
            dict(n_embd=32, n_layer=2, n_head=4, n_positions=64, bos_token_id=0, eos_token_id=2),
        ),
        "llama": ("LlamaConfig", "LlamaForCausalLM", llama_like),
        "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", llama_like),
        "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", dict(small, max_position_embeddings=64)),
        "t5": (
            "T5Config",
            "T5ForConditionalGeneration",
            dict(
                d_model=32,
                d_kv=8,
                d_ff=37,
                num_layers=2,
                num_decoder_layers=2,
                num_heads=4,
                decoder_start_token_id=0,
                pad_token_id=0,
                eos_token_id=1,
            ),
        ),
        "bart": ("BartConfig", "BartForConditionalGeneration", seq),
        "marian": ("MarianConfig", "MarianMTModel", dict(seq, decoder_start_token_id=1, pad_token_id=1)),
        "whisper": (
            "WhisperConfig",
            "WhisperForConditionalGeneration",
            dict(seq, num_mel_bins=8, max_source_positions=16, max_target_positions=32, decoder_start_token_id=3),
        ),
        "mixtral": ("MixtralConfig", "MixtralForCausalLM", dict(moe, num_local_experts=4)),
        "qwen2_moe": (
            "Qwen2MoeConfig",
            "Qwen2MoeForCausalLM",
            dict(
                moe, num_experts=4, moe_intermediate_size=16, shared_expert_intermediate_size=24, norm_topk_prob=False
            ),
        ),
        "olmoe": ("OlmoeConfig", "OlmoeForCausalLM", dict(moe, num_experts=4, pad_token_id=1, eos_token_id=2)),
        "switch_transformers": (
            "SwitchTransformersConfig",
            "SwitchTransformersForConditionalGeneration",
            dict(
                d_model=32,
                d_kv=8,
                d_ff=37,
                num_layers=2,
                num_decoder_layers=2,
                num_heads=4,
                num_experts=4,
                expert_capacity=3,
                encoder_sparse_step=1,
                decoder_sparse_step=1,
                decoder_start_token_id=0,
                pad_token_id=0,
                eos_token_id=1,
            ),
        ),
    }


ARCHITECTURE_NAMES = tuple(_configs())


def tiny_model(model_type: str, seed: int = 0):
    config_cls, model_cls, kwargs = _configs()[model_type]
    config = getattr(transformers, config_cls)(**COMMON, **kwargs)
    torch.manual_seed(seed)
    return getattr(transformers, model_cls)(config).eval()


def tiny_loaded(model_type: str, seed: int = 0):
    return wrap_model(f"tiny-{model_type}", tiny_model(model_type, seed), tokenizer=None)
