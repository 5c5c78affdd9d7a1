"""``wan:<model>``: Wan2.2 through diffusers (TI2V-5B: text + image to video, 720p = 704x1280, 24 fps).

One clip per slot (default) or one per creative. Each clip's image: under the paper protocol
(``slot_layouts=False``, the default) the pair's reference collage, letterboxed to the generation size (the
paper's grounding, 5.1.1 / 5.2.1); with ``slot_layouts=True`` the slot's own assets laid out like the
compositor's canvas; with ``condition="previous"`` the previous clip's last frame. The first clip starts from
``first_frame`` (PCI's integration frame) when the request has one, and the last clip is pulled towards
``last_frame`` only where the pipeline takes ``last_image`` (the Wan2.1 FLF2V / Wan2.2 I2V-A14B layout;
TI2V-5B conditions on the first frame only). Prompts name the product and describe it from its library
record. The clips then go through the shared post step, which retimes them to the storyboard's slots.

``model`` is a local diffusers folder (``from_pretrained``), absolute or project-relative, or a hub id on a
machine that can reach the hub. ``build_tiny_pipeline`` writes a tiny randomly initialised pipeline of the
same classes, for tests (CPU) and for a GPU smoke run.
"""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..config import resolve
from ..schemas import ProducerRequest, Slot, Storyboard
from ..seed import derive_seed
from . import post
from . import conditioning
from .base import Producer, ProducerError, request_item
from .compositor import camera_source, canvas

#: TI2V-5B's 720p sizes; 1:1 is generated at a square of the same pixel budget and multiple of 32
NATIVE_WAN = {"9:16": (704, 1280), "16:9": (1280, 704), "1:1": (960, 960)}
NEGATIVE_PROMPT = ("blurry, low quality, distorted product, deformed hands, watermark, subtitles, captions, "
                   "text artifacts, flicker, static frame, oversaturated")
CAMERA_WORDS = {
    "static": "locked-off static camera", "pan_left": "slow camera pan to the left",
    "pan_right": "slow camera pan to the right", "zoom_in": "smooth zoom in", "zoom_out": "smooth zoom out",
    "push_in": "dolly push-in towards the subject", "tilt_up": "camera tilts up", "tilt_down": "camera tilts down",
}

_PIPES: dict[tuple, Any] = {}
_LOCK = threading.Lock()


def _torch_dtype(name: str, device: str):
    import torch  # noqa: PLC0415

    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
                "fp32": torch.float32, "float32": torch.float32}[name]
    except KeyError as e:
        raise ProducerError("wan settings", f"torch_dtype '{name}' is not one of auto, bf16, fp16, fp32") from e


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch  # noqa: PLC0415

    return "cuda" if torch.cuda.is_available() else "cpu"


