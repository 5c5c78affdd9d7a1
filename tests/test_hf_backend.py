"""The ``hf:`` backend on a tiny randomly initialised Qwen3-VL of the real transformers classes, built in the
test (``build_tiny_qwen3vl``: one text and one vision layer, a word-level tokenizer, the Qwen2-VL image
processor), saved with save_pretrained and loaded back through the backend's own ``from_pretrained`` path
on CPU.

Covered: model loading, the chat template with image placeholders, the image processor and the vision tower
on real pixels, greedy generation, decoding, JSON extraction and validation, the cache and usage, the schema
sent as JSON, the clear error when the processor's torchvision is missing. Not covered here: the full
``AutoProcessor`` (its video processor needs torchvision, absent from this CPU venv) and the real Qwen3-VL
tokenizer (no hub access); answers are a fixed token, not a model's judgement.
"""

from __future__ import annotations

import importlib.util
import json

import pytest
from PIL import Image
from pydantic import BaseModel

from nextads_lib.backends import BackendError, ImagePart, ModelRequest, TextPart, get_backend

pytest.importorskip("transformers")


class Answer(BaseModel):
    answer: str


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from nextads_lib.backends.hf_backend import build_tiny_qwen3vl

    return build_tiny_qwen3vl(tmp_path_factory.mktemp("qwen") / "tiny-qwen3vl")


def _req(image):
    return ModelRequest(task="test.answer", system="you are a judge", schema=Answer, item="pair 3",
                        parts=[TextPart("rate the image"), ImagePart(image)])


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    p = tmp_path_factory.mktemp("img") / "im.png"
    Image.new("RGB", (80, 60), (200, 30, 30)).save(p)
    return p


def test_tiny_qwen3vl_answers_through_the_real_path(tiny, image, tmp_path):
    b = get_backend(f"hf:{tiny}", cache_dir=tmp_path, device="cpu", torch_dtype="fp32", processor="images-only",
                    max_new_tokens=1)
    r = b.complete(_req(image))
    assert r.value == Answer(answer="tiny") and not r.cached
    # the prompt (text and the image tokens) went in, one token came out
    assert r.usage.output_tokens == 1 and r.usage.input_tokens > 10
    assert r.usage.backend == f"hf:{tiny}" and r.usage.cost_usd == 0
    again = get_backend(f"hf:{tiny}", cache_dir=tmp_path, device="cpu", torch_dtype="fp32", processor="images-only",
                        max_new_tokens=1).complete(_req(image))
    assert again.cached and again.value.answer == "tiny"


def test_schema_goes_into_the_prompt_as_json(tiny):
    b = get_backend(f"hf:{tiny}", device="cpu")
    msgs, images = b.messages(ModelRequest(task="t", system="s", parts=[TextPart("x")], schema=Answer), None)
    instr = msgs[1]["content"][-1]["text"]
    schema_text = instr.split("\n", 1)[1]
    assert json.loads(schema_text) == Answer.model_json_schema()  # JSON, not Python repr ('{'answer': ...}')
    assert images == []


def test_a_wrong_answer_fails_validation_twice_naming_the_item(tiny, image, tmp_path):
    b = get_backend(f"hf:{tiny}", cache_dir=tmp_path, device="cpu", torch_dtype="fp32", processor="images-only",
                    max_new_tokens=1)
    with pytest.raises(BackendError, match="pair 3.*failed validation twice"):
        b.complete(ModelRequest(task="test.other", system="s", parts=[TextPart("x")], item="pair 3",
                                schema=type("Other", (BaseModel,), {"__annotations__": {"score": int}})))


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None, reason="torchvision is installed here")
def test_missing_torchvision_is_a_clear_setup_error(tiny, image, tmp_path):
    b = get_backend(f"hf:{tiny}", cache_dir=tmp_path, device="cpu", torch_dtype="fp32", max_new_tokens=1)
    with pytest.raises(BackendError, match="'torchvision' package") as e:
        b.complete(_req(image))
    assert e.value.task == "setup" and "images-only" in str(e.value)


def test_cuda_default_without_gpu_is_a_setup_error(tiny, image):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(BackendError, match="needs CUDA"):
        get_backend(f"hf:{tiny}").complete(_req(image))
