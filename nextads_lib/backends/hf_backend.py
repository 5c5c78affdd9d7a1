"""``hf:<path>``: Qwen3-VL (e.g. a local copy of Qwen/Qwen3-VL-8B-Instruct) run with transformers.

Loaded once per process with ``AutoModelForImageTextToText`` + ``AutoProcessor`` in bf16 on CUDA (settings:
``device`` (default "cuda"; "cpu" allowed explicitly, for tests), ``torch_dtype``); greedy decoding (the
deterministic equivalent of temperature 0); the JSON schema goes into the prompt as JSON; the JSON in the
answer is extracted and validated like every other backend's. Videos go as sampled frames (images).

Qwen3-VL's processor includes a video processor, which needs ``torchvision`` (part of the ``.[hf]`` extra;
install the build that matches your torch). Without it loading fails with a :class:`BackendError` naming the
package; the setting ``processor="images-only"`` instead loads the tokenizer and image processor alone
(videos travel as frames anyway), with transformers' PIL image backend.

``build_tiny_qwen3vl`` writes a tiny randomly initialised Qwen3-VL folder of the real classes, for tests on
CPU and for a GPU smoke run.
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from ..config import resolve
from .base import BackendError, ImagePart, ModelBackend, ModelRequest, TextPart, VideoPart

_MODELS: dict[tuple, Any] = {}
_LOCK = threading.Lock()


def _missing_package(e: ImportError) -> str:
    """The package an ImportError asks for (transformers' messages name it: '... requires the Torchvision
    library ...'), else the module name."""
    text = str(e)
    m = re.search(r"requires the (\w+) library", text)
    if m:
        return m.group(1).lower()
    if getattr(e, "name", None):
        return str(e.name).split(".")[0]
    return text.split("'")[1] if "'" in text else text


def _images_only_processor(src: str):
    """Qwen3-VL's processor without its video processor: tokenizer + image processor + chat template."""
    from transformers import AutoImageProcessor, AutoTokenizer  # noqa: PLC0415
    from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor  # noqa: PLC0415
    from transformers.processing_utils import ProcessorMixin  # noqa: PLC0415

    class ImagesOnlyQwen3VLProcessor(Qwen3VLProcessor):
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            self.image_token, self.video_token = "<|image_pad|>", "<|video_pad|>"
            self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
            self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)
            self.vision_start_token, self.vision_end_token = "<|vision_start|>", "<|vision_end|>"
            self.vision_start_token_id = tokenizer.convert_tokens_to_ids(self.vision_start_token)
            self.vision_end_token_id = tokenizer.convert_tokens_to_ids(self.vision_end_token)

    tok = AutoTokenizer.from_pretrained(src)
    ip = AutoImageProcessor.from_pretrained(src)
    tmpl_file = Path(src) / "chat_template.jinja"
    tmpl = tmpl_file.read_text() if tmpl_file.is_file() else getattr(tok, "chat_template", None)
    return ImagesOnlyQwen3VLProcessor(image_processor=ip, tokenizer=tok, chat_template=tmpl)


def load_model(path: str, device: str, dtype: str, processor: str = "auto"):
    key = (path, device, dtype, processor)
    with _LOCK:
        if key not in _MODELS:
            try:
                import torch  # noqa: PLC0415
                from transformers import AutoModelForImageTextToText, AutoProcessor  # noqa: PLC0415
            except ImportError as e:
                raise BackendError("", "setup", f"hf:{path} needs the '{_missing_package(e)}' package: "
                                                "pip install -e '.[hf]'") from e
            if device.startswith("cuda") and not torch.cuda.is_available():
                raise BackendError("", "setup", f"hf:{path} needs CUDA (no GPU here); pass device='cpu' to force the CPU")
            td = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}.get(dtype, torch.bfloat16)
            local = resolve(path)
            src = str(local) if local.exists() else path
            try:
                model = AutoModelForImageTextToText.from_pretrained(src, dtype=td).to(device).eval()
                if processor == "images-only":
                    proc = _images_only_processor(src)
                else:
                    try:
                        proc = AutoProcessor.from_pretrained(src)
                    except ImportError as e:
                        pkg = _missing_package(e)
                        raise BackendError("", "setup", f"hf:{path}: the model's processor needs the '{pkg}' package, "
                                           f"which is not installed: pip install {pkg} (the build matching your torch; "
                                           "it is in the .[hf] extra), or pass processor='images-only'") from e
            except OSError as e:
                raise BackendError("", "setup", f"hf:{path}: cannot load the model folder ({e})") from e
            _MODELS[key] = (model, proc)
        return _MODELS[key]


