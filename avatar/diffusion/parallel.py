"""Pipeline parallelism: the engine's stages on threads, joined by bounded queues.

audio windows → denoise → VAE decode → output frames. The first three are
one thread each and the output stage runs in the consuming thread, so the decode of clip k (on ``devices[-1]``) overlaps the denoising
of clip k+1 (on ``devices[0]``): with ``cuda:0,cuda:1`` the two GPUs work at
once; on the CPU the stages share cores (torch releases the GIL inside ops).
Denoising stays one thread, in clip order, because each clip's motion frames
come from the clip before. Queues hold at most ``queue_size`` clips, so a
slow consumer stalls the stages instead of piling up memory.

The streaming runtime asks for one clip at a time and waits for it, so there
the stages cannot overlap; this runner serves offline rendering, the bench,
and any caller that knows its next clips ahead.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

from ..audio import AudioFeatures
from ..engine import Clip
from ..labels import Label
from .engine import DiffusionEngine

__all__ = ["StagedRenderer"]

_DONE = object()


class _Failure:
    """An exception raised in a stage, passed downstream to the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class StagedRenderer:
    """Renders a sequence of clips with the engine's stages running concurrently.

    Args:
        engine: the diffusion engine; its motion state advances as in sequential use,
            so the frames equal those of consecutive ``render_clip`` calls.
        queue_size: clips each queue holds at most.
    """

    def __init__(self, engine: DiffusionEngine, *, queue_size: int = 2) -> None:
        self.engine = engine
        self.queue_size = queue_size

    def map(self, clips: Iterable[tuple[Sequence[AudioFeatures | None], Label]]) -> Iterator[Clip]:
        """Yield one :class:`Clip` per ``(features, label)``, in order.

        A stage's exception is re-raised here; leaving the loop early stops the threads.
        """
        stop = threading.Event()
        queues = [queue.Queue[object](self.queue_size) for _ in range(4)]
        engine = self.engine
        steps: list[Callable[[object], object]] = [
            lambda job: (engine.audio_stage(job[0]), job[1]),  # type: ignore[index]
            lambda job: engine.denoise_stage(*job),  # type: ignore[misc]
            engine.decode_stage,  # type: ignore[list-item]
            engine.output_stage,  # type: ignore[list-item]
        ]
        threads = [threading.Thread(target=self._feed, args=(clips, queues[0], stop), daemon=True)]
        for i, step in enumerate(steps[:-1]):
            threads.append(threading.Thread(target=self._stage, args=(step, queues[i], queues[i + 1], stop),
                                            daemon=True, name=f"diffusion-stage-{i}"))
        for thread in threads:
            thread.start()
        try:
            while (item := queues[-1].get()) is not _DONE:
                if isinstance(item, _Failure):
                    raise item.error
                yield steps[-1](item)  # type: ignore[misc]
        finally:
            stop.set()
            for q in queues:  # unblock any stage waiting to put
                while not q.empty():
                    q.get_nowait()
            for thread in threads:
                thread.join(timeout=10)

    @staticmethod
    def _put(q: queue.Queue[object], item: object, stop: threading.Event) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _feed(self, clips: Iterable[tuple[Sequence[AudioFeatures | None], Label]], out: queue.Queue[object],
              stop: threading.Event) -> None:
        try:
            for clip in clips:
                if not self._put(out, clip, stop):
                    return
        except Exception as e:  # noqa: BLE001 - handed to the consumer
            self._put(out, _Failure(e), stop)
        self._put(out, _DONE, stop)

    def _stage(self, step: Callable[[object], object], inbox: queue.Queue[object], out: queue.Queue[object],
               stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                item = inbox.get(timeout=0.05)
            except queue.Empty:
                continue
            if item is not _DONE and not isinstance(item, _Failure):
                try:
                    item = step(item)
                except Exception as e:  # noqa: BLE001 - handed to the consumer
                    item = _Failure(e)
            if not self._put(out, item, stop) or item is _DONE or isinstance(item, _Failure):
                return
