"""A keyword-spotting data set made here: words spoken by espeak-ng in many voices, speeds
and pitches, mixed with generated background noise, turned into log-mel spectrograms.

    data = load(Config(per_word=150))    # x_train (N, 32, 16, 1) float32, y_train, x_test, y_test, norm

Deterministic for a seed (espeak-ng's output is, for one version of it; every random choice
here comes from numpy's seeded generator) and cached outside the clone
($TINYTRAIN_CACHE or ~/.cache/tinytrain, `kws-<hash of the config>.npz`). One espeak-ng call
speaks all the words of one voice setting, separated by pauses, and is cut at the pauses
(espeak's silence is exact zeros): 10 words cost one process start, not ten.

Features: 1 s at 16 kHz, 32 frames of 30 ms every 500 samples, 16 mel bands (60-7600 Hz),
log, then standardized with the mean and deviation of the pretraining data.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
ACCENTS = ("en", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "croak",
            "whisper", "klatt", "klatt2", "klatt3", "Andy", "Annie", "Alex", "Michael", "Steph",
            "Mr_Serious", "Tweaky", "Gene", "Jacky", "Lee", "Linda", "Paul", "Robert", "grandpa")
RATE = 16000
SAMPLES = RATE                       # 1 s
FRAME, HOP, NFFT = 480, 500, 512
FRAMES = 1 + (SAMPLES - FRAME) // HOP
MELS = 16
FORMAT_VERSION = 1                   # bump when the features change (the cache key)


@dataclass(frozen=True)
class Config:
    per_word: int = 150              # utterances per word and split
    test_per_word: int = 50
    seed: int = 0
    snr_db: tuple[float, float] = (5.0, 20.0)
    words: tuple[str, ...] = field(default=WORDS)

    def key(self) -> str:
        text = json.dumps({**asdict(self), "format": FORMAT_VERSION, "espeak": espeak_version()},
                          sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def espeak_version() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    return subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout.strip()


def cache_dir() -> Path:
    root = os.environ.get("TINYTRAIN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tinytrain")
    return Path(root)


# --- audio -----------------------------------------------------------------------------------

def speak(words, voice: str, speed: int, pitch: int) -> list[np.ndarray]:
    """One espeak-ng call: each word as float32 audio at 16 kHz, silence trimmed."""
    ssml = "<speak>" + '<break time="600ms"/>'.join(words) + "</speak>"
    proc = subprocess.run(["espeak-ng", "-m", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", ssml],
                          capture_output=True, check=True)
    with wave.open(io.BytesIO(proc.stdout)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768.0
    active = np.flatnonzero(np.abs(x) > 2.5e-4)
    if active.size == 0:
        return []
    gaps = np.flatnonzero(np.diff(active) > 0.25 * rate)
    starts = np.r_[active[0], active[gaps + 1]]
    ends = np.r_[active[gaps], active[-1]] + 1
    out = []
    for s, e in zip(starts, ends):
        seg = x[s:e]
        t = np.arange(0, len(seg) * RATE / rate) * rate / RATE       # resample (linear)
        out.append(np.interp(t, np.arange(len(seg)), seg).astype(np.float32))
    return out


def noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Background noise: white, pink, brown, or mains hum with harmonics, unit RMS."""
    kind = rng.integers(4)
    if kind == 3:
        t = np.arange(n) / RATE
        f0 = rng.choice([50.0, 60.0])
        x = sum(rng.uniform(0.2, 1.0) * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi))
                for k in range(1, 6)) + 0.1 * rng.standard_normal(n)
    else:
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.maximum(np.fft.rfftfreq(n, 1 / RATE), 20.0)
        spec = spec / f ** (0.5 * kind)             # 0: white, 1: pink (1/f power), 2: brown
        x = np.fft.irfft(spec, n)
    x = np.asarray(x, np.float64)
    return (x / (np.sqrt(np.mean(x * x)) + 1e-12)).astype(np.float32)


def place(rng: np.random.Generator, word: np.ndarray, snr_db) -> np.ndarray:
    """The word at a random place in 1 s, with noise at a random SNR, at a random level."""
    word = word[:SAMPLES]
    out = np.zeros(SAMPLES, np.float32)
    at = rng.integers(0, SAMPLES - len(word) + 1)
    out[at:at + len(word)] = word
    p_word = np.mean(word.astype(np.float64) ** 2) + 1e-12
    snr = rng.uniform(*snr_db)
    out += noise(rng, SAMPLES) * np.float32(np.sqrt(p_word / 10 ** (snr / 10)))
    return out * np.float32(rng.uniform(0.3, 1.0) / (np.abs(out).max() + 1e-9))


# --- features --------------------------------------------------------------------------------

def _mel_filters() -> np.ndarray:
    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)
    edges = hz(np.linspace(mel(60.0), mel(7600.0), MELS + 2))
    bins = np.fft.rfftfreq(NFFT, 1 / RATE)
    fb = np.zeros((MELS, len(bins)))
    for i in range(MELS):
        lo, mid, hi = edges[i:i + 3]
        fb[i] = np.clip(np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)), 0, None)
    return fb


MEL_FILTERS = _mel_filters()


def log_mel(audio: np.ndarray) -> np.ndarray:
    """(FRAMES, MELS) log-mel energies of 1 s of 16 kHz audio."""
    idx = np.arange(FRAME)[None, :] + HOP * np.arange(FRAMES)[:, None]
    frames = audio[idx] * np.hanning(FRAME)
    power = np.abs(np.fft.rfft(frames, NFFT)) ** 2
    return np.log(power @ MEL_FILTERS.T + 1e-6).astype(np.float32)


# --- the data set -------------------------------------------------------------------------------

def _voice_settings(rng: np.random.Generator, n: int):
    for _ in range(n):
        yield (f"{rng.choice(ACCENTS)}+{rng.choice(VARIANTS)}", int(rng.integers(110, 230)),
               int(rng.integers(15, 85)))


def _generate(cfg: Config) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(cfg.seed)
    out = {}
    for split, per_word in (("train", cfg.per_word), ("test", cfg.test_per_word)):
        feats, labels = [], []
        made = 0
        for voice, speed, pitch in _voice_settings(rng, 10 * per_word):
            if made == per_word:
                break
            words = speak(cfg.words, voice, speed, pitch)
            if len(words) != len(cfg.words):        # a voice that merged or split a word: skip it
                continue
            for label, w in enumerate(words):
                feats.append(log_mel(place(rng, w, cfg.snr_db)))
                labels.append(label)
            made += 1
        if made < per_word:
            raise RuntimeError(f"espeak-ng gave only {made} usable voice settings of {per_word}")
        out[f"x_{split}"] = np.stack(feats)[..., None]
        out[f"y_{split}"] = np.asarray(labels, np.int64)
    # standardize with the training data's statistics (one mean and deviation)
    mean, std = out["x_train"].mean(), out["x_train"].std()
    for split in ("train", "test"):
        out[f"x_{split}"] = ((out[f"x_{split}"] - mean) / std).astype(np.float32)
    out["norm"] = np.array([mean, std], np.float32)
    return out


def load(cfg: Config = Config()) -> dict[str, np.ndarray]:
    """The data set of `cfg`, from the cache or generated (and cached)."""
    path = cache_dir() / f"kws-{cfg.key()}.npz"
    if path.is_file():
        with np.load(path) as z:
            return dict(z)
    data = _generate(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **data)
    os.replace(tmp, path)
    return data
