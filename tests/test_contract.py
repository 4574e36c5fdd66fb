"""The trace contract on a tiny random model of every supported architecture."""

import numpy as np
import pytest
import torch

from explorer.adapters import decoder, encoder, moe, seq2seq
from explorer.adapters.common import hook_count
from explorer.registry import ARCHITECTURES
from tiny_models import ARCHITECTURE_NAMES, tiny_loaded

TOL = 1e-5
IDS = np.array([5, 17, 42, 8, 63, 21, 9], dtype=np.int64)


def test_every_registered_architecture_has_a_tiny_model():
    assert set(ARCHITECTURE_NAMES) == set(ARCHITECTURES)


def assert_rows_sum_to_one(attn):
    assert np.allclose(attn.sum(axis=-1), 1.0, atol=1e-4)


def assert_forward_trace(trace, num_layers, num_tokens):
    assert trace.hidden_states.shape[0] == num_layers + 1
    assert trace.hidden_states.shape[1] == num_tokens
    if trace.attentions is not None:
        assert trace.attentions.shape[0] == num_layers
        assert_rows_sum_to_one(trace.attentions)


def plain_logits(model, **inputs):
    with torch.no_grad():
        return model(**inputs).logits[0].numpy()


def assert_router(router, config, num_tokens):
    m, t, e = router.probs.shape
    assert t == num_tokens and m == len(router.layer_indices) > 0
    assert np.allclose(router.probs.sum(-1), 1.0, atol=1e-5)
    k = moe.top_k(config)
    assert router.chosen.shape == (m, t, k)
    # exactly k distinct experts per token
    assert all(len(set(row)) == k for row in router.chosen.reshape(-1, k).tolist())
    assert router.chosen.max() < e


def real_router_choices(loaded, run):
    """Capture what the router modules really return (a hook installed and removed here)."""
    cls = moe.router_class(loaded.model)
    captured = []

    def grab(_module, _inputs, output):
        if loaded.model.config.model_type == "switch_transformers":
            captured.append(output[0].argmax(-1).reshape(-1).numpy())  # one-hot [B, T, E] (dropped rows are 0)
        else:
            captured.append(output[2].reshape(-1, output[2].shape[-1]).numpy())  # [T, K] indices

    handles = [m.register_forward_hook(grab) for m in loaded.model.modules() if isinstance(m, cls)]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    return captured


