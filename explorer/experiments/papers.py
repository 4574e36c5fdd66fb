"""What each paper behind a replication card reports, in its own words, and where (the cards'
``published_text`` and ``source``; explorer.experiments.findings)."""

from __future__ import annotations

# What each paper reports, read in the paper's own text (quoted where it gives no table), with
# where; a card whose paper gives no number in its text says so. No value is guessed or read
# off a plot. The numeric ``published`` field stays None: none of these is the same quantity on
# the same kind of model as the card's headline, so the text is shown beside it instead.
NO_NUMBER = "no number in the paper's text (only a figure); left out rather than read off the plot"
FINDINGS = {
    "sink": "Llama-2-7B, attention of the 4096th token: 'the attention scores for the first token are significantly "
    "high, often exceeding half of the total attention, except for the two bottom layers'",
    "sink-sep": "BERT-base: 'over half of BERT's attention in layers 6-10 focuses on [SEP]' (Clark et al. 2019, "
    "section 3.2); StreamingLLM's Appendix H discusses BERT's [SEP] as its sink (no number quoted here)",
    "induction-loss": "a related quantity on natural text, not repeated random tokens: in-context learning score "
    "(loss of the 500th token minus the 50th) 'roughly 0.4 nats' after the induction-head phase change, 'constant "
    "across many different model sizes'",
    "induction-head": NO_NUMBER,
    "[SEP]": "BERT-base: 'over half of BERT's attention in layers 6-10 focuses on [SEP]'",
    "[CLS]": NO_NUMBER,
    "punctuation": NO_NUMBER,
    "anisotropy": "GPT-2: 'the average cosine similarity between uniformly randomly [sampled] words is roughly 0.6 in "
    "layers 2 through 8', and in the last layer 'any two words have on average an almost perfect cosine similarity'",
    "self-similarity": NO_NUMBER,
    "depth": "no published value for this statistic (the 'settled' reading is Baldock et al.'s definition of "
    "prediction depth, with the logit lens in place of their k-NN probes)",
    "same-first": "Mixtral 8x7B on Gutenberg (The Pile): 13.9% / 26.1% / 26.3% at layers 0 / 15 / 31 (random: 12.5%)",
    "topk-overlap": "Mixtral 8x7B on Gutenberg (The Pile), 'first or second choice': 49.5% / 63.1% / 52.2% at "
    "layers 0 / 15 / 31 (random: 1 - 6/8 x 5/7 = 46%)",
    "first-in-topk": "not reported (the project's third view of the same routes)",
    "token-id": "qualitative only: routing decisions 'are predominantly based on token IDs' with 'minimal context "
    "relevance' (no number in the abstract; the section was not read here)",
}
SOURCES = {
    "sink": "Xiao et al. 2023, Efficient Streaming Language Models with Attention Sinks (arXiv 2309.17453), "
    "Appendix F, text on Fig. 12",
    "sink-sep": "Clark et al. 2019, What Does BERT Look At? (arXiv 1906.04341), section 3.2; Xiao et al. 2023 "
    "(arXiv 2309.17453), Appendix H",
    "induction": "Olsson et al. 2022, In-context Learning and Induction Heads (transformer-circuits.pub), Argument 1",
    "clark": "Clark et al. 2019, What Does BERT Look At? (arXiv 1906.04341), section 3.2 and Fig. 2",
    "anisotropy": "Ethayarajh 2019, How Contextual are Contextualized Word Representations? (arXiv 1909.00512), "
    "section 4.1 and Fig. 1",
    "depth": "logit-lens prediction depth (this project's statistic; Baldock et al. 2021, arXiv 2106.09647, define "
    "prediction depth as the depth after which the probes agree)",
    "mixtral": "Jiang et al. 2024, Mixtral of Experts (arXiv 2401.04088v1), section 5, Table 5",
    "openmoe": "Xue et al. 2024, OpenMoE (arXiv 2402.01739), abstract",
}
