"""Slot-level editing of a rendered creative: the Producer's side of the Reflector's minimal directives.

Only the frames of the affected slots are rendered again; every other frame is the original creative's
decoded frame, spliced back in order and re-encoded once (H.264 at the creative's own settings, so frames
outside the edited slots differ from the original only by encoder tolerance). Nothing else is re-rendered.

- :func:`render_slot_frames`: one slot's finished frames exactly as the post step makes them
  (:func:`nextads_lib.producer.post.frames`): the compositor's camera move over the slot's grounding images
  (:func:`nextads_lib.producer.compositor.canvas` / ``camera_source``), the dissolve from the previous slot's
  last base frame, the slot's on-screen text, subtitle and (last slot) CTA card, the first/last-frame blends,
  and the "AI Created" label.
- :func:`edit_slots`: re-render the given slots under a (patched) plan and splice them into the creative.
- :func:`relabel`: burn the label into the frames that lack it (no other frame touched).
- :func:`trim_slot`: cut frames from a slot's end; later slots move earlier, the plan's times follow.
- :func:`splice_into`: put re-rendered frames of the segment into a PCI ``integrated.mp4`` at its seam.

The soundtrack is recomputed from the patched plan (deterministic: the same music bed and the cached Piper
lines, so unchanged slots sound the same) and muxed again. :func:`edit_slots` needs the compositor; a
creative of a generative Producer (sora, veo, wan) is edited with the API's own edit operation where there is
one, else by generating the slot's clip again, and spliced in the same way:

========  ======================================================  ==========================================
Producer  edited tail (the last slot, and edited slots before it)  any other slot
========  ======================================================  ==========================================
sora      the API's remix of the clip covering the slot            (same)
veo       the API's video extension of the generated footage       a new clip: first frame = the previous
          before the tail (:func:`extend_tail`; models with        slot's last frame, ``lastFrame`` = the next
          ``extend`` in ``veo.CAPABILITIES``)                      slot's first where the model takes one
wan       a new clip (first / last frame as for veo; same seed)    (same)
========  ======================================================  ==========================================

Each operation is recorded in the :class:`EditReport` (``edits``), which the Reflector writes into the round's
``producer.json`` (``settings["edits"]``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..media import probe, read_audio, read_frames, write_video
from ..schemas import Grounding, ProducerManifest, ProducerRequest, Storyboard
from ..store import read_model
from . import post
from .base import Producer, ProducerError

#: producer settings that ``get_producer`` accepts back from a manifest
_POST_KEYS = ("music", "subtitles", "narration", "crf", "preset", "x264_params", "voice", "post_production",
              "slot_layouts", "frame_overwrite")


#: generation settings of sora / veo / wan that ``get_producer`` accepts back from a manifest
_GEN_KEYS = ("per", "condition", "high_res", "use_last_frame", "resolution", "gen_fps", "max_frames", "gen_width",
             "gen_height", "num_inference_steps", "guidance_scale", "torch_dtype", "cpu_offload", "vae_tiling")


class EditError(ProducerError):
    """A slot-level edit that cannot be done (names the creative and why)."""


@dataclass
class EditReport:
    """What an edit did: which slots and frames were rendered again, and the output."""

    video_path: str
    slots: list[int] = field(default_factory=list)
    frames_rendered: list[int] = field(default_factory=list)
    n_frames: int = 0
    seconds: float = 0.0
    note: str = ""
    #: one record per operation, for the producer manifest's ``edits``: ``operation`` (``compositor``,
    #: ``remix``: Sora's edit of a finished video, ``extend``: Veo's video extension, ``regenerate``: a new clip
    #: of the slot), ``slots``, what it started from and ``cost_usd``
    edits: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"video_path": self.video_path, "slots": self.slots, "frames_rendered": len(self.frames_rendered),
                "n_frames": self.n_frames, "seconds": round(self.seconds, 3), "note": self.note,
                "edits": self.edits}


# ------------------------------------------------------------------------------------------ request
def producer_request(pair_dir: str | os.PathLike[str], plan: Storyboard | None = None) -> tuple[ProducerRequest, ProducerManifest]:
    """Rebuild the request a pair's creative was rendered from: ``plan.json`` (or ``plan``), ``grounding.json``
    and ``producer.json`` (size, fps, seed, palette). PCI plans start from (and return to) their frame."""
    from ..director import grounding_asset_paths  # noqa: PLC0415

    pair_dir = Path(pair_dir)
    plan = plan or read_model(pair_dir / "plan.json", Storyboard)
    grounding = read_model(pair_dir / "grounding.json", Grounding)
    man = read_model(pair_dir / "producer.json", ProducerManifest)
    palette = man.settings.get("palette") or []
    frame = plan.starts_from_frame
    req = ProducerRequest(
        storyboard=plan, collage_path=grounding.collage_path, assets=grounding_asset_paths(grounding),
        reference_images=[grounding.collage_path], aspect_ratio=plan.aspect_ratio, width=man.width,
        height=man.height, fps=man.fps, seed=man.seed, palette=[str(x) for x in palette],
        first_frame=frame, last_frame=frame if (frame and plan.returns_to_frame) else None)
    return req, man


def producer_for(man: ProducerManifest, cache_dir: str | os.PathLike[str] | None = None) -> Producer:
    """The Producer that rendered ``man``, with its post settings; slot edits need the compositor."""
    from . import get_producer  # noqa: PLC0415

    kw = {k: man.settings[k] for k in _POST_KEYS if k in man.settings}
    if not man.backend.startswith("compositor"):  # generative: its generation settings too (edited per slot)
        kw.update({k: v for k, v in man.settings.items() if k in _GEN_KEYS})
    return get_producer(man.backend, cache_dir=cache_dir, **kw)


# ----------------------------------------------------------------------------------------- rendering
def _sources(producer: Producer, req: ProducerRequest, width: int, height: int):
    from .compositor import camera_source, canvas  # noqa: PLC0415

    palette = producer.palette(req)

    def source(sp: post.SlotSpan) -> post.SlotSource:
        imgs = [producer.load(req, p, f"slot {sp.slot.index} image") for p in producer.slot_images(req, sp.slot)]
        return camera_source(canvas(imgs, width, height, palette, sp.index), width, height, sp.slot.camera)

    return source, post.palette_accent(palette)


def render_slot_frames(producer: Producer, req: ProducerRequest, slot_index: int, *,
                       source_override: post.SlotSource | None = None, prev_frame: np.ndarray | None = None,
                       headlines: bool = True) -> tuple[post.SlotSpan, list[np.ndarray]]:
    """The finished frames of one slot (by its position in time order), identical in construction to
    :func:`post.frames` for that slot; returns its span (frame range) and the frames. ``source_override`` is
    the slot's picture source when it is not the compositor's (a regenerated clip), ``prev_frame`` the picture
    the slot dissolves from then, and ``headlines`` False for a generative creative under the paper protocol
    (no on-screen text drawn, no dissolves: :meth:`Producer.finish`)."""
    width, height = producer.size(req)
    sb = req.storyboard
    spans = post.slot_spans(sb, req.fps)
    pos = [i for i, sp in enumerate(spans) if sp.slot.index == slot_index]
    if not pos:
        raise EditError(f"slot {slot_index}", f"not in the plan (slots {[sp.slot.index for sp in spans]})")
    i = pos[0]
    sp = spans[i]
    if source_override is None:
        source, accent = _sources(producer, req, width, height)
        prev_base = None
        if i > 0:
            pv = spans[i - 1]
            prev_base = source(pv)(pv.n - 1, pv.n)
        src = source(sp)
    else:
        accent = post.palette_accent(producer.palette(req))
        src, prev_base = source_override, prev_frame
    n_total = spans[-1].stop
    subtitles = bool(producer.post_settings.get("subtitles", True))
    layers = post.slot_layers(sb, sp, len(spans), width, height, accent, subtitles,
                              post_production=producer.post_production, headlines=headlines)
    label = post.label_layer(width, height)
    ff = post.fit_image(producer.load(req, req.first_frame, "first_frame"), width, height).astype(np.float32) \
        if (req.first_frame and producer.frame_overwrite) else None
    lf = post.fit_image(producer.load(req, req.last_frame, "last_frame"), width, height).astype(np.float32) \
        if (req.last_frame and producer.frame_overwrite) else None
    nb = max(1, int(round(post.BOUNDARY_BLEND_S * req.fps)))
    n_tr = 0 if sp.index == 0 else min(int(round(post.TRANSITION_S.get(sp.slot.pacing, 0.0) * req.fps)), sp.n // 3)
    if not headlines and not producer.post_production:
        n_tr = 0
    import cv2  # noqa: PLC0415

    out = []
    for k in range(sp.n):
        base = src(k, sp.n)
        if k < n_tr and prev_base is not None:
            wgt = (k + 1) / (n_tr + 1)
            fr = cv2.addWeighted(prev_base, 1.0 - wgt, base, wgt, 0.0)
        else:
            fr = base.copy()
        for lay in layers:
            lay.apply(fr)
        j = sp.start + k
        if ff is not None and j < nb:
            wgt = 1.0 - j / nb
            fr = np.clip(ff * wgt + fr.astype(np.float32) * (1 - wgt) + 0.5, 0, 255).astype(np.uint8)
        if lf is not None and j >= n_total - nb:
            wgt = (j - (n_total - nb) + 1) / nb
            fr = np.clip(lf * wgt + fr.astype(np.float32) * (1 - wgt) + 0.5, 0, 255).astype(np.uint8)
        if ff is not None and j == 0:
            fr = np.clip(ff + 0.5, 0, 255).astype(np.uint8)
        out.append(label.apply(fr))
    return sp, out


def _soundtrack(producer: Producer, req: ProducerRequest) -> np.ndarray | None:
    if not producer.post_production:  # the paper's compositor creative has no audio track
        return None
    return post.soundtrack(req.storyboard, req.fps, producer.tts, req.seed, music=producer.post_settings["music"])


#: edits are encoded at this CRF or better, so frames that are only decoded and re-encoded lose little
EDIT_CRF = 14


def _write(out_path: Path, frames: Iterator[np.ndarray] | Sequence[np.ndarray], fps: float, audio: np.ndarray | None,
           producer: Producer) -> None:
    write_video(out_path, frames, fps, audio=audio, audio_rate=post.AUDIO_RATE,
                crf=min(int(producer.post_settings["crf"]), EDIT_CRF), preset=producer.post_settings["preset"],
                x264_params=producer.post_settings["x264_params"])


def edit_slots(src_video: str | os.PathLike[str], req: ProducerRequest, slots: Sequence[int],
               out_path: str | os.PathLike[str], producer: Producer, base_changed: Sequence[int] = (),
               manifest: ProducerManifest | None = None) -> EditReport:
    """Re-render ``slots`` of the creative at ``src_video`` under ``req`` (the patched plan, same timing) and
    write the spliced creative to ``out_path``; frames of the other slots are the original's decoded frames.
    For the slots in ``base_changed`` (new pictures: camera or assets, not only text) the next slot's dissolve
    frames, which blend from this slot's last picture, are rendered again too. A generative Producer's slots
    are regenerated one after the other by :func:`regenerate_slot` (``manifest``: the render's, for Sora's
    remix)."""
    t0 = time.perf_counter()
    if producer.kind != "compositor":
        cur, rendered, notes, edits = Path(src_video), [], [], []
        todo = sorted(set(slots))
        # Veo: the edited tail (the last slot and the edited slots right before it) continues the footage before
        # it by the API's video extension, first; the other slots are regenerated after, so their last frame is
        # taken from the new tail
        tail = tail_slots(req, todo)
        why = extension_unavailable(producer, req, manifest, tail) if (producer.kind == "veo" and tail) else "n/a"
        steps: list[tuple[str, list[int]]] = []
        if why is None:
            steps.append(("extend", tail))
        elif producer.kind == "veo" and tail:
            notes.append(f"veo: no extension ({why})")
        steps += [("regenerate", [s_]) for s_ in todo if not (why is None and s_ in tail)]
        for n, (op, ss) in enumerate(steps):
            dst = Path(out_path) if n == len(steps) - 1 else Path(out_path).with_suffix(f".slot{ss[0]}.mp4")
            if op == "extend":
                rep = extend_tail(cur, req, ss, dst, producer, manifest)
            else:
                rep = regenerate_slot(cur, req, ss[0], dst, producer, manifest, extend=False)
            if cur != Path(src_video):
                cur.unlink(missing_ok=True)
            cur, rendered, notes, edits = dst, rendered + rep.frames_rendered, notes + [rep.note], edits + rep.edits
        return EditReport(str(out_path), todo, sorted(rendered), probe(out_path).n_frames if todo else 0,
                          time.perf_counter() - t0, "; ".join(notes), edits)
    src_video, out_path = Path(src_video), Path(out_path)
    orig = read_frames(src_video)
    spans = post.slot_spans(req.storyboard, req.fps)
    if spans[-1].stop != len(orig):
        raise EditError(f"creative {src_video}", f"has {len(orig)} frames, the plan's timing needs {spans[-1].stop}: "
                        "slot edits keep the timing (use trim_slot to change it)")
    frames = list(orig)
    rendered: list[int] = []
    for s in sorted(set(slots)):
        sp, new = render_slot_frames(producer, req, s)
        frames[sp.start:sp.stop] = new
        rendered += list(range(sp.start, sp.stop))
    pos = {sp.slot.index: i for i, sp in enumerate(spans)}
    for s in sorted(set(base_changed) - set(slots)):
        raise EditError(f"slot {s}", "base_changed must be a subset of the re-rendered slots")
    for s in sorted(set(base_changed)):
        i = pos.get(s)
        if i is None or i + 1 >= len(spans) or spans[i + 1].slot.index in set(slots):
            continue
        nx = spans[i + 1]
        n_tr = min(int(round(post.TRANSITION_S.get(nx.slot.pacing, 0.0) * req.fps)), nx.n // 3)
        if n_tr > 0:
            _, new = render_slot_frames(producer, req, nx.slot.index)
            frames[nx.start:nx.start + n_tr] = new[:n_tr]
            rendered += list(range(nx.start, nx.start + n_tr))
    _write(out_path, frames, req.fps, _soundtrack(producer, req), producer)
    return EditReport(str(out_path), sorted(set(slots)), rendered, len(frames), time.perf_counter() - t0,
                      edits=[{"operation": "compositor", "slots": sorted(set(slots)), "cost_usd": 0.0}])


def relabel(src_video: str | os.PathLike[str], req: ProducerRequest, out_path: str | os.PathLike[str],
            producer: Producer) -> EditReport:
    """Burn the "AI Created" label into every frame that lacks it (:func:`post.label_present`); frames that
    carry it are left as decoded. The soundtrack is kept (decoded and muxed again)."""
    t0 = time.perf_counter()
    frames = list(read_frames(src_video))
    fixed = []
    for i, fr in enumerate(frames):
        if not post.label_present(fr):
            frames[i] = post.burn_label(fr)
            fixed.append(i)
    info = probe(src_video)
    audio = read_audio(src_video, rate=post.AUDIO_RATE) if info.has_audio else None
    _write(Path(out_path), frames, req.fps, audio, producer)
    spans = post.slot_spans(req.storyboard, req.fps)
    slots = sorted({sp.slot.index for sp in spans for i in fixed if sp.start <= i < sp.stop})
    return EditReport(str(out_path), slots, fixed, len(frames), time.perf_counter() - t0,
                      note=f"label burned into {len(fixed)} of {len(frames)} frames")


def trim_plan(plan: Storyboard, slot_index: int, seconds: float) -> Storyboard:
    """The plan with ``seconds`` cut from the end of slot ``slot_index``; later slots move earlier and the
    duration shrinks by the same amount."""
    slots = []
    for s in sorted(plan.slots, key=lambda x: x.start_s):
        if s.index < slot_index:
            slots.append(s)
        elif s.index == slot_index:
            slots.append(s.model_copy(update={"end_s": round(s.end_s - seconds, 6)}))
        else:
            slots.append(s.model_copy(update={"start_s": round(s.start_s - seconds, 6), "end_s": round(s.end_s - seconds, 6)}))
    return plan.model_copy(update={"slots": slots, "duration_s": round(plan.duration_s - seconds, 6)})


def trim_slot(src_video: str | os.PathLike[str], req: ProducerRequest, slot_index: int, n_frames: int,
              out_path: str | os.PathLike[str], producer: Producer) -> tuple[Storyboard, EditReport]:
    """Cut ``n_frames`` frames from the end of a slot (e.g. a frozen or broken tail). Nothing is rendered: the
    other frames are the original's, in order; returns the re-timed plan and the report."""
    t0 = time.perf_counter()
    frames = list(read_frames(src_video))
    spans = post.slot_spans(req.storyboard, req.fps)
    sp = next((x for x in spans if x.slot.index == slot_index), None)
    if sp is None:
        raise EditError(f"slot {slot_index}", "not in the plan")
    if not 0 < n_frames < sp.n:
        raise EditError(f"slot {slot_index}", f"cannot cut {n_frames} of its {sp.n} frames")
    cut = list(range(sp.stop - n_frames, sp.stop))
    kept = frames[: cut[0]] + frames[sp.stop:]
    plan = trim_plan(req.storyboard, slot_index, n_frames / req.fps)
    new_req = req.model_copy(update={"storyboard": plan})
    _write(Path(out_path), kept, req.fps, _soundtrack(producer, new_req), producer)
    return plan, EditReport(str(out_path), [slot_index], [], len(kept), time.perf_counter() - t0,
                            note=f"cut frames {cut[0]}..{cut[-1]} of slot {slot_index}")


