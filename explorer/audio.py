"""Speech input for the encoder-decoder page: decoding audio files and text-to-speech.

Everything returns mono float32 samples in [-1, 1] at 16 kHz, the rate Whisper expects.
Text-to-speech uses the eSpeak NG library shipped in the ``espeakng-loader`` wheel,
called through ctypes (no system install needed).
"""

from __future__ import annotations

import ctypes
import io
import json
import threading
from dataclasses import dataclass
from fractions import Fraction
from math import ceil

import numpy as np

from explorer.catalogue import ASSETS

SAMPLE_RATE = 16_000
SPEECH_DIR = ASSETS / "speech"  # clips this project synthesised, listed in clips.json
MAX_SECONDS = 30.0  # Whisper reads one 30-second window

MIN_RATE, MAX_RATE = 4_000, 384_000  # telephone speech to the highest studio rate
MAX_CHANNELS = 8
MAX_RATIO_TERMS = 1_000  # resampling ratios are kept to terms this small (see resample)
UNREADABLE = "This file could not be read as audio (WAV, FLAC, OGG or MP3 are supported)."
_UNKNOWN_FRAMES = 2**62  # libsndfile reports an unknown length (some streams) as a huge count


class AudioError(ValueError):
    """Audio that cannot be used; the message is shown to the user."""


