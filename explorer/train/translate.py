"""A small English -> Portuguese MarianMT model trained from scratch on a teacher's translations.

Sequence-level distillation (Kim & Rush 2016): the student learns to reproduce the teacher's
greedy output for English sentences of the corpus (see explorer/train/teacher.py). The student is a
plain ``MarianMTModel`` with one SentencePiece-style unigram vocabulary shared by both languages
(trained here on the English sentences and the teacher's Portuguese), so the app's seq2seq adapter
reads it like any opus-mt model.

Training state lives in a work folder (default .cache/translate): the teacher cache, the
tokenizer, and ``checkpoint.pt`` (weights, optimiser, step, log), saved every ``save_every`` steps
and on Ctrl-C, so ``--resume`` continues where a run stopped. The batch of step ``s`` is drawn
with the seed (seed, s), so a resumed run draws what an uninterrupted one would have drawn on the
same cache; when the cache has grown meanwhile, the new pairs join the pool.
"""

from __future__ import annotations

import ctypes
import json
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sacrebleu
import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    GenerationConfig,
    MarianConfig,
    MarianMTModel,
    PreTrainedTokenizerFast,
)
from transformers.models.marian.modeling_marian import shift_tokens_right

from explorer.train.recipe import device, load_checkpoint, lr_scale, restore, save_checkpoint
from explorer.train.teacher import read_cache