def splice_into(integrated: str | os.PathLike[str], creative: str | os.PathLike[str], offset_frame: int,
                frame_indices: Sequence[int], out_path: str | os.PathLike[str], fps: float, producer: Producer,
                audio_from_creative: bool = True) -> EditReport:
    """Copy frames ``frame_indices`` of the edited ``creative`` into the PCI ``integrated`` video at
    ``offset_frame + i`` (same size required) and the creative's audio over the segment's samples."""
    t0 = time.perf_counter()
    host = list(read_frames(integrated))
    seg = read_frames(creative)
    if seg.shape[1:3] != host[0].shape[:2]:
        raise EditError(f"integrated {integrated}", f"segment size {seg.shape[2]}x{seg.shape[1]} differs from the "
                        f"integrated video's {host[0].shape[1]}x{host[0].shape[0]}")
    for i in frame_indices:
        if 0 <= offset_frame + i < len(host):
            host[offset_frame + i] = seg[i]
    info = probe(integrated)
    audio = None
    if info.has_audio:
        audio = read_audio(integrated, rate=post.AUDIO_RATE)
        if audio_from_creative and probe(creative).has_audio:
            ca = read_audio(creative, rate=post.AUDIO_RATE)
            a0 = int(round(offset_frame / fps * post.AUDIO_RATE))
            n = min(len(ca), max(0, len(audio) - a0))
            audio[a0:a0 + n] = ca[:n]
    _write(Path(out_path), host, fps, audio, producer)
    return EditReport(str(out_path), [], [offset_frame + i for i in frame_indices], len(host), time.perf_counter() - t0,
                      note=f"{len(frame_indices)} segment frames spliced at frame {offset_frame}")




