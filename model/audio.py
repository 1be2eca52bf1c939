"""Reading and writing audio: any file the recognizer is given becomes 16 kHz mono float32.

:func:`load_audio` reads every format libsndfile does (WAV and FLAC among them) in any integer
or floating-point sample format, mixes several channels down to one and resamples any rate to
:data:`SAMPLE_RATE`. Files it cannot use raise :class:`AudioError`, whose message is one line that
names the file, says what is wrong and, where there is one, how to fix it; ``zeroskip transcribe``
prints it and moves on to the next file.

Dimension letters
-----------------
``S``  samples (at :data:`SAMPLE_RATE` after loading)
``C``  channels of a file

Decisions
---------
* **Mixdown** is the mean of the channels (not the sum, which could clip; not the first channel,
  which may be the silent one).
* **Resampling** is polyphase (:func:`scipy.signal.resample_poly`) by the exact rational factor
  ``16000 / rate`` reduced by the gcd (44.1 kHz: up 160, down 441), with scipy's default
  Kaiser-windowed (beta 5) anti-aliasing FIR. The output has ``ceil(S_in * 16000 / rate)``
  samples and is computed in float64.
* **Range**: samples are clipped to ``[-1, 1]`` (float files may exceed full scale, and the
  resampling filter may overshoot it slightly). Integer files are scaled by libsndfile's
  convention, ``code / 2**(bits - 1)``, so 16-bit audio loads as ``code / 32768``, exactly.
* **Truncation**: libsndfile silently shortens a WAV whose ``data`` chunk is cut off, so
  :func:`load_audio` walks the RIFF chunks itself and compares the ``data`` chunk's declared
  size with the bytes present. FLAC (and other compressed formats) fail to decode when cut, or
  decode fewer frames than their header announces; both are reported as truncation.
* **Silence** is not an error of :func:`load_audio` (a silent file is a valid file); callers that
  need speech call :func:`check_not_silent`, which rejects a peak below ``-60 dBFS``
  (:data:`SILENCE_DBFS`).
"""

from __future__ import annotations

import math
import os
import re
import struct

import numpy as np
import soundfile as sf

__all__ = ["SAMPLE_RATE", "SILENCE_DBFS", "AudioError", "load_audio", "write_wav",
           "check_not_silent", "resample"]

#: The sample rate of everything downstream: the front end, the corpus, the examples.
SAMPLE_RATE = 16000

#: Peak level (dB relative to full scale) below which :func:`check_not_silent` rejects audio.
SILENCE_DBFS = -60.0

# First bytes of container formats libsndfile knows: a file starting with one of these that
# libsndfile cannot open is a damaged audio file, not "not an audio file".
_AUDIO_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"fLaC", b"OggS", b"FORM", b"ID3", b".snd", b"caff")


class AudioError(ValueError):
    """An audio file that cannot be used; ``str(err)`` is one user-facing line naming the file."""


def _one_line(text) -> str:
    """Collapse whitespace; drop libsndfile's "Error opening '<path>': " (the path is named)."""
    text = " ".join(str(text).split())
    return re.sub(r"^Error opening '.*?': ", "", text)


