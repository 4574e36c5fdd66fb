"""The guided labs: two per family and one on the experiments, each 3-6 steps.

Every step names the page it sets up (its address), the state it presets there (keys that page's View
declares: tests/test_labs.py checks them against the page modules), its question and its answer-key
function. No answer is written here: each is measured on the loaded model when the step is shown, so a
teacher who changes the text gets the answer for the new text.

Ids are stable (links and the vote database use them): rename a lab or a step only with a migration.
"""

from __future__ import annotations

from explorer.adapters import family as interface
from explorer.lessons import keys_decoder as dec
from explorer.lessons import keys_encoder as enc
from explorer.lessons import keys_experiments as exp
from explorer.lessons import keys_moe as moe
from explorer.lessons import keys_seq2seq as s2s
from explorer.lessons.core import CHOICE, NO, NUMBER, YES, FromModel, Lab, Step

YES_NO = (YES, NO)


def _last_block(loaded) -> int:
    return int(loaded.model.config.num_hidden_layers)


# The page's block sliders count from 1: the last block of whichever model the family page has loaded
LAST_BLOCK = FromModel("the model's last block", _last_block)
# The experiments page's tools, by slug (explorer/ui/experiments/__init__.py tools()), and an MoE action of its
# routing tool (the test checks them)
SINK_TOOL, HEADS_TOOL, ROUTING_TOOL, TOP_K_SWEEP = interface.SINK, interface.HEADS, interface.ROUTING, "Top-k sweep"

MASKED = "The capital of [MASK] is Paris."
BANKS = "The bank by the river is not the bank that holds my money."
ANIMAL = "The animal didn't cross the street because it was too tired."
OPEN_PROMPT = "My favourite colour is"
FACT_PROMPT = "The capital of France is"
BLACK_CAT = "The black cat sat on the chair."
SISTER = "My sister lives in a small town near the sea."
ROUTED = "The cat sat on the mat and the dog slept by the door."
SINK_TEXT = "Paris is the capital of France, and Rome is the capital of Italy."


ENCODER_BOTH_SIDES = Lab(
    "encoder-both-sides",
    "encoder",
    "Fill the gap from both sides",
    "An encoder reads every word at once, left and right: predict what it puts in a [MASK], how sure it is, "
    "and how much it looks to the right of the gap.",
    (
        Step(
            "top-word",
            "Which word fills the gap?",
            "encoder",
            {"encoder_text": MASKED},
            'Which word does the encoder rank first for {mask} in "{text}"?',
            CHOICE,
            enc.top_word,
            figure="encoder_mask_bars_",
        ),
        Step(
            "top-probability",
            "How sure is it?",
            "encoder",
            {"encoder_text": MASKED},
            "What probability (in %) does the model give its top word, '{word}'?",
            NUMBER,
            enc.top_probability,
            tolerance=5.0,
            unit="%",
            digits=1,
            figure="encoder_mask_bars_",
        ),
        Step(
            "attention-right",
            "Does it look to the right?",
            "encoder",
            {"encoder_text": MASKED, "encoder_attn_layer": LAST_BLOCK},
            "In block {block}, averaged over its heads, what share (in %) of the {mask} token's attention goes to "
            "the tokens on its right (the closing [SEP] included)? A decoder's would be 0%.",
            NUMBER,
            enc.attention_right,
            tolerance=15.0,
            unit="%",
            digits=1,
            figure="encoder_attention",
        ),
        Step(
            "cut-right",
            "Take the right side away",
            "encoder",
            {"encoder_text": MASKED},
            "Delete every word after {mask} (so the text ends with the gap). Will the top word still be '{word}'?",
            CHOICE,
            enc.cut_right,
            choices=YES_NO,
            figure="encoder_mask_bars_",
        ),
    ),
)