__all__ = ["EditError", "EditReport", "edit_slots", "extend_tail", "extension_unavailable", "generated_footage",
           "regenerate_slot", "producer_for", "producer_request", "relabel", "render_slot_frames", "splice_into",
           "tail_slots", "trim_plan", "trim_slot"]


# ------------------------------------------------------------------------- generative slot edits (issue 17)
def _clip_t0(man: ProducerManifest | None, clip_index: int) -> float:
    clips = (man.settings.get("clips") or []) if man is not None else []
    return float(sum(c.get("seconds", 0) for c in clips[:clip_index]))


def _remix_job(man: ProducerManifest | None, slot_index: int) -> tuple[int, str] | None:
    """The (clip index, API video id) of the Sora job whose clip covers ``slot_index``, from the manifest."""
    for k, c in enumerate((man.settings.get("clips") or []) if man is not None else []):
        if slot_index in (c.get("slots") or []) and c.get("job"):
            return k, str(c["job"])
    return None


def regenerate_slot(src_video: str | os.PathLike[str], req: ProducerRequest, slot_index: int,
                    out_path: str | os.PathLike[str], producer: Producer, manifest: ProducerManifest | None = None, *,
                    remix: bool = True, extend: bool = True) -> EditReport:
    """Regenerate only the clip of ``slot_index`` with a generative Producer (sora, veo, wan) under ``req`` (the
    patched plan, same timing and seed) and splice it into the creative at ``src_video``.

    - Sora with ``remix`` and the manifest's job id of the clip covering the slot: the API's own edit, ``POST
      /videos/{id}/remix`` with the patched prompt of that clip; the slot's time range is cut from the remix.
    - Veo with ``extend``, the last slot, a model that extends videos and the generated clips in the manifest:
      the API's video extension of the footage before the slot (:func:`extend_tail`).
    - Otherwise a new clip of the slot alone, with the same seed (Wan: the seed of that slot's per-slot job),
      its first frame the previous slot's last frame in the creative (slot 0: the request's first frame, else
      the collage), its last frame the next slot's first frame where the model takes one (Veo models with
      ``lastFrame``, Wan pipelines with ``last_image``; Sora takes none).

    The clip is cut to the slot's length, finished like the render (the label; text and dissolves only where
    the render draws them) and put in place of the slot's frames; every other frame is the original's decoded
    frame, re-encoded once."""
    from ..seed import derive_seed  # noqa: PLC0415
    from .clips import ClipProducer, pick_seconds, prompt_for  # noqa: PLC0415

    t0 = time.perf_counter()
    src_video, out_path = Path(src_video), Path(out_path)
    if extend and producer.kind == "veo" and tail_slots(req, [slot_index]) == [slot_index] \
            and extension_unavailable(producer, req, manifest, [slot_index]) is None:
        return extend_tail(src_video, req, [slot_index], out_path, producer, manifest)
    orig = read_frames(src_video)
    sb = req.storyboard
    spans = post.slot_spans(sb, req.fps)
    if spans[-1].stop != len(orig):
        raise EditError(f"creative {src_video}", f"has {len(orig)} frames, the plan's timing needs {spans[-1].stop}")
    pos = [i for i, sp in enumerate(spans) if sp.slot.index == slot_index]
    if not pos:
        raise EditError(f"slot {slot_index}", f"not in the plan (slots {[sp.slot.index for sp in spans]})")
    i = pos[0]
    sp = spans[i]
    width, height = producer.size(req)
    item = f"creative {src_video.name}, slot {slot_index}"
    if i > 0:
        first, first_src = orig[sp.start - 1], "previous slot's last frame"
    elif req.first_frame:
        first, first_src = producer.load(req, req.first_frame, "first_frame"), "first_frame"
    else:
        first, first_src = None, "collage"
    nxt = orig[sp.stop] if i + 1 < len(spans) else None
    note = ""
    if producer.kind == "wan":
        from . import conditioning  # noqa: PLC0415
        from .wan import clip_frames, slot_prompt  # noqa: PLC0415

        pipe = producer.pipeline()
        gw, gh = producer.gen_size(pipe, width, height)
        takes_last = not bool(getattr(pipe.config, "expand_timesteps", False))
        image = first if first is not None else conditioning.collage_array(req, gw, gh)
        prompt = conditioning.name_product(slot_prompt(sb, sp.slot), req, conditioning.product_record(
            req, producer.extra.get("product"), producer.extra.get("products_dir")))
        nf = clip_frames(sp.n / req.fps, producer.gen["gen_fps"], producer.gen["max_frames"],
                         int(pipe.vae_scale_factor_temporal))
        clip = producer._generate(pipe, prompt=prompt, image=image, last_image=nxt if takes_last else None,
                                  num_frames=nf, gw=gw, gh=gh, seed=derive_seed(req.seed, "wan", i))
        cfps = float(producer.gen["gen_fps"])
        note = f"wan: first frame from the {first_src}, last frame {'from the next slot' if (takes_last and nxt is not None) else 'not given'}"
        record = {"operation": "regenerate", "slots": [slot_index], "first_frame": first_src,
                  "last_frame": bool(takes_last and nxt is not None), "seed": derive_seed(req.seed, "wan", i),
                  "cost_usd": 0.0}
    elif isinstance(producer, ClipProducer):
        gw, gh = producer.api_size(req.aspect_ratio)
        job = _remix_job(manifest, slot_index) if (remix and producer.kind == "sora") else None
        if job is not None:
            k, vid = job
            clips = manifest.settings["clips"]
            t_clip = _clip_t0(manifest, k)
            prompt = prompt_for(sb, list(clips[k]["slots"]), t_clip)
            frames, cfps, info = producer.remix(req, vid, prompt, index=k)
            a = int(round((sp.start / req.fps - t_clip) * cfps))
            b = int(round((sp.stop / req.fps - t_clip) * cfps))
            clip = frames[max(0, a):max(a + 1, b)]
            note = f"sora remix of {vid} -> {info.get('job')}"
            record = {"operation": "remix", "slots": [slot_index], "source": vid, "result": info.get("job"),
                      "clip": k, "prompt": info.get("prompt"), "cost_usd": float(info.get("cost_usd", 0.0))}
        else:
            image = first if first is not None else conditioning_image(producer, req, sp, gw, gh)
            last_image = nxt if _takes_last_frame(producer) else None
            clip, cfps, info = producer._clip(
                req, index=i, prompt=prompt_for(sb, [slot_index], sp.start / req.fps),
                image=post.fit_image(image, gw, gh),
                last_image=None if last_image is None else post.fit_image(last_image, gw, gh),
                seconds=pick_seconds(sp.n / req.fps, producer.allowed_seconds), size=(gw, gh))
            info.pop("_video_bytes", None)
            note = (f"{producer.kind}: new clip, first frame from the {first_src}, last frame "
                    f"{'from the next slot' if last_image is not None else 'not given'}")
            record = {"operation": "regenerate", "slots": [slot_index], "first_frame": first_src,
                      "last_frame": last_image is not None, "result": info.get("job") or info.get("operation"),
                      "prompt": info.get("prompt"), "cost_usd": float(info.get("cost_usd", 0.0))}
    else:
        raise EditError(item, f"'{producer.name}' is not a generative Producer (use edit_slots for the compositor)")
    if clip.shape[0] == 0:
        raise EditError(item, "the regenerated clip has no frames")
    keep = max(1, min(clip.shape[0], int(round(sp.n / req.fps * cfps))))
    src = post.clip_source(clip[:keep], width, height)
    prev = orig[sp.start - 1] if i > 0 else None
    _, new = render_slot_frames(producer, req, slot_index, source_override=src, prev_frame=prev,
                                headlines=producer.post_production)
    frames_out = list(orig)
    frames_out[sp.start:sp.stop] = new
    _write_edited(out_path, frames_out, req, producer, src_video)
    return EditReport(str(out_path), [slot_index], list(range(sp.start, sp.stop)), len(frames_out),
                      time.perf_counter() - t0, note, [record])


