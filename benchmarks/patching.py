"""Long work beside other visitors (issue 26), through the served app: the first activation
patching run on the decoder default, and another visitor's new decoder view while a patching
run is under way, against the same view alone. Both sessions share one cached model, whose lock
a patching run takes once per forward (explorer.adapters.interventions)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATCHING_TARGET_S = 20.0  # the first patching run on the decoder default, two quiet cores
WAIT_RATIO_TARGET = 2.0  # another visitor's view during a patching run / the same view alone
FIRST_PAIR = "eiffel"  # the page's default pair: what a visitor's first patching run computes
DURING_PAIRS = ("capital", "ioi")  # not computed yet when the other visitor arrives
HEAD_START_S = 1.0  # the patching run is under way (model loaded, page drawn) when the other visitor arrives
PATCHING_PAGE = {"family": "decoder", "tool": "patching"}


def verdict(value: float, target: float) -> str:
    return "met" if value <= target else "**missed**"


def _check(label: str, run) -> None:
    if run.errors:
        raise RuntimeError(f"{label} showed an error: {run.errors[0]}")


def _timed(port: int, page: str, query: dict, out: dict) -> None:
    from explorer.ui.served import run_page

    try:
        out["run"] = run_page(port, page, query, timeout=900)
    except BaseException as error:  # reported by the caller
        out["error"] = error
    out["ended"] = time.perf_counter()


def patching_sections(table, tokenizer, tokens: int = 64) -> None:
    """Rows: the first patching run (decoder default), and for each of DURING_PAIRS another
    visitor's new ``tokens``-token decoder view started HEAD_START_S into that pair's first
    patching run, over the faster of the same view alone just before and just after (a shared
    machine's load drifts and spikes: the neighbours in time are the fair comparison, the faster of
    them the strict one)."""
    from benchmarks.model_costs import text_of_tokens
    from explorer.ui.served import Server, run_page

    server = Server(ROOT / ".cache" / "benchmark-patching.log")
    variant = iter(range(7000, 8000))  # texts never used before: every view computes

    def decoder_view():
        run = run_page(
            server.port, "decoder", {"text": text_of_tokens(tokenizer, tokens, variant=next(variant))}, timeout=900
        )
        _check("decoder view", run)
        return run

    try:
        server.wait_healthy()
        decoder_view()  # loads the model; the architecture diagram is built once
        _check("experiments warm-up", run_page(server.port, "experiments", {"family": "decoder", "tool": "sink"}))
        first = run_page(server.port, "experiments", {**PATCHING_PAGE, "pair": FIRST_PAIR}, timeout=900)
        _check("activation patching", first)
        table.add(
            f"Activation patching first run (decoder default, the '{FIRST_PAIR}' pair, page to heatmap)",
            f"{first.seconds:.1f} s",
            f"≤ {PATCHING_TARGET_S:.0f} s",
            verdict(first.seconds, PATCHING_TARGET_S),
        )
        for pair in DURING_PAIRS:
            before = decoder_view().seconds
            patching: dict = {}
            worker = threading.Thread(
                target=_timed, args=(server.port, "experiments", {**PATCHING_PAGE, "pair": pair}, patching)
            )
            began = time.perf_counter()
            worker.start()
            time.sleep(HEAD_START_S)
            during = decoder_view().seconds
            view_ended = time.perf_counter()
            worker.join()
            if "error" in patching:
                raise RuntimeError(f"patching '{pair}' failed: {patching['error']!r}")
            _check(f"activation patching '{pair}'", patching["run"])
            after = decoder_view().seconds
            alone = min(before, after)
            overlap = (
                "the whole view"
                if patching["ended"] >= view_ended
                else (f"ended {view_ended - patching['ended']:.1f} s before the view")
            )
            ratio = during / alone
            table.add(
                f"Another visitor's decoder view during patching / alone (new {tokens}-token text, "
                f"started {HEAD_START_S:.0f} s into the first '{pair}' patching run)",
                f"×{ratio:.2f} ({during:.2f} s during; alone {before:.2f} s just before, {after:.2f} s just "
                f"after; the patching run took {patching['ended'] - began:.1f} s: {overlap})",
                f"≤ ×{WAIT_RATIO_TARGET:.0f}",
                verdict(ratio, WAIT_RATIO_TARGET),
            )
    finally:
        server.stop()
