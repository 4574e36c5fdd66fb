"""python -m explorer.models export: a family's default as a plain Hugging Face folder."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

from explorer.catalogue import PROJECT_MODELS
from explorer.models.__main__ import default_id, main
from explorer.models.loading import load_model
from explorer.train import mlm

# Held-out text (the last 5% of four corpus files, never trained on), ~2,000 tokens.
HELD_OUT = Path(__file__).parent / "data" / "held_out_sample.txt"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "encoder"
    assert main(["export", "--default", "encoder-only", str(out)]) == 0
    return out


def test_defaults_come_from_the_catalogue():
    assert default_id("encoder-only") == "embedded:distilbert-grammar-mlm"
    assert default_id("moe") == "embedded:moe-tiny-austen"


def test_exported_encoder_is_a_plain_folder_with_the_apps_logits(exported):
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in exported.iterdir()}
    # eager attention as in the app (sdpa sums in another order: ~1e-4 apart)
    model = AutoModelForMaskedLM.from_pretrained(exported, attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(exported)
    assert type(model).__name__ == "DistilBertForMaskedLM"
    app = load_model(default_id("encoder-only"), device="cpu")
    ours = app.model.state_dict()
    assert all(torch.equal(value, ours[name]) for name, value in model.state_dict().items())
    ids = tokenizer("Paris is the [MASK] of France.", return_tensors="pt")["input_ids"]
    assert ids.tolist() == app.tokenizer("Paris is the [MASK] of France.", return_tensors="pt")["input_ids"].tolist()
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, app.model(input_ids=ids).logits)


def test_exported_encoder_scores_like_the_recorded_evaluation_on_a_small_held_out_sample(exported):
    model = AutoModelForMaskedLM.from_pretrained(exported).eval()
    tokenizer = AutoTokenizer.from_pretrained(exported)
    lines = [line for line in HELD_OUT.read_text().splitlines() if line and not line.startswith("#")]
    rows = mlm.pack(tokenizer, lines, 128)  # [16, 128]
    special = np.zeros(len(tokenizer), dtype=bool)
    special[tokenizer.all_special_ids] = True
    masked = mlm.choose_masked_tokens(rows, special, np.random.default_rng(0))
    result = mlm.evaluate(model, rows, masked, tokenizer.mask_token_id)
    # ~300 masked tokens against the ~6,000 of the recorded evaluation: the same level, within a small sample's noise
    recorded = json.loads((PROJECT_MODELS / "distilbert-grammar-mlm" / "training_log.json").read_text())["evaluation"][
        "token"
    ]
    assert result["masked_tokens"] >= 250
    assert abs(result["top1"] - recorded["top1"]) <= 0.08 and abs(result["top5"] - recorded["top5"]) <= 0.08


def test_exported_translator_is_a_plain_folder_that_translates_like_the_app(tmp_path):
    from transformers import AutoModelForSeq2SeqLM

    from explorer.adapters import interventions

    assert default_id("encoder-decoder") == "embedded:marian-en-pt-tiny"
    out = tmp_path / "translator"
    assert main(["export", "--default", "encoder-decoder", str(out)]) == 0
    model = AutoModelForSeq2SeqLM.from_pretrained(out, attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert type(model).__name__ == "MarianMTModel"
    app = load_model(default_id("encoder-decoder"), device="cpu")
    ids = tokenizer("My sister lives in a small town near the sea.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        theirs = model.generate(input_ids=ids, max_new_tokens=40, num_beams=1, do_sample=False)[0].tolist()
    ours = interventions.greedy_with_span_removed(app, ids[0].numpy(), None, max_new_tokens=40).tolist()
    assert theirs[: len(ours)] == ours
    assert len(tokenizer.decode(theirs, skip_special_tokens=True).split()) >= 4


@pytest.mark.parametrize("family", ["moe", "decoder-only"])
def test_exported_causal_defaults_load_with_auto_classes_and_give_the_apps_logits(family, tmp_path):
    from transformers import AutoModelForCausalLM

    out = tmp_path / family
    assert main(["export", "--default", family, str(out)]) == 0
    model = AutoModelForCausalLM.from_pretrained(out, attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    app = load_model(default_id(family), device="cpu")
    ids = tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    assert ids.tolist() == app.tokenizer("The capital of France is", return_tensors="pt")["input_ids"].tolist()
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, app.model(input_ids=ids).logits)
