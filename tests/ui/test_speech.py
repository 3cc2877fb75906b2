"""Spoken prompts through the real espeak-ng, written to a WAV file instead of a speaker."""

from __future__ import annotations

from pathlib import Path

from station.ui.ports import EspeakSpeaker


def test_espeak_speaks_spanish_prompt_to_a_wav(tmp_path: Path) -> None:
    wav = tmp_path / "prompt.wav"
    speaker = EspeakSpeaker(wav_path=str(wav))
    assert speaker.available
    speaker.say("Bienvenido. Registre su llegada para su cita.", "es")
    assert speaker.wait() == 0
    data = wav.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert len(data) > 20_000  # about a second and more of 22 kHz speech, not an empty file


def test_missing_binary_is_silent_not_a_crash() -> None:
    speaker = EspeakSpeaker("no-such-espeak-binary")
    assert speaker.available is False
    speaker.say("hello", "en")
    assert speaker.wait() is None
