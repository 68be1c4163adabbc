"""The diffusion engine at ``tiny`` with random weights: streaming, conditioning, sampling, checkpoints, errors."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from livekit import rtc  # noqa: E402
from livekit.agents.voice.avatar import AudioSegmentEnd  # noqa: E402

from facetalk.avatar import SAMPLE_RATE, AvatarVideoGenerator, FrameInfo, Label, create_video_generator  # noqa: E402
from facetalk.avatar.audio import AudioFeatures  # noqa: E402
from facetalk.avatar.diffusion import (  # noqa: E402
    DiffusionEngine,
    DiffusionOptions,
    build_models,
    get_config,
    load_checkpoint,
)
from facetalk.avatar.persona import PersonaPack, prepare_persona  # noqa: E402
from facetalk.config import AvatarConfig, Expression, load_persona  # noqa: E402
from facetalk.errors import FaceTalkError  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PORTRAIT = REPO / "configs" / "portraits" / "astronaut.png"
TINY = get_config("tiny")
SPEECH = [AudioFeatures(0.9, 0.6, 0.2), AudioFeatures(0.1, 0.3, 0.0)] * 4


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> PersonaPack:
    return prepare_persona(PORTRAIT, resolution=384, out=tmp_path_factory.mktemp("pack"))


@pytest.fixture(scope="module")
def models():  # noqa: ANN201
    return build_models(TINY, seed=0)


def _engine(pack: PersonaPack, models, **options: object) -> DiffusionEngine:  # noqa: ANN001
    return DiffusionEngine(pack, options=DiffusionOptions(**options), models=models)  # type: ignore[arg-type]


def test_models_are_diffusers_style_and_small(models) -> None:  # noqa: ANN001
    """Each model has a config; tiny has ~2M parameters and 8x8 latents for 64x64 frames."""
    assert set(models.components) == {"vae", "unet", "reference_net", "audio_projection", "face_locator"}
    assert models.unet.config.num_class_embeds == 3
    assert 1e6 < models.num_parameters() < 5e6
    assert (TINY.resolution, TINY.latent_size) == (64, 8)


def _sample(engine: DiffusionEngine, reference, windows: np.ndarray, label: Label, seed: int) -> torch.Tensor:  # noqa: ANN001
    """One clip's latents from the pipeline itself, with the reference as motion frames and seeded noise."""
    pipe = engine.pipeline
    inputs = pipe.clip_inputs(len(windows))
    pipe.fill(inputs, windows, label, engine.clips.reference_motion(), torch.Generator().manual_seed(seed))
    return pipe(reference, inputs)


def test_reference_tokens_reach_the_denoiser(pack: PersonaPack, models) -> None:  # noqa: ANN001
    """ReferenceNet writes one token set per spatial self-attention; a different reference changes the output."""
    engine = _engine(pack, models, drift=dataclasses.replace(DiffusionOptions().drift, noise_timestep=0))
    assert len(engine.reference.tokens) >= 2
    windows = engine.audio_stage(SPEECH[:2]).windows
    ref = engine.reference
    a = _sample(engine, ref, windows, Label.SPEAKING, seed=1)
    other = dataclasses.replace(ref, tokens={k: torch.zeros_like(v) for k, v in ref.tokens.items()})
    b = _sample(engine, other, windows, Label.SPEAKING, seed=1)
    assert not torch.allclose(a, b)


def test_labels_and_audio_change_the_output(pack: PersonaPack, models) -> None:  # noqa: ANN001
    """Same noise: a different label, or different audio, gives different latents; equal inputs, equal latents."""
    engine = _engine(pack, models)
    ref = engine.reference
    loud = engine.audio_stage(SPEECH[:2]).windows
    quiet = engine.audio_stage([None, None]).windows

    def run(windows: np.ndarray, label: Label) -> torch.Tensor:
        return _sample(engine, ref, windows, label, seed=3)

    base = run(loud, Label.SPEAKING)
    assert torch.equal(base, run(loud, Label.SPEAKING))
    assert (base - run(loud, Label.LISTENING)).abs().mean() > 1e-4
    assert (base - run(quiet, Label.SPEAKING)).abs().mean() > 1e-4
    # And the gradient reaches the label embedding and the audio projection.
    sample = torch.randn(1, 4, 2, 8, 8)
    audio = models.audio_projection(torch.from_numpy(loud))
    out = models.unet(sample, 500, audio, torch.tensor([1]), face_latent=ref.face_latent)
    out.square().mean().backward()
    assert models.unet.class_embedding.weight.grad[1].abs().sum() > 0
    assert models.unet.class_embedding.weight.grad[0].abs().sum() == 0
    assert models.audio_projection.mlp[0].weight.grad.abs().sum() > 0
    for m in models.components.values():  # the fixture is shared: leave no gradients behind
        for p in m.parameters():
            p.grad = None


