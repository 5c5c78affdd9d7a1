"""Diagnostic: how far a text classifier built from the packaged MiniLM can go on the held-out compliance part.

The embedded default's learned head (``nextads_lib/compliance/head.py``) is a logistic regression on the frozen
MiniLM embedding. This script asks the next question: with every layer of MiniLM fine-tuned on the build split
(one logistic output per text check, class-balanced, the product's own name masked as in the head), what precision
and recall does the held-out part give, and what is the best min(precision, recall) ANY threshold reaches when it
is chosen on the held-out part itself (an oracle: an upper bound, not a figure a shipped check could claim)?
Nothing is written or shipped: fine-tuning costs about 2 CPU minutes on this machine, too much for each
``make study``, and its weights (90 MB) are no part of the repository.

    python scripts/bench_compliance_finetune.py              # 5 epochs, lr 3e-5, seed 0
    python scripts/bench_compliance_finetune.py --epochs 3 --lr 4e-5
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nextads_lib.compliance import bench, head
from nextads_lib.seed import seed_everything


def _pr(y: np.ndarray, f: np.ndarray) -> tuple[float, float]:
    tp, fp, fn = int((f & (y == 1)).sum()), int((f & (y == 0)).sum()), int(((f == 0) & (y == 1)).sum())
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1)


def _oracle(y: np.ndarray, p: np.ndarray, base: np.ndarray) -> tuple[float, float]:
    """The best min(precision, recall) of ``base | (p >= t)`` over thresholds t, and that t."""
    return max((min(_pr(y, base | (p >= t).astype(int))), float(t)) for t in np.linspace(0.05, 0.99, 95))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import torch  # noqa: PLC0415
    from transformers import AutoModel, AutoTokenizer  # noqa: PLC0415
    from transformers.utils import logging as hf_logging  # noqa: PLC0415

    from nextads_lib.embed import _model_dir  # noqa: PLC0415

    seed_everything(args.seed)
    hf_logging.disable_progress_bar()
    ctx = bench.load_context()
    checks = list(head.HEAD_CHECKS)
    cases = bench.load_cases()
    train = [c for c in cases if c["split"] == "build" and c["check"] in checks]
    test = [c for c in cases if c["split"] == "heldout" and c["check"] in checks]

    def text(c: dict) -> str:
        return head.own_masked(c["text"], ctx["products"].get(c.get("product", ctx["default"])))

    tok = AutoTokenizer.from_pretrained(str(_model_dir()))
    enc = AutoModel.from_pretrained(str(_model_dir()))
    out = torch.nn.Linear(enc.config.hidden_size, len(checks))
    opt = torch.optim.AdamW([*enc.parameters(), *out.parameters()], lr=args.lr, weight_decay=0.01)

    def logits(texts: list[str]) -> torch.Tensor:
        b = tok(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
        m = b["attention_mask"].unsqueeze(-1).float()
        return out((enc(**b).last_hidden_state * m).sum(1) / m.sum(1))

    weight = {}
    for ch in checks:
        y = [c["label"] for c in train if c["check"] == ch]
        weight[ch] = (len(y) / (2 * sum(y)), len(y) / (2 * (len(y) - sum(y))))
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    for ep in range(args.epochs):
        enc.train()
        order = rng.permutation(len(train))
        for a in range(0, len(train), 32):
            batch = [train[i] for i in order[a : a + 32]]
            z = logits([text(c) for c in batch])[torch.arange(len(batch)),
                                                  torch.tensor([checks.index(c["check"]) for c in batch])]
            y = torch.tensor([float(c["label"]) for c in batch])
            w = torch.tensor([weight[c["check"]][0 if c["label"] else 1] for c in batch])
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none") * w).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {ep + 1}/{args.epochs}: {time.perf_counter() - t0:.0f} s", flush=True)

    rules = {r["id"]: r["flagged"] for r in bench.evaluate(test, splits=("heldout",), ctx=ctx)}
    enc.eval()
    print(f"{'check':10} {'n':>4} {'fine-tuned P/R':>15} {'rules|FT P/R':>13} {'oracle FT':>12} {'oracle rules|FT':>16}")
    with torch.no_grad():
        for ch in checks:
            cc = [c for c in test if c["check"] == ch]
            y = np.array([c["label"] for c in cc])
            base = np.array([rules[c["id"]] for c in cc])
            p = torch.sigmoid(logits([text(c) for c in cc])[:, checks.index(ch)]).numpy()
            f = (p >= 0.5).astype(int)
            alone, both = _oracle(y, p, np.zeros_like(base)), _oracle(y, p, base)
            print(f"{ch:10} {len(cc):4d} {'%.3f/%.3f' % _pr(y, f):>15} {'%.3f/%.3f' % _pr(y, base | f):>13} "
                  f"{alone[0]:6.3f}@{alone[1]:.2f} {both[0]:10.3f}@{both[1]:.2f}")


if __name__ == "__main__":
    main()
