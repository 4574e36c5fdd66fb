"""What the explorer's adapters cost over the bare Hugging Face model, in one process."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from explorer.adapters import decoder, seq2seq
from explorer.adapters.lookup import adapter_for
from explorer.decoding import SamplingSettings, choose_token

ROOT = Path(__file__).resolve().parent.parent
PASSAGE = (
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of "
    "a wife. However little known the feelings or views of such a man may be on his first entering a neighbourhood, "
    "this truth is so well fixed in the minds of the surrounding families, that he is considered the rightful "
    "property of some one or other of their daughters. My dear Mr. Bennet, said his lady to him one day, have you "
    "heard that Netherfield Park is let at last? Mr. Bennet replied that he had not."
)
NAMES = [
    "Anne",
    "Emma",
    "Fanny",
    "Elinor",
    "Marianne",
    "Catherine",
    "Jane",
    "Harriet",
    "Lucy",
    "Isabella",
    "Henry",
    "Edmund",
    "Frederick",
    "George",
    "Robert",
    "William",
    "Charles",
    "Edward",
    "Thomas",
    "John",
    "Mary",
    "Lydia",
    "Kitty",
    "Julia",
    "Maria",
    "Susan",
    "Eleanor",
    "Louisa",
    "Penelope",
    "Sophia",
]


def text_of_tokens(tokenizer, tokens: int, variant: int = 0, masks: int = 0) -> str:
    """Words of PASSAGE (its first word swapped for a name, so every variant is new text)
    until ``tokenizer`` makes ``tokens`` ids of it, special tokens included; ``masks``
    words are replaced by the tokenizer's mask token."""
    words = PASSAGE.split()
    words[0] = NAMES[variant % len(NAMES)] + ("" if variant < len(NAMES) else str(variant))
    for n in range(1, masks + 1):
        words[n * 7] = tokenizer.mask_token
    text = ""
    for n in range(1, len(words) + 1):
        candidate = " ".join(words[:n])
        if len(tokenizer(candidate)["input_ids"]) > tokens:
            break
        text = candidate
    return text


def interleaved_medians(first, second, repeats: int, warmup: int = 2) -> tuple[float, float]:
    """Median seconds of two functions timed in alternation, so drifts of the machine
    (caches, clock speed, other processes) fall on both alike."""
    for _ in range(warmup):
        first()
        second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, bucket in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def _ids(loaded, tokens: int) -> np.ndarray:
    return np.asarray(loaded.tokenizer(text_of_tokens(loaded.tokenizer, tokens))["input_ids"], dtype=np.int64)


def capture_overhead(loaded_by_family: dict, tokens: int = 64, repeats: int = 10, speech=None) -> list[dict]:
    """Per family: the adapter's traced forward (every hidden state, attention, router
    choice, copied to numpy) against ``model(...)`` on the same model object and input,
    both without autograd."""
    rows = []
    for family, loaded in loaded_by_family.items():
        model, adapter = loaded.model, adapter_for(loaded)
        if adapter.encoder_decoder(loaded) and loaded.arch.audio:
            features = seq2seq.audio_features(loaded, speech)
            start_ids = seq2seq.start_ids(loaded)
            answer = seq2seq.greedy_decode(loaded, seq2seq.encode_features(loaded, features), max_new_tokens=48)
            dec_ids = np.concatenate([start_ids, answer])
            plain_inputs = dict(
                input_features=torch.as_tensor(features)[None], decoder_input_ids=torch.as_tensor(dec_ids)[None]
            )

            def traced(features=features, dec_ids=dec_ids, loaded=loaded):
                seq2seq.trace(loaded, seq2seq.encode_features(loaded, features), dec_ids)

            what = f"{len(speech) / 16000:.1f} s of speech, {len(dec_ids)} decoder tokens"
        elif adapter.encoder_decoder(loaded):
            ids = _ids(loaded, tokens)
            dec_ids = np.concatenate([seq2seq.start_ids(loaded), ids[:16]])
            plain_inputs = dict(input_ids=torch.as_tensor(ids)[None], decoder_input_ids=torch.as_tensor(dec_ids)[None])

            def traced(ids=ids, dec_ids=dec_ids, loaded=loaded):
                seq2seq.trace(loaded, seq2seq.encode_ids(loaded, ids), dec_ids)

            what = f"{len(ids)} tokens in, {len(dec_ids)} out"
        else:
            ids = _ids(loaded, tokens)
            plain_inputs = dict(input_ids=torch.as_tensor(ids)[None])

            def traced(ids=ids, adapter=adapter, loaded=loaded):
                adapter.trace(loaded, ids)

            what = f"{len(ids)} tokens"

        def plain(plain_inputs=plain_inputs, model=model):
            with torch.inference_mode():
                model(**plain_inputs)

        plain_s, traced_s = interleaved_medians(plain, traced, repeats)
        rows.append(
            dict(
                family=family,
                model=loaded.model_id,
                input=what,
                plain_ms=plain_s * 1e3,
                traced_ms=traced_s * 1e3,
                ratio=traced_s / plain_s,
            )
        )
    return rows


