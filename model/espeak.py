"""eSpeak NG through ctypes: deterministic speech synthesis, one forked process per utterance.

The library and its voice data come from the PyPI package ``espeakng-loader`` (no system install).
Its C API (``speak_lib.h``) is used in ``AUDIO_OUTPUT_SYNCHRONOUS`` mode with a synth callback that
collects the 16-bit samples at 22050 Hz.

Why a server process that forks per utterance
---------------------------------------------
eSpeak NG keeps synthesis state in process globals that no API call resets: the pitch-flutter
phase, the automatic gain, the glottal cycle counter, the breath-noise generator (libc ``rand``).
So the same text with the same voice comes out slightly different depending on what the process
synthesized before, and a corpus rendered by a pool of workers would depend on how the work was
scheduled. :class:`Espeak` therefore starts a small server process (standard library only, about
10 MB) that loads and initializes the library once and never synthesizes itself; each request
forks a child that starts from exactly that pristine state, seeds eSpeak's generators
(``espeak_ng_SetRandSeed`` and libc ``srand``) with the request's seed, synthesizes, pipes the
samples back and exits. The output depends only on (text, voice, rate, pitch, range, seed): the
same request gives byte-identical samples in any process, in any order. Forking the lean server
costs about a millisecond, far less than synthesis itself; a crash or hang inside eSpeak kills
only that child and becomes an :class:`EspeakError`.

The library is not thread-safe: one :class:`Espeak` per thread (each owns its own server).

Voices
------
A voice name is ``LANGUAGE`` or ``LANGUAGE+VARIANT``: ``LANGUAGE`` one of :meth:`Espeak.languages`
(the English voices, named after their voice files: ``en`` (British), ``en-us``, ``en-us-nyc``,
``en-gb-x-rp``, ``en-gb-scotland``, ``en-gb-x-gbclan``, ``en-gb-x-gbcwmd``, ``en-029``),
``VARIANT`` the file name of a voice variant in ``espeak-ng-data/voices/!v`` (``f3``, ``m2``,
``klatt4``, ``Annie``, ...; see :meth:`Espeak.variants`). Unknown names raise :class:`EspeakError`
rather than silently falling back to a default voice as eSpeak itself does.

This module imports only the standard library at module level (the server runs it as a script);
:meth:`Espeak.synthesize` imports numpy when called.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass

__all__ = ["Espeak", "EspeakError", "Language", "Variant", "ESPEAK_SAMPLE_RATE", "RATE_RANGE",
           "PITCH_RANGE"]

#: Sample rate of eSpeak NG's output (Hz); checked against ``espeak_Initialize``'s answer.
ESPEAK_SAMPLE_RATE = 22050
#: Speaking rates eSpeak accepts (words per minute; 175 is its default).
RATE_RANGE = (80, 450)
#: Range of the base-pitch and pitch-range parameters (50 is eSpeak's default for both).
PITCH_RANGE = (0, 100)

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4
_INITIALIZE_DONT_EXIT = 0x8000  # return an error instead of exit() when the data is missing

# wire format: request  = <I length> + JSON
#              response = <B kind> <I length> + payload
_KIND_JSON, _KIND_PCM, _KIND_ERROR = 0, 1, 2
_CHILD_TIMEOUT_S = 120

#: Language voices left out of :meth:`Espeak.languages`: the Shavian-alphabet voice is a script
#: for the same British English, not an accent.
_EXCLUDED_LANGUAGES = ("en-shaw",)


class EspeakError(RuntimeError):
    """eSpeak NG could not be loaded, or refused or failed a request (the message says which)."""


@dataclass(frozen=True)
class Language:
    """An English language voice: ``name`` as passed to :meth:`Espeak.synthesize` (``"en-us"``,
    the voice file's name in lowercase),
    ``description`` from its voice file (``"English (America)"``) and its file ``identifier``."""
    name: str
    description: str
    identifier: str


@dataclass(frozen=True)
class Variant:
    """A voice variant: ``name`` as used after ``+`` (``"f3"``), its ``description`` from the
    variant file (``"female3"``) and ``gender`` (``"male"``, ``"female"`` or ``""``)."""
    name: str
    description: str
    gender: str


# -- the ctypes binding (used in the server process only) ------------------------------------

class _EspeakVoice(ctypes.Structure):
    # speak_lib.h: espeak_VOICE. ``languages`` is a list of (priority byte, string) pairs, so it
    # is read as raw bytes, not as a NUL-terminated char*.
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_void_p),
                ("identifier", ctypes.c_char_p), ("gender", ctypes.c_ubyte),
                ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte), ("xx1", ctypes.c_ubyte),
                ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.c_void_p)


def _voice_languages(ptr: int) -> list[str]:
    """Decode an espeak_VOICE ``languages`` field: (priority byte, NUL-terminated name)*, NUL."""
    raw = ctypes.cast(ptr, ctypes.POINTER(ctypes.c_ubyte))
    out, i = [], 0
    while raw[i] != 0:
        i += 1  # priority byte
        start = i
        while raw[i] != 0:
            i += 1
        out.append(bytes(raw[start:i]).decode("utf-8", "replace"))
        i += 1
    return out


class _Library:
    """The loaded, initialized eSpeak NG library (server side)."""

    def __init__(self, library: str, data: str):
        lib = ctypes.CDLL(library)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_EspeakVoice)]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_EspeakVoice))
        lib.espeak_GetCurrentVoice.restype = ctypes.POINTER(_EspeakVoice)
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.lib = lib
        self.libc = ctypes.CDLL(None)
        self.sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode(),
                                                 _INITIALIZE_DONT_EXIT)
        if self.sample_rate != ESPEAK_SAMPLE_RATE:
            raise EspeakError(f"espeak_Initialize returned {self.sample_rate} (expected "
                              f"{ESPEAK_SAMPLE_RATE} Hz); is {data!r} an espeak-ng-data directory?")
        self.chunks: list[bytes] = []

        def collect(wav, n, _events):
            if wav and n > 0:
                self.chunks.append(ctypes.string_at(wav, 2 * n))
            return 0

        self._callback = _SynthCallback(collect)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self.version = lib.espeak_Info(None).decode()
        self.languages = self._list_languages()
        self.variants = self._list_variants()
        self._language_ids = {v.name: v.identifier for v in self.languages}
        self._variant_names = {v.name for v in self.variants}

    def _list(self, spec) -> list[_EspeakVoice]:
        arr = self.lib.espeak_ListVoices(spec)
        out, i = [], 0
        while arr[i]:
            out.append(arr[i].contents)
            i += 1
        return out

    def _list_languages(self) -> list[Language]:
        out = []
        for v in self._list(None):
            langs = _voice_languages(v.languages)
            if not langs or not (langs[0] == "en" or langs[0].startswith("en-")):
                continue
            if langs[0] in _EXCLUDED_LANGUAGES:
                continue
            # espeak_SetVoiceByName matches a voice file's name, case-insensitively
            ident = v.identifier.decode()
            out.append(Language(ident.rsplit("/", 1)[-1].lower(), v.name.decode(), ident))
        return sorted(out, key=lambda v: v.name)

    def _list_variants(self) -> list[Variant]:
        spec = _EspeakVoice()
        key = ctypes.create_string_buffer(b"variant")
        spec.languages = ctypes.cast(key, ctypes.c_void_p)
        out = []
        for v in self._list(ctypes.byref(spec)):
            ident = v.identifier.decode()
            name = ident.split("/", 1)[1] if "/" in ident else ident
            gender = {1: "male", 2: "female"}.get(v.gender, "")
            out.append(Variant(name, v.name.decode(), gender))
        return sorted(out, key=lambda v: v.name.lower())

    def check_voice(self, voice: str) -> None:
        language, _, variant = voice.partition("+")
        if language not in self._language_ids:
            raise EspeakError(f"unknown eSpeak language voice {language!r} in {voice!r}; "
                              f"English voices: {', '.join(sorted(self._language_ids))}")
        if variant and variant not in self._variant_names:
            raise EspeakError(f"unknown eSpeak voice variant {variant!r} in {voice!r}; "
                              f"variants: {', '.join(sorted(self._variant_names))}")

    def synthesize(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int,
                   seed: int) -> bytes:
        """Synthesize in *this* process (the forked child): voice, parameters, seeds, text."""
        lib = self.lib
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise EspeakError(f"espeak_SetVoiceByName({voice!r}) failed")
        params = ((_PARAM_RATE, rate), (_PARAM_PITCH, pitch), (_PARAM_RANGE, pitch_range))
        for param, value in params:
            if lib.espeak_SetParameter(param, int(value), 0) != 0:
                raise EspeakError(f"espeak_SetParameter({param}, {value}) failed")
        lib.espeak_ng_SetRandSeed(seed)
        self.libc.srand(ctypes.c_uint(seed & 0xFFFFFFFF))
        data = text.encode("utf-8")
        self.chunks.clear()
        status = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None,
                                  None)
        if status != 0:
            raise EspeakError(f"espeak_Synth returned error {status} for {text[:60]!r}")
        return b"".join(self.chunks)


# -- the server --------------------------------------------------------------------------------

def _read_exact(fd: int, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        b = os.read(fd, n - got)
        if not b:
            break
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _respond(fd: int, kind: int, payload: bytes) -> None:
    _write_all(fd, struct.pack("<BI", kind, len(payload)) + payload)


def _synthesize_forked(lib: _Library, req: dict) -> tuple[int, bytes]:
    """Fork; the child synthesizes ``req`` from the pristine state and pipes the result back."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        status = 0
        try:
            os.close(r)
            signal.alarm(_CHILD_TIMEOUT_S)
            try:
                pcm = lib.synthesize(req["text"], req["voice"], req["rate"], req["pitch"],
                                     req["range"], req["seed"])
                _write_all(w, struct.pack("<BI", _KIND_PCM, len(pcm)) + pcm)
            except Exception as e:  # noqa: BLE001 - reported to the client
                msg = f"{type(e).__name__}: {e}".encode()
                _write_all(w, struct.pack("<BI", _KIND_ERROR, len(msg)) + msg)
            os.close(w)
        except BaseException:  # noqa: BLE001 - never return into the server loop
            status = 1
        finally:
            os._exit(status)
    os.close(w)
    head = _read_exact(r, 5)
    kind, length = struct.unpack("<BI", head) if len(head) == 5 else (None, 0)
    payload = _read_exact(r, length)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if kind is None or len(payload) != length:
        if os.WIFSIGNALED(status):
            why = f"killed by signal {os.WTERMSIG(status)}"
            if os.WTERMSIG(status) == signal.SIGALRM:
                why += f" (no result within {_CHILD_TIMEOUT_S} s)"
        else:
            why = f"exit status {os.WEXITSTATUS(status)}"
        return _KIND_ERROR, (f"eSpeak synthesis process died ({why}) on voice "
                             f"{req['voice']!r}, text {req['text'][:60]!r}").encode()
    return kind, payload


def _serve(library: str, data: str) -> None:
    """Server loop on stdin/stdout (see the module docstring)."""
    fin, fout = sys.stdin.fileno(), sys.stdout.fileno()
    try:
        lib = _Library(library, data)
    except Exception as e:  # noqa: BLE001
        _respond(fout, _KIND_ERROR, f"{type(e).__name__}: {e}".encode())
        return
    hello = {"version": lib.version, "sample_rate": lib.sample_rate, "library": library,
             "data": data, "languages": [vars(v) for v in lib.languages],
             "variants": [vars(v) for v in lib.variants]}
    _respond(fout, _KIND_JSON, json.dumps(hello).encode())
    while True:
        head = _read_exact(fin, 4)
        if len(head) < 4:
            return
        (n,) = struct.unpack("<I", head)
        req = json.loads(_read_exact(fin, n))
        if req.get("op") == "quit":
            return
        try:
            lib.check_voice(req["voice"])
        except EspeakError as e:
            _respond(fout, _KIND_ERROR, str(e).encode())
            continue
        kind, payload = _synthesize_forked(lib, req)
        _respond(fout, kind, payload)


# -- the client --------------------------------------------------------------------------------

def _default_paths() -> tuple[str, str]:
    try:
        import espeakng_loader
    except ImportError:
        raise EspeakError("the Python package 'espeakng-loader' is not installed; pip install "
                          "espeakng-loader (it ships eSpeak NG and its voice data)") from None
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


class Espeak:
    """A handle on an eSpeak NG server process (see the module docstring).

    Parameters
    ----------
    library, data : str, optional
        Paths of ``libespeak-ng.so`` and of the ``espeak-ng-data`` directory; default: the ones
        inside the ``espeakng-loader`` package.

    Use as a context manager, or call :meth:`close`. Not thread-safe: one instance per thread.
    """

    def __init__(self, *, library: str | None = None, data: str | None = None):
        if library is None or data is None:
            dlib, ddata = _default_paths()
            library, data = library or dlib, data or ddata
        if not os.path.isfile(os.path.join(data, "phontab")):
            raise EspeakError(f"{data!r} is not an espeak-ng-data directory (no phontab); "
                              f"reinstall espeakng-loader or pass data=")
        if not os.path.isfile(library):
            raise EspeakError(f"no eSpeak NG library at {library!r}; reinstall espeakng-loader "
                              f"or pass library=")
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            [sys.executable, "-S", "-E", os.path.abspath(__file__), "--serve", library, data],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, bufsize=0)
        self._lock = threading.Lock()
        kind, payload = self._receive()
        if kind != _KIND_JSON:
            self.close()
            raise EspeakError(f"eSpeak NG failed to start: {payload.decode(errors='replace')}")
        hello = json.loads(payload)
        self.version: str = hello["version"]
        self.sample_rate: int = hello["sample_rate"]
        self.library: str = hello["library"]
        self.data: str = hello["data"]
        self._languages = [Language(**v) for v in hello["languages"]]
        self._variants = [Variant(**v) for v in hello["variants"]]

    # -- plumbing --
    def _receive(self) -> tuple[int, bytes]:
        out = self._proc.stdout
        head = out.read(5)
        if head is None or len(head) < 5:
            self._stderr.seek(0)
            err = self._stderr.read().decode(errors="replace").strip()
            raise EspeakError("the eSpeak NG server process exited unexpectedly"
                              + (f": {err[-2000:]}" if err else ""))
        kind, length = struct.unpack("<BI", head)
        chunks, got = [], 0
        while got < length:
            b = out.read(length - got)
            if not b:
                raise EspeakError("the eSpeak NG server process exited in the middle of a reply")
            chunks.append(b)
            got += len(b)
        return kind, b"".join(chunks)

    def _request(self, req: dict) -> tuple[int, bytes]:
        if self._proc is None:
            raise EspeakError("this Espeak instance is closed; create a new one")
        data = json.dumps(req).encode()
        with self._lock:
            try:
                self._proc.stdin.write(struct.pack("<I", len(data)) + data)
                self._proc.stdin.flush()
            except BrokenPipeError:
                raise EspeakError("the eSpeak NG server process is gone") from None
            return self._receive()

    # -- API --
    def languages(self) -> list[Language]:
        """The English language voices, sorted by name."""
        return list(self._languages)

    def variants(self) -> list[Variant]:
        """All voice variants (``espeak-ng-data/voices/!v``), sorted by name."""
        return list(self._variants)

    def synthesize(self, text: str, voice: str = "en-us", *, rate: int = 175, pitch: int = 50,
                   pitch_range: int = 50, seed: int = 0):
        """Speak ``text`` and return the samples.

        Parameters
        ----------
        text : str
            UTF-8 text, spoken as eSpeak reads it (plain text, no SSML, no phoneme input).
        voice : str
            ``LANGUAGE`` or ``LANGUAGE+VARIANT`` (see the module docstring).
        rate : int
            Words per minute, within :data:`RATE_RANGE`.
        pitch, pitch_range : int
            Base pitch and pitch range, within :data:`PITCH_RANGE` (50 = the voice's default).
        seed : int
            Seed of eSpeak's noise generators; same arguments → byte-identical samples.

        Returns
        -------
        numpy.ndarray
            int16 samples ``(S,)`` at :data:`ESPEAK_SAMPLE_RATE` Hz (mono).
        """
        import numpy as np

        if not isinstance(text, str) or not text.strip():
            raise EspeakError(f"nothing to say: text is {text!r}")
        if not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
            raise EspeakError(f"rate {rate} is outside eSpeak's {RATE_RANGE[0]}-{RATE_RANGE[1]} "
                              f"words per minute")
        for name, value in (("pitch", pitch), ("pitch_range", pitch_range)):
            if not PITCH_RANGE[0] <= value <= PITCH_RANGE[1]:
                raise EspeakError(f"{name} {value} is outside {PITCH_RANGE[0]}-{PITCH_RANGE[1]}")
        kind, payload = self._request({"op": "synth", "text": text, "voice": voice,
                                       "rate": int(rate), "pitch": int(pitch),
                                       "range": int(pitch_range), "seed": int(seed) & 0x7FFFFFFF})
        if kind == _KIND_ERROR:
            raise EspeakError(payload.decode(errors="replace"))
        return np.frombuffer(payload, dtype="<i2").astype(np.int16)

    def close(self) -> None:
        """Stop the server process (idempotent)."""
        proc, self._proc = getattr(self, "_proc", None), None
        if proc is None:
            return
        try:
            data = json.dumps({"op": "quit"}).encode()
            proc.stdin.write(struct.pack("<I", len(data)) + data)
            proc.stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        self._stderr.close()

    def __enter__(self) -> "Espeak":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--serve":
    _serve(sys.argv[2], sys.argv[3])