ENCODER_CONTEXT = Lab(
    "encoder-context",
    "encoder",
    "One word, two meanings",
    "The same word starts from the same embedding; the blocks mix in its context. Predict how far two 'bank's "
    "drift apart, and which noun 'it' ends up closest to.",
    (
        Step(
            "bank-start",
            "Before any context",
            "encoder",
            {"encoder_text": BANKS, "encoder_sim_layer": 0},
            "'{word}' appears twice. At depth {depth}, {where}, what is the cosine similarity of its two vectors "
            "(1 = the same direction)?",
            NUMBER,
            enc.twin_cosine,
            tolerance=0.05,
            digits=3,
            params={"word": "bank"},
            figure="encoder_similarity",
        ),
        Step(
            "bank-end",
            "After every block",
            "encoder",
            {"encoder_text": BANKS, "encoder_sim_layer": LAST_BLOCK},
            "And {where} (depth {depth}): what is the cosine similarity of the two '{word}' vectors now?",
            NUMBER,
            enc.twin_cosine,
            tolerance=0.1,
            digits=3,
            params={"word": "bank"},
            figure="encoder_similarity",
        ),
        Step(
            "it-refers",
            "Where does 'it' point?",
            "encoder",
            {"encoder_text": ANIMAL, "encoder_sim_layer": LAST_BLOCK},
            "After block {depth}, is the vector of '{pronoun}' closer to 'animal' or to 'street'?",
            CHOICE,
            enc.referent,
            choices=("animal", "street"),
            params={"pronoun": "it", "candidates": ("animal", "street")},
            figure="encoder_similarity",
        ),
    ),
)

DECODER_SAMPLING = Lab(
    "decoder-sampling",
    "decoder",
    "Choosing the next token",
    "A decoder outputs a probability for every token; a rule picks one. Predict greedy's pick, what "
    "temperature and top-p do to the distribution, and whether a sample agrees with greedy.",
    (
        Step(
            "next-token",
            "Greedy's pick",
            "decoder",
            {"decoder_prompt": FACT_PROMPT, "decoder_greedy": True, "decoder_inspect": 1},
            'Greedy decoding on "{prompt}": which token does the model append first?',
            CHOICE,
            dec.next_token,
            figure="decoder_bars",
        ),
        Step(
            "cold",
            "Temperature below 1",
            "decoder",
            {
                "decoder_prompt": OPEN_PROMPT,
                "decoder_greedy": False,
                "decoder_temperature": 0.5,
                "decoder_top_k": 0,
                "decoder_top_p": 1.0,
                "decoder_inspect": 1,
            },
            "Greedy off, temperature {temperature}: what probability (in %) does the distribution Step draws from "
            "(blue bars) give the most likely token, '{token}'?",
            NUMBER,
            dec.drawn_top_probability,
            tolerance=10.0,
            unit="%",
            digits=1,
            figure="decoder_bars",
        ),
        Step(
            "nucleus",
            "Top-p",
            "decoder",
            {
                "decoder_prompt": OPEN_PROMPT,
                "decoder_greedy": False,
                "decoder_temperature": 0.5,
                "decoder_top_k": 0,
                "decoder_top_p": 0.9,
                "decoder_inspect": 1,
            },
            "Temperature {temperature} and top-p {top_p}: how many tokens can Step still draw from?",
            NUMBER,
            dec.pool_size,
            tolerance=2.0,
            unit="tokens",
            figure="decoder_bars",
        ),
        Step(
            "sample-vs-greedy",
            "One sample",
            "decoder",
            {
                "decoder_prompt": OPEN_PROMPT,
                "decoder_greedy": False,
                "decoder_temperature": 1.0,
                "decoder_top_k": 0,
                "decoder_top_p": 1.0,
                "decoder_seed": 0,
                "decoder_inspect": 1,
            },
            "Sampling at temperature {temperature} with seed {seed}: will the first token drawn be the one greedy "
            "would take?",
            CHOICE,
            dec.sampled_is_greedy,
            choices=YES_NO,
            figure="decoder_bars",
        ),
    ),
)

