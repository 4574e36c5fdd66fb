"""Intervention arithmetic on tiny random models, each against a hand computation."""

import contextlib
import copy
import functools
import threading
import time

import numpy as np
import pytest
import torch

from explorer.adapters import family, moe
from explorer.adapters import interventions as iv
from explorer.adapters.common import hook_count
from explorer.adapters.lookup import adapter_for
from explorer.decoding import log_softmax
from explorer.experiments import statistics as stats
from explorer.models.accounting import account
from explorer.text import InputError
from tiny_models import tiny_loaded

IDS = np.array([5, 17, 42, 8, 63, 21, 9, 30], dtype=np.int64)
TOL = 1e-5


def plain(model, ids, **kwargs):
    with torch.no_grad():
        return model(input_ids=torch.tensor(ids)[None], **kwargs).logits[0].numpy()


@pytest.mark.parametrize("name", ["llama", "gpt2", "bert"])
def test_zeroing_a_head_equals_removing_its_slice_of_the_output_projection(name):
    loaded = tiny_loaded(name)
    layer, head = 1, 2
    result = iv.head_ablation(loaded, IDS, [(layer, head)])
    assert hook_count(loaded.model) == 0
    edited = copy.deepcopy(loaded.model)
    proj = iv.attention_output_projections(edited)[layer]
    width = (proj.weight.shape[1] if isinstance(proj, torch.nn.Linear) else proj.weight.shape[0]) // iv.num_heads(
        edited.config
    )
    with torch.no_grad():
        if isinstance(proj, torch.nn.Linear):  # weight [out, in]: the head's input columns
            proj.weight[:, head * width : (head + 1) * width] = 0
        else:  # GPT-2 Conv1D, weight [in, out]: the head's input rows
            proj.weight[head * width : (head + 1) * width, :] = 0
    expected = log_softmax(plain(edited, IDS))
    causal = name != "bert"
    positions = np.arange(len(IDS) - 1) if causal else np.arange(len(IDS))
    targets = IDS[1:] if causal else IDS
    assert np.abs(result.modified_logprob - expected[positions, targets]).max() < TOL
    assert np.abs(result.base_logprob - log_softmax(plain(loaded.model, IDS))[positions, targets]).max() < TOL
    assert result.mean_kl > 0 and result.kl.shape == (len(IDS),)


def test_mean_ablation_puts_the_heads_reference_mean_through_the_projection():
    loaded = tiny_loaded("llama")
    layer, head = 0, 1
    proj = iv.attention_output_projections(loaded.model)[layer]
    reference = [IDS[::-1].copy(), np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3], dtype=np.int64)]
    captured = []
    handle = proj.register_forward_pre_hook(lambda m, args: captured.append(args[0][0].detach().clone()))
    for ids in reference:
        plain(loaded.model, ids)
    handle.remove()
    z = torch.cat(captured)  # [T1 + T2, H * d_head]: every position of the reference texts
    means = iv.reference_head_means(loaded, reference)  # padded batches: equal to the texts read alone
    assert np.abs(means[layer] - z.mean(0).numpy()).max() < 1e-5
    width = z.shape[-1] // iv.num_heads(loaded.model.config)
    part = slice(head * width, (head + 1) * width)
    edited = copy.deepcopy(loaded.model)
    eproj = iv.attention_output_projections(edited)[layer]
    # by hand: the head's columns now see a constant input, i.e. a bias W_h @ mean(z_h) and no weight
    bias = eproj.weight[:, part].detach() @ z[:, part].mean(0)
    with torch.no_grad():
        eproj.weight[:, part] = 0
    eproj.register_forward_hook(lambda m, a, out: out + bias)
    result = iv.head_ablation(loaded, IDS, [(layer, head)], mode="mean", reference=means, reference_name="two texts")
    expected = log_softmax(plain(edited, IDS))
    assert np.abs(result.modified_logprob - expected[np.arange(len(IDS) - 1), IDS[1:]]).max() < TOL
    assert "mean over two texts" in result.description
    assert hook_count(loaded.model) == 0


