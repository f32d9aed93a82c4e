"""Chapter 00 · setup: the cross-entropy of a uniform guess, the yardstick of every later chapter."""

from __future__ import annotations

import math

from lmcourse.exercises.grading import call, exercise, same_number

ID_UNIFORM = "00.uniform_cross_entropy"


@exercise(ID_UNIFORM, "the cross-entropy of a uniform guess", hints=[
    "Cross-entropy is the average of -log(probability given to the true character), in nats (natural log).",
    "A uniform guess gives each of the V characters the same probability; every term of the average is the same.",
])
def check_uniform_cross_entropy(uniform_cross_entropy) -> None:
    for V in (2, 27, 191, 50257, 1):
        case = f"V = {V}"
        same_number(case, call(case, uniform_cross_entropy, V), math.log(V), rtol=1e-9, atol=1e-12)
