"""Named protocols: the paper's experiment, and every departure from it as a labelled switch.

    proto = get_protocol("paper")                                   # what the paper ran (sections 5.1, 5.2, App. A)
    proto = get_protocol("extended")                                # the study's extensions, all on
    proto = get_protocol("paper", post_production=True)             # one deviation alone (an ablation)
    proto.label                                                     # 'paper', 'extended', 'paper+post_production'

Every run manifest, results row and Table 1 row records ``proto.label`` and ``proto.model_dump()``, so a number is
only compared with numbers produced under the same switches (HELM's run specs, VBench's fixed protocols).

The switches (each one a departure from the paper, off under ``"paper"``, on under ``"extended"``):

- ``post_production``: the Producer's clips are rewritten into an ad by the post step: voice-over, music,
  subtitles, text cards, a CTA card, and for PCI the seam blend. Off: the Producer's own frames and audio are the
  creative, and the only addition is the disclosure label.
- ``slot_layouts``: each slot's clip is conditioned on a layout of that slot's assets. Off: the reference collage
  (the paper's grounding, 5.1.1 / 5.3.2) conditions the model.
- ``frame_overwrite``: PCI continuity is pasted in: the segment's first and last frames are overwritten by the
  host frame and blended, and the plan's start/return flags are set by code. Off: the integration frame reaches
  the model as its first (and, where the model takes one, last) frame, and the plan's start/return is validated.
- ``judge_extras``: the judge also sees the plan's narration, a forbidden-claims penalty, the seam times and the
  host summary. Off: exactly Appendix A's inputs for each criterion.
- ``compat_threshold``: below this user-product compatibility the Director falls back to a generic ad (the paper
  proposes this but does not run it). ``0`` under ``"paper"``: every pair gets a personalized plan.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: the fallback threshold of the ``extended`` protocol (tuned to the offline compatibility scorer)
EXTENDED_COMPAT_THRESHOLD = 0.35

SWITCHES = ("post_production", "slot_layouts", "frame_overwrite", "judge_extras", "compat_threshold")


class Protocol(BaseModel):
    """One protocol: a base name and the value of every switch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: Literal["paper", "extended"] = "paper"
    post_production: bool = False
    slot_layouts: bool = False
    frame_overwrite: bool = False
    judge_extras: bool = False
    compat_threshold: float = Field(0.0, ge=0.0, le=1.0)

    @property
    def label(self) -> str:
        """``paper`` / ``extended`` when the switches are the base's own, else the base plus what differs,
        e.g. ``paper+post_production`` or ``paper+compat_threshold=0.2``."""
        ref = PROTOCOLS[self.base]
        diffs = []
        for k in SWITCHES:
            v, r = getattr(self, k), getattr(ref, k)
            if v == r:
                continue
            if isinstance(v, bool):
                diffs.append(k if v else f"no_{k}")
            else:
                diffs.append(f"{k}={v:g}")
        return "+".join([self.base, *diffs])

    @property
    def fallback(self) -> bool:
        return self.compat_threshold > 0


PROTOCOLS: dict[str, Protocol] = {
    "paper": Protocol(base="paper"),
    "extended": Protocol(base="extended", post_production=True, slot_layouts=True, frame_overwrite=True,
                         judge_extras=True, compat_threshold=EXTENDED_COMPAT_THRESHOLD),
}


def get_protocol(name: str | Protocol = "paper", **switches: Any) -> Protocol:
    """The protocol ``name`` (``"paper"`` | ``"extended"``) with ``switches`` overriding single switches.
    Unknown names or switches raise ``ValueError`` naming the valid ones."""
    if isinstance(name, Protocol):
        base = name
    else:
        key = str(name).strip().lower()
        if key not in PROTOCOLS:
            raise ValueError(f"protocol '{name}' is unknown; valid: {', '.join(PROTOCOLS)}")
        base = PROTOCOLS[key]
    bad = sorted(set(switches) - set(SWITCHES))
    if bad:
        raise ValueError(f"protocol switch(es) {', '.join(bad)} unknown; valid: {', '.join(SWITCHES)}")
    return base.model_copy(update={k: v for k, v in switches.items() if v is not None}) if switches else base
