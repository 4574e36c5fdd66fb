"""Fine-tune all-MiniLM-L6-v2 into a fill-mask model (whole encoder + a new MLM head).

Standard BERT masking: 15% of whole words are chosen; of their tokens 80% become [MASK],
10% a random token, 10% stay. Evaluation replaces every chosen token with [MASK] on a
fixed sample of held-out text (same positions every time) and reports top-1/top-5.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, BertForMaskedLM

from explorer.train.corpus import load_corpus

MASK_RATE = 0.15


def pack(tokenizer, documents: list[str], seq_len: int) -> np.ndarray:
    """Token ids of consecutive documents packed into rows [N, seq_len] of
    [CLS] ... [SEP] ... [SEP], documents separated by [SEP]."""
    body = seq_len - 2
    ids = tokenizer(documents, add_special_tokens=False)["input_ids"]
    rows, current = [], []
    for doc in ids:
        doc = doc + [tokenizer.sep_token_id]
        while doc:
            room = body - len(current)
            current += doc[:room]
            doc = doc[room:]
            if len(current) == body:
                rows.append([tokenizer.cls_token_id] + current + [tokenizer.sep_token_id])
                current = []
    return np.asarray(rows, dtype=np.int64)


def word_starts(tokenizer, vocab_size: int) -> np.ndarray:
    """[V] True where a token begins a word (WordPiece continuations start with '##')."""
    tokens = tokenizer.convert_ids_to_tokens(list(range(vocab_size)))
    return np.asarray([not (t or "").startswith("##") for t in tokens])


def choose_masked(rows: np.ndarray, starts: np.ndarray, special: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[N, T] bool: whole words chosen with probability MASK_RATE (special tokens never)."""
    is_start = starts[rows] | special[rows]  # a special token is a "word" of its own
    word_id = np.cumsum(is_start, axis=1) - 1  # [N, T]: continuation pieces share their word's id
    word_chosen = rng.random(rows.shape) < MASK_RATE  # one draw per possible word index
    return np.take_along_axis(word_chosen, word_id, axis=1) & ~special[rows]