@pytest.mark.parametrize("name", ARCHITECTURE_NAMES)
def test_contract(name):
    loaded = tiny_loaded(name)
    model, config = loaded.model, loaded.model.config
    family = ARCHITECTURES[name].family
    ids_t = torch.tensor(IDS)[None]

    if family == "encoder":
        trace = encoder.trace_ids(loaded, IDS)
        assert_forward_trace(trace, config.num_hidden_layers if name != "distilbert" else config.n_layers, len(IDS))
        assert not trace.causal
        assert np.abs(trace.logits - plain_logits(model, input_ids=ids_t)).max() <= TOL
        lens = encoder.mlm_lens(loaded, trace.hidden_states[:, 3])
        assert lens is not None, name  # every supported encoder's head reads intermediate layers
        assert lens.shape[0] == trace.num_layers + 1
        assert np.abs(lens[-1] - trace.logits[3]).max() <= TOL  # the lens at the last depth is the real output
        headless = encoder.trace_ids(loaded, IDS, with_logits=False)  # the encoder page's trace
        assert headless.logits is None and encoder.can_fill_masks(loaded)
        assert np.abs(headless.hidden_states - trace.hidden_states).max() <= TOL
        assert np.abs(headless.attentions - trace.attentions).max() <= TOL

    elif family == "decoder":
        trace = decoder.trace_ids(loaded, IDS)
        assert_forward_trace(trace, config.num_hidden_layers, len(IDS))
        expected = plain_logits(model, input_ids=ids_t)
        assert np.abs(trace.logits - expected).max() <= TOL
        # causal: nothing above the diagonal
        assert np.allclose(np.triu(trace.attentions, k=1), 0.0)
        step = decoder.step(loaded, IDS)
        assert np.abs(step.logits - expected[-1]).max() <= TOL
        assert np.isclose(step.probs.sum(), 1.0, atol=1e-5)
        assert step.last_attention.shape[-1] == len(IDS)
        lens = decoder.logit_lens(loaded, step.last_hidden)
        assert lens.shape == (config.num_hidden_layers + 1, config.vocab_size)
        assert np.abs(lens[-1] - step.logits).max() <= TOL
        assert_kv_cached_steps_equal_full_reads(loaded, model, trace)

    elif family == "seq2seq":
        if ARCHITECTURES[name].audio:
            features = (
                np.random.default_rng(0)
                .standard_normal((config.num_mel_bins, 2 * config.max_source_positions))
                .astype(np.float32)
            )
            enc = seq2seq.encode_features(loaded, features)
            plain_inputs = dict(input_features=torch.tensor(features)[None])
        else:
            enc = seq2seq.encode_ids(loaded, IDS)
            plain_inputs = dict(input_ids=ids_t)
        assert_forward_trace(
            enc.trace,
            config.encoder_layers if hasattr(config, "encoder_layers") else config.num_layers,
            len(enc.trace.tokens),
        )
        dec_ids = np.concatenate([seq2seq.start_ids(loaded), [7, 11, 13]])
        trace = seq2seq.trace(loaded, enc, dec_ids)
        expected = plain_logits(model, decoder_input_ids=torch.tensor(dec_ids)[None], **plain_inputs)
        assert np.abs(trace.decoder.logits - expected).max() <= TOL
        assert_rows_sum_to_one(trace.cross_attentions)
        assert_rows_sum_to_one(trace.decoder.attentions)
        step = seq2seq.step(loaded, enc, dec_ids)
        assert np.abs(step.logits - expected[-1]).max() <= TOL
        assert step.cross_attention.shape[-1] == len(enc.trace.tokens)
        lens = seq2seq.decoder_lens(loaded, trace.decoder.hidden_states[:, 2])
        assert lens.shape[0] == trace.decoder.num_layers + 1
        assert np.abs(lens[-1] - trace.decoder.logits[2]).max() <= TOL  # the last depth is the real output

    else:  # moe
        result = moe.trace_ids(loaded, IDS)
        if config.is_encoder_decoder:
            dec_ids = seq2seq.start_ids(loaded)
            expected = plain_logits(model, input_ids=ids_t, decoder_input_ids=torch.tensor(dec_ids)[None])
            assert np.abs(result.decoder.logits - expected).max() <= TOL
            assert_router(result.encoder.router, config, len(IDS))
            assert_router(result.decoder.router, config, len(dec_ids))
            real = real_router_choices(
                loaded, lambda: model(input_ids=ids_t, decoder_input_ids=torch.tensor(dec_ids)[None])
            )
            n_enc = len(result.encoder.router.layer_indices)
            for layer, captured in enumerate(real[:n_enc]):
                r = result.encoder.router
                kept = r.kept[layer, :, 0]
                # where the router kept the token, it went to the expert we report
                assert np.array_equal(captured[kept], r.chosen[layer, kept, 0])
        else:
            expected = plain_logits(model, input_ids=ids_t)
            assert np.abs(result.logits - expected).max() <= TOL
            assert_forward_trace(result, config.num_hidden_layers, len(IDS))
            assert_router(result.router, config, len(IDS))
            real = real_router_choices(loaded, lambda: model(input_ids=ids_t))
            assert len(real) == len(result.router.layer_indices)
            for layer, captured in enumerate(real):
                assert np.array_equal(np.sort(captured, -1), np.sort(result.router.chosen[layer], -1))

    assert hook_count(model) == 0


def assert_kv_cached_steps_equal_full_reads(loaded, model, trace) -> None:
    """Steps that reuse a cached prefix (one token at a time, then a branch that forces a
    different token mid-way, then going back) equal plain forwards over the whole context."""
    decoder.forget_cached_prefixes(loaded)
    for n in range(2, len(IDS) + 1):
        incremental = decoder.step(loaded, IDS[:n])
    assert np.abs(incremental.logits - trace.logits[-1]).max() <= 1e-4
    assert np.abs(incremental.last_attention - trace.attentions[:, :, -1, :]).max() <= 1e-5
    assert np.abs(incremental.last_hidden - trace.hidden_states[:, -1, :]).max() <= 1e-4
    for context in (np.concatenate([IDS[:3], [5, 9]]), IDS[:4]):
        cached = decoder.step(loaded, context)
        full = plain_logits(model, input_ids=torch.tensor(context)[None])[-1]
        assert np.abs(cached.logits - full).max() <= 1e-4
        assert cached.last_attention.shape[-1] == len(context)
