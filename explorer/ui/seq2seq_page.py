"""Encoder-decoder page: the encoder reads the whole source once, the decoder writes step by
step while cross-attending to it. Text by default (the project's English -> Portuguese translator,
or T5/BART/Marian); speech with Whisper as the second input kind."""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import streamlit as st

from explorer import audio
from explorer.adapters import seq2seq
from explorer.adapters.attribution import Target
from explorer.adapters.common import display_token, vocabulary_size
from explorer.catalogue import SPEECH_ID, TRANSLATOR_ID
from explorer.decoding import SamplingSettings
from explorer.plots import seq2seq as seq2seq_plots
from explorer.session import DecodingSession
from explorer.text import plain
from explorer.ui import attribution_panel, picker, stepper
from explorer.ui.boundary import guarded
from explorer.ui.view import View, cached, notes

log = logging.getLogger(__name__)

VIEW = View.of_family(
    "seq2seq",
    text_key="s2s_text",
    keep=("s2s_input_kind", "s2s_tts_text"),  # the input kind follows the model, which the link carries
    settings={
        **attribution_panel.link_settings("s2s"),
        **stepper.link_settings("s2s"),
        "s2s_cross_layer": "block 1 1000",
        "s2s_source_kind": "choice Example clip|Type text (eSpeak NG)|Upload a file|Microphone",
    },
    s2s_tokens="s2s_generated",
)

TEXT_EXAMPLES = [  # the first opens the page; the translator gets it right, and gets "mat" wrong in the second
    "My sister lives in a small town near the sea.",
    "The cat sat on the mat.",
    "The black cat sat on the chair.",
    "The old man walked slowly to the harbour.",
]
# T5 reads its task from a prefix
T5_EXAMPLES = [
    "translate English to German: The house is wonderful.",
    "summarize: The encoder reads the whole input once. The decoder then writes the output one token at a time.",
    "The weather is nice today.",
]
# What each example shows; the translator's are measured on the embedded default against its teacher's translation
# (tests/test_example_notes.py). T5 is no embedded default: its notes describe the prompt, not a measured output.
EXAMPLE_NOTES = {
    "My sister lives in a small town near the sea.": (
        "Right: the translation, 'Minha irmã vive em uma pequena cidade perto do mar.', is the teacher's word for word."
    ),
    "The cat sat on the mat.": (
        "Where it fails: 'mat' becomes 'colar' (a necklace); the teacher writes 'O gato sentou-se no tapete.'"
    ),
    "The black cat sat on the chair.": (
        "Word order: 'black cat' becomes 'gato preto' (the teacher's translation, word for word), and the "
        "cross-attention band steps back from 'cat' to 'black'."
    ),
    "The old man walked slowly to the harbour.": (
        "Right in other words: 'andou' (walked) where the teacher writes 'caminhou' (walked); the rest is the same."
    ),
    "translate English to German: The house is wonderful.": "T5 reads its task from the prefix: a translation.",
    "summarize: The encoder reads the whole input once. The decoder then writes the output one token at a time.": (
        "The same model, another prefix: a summary."
    ),
    "The weather is nice today.": "No task prefix: what T5 writes when it is not told what to do.",
}
TEXT, SPEECH = "Text → Portuguese (translator)", "Speech → English text (Whisper)"
INPUT_KIND = "s2s_input_kind"


HEADLINE = "Encoder-decoder: read everything, then write"
INTRO = (
    "An encoder-decoder (Marian, T5, BART, Whisper) has two stacks. The **encoder** reads the whole input once, "
    "bidirectionally, and comprehends it before anything is generated. The **decoder** then writes the output "
    "one token at a time; in every block it **cross-attends** to the encoder's output. Reading everything first "
    "makes these models strong at translation, summarisation and speech recognition, and slower to answer than a "
    "decoder of the same size: the encoder pass comes before the first output token."
)


# Encoder passes, steps and traces are frozen with read-only arrays, shared by every session.
@cached(max_entries=16)
def cached_encode_audio(loaded, audio_key: str, _samples: np.ndarray):
    return seq2seq.encode_audio(loaded, _samples)


@cached(max_entries=16)
def cached_encode_text(loaded, text: str):
    return seq2seq.encode_text(loaded, text)


@cached(max_entries=384)  # ~0.4 MB each: logits and probs over V
def cached_step(loaded, _encoder, source_key: str, context: tuple[int, ...]):
    return seq2seq.step(loaded, _encoder, np.asarray(context, dtype=np.int64))


# Few entries, since each holds the decoder's [T, V] logits (13 MB for 64 Whisper tokens).
@cached(max_entries=16)
def cached_trace(loaded, _encoder, source_key: str, context: tuple[int, ...]):
    return seq2seq.trace(loaded, _encoder, np.asarray(context, dtype=np.int64))


