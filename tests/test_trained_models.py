"""The models this project trained itself: they load offline with plain Auto classes, meet
their bars on held-out text, and the training loops still run (tiny configuration)."""

import json
import math
import re
import shlex

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from explorer.adapters import encoder, moe
from explorer.catalogue import PROJECT_MODELS, load_catalogue
from explorer.models import embedded, quire
from explorer.models.loading import load_model
from explorer.train import mlm
from explorer.train.cards import metrics_line
from explorer.train.mlm import PROBES, probe_top5
from explorer.train.recipe import load_checkpoint, lr_scale, restore, save_checkpoint

MLM = PROJECT_MODELS / "distilbert-grammar-mlm"
MOE = PROJECT_MODELS / "moe-tiny-austen"
DENSE = PROJECT_MODELS / "dense-twin-austen"
# Sentences from the held-out text (the last 5% of the files, never trained on) with one word
# masked, and the words a person would accept there.
HELD_OUT = [
    ("I think Harriet is doing extremely [MASK].", {"well", "good", "badly", "ill"}),
    (
        "You are all to come to Pemberley at [MASK].",
        {"Christmas", "once", "last", "home", "night", "present", "dinner"},
    ),
    ("How delighted I am to [MASK] you again!", {"see", "meet", "have", "hear", "find"}),
    ("brushwood: the wood from bushes or small [MASK]", {"branches", "trees", "shrubs", "plants", "twigs", "bushes"}),
]


@pytest.fixture(scope="module")
def fill_mask():
    return load_model("embedded:distilbert-grammar-mlm", device="cpu")


def test_artefacts_are_small_and_the_fill_mask_is_a_delta_under_20_mb():
    total = 0
    for folder in (MOE, DENSE):
        assert (folder / "config.json").exists() and (folder / "model.safetensors").exists()
        assert json.loads((folder / "config.json").read_text())["dtype"] == "float16"
    for folder in (MLM, MOE, DENSE):
        assert (folder / "README.md").exists() and (folder / "training_log.json").exists()
        total += sum(f.stat().st_size for f in folder.iterdir())
    # the fill-mask folder holds only what the project trained: no base weights
    assert not (MLM / "model.safetensors").exists()
    assert (MLM / "delta.safetensors").stat().st_size <= 20 * 2**20
    assert total <= 60 * 2**20


def test_fill_mask_meets_its_held_out_bar():
    # Issue 13's bar: top-1 >= 0.40 and top-5 >= 0.60 with 15% of tokens masked, measured on the model as it ships
    # (base + float16 delta) over thousands of held-out tokens. The committed delta: a 320-step run continued for
    # 160 steps (43.4% / 62.6% on 5,717 tokens, see the model card).
    log = json.loads((MLM / "training_log.json").read_text())
    token = log["evaluation"]["token"]
    assert token["masked_tokens"] >= 3000
    assert token["top1"] >= 0.40 and token["top5"] >= 0.60
    first_run = log.get("continued_from", log)
    assert log["final"]["top1"] > first_run["steps"][0]["top1"] + 0.3  # training moved far above the fresh head


def test_fill_mask_gets_the_everyday_sentences(fill_mask):
    hits = 0
    for sentence, guesses in PROBES:
        top5 = probe_top5(fill_mask.model, fill_mask.tokenizer, sentence)
        hits += bool(guesses & set(top5))
    assert hits >= 4
    recorded = json.loads((MLM / "training_log.json").read_text())["probes"]
    assert [p["top5"] for p in recorded] == [probe_top5(fill_mask.model, fill_mask.tokenizer, s) for s, _ in PROBES]


@pytest.mark.parametrize("sentence,acceptable", HELD_OUT)
def test_fill_mask_guesses_a_plausible_word(fill_mask, sentence, acceptable):
    # among the first five, as in the bar
    assert set(probe_top5(fill_mask.model, fill_mask.tokenizer, sentence)) & acceptable


def test_fill_mask_loads_as_base_plus_delta(fill_mask):
    assert fill_mask.has_mlm_head and type(fill_mask.model).__name__ == "DistilBertForMaskedLM"
    model = fill_mask.model
    # tied, frozen in training
    assert model.vocab_projector.weight is model.distilbert.embeddings.word_embeddings.weight
    base = quire.masked_lm_from_base(embedded.quire_dir())
    assert torch.equal(
        base.distilbert.embeddings.word_embeddings.weight, model.distilbert.embeddings.word_embeddings.weight
    )
    assert not torch.equal(
        base.distilbert.transformer.layer[0].attention.q_lin.weight,
        model.distilbert.transformer.layer[0].attention.q_lin.weight,
    )  # the adapter is merged in


