"""Make a persona from your own portrait, and see it speak before you go live.

Run it from the repository root::

    python -m examples.own_portrait me.jpg --name Ada
    python -m examples.own_portrait me.jpg --name Ada --folder my-personas \\
        --prompt "You are Ada, a patient maths tutor. Answer in one or two short sentences."

It checks the portrait first (one front-facing face, big enough: the same
check as ``facetalk persona prepare``), so a photo that cannot work is
refused before anything is written. Then it copies the photo next to a new
persona file, ``FOLDER/<id>.yaml``, and renders the greeting to
``FOLDER/<id>-preview.mp4`` with a contact sheet of its frames.

Use the persona with ``facetalk demo --persona FOLDER/<id>.yaml``, or in your
own agent with ``facetalk.AvatarSession(persona="FOLDER/<id>.yaml")``. Edit
the YAML for the voice and expression (see ``configs/persona.yaml``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import yaml

from facetalk.audio import resample_int16
from facetalk.avatar.audio import SAMPLE_RATE
from facetalk.avatar.offline import render_video
from facetalk.avatar.persona import prepare_persona
from facetalk.avatar.speech import speak
from facetalk.config import load_persona
from facetalk.errors import FaceTalkError

__all__ = ["main", "make_persona"]


def make_persona(portrait: Path, name: str, folder: Path, prompt: str | None = None) -> Path:
    """Check ``portrait``, write a persona named ``name`` into ``folder``, render its greeting.

    Returns the persona file. Raises :class:`FaceTalkError` (nothing written)
    if the portrait has no usable face or the persona file already exists.
    """
    persona_id = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "persona"
    persona_path = folder / f"{persona_id}.yaml"
    if persona_path.exists():
        raise FaceTalkError(f"{persona_path} already exists", hint="pick another --name or --folder, or delete it")
    pack = prepare_persona(portrait)  # raises PortraitError before anything is written
    for note in pack.notes:
        print(f"note: {note}", file=sys.stderr)

    copied = folder / "portraits" / f"{persona_id}{portrait.suffix.lower()}"
    copied.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(portrait, copied)
    persona = {
        "kind": "persona",
        "name": name,
        "portrait": str(copied.relative_to(folder)),
        "voice": "joe-us-medium",
        "system_prompt": prompt or f"You are {name}. Answer in one or two short spoken sentences.",
        "greeting": f"Hi, I'm {name}. What would you like to talk about?",
    }
    persona_path.write_text(yaml.safe_dump(persona, sort_keys=False))
    config = load_persona(persona_path)  # the same validation every command applies

    speech = speak(config.greeting)
    preview = folder / f"{persona_id}-preview.mp4"
    result = render_video(
        pack,
        resample_int16(speech.samples, speech.sample_rate, SAMPLE_RATE),
        preview,
        expression=config.expression,
        phonemes=speech.phonemes,
        contact_sheet=folder / f"{persona_id}-preview.png",
        tail_s=0.5,
    )
    print(f"persona: {persona_path}")
    print(f"preview: {result.video} ({result.seconds:.1f} s); frames: {result.contact_sheet}")
    return persona_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("portrait", type=Path, help="a head-and-shoulders photo (PNG, JPEG)")
    parser.add_argument("--name", required=True, help="the avatar's name, e.g. Ada")
    parser.add_argument("--folder", type=Path, default=Path("my-personas"))
    parser.add_argument("--prompt", help="the system prompt (default: a short generic one)")
    args = parser.parse_args(argv)
    try:
        path = make_persona(args.portrait, args.name, args.folder, args.prompt)
    except FaceTalkError as e:
        raise SystemExit(f"error: {e}") from e
    print(f"talk to it: facetalk demo --persona {path}")


if __name__ == "__main__":
    main()