DECODER_INSIDE = Lab(
    "decoder-inside",
    "decoder",
    "Inside one decoding step",
    "Where the newest token looks (only left: causal attention), how much of that is an attention sink, and at "
    "which depth the answer becomes readable (the logit lens).",
    (
        Step(
            "most-attended",
            "Where does it look?",
            "decoder",
            {"decoder_prompt": FACT_PROMPT, "decoder_inspect": 1, "decoder_layer": LAST_BLOCK},
            "In block {block}, averaged over its heads, which earlier token does the newest token attend to most?",
            CHOICE,
            dec.most_attended,
            figure="decoder_attention",
        ),
        Step(
            "sink-share",
            "The attention sink",
            "decoder",
            {"decoder_prompt": FACT_PROMPT, "decoder_inspect": 1},
            "Averaged over all {blocks} blocks and {heads} heads, what share (in %) of the newest token's attention "
            "lands on the first token?",
            NUMBER,
            dec.sink_share,
            tolerance=10.0,
            unit="%",
            digits=1,
            figure="decoder_attention",
        ),
        Step(
            "lens-depth",
            "When is the answer readable?",
            "decoder",
            {"decoder_prompt": FACT_PROMPT, "decoder_inspect": 1},
            "The logit lens reads the next token from every depth. From which block on (of {blocks}) does it rank "
            "the model's final answer first and keep it there?",
            NUMBER,
            dec.lens_depth,
            tolerance=2.0,
            figure="decoder_lens",
        ),
    ),
)

SEQ2SEQ_ALIGNMENT = Lab(
    "seq2seq-alignment",
    "seq2seq",
    "What is the translator reading?",
    "The decoder writes Portuguese while cross-attending to the English it was given: predict its first "
    "word, which English word it reads for a given Portuguese one, and whether the alignment runs straight.",
    (
        Step(
            "first-output",
            "The first word",
            "encoder-decoder",
            {"s2s_text": BLACK_CAT, "s2s_greedy": True},
            'Which token does the translator write first for "{text}"?',
            CHOICE,
            s2s.first_output,
            figure="s2s_bars",
        ),
        Step(
            "aligned-source",
            "Which English word?",
            "encoder-decoder",
            {"s2s_text": BLACK_CAT, "s2s_greedy": True, "s2s_inspect": 4, "s2s_cross_layer": "mean"},
            "Output token {k} is '{written}'. While writing it, which source token gets the most cross-attention "
            "({where}, head average)?",
            CHOICE,
            s2s.aligned_source,
            figure="s2s_cross",
        ),
        Step(
            "steps-back",
            "Straight or crossed?",
            "encoder-decoder",
            {"s2s_text": BLACK_CAT, "s2s_greedy": True, "s2s_cross_layer": "mean"},
            "Follow each output word to the source word it reads most. Does that path ever step back to an earlier "
            "English word?",
            CHOICE,
            s2s.steps_back,
            choices=YES_NO,
            figure="s2s_cross",
        ),
    ),
)

SEQ2SEQ_ONCE = Lab(
    "seq2seq-encode-once",
    "seq2seq",
    "Encode once, decode many times",
    "The encoder reads the source in one pass; the decoder runs once per output token, reusing that pass. "
    "Predict how many steps, what share of the time the encoder takes, and whether sampling changes the output.",
    (
        Step(
            "decoder-steps",
            "How many decoder steps?",
            "encoder-decoder",
            {"s2s_text": SISTER, "s2s_greedy": True},
            "How many decoder steps (one forward each) does the greedy translation take, its end token included?",
            NUMBER,
            s2s.decoder_steps,
            tolerance=1.0,
            unit="steps",
            figure="s2s_time",
        ),
        Step(
            "encoder-share",
            "Who takes the time?",
            "encoder-decoder",
            {"s2s_text": SISTER, "s2s_greedy": True},
            "Timed on this machine (medians of several runs): what share (in %) of the whole translation's time is "
            "the single encoder pass, against the {steps} decoder steps?",
            NUMBER,
            s2s.encoder_share,
            tolerance=15.0,
            unit="%",
            digits=0,
            figure="s2s_time",
        ),
        Step(
            "sampled-same",
            "Sample the translation",
            "encoder-decoder",
            {
                "s2s_text": BLACK_CAT,
                "s2s_greedy": False,
                "s2s_temperature": 1.0,
                "s2s_top_k": 0,
                "s2s_top_p": 1.0,
                "s2s_seed": 0,
            },
            "Greedy off, temperature {temperature}, seed {seed}: will the whole translation be the same as greedy's?",
            CHOICE,
            s2s.sampled_same,
            choices=YES_NO,
            figure="s2s_bars",
        ),
    ),
)

