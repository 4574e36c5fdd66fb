"""A soak: 300 interactions on the embedded defaults keep memory within a stated bound."""

import gc

import numpy as np
import psutil

from explorer.adapters import decoder, encoder, moe
from explorer.models.loading import load_model

BOUND_MB = 300  # growth allowed after warm-up over 300 interactions (traces are dropped after use)


def test_300_interactions_keep_memory_bounded():
    models = {
        f: load_model(m, device="cpu")
        for f, m in (
            ("encoder", "embedded:all-MiniLM-L6-v2"),
            ("decoder", "embedded:SmolLM2-135M-Instruct"),
            ("moe", "embedded:moe-tiny-austen"),
        )
    }
    rng = np.random.default_rng(0)
    words = "the a cat dog sat ran on under mat tree river bank money light dark quickly slowly".split()

    def interact(i: int) -> None:
        text = " ".join(rng.choice(words, size=int(rng.integers(3, 30))))
        family = ("encoder", "decoder", "moe")[i % 3]
        if family == "encoder":
            encoder.trace_text(models["encoder"], text)
        elif family == "decoder":
            ids, _ = decoder.prompt_ids(models["decoder"], text)
            decoder.step(models["decoder"], ids)
        else:
            moe.trace_text(models["moe"], text)

    process = psutil.Process()
    for i in range(30):  # warm-up: allocator pools, library caches
        interact(i)
    gc.collect()
    start = process.memory_info().rss
    for i in range(300):
        interact(i)
    gc.collect()
    grown_mb = (process.memory_info().rss - start) / 2**20
    print(f"resident memory grew {grown_mb:.1f} MB over 300 interactions")
    assert grown_mb < BOUND_MB
