"""python -m explorer.train mlm --corpus PATH [--steps N] [--out DIR]"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent.parent / "assets" / "models"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m explorer.train", description=__doc__)
    parser.add_argument("what", choices=["mlm", "moe", "dense"],
                        help="mlm: fill-mask all-MiniLM-L6-v2; moe: 8-expert top-2 decoder; dense: its dense twin")
    parser.add_argument("--corpus", type=Path, required=True, help="folder of .txt files (see README: Training data)")
    parser.add_argument("--steps", type=int, default=None, help="default: 800 (the shipped models' count)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=None, help="mlm: peak learning rate of the encoder (default 2e-4; the new head gets 5x)")
    parser.add_argument("--freeze-embeddings", action="store_true",
                        help="mlm: keep the word embeddings (tied to the output matrix) frozen; faster steps")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--tokenizer-dir", type=Path, default=Path(".cache/bpe-tokenizer"),
                        help="where the shared BPE tokenizer of moe/dense is trained once and reused")
    parser.add_argument("--balance-coef", type=float, default=None,
                        help="moe: weight of the per-layer balancing loss (default: explorer.train.lm.BALANCE_COEF)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: all cores)")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    steps = args.steps or 800

    from tqdm import tqdm

    bar = tqdm(total=steps, unit="step", dynamic_ncols=True)

    def progress(step, total, loss, metrics=None):
        if metrics is None:
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
        from explorer.models.embedded import minilm_dir
        from explorer.train.mlm import train_mlm

        log = train_mlm(args.corpus, args.out or ASSETS / "minilm-l6-mlm", minilm_dir(), steps=steps, batch=args.batch,
                        seed=args.seed, eval_every=args.eval_every, progress=progress,
                        freeze_word_embeddings=args.freeze_embeddings, **({"lr": args.lr} if args.lr else {}))
        bar.close()
        print(f"done in {log['seconds'] / 60:.1f} min: top-1 {log['final']['top1']:.3f}, top-5 {log['final']['top5']:.3f}")
    else:
        from explorer.train.lm import train_lm

        out = args.out or ASSETS / ("moe-tiny-austen" if args.what == "moe" else "dense-twin-austen")
        log = train_lm(args.what, args.corpus, out, steps=steps, batch=args.batch, seed=args.seed, eval_every=args.eval_every,
                       tokenizer_dir=args.tokenizer_dir, progress=progress_lm,
                       **({"balance_coef": args.balance_coef} if args.balance_coef is not None else {}))
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

    if out.resolve().parent != ASSETS.resolve():
        print(f"{out} is outside assets/models: no model card written")
        return
    command = " ".join(["python -m explorer.train", *sys.argv[1:]]) if sys.argv[1:] else f"python -m explorer.train {args.what}"
    routing = None
    if args.what == "moe":
        routing = routing_report(load_model(f"embedded:{out.name}", device="cpu"), args.corpus)
        (out / "routing_report.json").write_text(json.dumps(routing, indent=1))
    write_lm_card(out, command, routing=routing)


if __name__ == "__main__":
    sys.exit(main())
