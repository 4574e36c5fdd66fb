"""Encoder-decoder page: the encoder reads the whole source once, the decoder writes step by
step while cross-attending to it. Whisper hears speech; T5/BART/Marian read text."""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import streamlit as st

from explorer import audio
from explorer.adapters import seq2seq
from explorer.adapters.common import display_token
from explorer.decoding import SamplingSettings
from explorer.plots import decoding as decoding_plots
from explorer.plots import seq2seq as seq2seq_plots
from explorer.ui import common, stepper

log = logging.getLogger(__name__)

TEXT_EXAMPLES = [
    "translate English to German: The house is wonderful.",
    "summarize: The encoder reads the whole input once. The decoder then writes the output one token at a time.",
    "The weather is nice today.",
]


# cache_resource: encoder passes are frozen with read-only arrays, shared by every session
@st.cache_resource(max_entries=16, show_spinner=False)
def cached_encode_audio(_loaded, model_id: str, device: str, audio_key: str, _samples: np.ndarray):
    return seq2seq.encode_audio(_loaded, _samples)


@st.cache_resource(max_entries=16, show_spinner=False)
def cached_encode_text(_loaded, model_id: str, device: str, text: str):
    return seq2seq.encode_text(_loaded, text)


# cache_resource: steps are frozen and read-only, so every rerun shares them instead of
# unpickling a copy of each [V]-sized distribution.
@st.cache_resource(max_entries=384, show_spinner=False)  # ~0.4 MB each: logits and probs over V
def cached_step(_loaded, _encoder, model_id: str, device: str, source_key: str, context: tuple[int, ...]):
    return seq2seq.step(_loaded, _encoder, np.asarray(context, dtype=np.int64))


# cache_resource: traces are frozen and read-only, so every rerun shares them; few entries,
# since each holds the decoder's [T, V] logits (13 MB for 64 Whisper tokens).
@st.cache_resource(max_entries=16, show_spinner=False)
def cached_trace(_loaded, _encoder, model_id: str, device: str, source_key: str, context: tuple[int, ...]):
    return seq2seq.trace(_loaded, _encoder, np.asarray(context, dtype=np.int64))


@st.cache_data(max_entries=32, show_spinner=False)
def cached_speech(text: str):
    return audio.speak(text)


def render() -> None:
    st.title("Encoder-decoder: read everything, then write")
    st.markdown(
        "An encoder-decoder (T5, BART, Whisper) has two stacks. The **encoder** reads the whole input once, "
        "bidirectionally, and comprehends it before anything is generated. The **decoder** then writes the output "
        "one token at a time; in every block it **cross-attends** to the encoder's output. Reading everything first "
        "makes these models strong at translation, summarisation and speech recognition, and slower to answer than a "
        "decoder of the same size: the encoder pass comes before the first output token."
    )
    common.start_view()
    loaded = common.load_for_page("seq2seq")
    if loaded is None:
        return
    common.run_safely(lambda: _body(loaded))
    common.run_safely(lambda: common.show_architecture(loaded))
    common.export_view("Encoder-decoder view")


def _speech_source() -> audio.Speech | None:
    clips = audio.shipped_clips()
    kind = st.segmented_control("Speech from", ["Example clip", "Type text (eSpeak NG)", "Upload a file", "Microphone"],
                                default="Example clip", key="s2s_source_kind")
    try:
        if kind == "Type text (eSpeak NG)":
            text = st.text_input("Sentence to speak", "Hello, my name is Whisper and I turn speech into text.",
                                 key="s2s_tts_text", max_chars=400)
            speech = cached_speech(text)
        elif kind == "Upload a file":
            upload = st.file_uploader("Audio file (WAV, FLAC, OGG, MP3)", type=["wav", "flac", "ogg", "mp3"], key="s2s_upload")
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
        log.info("audio refused", exc_info=error)
        st.warning(str(error))
        return None
    common.notes(speech.notices)
    st.audio(audio.encode_wav(speech.samples), format="audio/wav")
    return speech


