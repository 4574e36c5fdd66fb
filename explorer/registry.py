"""Which Hugging Face architectures the explorer supports, and how each one is driven.

A new architecture is one entry here; a new family is one adapter module plus entries.
Keys are ``config.model_type`` values.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    model_type: str
    family: str  # encoder | decoder | seq2seq | moe
    auto_class: str  # transformers Auto* class that carries the model's own output head
    display: str
    audio: bool = False  # source is speech (Whisper) rather than text


ARCHITECTURES: dict[str, Architecture] = {
    a.model_type: a
    for a in (
        Architecture("bert", "encoder", "AutoModelForMaskedLM", "BERT"),
        Architecture("roberta", "encoder", "AutoModelForMaskedLM", "RoBERTa"),
        Architecture("distilbert", "encoder", "AutoModelForMaskedLM", "DistilBERT"),
        Architecture("albert", "encoder", "AutoModelForMaskedLM", "ALBERT"),
        Architecture("deberta-v2", "encoder", "AutoModelForMaskedLM", "DeBERTa-v2/v3"),
        Architecture("electra", "encoder", "AutoModelForMaskedLM", "ELECTRA"),
        Architecture("gpt2", "decoder", "AutoModelForCausalLM", "GPT-2"),
        Architecture("llama", "decoder", "AutoModelForCausalLM", "Llama"),
        Architecture("qwen2", "decoder", "AutoModelForCausalLM", "Qwen2"),
        Architecture("gpt_neox", "decoder", "AutoModelForCausalLM", "GPT-NeoX"),
        Architecture("t5", "seq2seq", "AutoModelForSeq2SeqLM", "T5"),
        Architecture("bart", "seq2seq", "AutoModelForSeq2SeqLM", "BART"),
        Architecture("marian", "seq2seq", "AutoModelForSeq2SeqLM", "Marian"),
        Architecture("whisper", "seq2seq", "AutoModelForSpeechSeq2Seq", "Whisper", audio=True),
        Architecture("mixtral", "moe", "AutoModelForCausalLM", "Mixtral"),
        Architecture("qwen2_moe", "moe", "AutoModelForCausalLM", "Qwen2-MoE"),
        Architecture("olmoe", "moe", "AutoModelForCausalLM", "OLMoE"),
        Architecture("switch_transformers", "moe", "AutoModelForSeq2SeqLM", "Switch Transformers"),
    )
}

FAMILY_TITLES = {
    "encoder": "Encoder-only",
    "decoder": "Decoder-only",
    "seq2seq": "Encoder-decoder",
    "moe": "Mixture of Experts",
}


def supported_list(family: str | None = None) -> str:
    return ", ".join(a.display for a in ARCHITECTURES.values() if family is None or a.family == family)