def decoding_speed(
    loaded, prompt: str = "Once upon a time, a little robot", new_tokens: int = 32, repeats: int = 3
) -> dict:
    """Tokens per second: the explorer's decoding loop (one ``decoder.step`` per token, each
    with the full distribution, the newest token's attention and hidden states, then the
    page's own ``choose_token``) against ``model.generate`` (greedy, its KV cache), both for
    up to ``new_tokens`` tokens and both stopping at the end-of-sequence token, as the page
    does. Every explorer run starts with no cached prefix."""
    prompt_ids = np.asarray(loaded.tokenizer(prompt)["input_ids"], dtype=np.int64)
    greedy, stop = SamplingSettings(greedy=True), decoder.eos_ids(loaded)

    def explorer_loop():
        decoder.forget_cached_prefixes(loaded)
        ids = list(prompt_ids)
        for n in range(new_tokens):
            step = decoder.step(loaded, np.asarray(ids))
            ids.append(choose_token(step.logits, greedy, n))
            if ids[-1] in stop:
                break
        return ids[len(prompt_ids) :]

    def generate():
        with torch.inference_mode():
            out = loaded.model.generate(torch.as_tensor(prompt_ids)[None], max_new_tokens=new_tokens, do_sample=False)
        return out[0, len(prompt_ids) :].tolist()

    ours, theirs = explorer_loop(), generate()
    explorer_s, generate_s = interleaved_medians(explorer_loop, generate, repeats, warmup=1)
    return dict(
        model=loaded.model_id,
        tokens=len(ours),
        explorer_tps=len(ours) / explorer_s,
        generate_tps=len(theirs) / generate_s,
        ratio=(len(ours) / explorer_s) / (len(theirs) / generate_s),
        same_tokens=ours == theirs,
    )


def step_forward_seconds(loaded, tokens: int, repeats: int = 10) -> float:
    """Median seconds of one ``decoder.step`` (the forward a Step click adds) on a context of
    ``tokens`` tokens of the passage, no cached prefix."""
    ids = np.asarray(loaded.tokenizer(PASSAGE)["input_ids"][:tokens], dtype=np.int64)
    times = []
    for _ in range(repeats + 1):
        decoder.forget_cached_prefixes(loaded)
        started = time.perf_counter()
        decoder.step(loaded, ids)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def attribution_speed(loaded, tokens: int = 20, repeats: int = 3) -> dict:
    """Median seconds of gradient x input and of integrated gradients (32 steps, the page's default baseline)
    explaining the next token after ``tokens`` tokens of the passage, and IG's completeness error there."""
    from explorer.adapters import attribution

    ids = np.asarray(loaded.tokenizer(PASSAGE)["input_ids"][:tokens], dtype=np.int64)
    target = attribution.Target.next_token()
    baseline = attribution.default_baseline(loaded, target)
    timed, error = {}, None
    for method in ("gradient_x_input", "integrated_gradients"):
        times = []
        for _ in range(repeats + 1):
            started = time.perf_counter()
            mapped = attribution.explain(loaded, ids, target, method, steps=32, baseline=baseline)
            times.append(time.perf_counter() - started)
        timed[method] = statistics.median(times[1:])
        error = mapped.completeness_error if method == "integrated_gradients" else error
    return dict(model=loaded.model_id, tokens=len(ids), baseline=baseline, completeness=error, **timed)


LOAD_SCRIPT = """
import json, sys, time
start = time.perf_counter()
from explorer.models.loading import load_model
imported = time.perf_counter()
load_model(sys.argv[1], device="cpu", family=sys.argv[2])
loaded = time.perf_counter()
print(json.dumps({"import_s": imported - start, "load_s": loaded - imported}))
"""


def load_times(defaults: dict[str, str]) -> list[dict]:
    """Each default model loaded in a fresh interpreter (the one-time conversions of the
    embedded packages are assumed done; the first run of all converts them)."""
    rows = []
    for family, model_id in defaults.items():
        out = subprocess.run(
            [sys.executable, "-c", LOAD_SCRIPT, model_id, family],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        rows.append(dict(family=family, model=model_id, **json.loads(out.stdout.strip().splitlines()[-1])))
    return rows