@pytest.mark.parametrize(("sampler", "steps"), [("lcm", 1), ("lcm", 2), ("lcm", 4), ("ddim", 3)])
def test_step_counts_and_clip_lengths(pack: PersonaPack, models, sampler: str, steps: int) -> None:  # noqa: ANN001
    """1/2/4 LCM steps (and a DDIM teacher) render clips of 1..max frames at the persona's size."""
    engine = _engine(pack, models, sampler=sampler, steps=steps)
    for n in (1, 3, TINY.max_clip_frames) if steps == 2 else (2,):
        clip = engine.render_clip((SPEECH * 2)[:n], Label.SPEAKING)
        assert len(clip.frames) == n
        assert clip.frames[0].shape == (384, 384, 3) and clip.frames[0].dtype == np.uint8


def test_motion_frames_carry_over(pack: PersonaPack, models) -> None:  # noqa: ANN001
    """The second clip is conditioned on the first: same noise, another first clip, other second-clip latents."""
    latents = []
    for first in (SPEECH[:2], [None, None]):
        engine = _engine(pack, models, seed=5)
        engine.render_clip(first, Label.SPEAKING)
        latents.append(engine.denoise_stage(engine.audio_stage(SPEECH[:2]), Label.SPEAKING).latents)
    assert not torch.allclose(*latents)


def test_expression_poses_the_reference(pack: PersonaPack, models) -> None:  # noqa: ANN001
    """A smile changes the reference latent ReferenceNet reads."""
    engine = _engine(pack, models)
    neutral = engine.reference.latent.clone()
    engine.set_expression(Expression(smile=1.0, head_tilt=0.9))
    assert (engine.reference.latent - neutral).abs().mean() > 1e-4


def test_int8_renders_close_to_fp32(pack: PersonaPack, models) -> None:  # noqa: ANN001
    """int8 dynamic quantization replaces the linears and still renders frames near the fp32 ones."""
    fp32 = _engine(pack, models, seed=2).render_clip(SPEECH[:2], Label.SPEAKING)
    int8_engine = _engine(pack, models, seed=2, quantize="int8")
    assert "DynamicQuantizedLinear" in repr(int8_engine.pipeline.models.unet)
    int8 = int8_engine.render_clip(SPEECH[:2], Label.SPEAKING)
    diff = np.abs(np.stack(fp32.frames).astype(float) - np.stack(int8.frames)).mean()
    assert len(int8.frames) == 2 and diff < 20


def test_checkpoint_round_trip(tmp_path: Path, pack: PersonaPack, models) -> None:  # noqa: ANN001
    """save_pretrained writes diffusers' layout (model_index.json, safetensors per model); loading gives the
    same frames."""
    models.save_pretrained(tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    index = json.loads((tmp_path / "ckpt" / "model_index.json").read_text())
    assert index["_class_name"] == "DiffusionModels" and index["facetalk_config"] == "tiny"
    assert index["unet"] == ["facetalk.avatar.diffusion.unet", "TalkingFaceUNet"]
    loaded = load_checkpoint(tmp_path / "ckpt", TINY)
    a = _engine(pack, models, seed=4).render_clip(SPEECH[:2], Label.IDLE)
    b = _engine(pack, loaded, seed=4).render_clip(SPEECH[:2], Label.IDLE)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames, strict=True))
    options = DiffusionOptions.for_checkpoint(tmp_path / "ckpt")
    assert options.config == "tiny"


# A seeded 8-frame speaking clip of the bundled checkpoint, persona at 64 px: the mean and a slice
# (frame 0, every channel, row 32, columns 30..32) of its float images. First taken with the loader of
# the old layout (facetalk_diffusion.json) before scripts/convert_diffusion_checkpoint.py rewrote it;
# taken again (changes of at most 1.2e-3) when the CPU renderer's closing field changed the posed
# reference (jaw 0: the lips now meet along the whole mouth), with the weights unchanged.
BUNDLED_BEFORE_CONVERSION = {
    "student": (0.0957963839173317, [0.876483678817749, 0.8867225646972656, 0.7918318510055542,
                                     0.5532739162445068, 0.5515440702438354, 0.4563293755054474,
                                     0.42196160554885864, 0.44587311148643494, 0.3434680104255676]),
    "teacher": (0.0964626893401146, [0.871963620185852, 0.8803091049194336, 0.806930661201477,
                                     0.5424373745918274, 0.5445442199707031, 0.4651980400085449,
                                     0.40507015585899353, 0.43430542945861816, 0.34998390078544617]),
}


