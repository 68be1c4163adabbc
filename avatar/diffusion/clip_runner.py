"""Clips of a few fixed lengths, prepared once when the engine starts: CUDA graphs on a GPU, a warm-up on the CPU.

The runtime renders clips of 1, 2, 4, 8 (and 16) frames: the first clip of a
segment is one frame and later ones double, up to ``max_clip_frames``
(:func:`clip_lengths`). A clip of another length (the end of a segment) is
padded to the next of these lengths and trimmed after
decoding, so the denoiser and the decoder only ever see these shapes. Per
length, :class:`ClipRunner` owns the input buffers and, on CUDA, captures the
denoising loop and the decode as two CUDA graphs at start-up; a clip is then
one host→device copy of its audio, one noise draw on the device and two graph
replays, with nothing read back until the frames leave the engine.

Streams: on CUDA, denoising and decoding run on two streams (or two GPUs), so
the decode of clip N overlaps the denoising of clip N+1 when two threads feed
them (:mod:`.parallel`, and the runtime's clip in flight). A clip's latents carry
a CUDA event the decode waits for.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ...errors import FaceTalkError
from ..labels import Label
from .pipeline import ClipInputs, ReferenceState, TalkingFacePipeline

__all__ = ["ClipAudio", "ClipLatents", "ClipRunner", "clip_lengths"]


def clip_lengths(max_clip_frames: int) -> tuple[int, ...]:
    """The lengths the runtime renders and a config captures: one frame first, then doubling, the last one
    capped at ``max_clip_frames`` (the runtime's ``min(2 * size, max_clip_frames)``; 8 → 1, 2, 4, 8)."""
    lengths = [1]
    while lengths[-1] < max_clip_frames:
        lengths.append(min(2 * lengths[-1], max_clip_frames))
    return tuple(lengths)


@dataclass
class ClipAudio:
    """A clip's audio windows, padded to a captured length.

    Attributes:
        windows: ``(L, window, 4)`` float32, ``L`` a captured length; the last window repeats.
        frames: the clip's real frame count ``F <= L``.
    """

    windows: np.ndarray
    frames: int


@dataclass
class ClipLatents:
    """A denoised clip on its way to the decoder.

    Attributes:
        latents: ``(1, C, L, h, w)`` float32 on the denoising device.
        frames: the real frame count (the rest is padding).
        ready: on CUDA, recorded when the latents are complete; the decode waits for it.
    """

    latents: torch.Tensor
    frames: int
    ready: torch.cuda.Event | None = None


@contextlib.contextmanager
def _on(stream: torch.cuda.Stream | None) -> Iterator[None]:
    """Run the block's device work on ``stream``, after what the caller had queued on its own stream."""
    if stream is None:
        yield
        return
    stream.wait_stream(torch.cuda.current_stream(stream.device))
    with torch.cuda.stream(stream):
        yield


def _capture(run: Callable[[], torch.Tensor], stream: torch.cuda.Stream) -> Callable[[], torch.Tensor]:
    """``run`` captured as a CUDA graph on ``stream``; the returned function replays it on the current stream."""
    stream.wait_stream(torch.cuda.current_stream(stream.device))
    with torch.cuda.stream(stream):
        run()  # lazy initialisations (cuBLAS handles, workspaces) must happen outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        output = run()

    def replay() -> torch.Tensor:
        graph.replay()
        return output

    return replay


class ClipRunner:
    """Runs the pipeline's denoise and decode for a fixed set of clip lengths.

    Args:
        pipeline: the engine's pipeline.
        reference: the reference state; it is kept in place (:meth:`set_reference` copies into it).
        lengths: the clip lengths to prepare (see :func:`clip_lengths`).
        graphs: capture CUDA graphs (only on CUDA devices; the CPU runs eagerly after a warm-up).
    """

    def __init__(self, pipeline: TalkingFacePipeline, reference: ReferenceState, *, lengths: tuple[int, ...],
                 graphs: bool) -> None:
        self.pipeline, self.reference, self.lengths = pipeline, reference, lengths
        self.graphs = graphs and pipeline.device.type == "cuda"
        self._denoise_stream = torch.cuda.Stream(pipeline.device) if pipeline.device.type == "cuda" else None
        self._decode_stream = (torch.cuda.Stream(pipeline.decode_device)
                               if pipeline.decode_device.type == "cuda" else None)
        self._inputs: dict[int, ClipInputs] = {}
        self._latents: dict[int, torch.Tensor] = {}
        self._denoise: dict[int, Callable[[], torch.Tensor]] = {}
        self._decode: dict[int, Callable[[], torch.Tensor]] = {}
        self.startup_s = 0.0

    def length_for(self, frames: int) -> int:
        """The captured length a clip of ``frames`` frames runs at (the engine's one clip-length check)."""
        for length in self.lengths:
            if 1 <= frames <= length:
                return length
        raise FaceTalkError(f"a clip of {frames} frames does not fit the captured clip lengths "
                            f"{', '.join(map(str, self.lengths))}",
                            hint=f"render 1..{self.lengths[-1]} frames per clip (pass max_clip_frames="
                                 f"{self.lengths[-1]} to the runtime)")

    def start(self) -> float:
        """Capture (CUDA) or warm up (CPU) every length; returns and keeps the seconds it took."""
        start = time.perf_counter()
        pipeline, generator = self.pipeline, torch.Generator(self.pipeline.device).manual_seed(0)
        c, h = pipeline.config.vae["latent_channels"], pipeline.config.latent_size
        for length in self.lengths:
            inputs = self._inputs[length] = pipeline.clip_inputs(length)
            pipeline.fill(inputs, np.zeros(tuple(inputs.windows.shape), np.float32), Label.IDLE,
                          self.reference_motion(), generator)
            latents = self._latents[length] = torch.zeros(1, c, length, h, h, device=pipeline.decode_device)
            denoise = lambda inputs=inputs: pipeline(self.reference, inputs)  # noqa: E731
            decode = lambda latents=latents: pipeline.decode(latents)  # noqa: E731
            if self.graphs:
                assert self._denoise_stream is not None and self._decode_stream is not None
                self._denoise[length] = _capture(denoise, self._denoise_stream)
                self._decode[length] = _capture(decode, self._decode_stream)
            else:
                denoise()
                decode()
                self._denoise[length], self._decode[length] = denoise, decode
        if pipeline.device.type == "cuda":
            torch.cuda.synchronize(pipeline.device)
        self.startup_s = time.perf_counter() - start
        return self.startup_s

    def reference_motion(self) -> torch.Tensor:
        """``(1, C, M, h, w)`` motion frames for a first clip: the reference latent, repeated."""
        return self.reference.latent[:, :, None].repeat(1, 1, self.pipeline.config.motion_frames, 1, 1)

    def set_reference(self, reference: ReferenceState) -> None:
        """Use ``reference`` from the next clip on (copied into the captured buffers)."""
        with _on(self._denoise_stream):
            self.reference.copy_(reference)

    def denoise(self, audio: ClipAudio, label: Label, previous: torch.Tensor,
                generator: torch.Generator) -> tuple[ClipLatents, torch.Tensor]:
        """The clip's latents, and the motion frames for the next clip (from its real frames)."""
        length, motion_count = len(audio.windows), self.pipeline.config.motion_frames
        inputs = self._inputs[length]
        with _on(self._denoise_stream):
            if self._denoise_stream is not None:
                previous.record_stream(self._denoise_stream)  # it may come from the caller's stream
            self.pipeline.fill(inputs, audio.windows, label, previous, generator)
            latents = self._denoise[length]().clone()
            motion = torch.cat([previous, latents[:, :, :audio.frames]], dim=2)[:, :, -motion_count:]
            ready = None
            if self._denoise_stream is not None:
                ready = torch.cuda.Event()
                ready.record(self._denoise_stream)
        return ClipLatents(latents=latents, frames=audio.frames, ready=ready), motion

    def decode(self, clip: ClipLatents) -> torch.Tensor:
        """``(F, 3, H, W)`` float32 images in [-1, 1] of the clip's real frames, on the decoding device.

        On CUDA the caller's current stream waits for them, so reading them back is safe.
        """
        length = clip.latents.shape[2]
        with _on(self._decode_stream):
            if clip.ready is not None and self._decode_stream is not None:
                self._decode_stream.wait_event(clip.ready)
                if clip.latents.device == self.pipeline.decode_device:
                    clip.latents.record_stream(self._decode_stream)
            self._latents[length].copy_(clip.latents, non_blocking=True)
            images = self._decode[length]().clone()[:clip.frames]
        if self._decode_stream is not None:
            caller = torch.cuda.current_stream(self.pipeline.decode_device)
            caller.wait_stream(self._decode_stream)
            images.record_stream(caller)
        return images
