"""Parameter accounting of the gallery configurations against the published figures."""

import pytest

from explorer.models.accounting import account, explain_moe, gallery, parse_published
from tiny_models import tiny_model

GALLERY = {a.name: a for a in gallery()}


def test_gallery_has_the_famous_configurations():
    assert {
        "bert-base-uncased",
        "roberta-base",
        "albert-base-v2",
        "deberta-v3-base",
        "gpt2",
        "t5-small",
        "flan-t5-base",
        "bart-base",
        "switch-base-8",
        "mixtral-8x7b",
        "olmoe-1b-7b",
    } <= set(GALLERY)


@pytest.mark.parametrize("name", sorted(GALLERY))
def test_totals_match_published_figures(name):
    acc = GALLERY[name]
    value, half_unit = parse_published(acc.published["total_parameters"])
    # within 1%, or within the rounding of the published figure when it is coarser
    assert abs(acc.total - value) <= max(0.01 * value, half_unit), (acc.total, value)
    if acc.published.get("active_parameters"):
        value, half_unit = parse_published(acc.published["active_parameters"])
        assert abs(acc.active - value) <= max(0.01 * value, half_unit), (acc.active, value)


def test_mixtral_holds_far_fewer_than_eight_times_seven_billion():
    acc = GALLERY["mixtral-8x7b"]
    assert 46.5e9 < acc.total < 46.9e9 and 12.8e9 < acc.active < 13.0e9
    assert acc.num_experts == 8 and acc.experts_per_token == 2 and acc.moe_layers == 32
    text = explain_moe(acc)
    assert "46.70 B" in text and "12.88 B" in text


def test_dense_models_are_fully_active():
    for name in ("bert-base-uncased", "gpt2", "t5-small"):
        assert GALLERY[name].active == GALLERY[name].total


def test_accounting_equals_a_plain_count_on_real_modules():
    import transformers

    for model_type in ("gpt2", "mixtral", "qwen2_moe", "switch_transformers", "t5"):
        model = tiny_model(model_type)
        assert account(model.config).total == sum(p.numel() for p in model.parameters())
    bert = transformers.BertForPreTraining(tiny_model("bert").config)  # encoders are counted as pre-trained
    assert account(bert.config).total == sum(p.numel() for p in bert.parameters())


def test_parse_published():
    assert parse_published("12M") == (12e6, 0.5e6)
    assert parse_published("46.7B") == pytest.approx((46.7e9, 0.05e9))
