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


def write_mlm_card(folder: Path, command: str) -> None:
    log = json.loads((folder / "training_log.json").read_text())
    c = log["config"]
    text = f"""# all-MiniLM-L6-v2 with a masked-language head, fine-tuned by the LLM architecture explorer

A fill-mask model: the pretrained sentence-transformers all-MiniLM-L6-v2 encoder (6 layers, 384 wide, bert-base-uncased
vocabulary) with a new BERT masked-language head, the whole network fine-tuned together.

- Loads with `AutoModelForMaskedLM.from_pretrained(folder)` and `AutoTokenizer.from_pretrained(folder)`; float16 safetensors.
- Training: {c['steps']} steps of {c['batch']} sequences x {c['seq_len']} tokens ({c['steps'] * c['batch'] * c['seq_len']:,} tokens),
  AdamW (lr {c['lr']}, head x5, cosine schedule, 5% warm-up), whole-word masking of 15% of words with 80/10/10
  [MASK]/random/unchanged, seed {c['seed']}, on {c['device'].upper()}, {log['seconds'] / 60:.0f} minutes.
- Held-out evaluation on {c['eval_rows']} held-out sequences of {c['seq_len']} tokens, every chosen token replaced by [MASK]:
{_mlm_results(log)}
- Reproduce: `{command}`.
- {CORPUS_NOTE}
- License: Apache-2.0 (the base model's), with the WordNet notice below.

## WordNet notice
{WORDNET_NOTICE}
"""
    (folder / "README.md").write_text(text)


def _mlm_results(log: dict) -> str:
    final = log["final"]
    lines = [f"  - whole-word masking (15% of words, as in training): top-1 {final['top1']:.3f}, top-5 {final['top5']:.3f} "
             f"({final['masked_tokens']} masked tokens)"]
    token = log.get("evaluation", {}).get("token")
    if token:
        lines.insert(0, f"  - **standard token masking (15% of tokens): top-1 {token['top1']:.3f}, top-5 {token['top5']:.3f}** "
                        f"({token['masked_tokens']} masked tokens)")
    return "\n".join(lines)


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
    if "final" in log:
        f = log["final"]
        token = log.get("evaluation", {}).get("token")
        standard = (f"held-out masked-token top-1 {token['top1']:.1%}, top-5 {token['top5']:.1%} (15% of tokens masked); "
                    if token else "")
        return standard + f"whole words masked: top-1 {f['top1']:.1%}, top-5 {f['top5']:.1%}."
    return (f"held-out perplexity {log['held_out_perplexity']:.1f} after {log['config']['steps']} steps "
            f"({log['steps'][-1]['tokens']:,} tokens, {log['seconds'] / 60:.0f} min).")


def stored_parameters(folder: Path) -> int:
    """Parameters in a folder's safetensors file (tied weights are stored once)."""
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), framework="numpy") as f:
        return sum(int(np.prod(f.get_slice(k).get_shape())) for k in f.keys())


def readme_table(models: Path) -> str:
    rows = ["| model | what | parameters | held-out result | training | size |", "|---|---|---|---|---|---|"]
    for name, what in (("minilm-l6-mlm", "fill-mask: all-MiniLM-L6-v2 + new MLM head, whole network fine-tuned"),
                       ("moe-tiny-austen", "Mixtral-class MoE decoder: 4 layers, 8 experts, top-2, load-balancing loss"),
                       ("dense-twin-austen", "Llama-class dense twin: same attention, FFN as wide as two experts")):
        folder = models / name
        log = json.loads((folder / "training_log.json").read_text())
        size = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
        params = stored_parameters(folder)
        c = log["config"]
        result = metrics_line(folder)
        rows.append(f"| `{name}` | {what} | {params / 1e6:.1f} M | {result} | "
                    f"{c['steps']} steps × {c['batch']} × {c['seq_len']} tokens, {log['seconds'] / 60:.0f} min | {size:.1f} MB |")
    return "\n".join(rows)
