"""Guided labs (issue 24, item 1): their structure, and every answer key measured on the real embedded defaults.

Structure: 8+ labs (two per family, one on the experiments), 3-6 steps each, stable unique ids, and every preset
key one that the target page's View declares, with a value its link spec accepts. Keys: each step's answer on
the default view and on a second input where it should change; both must equal a computation written here
straight against the model (torch and transformers, not the lessons' own code), and the two must differ.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
import string

import numpy as np
import pytest
import torch

from explorer.adapters.common import display_token
from explorer.lessons import keys_experiments, labs
from explorer.lessons.core import CHOICE, NO, NUMBER, YES, Answer, FromModel, LabRefused, shuffled
from explorer.linkvalues import format_value, parse_value
from explorer.registry import FAMILIES
from explorer.ui import experiments, stepper
from explorer.ui.experiments import common as experiments_common
from explorer.ui.experiments import heads as experiments_heads
from explorer.ui.experiments import routing as experiments_routing
from explorer.ui.navigation import page_modules
from explorer.ui.pages import import_page

ALL_STEPS = [(lab.id, step.id) for lab in labs.LABS for step in lab.steps]
SLUG = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


# --- structure --------------------------------------------------------------------------------------------


def test_two_labs_per_family_and_one_on_the_experiments():
    assert len(labs.LABS) >= 8
    for family in FAMILIES:
        assert len(labs.labs_of(family)) >= 2, family
    assert labs.labs_of("experiments")


def test_ids_are_unique_stable_slugs_and_labs_have_3_to_6_steps():
    assert len({lab.id for lab in labs.LABS}) == len(labs.LABS)
    for lab in labs.LABS:
        assert SLUG.fullmatch(lab.id) and 3 <= len(lab.steps) <= 6, lab.id
        assert len({s.id for s in lab.steps}) == len(lab.steps), lab.id
        assert all(SLUG.fullmatch(s.id) for s in lab.steps), lab.id
        assert labs.lab(lab.id) is lab and all(lab.step(s.id) is s for s in lab.steps)
    with pytest.raises(KeyError, match="no lab"):
        labs.lab("no-such-lab")


def _figure_keys(module) -> str:
    """The page's source (a package's: every module's in it) and the stepper's (which draws the decoding
    pages' bars as f"{prefix}_bars")."""
    shared = inspect.getsource(stepper)
    parts = [module.__name__ + "." + m.name for m in pkgutil.iter_modules(getattr(module, "__path__", []))]
    page = inspect.getsource(module) + "".join(inspect.getsource(importlib.import_module(p)) for p in parts)
    return page + "".join(shared.replace("{prefix}", p) for p in ("decoder", "s2s"))


@pytest.mark.parametrize("lab_id, step_id", ALL_STEPS)
def test_every_preset_key_is_declared_by_the_page_and_its_value_fits_the_link_spec(lab_id, step_id):
    step = labs.lab(lab_id).step(step_id)
    modules = page_modules()
    assert step.page in modules, step.page
    module = import_page(modules[step.page])
    view = module.VIEW
    for key, value in step.preset.items():
        assert view.declares(key), f"{step.page} declares no {key!r}"
        spec = view.settings.get(key)
        if spec and not isinstance(value, FromModel):
            assert parse_value(spec, format_value(spec, value)) == value, (key, value, spec)
    assert step.figure and step.figure in _figure_keys(module), step.figure  # the figure the answer is read on
    assert step.kind in (CHOICE, NUMBER)
    assert step.family in FAMILIES
    if step.kind == NUMBER:
        assert step.tolerance >= 0 and not step.choices
    fields = {name for _text, name, _spec, _conv in string.Formatter().parse(step.question) if name}
    assert "{" not in step.question or fields, step.question


def test_experiments_steps_preset_tools_the_page_has():
    for lab in labs.LABS:
        for step in lab.steps:
            if step.page == "experiments":
                assert step.preset["exp_tool"] in experiments.tools(step.preset["exp_family"])
    assert f'"{labs.TOP_K_SWEEP}"' in inspect.getsource(experiments_routing.routing_body)
    assert keys_experiments.INDUCTION_TEXT == experiments_heads.INDUCTION_DEMO
    assert keys_experiments.EXPERIMENT_TOKENS == experiments_common.MAX_TOKENS


def test_choices_are_shuffled_by_their_text_not_by_rank():
    choices = ["France", "Paris", "Europe", "Spain"]
    once = shuffled(choices, "top-word")
    assert sorted(once) == sorted(choices) and shuffled(choices, "top-word") == once
    assert shuffled(list(reversed(choices)), "top-word") == once  # the model's ranking does not show


def test_an_answer_accepts_the_right_choice_or_a_number_within_its_tolerance():
    choice = Answer("lab", "step", "Q?", CHOICE, (YES, NO), YES, "because", {})
    assert choice.accepts(YES) and not choice.accepts(NO) and not choice.accepts(None)
    number = Answer("lab", "step", "Q?", NUMBER, (), 36.6, "because", {}, tolerance=10.0, unit="%", digits=1)
    assert number.accepts(30) and number.accepts("46.6") and not number.accepts(47) and not number.accepts("x")
    assert not number.accepts(float("nan")) and number.shown == "36.6 %"
    assert Answer("l", "s", "Q?", NUMBER, (), 1.0, "", {}, unit="tokens").shown == "1 token"


def test_a_step_with_values_from_the_model_needs_the_model():
    step = labs.EXPERIMENTS_SWITCH_OFF.step("induction-rise")
    with pytest.raises(ValueError, match="loaded model"):
        step.view()
    assert step.view(object(), {"exp_heads": ["L0H0"]})["exp_heads"] == ["L0H0"]  # a teacher's choice wins


# --- the answer keys on the embedded defaults -------------------------------------------------------------

MASKED_2 = "Paris is the [MASK] of France."
BANKS_2 = "She left the bank, then she went back to the bank."
COUNTING = "1, 2, 3, 4,"
DOOR = "He walked to the door and opened the door."
# step -> the second input: overrides of the preset, the step's params, or another model
SECOND = {
    ("encoder-both-sides", "top-word"): {"encoder_text": MASKED_2},
    ("encoder-both-sides", "top-probability"): {"encoder_text": MASKED_2},
    ("encoder-both-sides", "attention-right"): {"encoder_text": MASKED_2},
    ("encoder-both-sides", "cut-right"): {"encoder_text": "I drank a cup of [MASK] this morning."},
    ("encoder-context", "bank-start"): {"encoder_text": "I sat on the river bank and watched the other bank of it."},
    ("encoder-context", "bank-end"): {"encoder_text": BANKS_2},
    ("encoder-context", "it-refers"): {"encoder_text": labs.ANIMAL.replace("tired", "wide")},
    ("decoder-sampling", "next-token"): {"decoder_prompt": labs.OPEN_PROMPT},
    ("decoder-sampling", "cold"): {"decoder_prompt": labs.FACT_PROMPT},
    ("decoder-sampling", "nucleus"): {"decoder_prompt": labs.FACT_PROMPT},
    ("decoder-sampling", "sample-vs-greedy"): {"decoder_prompt": labs.FACT_PROMPT},
    ("decoder-inside", "most-attended"): {"decoder_prompt": COUNTING},
    ("decoder-inside", "sink-share"): {"decoder_prompt": COUNTING},
    ("decoder-inside", "lens-depth"): {"decoder_prompt": COUNTING},
    ("seq2seq-alignment", "first-output"): {"s2s_text": labs.SISTER},
    ("seq2seq-alignment", "aligned-source"): {"s2s_text": labs.SISTER},
    ("seq2seq-alignment", "steps-back"): {"s2s_text": labs.SISTER},
    ("seq2seq-encode-once", "decoder-steps"): {"s2s_text": labs.BLACK_CAT},
    ("seq2seq-encode-once", "encoder-share"): {"s2s_text": labs.BLACK_CAT},
    ("seq2seq-encode-once", "sampled-same"): {"s2s_text": "I like tea."},
    ("moe-routing", "word-expert"): {"moe_text": DOOR},
    ("moe-routing", "word-agrees"): {"moe_text": DOOR},
    ("moe-routing", "experts-used"): {"moe_text": "the door"},  # 2 tokens: at most 4 experts
    ("moe-routing", "busiest-share"): {"moe_text": DOOR},
    ("moe-cost", "held"): {"model": "embedded:tiny-random-moe"},
    ("moe-cost", "per-token"): {"model": "embedded:tiny-random-moe"},
    ("moe-cost", "more-experts"): {"exp_text": DOOR},
    ("moe-cost", "mixtral-total"): {"params": {"config": "olmoe-1b-7b"}},
    ("moe-cost", "mixtral-active"): {"params": {"config": "olmoe-1b-7b"}},
    ("experiments-switch-off", "sink-next"): {"exp_text": "The cat sat on the mat. The cat sat on the mat."},
    ("experiments-switch-off", "sink-flips"): {"exp_text": labs.SISTER},
    ("experiments-switch-off", "sink-loss"): {"exp_text": experiments_common.EXAMPLES[2]},  # Mary and John
    ("experiments-switch-off", "induction-rise"): {"exp_text": labs.SISTER},
}


def test_every_step_has_a_second_input():
    assert set(SECOND) == set(ALL_STEPS)


def _ids(loaded, text: str) -> torch.Tensor:
    return torch.tensor([loaded.tokenizer(text)["input_ids"]])


def _forward(loaded, text: str, **flags):
    with torch.no_grad():
        return loaded.model(input_ids=_ids(loaded, text), return_dict=True, **flags)


def _softmax(logits) -> np.ndarray:
    return torch.softmax(torch.as_tensor(logits, dtype=torch.float64), -1).numpy()


def _label(loaded, token_id) -> str:
    return display_token(loaded.tokenizer, int(token_id))


# encoder (DistilBERT with its own masked-language head: the full forward, not the lens the keys read)
def _masked(loaded, text):
    out = _forward(loaded, text, output_hidden_states=True, output_attentions=True)
    ids = _ids(loaded, text)[0]
    position = int((ids == loaded.tokenizer.mask_token_id).nonzero()[0, 0])
    return out, position, _softmax(out.logits[0, position])


def oracle_top_word(loaded, view, params):
    return _label(loaded, _masked(loaded, view["encoder_text"])[2].argmax())


def oracle_top_probability(loaded, view, params):
    return 100 * _masked(loaded, view["encoder_text"])[2].max()


def oracle_attention_right(loaded, view, params):
    out, position, _p = _masked(loaded, view["encoder_text"])
    rows = out.attentions[view["encoder_attn_layer"] - 1][0, :, position]  # [H, T]
    return 100 * float(rows[:, position + 1 :].sum(-1).mean())


def oracle_cut_right(loaded, view, params):
    text = view["encoder_text"]
    cut = text[: text.index("[MASK]") + len("[MASK]")]
    return (
        YES
        if oracle_top_word(loaded, {"encoder_text": text}, {}) == oracle_top_word(loaded, {"encoder_text": cut}, {})
        else NO
    )


def _vectors(loaded, text: str, depth: int):
    out = _forward(loaded, text, output_hidden_states=True)
    tokens = loaded.tokenizer.convert_ids_to_tokens(_ids(loaded, text)[0].tolist())
    return out.hidden_states[depth][0], tokens  # [T, D]


def _cos(a, b) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


def oracle_twin_cosine(loaded, view, params):
    h, tokens = _vectors(loaded, view["encoder_text"], view["encoder_sim_layer"])
    a, b = [i for i, t in enumerate(tokens) if t == params["word"]][:2]
    return _cos(h[a], h[b])


def oracle_referent(loaded, view, params):
    h, tokens = _vectors(loaded, view["encoder_text"], view["encoder_sim_layer"])
    it = tokens.index(params["pronoun"])
    return max(params["candidates"], key=lambda w: _cos(h[it], h[tokens.index(w)]))


# decoder (SmolLM2: one plain forward over the prompt, no KV cache)
def _next(loaded, view) -> torch.Tensor:
    return _forward(loaded, view["decoder_prompt"]).logits[0, -1].double()  # [V]


def oracle_next_token(loaded, view, params):
    return _label(loaded, _next(loaded, view).argmax())


def oracle_cold(loaded, view, params):
    return 100 * float(torch.softmax(_next(loaded, view) / view["decoder_temperature"], -1).max())


def oracle_nucleus(loaded, view, params):
    probs = torch.softmax(_next(loaded, view) / view["decoder_temperature"], -1).sort(descending=True).values
    return float(int((probs.cumsum(0) < view["decoder_top_p"]).sum()) + 1)  # the smallest head reaching top-p


def oracle_sample(loaded, view, params):
    logits = _next(loaded, view)
    probs = torch.softmax(logits / view["decoder_temperature"], -1).numpy()
    cumulative = np.cumsum(probs)  # ids ascending
    u = np.random.default_rng([view["decoder_seed"], 0]).random() * cumulative[-1]
    drawn = min(int(np.searchsorted(cumulative, u, side="right")), len(probs) - 1)
    return YES if drawn == int(logits.argmax()) else NO


def _attentions(loaded, view):
    return _forward(loaded, view["decoder_prompt"], output_attentions=True).attentions  # L x [1, H, T, T]


def oracle_most_attended(loaded, view, params):
    ids = _ids(loaded, view["decoder_prompt"])[0]
    row = _attentions(loaded, view)[view["decoder_layer"] - 1][0, :, -1].mean(0)
    i = int(row.argmax())
    return f"{i}: {_label(loaded, ids[i])}"


def oracle_sink_share(loaded, view, params):
    return 100 * float(torch.stack([a[0, :, -1, 0] for a in _attentions(loaded, view)]).mean())


def oracle_lens_depth(loaded, view, params):
    model = loaded.model
    hidden = _forward(loaded, view["decoder_prompt"], output_hidden_states=True).hidden_states  # L+1
    with torch.no_grad():
        tops = [
            int(model.lm_head(h[0, -1] if d == len(hidden) - 1 else model.model.norm(h[0, -1])).argmax())
            for d, h in enumerate(hidden)
        ]
    return float(next(d for d in range(len(tops)) if all(t == tops[-1] for t in tops[d:])))


# encoder-decoder (the translator: Hugging Face generate, then one forward over source and output)
def _translation(loaded, text: str) -> list[int]:
    with torch.no_grad():
        out = loaded.model.generate(_ids(loaded, text), num_beams=1, do_sample=False, max_new_tokens=64)
    return out[0, 1:].tolist()  # after the decoder's start token


def _cross(loaded, text: str):
    output = _translation(loaded, text)
    start = loaded.model.config.decoder_start_token_id
    with torch.no_grad():
        out = loaded.model(
            input_ids=_ids(loaded, text), decoder_input_ids=torch.tensor([[start, *output]]), output_attentions=True
        )
    cross = torch.stack([a[0] for a in out.cross_attentions]).mean((0, 1))  # [T_out + 1, S]
    return output, cross


def oracle_first_output(loaded, view, params):
    return _label(loaded, _translation(loaded, view["s2s_text"])[0])


def oracle_aligned_source(loaded, view, params):
    _output, cross = _cross(loaded, view["s2s_text"])
    i = int(cross[view["s2s_inspect"] - 1].argmax())
    return f"{i}: {_label(loaded, _ids(loaded, view['s2s_text'])[0, i])}"


def oracle_steps_back(loaded, view, params):
    output, cross = _cross(loaded, view["s2s_text"])
    special = set(loaded.tokenizer.all_special_ids)
    source = _ids(loaded, view["s2s_text"])[0].tolist()
    words = [i for i, t in enumerate(source) if t not in special]
    path = [words[int(cross[k, words].argmax())] for k, t in enumerate(output) if t not in special]
    return YES if any(b < a for a, b in zip(path, path[1:])) else NO


def oracle_decoder_steps(loaded, view, params):
    return float(len(_translation(loaded, view["s2s_text"])))


def oracle_encoder_share(loaded, view, params, answer):
    """A timing cannot be repeated exactly: the share must be the one its own medians give, over as many
    decoder steps as the translation has."""
    steps = answer.measured["step_ms"]
    assert len(steps) == oracle_decoder_steps(loaded, view, params)
    return 100 * answer.measured["encoder_ms"] / (answer.measured["encoder_ms"] + sum(steps))


def oracle_sampled_same(loaded, view, params):
    model, source = loaded.model, _ids(loaded, view["s2s_text"])
    banned = [loaded.model.config.pad_token_id] + [w[0] for w in model.generation_config.bad_words_ids or []]
    ids, eos = [model.config.decoder_start_token_id], model.config.eos_token_id
    while len(ids) <= 64 and ids[-1] != eos:
        with torch.no_grad():
            logits = model(input_ids=source, decoder_input_ids=torch.tensor([ids])).logits[0, -1].double()
        logits[banned] = -torch.inf
        cumulative = np.cumsum(torch.softmax(logits / view["s2s_temperature"], -1).numpy())
        u = np.random.default_rng([view["s2s_seed"], len(ids) - 1]).random() * cumulative[-1]
        ids.append(min(int(np.searchsorted(cumulative, u, side="right")), len(cumulative) - 1))
    return YES if ids[1:] == _translation(loaded, view["s2s_text"]) else NO


# mixture of experts (the router logits the library records, top-k and the counts done here)
def _firsts(loaded, view, k=None):
    out = _forward(loaded, view["moe_text"], output_router_logits=True)
    logits = out.router_logits[view["moe_layer"]]  # [T, E]
    return logits.topk(k or loaded.model.config.num_experts_per_tok, -1).indices  # [T, k]


def _the(loaded, view, params) -> list[int]:
    tokens = [_label(loaded, i) for i in _ids(loaded, view["moe_text"])[0]]
    return [i for i, t in enumerate(tokens) if t in (params["word"], "␣" + params["word"])]


def oracle_word_expert(loaded, view, params):
    return f"expert {int(_firsts(loaded, view)[_the(loaded, view, params)[0], 0])}"


def oracle_word_agrees(loaded, view, params):
    firsts = _firsts(loaded, view)[_the(loaded, view, params), 0]
    return YES if len(set(firsts.tolist())) == 1 else NO


def oracle_experts_used(loaded, view, params):
    return float(len(set(_firsts(loaded, view).ravel().tolist())))


def oracle_busiest_share(loaded, view, params):
    chosen = _firsts(loaded, view)
    return 100 * float(torch.bincount(chosen.ravel()).max()) / chosen.numel()


def _expert_share(loaded):
    total = sum(p.numel() for p in loaded.model.parameters())
    experts = sum(p.numel() for n, p in loaded.model.named_parameters() if ".experts." in n)
    config = loaded.model.config
    return total, total - experts * (config.num_local_experts - config.num_experts_per_tok) / config.num_local_experts


def oracle_held(loaded, view, params):
    return _expert_share(loaded)[0] / 1e6


def oracle_per_token(loaded, view, params):
    return _expert_share(loaded)[1] / 1e6


def _loss(loaded, ids: torch.Tensor) -> float:
    with torch.no_grad():
        logits = loaded.model(input_ids=ids).logits[0, :-1].double()
    return float(torch.nn.functional.cross_entropy(logits, ids[0, 1:]))


def oracle_more_experts(loaded, view, params):
    ids = _ids(loaded, view["exp_text"])
    routers = [m for m in loaded.model.modules() if hasattr(m, "top_k") and hasattr(m, "num_experts")]
    trained = _loss(loaded, ids)
    try:
        for router in routers:
            router.top_k = 4
        more = _loss(loaded, ids)
    finally:
        for router in routers:
            router.top_k = loaded.model.config.num_experts_per_tok
    return YES if more < trained else NO


def _meta_counts(name: str) -> tuple[int, float]:
    """(total, per token) of a gallery configuration, built here on the meta device and counted."""
    import transformers

    from explorer.models.accounting import CONFIGS

    raw = json.loads((CONFIGS / f"{name}.json").read_text())
    raw.pop("_published")
    config = transformers.AutoConfig.for_model(raw.pop("model_type"), **raw)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    total = sum(p.numel() for p in model.parameters())
    experts = sum(p.numel() for n, p in model.named_parameters() if ".experts." in n)
    e = getattr(config, "num_local_experts", None) or config.num_experts
    return total, total - experts * (e - config.num_experts_per_tok) / e


def oracle_mixtral_total(loaded, view, params):
    return f"{_meta_counts(params['config'])[0] / 1e9:.1f} B"


def oracle_mixtral_active(loaded, view, params):
    return _meta_counts(params["config"])[1] / 1e9


# experiments (SmolLM2: the sink removed with a mask written here; heads zeroed with a hook written here)
def _sink_runs(loaded, view):
    ids = _ids(loaded, view["exp_text"])
    t = ids.shape[1]
    allowed = torch.ones(t, t).tril().bool()
    allowed[1:, 0] = False  # no query but the first may read the first token
    mask = torch.zeros(1, 1, t, t).masked_fill(~allowed, torch.finfo(torch.float32).min)
    with torch.no_grad():
        base = loaded.model(input_ids=ids).logits[0].double()
        modified = loaded.model(input_ids=ids, attention_mask=mask).logits[0].double()
    return ids, base, modified


def oracle_sink_next(loaded, view, params):
    _ids_, base, modified = _sink_runs(loaded, view)
    return YES if int(base[-1].argmax()) != int(modified[-1].argmax()) else NO


def oracle_sink_flips(loaded, view, params):
    _ids_, base, modified = _sink_runs(loaded, view)
    return float(int((base.argmax(-1) != modified.argmax(-1)).sum()))


def oracle_sink_loss(loaded, view, params):
    ids, base, modified = _sink_runs(loaded, view)
    loss = [float(torch.nn.functional.cross_entropy(x[:-1], ids[0, 1:])) for x in (base, modified)]
    return "Rises" if loss[1] > loss[0] else "Falls"


def oracle_induction_rise(loaded, view, params):
    ids = _ids(loaded, view["exp_text"])
    heads = [(int(n[1:].split("H")[0]), int(n.split("H")[1])) for n in view["exp_heads"]]
    width = loaded.model.config.hidden_size // loaded.model.config.num_attention_heads

    def zero(hs):
        def hook(module, args):
            x = args[0].clone()
            for h in hs:
                x[..., h * width : (h + 1) * width] = 0
            return (x,)

        return hook

    base = _loss(loaded, ids)
    handles = [
        loaded.model.model.layers[layer].self_attn.o_proj.register_forward_pre_hook(zero([h])) for layer, h in heads
    ]
    try:
        modified = _loss(loaded, ids)
    finally:
        for handle in handles:
            handle.remove()
    return modified - base


ORACLES = {
    "top-word": oracle_top_word,
    "top-probability": oracle_top_probability,
    "attention-right": oracle_attention_right,
    "cut-right": oracle_cut_right,
    "bank-start": oracle_twin_cosine,
    "bank-end": oracle_twin_cosine,
    "it-refers": oracle_referent,
    "next-token": oracle_next_token,
    "cold": oracle_cold,
    "nucleus": oracle_nucleus,
    "sample-vs-greedy": oracle_sample,
    "most-attended": oracle_most_attended,
    "sink-share": oracle_sink_share,
    "lens-depth": oracle_lens_depth,
    "first-output": oracle_first_output,
    "aligned-source": oracle_aligned_source,
    "steps-back": oracle_steps_back,
    "decoder-steps": oracle_decoder_steps,
    "encoder-share": oracle_encoder_share,
    "sampled-same": oracle_sampled_same,
    "word-expert": oracle_word_expert,
    "word-agrees": oracle_word_agrees,
    "experts-used": oracle_experts_used,
    "busiest-share": oracle_busiest_share,
    "held": oracle_held,
    "per-token": oracle_per_token,
    "more-experts": oracle_more_experts,
    "mixtral-total": oracle_mixtral_total,
    "mixtral-active": oracle_mixtral_active,
    "sink-next": oracle_sink_next,
    "sink-flips": oracle_sink_flips,
    "sink-loss": oracle_sink_loss,
    "induction-rise": oracle_induction_rise,
}


@pytest.fixture(scope="module")
def random_moe():
    from explorer.models.loading import load_model

    return load_model("embedded:tiny-random-moe", device="cpu")


def _check(answer: Answer, expected, step) -> None:
    assert "{" not in answer.question and answer.explanation.strip()
    json.dumps(answer.measured)  # stored with the votes and in the handout
    assert answer.accepts(answer.correct)
    if answer.kind == CHOICE:
        assert answer.correct == expected and answer.correct in answer.choices
        assert len(set(answer.choices)) == len(answer.choices) >= 2
    else:
        # the key rounds to what it shows; the oracle does not
        assert float(answer.correct) == pytest.approx(float(expected), abs=0.6 * 10**-step.digits + 1e-9)
        assert not answer.accepts(float(answer.correct) + step.tolerance + 10**-step.digits)


def _expected(oracle, loaded, view, params, answer):
    if oracle is oracle_encoder_share:
        return oracle(loaded, view, params, answer)
    return oracle(loaded, view, params)


@pytest.mark.parametrize("lab_id, step_id", ALL_STEPS)
def test_answer_key_follows_the_input_and_equals_a_direct_computation(models, random_moe, lab_id, step_id):
    lab = labs.lab(lab_id)
    step, second = lab.step(step_id), dict(SECOND[(lab_id, step_id)])
    loaded = models(step.family)
    other = random_moe if second.pop("model", None) else loaded
    params = {**step.params, **second.pop("params", {})}
    answers = [step.answer(loaded, lab_id=lab_id), step.answer(other, second, params=params, lab_id=lab_id)]
    settings = import_page(page_modules()[step.page]).VIEW.settings
    for answer, model, overrides, ps in ((answers[0], loaded, {}, step.params), (answers[1], other, second, params)):
        view = step.view(model, overrides)
        for key in step.preset.keys() & settings.keys():  # values computed from the model fit the widgets too
            assert parse_value(settings[key], format_value(settings[key], view[key])) == view[key]
        _check(answer, _expected(ORACLES[step_id], model, view, ps, answer), step)
    assert answers[0].correct != answers[1].correct, answers[0].explanation


def test_mixtral_counts_agree_with_the_published_figures(models):
    step_total, step_active = (labs.MOE_COST.step(s) for s in ("mixtral-total", "mixtral-active"))
    total, active = (s.answer(models("moe")) for s in (step_total, step_active))
    assert total.correct == "46.7 B" and "56" in " ".join(total.choices)  # 46.7 B, not 8 x 7 B
    assert abs(total.measured["total"] - 46.7e9) < 0.05e9 and abs(active.measured["active"] - 12.9e9) < 0.05e9
    assert "Jiang et al. 2024" in total.explanation and "Jiang et al. 2024" in active.explanation


@pytest.mark.parametrize(
    "lab_id, step_id, overrides, says",
    [
        ("encoder-both-sides", "top-word", {"encoder_text": "No gap in this sentence."}, "[MASK]"),
        ("encoder-context", "it-refers", {"encoder_text": "It was a dark night."}, "not there"),
        ("decoder-sampling", "sample-vs-greedy", {"decoder_greedy": True}, "Greedy off"),
        ("moe-routing", "word-agrees", {"moe_text": "the dog slept."}, "twice"),
        ("experiments-switch-off", "sink-next", {"exp_text": "Hi"}, "longer"),
    ],
)
def test_a_view_that_cannot_answer_says_why_in_one_sentence(models, lab_id, step_id, overrides, says):
    step = labs.lab(lab_id).step(step_id)
    with pytest.raises(LabRefused, match=re.escape(says)):
        step.answer(models(step.family), overrides)