class HFBackend(ModelBackend):
    kind = "hf"
    wire_version = "hf-2: schema in the prompt as JSON"

    def __init__(self, model: str, cache_dir=None, **settings: Any):
        if not model:
            raise BackendError("", "setup", "hf: needs a model folder, e.g. 'hf:models/Qwen3-VL-8B-Instruct'")
        super().__init__(model, cache_dir, **settings)

    def messages(self, req: ModelRequest, repair: str | None):
        from PIL import Image  # noqa: PLC0415

        content: list[dict[str, Any]] = []
        images = []
        for p in req.parts:
            if isinstance(p, TextPart):
                content.append({"type": "text", "text": p.text})
            elif isinstance(p, (ImagePart, VideoPart)):
                pngs = [p.png_bytes()] if isinstance(p, ImagePart) else VideoPart(p.path, p.n_frames).frames_png()
                for b in pngs:
                    images.append(Image.open(io.BytesIO(b)).convert("RGB"))
                    content.append({"type": "image"})
        instr = ("Answer with one JSON object only, matching this JSON schema:\n"
                 + json.dumps(req.schema_json(), separators=(",", ":")))
        if repair:
            instr += f"\nYour previous answer was invalid ({repair}). Answer again, valid JSON only."
        content.append({"type": "text", "text": instr})
        return [{"role": "system", "content": [{"type": "text", "text": req.system}]},
                {"role": "user", "content": content}], images

    def _call(self, req: ModelRequest, repair: str | None) -> tuple[str, int, int]:
        import torch  # noqa: PLC0415

        model, proc = load_model(self.model, self.settings.get("device", "cuda"), self.settings.get("torch_dtype", "bf16"),
                                 self.settings.get("processor", "auto"))
        msgs, images = self.messages(req, repair)
        prompt = proc.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        inputs = proc(text=[prompt], images=images or None, return_tensors="pt").to(model.device)
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=int(self.settings.get("max_new_tokens", req.max_output_tokens)),
                                 do_sample=False)
        new = out[0, inputs["input_ids"].shape[1]:]
        text = proc.batch_decode([new], skip_special_tokens=True)[0]
        return text, int(inputs["input_ids"].shape[1]), int(new.shape[0])


# ------------------------------------------------------------------------------------------ tiny model
TINY_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>"]
TINY_TEMPLATE = (
    "{% for m in messages %}<|im_start|> {{ m.role }} {% if m.content is string %}{{ m.content }}{% else %}"
    "{% for c in m.content %}{% if c.type == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c.type == 'text' %}{{ c.text }} {% endif %}{% endfor %}{% endif %}<|im_end|> {% endfor %}"
    "{% if add_generation_prompt %}<|im_start|> assistant {% endif %}")


def build_tiny_qwen3vl(out_dir: str | os.PathLike[str], answer: str = '{"answer": "tiny"}', seed: int = 0) -> Path:
    """Write a tiny randomly initialised Qwen3-VL (``Qwen3VLForConditionalGeneration``, one text and one vision
    layer, hidden size 32) with a word-level tokenizer, the Qwen2-VL image processor (16 px patches, 2x2
    merge, at most 64x64 px) and a Qwen-style chat template, all written with ``save_pretrained``. Its
    final norm is zeroed, so every logit is 0 and greedy decoding emits token 0, which is ``answer`` as one
    word: a one-token answer (``max_new_tokens=1``) is ``answer`` exactly. A processor_config.json names
    ``Qwen3VLProcessor``, so ``AutoProcessor`` loads the full processor where torchvision is installed."""
    import torch  # noqa: PLC0415
    from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: PLC0415
    from transformers import PreTrainedTokenizerFast, Qwen3VLConfig, Qwen3VLForConditionalGeneration  # noqa: PLC0415
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil  # noqa: PLC0415

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = {answer: 0}
    for s in TINY_SPECIALS:
        vocab[s] = len(vocab)
    for w in ("system user assistant you are a judge answer with one json object only matching this schema rate "
              "the image video frame product").split():
        vocab.setdefault(w, len(vocab))
    vocab["<unk>"] = len(vocab)
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", eos_token="<|im_end|>",
                                  pad_token="<|endoftext|>", additional_special_tokens=TINY_SPECIALS)
    tok.chat_template = TINY_TEMPLATE
    ids = {s: tok.convert_tokens_to_ids(s) for s in TINY_SPECIALS}
    cfg = Qwen3VLConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=1024,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 2, 2],
                                          "mrope_interleaved": True}),
        vision_config=dict(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, patch_size=16,
                           spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=32, num_position_embeddings=16,
                           deepstack_visual_indexes=[0]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        model.model.language_model.norm.weight.zero_()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(out)
    tok.save_pretrained(out)
    Qwen2VLImageProcessorPil(patch_size=16, merge_size=2, temporal_patch_size=2, min_pixels=32 * 32,
                             max_pixels=64 * 64).save_pretrained(out)
    (out / "chat_template.jinja").write_text(TINY_TEMPLATE)
    (out / "processor_config.json").write_text(json.dumps({"processor_class": "Qwen3VLProcessor"}))
    return out
