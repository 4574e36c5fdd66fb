"""Random Unicode through the text path of each family's adapter (tiny models, real tokenizers)."""

import pytest
import torch
import transformers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from explorer.adapters import decoder, encoder, moe, seq2seq
from explorer.models import embedded
from explorer.models.loading import wrap_model
from explorer.text import InputError, clean_user_text


def _tiny(config_cls, model_cls, tokenizer, **kwargs):
    config = getattr(transformers, config_cls)(vocab_size=len(tokenizer), attn_implementation="eager", **kwargs)
    torch.manual_seed(0)
    return wrap_model(f"tiny-{config_cls}", getattr(transformers, model_cls)(config), tokenizer)


@pytest.fixture(scope="module")
def models():
    wordpiece = AutoTokenizer.from_pretrained(embedded.minilm_dir())
    bpe = AutoTokenizer.from_pretrained(embedded.smollm2_dir())
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=32)
    return {
        "encoder": _tiny("BertConfig", "BertForMaskedLM", wordpiece, **small, max_position_embeddings=512),
        "decoder": _tiny(
            "LlamaConfig", "LlamaForCausalLM", bpe, **small, num_key_value_heads=2, max_position_embeddings=512
        ),
        "moe": _tiny(
            "MixtralConfig",
            "MixtralForCausalLM",
            bpe,
            **small,
            num_key_value_heads=2,
            num_local_experts=4,
            num_experts_per_tok=2,
            max_position_embeddings=512,
        ),
        "seq2seq": _tiny(
            "BartConfig",
            "BartForConditionalGeneration",
            bpe,
            d_model=32,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=4,
            decoder_attention_heads=4,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            max_position_embeddings=512,
            pad_token_id=2,
            bos_token_id=1,
            eos_token_id=2,
            decoder_start_token_id=2,
        ),
    }


TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300) | st.sampled_from(
    [
        "<script>alert('x')</script>",
        "**bold** [link](javascript:alert(1))",
        "[MASK] [MASK] [MASK]",
        "[CLS][SEP]<s></s>",
        "مرحبا بالعالم",
        "日本語のテキスト",
        "e\u0301\u0302\u0303",
        "\u200b\u200d\u2060",
        "👩‍👩‍👧‍👦🏳️‍🌈",
        "\x00\x1b[31m",
        "<|im_start|>user<|im_end|>",
        "a" * 3000,
    ]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=TEXT)
def test_any_text_gives_a_trace_or_a_message(models, raw):
    try:
        text = clean_user_text(raw).text
    except InputError:
        return
    for family, loaded in models.items():
        if family == "encoder":
            trace = encoder.trace_text(loaded, text)
        elif family == "decoder":
            trace = decoder.trace_text(loaded, text)
        elif family == "moe":
            trace = moe.trace_text(loaded, text)
            assert trace.router.probs.shape[1] == len(trace.tokens)
        else:
            trace = seq2seq.encode_text(loaded, text).trace
        assert 0 < len(trace.tokens) <= 256
        assert trace.hidden_states.shape[1] == len(trace.tokens)