def test_bundled_checkpoint_renders_as_before_its_conversion() -> None:
    """The bundled student and teacher, now diffusers pipeline folders, give a seeded clip's values from before."""
    from facetalk.avatar.diffusion.engine import BUNDLED_CHECKPOINT

    pack = prepare_persona(PORTRAIT, resolution=64)
    for name, folder in (("student", BUNDLED_CHECKPOINT), ("teacher", BUNDLED_CHECKPOINT / "teacher")):
        engine = DiffusionEngine(pack, options=DiffusionOptions(checkpoint=folder, seed=0))
        images = engine.decode_stage(engine.denoise_stage(engine.audio_stage(SPEECH), Label.SPEAKING))
        mean, values = BUNDLED_BEFORE_CONVERSION[name]
        assert images.shape == (8, 3, 64, 64)
        assert float(images.mean()) == pytest.approx(mean, abs=1e-5), name
        np.testing.assert_allclose(images[0, :, 32, 30:33].flatten().numpy(), values, atol=1e-5, err_msg=name)


def test_old_layout_converts_to_the_same_models(tmp_path: Path, pack: PersonaPack, models) -> None:  # noqa: ANN001
    """scripts/convert_diffusion_checkpoint.py turns an old-layout folder into one that loads the same frames."""
    import runpy

    folder = tmp_path / "old"
    models.save_pretrained(folder)
    (folder / "model_index.json").unlink()
    (folder / "facetalk_diffusion.json").write_text('{"format": 1, "config": "tiny"}')
    runpy.run_path(str(REPO / "scripts" / "convert_diffusion_checkpoint.py"))["convert"](folder)
    assert not (folder / "facetalk_diffusion.json").exists()
    a = _engine(pack, models, seed=4).render_clip(SPEECH[:2], Label.IDLE)
    b = _engine(pack, load_checkpoint(folder, TINY), seed=4).render_clip(SPEECH[:2], Label.IDLE)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames, strict=True))


def test_bad_inputs(tmp_path: Path, pack: PersonaPack, models) -> None:  # noqa: ANN001
    """Missing or foreign checkpoints, impossible step counts, long clips and absent devices are clear errors."""
    with pytest.raises(FaceTalkError, match="not found"):
        DiffusionEngine(pack, options=DiffusionOptions(checkpoint=tmp_path / "nope"))
    models.save_pretrained(tmp_path / "tiny")
    with pytest.raises(FaceTalkError, match="'tiny' checkpoint, not 'base-384'"):
        load_checkpoint(tmp_path / "tiny", get_config("base-384"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FaceTalkError, match="not a FaceTalk diffusion checkpoint"):
        load_checkpoint(tmp_path / "empty", TINY)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "facetalk_diffusion.json").write_text('{"format": 1, "config": "tiny"}')
    with pytest.raises(FaceTalkError, match="old checkpoint layout") as old:
        load_checkpoint(tmp_path / "old", TINY)
    assert "convert_diffusion_checkpoint.py" in old.value.hint
    with pytest.raises(FaceTalkError, match="cannot run 3 steps"):
        _engine(pack, models, steps=3)
    with pytest.raises(FaceTalkError, match="unknown diffusion config"):
        _engine(pack, models, config="huge")
    with pytest.raises(FaceTalkError, match="does not exist"):
        _engine(pack, models, devices=("cuda:7",))
    with pytest.raises(FaceTalkError, match="bad device"):
        _engine(pack, models, devices=("gpu0",))
    engine = _engine(pack, models)
    with pytest.raises(FaceTalkError, match="captured clip lengths 1, 2, 4, 8"):
        engine.render_clip([None] * 9, Label.IDLE)


async def test_runtime_streams_from_the_diffusion_engine(pack: PersonaPack, models) -> None:  # noqa: ANN001
    """VideoGenerator over engine diffusion: a 1-frame first clip, growing clips, frames with audio."""
    infos: list[FrameInfo] = []
    engine = _engine(pack, models)
    gen = AvatarVideoGenerator(engine, fps=25, max_clip_frames=engine.max_clip_frames, on_frame=infos.append)
    t = np.arange(int(0.8 * SAMPLE_RATE)) / SAMPLE_RATE
    tone = (8000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)
    items: list[object] = []

    async def read() -> None:
        async for item in gen:
            items.append(item)
            if isinstance(item, AudioSegmentEnd):
                return

    reader = asyncio.create_task(read())
    for i in range(0, tone.size, 240):
        await gen.push_audio(rtc.AudioFrame(tone[i:i + 240].tobytes(), SAMPLE_RATE, 1, tone[i:i + 240].size))
    await gen.push_audio(AudioSegmentEnd())
    await asyncio.wait_for(reader, 60)
    await gen.aclose()
    speaking = [i for i in infos if i.label == Label.SPEAKING]
    assert speaking[0].clip_size == 1
    assert max(i.clip_size for i in speaking) > 2
    assert len(speaking) == 20
    video = [x for x in items if isinstance(x, rtc.VideoFrame)]
    assert (video[0].width, video[0].height) == (384, 384)