@dataclass(frozen=True)
class Speech:
    samples: np.ndarray  # [n] float32 at SAMPLE_RATE
    notices: tuple[str, ...] = ()

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def resample(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling. The ratio target/rate is approximated by a fraction whose terms are at
    most MAX_RATIO_TERMS (exact for every usual rate: 44.1 kHz is 160/441): an odd rate such as
    384,001 Hz would otherwise need a filter of millions of taps (hundreds of MB). The speed changes
    by at most 0.1%, which no one hears."""
    if rate == target:
        return samples.astype(np.float32)
    from scipy.signal import resample_poly  # here: scipy.signal takes a while to import, and most clips need none

    ratio = Fraction(target, rate)
    if max(ratio.numerator, ratio.denominator) > MAX_RATIO_TERMS:  # an odd rate: the nearest small fraction
        if ratio < 1:
            ratio = ratio.limit_denominator(MAX_RATIO_TERMS) or ratio
        else:
            ratio = 1 / ((1 / ratio).limit_denominator(MAX_RATIO_TERMS) or 1 / ratio)
    return resample_poly(samples, ratio.numerator, ratio.denominator).astype(np.float32)


def _seconds_notice(seconds: float | None) -> str:
    lasts = f"lasts {seconds:,.0f} s" if seconds is not None else "lasts longer"
    return f"The audio {lasts}; Whisper reads the first {MAX_SECONDS:.0f} s."


def prepare(samples: np.ndarray, rate: int, notices: tuple[str, ...] = ()) -> Speech:
    """Mono, 16 kHz, at most 30 s, peak-normalised if clipping."""
    notices = list(notices)
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if samples.size == 0 or not np.isfinite(samples).all():
        raise AudioError("The audio is empty or damaged.")
    samples = resample(samples, rate)
    if len(samples) > MAX_SECONDS * SAMPLE_RATE:
        if not notices:
            notices.append(_seconds_notice(len(samples) / SAMPLE_RATE))
        samples = samples[: int(MAX_SECONDS * SAMPLE_RATE)]
    peak = float(np.abs(samples).max())
    if peak < 1e-4:
        raise AudioError("The audio is silent.")
    if peak > 1.0:
        samples = samples / peak
    return Speech(samples=samples, notices=tuple(notices))


def _check_header(rate: int, channels: int, frames: int) -> None:
    """Refuse what no recording of speech declares, before decoding anything."""
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(
            f"This file declares a sample rate of {rate:,} Hz; "
            f"audio between {MIN_RATE:,} and {MAX_RATE:,} Hz is supported."
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(f"This file declares {channels:,} channels; at most {MAX_CHANNELS} are supported.")
    if frames <= 0:
        raise AudioError("The audio file holds no sound.")


def _read_start(file) -> tuple[np.ndarray, tuple[str, ...]]:
    """Mono float32 samples of the first MAX_SECONDS only, read a second at a time, so that memory is
    bounded by 30 s of one channel whatever the file declares; and the notice if there is more."""
    rate, channels, frames = file.samplerate, file.channels, file.frames
    _check_header(rate, channels, frames)
    limit = ceil(MAX_SECONDS * rate)
    mono = np.empty(min(frames, limit), np.float32)
    filled = 0
    while filled < len(mono):
        block = file.read(frames=min(rate, len(mono) - filled), dtype="float32", always_2d=True)
        if len(block) == 0:  # the header promised more than the file holds
            break
        mono[filled : filled + len(block)] = block[:, 0] if channels == 1 else block.mean(axis=1)
        filled += len(block)
    notices = ()
    if frames > limit:
        notices = (_seconds_notice(frames / rate if frames < _UNKNOWN_FRAMES else None),)
    return mono[:filled], notices


def decode_audio_file(data: bytes) -> Speech:
    """WAV, FLAC, OGG or MP3 bytes (whatever libsndfile reads) as 16 kHz mono speech.

    Only the header and the first 30 s are decoded (Whisper reads no more), so a short file that
    declares hours of audio, or an odd sample rate, costs no more than 30 s of one channel."""
    import soundfile  # here: libsndfile loads only on pages that handle audio

    if not data:
        raise AudioError("The audio file is empty.")
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as file:
            rate = file.samplerate
            samples, notices = _read_start(file)
    except AudioError:
        raise
    except Exception as error:  # soundfile raises LibsndfileError / RuntimeError / TypeError variants
        raise AudioError(UNREADABLE) from error  # its message names the BytesIO object: not for users
    return prepare(samples, rate, notices)


def encode_wav(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    import soundfile  # here: libsndfile loads only on pages that handle audio

    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


# --- eSpeak NG -------------------------------------------------------------------------

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE = 1
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_espeak_lock = threading.Lock()  # the library keeps global state: one synthesis at a time
_espeak: tuple | None = None  # (library, native sample rate)


def _espeak_library():
    global _espeak
    if _espeak is None:
        import espeakng_loader  # here: the speech library loads on first use only

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
        if rate <= 0:
            raise AudioError("eSpeak NG could not start.")
        _espeak = (lib, rate)
    return _espeak


def speak(text: str, voice: str = "en-us", words_per_minute: int = 150) -> Speech:
    """Speech for ``text`` from eSpeak NG, as 16 kHz mono samples."""
    text = (text or "").strip()
    if not text:
        raise AudioError("Type a sentence to speak.")
    if len(text) > 400:
        raise AudioError("Please keep the sentence under 400 characters (Whisper hears 30 seconds at most).")
    chunks: list[np.ndarray] = []

    def collect(wav, count, _events):
        if count > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    callback = _CALLBACK(collect)
    with _espeak_lock:
        lib, rate = _espeak_library()
        lib.espeak_SetSynthCallback(callback)
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise AudioError(f"eSpeak NG has no voice '{voice}'.")
        lib.espeak_SetParameter(_ESPEAK_RATE, int(words_per_minute), 0)
        encoded = text.encode("utf-8") + b"\0"
        lib.espeak_Synth(
            ctypes.c_char_p(encoded), ctypes.c_size_t(len(encoded)), 0, 0, 0, _ESPEAK_CHARS_UTF8, None, None
        )
        lib.espeak_Synchronize()
    if not chunks:
        raise AudioError("eSpeak NG produced no sound for this text.")
    samples = np.concatenate(chunks).astype(np.float32) / 32768.0
    return prepare(samples, rate)


def shipped_clips() -> list[dict]:
    return json.loads((SPEECH_DIR / "clips.json").read_text())["clips"]


def shipped_clip_speech(clip: dict) -> Speech:
    return decode_audio_file((SPEECH_DIR / clip["file"]).read_bytes())