def test_the_running_mean_at_each_position_averages_the_positions_so_far():
    loaded = tiny_loaded("llama")
    layer, head = 1, 3
    proj = iv.attention_output_projections(loaded.model)[layer]
    width = proj.weight.shape[1] // iv.num_heads(loaded.model.config)
    part = slice(head * width, (head + 1) * width)
    seen = []

    def running(module, args):
        x = args[0].clone()  # [1, T, H * d_head]
        prefix = torch.cumsum(x[0, :, part], 0) / torch.arange(1, x.shape[1] + 1)[:, None]
        seen.append(prefix)
        x[0, :, part] = prefix
        return (x,)

    edited = copy.deepcopy(loaded.model)
    iv.attention_output_projections(edited)[layer].register_forward_pre_hook(running)
    expected = log_softmax(plain(edited, IDS))
    result = iv.head_ablation(loaded, IDS, [(layer, head)], mode="prefix")
    assert np.abs(result.modified_logprob - expected[np.arange(len(IDS) - 1), IDS[1:]]).max() < TOL


@pytest.mark.parametrize("name", ["llama", "gpt2", "mixtral"])
def test_mean_ablation_of_a_causal_model_leaves_earlier_positions_blind_to_later_text(name):
    """Position t's output may not change when only text after t changes, whatever replaces the heads
    (the old 'mean over this text' moved the first copy's log-probabilities by up to 1.5 nats)."""
    loaded = tiny_loaded(name)
    changed = IDS.copy()
    changed[5:] = [90, 91, 92]  # the same first five tokens, then other text
    heads = [(0, 1), (1, 2)]
    means = iv.reference_head_means(loaded, [IDS[::-1].copy()])
    for mode in iv.HEAD_MODES:
        kwargs = {"reference": means} if mode == "mean" else {}
        before = iv.head_ablation(loaded, IDS, heads, mode, **kwargs)
        after = iv.head_ablation(loaded, changed, heads, mode, **kwargs)
        # positions 0..3 predict tokens 1..4, which both texts share
        assert np.abs(before.modified_logprob[:4] - after.modified_logprob[:4]).max() < 1e-5, mode
        assert np.abs(before.kl[:5] - after.kl[:5]).max() < 1e-5, mode
    with pytest.raises(iv.InterventionRefused, match="encoder"):
        iv.head_ablation(tiny_loaded("bert"), IDS, heads, "prefix")
    with pytest.raises(ValueError):
        iv.head_ablation(loaded, IDS, heads, "mean")  # a mean needs its reference set


@pytest.mark.parametrize("name", ["llama", "gpt2", "bert"])
def test_sink_removal_renormalises_layer_zero_attention_without_the_first_key(name):
    loaded = tiny_loaded(name)
    causal = name != "bert"
    with torch.no_grad():
        base = loaded.model(input_ids=torch.tensor(IDS)[None], output_attentions=True).attentions[0][0].numpy()
        mask = iv.sink_free_mask(len(IDS), causal)
        modified = (
            loaded.model(input_ids=torch.tensor(IDS)[None], attention_mask=mask, output_attentions=True)
            .attentions[0][0]
            .numpy()
        )
    # layer 0 reads the same embeddings, so its new pattern is the old one renormalised by hand
    expected = stats.remove_sink(base[None])[0]
    if not causal:
        expected[:, 0, :] = base[:, 0, :] * (np.arange(len(IDS)) > 0) / (1 - base[:, 0, 0])[:, None]
    assert np.abs(modified - expected).max() < 1e-5
    result = iv.sink_removal(loaded, IDS)
    assert result.mean_kl > 0 and hook_count(loaded.model) == 0


@pytest.mark.parametrize("name", ["llama", "gpt2", "mixtral"])
def test_patching_the_whole_clean_stream_restores_the_clean_output(name, monkeypatch):
    loaded = tiny_loaded(name)
    corrupted = IDS.copy()
    corrupted[3] = 77
    clean_logits = plain(loaded.model, IDS)
    for depth in (0, 1, 2):
        patched = iv.patched_logits(loaded, IDS, corrupted, depth, range(len(IDS)))
        assert np.abs(patched - clean_logits).max() < TOL
    result = iv.activation_patching(loaded, IDS, corrupted, clean_answer=11, corrupted_answer=12)
    assert hook_count(loaded.model) == 0
    assert result.patched.shape == (3, len(IDS))
    monkeypatch.setattr(iv, "PATCH_BATCH_FLOATS", 3 * 99)  # 3 copies' logits at the read position per forward
    assert np.abs(iv.activation_patching(loaded, IDS, corrupted, 11, 12).patched - result.patched).max() < TOL
    restored = result.restored
    # the prompts differ only at position 3: its embedding alone restores everything, the others nothing
    assert restored[0, 3] == pytest.approx(1.0, abs=1e-4)
    assert np.abs(np.delete(restored[0], 3)).max() < 1e-4
    # the last block's output at the read position is all the output head sees
    assert restored[-1, -1] == pytest.approx(1.0, abs=1e-4)
    # positions before the change are identical in both runs (causal): patching them does nothing
    assert np.abs(restored[:, :3]).max() < 1e-4
    logits = plain(loaded.model, corrupted)
    assert result.corrupted_metric == pytest.approx(logits[-1, 11] - logits[-1, 12], abs=1e-5)