def choose_masked_tokens(rows: np.ndarray, special: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[N, T] bool: each non-special token chosen independently with probability MASK_RATE
    (the standard BERT evaluation; word pieces of a chosen word's neighbours stay visible)."""
    return (rng.random(rows.shape) < MASK_RATE) & ~special[rows]


def evaluate_folder(folder: Path, corpus: Path, seq_len: int = 128, eval_rows: int = 160) -> dict:
    """Held-out top-1/top-5 of a saved fill-mask model under both maskings, on the same
    held-out sequences the training log used (same seed)."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = BertForMaskedLM.from_pretrained(folder, dtype=torch.float32).eval()
    held = pack(tokenizer, load_corpus(corpus).held_out, seq_len)
    eval_rng = np.random.default_rng(1234)
    held = held[eval_rng.permutation(len(held))[:eval_rows]]
    vocab = model.config.vocab_size
    special = np.zeros(vocab, dtype=bool)
    special[tokenizer.all_special_ids] = True
    whole_words = choose_masked(held, word_starts(tokenizer, vocab), special, eval_rng)
    tokens = choose_masked_tokens(held, special, np.random.default_rng(4321))
    return {"whole_word": evaluate(model, held, whole_words, tokenizer.mask_token_id),
            "token": evaluate(model, held, tokens, tokenizer.mask_token_id)}


def corrupt(rows, masked, tokenizer, vocab_size, rng):
    """80/10/10: [MASK] / random token / unchanged; labels -100 where not masked."""
    inputs = rows.copy()
    r = rng.random(rows.shape)
    inputs[masked & (r < 0.8)] = tokenizer.mask_token_id
    random_slots = masked & (r >= 0.8) & (r < 0.9)
    inputs[random_slots] = rng.integers(999, vocab_size, size=random_slots.sum())  # skip [unused*] ids
    labels = np.where(masked, rows, -100)
    return inputs, labels


def masked_loss(model, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy at the masked positions only: the 30k-way head runs on ~15% of the
    tokens instead of all of them (the same loss as BertForMaskedLM's, at half the cost)."""
    hidden = model.bert(input_ids=inputs).last_hidden_state  # [B, T, D]
    where = labels != -100
    logits = model.cls(hidden[where])  # [n, V]
    return torch.nn.functional.cross_entropy(logits, labels[where])


@torch.no_grad()
def evaluate(model, rows: np.ndarray, masked: np.ndarray, mask_id: int, batch: int = 32) -> dict:
    model.eval()
    hits1 = hits5 = total = 0
    loss_sum = 0.0
    for i in range(0, len(rows), batch):
        r, m = rows[i:i + batch], masked[i:i + batch]
        inputs = torch.as_tensor(np.where(m, mask_id, r), device=model.device)
        where = torch.as_tensor(m, device=model.device)
        target = torch.as_tensor(r, device=model.device)[where]
        picked = model.cls(model.bert(input_ids=inputs).last_hidden_state[where])  # [n, V]
        top5 = picked.topk(5, dim=-1).indices
        hits1 += (top5[:, 0] == target).sum().item()
        hits5 += (top5 == target[:, None]).any(-1).sum().item()
        loss_sum += torch.nn.functional.cross_entropy(picked, target, reduction="sum").item()
        total += len(target)
    model.train()
    return {"top1": hits1 / total, "top5": hits5 / total, "loss": loss_sum / total, "masked_tokens": total}


def train_mlm(corpus: Path, out: Path, base: Path, steps: int, batch: int = 32, seq_len: int = 128, lr: float = 2e-4,
              seed: int = 0, eval_every: int = 100, eval_rows: int = 160, freeze_word_embeddings: bool = False,
              progress=None) -> dict:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(base)
    split = load_corpus(corpus)
    train_rows = pack(tokenizer, split.train, seq_len)
    held_rows = pack(tokenizer, split.held_out, seq_len)
    eval_rng = np.random.default_rng(1234)
    held_rows = held_rows[eval_rng.permutation(len(held_rows))[:eval_rows]]
    model = BertForMaskedLM.from_pretrained(base, dtype=torch.float32).to(device)
    vocab = model.config.vocab_size
    starts = word_starts(tokenizer, vocab)
    special = np.zeros(vocab, dtype=bool)
    special[tokenizer.all_special_ids] = True
    held_masked = choose_masked(held_rows, starts, special, eval_rng)

    # The word embeddings are tied to the head's output matrix. Frozen, they keep the pretrained token
    # identities and a step skips their 11.7 M-parameter gradient (2.6 s instead of 3.1 s per step on
    # 2 cores at the start of a run); the committed model trained them.
    model.bert.embeddings.word_embeddings.weight.requires_grad_(not freeze_word_embeddings)
    head = [p for n, p in model.named_parameters() if n.startswith("cls.") and p.requires_grad]
    body = [p for n, p in model.named_parameters() if not n.startswith("cls.") and p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": body, "lr": lr}, {"params": head, "lr": lr * 5}], weight_decay=0.01)
    warmup = max(1, steps // 20)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    log = {"steps": [], "config": dict(steps=steps, batch=batch, seq_len=seq_len, lr=lr, seed=seed, device=device,
                                      threads=torch.get_num_threads(), freeze_word_embeddings=freeze_word_embeddings,
                                      train_rows=int(len(train_rows)), eval_rows=int(len(held_rows)))}
    start = time.perf_counter()
    first = evaluate(model, held_rows, held_masked, tokenizer.mask_token_id)
    log["steps"].append({"step": 0, "seconds": 0.0, "tokens": 0, **first})
    model.train()
    for step in range(1, steps + 1):
        scale = step / warmup if step <= warmup else 0.5 * (1 + math.cos(math.pi * (step - warmup) / (steps - warmup)))
        for group, base_lr in zip(optimizer.param_groups, base_lrs):
            group["lr"] = base_lr * scale
        rows = train_rows[rng.integers(0, len(train_rows), size=batch)]
        masked = choose_masked(rows, starts, special, rng)
        inputs, labels = corrupt(rows, masked, tokenizer, vocab, rng)
        loss = masked_loss(model, torch.as_tensor(inputs, device=device), torch.as_tensor(labels, device=device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss = loss.detach()
        if progress:
            progress(step, steps, float(loss))
        if step % eval_every == 0 or step == steps:
            metrics = evaluate(model, held_rows, held_masked, tokenizer.mask_token_id)
            log["steps"].append({"step": step, "seconds": time.perf_counter() - start, "tokens": step * batch * seq_len,
                                 "train_loss": float(loss), **metrics})
            if progress:
                progress(step, steps, float(loss), metrics)
    log["seconds"] = time.perf_counter() - start
    log["final"] = log["steps"][-1]
    out.mkdir(parents=True, exist_ok=True)
    model.to("cpu", torch.float16).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / "training_log.json").write_text(json.dumps(log, indent=1))
    return log