MOE_ROUTING = Lab(
    "moe-routing",
    "moe",
    "Where does each token go?",
    "A router sends every token to a few experts in each MoE layer. Predict where 'the' goes, whether every "
    "'the' goes to the same place, and how evenly the experts share the text.",
    (
        Step(
            "word-expert",
            "One token's expert",
            "moe",
            {"moe_text": ROUTED, "moe_layer": 1},
            "At MoE layer {layer}, which expert is the router's first choice for the first '{word}'?",
            CHOICE,
            moe.word_expert,
            params={"word": "the"},
            figure="moe_router",
        ),
        Step(
            "word-agrees",
            "Same word, same expert?",
            "moe",
            {"moe_text": ROUTED, "moe_layer": 1},
            "Do all the '{word}'s of the text go to the same first-choice expert at MoE layer {layer}?",
            CHOICE,
            moe.word_agrees,
            choices=YES_NO,
            params={"word": "the"},
            figure="moe_routes",
        ),
        Step(
            "experts-used",
            "How many experts work?",
            "moe",
            {"moe_text": ROUTED, "moe_layer": 2},
            "The text has {tokens} tokens. At MoE layer {layer}, how many of the {experts} experts get at least one "
            "of them?",
            NUMBER,
            moe.experts_used,
            tolerance=1.0,
            unit="experts",
            figure="moe_load",
        ),
        Step(
            "busiest-share",
            "The busiest expert",
            "moe",
            {"moe_text": ROUTED, "moe_layer": 2},
            "At MoE layer {layer}, what share (in %) of the token-slots does the busiest expert take? (Perfect "
            "balance: {balanced}%.)",
            NUMBER,
            moe.busiest_share,
            tolerance=5.0,
            unit="%",
            digits=1,
            figure="moe_load",
        ),
    ),
)

MOE_COST = Lab(
    "moe-cost",
    "moe",
    "Parameters in memory, parameters per token",
    "Every expert must be in memory; each token uses only a few. Predict the loaded MoE's two counts, whether "
    "more experts per token help, and Mixtral 8x7B's real totals.",
    (
        Step(
            "held",
            "In memory",
            "moe",
            {"moe_text": ROUTED},
            "How many parameters (in millions) does the loaded MoE hold in memory?",
            NUMBER,
            moe.held_parameters,
            tolerance=0.3,
            unit="M",
            digits=2,
            figure="moe_cost",
        ),
        Step(
            "per-token",
            "Per token",
            "moe",
            {"moe_text": ROUTED},
            "How many of them (in millions) does one token pass through?",
            NUMBER,
            moe.token_parameters,
            tolerance=0.3,
            unit="M",
            digits=2,
            figure="moe_cost",
        ),
        Step(
            "more-experts",
            "More experts per token?",
            "experiments",
            {"exp_family": "moe", "exp_tool": ROUTING_TOOL, "exp_moe_action": TOP_K_SWEEP, "exp_text": ROUTED},
            "The model was trained with top-{trained}. Sent to {more} experts per token instead (twice the expert "
            "compute), will its loss on the text be lower?",
            CHOICE,
            moe.more_experts_help,
            choices=YES_NO,
            figure="exp_topk_fig",
        ),
        Step(
            "mixtral-total",
            "Mixtral 8x7B in memory",
            "moe",
            {"moe_text": ROUTED},
            "{name} ({framing}): how many parameters must sit in memory?",
            CHOICE,
            moe.gallery_total,
            params={"config": "mixtral-8x7b"},
            figure="moe_cost",
        ),
        Step(
            "mixtral-active",
            "Mixtral 8x7B per token",
            "moe",
            {"moe_text": ROUTED},
            "And how many (in billions) does one {name} token pass through, with {k} of {experts} experts per layer?",
            NUMBER,
            moe.gallery_active,
            tolerance=1.0,
            unit="B",
            digits=1,
            params={"config": "mixtral-8x7b"},
            figure="moe_cost",
        ),
    ),
)

