"""espeak-ng through its C library (ctypes): audio plus phone and word events with positions.

The command-line tool cannot report where each phone starts in the audio; the C API can
(``espeakEVENT_PHONEME`` / ``espeakEVENT_WORD`` with ``audio_position`` in ms).
"""
from __future__ import annotations

import array
import ctypes
import ctypes.util
from dataclasses import dataclass

import numpy as np

_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_POS_CHARACTER = 1
_CHARS_AUTO = 0
_RATE, _PITCH = 1, 3


class _Id(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _Id)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


@dataclass
class EspeakUtterance:
    samples: np.ndarray  # int16 at ``sample_rate``
    sample_rate: int
    phones: list[tuple[float, str]]  # (start seconds, espeak phoneme mnemonic)
    words: list[tuple[float, int, int]]  # (start seconds, char offset (1-based), char length)


class Espeak:
    """One initialised libespeak-ng per process (the library keeps global state)."""

    _lib = None
    _sr = None

    def __init__(self):
        if Espeak._lib is None:
            name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
            try:
                lib = ctypes.CDLL(name)
            except OSError as e:
                raise RuntimeError(f"libespeak-ng not found ({e}); apt-get install libespeak-ng1") from None
            sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INIT_PHONEME_EVENTS)
            if sr <= 0:
                raise RuntimeError("espeak_Initialize failed")
            Espeak._lib, Espeak._sr = lib, sr
        self.lib = Espeak._lib
        self.sample_rate = Espeak._sr
        self._pcm = array.array("h")
        self._events = []
        self._cb = _CALLBACK(self._on_audio)  # keep a reference: ctypes must not free it
        self.lib.espeak_SetSynthCallback(self._cb)

    def _on_audio(self, wav, n, events):
        if n > 0:
            self._pcm.extend(ctypes.cast(wav, ctypes.POINTER(ctypes.c_short * n)).contents)
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            e = events[i]
            if e.type == _EVENT_PHONEME:
                self._events.append(("ph", e.audio_position, e.id.string.decode("ascii", "replace")))
            elif e.type == _EVENT_WORD:
                self._events.append(("wd", e.audio_position, e.text_position, e.length))
            i += 1
        return 0

    def synth(self, text: str, voice: str = "en-us", rate: int = 160, pitch: int = 50) -> EspeakUtterance:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"unknown espeak-ng voice {voice!r}")
        self.lib.espeak_SetParameter(_RATE, int(rate), 0)
        self.lib.espeak_SetParameter(_PITCH, int(pitch), 0)
        self._pcm = array.array("h")
        self._events = []
        data = text.encode() + b"\0"
        self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_AUTO, None, None)
        self.lib.espeak_Synchronize()
        phones = [(ev[1] / 1000.0, ev[2]) for ev in self._events if ev[0] == "ph"]
        words = [(ev[1] / 1000.0, ev[2], ev[3]) for ev in self._events if ev[0] == "wd"]
        return EspeakUtterance(np.frombuffer(self._pcm.tobytes(), dtype=np.int16).copy(),
                               self.sample_rate, phones, words)

    def phonemes(self, word: str, voice: str) -> list[str]:
        """espeak-ng's phoneme mnemonics for ``word`` in ``voice`` (no audio; stress marks removed)."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"unknown espeak-ng voice {voice!r}")
        fn = self.lib.espeak_TextToPhonemes
        fn.restype = ctypes.c_char_p
        fn.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        buf = ctypes.create_string_buffer(word.encode())
        ptr = ctypes.c_void_p(ctypes.addressof(buf))
        out = fn(ctypes.byref(ptr), _CHARS_AUTO, ord(" ") << 8)  # bits 8-23: the separator
        return [p.strip("',") for p in (out or b"").decode("ascii", "replace").split() if p.strip("',")]
