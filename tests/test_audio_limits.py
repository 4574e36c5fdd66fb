"""Uploaded audio is bounded before it is decoded (issue 26).

The uploader takes files of up to 20 MB (.streamlit/config.toml, maxUploadSize). A small file can still
declare hours of audio, a 1 Hz sample rate or many channels; decoding all of it first used to cost
hundreds of MB to GB. decode_audio_file reads the header, refuses absurd values in one plain sentence,
and decodes only the first 30 s that Whisper reads. Memory is measured in a fresh process per file
(resident memory, so libsndfile's own buffers count too); the seconds are printed, not asserted
(timing belongs to the benchmarks): run with -s to see them.
"""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from explorer import audio

ROOT = Path(__file__).resolve().parent.parent
MAX_GROWTH_MB = 200
FULL = int(audio.MAX_SECONDS * audio.SAMPLE_RATE)  # 480,000 samples: the 30 s Whisper reads


def _wav(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _constant_flac(seconds: int, rate: int, channels: int = 1) -> bytes:
    """Long but small: FLAC stores a constant signal in a few bytes per block."""
    buffer = io.BytesIO()
    block = np.full((rate * 10, channels), 0.1, np.float32)
    with soundfile.SoundFile(buffer, "w", rate, channels, format="FLAC", subtype="PCM_16") as file:
        left = seconds * rate
        while left:
            file.write(block[: min(left, len(block))])
            left -= min(left, len(block))
    return buffer.getvalue()


def _noise(frames: int, channels: int = 1) -> np.ndarray:
    return np.random.default_rng(0).integers(-8000, 8000, (frames, channels), dtype=np.int16)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile-audio")
    made = {
        "wav_1hz": _wav(_noise(8_000), 1),  # 16 KB declaring 8,000 s at 1 Hz
        "wav_384001hz": _wav(_noise(38_400), 384_001),
        "wav_9_channels": _wav(_noise(16_000, 9), 16_000),
        "wav_no_frames": _wav(np.zeros((0, 1), np.int16), 16_000),
        "wav_383999hz": _wav(_noise(383_999), 383_999),  # an allowed but odd rate: 1 s
        "flac_6000s": _constant_flac(6_000, 16_000),  # ~300 KB lasting 100 minutes
        "flac_384khz_8ch": _constant_flac(31, 384_000, 8),  # the most samples a header may ask for
        "wav_20mb": _wav(_noise(5_000_000, 2), 48_000),  # 20 MB of noise, 104 s at 48 kHz stereo
        "garbage": np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes(),
        "text": b"not audio at all",
    }
    assert len(made["wav_1hz"]) < 17_000 and len(made["flac_6000s"]) < 400_000
    assert 19_000_000 < len(made["wav_20mb"]) <= 20 * 1024 * 1024
    for name, data in made.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in made}


def _assert_plain(message: str) -> None:
    assert message[:1].isupper() and message.endswith("."), message
    for fragment in ("<", ">", "object at", "Error opening", "0x", "Traceback"):
        assert fragment not in message, message


@pytest.mark.parametrize(
    "name, words",
    [
        ("wav_1hz", "sample rate of 1 Hz"),
        ("wav_384001hz", "sample rate of 384,001 Hz"),
        ("wav_9_channels", "9 channels"),
        ("wav_no_frames", "no sound"),
        ("garbage", "could not be read as audio"),
        ("text", "could not be read as audio"),
    ],
)
def test_hostile_headers_are_refused_in_plain_words(files, name, words):
    with pytest.raises(audio.AudioError) as refused:
        audio.decode_audio_file(files[name].read_bytes())
    _assert_plain(str(refused.value))
    assert words in str(refused.value)


def test_empty_file_is_refused_in_plain_words():
    with pytest.raises(audio.AudioError) as refused:
        audio.decode_audio_file(b"")
    _assert_plain(str(refused.value))


@pytest.mark.parametrize("name, lasts", [("flac_6000s", "6,000 s"), ("wav_20mb", "104 s"), ("flac_384khz_8ch", "31 s")])
def test_long_files_decode_to_the_first_30_seconds(files, name, lasts):
    speech = audio.decode_audio_file(files[name].read_bytes())
    assert speech.samples.dtype == np.float32 and speech.samples.shape == (FULL,)
    assert speech.notices == (f"The audio lasts {lasts}; Whisper reads the first 30 s.",)
    assert 0.05 < np.abs(speech.samples).max() <= 1.0


def test_odd_rate_is_resampled_with_a_small_filter(files):
    speech = audio.decode_audio_file(files["wav_383999hz"].read_bytes())
    assert abs(len(speech.samples) - audio.SAMPLE_RATE) <= 2 and speech.notices == ()


def test_common_rates_are_resampled_exactly():
    tone = np.sin(np.arange(44_100) * 2 * np.pi * 440 / 44_100).astype(np.float32)
    for rate in (8_000, 11_025, 22_050, 32_000, 44_100, 48_000, 96_000):
        assert len(audio.resample(np.resize(tone, rate), rate)) == audio.SAMPLE_RATE


# One fresh interpreter per file: libraries imported and a small clip decoded first, then the peak
# resident set during the call (VmHWM, reset just before where the kernel allows it; otherwise the
# interpreter's whole peak, an upper bound) less the resident set just before the call.
# (Not ru_maxrss: after fork and exec it still counts the parent's pages.)
_MEASURE = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, scipy.signal, soundfile
from explorer import audio
audio.decode_audio_file(open(sys.argv[3], "rb").read())  # warm: lazy imports, libsndfile
data = open(sys.argv[2], "rb").read()
def status_mb(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
try:
    open("/proc/self/clear_refs", "w").write("5")  # resets VmHWM to the current resident set
except OSError:
    pass
before = status_mb("VmRSS:")
start = time.perf_counter()
try:
    result = len(audio.decode_audio_file(data).samples)
except audio.AudioError as error:
    result = str(error)
seconds = time.perf_counter() - start
print(json.dumps({"growth_mb": status_mb("VmHWM:") - before, "seconds": seconds, "result": result}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads resident memory from /proc (Linux)")
@pytest.mark.parametrize("name", ["wav_1hz", "wav_383999hz", "flac_6000s", "wav_20mb", "flac_384khz_8ch"])
def test_any_upload_costs_at_most_200_mb(files, name, tmp_path):
    warm = tmp_path / "warm.wav"
    warm.write_bytes(_wav(_noise(44_100), 44_100))
    run = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(ROOT), str(files[name]), str(warm)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    measured = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"\n{name}: +{measured['growth_mb']:.1f} MB, {measured['seconds']:.2f} s, {measured['result']}")
    assert measured["growth_mb"] <= MAX_GROWTH_MB
    if name != "wav_1hz":
        assert isinstance(measured["result"], int) and measured["result"] <= FULL