# The timing figure draws the median of several encoder passes: up to 5, at least 3; past 3, more only while
# the extra passes have taken under TIMING_BUDGET seconds (a Whisper pass over 30 s of audio takes a second or more).
ENCODER_RUNS, MIN_ENCODER_RUNS, TIMING_BUDGET = 5, 3, 2.0


@cached(max_entries=16)
def cached_encoder_runs(loaded, source_key: str, _first_seconds: float, _encode_again) -> tuple[float, ...]:
    """Seconds of several encoder passes over one source (the page's own pass and more), measured once
    per (model, source): one pass is too noisy to compare with a decoder step."""
    runs, extra = [_first_seconds], 0.0
    while len(runs) < ENCODER_RUNS and (len(runs) < MIN_ENCODER_RUNS or extra < TIMING_BUDGET):
        runs.append(_encode_again().seconds)
        extra += runs[-1]
    return tuple(runs)


@st.cache_data(max_entries=32, show_spinner=False)
def cached_speech(text: str):
    return audio.speak(text)


def render() -> None:
    VIEW.page(HEADLINE, INTRO, _body)


def _speech_source() -> audio.Speech | None:
    clips = audio.shipped_clips()
    kind = st.segmented_control(
        "Speech from",
        ["Example clip", "Type text (eSpeak NG)", "Upload a file", "Microphone"],
        default="Example clip",
        key="s2s_source_kind",
    )
    try:
        if kind == "Type text (eSpeak NG)":
            text = st.text_input(
                "Sentence to speak",
                "Hello, my name is Whisper and I turn speech into text.",
                key="s2s_tts_text",
                max_chars=400,
            )
            speech = cached_speech(text)
        elif kind == "Upload a file":
            upload = st.file_uploader(
                "Audio file (WAV, FLAC, OGG, MP3)", type=["wav", "flac", "ogg", "mp3"], key="s2s_upload"
            )
            if upload is None:
                st.info("Choose an audio file to transcribe.")
                return None
            speech = audio.decode_audio_file(upload.getvalue())
        elif kind == "Microphone":
            recording = st.audio_input("Record a sentence", key="s2s_mic")
            if recording is None:
                st.info("Press the microphone to record (the browser will ask for permission).")
                return None
            speech = audio.decode_audio_file(recording.getvalue())
        else:
            clip = st.selectbox("Clip", clips, key="s2s_clip", format_func=lambda c: f"“{c['text']}”")
            speech = audio.shipped_clip_speech(clip)
            st.caption(clip["how"])
    except audio.AudioError as error:
        log.info("audio refused: %s", error)  # a routine refusal: one line, no traceback
        st.warning(plain(error))
        return None
    notes(speech.notices)
    st.audio(audio.encode_wav(speech.samples), format="audio/wav")
    return speech


def _input_kind(loaded) -> None:
    """Text or speech: each switches the family's model (the sidebar shows which)."""
    st.session_state[INPUT_KIND] = SPEECH if loaded.arch.audio else TEXT  # the loaded model decides
    st.radio(
        "Input",
        [TEXT, SPEECH],
        key=INPUT_KIND,
        horizontal=True,
        on_change=guarded(_switch_model),
        help="Text: the project's English → Portuguese translator; speech: Whisper tiny.en. Any other "
        "encoder-decoder can be picked in the sidebar.",
    )


def _switch_model() -> None:
    picker.choose_model("seq2seq", SPEECH_ID if st.session_state[INPUT_KIND] == SPEECH else TRANSLATOR_ID)


def _source(loaded):
    """(encoder pass, source key, audio positions that hold speech or None, a call that encodes the source
    again for the timing), or None after saying why not."""
    _input_kind(loaded)
    if loaded.arch.audio:
        speech = _speech_source()
        if speech is None:
            return None
        source_key = hashlib.sha1(speech.samples.tobytes()).hexdigest()
        encoder = cached_encode_audio(loaded, source_key, speech.samples)
        return (
            encoder,
            source_key,
            min(len(encoder.trace.tokens), int(np.ceil(speech.seconds / seq2seq.FRAME_SECONDS)) + 1),
            lambda: seq2seq.encode_audio(loaded, speech.samples),
        )
    examples = T5_EXAMPLES if loaded.model.config.model_type == "t5" else TEXT_EXAMPLES
    cleaned = VIEW.text_input("Source text", examples[0], examples, example_notes=EXAMPLE_NOTES)
    if cleaned is None:
        return None
    encoder = cached_encode_text(loaded, cleaned.text)
    notes(encoder.trace.notes)
    return (
        encoder,
        hashlib.sha1(cleaned.text.encode()).hexdigest(),
        None,
        lambda: seq2seq.encode_text(loaded, cleaned.text),
    )


