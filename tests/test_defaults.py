"""The embedded default models: offline loading, parity with plain Hugging Face forwards,
and behaviour a student can check (Paris, a correct transcription)."""

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoModelForSpeechSeq2Seq

from explorer import audio
from explorer.adapters import decoder, encoder, moe, seq2seq
from explorer.adapters.common import hook_count
from explorer.models import embedded
from explorer.models.loading import load_model

TOL = 1e-5


@pytest.fixture(scope="module")
def smol():
    return load_model("embedded:SmolLM2-135M-Instruct", device="cpu")


@pytest.fixture(scope="module")
def whisper():
    return load_model("embedded:whisper-tiny.en", device="cpu")


@pytest.fixture(scope="module")
def minilm():
    return load_model("embedded:all-MiniLM-L6-v2", device="cpu")


def test_minilm_trace_equals_plain_sentence_transformer_forward(minilm):
    trace = encoder.trace_text(minilm, "The bank of the river was muddy.")
    plain = AutoModel.from_pretrained(embedded.minilm_dir())
    with torch.no_grad():
        out = plain(input_ids=torch.tensor(trace.token_ids)[None], output_hidden_states=True)
    assert trace.hidden_states.shape == (7, len(trace.tokens), 384)
    assert np.abs(trace.hidden_states[-1] - out.last_hidden_state[0].numpy()).max() <= TOL
    assert trace.logits is None and not minilm.has_mlm_head
    assert trace.tokens[0] == "[CLS]" and "bank" in trace.tokens
    assert hook_count(minilm.model) == 0


def test_smollm2_greedy_capital_of_france(smol):
    ids, _ = decoder.prompt_ids(smol, "The capital of France is")
    step = decoder.step(smol, ids)
    assert smol.tokenizer.decode([int(step.probs.argmax())]).strip() == "Paris"


def test_smollm2_step_by_step_equals_generate(smol):
    ids, _ = decoder.prompt_ids(smol, "Once upon a time")
    context = list(ids)
    for _ in range(12):
        context.append(int(decoder.step(smol, np.asarray(context)).logits.argmax()))
    with torch.no_grad():
        reference = smol.model.generate(torch.tensor(ids)[None], max_new_tokens=12, do_sample=False)[0].tolist()
    assert context == reference


def test_smollm2_trace_logits_equal_plain_forward(smol):
    trace = decoder.trace_text(smol, "Transformers attend to earlier tokens.")
    with torch.no_grad():
        plain = smol.model(torch.tensor(trace.token_ids)[None]).logits[0].numpy()
    assert np.abs(trace.logits - plain).max() <= TOL
    assert trace.hidden_states.shape[0] == 31 and trace.attentions.shape[:2] == (30, 9)


def test_smollm2_conversion_is_cached(smol):
    folder = embedded.smollm2_dir()
    assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()


@pytest.mark.parametrize("clip", audio.shipped_clips(), ids=lambda c: c["file"])
def test_whisper_transcribes_the_shipped_clips(whisper, clip):
    speech = audio.shipped_clip_speech(clip)
    encoded = seq2seq.encode_audio(whisper, speech.samples)
    text = whisper.tokenizer.decode(seq2seq.greedy_decode(whisper, encoded), skip_special_tokens=True).strip()
    assert text == clip["text"]


def test_whisper_decoder_trace_equals_plain_forward(whisper):
    speech = audio.speak("I like to read books about science.")
    features = seq2seq.audio_features(whisper, speech.samples)
    encoded = seq2seq.encode_features(whisper, features)
    assert encoded.trace.attentions is None  # 1500 x 1500 maps are not kept
    ids = np.concatenate([seq2seq.start_ids(whisper), [40, 588]])
    trace = seq2seq.trace(whisper, encoded, ids)
    assert whisper.model.config._attn_implementation == "eager"  # SDPA only for that encoder pass
    # Hugging Face's Whisper as it loads by default (SDPA attention): the explorer's audio encoder
    # pass uses SDPA too (no 1500 x 1500 maps), its decoder eager attention (maps kept).
    plain_model = AutoModelForSpeechSeq2Seq.from_pretrained(embedded.whisper_dir()).eval()
    assert plain_model.config._attn_implementation == "sdpa"
    with torch.no_grad():
        encoder_out = plain_model.get_encoder()(torch.tensor(features)[None]).last_hidden_state[0].numpy()
        plain = (
            plain_model(input_features=torch.tensor(features)[None], decoder_input_ids=torch.tensor(ids)[None])
            .logits[0]
            .numpy()
        )
    assert np.abs(encoded.last_hidden - encoder_out).max() <= TOL
    assert np.abs(trace.decoder.logits - plain).max() <= 1e-4
    assert trace.cross_attentions.shape == (4, 6, len(ids), 1500)
    assert np.allclose(trace.cross_attentions.sum(-1), 1.0, atol=1e-4)


def test_whisper_step_by_step_equals_generate(whisper):
    speech = audio.decode_audio_file((audio.SPEECH_DIR / "hello-whisper.wav").read_bytes())
    features = seq2seq.audio_features(whisper, speech.samples)
    ours = seq2seq.greedy_decode(whisper, seq2seq.encode_features(whisper, features))
    with torch.no_grad():
        reference = whisper.model.generate(input_features=torch.tensor(features)[None], max_new_tokens=64)[0].tolist()
    # generate() returns the start tokens too and may drop the end token; compare the text tokens
    text_tokens = lambda ids: [t for t in ids if t < whisper.tokenizer.eos_token_id]  # noqa: E731
    assert text_tokens(reference) == text_tokens(ours.tolist()) and len(text_tokens(ours.tolist())) > 5


def test_tiny_random_moe_routes_every_token():
    loaded = load_model("embedded:tiny-random-moe", device="cpu")
    assert "RANDOM" in loaded.note
    trace = moe.trace_text(loaded, "The cat sat on the mat.")
    assert trace.router.chosen.shape == (4, len(trace.tokens), 2)
    assert len(np.unique(trace.router.chosen)) > 2  # routes spread over several experts


def test_text_to_speech_speaks():
    # eSpeak NG's output can differ by a few samples between calls (its pauses carry state)
    a, b = audio.speak("Hello there."), audio.speak("Hello there.")
    assert abs(len(a.samples) - len(b.samples)) < 0.01 * len(a.samples) and 0.3 < a.seconds < 5
    assert np.abs(a.samples).max() > 0.1


def test_audio_errors_are_messages():
    with pytest.raises(audio.AudioError):
        audio.decode_audio_file(b"")
    with pytest.raises(audio.AudioError):
        audio.decode_audio_file(b"not audio at all")
    with pytest.raises(audio.AudioError):
        audio.prepare(np.zeros(16000, np.float32), 16000)
    with pytest.raises(audio.AudioError):
        audio.speak("   ")
