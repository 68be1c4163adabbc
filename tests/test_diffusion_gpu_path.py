"""The GPU-ready path of the diffusion engine, checked on the CPU: bf16, no host round-trips, fixed clip lengths,
the sampler as fixed coefficients, device checks, and a bench that imports without livekit or PyAV."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from facetalk.avatar.audio import AudioFeatures  # noqa: E402
from facetalk.avatar.diffusion import DiffusionEngine, DiffusionOptions, build_models, get_config  # noqa: E402
from facetalk.avatar.diffusion import precision  # noqa: E402
from facetalk.avatar.diffusion.clip_runner import clip_lengths  # noqa: E402
from facetalk.avatar.diffusion.host_syncs import count_host_syncs  # noqa: E402
from facetalk.avatar.diffusion.sampling import make_scheduler, plan_steps  # noqa: E402
from facetalk.avatar.labels import Label  # noqa: E402
from facetalk.avatar.measures import psnr  # noqa: E402
from facetalk.avatar.persona import PersonaPack, prepare_persona  # noqa: E402
from facetalk.errors import FaceTalkError  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PORTRAIT = REPO / "configs" / "portraits" / "astronaut.png"
SPEECH = [AudioFeatures(0.9, 0.6, 0.2), AudioFeatures(0.1, 0.3, 0.0), AudioFeatures(0.5, 0.8, 0.3)] * 6


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pack")
    prepare_persona(PORTRAIT, resolution=384, out=folder)
    return folder


@pytest.fixture(scope="module")
def pack(pack_dir: Path) -> PersonaPack:
    from facetalk.avatar.persona import load_pack

    return load_pack(pack_dir)


def _frames(engine: DiffusionEngine, sizes: tuple[int, ...] = (1, 2, 4, 8, 3)) -> np.ndarray:
    out, start = [], 0
    for n in sizes:
        out += engine.render_clip(SPEECH[start:start + n], Label.SPEAKING).frames
        start += n
    return np.stack(out)


def test_bf16_matches_fp32_on_the_shipped_checkpoint(pack: PersonaPack) -> None:
    """tiny in bf16 renders the same clips as fp32 at PSNR >= 35 dB (same seed), with float32 images out."""
    fp32 = DiffusionEngine(pack, options=DiffusionOptions(dtype="fp32", seed=3))
    bf16 = DiffusionEngine(pack, options=DiffusionOptions(dtype="bf16", seed=3))
    assert bf16.pipeline.models.unet.dtype == torch.bfloat16 and fp32.pipeline.dtype == torch.float32
    latents = bf16.denoise_stage(bf16.audio_stage(SPEECH[:2]), Label.SPEAKING)
    assert latents.latents.dtype == torch.float32 and bf16.decode_stage(latents).dtype == torch.float32
    bf16.reset(seed=3)
    assert psnr(_frames(bf16), _frames(fp32)) >= 35.0


def test_light_decoder_replaces_the_kl_decode(pack: PersonaPack) -> None:
    """decoder: light decodes with the shipped light decoder (tiny), close to the KL decoder's frames;
    another config refuses it before building any model."""
    kl = DiffusionEngine(pack, options=DiffusionOptions(seed=1))
    light = DiffusionEngine(pack, options=DiffusionOptions(seed=1, decoder="light"))
    assert light.pipeline.decoder is not None and kl.pipeline.decoder is None
    assert psnr(_frames(light, (4, 4)), _frames(kl, (4, 4))) > 24
    with pytest.raises(FaceTalkError, match="light decoder for 'tiny', not 'base-512'") as error:
        DiffusionEngine(pack, options=DiffusionOptions(config="base-512", decoder="light"))
    assert "facetalk train decoder --config base-512" in error.value.hint


def test_cpu_defaults_to_fp32() -> None:
    """Without a dtype the CPU runs fp32."""
    assert precision.check_dtype(None, torch.device("cpu")) == torch.float32


def test_no_host_round_trips_between_audio_windows_and_frames(pack: PersonaPack) -> None:
    """From audio windows to decoded frames: no .item()/.cpu()/numpy/.tolist() and no draw off the device's
    generator, for every clip length, first and later clips, speaking and idle."""
    engine = DiffusionEngine(pack, options=DiffusionOptions(dtype="bf16"), models=build_models(get_config("tiny")))
    windows = [(engine.audio_stage(SPEECH[:n]), label) for n, label in
               [(1, Label.SPEAKING), (2, Label.SPEAKING), (3, Label.SPEAKING), (8, Label.IDLE)]]
    with count_host_syncs(engine.pipeline.device) as counts:
        for audio, label in windows:
            images = engine.decode_stage(engine.denoise_stage(audio, label))
    assert (counts.syncs, counts.host_draws) == (0, 0), counts.calls
    assert images.shape[0] == 8


def test_the_round_trip_check_fails_when_one_comes_back(pack: PersonaPack, monkeypatch: pytest.MonkeyPatch) -> None:
    """A drift guard that reads a value back, or noise drawn on the host, is counted: the check can fail."""
    engine = DiffusionEngine(pack, options=DiffusionOptions(), models=build_models(get_config("tiny")))
    guard = engine.pipeline.drift

    def reading_guard(motion: torch.Tensor, *args: object) -> torch.Tensor:
        if motion.abs().max().item() > 1e6:  # the kind of check that costs a sync per clip
            raise AssertionError
        return guard(motion, *args) + torch.randn(motion.shape) * 0  # a host-generator draw

    monkeypatch.setattr(engine.pipeline, "drift", reading_guard)
    audio = engine.audio_stage(SPEECH[:2])
    with count_host_syncs(engine.pipeline.device) as counts:
        engine.decode_stage(engine.denoise_stage(audio, Label.SPEAKING))
    assert counts.syncs == 1 and counts.host_draws == 1, counts.calls
    assert counts.calls == ["Tensor.item", "torch.randn (generator and device not both given)"]


@pytest.mark.parametrize(("sampler", "steps"), [("lcm", 1), ("lcm", 2), ("lcm", 4), ("ddim", 3)])
def test_step_plan_equals_the_diffusers_scheduler(sampler: str, steps: int) -> None:
    """The fixed coefficients reproduce diffusers' step() (with the same re-noising noise), step by step."""
    scheduler = make_scheduler(sampler, steps)  # type: ignore[arg-type]
    plan = plan_steps(scheduler, torch.device("cpu"))
    assert plan.timesteps.tolist() == scheduler.timesteps.tolist()
    x_ours = x_theirs = torch.randn(1, 4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    ours, theirs = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    for i, t in enumerate(scheduler.timesteps):
        eps = torch.sin(3 * x_ours + i)  # any deterministic "model"
        out = scheduler.step(eps, t, x_theirs, generator=theirs)
        x_ours = plan.signal[i] * x_ours + plan.eps[i] * eps
        if plan.noise[i]:
            x_ours = x_ours + plan.noise[i] * torch.randn(x_ours.shape, generator=ours)
        x_theirs = out.prev_sample
        torch.testing.assert_close(x_ours, x_theirs, rtol=1e-5, atol=1e-5)
    if sampler == "lcm":
        torch.testing.assert_close(x_ours, out.denoised, rtol=1e-5, atol=1e-5)


def test_clip_lengths_are_fixed_and_others_are_padded(pack: PersonaPack) -> None:
    """tiny prepares 1, 2, 4, 8 frames at start; a 3-frame clip runs padded to 4 and returns 3 frames;
    9 frames is an error naming the lengths."""
    assert clip_lengths(8) == (1, 2, 4, 8) and clip_lengths(16) == (1, 2, 4, 8, 16)
    assert clip_lengths(12) == (1, 2, 4, 8, 12) and clip_lengths(1) == (1,)  # the runtime's doubling, capped
    engine = DiffusionEngine(pack, options=DiffusionOptions(), models=build_models(get_config("tiny")))
    assert engine.clips.lengths == (1, 2, 4, 8) and engine.startup_s > 0
    audio = engine.audio_stage(SPEECH[:3])
    assert (audio.windows.shape[0], audio.frames) == (4, 3)
    assert len(engine.output_stage(engine.decode_stage(engine.denoise_stage(audio, Label.SPEAKING))).frames) == 3
    with pytest.raises(FaceTalkError, match="captured clip lengths 1, 2, 4, 8") as error:
        engine.audio_stage(SPEECH[:9])
    assert "max_clip_frames=8" in error.value.hint


def test_devices_refuse_what_they_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """fp16 and fp8 on the CPU, bf16 on a pre-Ampere GPU and fp8 on a pre-Ada GPU are errors naming the fix."""
    cpu, gpu = torch.device("cpu"), torch.device("cuda:0")
    with pytest.raises(FaceTalkError, match="fp16 is not supported on the CPU") as error:
        precision.check_dtype("fp16", cpu)
    assert "--dtype fp32" in error.value.hint
    with pytest.raises(FaceTalkError, match="fp8 quantization needs an Ada or Hopper GPU") as error:
        precision.check_quantization("fp8", cpu)
    assert "--quantize int8" in error.value.hint
    with pytest.raises(FaceTalkError, match="unknown dtype"):
        precision.check_dtype("fp64", cpu)
    monkeypatch.setattr(precision, "device_capability", lambda device: (7, 5))  # a T4
    with pytest.raises(FaceTalkError, match="bf16 needs a GPU of compute capability 8.0") as error:
        precision.check_dtype("bf16", gpu)
    assert "--dtype fp16" in error.value.hint
    assert precision.default_dtype(gpu) == "fp32" and precision.check_dtype("fp16", gpu) == torch.float16
    monkeypatch.setattr(precision, "device_capability", lambda device: (8, 0))  # an A100
    assert precision.check_dtype(None, gpu) == torch.bfloat16
    with pytest.raises(FaceTalkError, match="fp8 needs a GPU of compute capability 8.9") as error:
        precision.check_quantization("fp8", gpu)
    assert "int8" in error.value.hint
    monkeypatch.setattr(precision, "device_capability", lambda device: (9, 0))  # an H100/H200
    assert precision.check_quantization("fp8", gpu) == "fp8"


def test_int8_on_the_cpu_needs_fp32(pack: PersonaPack) -> None:
    """Dynamic int8 quantizes fp32 activations: asking for it in bf16 on the CPU is an error with the fix."""
    with pytest.raises(FaceTalkError, match="dynamic int8") as error:
        DiffusionEngine(pack, options=DiffusionOptions(dtype="bf16", quantize="int8"),
                        models=build_models(get_config("tiny")))
    assert "--dtype fp32" in error.value.hint


# As if not installed: `import av` raises ModuleNotFoundError and importlib.util.find_spec("av") is None
# (which is how diffusers and transformers probe optional packages).
def test_torchao_weight_only_int8_runs_the_engine(pack: PersonaPack) -> None:
    """torchao's int8 weight-only (the GPU path) quantizes the UNets' linears and the engine still renders
    frames close to the unquantized ones (checked here on the CPU, where torchao also runs it)."""
    pytest.importorskip("torchao")
    from facetalk.avatar.diffusion.quantize import quantize_weights

    plain = DiffusionEngine(pack, options=DiffusionOptions(seed=2), models=build_models(get_config("tiny")))
    models = quantize_weights(build_models(get_config("tiny")), "int8")
    assert "Int8" in type(models.unet.backbone.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_q.weight
                          ).__name__
    int8 = DiffusionEngine(pack, options=DiffusionOptions(seed=2), models=models)
    assert psnr(_frames(int8, (2, 4)), _frames(plain, (2, 4))) > 30


def test_gpu_quantization_without_torchao_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """int8/fp8 on a GPU need torchao: without it, the error names the install command."""
    from facetalk.avatar.diffusion.quantize import quantize_weights

    monkeypatch.setitem(sys.modules, "torchao", None)
    monkeypatch.setitem(sys.modules, "torchao.quantization", None)
    with pytest.raises(FaceTalkError, match="needs torchao") as error:
        quantize_weights(build_models(get_config("tiny")), "fp8")
    assert "pip install" in error.value.hint


_BLOCK = "import sys\nsys.modules.update(dict.fromkeys(['livekit', 'av', 'ai_edge_litert']))\n"


def test_gpu_check_runs_without_livekit_av_or_litert(pack_dir: Path, tmp_path: Path) -> None:
    """With livekit, PyAV and ai-edge-litert unimportable, the engine, the bench and scripts/gpu_check.py
    import and run (tiny, CPU), writing JSON after each step and skipping what the time budget leaves out."""
    out = tmp_path / "gpu_check.json"
    code = _BLOCK + (
        "import runpy\n"
        f"sys.argv = ['gpu_check.py', '--pack', {str(pack_dir)!r}, '--device', 'cpu', '--configs', 'tiny',"
        f" '--seconds', '0.64', '--budget-s', '45', '--out', {str(out)!r}]\n"
        f"runpy.run_path({str(REPO / 'scripts' / 'gpu_check.py')!r}, run_name='__main__')\n"
        "assert not [m for m, v in sys.modules.items() if v is not None and m.split('.')[0] in ('livekit', 'av')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=600)
    report = json.loads(out.read_text())
    first = report["steps"][0]
    assert first["name"] == "tiny bf16 eager" and first["error"] is None, first
    assert first["result"]["fps"] > 0 and first["result"]["first_clip_ms"] > 0
    assert first["result"]["host_syncs_per_clip"] == 0
    assert report["steps"][-1]["skipped"]  # the budget leaves the rest out, and says so