async def test_create_video_generator_diffusion(monkeypatch: pytest.MonkeyPatch) -> None:
    """engine: diffusion in the pipeline config gives a streaming generator at the avatar's resolution."""
    monkeypatch.setattr("facetalk.avatar.diffusion.engine.BUNDLED_CHECKPOINT", Path("/nonexistent"))
    gen = create_video_generator(load_persona(REPO / "configs" / "persona.yaml"),
                                 AvatarConfig(engine="diffusion", resolution=384))
    first = await asyncio.wait_for(gen.__aiter__().__anext__(), 30)
    assert isinstance(first, rtc.VideoFrame) and (first.width, first.height) == (384, 384)
    await gen.aclose()


def test_staged_renderer_matches_sequential(pack: PersonaPack, models) -> None:  # noqa: ANN001
    """The threaded stages yield the same frames as consecutive render_clip calls, in order."""
    from facetalk.avatar.diffusion.parallel import StagedRenderer

    jobs = [(SPEECH[:n], label) for n, label in [(1, Label.SPEAKING), (2, Label.SPEAKING), (4, Label.LISTENING)]]
    sequential = _engine(pack, models, seed=9)
    expected = [sequential.render_clip(f, label) for f, label in jobs]
    staged = list(StagedRenderer(_engine(pack, models, seed=9)).map(jobs))
    assert [len(c.frames) for c in staged] == [1, 2, 4]
    for a, b in zip(expected, staged, strict=True):
        assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames, strict=True))


def test_staged_renderer_reports_stage_errors(pack: PersonaPack, models) -> None:  # noqa: ANN001
    """A clip too long for the config fails in its stage and the error reaches the caller."""
    from facetalk.avatar.diffusion.parallel import StagedRenderer

    with pytest.raises(FaceTalkError, match="captured clip lengths 1, 2, 4, 8"):
        list(StagedRenderer(_engine(pack, models)).map([([None] * 9, Label.IDLE)]))


def test_init_from_sd15_format_folder(tmp_path: Path, models) -> None:  # noqa: ANN001
    """An SD1.5-format folder (unet/, vae/) initialises ReferenceNet, the denoiser's spatial layers and the VAE."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from facetalk.avatar.diffusion import init_from_sd15
    from facetalk.avatar.diffusion.reference_net import spatial_unet_config

    torch.manual_seed(11)
    sd_unet = UNet2DConditionModel(**spatial_unet_config(TINY.unet))
    sd_unet.save_pretrained(tmp_path / "sd" / "unet")
    AutoencoderKL(**TINY.vae).save_pretrained(tmp_path / "sd" / "vae")
    fresh = init_from_sd15(build_models(TINY, seed=1), tmp_path / "sd")
    key = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight"
    assert torch.equal(fresh.unet.backbone.state_dict()[key], sd_unet.state_dict()[key])
    assert torch.equal(fresh.reference_net.backbone.state_dict()[key], sd_unet.state_dict()[key])
    with pytest.raises(FaceTalkError, match="no SD1.5-format unet"):
        init_from_sd15(build_models(TINY), tmp_path)


def test_bench_reports_every_field(pack: PersonaPack) -> None:
    """A short bf16 bench run fills every field of the JSON (GPU memory is null on the CPU), with the GPU
    projection labelled an estimate."""
    from facetalk.avatar.diffusion.bench import bench_diffusion

    result = dataclasses.asdict(bench_diffusion(pack, dtype="bf16", seconds=0.64, soak_s=0.64, gpu="rtx4090"))
    assert result.pop("peak_gpu_mb") is None
    assert all(value is not None for value in result.values()), result
    assert set(result["stage_ms"]) == {"audio", "denoise", "decode", "output"}
    assert result["dtype"] == "bf16" and result["graphs"] is False and result["startup_s"] > 0
    assert result["host_syncs_per_clip"] == 0 and result["host_draws_per_clip"] == 0
    assert result["psnr_vs_fp32_db"] >= 35
    assert result["flops_per_frame"] > 1e8 and result["int8_speedup"] > 0
    assert "ESTIMATE" in result["projection"]["label"] and result["projection"]["config"] == "base-512"
