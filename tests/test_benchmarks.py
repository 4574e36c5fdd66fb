"""The benchmark command's own helpers (its numbers are not pass/fail: see README, Benchmarks)."""

from __future__ import annotations

import pytest

from benchmarks.__main__ import Table, percentile, verdict


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0
    assert percentile(values, 100) == 20.0
    assert percentile([3.0], 95) == 3.0


def test_verdict_says_missed_in_bold():
    assert verdict(0.9, 1.0) == "met"
    assert verdict(1.1, 1.0) == "**missed**"
    assert verdict(0.85, 0.8, higher_is_better=True) == "met"
    assert verdict(0.5, 0.8, higher_is_better=True) == "**missed**"


def test_table_is_markdown_with_one_row_per_measure():
    table = Table()
    table.add("Capture overhead, encoder", "×1.10", "≤ ×1.3", "met")
    table.add("Cold start", "9.9 s")
    lines = table.markdown().splitlines()
    assert lines[0].startswith("| Measure | Value | Target |")
    assert lines[2] == "| Capture overhead, encoder | ×1.10 | ≤ ×1.3 | met |"
    assert len(lines) == 4


@pytest.mark.parametrize("masks", [0, 2])
def test_benchmark_text_has_the_requested_length_and_masks(masks):
    from transformers import AutoTokenizer

    from benchmarks.model_costs import text_of_tokens
    from explorer.models.embedded import project_model_dir

    tokenizer = AutoTokenizer.from_pretrained(project_model_dir("embedded:distilbert-grammar-mlm"))
    texts = {text_of_tokens(tokenizer, 64, variant=v, masks=masks) for v in range(5)}
    assert len(texts) == 5  # every variant is new text, so no cache answers for it
    for text in texts:
        ids = tokenizer(text)["input_ids"]
        assert 60 <= len(ids) <= 64
        assert ids.count(tokenizer.mask_token_id) == masks
