"""Compliance helpers of the Verifier (issue 15): text checks that generalise (:mod:`.text`), reading the
rendered video (:mod:`.ocr`) and the machine-readable AI disclosure of a released creative (:mod:`.disclosure`).
"""