def _write_edited(out_path: str | Path, frames_out: list[np.ndarray], req: ProducerRequest, producer: Producer,
                  src_video: str | Path) -> None:
    """Write an edited generative creative: post-production's soundtrack, else the clips' own sound as it was."""
    audio = None
    if producer.post_production:
        audio = _soundtrack(producer, req)
    elif probe(src_video).has_audio:
        audio = read_audio(src_video, post.AUDIO_RATE)
    _write(out_path, frames_out, req.fps, audio, producer)


def _takes_last_frame(producer: Producer) -> bool:
    cap = getattr(producer, "cap", None)
    return bool(cap is not None and getattr(cap, "last_frame", False) and getattr(producer, "use_last_frame", True))


def conditioning_image(producer: Producer, req: ProducerRequest, sp: post.SlotSpan, gw: int, gh: int) -> np.ndarray:
    from . import conditioning  # noqa: PLC0415

    if conditioning.uses_collage(producer) and req.collage_path:
        return conditioning.collage_array(req, gw, gh)
    imgs = [producer.load(req, p, f"slot {sp.slot.index} image") for p in producer.conditioning_images(req, sp.slot)]
    return post.fit_image(imgs[0], gw, gh)


# ------------------------------------------------------------------------------ Veo's video extension (issue 17)
def tail_slots(req: ProducerRequest, slots: Sequence[int]) -> list[int]:
    """Of ``slots``, the run of slots in time order that ends with the creative's last slot (every slot of it
    edited), without the first slot (nothing before it to continue); empty when the last slot is not edited."""
    spans = post.slot_spans(req.storyboard, req.fps)
    want = set(slots)
    out: list[int] = []
    for sp in reversed(spans[1:]):
        if sp.slot.index not in want:
            break
        out.insert(0, sp.slot.index)
    return out