EXPERIMENTS_SWITCH_OFF = Lab(
    "experiments-switch-off",
    "experiments",
    "Switch parts of the model off",
    "Change the live model and predict what breaks: remove the attention sink, then switch off the heads that "
    "copy repeated text (induction heads).",
    (
        Step(
            "sink-next",
            "Without the sink",
            "experiments",
            {"exp_family": "decoder", "exp_tool": SINK_TOOL, "exp_text": SINK_TEXT},
            "Remove every head's attention to the first token. Will the prediction after the last token change?",
            CHOICE,
            exp.sink_next,
            choices=YES_NO,
            figure="exp_sink_fig",
        ),
        Step(
            "sink-flips",
            "How many predictions flip?",
            "experiments",
            {"exp_family": "decoder", "exp_tool": SINK_TOOL, "exp_text": SINK_TEXT},
            "At how many of the {tokens} positions does the top-1 prediction change?",
            NUMBER,
            exp.sink_flips,
            tolerance=2.0,
            unit="positions",
            figure="exp_sink_fig",
        ),
        Step(
            "sink-loss",
            "Better or worse?",
            "experiments",
            {"exp_family": "decoder", "exp_tool": SINK_TOOL, "exp_text": SINK_TEXT},
            "Does the model's loss on the text rise or fall without the sink?",
            CHOICE,
            exp.sink_loss,
            choices=("Rises", "Falls"),
            figure="exp_sink_fig",
        ),
        Step(
            "induction-rise",
            "Induction heads off",
            "experiments",
            {
                "exp_family": "decoder",
                "exp_tool": HEADS_TOOL,
                "exp_text": exp.INDUCTION_TEXT,
                "exp_heads": FromModel("the model's 3 strongest induction heads", exp.strongest_induction_heads),
            },
            "Switch off {heads}, the model's 3 strongest induction heads. By how many nats does its loss on the "
            "text change?",
            NUMBER,
            exp.induction_rise,
            tolerance=0.5,
            unit="nats",
            digits=2,
            figure="exp_heads_fig",
        ),
    ),
)

LABS: tuple[Lab, ...] = (
    ENCODER_BOTH_SIDES,
    ENCODER_CONTEXT,
    DECODER_SAMPLING,
    DECODER_INSIDE,
    SEQ2SEQ_ALIGNMENT,
    SEQ2SEQ_ONCE,
    MOE_ROUTING,
    MOE_COST,
    EXPERIMENTS_SWITCH_OFF,
)
BY_ID = {lab.id: lab for lab in LABS}


def lab(lab_id: str) -> Lab:
    """The lab with this id (KeyError, naming the ids there are, otherwise)."""
    if lab_id not in BY_ID:
        raise KeyError(f"no lab {lab_id!r} (there are {', '.join(BY_ID)})")
    return BY_ID[lab_id]


def labs_of(family: str) -> tuple[Lab, ...]:
    """The labs of a family ('experiments' for the experiments page's), for the page to link to."""
    return tuple(x for x in LABS if x.family == family)