def _riff_truncation(path: str, size: int) -> tuple[int, int] | None:
    """``(declared, present)`` data bytes if ``path`` is a RIFF WAVE whose data is cut off.

    Walks the chunk list from offset 12. A ``data`` chunk whose declared size is larger than the
    bytes after its header is truncation; so is a chunk list that runs off the end of the file
    before any ``data`` chunk when the RIFF header declared more bytes than the file holds.
    Sizes ``0`` and ``0xFFFFFFFF`` mean "unknown" (streaming writers, RF64) and are not checked.
    Returns ``None`` for anything else (not RIFF, intact, or unknown sizes).
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return None
        end = "<" if head[:4] == b"RIFF" else ">"
        riff_size = struct.unpack(end + "I", head[4:8])[0]
        offset = 12
        for _ in range(10000):                    # a sane WAV has a handful of chunks
            f.seek(offset)
            chunk = f.read(8)
            if len(chunk) < 8:
                break
            cid, csize = chunk[:4], struct.unpack(end + "I", chunk[4:])[0]
            present = size - (offset + 8)
            if cid == b"data":
                if csize not in (0, 0xFFFFFFFF) and csize > present:
                    return csize, present
                return None
            offset += 8 + csize + (csize & 1)
        if riff_size not in (0, 0xFFFFFFFF) and riff_size + 8 > size:
            return riff_size + 8, size
        return None


def load_audio(path) -> np.ndarray:
    """Read an audio file as 16 kHz mono float32.

    Parameters
    ----------
    path : str or os.PathLike
        Any format libsndfile reads (WAV, FLAC, ...), any sample rate, any number of channels,
        integer or floating-point samples.

    Returns
    -------
    numpy.ndarray
        ``float32``, shape ``(S,)``, values in ``[-1, 1]``, at :data:`SAMPLE_RATE`.

    Raises
    ------
    AudioError
        One line naming ``path``: the file is missing, a directory, unreadable, empty (0 bytes),
        not an audio file, truncated or corrupt, holds no samples, or holds NaN/infinite samples.
    """
    name = os.fspath(path)
    if not os.path.exists(name):
        raise AudioError(f"{name}: no such file; check the path")
    if os.path.isdir(name):
        raise AudioError(f"{name} is a directory, not an audio file")
    try:
        size = os.path.getsize(name)
        if size == 0:
            raise AudioError(f"{name} is empty (0 bytes); it holds no audio")
        with open(name, "rb") as f:
            magic = f.read(4)
        cut = _riff_truncation(name, size)
    except OSError as e:
        raise AudioError(f"{name} cannot be read: {_one_line(e.strerror or e)}") from None
    if cut is not None:
        raise AudioError(f"{name} is truncated: its header declares {cut[0]} bytes but only "
                         f"{cut[1]} are present; re-export or re-copy the file")
    try:
        snd = sf.SoundFile(name)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        if magic.startswith(_AUDIO_MAGIC):
            raise AudioError(f"{name} is a damaged or truncated audio file "
                             f"(libsndfile: {_one_line(e)})") from None
        raise AudioError(f"{name} is not an audio file (libsndfile: {_one_line(e)}); "
                         f"expected WAV or FLAC") from None
    with snd:
        rate, declared = snd.samplerate, snd.frames
        try:
            data = snd.read(dtype="float64", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise AudioError(f"{name} is truncated or corrupt: decoding failed "
                             f"(libsndfile: {_one_line(e)})") from None
    if len(data) < declared:
        raise AudioError(f"{name} is truncated: its header declares {declared} frames but only "
                         f"{len(data)} could be decoded")
    if len(data) == 0 or data.shape[1] == 0:
        raise AudioError(f"{name} holds no audio (0 samples)")
    if not np.isfinite(data).all():
        raise AudioError(f"{name} holds NaN or infinite samples; it is corrupt")
    return resample(data.mean(axis=1), rate, SAMPLE_RATE)


def resample(audio, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling by the exact rational factor ``rate_out / rate_in``.

    Parameters
    ----------
    audio : array_like of float, shape ``(S,)``
    rate_in, rate_out : int
        Positive sample rates in Hz.

    Returns
    -------
    numpy.ndarray
        ``float32``, shape ``(ceil(S * rate_out / rate_in),)``, clipped to ``[-1, 1]``; the
        input itself (converted and clipped) when the rates are equal.
    """
    if int(rate_in) != rate_in or rate_in <= 0 or int(rate_out) != rate_out or rate_out <= 0:
        raise ValueError(f"resample: sample rates must be positive integers, "
                         f"not {rate_in} -> {rate_out}")
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"resample: audio must be one-dimensional (S,), not shape {x.shape}")
    if rate_in != rate_out:
        g = math.gcd(int(rate_in), int(rate_out))
        from scipy.signal import resample_poly   # imported here: scipy.signal takes ~1 s
        x = resample_poly(x, int(rate_out) // g, int(rate_in) // g)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def write_wav(path, audio, sample_rate: int = SAMPLE_RATE) -> None:
    """Write audio as a 16-bit PCM WAV file.

    Floating-point samples are scaled by ``32768``, rounded half to even and saturated to
    ``[-32768, 32767]`` (so full scale ``1.0`` becomes ``32767``); this is the inverse of
    :func:`load_audio`'s ``code / 32768``, and ``write_wav`` then :func:`load_audio` returns any
    audio whose samples are multiples of ``1/32768`` in ``[-1, 32767/32768]`` unchanged.
    ``int16`` samples are written as they are.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; its directory must exist.
    audio : array_like, shape ``(S,)`` or ``(S, C)``
        Floating-point samples in ``[-1, 1]`` (outside is clipped) or ``int16`` codes.
    sample_rate : int
        Positive rate in Hz written into the header; the samples are not resampled.
    """
    a = np.asarray(audio)
    if a.ndim not in (1, 2):
        raise ValueError(f"write_wav: audio must have shape (S,) or (S, C), not {a.shape}")
    if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"write_wav: sample_rate must be a positive integer, not {sample_rate}")
    if a.dtype == np.int16:
        codes = a
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ValueError("write_wav: audio holds NaN or infinite samples")
        codes = np.clip(np.round(a.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)
    else:
        raise ValueError(f"write_wav: audio must be floating point in [-1, 1] or int16, "
                         f"not {a.dtype}")
    sf.write(os.fspath(path), codes, int(sample_rate), subtype="PCM_16", format="WAV")


def check_not_silent(audio, path) -> None:
    """Raise :class:`AudioError` if ``audio``'s peak is below :data:`SILENCE_DBFS` (-60 dBFS).

    Parameters
    ----------
    audio : array_like of float, shape ``(S,)``
        Samples in ``[-1, 1]`` as :func:`load_audio` returns them.
    path : str or os.PathLike
        The file the audio came from, named in the message.
    """
    a = np.asarray(audio, dtype=np.float64)
    peak = float(np.max(np.abs(a))) if a.size else 0.0
    if peak < 10.0 ** (SILENCE_DBFS / 20.0):
        raise AudioError(f"{os.fspath(path)} is silent (peak below {SILENCE_DBFS:.0f} dBFS); "
                         f"there is nothing to transcribe")