def extension_unavailable(producer: Producer, req: ProducerRequest, manifest: ProducerManifest | None,
                          tail: Sequence[int]) -> str | None:
    """Why the tail ``tail`` cannot be made by Veo's video extension (None when it can): the Producer is not
    Veo or its model does not extend videos (:data:`veo.CAPABILITIES`), the manifest does not keep the generated
    clips, a slot before the tail was edited since the render (the footage before it is no longer as
    generated), or that footage is shorter than the API's minimum input."""
    from .veo import CAPABILITIES, EXTEND_INPUT_S  # noqa: PLC0415

    cap = getattr(producer, "cap", None)
    if producer.kind != "veo" or cap is None or not cap.extend:
        return (f"{producer.name} does not extend videos (models that do: "
                f"{', '.join(m for m, c in CAPABILITIES.items() if c.extend)})")
    if manifest is None:
        return "no producer manifest (the generated clips are recorded there)"
    spans = post.slot_spans(req.storyboard, req.fps)
    pos = {sp.slot.index: i for i, sp in enumerate(spans)}
    if not tail or any(s not in pos for s in tail):
        return "no tail of slots to continue"
    first = min(pos[s] for s in tail)
    if first == 0:
        return "the first slot has nothing before it to continue"
    clips = manifest.settings.get("clips") or []
    if not clips or any(not c.get("video_file") for c in clips):
        return "the manifest does not keep the generated clips (rendered before they were kept)"
    earlier = {s for e in (manifest.settings.get("edits") or []) for s in (e.get("slots") or [])}
    moved = sorted(s for s in earlier if pos.get(s, -1) < first)
    if moved:
        return f"slot(s) {moved} before the tail were edited since the render"
    if spans[first].start / req.fps < EXTEND_INPUT_S[0]:
        return f"the footage before slot {spans[first].slot.index} is shorter than {EXTEND_INPUT_S[0]:.0f} s"
    return None


