"""python -m explorer.models export --default {encoder-only,decoder-only,encoder-decoder,moe} DIR

Writes a family's current default model (the one assets/catalogue.json names) as a plain Hugging
Face folder: config.json, model.safetensors and the tokenizer (and the processor for speech), so
that AutoModelForMaskedLM / AutoModelForCausalLM / AutoModelForSpeechSeq2Seq load it without
the explorer. The model is built exactly as the app builds it (embedded packages converted,
project deltas merged), then saved in float32.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from explorer.catalogue import load_catalogue

FAMILY_KEYS = {"encoder-only": "encoder", "decoder-only": "decoder", "encoder-decoder": "seq2seq", "moe": "moe"}


def default_id(family: str) -> str:
    return load_catalogue()[FAMILY_KEYS[family]].default


def export_default(family: str, out: Path) -> Path:
    """Save ``family``'s default model into ``out``; return ``out``."""
    from explorer.models.loading import load_model

    loaded = load_model(default_id(family), device="cpu")
    out.mkdir(parents=True, exist_ok=True)
    loaded.model.save_pretrained(out, safe_serialization=True)  # tied weights are stored once
    (loaded.processor or loaded.tokenizer).save_pretrained(out)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m explorer.models", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write a family's default model as a plain Hugging Face folder")
    export.add_argument("--default", required=True, choices=sorted(FAMILY_KEYS), dest="family")
    export.add_argument("dir", type=Path)
    args = parser.parse_args(argv)
    out = export_default(args.family, args.dir)
    print(f"{default_id(args.family)} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