def _body(loaded) -> None:
    if loaded.arch.audio:
        speech = _speech_source()
        if speech is None:
            return
        source_key = hashlib.sha1(speech.samples.tobytes()).hexdigest()
        encoder = cached_encode_audio(loaded, loaded.model_id, loaded.device, source_key, speech.samples)
        source_positions = min(len(encoder.trace.tokens), int(np.ceil(speech.seconds / seq2seq.FRAME_SECONDS)) + 1)
    else:
        cleaned = common.text_input("s2s_text", "Source text", TEXT_EXAMPLES[0], TEXT_EXAMPLES)
        if cleaned is None:
            return
        source_key = hashlib.sha1(cleaned.text.encode()).hexdigest()
        encoder = cached_encode_text(loaded, loaded.model_id, loaded.device, cleaned.text)
        common.notes(encoder.trace.notes)
        source_positions = None

    settings = stepper.sampling_controls("s2s")
    start = seq2seq.start_ids(loaded)

    def settings_for(index: int) -> SamplingSettings:
        suppressed = seq2seq.suppressed_ids(loaded, first_step=index == 0)
        return SamplingSettings(**{**settings.__dict__, "suppressed_ids": suppressed})

    labels = lambda ids: {i: display_token(loaded.tokenizer, i) for i in ids}  # noqa: E731
    result = stepper.run_stepper(
        "s2s", (loaded.model_id, loaded.device, source_key), start,
        step_fn=lambda ctx: cached_step(loaded, encoder, loaded.model_id, loaded.device, source_key, ctx),
        settings_for=settings_for, eos_ids=seq2seq.eos_ids(loaded), labels_fn=labels, auto_tokens=64,
    )
    output = loaded.tokenizer.decode(result.generated, skip_special_tokens=True)
    st.markdown("**Output so far**")
    st.code(output or "(nothing yet)", language=None, wrap_lines=True)

    ids = np.concatenate([result.start_ids, np.asarray(result.generated, dtype=np.int64)])
    trace = cached_trace(loaded, encoder, loaded.model_id, loaded.device, source_key, tuple(int(i) for i in ids))
    layers = trace.cross_attentions.shape[0]
    choice = st.select_slider("Cross-attention block", ["mean"] + list(range(1, layers + 1)), value="mean", key="s2s_cross_layer")
    layer = None if choice == "mean" else int(choice) - 1
    common.show_figure(
        seq2seq_plots.cross_attention_heatmap(trace.decoder.tokens, trace.encoder.tokens, trace.cross_attentions, layer,
                                              source_positions=source_positions, source_kind=encoder.source_kind),
        key="s2s_cross",
        caption=("Each row is an output token; each column a stretch of audio (Whisper's encoder turns 30 s into 1,500 "
                 "positions of 20 ms; columns here pool several)." if encoder.source_kind == "audio" else
                 "Each row is an output token; each column a source token."),
        how_to_read="Bright cells show which part of the source the decoder read while producing that token. For speech, "
                    "a diagonal band means the decoder moves through the audio as it writes the words.",
    )
    step_seconds = [s.seconds for s in result.steps[: len(result.generated)]]
    if step_seconds:
        common.show_figure(
            seq2seq_plots.encoder_vs_decoder_time(encoder.seconds, step_seconds), key="s2s_time",
            caption="Measured on this machine: the encoder runs once for the whole source, the decoder once per output token "
                    "(cached steps keep the time of their first run).",
        )
    n = len(result.generated)
    inspect = st.slider("Inspect step", 1, n + 1, n + 1, key="s2s_inspect") if n else 1
    step = result.steps[inspect - 1]
    chosen = result.generated[inspect - 1] if inspect <= n else None
    top = [int(i) for i in np.argsort(-step.probs)[:15]]
    common.show_figure(
        decoding_plots.next_token_bars(step.probs, stepper.kept_mask(step, result.settings[inspect - 1]), chosen,
                                       labels(top + ([chosen] if chosen is not None else []))),
        key="s2s_bars",
        caption=f"Decoder step {inspect}: probabilities of the next output token.",
        how_to_read="Orange is the chosen token, grey hatched tokens are removed by the decoding rules (for Whisper these "
                    "include its suppressed tokens).",
    )