def _body(loaded) -> None:
    with VIEW.panels():
        source = _source(loaded)
    if source is None:
        return
    encoder, source_key, source_positions, encode_again = source
    with VIEW.side():
        settings = stepper.sampling_controls("s2s")

    def settings_for(index: int) -> SamplingSettings:
        suppressed = seq2seq.suppressed_ids(loaded, first_step=index == 0)
        return SamplingSettings(**{**settings.__dict__, "suppressed_ids": suppressed})

    session = DecodingSession(
        seq2seq.start_ids(loaded),
        step_fn=lambda ctx: cached_step(loaded, encoder, source_key, ctx),
        settings_for=settings_for,
        eos_ids=seq2seq.eos_ids(loaded),
        vocab_size=vocabulary_size(loaded),
    )
    labels = stepper.token_labels(loaded.tokenizer)
    with VIEW.side():
        result = stepper.run_stepper(
            VIEW, "s2s", (loaded.model_id, loaded.device, source_key), session, labels, auto_tokens=64
        )
        output = loaded.tokenizer.decode(result.generated, skip_special_tokens=True)
        st.markdown("**Output so far**")
        st.code(output or "(nothing yet)", language=None, wrap_lines=True)
    with VIEW.main():
        _cross_attention(loaded, encoder, source_key, source_positions, result)
    _timing(loaded, encoder, source_key, encode_again, [s.seconds for s in result.steps[: len(result.generated)]])
    stepper.inspect_step(
        VIEW,
        "s2s",
        result,
        labels,
        caption=lambda k, _s: f"Decoder step {k}: probabilities of the next output token.",
        how_to_read=(
            "Orange is the chosen token, grey hatched tokens are removed by the decoding rules (for Whisper "
            "these include its suppressed tokens)."
        ),
    )
    _attribution(loaded, encoder, result)


def _attribution(loaded, encoder, result) -> None:
    """Each output token over the source tokens and the output before it (text sources only)."""
    if encoder.source_kind == "audio" or not result.generated:
        return
    source = np.asarray(encoder.trace.token_ids)
    output = [int(i) for i in result.generated]
    targets = [
        (f"Output token {k + 1}: {display_token(loaded.tokenizer, t)!r}", source, Target.output(output, k))
        for k, t in enumerate(output)
    ]
    attribution_panel.panel(VIEW, loaded, "s2s", targets)


def _cross_attention(loaded, encoder, source_key: str, source_positions, result) -> None:
    ids = np.concatenate([result.start_ids, np.asarray(result.generated, dtype=np.int64)])
    trace = cached_trace(loaded, encoder, source_key, tuple(int(i) for i in ids))
    layers = trace.cross_attentions.shape[0]
    VIEW.within("s2s_cross_layer", 1, layers)
    choice = st.select_slider(
        "Cross-attention block", ["mean"] + list(range(1, layers + 1)), value="mean", key="s2s_cross_layer"
    )
    layer = None if choice == "mean" else int(choice) - 1
    VIEW.figure(
        seq2seq_plots.cross_attention_heatmap(
            trace.decoder.tokens,
            trace.encoder.tokens,
            trace.cross_attentions,
            layer,
            source_positions=source_positions,
            source_kind=encoder.source_kind,
        ),
        key="s2s_cross",
        caption=(
            "Each row is the step that writes one output token; each column a stretch of audio (Whisper's encoder "
            "turns 30 s into 1,500 "
            "positions of 20 ms; columns here pool several)."
            if encoder.source_kind == "audio"
            else "Each row is the decoder step that writes one output token (labelled by the token it wrote); each "
            "column a source token. For a translation this is the "
            "alignment matrix: which source words the decoder read while writing each word of the translation."
        ),
        how_to_read=(
            "Bright cells show which part of the source the decoder read while producing that token. For "
            "speech, a diagonal band means the decoder moves through the audio as it writes the words; for a "
            "translation, a bright cell pairs a Portuguese word with the English word it translates (word order "
            "can differ between the languages, so the band bends: 'the black cat' becomes 'o gato preto')."
        ),
    )


def _timing(loaded, encoder, source_key: str, encode_again, step_seconds: list[float]) -> None:
    """The encoder pass against the decoder steps: the caption states only numbers the figure draws."""
    if not step_seconds:
        return
    encoder_runs = cached_encoder_runs(loaded, source_key, encoder.seconds, encode_again)
    VIEW.figure(
        seq2seq_plots.encoder_vs_decoder_time(encoder_runs, step_seconds),
        key="s2s_time",
        caption=seq2seq_plots.timing_sentence(seq2seq_plots.timing_summary(encoder_runs, step_seconds)),
        how_to_read=(
            f"The blue bar is the median of {len(encoder_runs)} encoder passes over this source (up to "
            f"{ENCODER_RUNS}, fewer when a pass is slow), measured once per model and source; its whisker spans "
            "the fastest and the slowest pass. Each orange bar is one decoder step as first timed (a cached step "
            "keeps that time); the dashed line is their median. Single timings on a shared CPU vary by several "
            "times, which is why the sentence states medians and totals."
        ),
    )