PAD, EOS, UNK = "<pad>", "</s>", "<unk>"  # ids 0, 1, 2: pad is also the decoder's start token, as in opus-mt
SHAPE = dict(
    d_model=256,
    encoder_layers=3,
    decoder_layers=3,
    encoder_attention_heads=4,
    decoder_attention_heads=4,
    encoder_ffn_dim=1024,
    decoder_ffn_dim=1024,
    max_position_embeddings=256,
    activation_function="swish",
    dropout=0.1,
    attention_dropout=0.0,
    activation_dropout=0.0,
    scale_embedding=True,
)
MAX_TOKENS = 128  # longer sentences are cut (the teacher's sentences have at most 32 words)


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """One unigram vocabulary for English and Portuguese (SentencePiece's model, '▁' marks a word start);
    every encoded text ends with </s>, as Marian expects for sources and targets."""
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=[PAD, EOS, UNK], unk_token=UNK, max_piece_length=12, show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(single=f"$A {EOS}", special_tokens=[(EOS, 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=PAD, eos_token=EOS, unk_token=UNK, model_max_length=MAX_TOKENS
    )


def build(tokenizer, shape: dict | None = None) -> MarianMTModel:
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    config = MarianConfig(
        vocab_size=len(tokenizer),
        decoder_vocab_size=len(tokenizer),
        **(shape or SHAPE),
        pad_token_id=pad,
        eos_token_id=eos,
        decoder_start_token_id=pad,
        forced_eos_token_id=eos,
        share_encoder_decoder_embeddings=True,
        tie_word_embeddings=True,
        attn_implementation="eager",
    )
    model = MarianMTModel(config)
    # greedy by default; the pad token is never an output (the app's decoder page reads suppress_tokens too)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=pad,
        eos_token_id=eos,
        pad_token_id=pad,
        forced_eos_token_id=eos,
        max_length=MAX_TOKENS,
        num_beams=1,
        suppress_tokens=[pad],
    )
    return model


def encode_pairs(tokenizer, rows: list[dict]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Token ids (ending in </s>) of every row's English source and Portuguese target; rows
    whose target is empty or implausibly long against the source (a teacher's loop) are dropped."""
    src = tokenizer([r["en"] for r in rows], truncation=True, max_length=MAX_TOKENS)["input_ids"]
    tgt = tokenizer([r["pt"] for r in rows], truncation=True, max_length=MAX_TOKENS)["input_ids"]
    keep = [i for i in range(len(rows)) if 1 < len(tgt[i]) <= 3 * len(src[i]) + 8]
    return ([np.asarray(src[i], dtype=np.int64) for i in keep], [np.asarray(tgt[i], dtype=np.int64) for i in keep])


def pad_batch(seqs: list[np.ndarray], pad: int) -> np.ndarray:
    out = np.full((len(seqs), max(len(s) for s in seqs)), pad, dtype=np.int64)  # [B, T]
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out


def draw_batch(lengths: np.ndarray, order: np.ndarray, tokens_per_batch: int, seed: int, step: int) -> np.ndarray:
    """Indices of the pairs of step ``step``: a random window of ``order`` (pairs sorted by length,
    ties in random order) and a random draw inside it, so a batch holds sentences of similar
    length (little padding) and as many as fit ``tokens_per_batch`` padded source+target tokens."""
    rng = np.random.default_rng([seed, step])
    n = len(order)
    centre = int(rng.integers(0, n))
    width = int(np.clip(tokens_per_batch // max(1, int(lengths[order[centre]])), 4, 512))
    lo = max(0, min(centre - 2 * width, n - 4 * width))
    window = order[lo : lo + 4 * width]  # 4x more candidates than the batch takes: a random subset each time
    picked = rng.choice(window, size=min(width, len(window)), replace=False)
    # drop the longest until the padded batch fits the budget (the window's longest may exceed the centre's)
    picked = picked[np.argsort(lengths[picked], kind="stable")]
    while len(picked) > 4 and len(picked) * int(lengths[picked[-1]]) > tokens_per_batch:
        picked = picked[:-1]
    return picked


def batch_tensors(src, tgt, picked, pad: int, device: str) -> dict:
    input_ids = torch.as_tensor(pad_batch([src[i] for i in picked], pad), device=device)  # [B, S]
    labels = torch.as_tensor(pad_batch([tgt[i] for i in picked], pad), device=device)  # [B, T]
    decoder_input_ids = shift_tokens_right(
        labels, pad, pad
    )  # [B, T]: <pad>=start, then the target minus its last token
    labels = labels.masked_fill(labels == pad, -100)
    return dict(
        input_ids=input_ids,
        attention_mask=(input_ids != pad).long(),
        decoder_input_ids=decoder_input_ids,
        labels=labels,
    )


@torch.no_grad()
def translate(model, tokenizer, sentences: list[str], batch: int = 32, max_new_tokens: int = MAX_TOKENS) -> list[str]:
    """Greedy translations, batched by length (same outputs as one at a time)."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    out = [""] * len(sentences)
    for i in range(0, len(order), batch):
        idx = order[i : i + batch]
        enc = tokenizer(
            [sentences[j] for j in idx], return_tensors="pt", padding=True, truncation=True, max_length=MAX_TOKENS
        ).to(model.device)
        limit = min(max_new_tokens, int(enc["input_ids"].shape[1] * 2.5) + 10)  # the teacher's max-length-factor 2.5
        ids = model.generate(**enc, max_length=limit, num_beams=1, do_sample=False)
        for j, text in zip(idx, tokenizer.batch_decode(ids, skip_special_tokens=True)):
            out[j] = text.strip()
    model.train(was_training)
    return out


def score(hypotheses: list[str], references: list[str]) -> dict:
    """chrF (sacrebleu defaults: character 6-grams, beta 2) and BLEU (13a tokenisation) against the teacher."""
    return {
        "chrf": round(sacrebleu.corpus_chrf(hypotheses, [references]).score, 2),
        "bleu": round(sacrebleu.corpus_bleu(hypotheses, [references]).score, 2),
        "sentences": len(hypotheses),
    }


def evaluate(model, tokenizer, eval_sets: dict[str, list[dict]]) -> dict:
    results = {}
    for name, rows in eval_sets.items():
        hyps = translate(model, tokenizer, [r["en"] for r in rows])
        results[name] = score(hyps, [r["pt"] for r in rows])
    return results


def read_pairs(path: Path) -> list[dict]:
    return [r for r in read_cache(path) if r.get("en") and r.get("pt")]


def return_freed_heap() -> None:
    """Give glibc's free heap pages back to the system: batches of ever-changing shapes leave
    freed blocks that otherwise keep the resident memory growing (no-op without glibc)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


@dataclass
class _Pairs:
    """The teacher's pairs as batches read them: token ids, padded cost and the length order."""

    rows: list[dict]
    src: list[np.ndarray]  # each [S]: English, ending in </s>
    tgt: list[np.ndarray]  # each [T]: Portuguese, ending in </s>
    lengths: np.ndarray  # [N] source + target tokens (the padded cost of a pair)
    order: np.ndarray  # [N] pairs by length, ties in an order fixed by the seed


def _load_pairs(tokenizer, rows: list[dict], seed: int) -> _Pairs:
    src, tgt = encode_pairs(tokenizer, rows)
    lengths = np.asarray([len(s) + len(t) for s, t in zip(src, tgt)])
    tie = np.random.default_rng(seed).random(len(lengths))
    return _Pairs(rows, src, tgt, lengths, np.lexsort((tie, lengths)))


@dataclass
class _StudentRun:
    """One sitting of the student's training: ``config`` (the arguments of train_translate that shape
    it), the model, optimiser and log, the step it has reached, and the learning-rate ramp after a
    restart from an export (``rewarm``: (first step, ramp length)) or None."""

    config: dict
    tokenizer: PreTrainedTokenizerFast
    model: MarianMTModel
    optimizer: torch.optim.Optimizer
    log: dict
    checkpoint: Path
    device: str
    step: int = 0
    rewarm: tuple[int, int] | None = None
    pairs: _Pairs | None = None
    session: dict | None = None


def train_translate(
    pairs_path: Path,
    work: Path,
    steps: int,
    eval_sets: dict[str, list[dict]] | None = None,
    *,
    shape: dict | None = None,
    vocab_size: int = 8000,
    tokens_per_batch: int = 4000,
    lr: float = 1e-3,
    warmup: int = 500,
    seed: int = 0,
    eval_every: int = 500,
    save_every: int = 100,
    resume: bool = False,
    bf16: bool = True,
    init_from: Path | None = None,
    progress=None,
) -> dict:
    """Train (or with ``resume`` continue) the student up to ``steps`` optimiser steps in all.

    ``pairs_path``: the teacher cache ({'en', 'pt'} per line); ``work``: tokenizer/ and checkpoint.pt;
    ``eval_sets``: name -> rows with references, scored every ``eval_every`` steps and at the end.
    ``bf16``: forward and backward under bfloat16 autocast (weights and optimiser stay float32): 1.7x
    faster steps on this project's AVX512-BF16 CPU; evaluation always runs in float32.
    ``init_from``: an exported folder that ``resume`` continues when ``work`` has no checkpoint.
    The vocabulary is trained once, on the pairs cached when the first run starts (equal parts
    English and Portuguese), and kept in ``work``/tokenizer for every resume.
    """
    work.mkdir(parents=True, exist_ok=True)
    rows = read_pairs(pairs_path)
    if not rows:
        raise FileNotFoundError(f"no teacher pairs in {pairs_path}: run the teacher first")
    if (checkpoint := work / "checkpoint.pt").exists() and not resume:
        raise FileExistsError(f"{checkpoint} exists: pass --resume to continue it, or delete it to start again")
    config = dict(
        shape=shape or SHAPE,
        vocab_size=vocab_size,
        tokens_per_batch=tokens_per_batch,
        lr=lr,
        warmup=warmup,
        seed=seed,
        label_smoothing=0.1,
        schedule="inverse square root",
        bf16=bf16,
    )
    run = _student_setup(rows, work, config, resume, init_from)
    try:
        _student_loop(run, pairs_path, steps, eval_sets or {}, eval_every, save_every, progress)
    except KeyboardInterrupt:
        save_checkpoint(run.checkpoint, run.step, run.model.state_dict(), run.optimizer, run.log)
        raise
    save_checkpoint(run.checkpoint, run.step, run.model.state_dict(), run.optimizer, run.log)
    run.log["step"] = run.step
    return run.log


def _student_tokenizer(rows: list[dict], work: Path, vocab_size: int, resume: bool, init_from: Path | None):
    """(tokenizer, warm): the exported folder's when ``resume`` has only that to continue (``warm``),
    else the one kept in ``work`` for a run that continues, else a new one trained on ``rows``."""
    tok_dir, checkpoint = work / "tokenizer", work / "checkpoint.pt"
    # a fresh machine has no checkpoint: --resume then continues from the exported folder kept in git
    warm = resume and not checkpoint.exists() and init_from is not None and (init_from / "training_log.json").exists()
    if warm:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(init_from)
        tokenizer.save_pretrained(tok_dir)
    elif (tok_dir / "tokenizer.json").exists() and (resume or checkpoint.exists()):
        tokenizer = PreTrainedTokenizerFast.from_pretrained(tok_dir)
    else:
        tokenizer = train_tokenizer([r["en"] for r in rows] + [r["pt"] for r in rows], vocab_size)
        tokenizer.save_pretrained(tok_dir)
    return tokenizer, warm


def _student_setup(rows: list[dict], work: Path, config: dict, resume: bool, init_from: Path | None) -> _StudentRun:
    """The model, optimiser and log: new, or continued from work/checkpoint.pt, or (``warm``) from the
    exported folder ``init_from``; then the pairs and this sitting's entry in log['sessions']."""
    where = device()
    tokenizer, warm = _student_tokenizer(rows, work, config["vocab_size"], resume, init_from)
    checkpoint = work / "checkpoint.pt"
    state = load_checkpoint(checkpoint, where) if resume and checkpoint.exists() else None
    previous = state["log"] if state else json.loads((init_from / "training_log.json").read_text()) if warm else None
    torch.manual_seed(config["seed"])
    model = build(tokenizer, previous["config"]["shape"] if previous else config["shape"]).to(where)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"], betas=(0.9, 0.98), eps=1e-9, weight_decay=0.01)
    log = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": [],
        "evaluations": [],
        "sessions": [],
        "sentences_seen": 0,
        "config": {**config, "vocab_size": len(tokenizer)},
    }
    run = _StudentRun(config, tokenizer, model, optimizer, log, checkpoint, where)
    if state:
        restore(state, model, optimizer)
        run.step, run.log = state["step"], state["log"]
    elif warm:
        _student_from_export(run, init_from, previous)
    run.pairs = _load_pairs(tokenizer, rows, config["seed"])
    run.session = {
        "start_step": run.step,
        "pairs": len(run.pairs.src),
        "device": where,
        "threads": torch.get_num_threads(),
        "seconds": 0.0,
        "from": "export (optimiser restarted)" if warm else "checkpoint" if state else "scratch",
    }
    run.log["sessions"].append(run.session)
    return run


def _student_from_export(run: _StudentRun, folder: Path, previous: dict) -> None:
    """Continue from an exported folder: its float16 weights, step and log. The optimiser's moments
    are lost, so the learning rate ramps up again over warmup // 5 steps instead of jumping to its
    scheduled value."""
    exported = AutoModelForSeq2SeqLM.from_pretrained(folder, dtype=torch.float32)
    run.model.load_state_dict(exported.state_dict())
    run.log = {k: v for k, v in previous.items() if k not in ("final", "step")}
    run.step = previous["step"]
    run.rewarm = (run.step, max(1, run.config["warmup"] // 5))


def _student_loop(
    run: _StudentRun, pairs_path: Path, steps: int, eval_sets: dict, eval_every: int, save_every: int, progress
) -> None:
    """Steps up to ``steps`` in all: evaluate every ``eval_every``, save every ``save_every`` steps
    (and at the end), then take in the pairs the teacher has added to the cache meanwhile."""
    log, session = run.log, run.session
    done_before = sum(s["seconds"] for s in log["sessions"][:-1])
    start = time.perf_counter()
    run.model.train()
    while run.step < steps:
        run.step += 1
        step = run.step
        loss, sentences = _student_step(run)
        session["seconds"] = time.perf_counter() - start
        log["sentences_seen"] += sentences
        seconds = done_before + session["seconds"]
        if step % 10 == 0:
            entry = {
                "step": step,
                "seconds": seconds,
                "train_loss": loss,
                "sentences": sentences,
                "pairs": len(run.pairs.src),
            }
            log["steps"].append(entry)
        evaluation = None
        if eval_sets and (step % eval_every == 0 or step == steps):
            evaluation = {"step": step, "seconds": seconds, **evaluate(run.model, run.tokenizer, eval_sets)}
            log["evaluations"].append(evaluation)
        if progress:
            progress(step, steps, loss, evaluation)
        if step % save_every == 0 or step == steps:
            session["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
            save_checkpoint(run.checkpoint, step, run.model.state_dict(), run.optimizer, log)
            return_freed_heap()
            fresh = read_pairs(pairs_path)  # the teacher may still be filling the cache
            if len(fresh) > len(run.pairs.rows):
                run.pairs = _load_pairs(run.tokenizer, fresh, run.config["seed"])
                session["pairs"] = len(run.pairs.src)
    session["seconds"] = time.perf_counter() - start


def _student_step(run: _StudentRun) -> tuple[float, int]:
    """One optimiser step (``run.step``) on its batch; (loss, sentence pairs in the batch)."""
    c, step = run.config, run.step
    ramp = min(1.0, (step - run.rewarm[0]) / run.rewarm[1]) if run.rewarm else 1.0
    for group in run.optimizer.param_groups:
        group["lr"] = c["lr"] * lr_scale(step, c["warmup"]) * ramp
    picked = draw_batch(run.pairs.lengths, run.pairs.order, c["tokens_per_batch"], c["seed"], step)
    batch = batch_tensors(run.pairs.src, run.pairs.tgt, picked, run.tokenizer.pad_token_id, run.device)
    labels = batch.pop("labels")
    with torch.autocast(run.device, dtype=torch.bfloat16, enabled=c["bf16"]):
        logits = run.model(**batch).logits  # [B, T, V]
    loss = torch.nn.functional.cross_entropy(
        logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100, label_smoothing=c["label_smoothing"]
    )
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), 1.0)
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return float(loss.detach()), len(picked)


def export(work: Path, out: Path, eval_sets: dict[str, list[dict]] | None = None) -> dict:
    """Write the checkpoint in ``work`` as a plain float16 Hugging Face folder ``out`` (model,
    tokenizer, generation config, training_log.json). With ``eval_sets``, the exported weights are
    scored as the app loads them (float16 values in a float32 model) into the log's 'final'."""
    tokenizer = PreTrainedTokenizerFast.from_pretrained(work / "tokenizer")
    state = load_checkpoint(work / "checkpoint.pt")
    log = state["log"]
    model = build(tokenizer, log["config"]["shape"])
    model.load_state_dict(state["model"])
    out.mkdir(parents=True, exist_ok=True)
    model.to(torch.float16).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    log = {**log, "step": state["step"]}
    if eval_sets:
        loaded = AutoModelForSeq2SeqLM.from_pretrained(out, dtype=torch.float32)
        log["final"] = {"step": state["step"], **evaluate(loaded, AutoTokenizer.from_pretrained(out), eval_sets)}
    (out / "training_log.json").write_text(json.dumps(log, indent=1))
    return log