def _takes_dtype() -> bool:
    """diffusers >= 0.36 names the argument ``dtype`` (``torch_dtype`` is deprecated)."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def load_pipeline(model: str, *, torch_dtype: str = "auto", device: str = "auto", cpu_offload: bool = False,
                  vae_tiling: bool = False, vae_slicing: bool = False):
    """A ``WanImageToVideoPipeline`` loaded with ``from_pretrained`` (memoised per process). The text-only
    ``WanPipeline`` shares its modules through ``WanPipeline.from_pipe``."""
    from diffusers import WanImageToVideoPipeline  # noqa: PLC0415

    dev = _device(device)
    dtype = _torch_dtype(torch_dtype, dev)
    local = resolve(model)
    hub_id = model.count("/") == 1 and not model.startswith(("/", ".", "~"))
    source = str(local) if local.is_dir() else model
    if not local.is_dir() and not hub_id:
        raise ProducerError(f"wan:{model}", f"model folder {local} not found (a diffusers folder such as "
                            "Wan2.2-TI2V-5B-Diffusers, or a hub id)")
    key = (source, str(dtype), dev, cpu_offload, vae_tiling, vae_slicing)
    with _LOCK:
        if key in _PIPES:
            return _PIPES[key]
        kw = {"dtype": dtype} if _takes_dtype() else {"torch_dtype": dtype}
        try:
            pipe = WanImageToVideoPipeline.from_pretrained(source, **kw)
        except (OSError, ValueError) as e:
            raise ProducerError(f"wan:{model}", f"cannot load the pipeline from '{source}': {e}") from e
        pipe.set_progress_bar_config(disable=True)
        if cpu_offload:
            pipe.enable_model_cpu_offload()
        else:
            pipe.to(dev)
        if vae_tiling:
            pipe.vae.enable_tiling()
        if vae_slicing:
            pipe.vae.enable_slicing()
        _PIPES[key] = pipe
        return pipe


def slot_prompt(storyboard: Storyboard, slot: Slot) -> str:
    parts = [slot.composition.strip().rstrip("."), CAMERA_WORDS.get(slot.camera, slot.camera.replace("_", " ")),
             f"{slot.pacing} pacing", f"advertisement for {storyboard.product_id.replace('-', ' ')}"]
    if storyboard.hook:
        parts.append(storyboard.hook.strip().rstrip("."))
    return ". ".join(p for p in parts if p) + "."


def clip_frames(seconds: float, fps: float, max_frames: int, temporal: int = 4) -> int:
    """Frames to generate for ``seconds``: the smallest temporal*k + 1 covering it, capped at max_frames."""
    want = max(1, math.ceil(seconds * fps))
    n = temporal * math.ceil((want - 1) / temporal) + 1
    cap = temporal * ((max_frames - 1) // temporal) + 1
    return max(temporal + 1, min(n, cap))


class WanProducer(Producer):
    """``wan:<model dir>`` (Wan2.2 TI2V-5B by default; any diffusers Wan I2V layout)."""

    kind = "wan"
    native = NATIVE_WAN

    def __init__(self, model: str, cache_dir=None, *, per: str = "slot", condition: str = "collage",
                 torch_dtype: str = "auto", device: str = "auto", cpu_offload: bool = False,
                 vae_tiling: bool = False, vae_slicing: bool = False, num_inference_steps: int = 40,
                 guidance_scale: float = 5.0, gen_fps: float = 24.0, max_frames: int = 121,
                 gen_width: int | None = None, gen_height: int | None = None, negative_prompt: str = NEGATIVE_PROMPT,
                 max_sequence_length: int = 512, **post_settings: Any):
        if per not in ("slot", "creative"):
            raise ProducerError("wan settings", f"per='{per}' must be 'slot' or 'creative'")
        if condition not in ("collage", "previous"):
            raise ProducerError("wan settings", f"condition='{condition}' must be 'collage' or 'previous'")
        gen = dict(per=per, condition=condition, torch_dtype=torch_dtype, device=device, cpu_offload=cpu_offload,
                   vae_tiling=vae_tiling, vae_slicing=vae_slicing, num_inference_steps=int(num_inference_steps),
                   guidance_scale=float(guidance_scale), gen_fps=float(gen_fps), max_frames=int(max_frames),
                   gen_width=gen_width, gen_height=gen_height, negative_prompt=negative_prompt,
                   max_sequence_length=int(max_sequence_length))
        super().__init__(model, cache_dir, **post_settings, **gen)
        self.gen = gen

    def cache_key(self, req: ProducerRequest) -> str:
        return conditioning.cache_key(self, req, super().cache_key(req))

    def pipeline(self):
        g = self.gen
        return load_pipeline(self.model, torch_dtype=g["torch_dtype"], device=g["device"],
                             cpu_offload=g["cpu_offload"], vae_tiling=g["vae_tiling"], vae_slicing=g["vae_slicing"])

    def gen_size(self, pipe, width: int, height: int) -> tuple[int, int]:
        """Generation size: the settings', else the output size, snapped to the model's spatial unit."""
        unit = int(pipe.vae_scale_factor_spatial) * int(pipe.transformer.config.patch_size[1])
        w = self.gen["gen_width"] or width
        h = self.gen["gen_height"] or height
        return max(unit, round(w / unit) * unit), max(unit, round(h / unit) * unit)

    def _generate(self, pipe, *, prompt: str, image: np.ndarray | None, last_image: np.ndarray | None,
                  num_frames: int, gw: int, gh: int, seed: int) -> np.ndarray:
        import torch  # noqa: PLC0415
        from diffusers import WanPipeline  # noqa: PLC0415
        from PIL import Image  # noqa: PLC0415

        g = self.gen
        kw = dict(prompt=prompt, negative_prompt=g["negative_prompt"], height=gh, width=gw, num_frames=num_frames,
                  num_inference_steps=g["num_inference_steps"], guidance_scale=g["guidance_scale"],
                  generator=torch.Generator(device="cpu").manual_seed(seed),
                  max_sequence_length=g["max_sequence_length"], output_type="np")
        if image is None:
            t2v = WanPipeline.from_pipe(pipe)
            t2v.set_progress_bar_config(disable=True)
            out = t2v(**kw)
        else:
            kw["image"] = Image.fromarray(post.fit_image(image, gw, gh))
            if last_image is not None:
                kw["last_image"] = Image.fromarray(post.fit_image(last_image, gw, gh))
            out = pipe(**kw)
        video = np.asarray(out.frames[0], np.float32)
        return np.clip(video * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def _render(self, req: ProducerRequest, out_path: Path, width: int, height: int) -> dict[str, Any]:
        g = self.gen
        sb = req.storyboard
        item = request_item(req)
        pipe = self.pipeline()
        gw, gh = self.gen_size(pipe, width, height)
        temporal = int(pipe.vae_scale_factor_temporal)
        supports_last = not bool(getattr(pipe.config, "expand_timesteps", False))
        palette = self.palette(req)
        spans = post.slot_spans(sb, req.fps)
        first = self.load(req, req.first_frame, "first_frame") if req.first_frame else None
        last = self.load(req, req.last_frame, "last_frame") if req.last_frame else None

        collage = conditioning.uses_collage(self) and bool(req.collage_path)
        product = conditioning.product_record(req, self.extra.get("product"), self.extra.get("products_dir"))

        def grounding(sp: post.SlotSpan) -> np.ndarray:
            if collage:
                return conditioning.collage_array(req, gw, gh)
            imgs = [self.load(req, p, f"slot {sp.slot.index} image") for p in self.slot_images(req, sp.slot)]
            return camera_source(canvas(imgs, gw, gh, palette, sp.index), gw, gh, "static")(0, 1)

        def prompt_of(sps: list[post.SlotSpan]) -> str:
            return conditioning.name_product(" ".join(slot_prompt(sb, sp.slot) for sp in sps), req, product)

        jobs: list[tuple[str, list[post.SlotSpan], float]] = []
        if g["per"] == "creative":
            jobs.append((prompt_of(spans), spans, sb.duration_s))
        else:
            jobs.extend((prompt_of([sp]), [sp], sp.n / req.fps) for sp in spans)
        clips: list[np.ndarray] = []
        info = []
        prev_last: np.ndarray | None = None
        for j, (prompt, job_spans, seconds) in enumerate(jobs):
            sp0 = job_spans[0]
            if j == 0 and first is not None:
                image, source = first, "first_frame"
            elif g["condition"] == "previous" and prev_last is not None:
                image, source = prev_last, "previous"
            else:
                image, source = grounding(sp0), ("collage" if collage else "slot_layout")
            last_image = last if (j == len(jobs) - 1 and last is not None and supports_last) else None
            nf = clip_frames(seconds, g["gen_fps"], g["max_frames"], temporal)
            try:
                clip = self._generate(pipe, prompt=prompt, image=image, last_image=last_image, num_frames=nf,
                                      gw=gw, gh=gh, seed=derive_seed(req.seed, "wan", j))
            except ProducerError:
                raise
            except Exception as e:  # CUDA OOM, shape errors...: name the slot
                raise ProducerError(item, f"wan clip {j} (slot {sp0.slot.index}) failed: {type(e).__name__}: {e}") from e
            prev_last = clip[-1]
            clips.append(clip)
            info.append({"slots": [sp.slot.index for sp in job_spans], "num_frames": int(clip.shape[0]),
                         "image": source, "last_image": last_image is not None, "prompt": prompt})
        if g["per"] == "creative":
            pieces = post.split_clip(clips[0], spans)
        else:
            pieces = clips
        sources = [post.clip_source(c, width, height) for c in pieces]
        self.finish(req, out_path, sources, width, height)
        return {"cost_usd": 0.0, "settings": {"gen_size": [gw, gh], "clips": info, "palette": palette,
                                              "takes_last_image": supports_last}}


# ------------------------------------------------------------------------------------------ tiny model
def build_tiny_pipeline(out_dir: str | os.PathLike[str], variant: str = "ti2v", seed: int = 0) -> Path:
    """Write a tiny randomly initialised Wan pipeline with ``save_pretrained`` (a few MB, no download):
    ``variant="ti2v"`` has the Wan2.2 TI2V-5B layout (residual VAE with patch size 2 and 16x spatial
    compression, ``expand_timesteps``); ``"i2v"`` the Wan2.1/2.2-A14B I2V layout (mask + image latents
    concatenated, supports ``last_image``). Load it with ``get_producer("wan:<out_dir>")``."""
    import torch  # noqa: PLC0415
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline, WanTransformer3DModel  # noqa: PLC0415
    from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: PLC0415
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel  # noqa: PLC0415

    if variant not in ("ti2v", "i2v"):
        raise ValueError(f"variant '{variant}' must be 'ti2v' or 'i2v'")
    torch.manual_seed(seed)
    if variant == "ti2v":
        z = 8
        vae = AutoencoderKLWan(base_dim=8, decoder_base_dim=8, z_dim=z, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                               temperal_downsample=[False, True, True], is_residual=True, patch_size=2,
                               in_channels=12, out_channels=12, scale_factor_spatial=16, scale_factor_temporal=4,
                               latents_mean=[0.0] * z, latents_std=[1.0] * z)
        in_ch = z
    else:
        z = 16
        vae = AutoencoderKLWan(base_dim=8, z_dim=z, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                               temperal_downsample=[False, True, True], scale_factor_spatial=8,
                               scale_factor_temporal=4, latents_mean=[0.0] * z, latents_std=[1.0] * z)
        in_ch = 2 * z + 4  # noise latents + 4 mask channels + condition latents
    transformer = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                                        in_channels=in_ch, out_channels=z, text_dim=16, freq_dim=32, ffn_dim=32,
                                        num_layers=1, rope_max_seq_len=64)
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=64, d_model=16, d_kv=8, num_heads=2, num_layers=1,
                                               d_ff=32, relative_attention_num_buckets=8))
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for w in ("a the an of on in with and to for product shot close up hero camera pan zoom push tilt static "
              "slow fast medium pacing advertisement bright left right towards subject").split():
        vocab.setdefault(w, len(vocab))
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", unk_token="<unk>", eos_token="</s>",
                                        model_max_length=512)
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0,
                                        num_train_timesteps=1000)
    pipe = WanImageToVideoPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=scheduler,
                                   transformer=transformer, expand_timesteps=(variant == "ti2v"))
    out = Path(out_dir)
    pipe.save_pretrained(out)
    return out