def test_moe_and_dense_twin_load_with_auto_classes():
    for folder, cls in ((MOE, "MixtralForCausalLM"), (DENSE, "LlamaForCausalLM")):
        model = AutoModelForCausalLM.from_pretrained(folder)
        assert type(model).__name__ == cls
    moe_cfg, dense_cfg = (json.loads((f / "config.json").read_text()) for f in (MOE, DENSE))
    assert (
        moe_cfg["num_local_experts"] >= 8 and moe_cfg["num_experts_per_tok"] == 2 and moe_cfg["num_hidden_layers"] >= 4
    )
    assert dense_cfg["intermediate_size"] == 2 * moe_cfg["intermediate_size"]  # same active FFN width
    assert (
        dense_cfg["hidden_size"] == moe_cfg["hidden_size"]
        and dense_cfg["num_attention_heads"] == moe_cfg["num_attention_heads"]
    )


def test_moe_routes_spread_over_experts_on_held_out_text():
    # a held-out passage of Persuasion (corpus copy in the test: the suite never reads ../shared)
    text = (
        '"I found," said he, "that I was considered by Harville an engaged man! That neither Harville nor his wife '
        "entertained a doubt of our mutual attachment. I was startled and shocked. To a degree, I could contradict "
        "this instantly; but, when I began to reflect that others might have felt the same--her own family, nay, "
        "perhaps herself--I was no longer at my own disposal. I was hers in honour if she wished it. I had been "
        'unguarded. I had not thought seriously on this subject before."'
    )
    loaded = load_model("embedded:moe-tiny-austen", device="cpu")
    router = moe.trace_text(loaded, text).router
    load = router.expert_load()  # [M, E]
    assert (load > 0.01).sum(axis=1).min() >= 5  # every MoE layer spreads over most of its 8 experts
    assert load.max() < 0.5  # and no expert takes half of the assignments


def test_catalogue_metrics_match_the_training_logs():
    mlm_log = json.loads((MLM / "training_log.json").read_text())
    entry = load_catalogue()["encoder"].find("embedded:distilbert-grammar-mlm")
    assert load_catalogue()["encoder"].default == entry.id
    assert entry.metrics == metrics_line(MLM)
    assert f"top-1 {mlm_log['evaluation']['token']['top1']:.1%}" in entry.metrics
    moe_log = json.loads((MOE / "training_log.json").read_text())
    entry = load_catalogue()["moe"].find("embedded:moe-tiny-austen")
    assert f"perplexity {moe_log['held_out_perplexity']:.1f}" in entry.metrics


@pytest.fixture()
def tiny_corpus(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    text = "\n\n".join(f"Paragraph {i}: the dog barked at the cat, and the cat ran up a tree." for i in range(300))
    (corpus / "tiny.txt").write_text(text)
    return corpus


def test_training_loops_run_a_few_steps(tmp_path, tiny_corpus):
    from explorer.train import lm

    for kind in ("moe", "dense"):
        log = lm.train_lm(
            kind,
            tiny_corpus,
            tmp_path / kind,
            steps=3,
            batch=2,
            seq_len=16,
            eval_every=2,
            eval_rows=4,
            tokenizer_dir=tmp_path / "tok",
        )
        assert np.isfinite(log["held_out_loss"]) and log["steps"][-1]["step"] == 3


def test_the_training_commands_of_the_readme_and_the_model_cards_parse():
    from explorer.train import __main__ as cli

    root = PROJECT_MODELS.parent.parent
    texts = [(root / "README.md").read_text()] + [p.read_text() for p in sorted(PROJECT_MODELS.glob("*/README.md"))]
    found = [c for text in texts for c in re.findall(r"python -m explorer\.train ([^`#\n]+)", text)]
    commands = [c for c in found if not c.startswith("RECIPE ")]  # 'RECIPE --help' names them all
    assert len(commands) >= 8
    runs = {"mlm": cli._run_mlm, "moe": cli._run_lm, "dense": cli._run_lm, "translate": cli._run_translate}
    for command in commands:
        args = cli.parser().parse_args(shlex.split(command))
        assert args.run is runs[args.what] and args.corpus
    mlm_help, translate_help = (cli.parser().parse_args([r, "--corpus", "x"]) for r in ("mlm", "translate"))
    assert (mlm_help.steps, mlm_help.batch, translate_help.steps, translate_help.eval_every) == (320, 16, 6000, 500)
    with pytest.raises(SystemExit):  # each recipe takes only its own options
        cli.parser().parse_args(["dense", "--corpus", "x", "--rank", "4"])


def test_one_schedule_draws_the_three_recipes_curves():
    warmup, total = 5, 60
    for step in range(1, total + 1):
        arc = 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))
        ramp = step / warmup
        assert lr_scale(step, warmup, total) == (ramp if step <= warmup else arc)  # fill-mask: cosine to 0
        assert lr_scale(step, warmup, total, floor=0.1) == (ramp if step <= warmup else 0.1 + 0.9 * arc)  # moe, dense
        assert lr_scale(step, warmup) == min(ramp, math.sqrt(warmup / step))  # translator: inverse square root