def _clip_bytes(c: dict[str, Any]) -> bytes:
    import hashlib  # noqa: PLC0415

    from ..config import resolve  # noqa: PLC0415

    p = resolve(str(c["video_file"]))
    if not p.is_file():
        raise EditError(f"clip {p}", "the generated clip kept at render time is missing")
    data = p.read_bytes()
    if c.get("video_sha256") and hashlib.sha256(data).hexdigest() != c["video_sha256"]:
        raise EditError(f"clip {p}", "the kept clip's bytes differ from the manifest's sha256")
    return data


def generated_footage(manifest: ProducerManifest, req: ProducerRequest, upto: int
                      ) -> tuple[np.ndarray, float, bytes | None]:
    """The generated frames the creative shows before the slot at time position ``upto``, as the model made them
    (API size, no label or post step): the manifest's kept clips cut as the render cut them (``per="slot"``: each
    slot's clip to its slot's length; ``per="creative"``: the clips joined and split in proportion to the slots).
    Returns the frames, their fps, and the clip's bytes as returned when the footage is exactly one whole clip
    (else None: the footage must be encoded again)."""
    from .clips import decode_clip  # noqa: PLC0415

    clips = manifest.settings.get("clips") or []
    spans = post.slot_spans(req.storyboard, req.fps)
    decoded = [decode_clip(_clip_bytes(c), f"clip {k}") for k, c in enumerate(clips)]
    fps = float(decoded[0][1])
    if manifest.settings.get("per") == "slot":
        pieces = []
        for (frames, f), sp in zip(decoded[:upto], spans[:upto]):
            keep = max(1, min(frames.shape[0], int(round(sp.n / req.fps * f))))
            pieces.append(np.asarray(frames[:keep]))
        whole_first = upto == 1 and pieces[0].shape[0] == decoded[0][0].shape[0]
    else:
        whole = np.concatenate([np.asarray(f) for f, _ in decoded])
        whole = whole[: max(len(spans), min(whole.shape[0], int(round(req.storyboard.duration_s * fps))))]
        a = min(int(spans[upto].start * whole.shape[0] / spans[-1].stop), whole.shape[0] - 1)
        pieces = [whole[:a]]
        whole_first = a == decoded[0][0].shape[0]
    footage = np.concatenate(pieces)
    return footage, fps, (_clip_bytes(clips[0]) if whole_first else None)