def test_patching_an_encoder_reads_the_masked_position():
    loaded = tiny_loaded("bert")
    corrupted = IDS.copy()
    corrupted[1] = 77
    result = iv.activation_patching(loaded, IDS, corrupted, clean_answer=11, corrupted_answer=12, position=5)
    assert result.restored[0, 1] == pytest.approx(1.0, abs=1e-4)
    assert result.restored[-1, 5] == pytest.approx(1.0, abs=1e-4)
    probability = iv.activation_patching(loaded, IDS, corrupted, 11, 12, position=5, metric="probability")
    expected = np.exp(log_softmax(plain(loaded.model, IDS))[5, 11])
    assert probability.clean_metric == pytest.approx(expected, rel=1e-5)
    assert probability.restored[0, 1] == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ValueError):
        iv.activation_patching(loaded, IDS, IDS[:-1], 11, 12)
    assert hook_count(loaded.model) == 0


def captured_routes(loaded, run):
    """What the experts really received: expert indices [T, K] per MoE layer."""
    seen = []
    experts = [m for n, m in loaded.model.named_modules() if n.endswith(".experts")]
    handles = [m.register_forward_hook(lambda m, args, out: seen.append(args[1].clone())) for m in experts]
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    return seen


@pytest.mark.parametrize("name", ["mixtral", "qwen2_moe", "olmoe"])
def test_top_k_equal_to_the_trained_k_reproduces_the_unmodified_run_exactly(name):
    loaded = tiny_loaded(name)
    result = iv.route_override(loaded, IDS)
    assert np.array_equal(result.base_logprob, result.modified_logprob)
    assert result.mean_kl == 0 and not result.flipped.any()
    assert hook_count(loaded.model) == 0


def test_drop_and_force_reach_the_experts():
    loaded = tiny_loaded("mixtral")
    original = captured_routes(loaded, lambda: plain(loaded.model, IDS))
    dropped = original[0][0, 0].item()
    seen = captured_routes(loaded, lambda: iv.route_override(loaded, IDS, drop=[dropped]))
    modified = seen[len(original) :]  # base run first, then the modified run
    for before, after in zip(original, modified):
        assert dropped not in after.tolist()
        untouched = ~(before == dropped).any(-1)
        assert torch.equal(before[untouched], after[untouched])  # other tokens keep their route
    seen = captured_routes(loaded, lambda: iv.route_override(loaded, IDS, force=[(1, 4, 3)]))
    forced = seen[len(original) :]
    assert forced[1][4, 0].item() == 3
    assert torch.equal(forced[0], original[0])  # layer 0 not forced
    assert hook_count(loaded.model) == 0


def test_a_forced_expert_takes_the_first_choices_weight_or_its_own():
    loaded = tiny_loaded("mixtral")
    weights = []
    experts = [m for n, m in loaded.model.named_modules() if n.endswith(".experts")]
    handles = [m.register_forward_hook(lambda m, args, out: weights.append((args[1].clone(), args[2].clone())))
               for m in experts]  # fmt: skip
    router = iv.router_modules(loaded.model)[0]
    logits = []
    handles.append(router.register_forward_hook(lambda m, args, out: logits.append(out[0].detach().clone())))
    try:
        plain(loaded.model, IDS)
        original_index, original_weight = weights[0]
        probs = torch.softmax(logits[0].float(), dim=-1)  # [T, E]
        forced = next(e for e in range(4) if e not in original_index[4].tolist())  # not already chosen
        for rule in ("first", "own"):
            weights.clear()
            result = iv.route_override(loaded, IDS, force=[(0, 4, forced)], force_weight=rule)
            index, weight = weights[len(experts)]  # the modified run's first MoE layer
            assert index[4].tolist() == [forced, original_index[4, 0].item()]
            if rule == "first":  # the slots keep their weights: the forced expert gets the first choice's
                assert torch.allclose(weight[4], original_weight[4])
            else:  # every slot its own router probability, renormalised over the two as Mixtral does
                own = probs[4, index[4]]
                assert torch.allclose(weight[4], own / own.sum(), atol=1e-6)
            assert ("original first choice" if rule == "first" else "own router probability") in result.description
    finally:
        for h in handles:
            h.remove()
    with pytest.raises(iv.InterventionRefused):
        iv.route_override(loaded, IDS, force=[(0, 4, forced)], force_weight="half")


