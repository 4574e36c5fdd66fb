"""Which Hugging Face architectures the explorer supports, and how each one is driven.

A new architecture is one entry here; a new family is one Family record (below), its adapter
module and its page body.
Keys are ``config.model_type`` values.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    model_type: str
    family: str  # a key of FAMILIES
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


@dataclass(frozen=True)
class Family:
    """One model family, the single record that navigation, home, catalogue and compare loop over.

    ``adapter`` and ``page`` name modules (strings, so this registry imports neither the models
    nor the UI): the adapter computes the family's traces, the page module's ``render`` draws it.
    A new family is one record here, its adapter, its page body and their tests.
    """

    key: str  # catalogue key and prefix of the page's state keys
    title: str
    url_path: str  # the page's address (/decoder); shared links and the presenter tour use it
    icon: str
    adapter: str
    page: str
    blurb: str  # one sentence on the home page: what the family computes
    encoder_only: bool = False  # one bidirectional stack (drawn as an encoder; counted with its pre-training heads)


FAMILIES: dict[str, Family] = {
    f.key: f
    for f in (
        Family(
            "encoder",
            "Encoder-only",
            "encoder",
            ":material/compare_arrows:",
            "explorer.adapters.encoder",
            "explorer.ui.encoder_page",
            "reads the whole text at once, in both directions: contextual vectors, attention, masked words.",
            encoder_only=True,
        ),
        Family(
            "decoder",
            "Decoder-only",
            "decoder",
            ":material/edit_note:",
            "explorer.adapters.decoder",
            "explorer.ui.decoder_page",
            "writes one token at a time, each seeing only the past: next-token probabilities, sampling, causal "
            "attention.",
        ),
        Family(
            "seq2seq",
            "Encoder-decoder",
            "encoder-decoder",
            ":material/translate:",
            "explorer.adapters.seq2seq",
            "explorer.ui.seq2seq_page",
            "an encoder reads the input once, then a decoder writes while cross-attending to it (English to "
            "Portuguese with the project's translator, or speech to text with Whisper).",
        ),
        Family(
            "moe",
            "Mixture of Experts",
            "moe",
            ":material/call_split:",
            "explorer.adapters.moe",
            "explorer.ui.moe_page",
            "a router sends each token to a few expert feed-forward networks: routes, gate weights, expert load.",
        ),
    )
}

FAMILY_TITLES = {key: family.title for key, family in FAMILIES.items()}


def supported_list(family: str | None = None) -> str:
    return ", ".join(a.display for a in ARCHITECTURES.values() if family is None or a.family == family)