def test_one_checkpoint_file_round_trips_and_reads_the_old_fill_mask_format(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    rng = np.random.default_rng(7)
    rng.random(3)
    save_checkpoint(tmp_path / "a" / "ckpt.pt", 3, model.state_dict(), optimizer, {"steps": []}, numpy_rng=rng)
    expected = rng.random(2)
    fresh, fresh_rng = torch.nn.Linear(3, 2), np.random.default_rng(0)
    fresh_optimizer = torch.optim.AdamW(fresh.parameters(), lr=0.1)
    state = load_checkpoint(tmp_path / "a" / "ckpt.pt")
    restore(state, fresh, fresh_optimizer, fresh_rng)
    assert state["step"] == 3 and torch.equal(fresh.weight, model.weight) and (fresh_rng.random(2) == expected).all()
    assert fresh_optimizer.state_dict()["state"][0]["step"] == 1
    # the fill-mask recipe's checkpoints once named the trained tensors 'trainable'
    old = {k: v for k, v in torch.load(tmp_path / "a" / "ckpt.pt", weights_only=True).items() if k != "model"}
    torch.save({**old, "trainable": {"bias": torch.zeros(2)}}, tmp_path / "old.pt")
    restore(load_checkpoint(tmp_path / "old.pt"), fresh, fresh_optimizer, strict=False)
    assert torch.equal(fresh.bias, torch.zeros(2)) and torch.equal(fresh.weight, model.weight)


def test_fill_mask_training_resumes_and_its_delta_merges_like_peft(tmp_path, tiny_corpus):
    from peft import LoraConfig, get_peft_model

    base = embedded.quire_dir()
    options = {"steps": 4, "batch": 2, "seq_len": 32, "rank": 4, "alpha": 8.0, "eval_every": 2, "eval_rows": 4}
    straight = mlm.train_mlm(tiny_corpus, tmp_path / "straight", base, **options)
    assert len(straight["steps"]) == 3 and 0 <= straight["final"]["top1"] <= 1
    # stop after the checkpoint of step 2, then resume: the same run as without the stop
    checkpoint = tmp_path / "ckpt.pt"
    mlm.train_mlm(tiny_corpus, tmp_path / "resumed", base, checkpoint=checkpoint, stop_at=2, **options)
    resumed = mlm.train_mlm(tiny_corpus, tmp_path / "resumed", base, checkpoint=checkpoint, resume=True, **options)
    assert resumed["final"]["train_loss"] == pytest.approx(straight["final"]["train_loss"], rel=1e-5)
    assert sorted(p.name for p in (tmp_path / "resumed").iterdir()) == [
        "config.json",
        "delta.json",
        "delta.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "training_log.json",
    ]

    # merge_delta (no peft at load) equals peft's own merge of the same float16 adapter
    from safetensors.torch import load_file

    merged = quire.load_finetuned(tmp_path / "straight", base)
    spec = json.loads((tmp_path / "straight" / "delta.json").read_text())
    delta = load_file(str(tmp_path / "straight" / "delta.safetensors"))
    reference = get_peft_model(
        quire.masked_lm_from_base(base), LoraConfig(r=4, lora_alpha=8.0, target_modules=mlm.LORA_TARGETS)
    )
    inner = reference.base_model.model
    with torch.no_grad():
        for name in spec["adapted"]:
            module = inner.get_submodule(name)
            module.lora_A["default"].weight.copy_(delta[f"{name}.lora_A"].float())
            module.lora_B["default"].weight.copy_(delta[f"{name}.lora_B"].float())
        for name in spec["replaced"]:
            inner.get_parameter(name).copy_(delta[name].float())
    reference = reference.merge_and_unload().eval()
    ids = torch.tensor([[101, 1109, 103, 1108, 119, 102]])
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, reference(input_ids=ids).logits, atol=1e-4)


def test_the_pages_masked_predictions_equal_the_models_own_logits(fill_mask):
    """The encoder page traces without the vocabulary head and applies it at masked positions
    only (the lens's last depth): those logits are the Hugging Face model's own."""
    trace = encoder.trace_text(fill_mask, "My sister [MASK] in a small town near the [MASK].", with_logits=False)
    full = encoder.trace_ids(fill_mask, trace.token_ids)
    for position in np.flatnonzero(trace.token_ids == fill_mask.tokenizer.mask_token_id):
        lens = encoder.mlm_lens(fill_mask, trace.hidden_states[:, position])
        assert np.abs(lens[-1] - full.logits[position]).max() <= 1e-4