def test_top_k_sweep_ties_loss_to_active_parameters():
    loaded = tiny_loaded("mixtral")
    sweep = iv.top_k_sweep(loaded, IDS, ks=(1, 2, 4, 8))
    assert list(sweep.ks) == [1, 2, 4]  # the tiny Mixtral has 4 experts
    acc = account(loaded.model.config)
    assert sweep.active_params[1] == acc.active and sweep.trained_k == 2
    assert np.all(np.diff(sweep.active_params) > 0) and sweep.active_params[-1] == acc.total
    base = iv.route_override(loaded, IDS).base_loss
    assert sweep.loss[1] == pytest.approx(base)


def test_routing_by_a_token_table_built_from_the_same_text_routes_like_its_table():
    loaded = tiny_loaded("mixtral")
    table = iv.token_table(loaded, [IDS])
    assert table.shape == (2, 99, 4) and np.isnan(table[:, 0]).all()  # id 0 never occurs
    # every id occurs once: the table is the text's own routing, so nothing changes
    result = iv.route_override(loaded, IDS, token_table=table)
    assert np.abs(result.base_logprob - result.modified_logprob).max() < 1e-5
    # fitted on another text, the same ids are routed differently: the run changes
    other = iv.route_override(loaded, IDS, token_table=iv.token_table(loaded, [IDS[::-1].copy(), np.roll(IDS, 3)]))
    assert other.mean_kl > 0
    assert hook_count(loaded.model) == 0


