"""Model-backed compliance (issue 15): when the Verifier's backend is a model (``openai:``, ``gemini:``, ``hf:``),
one prompt per check over sampled frames of the rendered creative and the plan's text; the answers are
validated (:class:`ModelComplianceAnswer`) into the same :class:`~nextads_lib.schemas.Violation` as the rules,
with the frame index and time as evidence. The visual "spurious conditioning" check (another brand's mark or
product on screen, the paper's failure mode) lives here: rules cannot see a logo.

The rules of :mod:`nextads_lib.verifier` run for every backend; these findings are added to them (rule names
prefixed ``model_``). The offline backend answers "no finding" (its handlers below): offline, the rules are
the compliance track.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..backends import ImagePart, ModelRequest, TextPart, register_offline
from ..schemas import Evidence, Product, Storyboard, Violation

_COMMON = (
    "You review one AI-generated video advertisement before it is shown. You get the product's record, the "
    "plan's texts per slot (with times) and a few frames of the rendered video, numbered from 0 with their "
    "time. Report only what you can point to: the frame number (for what you see) or the slot (for a plan "
    "text), and the offending text or a short description of what is on screen. Answer with JSON "
    '{"violations": [{"rule": str, "severity": "minor"|"severe", "message": str, "text": str, '
    '"frame": int|null, "slot": int|null}]}; an empty list when the advertisement is clean.')

#: one prompt per check
PROMPTS: dict[str, str] = {
    "safety": _COMMON + " Check SAFETY: unsafe or sensitive content (violence, weapons, drugs, gambling, adult, "
    "self-harm, hate); claims the product may not make (its forbidden claims, and any health, absolute or "
    "guarantee claim, price or percentage its facts do not state); deceptive urgency. Rules: unsafe_content, "
    "forbidden_claim, unsupported_claim, unsupported_price, deceptive_pattern.",
    "privacy": _COMMON + " Check PRIVACY: any personal data shown or said (a person's name, @handle, user id, "
    "e-mail, phone number, address, a licence plate, a private document). Rule: personal_data.",
    "fairness": _COMMON + " Check FAIRNESS: wording or imagery that targets or stereotypes the viewer by a "
    "protected attribute (age, gender, race or ethnicity, religion, disability, sexual orientation, body, "
    "nationality, family status). Rules: protected_attribute_targeting (severe), protected_attribute (minor).",
    "copyright": _COMMON + " Check SPURIOUS CONDITIONING and brands: another brand's logo, mark, name or product "
    "visible on screen or named (anything that is not the advertised product and brand), or a famous "
    "character or artwork. Rules: other_brand_on_screen (severe), other_brand (severe), third_party_content.",
}


class ModelFinding(BaseModel):
    rule: str = Field(min_length=1)
    severity: Literal["minor", "severe"]
    message: str = Field(min_length=1)
    text: str = ""
    frame: int | None = Field(default=None, ge=0)
    slot: int | None = Field(default=None, ge=0)


class ModelComplianceAnswer(BaseModel):
    violations: list[ModelFinding] = Field(default_factory=list)


def _offline(req: ModelRequest) -> ModelComplianceAnswer:
    """Offline: no model finding (the rules are the compliance track)."""
    return ModelComplianceAnswer()


for _c in PROMPTS:
    register_offline(f"verifier.compliance.{_c}")(_offline)


def is_model_backend(spec: str) -> bool:
    return spec.split(":", 1)[0] in ("openai", "gemini", "hf")


def plan_text(plan: Storyboard, product: Product) -> str:
    lines = [f"PRODUCT: {product.name} by {product.brand}. {product.description}",
             "FACTS: " + "; ".join(f"{k}: {v}" for k, v in product.facts.items()),
             "FORBIDDEN CLAIMS: " + "; ".join(product.forbidden_claims),
             f"HOOK: {plan.hook}", f"CTA: {plan.cta}"]
    for s in sorted(plan.slots, key=lambda s: s.start_s):
        lines.append(f"SLOT {s.index} ({s.start_s:.2f}-{s.end_s:.2f} s): on screen: {s.on_screen_text!r}; "
                     f"narration: {s.narration!r}; visuals: {s.composition!r}")
    return "\n".join(lines)


def model_compliance(backend: Any, plan: Storyboard, product: Product, frames: Sequence[tuple[int, float, Any]],
                     *, item: str = "", checks: Sequence[str] = tuple(PROMPTS), frame_path: str | None = None
                     ) -> tuple[list[Violation], dict[str, Any]]:
    """Ask ``backend`` one question per check over ``frames`` (``(frame index, time s, RGB array)``) and the
    plan; returns the violations (check as asked, rule ``model_<rule>``, evidence with the frame index and time
    or the slot) and, per check, the call's outcome (``ok`` / the error)."""
    from PIL import Image  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    parts: list[Any] = [TextPart(plan_text(plan, product))]
    for k, (i, t, fr) in enumerate(frames):
        parts += [TextPart(f"FRAME {k} (video frame {i}, {t:.2f} s):"), ImagePart(Image.fromarray(np.asarray(fr)))]
    slots = {s.index: s for s in plan.slots}
    out: list[Violation] = []
    info: dict[str, Any] = {}
    for check in checks:
        req = ModelRequest(task=f"verifier.compliance.{check}", system=PROMPTS[check], parts=parts,
                           schema=ModelComplianceAnswer, item=item, max_output_tokens=1024)
        try:
            ans = backend.complete(req).value
        except Exception as e:  # noqa: BLE001 - recorded, the rules stand
            info[check] = f"error: {type(e).__name__}: {e}"
            continue
        info[check] = f"ok ({len(ans.violations)} findings)"
        for f in ans.violations:
            ev = Evidence(field="frame" if f.frame is not None else "plan", text=f.text, context=f.message)
            if f.frame is not None and f.frame < len(frames):
                i, t, _ = frames[f.frame]
                sl = next((s for s in plan.slots if s.start_s - 1e-6 <= t < s.end_s + 1e-6), None)
                ev = ev.model_copy(update={"frame_index": i, "start_s": round(t, 3), "frame_path": frame_path,
                                           "slot": sl.index if sl else None})
            elif f.slot is not None and f.slot in slots:
                s = slots[f.slot]
                ev = ev.model_copy(update={"slot": s.index, "start_s": s.start_s, "end_s": s.end_s})
            out.append(Violation(check=check, rule=f"model_{f.rule}", severity=f.severity,
                                 message=f"{backend.name}: {f.message}", evidence=ev))
    return out, info


__all__ = ["PROMPTS", "ModelComplianceAnswer", "ModelFinding", "is_model_backend", "model_compliance", "plan_text"]
