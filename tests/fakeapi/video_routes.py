"""Local wire-format stand-ins for the video routes the Producers call (stdlib only, 127.0.0.1):

- OpenAI videos API: ``POST /v1/videos`` (multipart, ``input_reference`` file), ``GET /v1/videos/{id}``
  (queued -> in_progress -> completed), ``GET /v1/videos/{id}/content`` (mp4 bytes).
- Veo through google-genai. The shipped client (3.x) generates videos only in Vertex AI mode:
  ``POST /v1beta1/publishers/google/models/{model}:predictLongRunning`` and ``...:fetchPredictOperation``
  (not done, then done with ``response.videos[].bytesBase64Encoded``). The Gemini Developer API routes
  (``/v1beta/models/{model}:predictLongRunning``, ``GET /v1beta/{operation}`` with
  ``generateVideoResponse.generatedSamples[].video.uri``, ``/v1beta/files/{id}:download``) are served too.

Prompts steer failures: ``REJECT`` -> 400 ``moderation_blocked`` at create (OpenAI); ``FORBIDDEN`` -> a failed
job with a moderation error (OpenAI) or RAI-filtered output (Gemini). Every request is recorded in
``VideoServer.log`` so tests can check what the clients sent (the Sora reference image's bytes and size too).

As strict as the real APIs, with their error shapes: OpenAI routes need ``Authorization: Bearer`` (401), take
only the create fields the API documents (unknown ones: 400), the models sora-2 / sora-2-pro, sizes the model
offers (1024x1792 / 1792x1024 on sora-2-pro only) and an ``input_reference`` image of exactly ``size`` (400
otherwise, as the real API answers). Veo routes need a key (``x-goog-api-key`` or a bearer token; 401), take
only known instance and parameter fields, and check each model's capabilities from the table below, which is
written from Google's documentation independently of the Producer's own table: clip lengths, ``lastFrame``,
``generateAudio``, ``referenceImages`` (400 INVALID_ARGUMENT otherwise). ``server.fail_polls`` holds HTTP
statuses answered to the next operation polls (transient failures).

Veo's video extension (``instances[0].video``) is checked by ``_veo_video`` (a model that extends, no ``image``
beside it, inline mp4 of 1 to 30 s, 16:9 or 9:16); the answer is the input's frames followed by 7 s of one flat
colour, recorded per operation in ``VideoServer.continuations``; the input videos are kept in ``videos``.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import re
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

SORA_FIELDS = {"prompt", "model", "seconds", "size", "input_reference"}
SORA_SIZES = {"sora-2": {"720x1280", "1280x720"}, "sora-2-pro": {"720x1280", "1280x720", "1024x1792", "1792x1024"}}
#: model -> (clip lengths, lastFrame, generateAudio, referenceImages, video extension). Extension: "Extend Veo on
#: Vertex AI-generated videos" (cloud.google.com/vertex-ai/generative-ai/docs/video/extend-a-veo-video) lists the
#: 3.1 models (and veo-2.0-generate-exp / -preview), not veo-2.0-generate-001 nor 3.0
VEO_MODELS = {
    "veo-2.0-generate-001": ((5, 6, 7, 8), False, False, False, False),
    "veo-3.0-generate-001": ((4, 6, 8), False, True, False, False),
    "veo-3.0-fast-generate-001": ((4, 6, 8), False, True, False, False),
    "veo-3.1-generate-preview": ((4, 6, 8), True, True, True, True),
    "veo-3.1-fast-generate-preview": ((4, 6, 8), True, True, False, True),
}
#: the extension: an input video of 1 to 30 s, continued by 7 s; the answer is the input and the continuation
VEO_EXTEND_S, VEO_EXTEND_INPUT_S = 7, (1.0, 30.0)
VEO_VIDEO_FIELDS = {"bytesBase64Encoded", "gcsUri", "mimeType"}
VEO_INSTANCE = {"prompt", "image", "lastFrame", "referenceImages", "video", "mask"}
VEO_PARAMETERS = {"aspectRatio", "durationSeconds", "sampleCount", "negativePrompt", "resolution", "generateAudio",
                  "seed", "personGeneration", "storageUri", "enhancePrompt", "fps", "compressionQuality",
                  "resizeMode", "pubsubTopic"}


def image_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    import io

    with Image.open(io.BytesIO(data)) as im:
        return im.size


#: the tone of the stand-in Sora clips' soundtrack (Sora 2 generates audio with the video)
SORA_TONE_HZ = 440.0


def tiny_mp4(seconds: int, size: tuple[int, int], seed: int, fps: int = 8, tone_hz: float | None = None) -> bytes:
    """A small H.264 clip of ``seconds`` at ``fps`` (a drifting colour gradient) at an eighth of ``size``, with a
    mono AAC sine of ``tone_hz`` when given."""
    from nextads_lib.media import write_video

    w, h = max(16, size[0] // 8 // 2 * 2), max(16, size[1] // 8 // 2 * 2)
    g = np.random.default_rng(seed)
    base = g.integers(40, 215, 3)
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    frames = []
    for i in range(int(seconds * fps)):
        col = (base + 30 * np.sin(i / 5 + np.arange(3))).clip(0, 255)
        frames.append(np.broadcast_to(col * (0.6 + 0.4 * yy), (h, w, 3)).astype(np.uint8))
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "c.mp4"
        rate = 22050
        t = np.arange(int(seconds * rate), dtype=np.float32) / rate
        audio = 0.3 * np.sin(2 * np.pi * tone_hz * t) if tone_hz else None
        write_video(p, frames, fps, audio=audio, audio_rate=rate)
        return p.read_bytes()


class VideoServer:
    def __init__(self):
        self.log: list[dict] = []
        self.jobs: dict[str, dict] = {}
        self.ops: dict[str, dict] = {}
        self.files: dict[str, bytes] = {}
        self.references: list[bytes] = []  # Sora input_reference images, in order
        self.videos: list[bytes] = []  # Veo extension input videos, in order
        self.continuations: dict[str, tuple[int, int, int]] = {}  # operation -> the RGB of its continuation
        self.fail_polls: list[int] = []
        self._n = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> "VideoServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def extended(self, ext: dict, name: str) -> bytes:
        """The answer to an extension: the input's decoded frames, then VEO_EXTEND_S s of a flat colour (its RGB
        in ``continuations[name]``, chosen per operation), at the input's size and fps."""
        from nextads_lib.media import write_video

        frames, fps = ext["frames"], ext["fps"]
        rgb = tuple(int(x) for x in np.random.default_rng(len(self.continuations) + 7).integers(40, 215, 3))
        self.continuations[name] = rgb
        cont = np.empty((int(round(VEO_EXTEND_S * fps)),) + frames.shape[1:], np.uint8)
        cont[:] = rgb
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "x.mp4"
            write_video(p, list(frames) + list(cont), fps)
            return p.read_bytes()

    def _next(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n:04d}"

    def _handler(self):
        server = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _send(self, code: int, obj=None, raw: bytes | None = None, ctype="application/json"):
                body = raw if raw is not None else json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _oa_err(self, code: int, message: str, param=None, err_code=None):
                return self._send(code, {"error": {"message": message, "type": "invalid_request_error",
                                                   "param": param, "code": err_code}})

            def _oa_auth(self) -> bool:
                auth = self.headers.get("Authorization") or ""
                if not auth.startswith("Bearer ") or not auth[7:].strip():
                    self._oa_err(401, "You didn't provide an API key. You need to provide your API key in an "
                                      "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
                    return False
                return True

            def _g_auth(self) -> bool:
                if self.headers.get("x-goog-api-key") or (self.headers.get("Authorization") or "").startswith("Bearer "):
                    return True
                self._send(401, {"error": {"code": 401, "status": "UNAUTHENTICATED", "message":
                                           "Request is missing required authentication credential."}})
                return False

            def _g_bad(self, message: str):
                return self._send(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": message}})

            def _body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            # ---------------------------------------------------------------- POST
            def do_POST(self):
                body = self._body()
                path = self.path.split("?")[0]
                if path == "/v1/videos":
                    if not self._oa_auth():
                        return None
                    return self._sora_create(body)
                m = re.fullmatch(r"/v1/videos/([^/]+)/remix", path)
                if m:
                    if not self._oa_auth():
                        return None
                    return self._sora_remix(m.group(1), body)
                m = re.fullmatch(r"/v1beta1?/(?:projects/[^/]+/locations/[^/]+/)?(?:publishers/google/)?models/([^/:]+)"
                                 r":(predictLongRunning|fetchPredictOperation)", path)
                if m and not self._g_auth():
                    return None
                if m and m.group(2) == "predictLongRunning":
                    return self._veo_create(m.group(1), json.loads(body or b"{}"))
                if m:
                    return self._veo_fetch(json.loads(body or b"{}").get("operationName", ""))
                server.log.append({"route": "unknown", "method": "POST", "path": self.path})
                self._send(404, {"error": {"message": f"no route {self.path}"}})

            def _sora_create(self, body: bytes):
                msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                    b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body)
                fields, files = {}, {}
                for part in msg.iter_parts():
                    name = part.get_param("name", header="content-disposition")
                    if part.get_filename():
                        files[name] = part.get_payload(decode=True)
                    else:
                        fields[name] = part.get_content().strip()
                ref = files.get("input_reference")
                ref_size = image_size(ref) if ref else None
                if ref:
                    server.references.append(ref)
                server.log.append({"route": "sora.create", "fields": fields, "files": {k: len(v) for k, v in files.items()},
                                   "auth": self.headers.get("Authorization", ""), "reference_size": ref_size})
                unknown = sorted((set(fields) | set(files)) - SORA_FIELDS)
                if unknown:
                    return self._oa_err(400, f"Unrecognized request argument supplied: {unknown[0]}")
                if not fields.get("prompt"):
                    return self._oa_err(400, "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
                model = fields.get("model", "sora-2")
                if model not in SORA_SIZES:
                    return self._oa_err(400, f"Invalid value: '{model}'. Supported values are: 'sora-2' and 'sora-2-pro'.",
                                        "model", "invalid_value")
                size = fields.get("size", "720x1280")
                if size not in SORA_SIZES[model]:
                    return self._oa_err(400, f"Invalid value: '{size}'. Supported values for {model} are: "
                                             f"{', '.join(sorted(SORA_SIZES[model]))}.", "size", "invalid_value")
                if ref_size is not None and f"{ref_size[0]}x{ref_size[1]}" != size:
                    return self._oa_err(400, "Inpaint image must match the requested width and height",
                                        "input_reference", "invalid_value")
                if "REJECT" in fields.get("prompt", ""):
                    return self._send(400, {"error": {"code": "moderation_blocked", "type": "invalid_request_error",
                                                      "message": "Your request was blocked by our moderation system.",
                                                      "param": None}})
                if fields.get("seconds") not in ("4", "8", "12") or fields.get("size") not in (
                        "720x1280", "1280x720", "1024x1792", "1792x1024"):
                    return self._send(400, {"error": {"code": "invalid_value", "message": "bad seconds/size",
                                                      "type": "invalid_request_error", "param": "seconds"}})
                vid = server._next("video_")
                job = {"id": vid, "object": "video", "status": "queued", "progress": 0, "created_at": int(time.time()),
                       "model": fields.get("model", "sora-2"), "seconds": fields["seconds"], "size": fields["size"],
                       "prompt": fields.get("prompt"), "polls": 0}
                server.jobs[vid] = job
                self._send(200, {k: v for k, v in job.items() if k != "polls"})

            def _sora_remix(self, video_id: str, body: bytes):
                """``POST /v1/videos/{id}/remix``: a JSON body with ``prompt`` only; the source must exist and be
                completed; the new job keeps its model, size and seconds and names it in ``remixed_from_video_id``."""
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                try:
                    req = json.loads(body or b"{}") if ctype == "application/json" else None
                except ValueError:
                    req = None
                server.log.append({"route": "sora.remix", "id": video_id, "body": req,
                                   "auth": self.headers.get("Authorization", "")})
                if not isinstance(req, dict):
                    return self._oa_err(400, "We could not parse the JSON body of your request.")
                unknown = sorted(set(req) - {"prompt"})
                if unknown:
                    return self._oa_err(400, f"Unrecognized request argument supplied: {unknown[0]}")
                if not req.get("prompt"):
                    return self._oa_err(400, "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
                src = server.jobs.get(video_id)
                if src is None:
                    return self._oa_err(404, f"Video with id '{video_id}' not found.", "video_id")
                if src["status"] != "completed":
                    return self._oa_err(400, f"Video '{video_id}' is not completed and cannot be remixed.", "video_id")
                vid = server._next("video_")
                job = {"id": vid, "object": "video", "status": "queued", "progress": 0, "created_at": int(time.time()),
                       "model": src["model"], "seconds": src["seconds"], "size": src["size"], "prompt": req["prompt"],
                       "remixed_from_video_id": video_id, "polls": 0}
                server.jobs[vid] = job
                self._send(200, {k: v for k, v in job.items() if k != "polls"})

            def _veo_create(self, model: str, req: dict):
                inst = (req.get("instances") or [{}])[0]
                params = req.get("parameters") or {}
                img = (inst.get("image") or {}).get("bytesBase64Encoded")
                entry = {"route": "veo.create", "model": model, "prompt": inst.get("prompt"), "has_image": bool(img),
                         "image_size": image_size(base64.b64decode(img)) if img else None,
                         "has_last_frame": bool((inst.get("lastFrame") or {}).get("bytesBase64Encoded")),
                         "reference_images": [r.get("referenceType") for r in inst.get("referenceImages") or []],
                         "instance_keys": sorted(inst), "parameters": params,
                         "key": self.headers.get("x-goog-api-key", "")}
                server.log.append(entry)
                if model not in VEO_MODELS:
                    return self._send(404, {"error": {"code": 404, "status": "NOT_FOUND",
                                                      "message": f"Publisher Model `{model}` not found."}})
                secs, last_ok, audio_ok, refs_ok, extend_ok = VEO_MODELS[model]
                for k in sorted(set(inst) - VEO_INSTANCE):
                    return self._g_bad(f'Invalid JSON payload received. Unknown name "{k}" at \'instances[0]\': Cannot find field.')
                for k in sorted(set(params) - VEO_PARAMETERS):
                    return self._g_bad(f'Invalid JSON payload received. Unknown name "{k}" at \'parameters\': Cannot find field.')
                if "durationSeconds" in params and int(params["durationSeconds"]) not in secs:
                    return self._g_bad(f"Unsupported output video duration {params['durationSeconds']} seconds, supported "
                                       f"durations are: [{','.join(map(str, secs))}] for feature text_to_video.")
                if "lastFrame" in inst and not last_ok:
                    return self._g_bad(f"The model {model} does not support lastFrame (image-to-video with a last frame).")
                if "generateAudio" in params and not audio_ok:
                    return self._g_bad(f"generateAudio is not supported by {model}.")
                if "referenceImages" in inst and not refs_ok:
                    return self._g_bad(f"referenceImages is not supported by {model}.")
                extension = None
                if "video" in inst:
                    extension, err = self._veo_video(model, inst, extend_ok)
                    if err:
                        return self._g_bad(err)
                    entry.update({"video_sha256": extension["sha256"], "video_seconds": extension["seconds"]})
                    server.videos.append(extension["data"])
                name = f"models/{model}/operations/{server._next('op')}"
                server.ops[name] = {"polls": 0, "prompt": inst.get("prompt", ""), "params": params,
                                    "extension": extension}
                self._send(200, {"name": name, "done": False})

            def _veo_video(self, model: str, inst: dict, extend_ok: bool) -> tuple[dict | None, str | None]:
                """Check an extension request's ``instances[0].video`` as Vertex AI does: a model that extends,
                no ``image`` beside it, exactly one of ``bytesBase64Encoded`` / ``gcsUri`` with ``mimeType``
                video/mp4, a decodable video of 1 to 30 s in 16:9 or 9:16. Returns (the decoded input, None) or
                (None, the 400 message)."""
                import hashlib

                from nextads_lib.media import MediaError, probe, read_frames

                v = inst["video"]
                if not extend_ok:
                    return None, f"The model {model} does not support video extension."
                if "image" in inst:
                    return None, "image and video cannot both be set: a video is extended, an image is animated."
                if not isinstance(v, dict) or set(v) - VEO_VIDEO_FIELDS:
                    bad = sorted(set(v) - VEO_VIDEO_FIELDS) if isinstance(v, dict) else ["video"]
                    return None, f'Invalid JSON payload received. Unknown name "{bad[0]}" at \'instances[0].video\'.'
                if ("bytesBase64Encoded" in v) == ("gcsUri" in v):
                    return None, "video: exactly one of bytesBase64Encoded and gcsUri must be set."
                if "gcsUri" in v:
                    return None, "video.gcsUri: the stand-in reads inline videos only."
                if v.get("mimeType") != "video/mp4":
                    return None, f"video.mimeType '{v.get('mimeType')}' is not supported (video/mp4)."
                try:
                    data = base64.b64decode(v["bytesBase64Encoded"], validate=True)
                except (ValueError, TypeError):
                    return None, "video.bytesBase64Encoded is not valid base64."
                with tempfile.TemporaryDirectory() as d:
                    p = Path(d) / "in.mp4"
                    p.write_bytes(data)
                    try:
                        info, frames = probe(p), read_frames(p)
                    except MediaError:
                        return None, "The input video could not be decoded."
                secs = len(frames) / info.fps
                if not VEO_EXTEND_INPUT_S[0] <= secs <= VEO_EXTEND_INPUT_S[1] + 1e-6:
                    return None, (f"The input video is {secs:.2f} s long; videos of {VEO_EXTEND_INPUT_S[0]:.0f} to "
                                  f"{VEO_EXTEND_INPUT_S[1]:.0f} seconds can be extended.")
                ar = info.width / info.height
                if not (abs(ar - 16 / 9) < 0.05 or abs(ar - 9 / 16) < 0.05):
                    return None, f"The input video's aspect ratio {info.width}x{info.height} is not 16:9 or 9:16."
                return {"data": data, "sha256": hashlib.sha256(data).hexdigest(), "seconds": round(secs, 3),
                        "frames": frames, "fps": info.fps}, None

            def _veo_fetch(self, name: str):
                """Vertex AI's fetchPredictOperation: the finished video comes inline (bytesBase64Encoded)."""
                op = server.ops.get(name)
                server.log.append({"route": "veo.operation", "name": name})
                if server.fail_polls:
                    code = server.fail_polls.pop(0)
                    return self._send(code, {"error": {"code": code, "status": "UNAVAILABLE" if code >= 500 else
                                                       "RESOURCE_EXHAUSTED", "message": "The service is currently unavailable."}})
                if op is None:
                    return self._send(404, {"error": {"code": 404, "message": f"no operation {name}", "status": "NOT_FOUND"}})
                op["polls"] += 1
                if op["polls"] == 1:
                    return self._send(200, {"name": name, "done": False})
                if "FORBIDDEN" in op["prompt"]:
                    resp = {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": ["Video was filtered by safety settings."]}
                elif op["extension"] is not None:
                    resp = {"@type": "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse",
                            "videos": [{"bytesBase64Encoded": b64(server.extended(op["extension"], name)),
                                        "mimeType": "video/mp4"}]}
                else:
                    secs = int(op["params"].get("durationSeconds", 8))
                    w, h = (720, 1280) if op["params"].get("aspectRatio") == "9:16" else (1280, 720)
                    resp = {"@type": "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse",
                            "videos": [{"bytesBase64Encoded": b64(tiny_mp4(secs, (w, h), op["polls"])),
                                        "mimeType": "video/mp4"}]}
                return self._send(200, {"name": name, "done": True, "response": resp})

            # ----------------------------------------------------------------- GET
            def do_GET(self):
                path = self.path.split("?")[0]
                if path.startswith("/v1/") and not self._oa_auth():
                    return None
                m = re.fullmatch(r"/v1/videos/([^/]+)(/content)?", path)
                if m and m.group(1) in server.jobs:
                    job = server.jobs[m.group(1)]
                    if m.group(2):
                        server.log.append({"route": "sora.content", "id": job["id"]})
                        w, h = (int(x) for x in job["size"].split("x"))
                        return self._send(200, raw=tiny_mp4(int(job["seconds"]), (w, h), server._n, tone_hz=SORA_TONE_HZ),
                                          ctype="video/mp4")
                    job["polls"] += 1
                    server.log.append({"route": "sora.retrieve", "id": job["id"]})
                    if job["polls"] == 1:
                        job["status"], job["progress"] = "in_progress", 50
                    elif "FORBIDDEN" in (job["prompt"] or ""):
                        job["status"] = "failed"
                        job["error"] = {"code": "moderation_blocked",
                                        "message": "The generated video was flagged by content moderation."}
                    else:
                        job["status"], job["progress"], job["completed_at"] = "completed", 100, int(time.time())
                    return self._send(200, {k: v for k, v in job.items() if k != "polls"})
                m = re.fullmatch(r"/v1beta/files/([a-z0-9]+):download", path)
                if m and m.group(1) in server.files:
                    server.log.append({"route": "veo.download", "id": m.group(1)})
                    return self._send(200, raw=server.files[m.group(1)], ctype="video/mp4")
                m = re.fullmatch(r"/v1beta/(models/[^/]+/operations/[^/]+)", path)
                if m and m.group(1) in server.ops:
                    op = server.ops[m.group(1)]
                    op["polls"] += 1
                    server.log.append({"route": "veo.operation", "name": m.group(1)})
                    if op["polls"] == 1:
                        return self._send(200, {"name": m.group(1), "done": False})
                    if "FORBIDDEN" in op["prompt"]:
                        resp = {"generateVideoResponse": {"raiMediaFilteredCount": 1,
                                                          "raiMediaFilteredReasons": ["Video was filtered by safety settings."]}}
                    else:
                        fid = f"file{len(server.files) + 1:04d}"
                        secs = int(op["params"].get("durationSeconds", 8))
                        w, h = (720, 1280) if op["params"].get("aspectRatio") == "9:16" else (1280, 720)
                        server.files[fid] = tiny_mp4(secs, (w, h), len(server.files))
                        uri = f"https://generativelanguage.googleapis.com/v1beta/files/{fid}:download?alt=media"
                        resp = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
                                "generateVideoResponse": {"generatedSamples": [{"video": {"uri": uri}}]}}
                    return self._send(200, {"name": m.group(1), "done": True, "response": resp})
                server.log.append({"route": "unknown", "method": "GET", "path": self.path})
                self._send(404, {"error": {"code": 404, "message": f"no route {self.path}", "status": "NOT_FOUND"}})

        return H


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
