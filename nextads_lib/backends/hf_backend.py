"""``hf:<path>``: Qwen3-VL (e.g. a local copy of Qwen/Qwen3-VL-8B-Instruct) run with transformers.

Loaded once per process with ``AutoModelForImageTextToText`` + ``AutoProcessor`` in bf16 on CUDA (settings:
``device`` (default "cuda"; "cpu" allowed explicitly, for tests), ``torch_dtype``); greedy decoding (the
deterministic equivalent of temperature 0); the JSON in the answer is extracted and validated like every
other backend's. Videos go as sampled frames.
"""

from __future__ import annotations

import threading
from typing import Any

from ..config import resolve
from .base import BackendError, ImagePart, ModelBackend, ModelRequest, TextPart, VideoPart

_MODELS: dict[tuple, Any] = {}
_LOCK = threading.Lock()


def load_model(path: str, device: str, dtype: str):
    key = (path, device, dtype)
    with _LOCK:
        if key not in _MODELS:
            import torch  # noqa: PLC0415
            from transformers import AutoModelForImageTextToText, AutoProcessor  # noqa: PLC0415

            if device.startswith("cuda") and not torch.cuda.is_available():
                raise BackendError("", "setup", f"hf:{path} needs CUDA (no GPU here); pass device='cpu' to force the CPU")
            td = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}.get(dtype, torch.bfloat16)
            local = resolve(path)
            src = str(local) if local.exists() else path
            try:
                model = AutoModelForImageTextToText.from_pretrained(src, torch_dtype=td).to(device).eval()
                proc = AutoProcessor.from_pretrained(src)
            except OSError as e:
                raise BackendError("", "setup", f"hf:{path}: cannot load the model folder ({e})") from e
            _MODELS[key] = (model, proc)
        return _MODELS[key]


class HFBackend(ModelBackend):
    kind = "hf"

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
                import io  # noqa: PLC0415

                for b in pngs:
                    images.append(Image.open(io.BytesIO(b)).convert("RGB"))
                    content.append({"type": "image"})
        instr = "Answer with one JSON object only, matching this JSON schema:\n" + str(req.schema_json())
        if repair:
            instr += f"\nYour previous answer was invalid ({repair}). Answer again, valid JSON only."
        content.append({"type": "text", "text": instr})
        return [{"role": "system", "content": [{"type": "text", "text": req.system}]},
                {"role": "user", "content": content}], images

    def _call(self, req: ModelRequest, repair: str | None) -> tuple[str, int, int]:
        import torch  # noqa: PLC0415

        model, proc = load_model(self.model, self.settings.get("device", "cuda"), self.settings.get("torch_dtype", "bf16"))
        msgs, images = self.messages(req, repair)
        prompt = proc.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        inputs = proc(text=[prompt], images=images or None, return_tensors="pt").to(model.device)
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=int(self.settings.get("max_new_tokens", req.max_output_tokens)),
                                 do_sample=False)
        new = out[0, inputs["input_ids"].shape[1]:]
        text = proc.batch_decode([new], skip_special_tokens=True)[0]
        return text, int(inputs["input_ids"].shape[1]), int(new.shape[0])