def test_hooks_are_removed_even_when_the_modified_run_raises(monkeypatch):
    loaded = tiny_loaded("llama")
    calls = []

    def failing(ld, ids, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the modified run, with the hooks attached
            assert hook_count(ld.model) > 0
            raise RuntimeError("boom")
        return plain(ld.model, ids)

    monkeypatch.setattr(iv, "_logits", failing)
    with pytest.raises(RuntimeError):
        iv.head_ablation(loaded, IDS, [(0, 0)])
    assert hook_count(loaded.model) == 0
    calls.clear()
    moe_loaded = tiny_loaded("mixtral")
    with pytest.raises(RuntimeError):
        iv.route_override(moe_loaded, IDS, top_k=1)
    assert hook_count(moe_loaded.model) == 0


@pytest.mark.parametrize("name", ["bart", "t5", "marian"])
def test_cross_attention_removal_equals_dropping_the_span_from_the_encoder_output(name):
    loaded = tiny_loaded(name)
    source, target = IDS, np.array([2, 7, 19, 33], dtype=np.int64)
    result = iv.cross_attention_removal(loaded, source, target, (2, 5))
    with torch.no_grad():
        encoded = loaded.model.get_encoder()(input_ids=torch.tensor(source)[None])
        keep = [i for i in range(len(source)) if not 2 <= i < 5]
        encoded.last_hidden_state = encoded.last_hidden_state[:, keep]
        expected = loaded.model(encoder_outputs=encoded, decoder_input_ids=torch.tensor(target)[None]).logits[0].numpy()
    assert np.abs(result.modified_logprob - log_softmax(expected)[np.arange(3), target[1:]]).max() < TOL
    assert result.mean_kl > 0 and hook_count(loaded.model) == 0


def test_refusals():
    with pytest.raises(ValueError):
        iv.head_ablation(tiny_loaded("llama"), IDS, [(5, 0)])
    with pytest.raises(ValueError):
        iv.attention_output_projections(tiny_loaded("albert").model)
    with pytest.raises(ValueError):
        iv.route_override(tiny_loaded("mixtral"), IDS, top_k=4, drop=[0])


def refusal(run) -> str:
    """The sentence of an InterventionRefused (an InputError: the page shows it as a warning)."""
    with pytest.raises(iv.InterventionRefused) as caught:
        run()
    assert isinstance(caught.value, InputError)
    return str(caught.value)


def test_every_refusal_is_one_sentence_saying_what_is_possible():
    mixtral, llama = tiny_loaded("mixtral"), tiny_loaded("llama")  # the tiny Mixtral: 4 experts, top-2
    assert refusal(lambda: iv.route_override(mixtral, IDS, drop=[0, 1, 2])) == (
        "Top-2 routing needs at least 2 experts left: at most 2 of the 4 can be dropped."
    )
    assert refusal(lambda: iv.route_override(mixtral, IDS, top_k=4, drop=[3])) == (
        "Top-4 routing needs at least 4 experts left: none of the 4 can be dropped."
    )
    assert "k can be 1 to 4" in refusal(lambda: iv.route_override(mixtral, IDS, top_k=5))
    assert "numbered 0 to 3" in refusal(lambda: iv.route_override(mixtral, IDS, drop=[4]))
    assert refusal(lambda: iv.route_override(mixtral, IDS, drop=[1], force=[(None, 2, 1)])).startswith(
        "Expert 1 is dropped, so no token can be forced to it"
    )
    assert "outside the text" in refusal(lambda: iv.route_override(mixtral, IDS, force=[(None, 8, 0)]))
    assert "MoE layer 2 does not exist" in refusal(lambda: iv.route_override(mixtral, IDS, force=[(2, 0, 0)]))
    assert refusal(lambda: iv.head_ablation(llama, IDS, [])) == "Choose at least one head to switch off."
    assert refusal(lambda: iv.head_ablation(llama, IDS, [(1, 4)])).startswith("L1H4 does not exist")
    corrupted = IDS.copy()
    corrupted[3] = 77
    assert "nothing to patch" in refusal(lambda: iv.activation_patching(llama, IDS, IDS.copy(), 11, 12))
    assert "equally long" in refusal(lambda: iv.activation_patching(llama, IDS, IDS[:-1], 11, 12))
    assert "same token" in refusal(lambda: iv.activation_patching(llama, IDS, corrupted, 11, 11))
    assert "outside the prompts" in refusal(lambda: iv.activation_patching(llama, IDS, corrupted, 11, 12, position=8))
    assert "Leave at least one source token visible" in refusal(
        lambda: iv.cross_attention_removal(tiny_loaded("bart"), IDS, IDS[:4], (0, len(IDS)))
    )
    for model in (mixtral, llama):
        assert hook_count(model.model) == 0


PATCHABLE = [
    "llama",
    "qwen2",
    "gpt2",
    "gpt_neox",
    "mixtral",
    "qwen2_moe",
    "olmoe",
    "bert",
    "roberta",
    "distilbert",
    "deberta-v2",
    "electra",
]


def one_at_a_time(loaded, clean, corrupted, position, answers) -> np.ndarray:
    """[L+1, T] the metric after each single patch, one unbatched forward per (depth, position)."""
    out = np.zeros((len(iv.blocks(loaded.model)) + 1, len(clean)))
    for depth in range(out.shape[0]):
        for pos in range(len(clean)):
            row = iv.patched_logits(loaded, clean, corrupted, depth, [pos])[position]
            out[depth, pos] = row[answers[0]] - row[answers[1]]
    return out


@pytest.mark.parametrize(
    "name, grow", [(name, True) for name in PATCHABLE] + [("llama", False), ("gpt2", False), ("bert", False)]
)
def test_batched_patching_equals_patching_one_position_at_a_time(name, grow, monkeypatch):
    loaded = tiny_loaded(name)
    monkeypatch.setitem(iv._GROWS, type(loaded.model), grow)  # copies joining at their depth, or all from the start
    monkeypatch.setattr(iv, "PATCH_FORWARD_COST", 70)  # several forwards, each under the lock on its own
    corrupted = IDS.copy()
    corrupted[[3, 5]] = [77, 40]
    position = 7 if loaded.family != "encoder" else 5
    result = iv.activation_patching(loaded, IDS, corrupted, 11, 12, position=position)
    expected = one_at_a_time(loaded, IDS, corrupted, position, (11, 12))
    assert np.abs(result.patched - expected).max() < TOL
    assert hook_count(loaded.model) == 0
    if loaded.family == "decoder":  # positions before the first change are the same in both runs: not run
        assert np.all(result.patched[:, :3] == result.corrupted_metric)  # (an MoE groups tokens by expert:
        # its equal rows may differ in the last bit, and are run)


def test_patching_on_the_default_decoder_equals_one_patch_at_a_time():
    from explorer.experiments import readings
    from explorer.models.loading import load_model

    loaded = load_model("embedded:SmolLM2-135M-Instruct", device="cpu", family="decoder")
    setup = iv.patching_setup(loaded, readings.patchable_pairs(loaded)[0])
    result = iv.activation_patching(
        loaded, setup.clean, setup.corrupted, setup.clean_answer, setup.corrupted_answer, setup.position, setup.metric
    )
    assert result.patched.shape == (31, len(setup.clean))
    for depth, pos in [(0, 3), (15, 3), (29, len(setup.clean) - 1), (30, 4)]:
        row = iv.patched_logits(loaded, setup.clean, setup.corrupted, depth, [pos])[setup.position]
        alone = row[setup.clean_answer] - row[setup.corrupted_answer]
        assert abs(result.patched[depth, pos] - alone) < TOL, (depth, pos)
    assert hook_count(loaded.model) == 0


def test_the_lock_is_held_for_one_forward_with_its_hooks_inside(monkeypatch):
    """Every intervention takes the model's lock once per forward, finds no hook on the model when it
    takes it and leaves none when it gives it back."""
    holds: list[int] = []
    forwards = {"n": 0}
    real_exclusive = iv.exclusive

    @contextlib.contextmanager
    def watched(ld):
        with real_exclusive(ld):
            assert hook_count(ld.model) == 0
            before = forwards["n"]
            yield
            assert hook_count(ld.model) == 0
            holds.append(forwards["n"] - before)

    monkeypatch.setattr(iv, "exclusive", watched)
    monkeypatch.setattr(iv, "PATCH_FORWARD_COST", 70)
    for name in ("llama", "mixtral"):
        loaded = tiny_loaded(name)
        count_forwards(loaded, forwards, monkeypatch)
        corrupted = IDS.copy()
        corrupted[3] = 77
        holds.clear()
        iv.activation_patching(loaded, IDS, corrupted, 11, 12)
        assert len(holds) > 3 and holds == [1] * len(holds)
        holds.clear()
        iv.head_ablation(loaded, IDS, [(0, 1)])
        iv.sink_removal(loaded, IDS)
        assert holds == [1, 1, 1, 1]
    holds.clear()
    iv.route_override(loaded, IDS, drop=[0])
    assert holds == [1, 1]


def count_forwards(loaded, counter: dict, monkeypatch, started: threading.Event | None = None) -> None:
    real = loaded.model.forward

    @functools.wraps(real)
    def counted(*args, **kwargs):
        counter["n"] += 1
        if started is not None:
            started.set()
        return real(*args, **kwargs)

    monkeypatch.setattr(loaded.model, "forward", counted)


def test_another_visitor_gets_the_model_between_the_forwards_of_a_patching_job(monkeypatch):
    loaded = tiny_loaded("gpt2")
    monkeypatch.setattr(iv, "PATCH_FORWARD_COST", 1)  # one patch per forward: about 20 forwards
    forwards, started, done = {"n": 0}, threading.Event(), {}
    count_forwards(loaded, forwards, monkeypatch, started)
    corrupted = IDS.copy()
    corrupted[3] = 77
    job = threading.Thread(target=lambda: done.update(result=iv.activation_patching(loaded, IDS, corrupted, 11, 12)))
    job.start()
    assert started.wait(60)
    with loaded.lock:  # waits for the forward under way, not for the job
        got_in_after = forwards["n"]
        assert hook_count(loaded.model) == 0
    job.join(120)
    assert "result" in done and got_in_after < forwards["n"]


def test_cards_measured_on_a_tiny_moe_have_their_shapes_nulls_and_baselines():
    from explorer.experiments import findings, measure, readings

    loaded = tiny_loaded("mixtral")
    prompts = [IDS, IDS[::-1].copy(), np.roll(IDS, 3)]
    traces = readings.read(loaded, prompts)
    sink = findings.sink_card(loaded, traces)
    assert sink.by_layer.shape == (2,) and 0 <= sink.measured <= 1
    assert sink.chance == pytest.approx(stats.uniform_first_token_mass(len(IDS), causal=True))
    assert sink.per_prompt.shape == (3,) and sink.null.shape == (3, findings.DRAWS)
    assert sink.verdict in stats.VERDICTS and sink.spread == pytest.approx(sink.per_prompt.std())
    random = readings.random_token_prompts(loaded, seeds=(0, 1), period=8)
    with_logits = readings.read(loaded, [ids for ids, _ in random], with_logits=True)
    loss, head = findings.induction_cards(loaded, with_logits, [s for _, s in random], period=8)
    assert head.by_layer.shape == (2, 4) and np.isfinite(loss.measured) and loss.null.shape == (2, findings.DRAWS)
    same, overlap, first_in = findings.routing_cards(loaded, traces)
    assert first_in.chance == 0.5
    assert same.chance == 0.25 and overlap.chance == pytest.approx(1 - 1 / 6)  # N = 4, k = 2
    assert same.by_layer.shape == (2,) and same.null_by_layer.shape == (2,)
    depth = findings.prediction_depth_card(loaded, readings.lens_from_top(loaded, traces))
    assert 0 <= depth.measured <= 1 and depth.direction == -1 and depth.chance == 1.0
    tax = measure.taxonomy(loaded)
    assert tax.labels.shape == (2, 4) and set(tax.labels.ravel()) <= set(stats.HEAD_KINDS)
    assert hook_count(loaded.model) == 0


@pytest.mark.parametrize("name", ["llama", "gpt2", "mixtral", "bert", "distilbert"])
def test_batched_readings_equal_one_forward_per_prompt(name):
    """The cards read a prompt set in padded batches: each prompt's trace equals its own forward."""
    from explorer.adapters import batched, decoder, encoder

    loaded = tiny_loaded(name)
    prompts = [IDS, IDS[:5].copy(), np.array([7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17], dtype=np.int64)]
    alone = {"decoder": decoder.trace_ids, "moe": moe.trace_ids,
             "encoder": lambda ld, ids: encoder.trace_ids(ld, ids, with_logits=False)}[loaded.family]  # fmt: skip
    together = batched.trace_batch(loaded, prompts, with_logits=loaded.family != "encoder")
    for ids, trace in zip(prompts, together):
        own = alone(loaded, ids)
        assert trace.hidden_states.shape == own.hidden_states.shape
        assert np.abs(trace.hidden_states - own.hidden_states).max() < 1e-5
        assert np.abs(trace.attentions - own.attentions).max() < 1e-5
        if loaded.family != "encoder":
            assert np.abs(trace.logits - own.logits).max() < 1e-4
        if loaded.family == "moe":
            assert np.array_equal(trace.router.chosen, own.router.chosen)
    assert batched.chunks([5, 5, 5, 9], 16) == [[0, 1, 2], [3]]  # at most 16 padded tokens per forward


def test_the_lens_read_from_the_top_gives_the_settled_depth_of_the_full_lens():
    from explorer.adapters import decoder
    from explorer.experiments import readings

    loaded = tiny_loaded("llama")
    traces = readings.read(loaded, [IDS, np.roll(IDS, 2)])
    for partial, trace in zip(readings.lens_from_top(loaded, traces), traces):
        full = np.stack([decoder.logit_lens(loaded, trace.hidden_states[:, t]).argmax(-1) for t in range(len(IDS))], 1)
        assert np.array_equal(stats.settled_depth(partial), stats.settled_depth(full))
        assert np.array_equal(partial[-1], full[-1])


@pytest.mark.parametrize("name", ["bart", "marian"])
def test_greedy_output_without_a_span_is_the_argmax_of_its_own_masked_run(name):
    loaded = tiny_loaded(name)
    unmodified = iv.greedy_with_span_removed(loaded, IDS, None, max_new_tokens=6)
    with torch.no_grad():
        expected = loaded.model.generate(
            input_ids=torch.tensor(IDS)[None],
            max_new_tokens=6,
            do_sample=False,
            num_beams=1,
            suppress_tokens=[loaded.model.config.pad_token_id],
            min_length=0,
            forced_eos_token_id=None,
        )[0].numpy()
    assert unmodified.tolist() == expected[: len(unmodified)].tolist()
    modified = iv.greedy_with_span_removed(loaded, IDS, (2, 5), max_new_tokens=6)
    # teacher-forced on its own output with the same span removed, every next token is the argmax
    # (or padding was the argmax, which greedy decoding never writes)
    scored = iv.cross_attention_removal(loaded, IDS, modified, (2, 5))
    pad = loaded.model.config.pad_token_id
    pairs = list(zip(scored.modified_top1[:-1].tolist(), modified[1:].tolist()))
    assert all(best == chosen or best == pad for best, chosen in pairs), pairs
    assert sum(best == chosen for best, chosen in pairs) >= len(pairs) // 2
    assert hook_count(loaded.model) == 0
    with pytest.raises(ValueError):
        iv.greedy_with_span_removed(loaded, IDS, (0, len(IDS)))


def test_the_card_plan_covers_each_family_and_refuses_what_it_cannot_read():
    from explorer.experiments import measure

    moe_plan = measure.card_plan(tiny_loaded("mixtral"))
    assert [s.key for s in moe_plan] == ["everyday-sentences", "word-in-contexts", "repeated-random-tokens",
                                         "austen-held-out"]  # fmt: skip
    assert [s.key for s in measure.card_plan(tiny_loaded("bert"))] == [
        "everyday-sentences", "everyday-sentences-masked", "word-in-contexts", "sentence-pairs"]  # fmt: skip
    assert [s.key for s in measure.card_plan(tiny_loaded("bart"))] == ["everyday-sentences"]  # prediction depth
    assert all(key in measure.PROMPT_SETS for key in [s.key for s in moe_plan])
    with pytest.raises(ValueError):
        measure.card_plan(tiny_loaded("whisper"))  # speech: no everyday sentences to read
    with pytest.raises(ValueError):
        measure.card_plan(tiny_loaded("switch_transformers"))  # an encoder-decoder mixture of experts


@pytest.mark.parametrize(
    "model_id", ["embedded:distilbert-grammar-mlm", "embedded:marian-en-pt-tiny", "embedded:moe-tiny-austen"]
)
def test_prediction_depth_reads_every_family_on_the_same_sentences(model_id):
    from explorer.experiments import findings, readings
    from explorer.models.loading import load_model

    loaded = load_model(model_id, device="cpu")
    texts = ("The old man walked slowly to the harbour at night.", "Rain had fallen all night, so the roads flooded.")
    steps = adapter_for(loaded).card_steps(loaded)  # the step that reads the family's lens
    if family.MASKED_SENTENCES in steps:
        step, prompts = family.MASKED_SENTENCES, readings.masked_sentence_prompts(loaded, texts)
        traces = readings.read(loaded, [ids for ids, _ in prompts])
        lens = readings.masked_lens(loaded, traces, [chosen for _, chosen in prompts])
    elif family.TRANSLATIONS in steps:
        step, lens = family.TRANSLATIONS, readings.translation_lens(loaded, texts)
    else:
        step, lens = family.SENTENCES, readings.lens_from_top(loaded, readings.sentence_traces(loaded, texts))
    card = findings.prediction_depth_card(loaded, lens, step)
    assert 0.0 <= card.measured <= 1.0 and card.prompt_set == "everyday-sentences"
    assert card.method == findings.DEPTH_METHODS[step] and card.per_prompt.shape == (2,)


def test_a_long_job_steps_aside_while_another_visitor_uses_the_model(monkeypatch):
    loaded = tiny_loaded("llama")
    monkeypatch.setattr(iv, "GIVE_WAY_S", 0.2)
    began = time.perf_counter()
    iv._give_way(loaded)
    assert time.perf_counter() - began < 0.1  # nobody else: no wait at all
    holding, release = threading.Event(), threading.Event()

    def visitor():
        with loaded.lock:
            holding.set()
            release.wait(10)

    other = threading.Thread(target=visitor)
    other.start()
    assert holding.wait(10)
    threading.Timer(0.3, release.set).start()
    began = time.perf_counter()
    iv._give_way(loaded)  # until the visitor lets go, then GIVE_WAY_S of a free model
    assert time.perf_counter() - began >= 0.3 + 0.2 - 0.05
    other.join()
    monkeypatch.setattr(iv, "GIVE_WAY_MOST_S", 0.2)  # a model never free: the job still goes on
    release.clear()
    other = threading.Thread(target=visitor)
    holding.clear()
    other.start()
    assert holding.wait(10)
    began = time.perf_counter()
    iv._give_way(loaded)
    assert time.perf_counter() - began < 2
    release.set()
    other.join()