def _encode(frames: np.ndarray, fps: float) -> bytes:
    import tempfile  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "footage.mp4"
        write_video(p, list(frames), fps, crf=EDIT_CRF)
        return p.read_bytes()


def extend_tail(src_video: str | os.PathLike[str], req: ProducerRequest, slots: Sequence[int],
                out_path: str | os.PathLike[str], producer: Producer, manifest: ProducerManifest | None) -> EditReport:
    """Re-render the tail ``slots`` (the last slot and the edited slots right before it, :func:`tail_slots`) of a
    Veo creative by the API's video extension: the generated footage before the tail (:func:`generated_footage`;
    one whole clip is sent as the API returned it, else the cut footage encoded again, at most its last 30 s) is
    sent as ``source.video`` with the patched plan's prompt for the next :data:`veo.EXTEND_SECONDS`; the answer
    (input + continuation) is extended again while the tail needs more. The continuation is cut to the tail's
    slots by time, finished like the render (label; text and dissolves only where the render draws them) and
    spliced; every frame before the tail is the original's decoded frame, re-encoded once."""
    from .clips import prompt_for  # noqa: PLC0415
    from .veo import EXTEND_INPUT_S, EXTEND_SECONDS  # noqa: PLC0415

    t0 = time.perf_counter()
    src_video, out_path = Path(src_video), Path(out_path)
    item = f"creative {src_video.name}, tail {list(slots)}"
    if not slots or set(tail_slots(req, slots)) != set(slots):
        raise EditError(item, "not a tail of the creative (the last slot and the slots right before it)")
    why = extension_unavailable(producer, req, manifest, slots)
    if why is not None:
        raise EditError(item, why)
    assert manifest is not None
    orig = read_frames(src_video)
    sb = req.storyboard
    spans = post.slot_spans(sb, req.fps)
    if spans[-1].stop != len(orig):
        raise EditError(item, f"has {len(orig)} frames, the plan's timing needs {spans[-1].stop}")
    first = next(i for i, sp in enumerate(spans) if sp.slot.index in set(slots))
    footage, ffps, exact = generated_footage(manifest, req, first)
    max_in = int(EXTEND_INPUT_S[1] * ffps)
    if footage.shape[0] > max_in:
        footage, exact = footage[-max_in:], None
    video = exact if exact is not None else _encode(footage, ffps)
    source = "clip 0 as generated" if exact is not None else f"footage of {footage.shape[0] / ffps:.2f} s, re-encoded"
    t_start = spans[first].start / req.fps
    need = spans[-1].stop / req.fps - t_start
    n_in_s = footage.shape[0] / ffps
    parts: list[np.ndarray] = []
    got, cfps, ops, cost, m = 0.0, 0.0, [], 0.0, 0
    while got < need - 1e-6:
        window = [sp.slot.index for sp in spans[first:]
                  if sp.start / req.fps < t_start + got + EXTEND_SECONDS and sp.stop / req.fps > t_start + got]
        out, fps, info = producer.extend(req, video, prompt_for(sb, window, t_start + got), index=m)  # type: ignore[attr-defined]
        # the answer is the input and its continuation (a server that answers the continuation alone is taken whole)
        cut = int(round(n_in_s * fps)) if out.shape[0] / fps > n_in_s + 0.5 else 0
        new = np.asarray(out[cut:])
        if new.shape[0] == 0:
            raise EditError(item, f"extension {info.get('operation')} added no frames")
        cfps = cfps or float(fps)
        parts.append(new)
        got += new.shape[0] / fps
        ops.append(info.get("operation"))
        cost += float(info.get("cost_usd", 0.0))
        m += 1
        video, n_in_s = info["_video_bytes"], out.shape[0] / fps
        if n_in_s > EXTEND_INPUT_S[1]:  # the next input: the answer's last 30 s
            keep = np.asarray(out[-int(EXTEND_INPUT_S[1] * fps):])
            video, n_in_s = _encode(keep, fps), keep.shape[0] / fps
    cont = np.concatenate(parts)
    width, height = producer.size(req)
    frames_out = list(orig)
    rendered: list[int] = []
    for sp in spans[first:]:
        a = int(round((sp.start / req.fps - t_start) * cfps))
        b = int(round((sp.stop / req.fps - t_start) * cfps))
        a = min(a, cont.shape[0] - 1)
        src = post.clip_source(cont[a:max(a + 1, b)], width, height)
        _, new_frames = render_slot_frames(producer, req, sp.slot.index, source_override=src,
                                           prev_frame=frames_out[sp.start - 1], headlines=producer.post_production)
        frames_out[sp.start:sp.stop] = new_frames
        rendered += list(range(sp.start, sp.stop))
    _write_edited(out_path, frames_out, req, producer, src_video)
    tail = [sp.slot.index for sp in spans[first:]]
    record = {"operation": "extend", "slots": tail, "source": source, "input_seconds": round(footage.shape[0] / ffps, 3),
              "extensions": len(ops), "result": ops, "cost_usd": round(cost, 4)}
    note = f"veo extension of the {source} ({len(ops)} x {EXTEND_SECONDS} s) for slots {tail}"
    return EditReport(str(out_path), tail, rendered, len(frames_out), time.perf_counter() - t0, note, [record])
