"""Chapter 02 · word embeddings: the cosine similarity matrix, one SGD step of skip-gram with negative sampling, and
the 3CosMul analogy.

Each exercise is the step next to one the chapter shows: the matrix of cosines after the pairwise
`cosine_similarity`, the SGD step (negatives drawn, gradients by hand, updates written back) after the SGNS loss,
3CosMul after 3CosAdd. Every expected value is computed after the learner's function has returned, from the
checker's own copies of the inputs."""

from __future__ import annotations

import numpy as np
import torch

from lmcourse.exercises.grading import (
    AUTOGRAD,
    Wrong,
    call,
    exercise,
    forbidding,
    generator,
    rng,
    same_array,
    same_tensor,
    same_value,
)

ID_COSINE, ID_SGNS, ID_ANALOGY = "02.cosine_matrix", "02.sgns_sgd_step", "02.three_cos_mul"
# Ready-made similarities and analogies the exercises ask the learner to write: refused while the learner's code runs.
SIMILARITY_REFERENCES = ("lmcourse.embeddings", "gensim.models.keyedvectors", "sklearn.metrics.pairwise",
                         "scipy.spatial.distance", "torch.nn.functional.cosine_similarity")


# ------------------------------------------------------------------------------------------------ the cosine matrix

@exercise(ID_COSINE, "the cosine similarity matrix", hints=[
    "Start from `lmcourse.embeddings.cosine_similarity`, used on the one-hot vectors near the top: it compares "
    "vectors pair by pair. Here every row of A meets every row of B at once. What is left of a row once you divide "
    "it by its length, and what is the dot product of two such rows?",
    "The vectors are the rows: one length per row, kept as a column so that it divides its own row, then one "
    "matrix product for all pairs. A row of zeros has length 0; the course's convention (that of "
    "`cosine_similarity`) is that it stays a row of zeros, so its similarity with everything is 0.",
    "Precision: in float16 a small guard such as 1e-12 rounds to 0, and the squared length of a row with entries "
    "near 100 overflows. Work in a wide dtype, then hand back the dtype you were given. A strided or transposed "
    "array needs nothing special as long as you use numpy's operations, not its raw memory.",
])
def check_cosine_matrix(cosine_matrix) -> None:
    g = rng(ID_COSINE)
    zero_a, zero_b = g.normal(size=(4, 6)), g.normal(size=(3, 6))
    zero_a[2] = zero_b[0] = 0.0
    half = g.normal(size=(5, 16))
    half[1] = 0.0
    long_rows = g.normal(size=(4, 16))
    long_rows[[0, 3]] *= 100.0
    strided = g.normal(size=(10, 24))
    cases = [("A (5, 8) and B (3, 8), float64", g.normal(size=(5, 8)), g.normal(size=(3, 8))),
             ("rows of very different lengths", g.normal(size=(4, 10)) * np.array([[1e-3], [1], [1e3], [7]]),
              g.normal(size=(6, 10))),
             ("an all-zero row in A and one in B: similarity 0, not NaN", zero_a, zero_b),
             ("A against itself, float32 (the result stays float32)", *(2 * [g.normal(size=(7, 16)).astype(np.float32)])),
             ("float16 with an all-zero row (the result stays float16)", half.astype(np.float16),
              g.normal(size=(3, 16)).astype(np.float16)),
             ("float16 rows with entries near 100 (their squared length overflows float16)",
              long_rows.astype(np.float16), g.normal(size=(2, 16)).astype(np.float16)),
             ("non-contiguous: every other row and column of a larger array, against a transposed array",
              strided[::2, ::3], np.asfortranarray(g.normal(size=(6, 8)))),
             ("one row each", g.normal(size=(1, 5)), g.normal(size=(1, 5)))]
    for name, A, B in cases:
        with forbidding(*SIMILARITY_REFERENCES):
            got = call(name, cosine_matrix, A.copy(order="K"), B.copy(order="K"))
        _cosine_case(name, got, A, B)


def _cosine_case(name: str, got, A: np.ndarray, B: np.ndarray) -> None:
    if not isinstance(got, np.ndarray):
        raise Wrong(name, f"the result is a {type(got).__name__}; return a numpy array")
    dtype = np.result_type(A, B)
    if got.dtype != dtype:
        raise Wrong(name, f"the result has dtype {got.dtype}, but it should keep the inputs' dtype {dtype}")
    # the expected value, only now: unit rows in float64 (a zero row stays zero), then all the dot products
    unit_a, unit_b = (X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-300)
                      for X in (A.astype(np.float64), B.astype(np.float64)))
    tolerance = 2e-3 if dtype == np.float16 else 1e-5
    same_array(name, got.astype(np.float64), unit_a @ unit_b.T, atol=tolerance, rtol=tolerance)


# ------------------------------------------------------------------------------------------------ one SGNS step

@exercise(ID_SGNS, "one SGD step of skip-gram with negative sampling, by hand", hints=[
    "Start from the section 'Skip-gram with negative sampling, by hand': `sgns_loss` is a sum of log-sigmoids, one "
    "per score s = u·v (a positive pair, or a negative with a minus sign). First draw the negatives "
    "(`torch.multinomial` takes weights and your generator); then differentiate one term with respect to its "
    "score, and follow the chain rule to the two vectors that score is made of.",
    "The derivative of log σ(s) is σ(-s) (derive it from σ' = σ(1 - σ)); mind the minus sign inside a negative's "
    "term. A score u·v passes its derivative times u to v and times v to u. Gather every vector the batch needs "
    "before you change anything: all the gradients are taken at the old weights, and the step is -lr times them.",
    "The trap is the write-back. A word can be the centre of several pairs, the context of one and a negative of "
    "another; gradient descent adds every one of those contributions to its row. Assigning rows at repeated "
    "indices keeps only one of them: torch has an in-place operation that adds rows at indices, repeats included. "
    "Test your step on a batch whose pairs all share one centre word.",
])
def check_sgns_sgd_step(sgns_sgd_step) -> None:
    counts_6 = torch.tensor([10_000, 3_000, 1_000, 300, 100, 10])
    cases = [("V=12, a batch of 16 pairs with 3 negatives each: words repeat in every role", 12, 8, 16, 3, 0.1, 0.5,
              torch.float32, None),
             ("one pair, one negative, dim 3", 30, 3, 1, 1, 0.5, 0.5, torch.float32, None),
             ("every pair has the same centre word", 10, 6, 12, 4, 0.2, 0.5, torch.float32, "one centre"),
             ("float64 tables, large scores, lr 0.025", 20, 6, 8, 5, 0.025, 3.0, torch.float64, None),
             ("6 words counted 10000 down to 10, 4000 pairs x 5 negatives: drawn from count^0.75? (float64)", 6, 4,
              4000, 5, 1e-3, 0.3, torch.float64, counts_6)]
    for i, (name, V, dim, B, K, lr, scale, dtype, special) in enumerate(cases):
        g = generator(ID_SGNS, i)
        W_in = (torch.randn(V, dim, generator=g) * scale).to(dtype)
        W_out = (torch.randn(V, dim, generator=g) * scale).to(dtype)
        centre, context = torch.randint(V, (B,), generator=g), torch.randint(V, (B,), generator=g)
        if special == "one centre":
            centre[:] = 3
        counts = special if isinstance(special, torch.Tensor) else torch.randint(1, 200, (V,), generator=g)
        _sgns_case(name, sgns_sgd_step, W_in, W_out, centre, context, counts, K, lr, seed=1000 + i)


def _sgns_case(name, sgns_sgd_step, W_in, W_out, centre, context, counts, K, lr, seed) -> None:
    tables = W_in.clone(), W_out.clone()  # the learner's, updated in place
    global_state = torch.get_rng_state()  # every draw should come from `generator`, none from torch's global one
    with forbidding(*AUTOGRAD, why="this exercise asks for the gradients by hand, without autograd"), \
            forbidding("lmcourse.skipgram"):
        negatives = call(name, sgns_sgd_step, *tables, centre.clone(), context.clone(), counts.clone(), K, lr,
                         torch.Generator().manual_seed(seed))
    if not torch.equal(torch.get_rng_state(), global_state):
        raise Wrong(name, "your code drew from torch's global random generator; make every draw with `generator` "
                          "(pass generator=... to torch.multinomial, torch.randint, ...)")
    _check_negatives(name, negatives, len(centre), K, counts)
    for got, before, what in ((tables[0], W_in, "W_in"), (tables[1], W_out, "W_out")):
        if torch.equal(got, before):
            raise Wrong(name, f"{what} is unchanged: the step updates the tables it is given, in place")
    # the expected value, only now: SGD through autograd on the summed loss, with the negatives the learner drew
    A_in, A_out = W_in.clone().requires_grad_(), W_out.clone().requires_grad_()
    v = A_in[centre]                                                                # (B, d)
    s_pos, s_neg = (A_out[context] * v).sum(-1), torch.einsum("bkd,bd->bk", A_out[negatives], v)  # (B,), (B, K)
    loss = -(torch.nn.functional.logsigmoid(s_pos).sum() + torch.nn.functional.logsigmoid(-s_neg).sum())
    loss.backward()
    with torch.no_grad():
        same_tensor(name, tables[0], W_in - lr * A_in.grad, atol=1e-5, rtol=1e-4, what="W_in after the step")
        same_tensor(name, tables[1], W_out - lr * A_out.grad, atol=1e-5, rtol=1e-4, what="W_out after the step")


def _check_negatives(name: str, negatives, B: int, K: int, counts: torch.Tensor) -> None:
    """Wrong unless `negatives` is a (B, K) tensor of word ids; with many draws, also unless their frequencies fit
    count^0.75 (a chi-square test at p = 1e-6, so a right answer fails once in a million checks)."""
    from scipy.stats import chisquare

    if not isinstance(negatives, torch.Tensor):
        raise Wrong(name, f"the result is a {type(negatives).__name__}; return the negatives, a (B, K) tensor of word ids")
    if tuple(negatives.shape) != (B, K) or negatives.dtype != torch.int64:
        raise Wrong(name, f"the negatives have shape {tuple(negatives.shape)} and dtype {negatives.dtype}; "
                          f"return a ({B}, {K}) int64 tensor of word ids")
    if negatives.min() < 0 or negatives.max() >= len(counts):
        raise Wrong(name, f"the negatives must be word ids in 0..{len(counts) - 1}")
    if negatives.numel() >= 10_000:
        share = counts.double() ** 0.75
        expected = (share / share.sum() * negatives.numel()).numpy()
        seen = torch.bincount(negatives.flatten(), minlength=len(counts)).double().numpy()
        if chisquare(seen, expected).pvalue < 1e-6:
            raise Wrong(name, "the negatives are not drawn from the unigram distribution raised to 0.75 "
                              "(their frequencies fit it with p < 1e-6)")


# ------------------------------------------------------------------------------------------------ 3CosMul

@exercise(ID_ANALOGY, "the 3CosMul analogy", hints=[
    "Start from 3CosAdd (`lmcourse.embeddings.analogy`, section 'How good are the vectors?'): with unit vectors, "
    "the cosine of a candidate with unit(b) - unit(a) + unit(c) ranks the candidates as a sum of three cosines "
    "does. Write that sum out: which similarities raise a candidate's score, and which one lowers it?",
    "Going from a sum to a product, a term that is added becomes a factor, and a term that is subtracted "
    "becomes ... what, so that a larger similarity still lowers the score? All of it on one (V,) array of "
    "scores, one per word. The shift to [0, 1] comes first, on every cosine: a product of two negative "
    "cosines would be positive.",
    "ε guards the one place a 0 could make the score infinite, nowhere else. The question words are candidates "
    "a cosine loves (b's similarity with b is 1): take a, b and c out before picking the best. Check one case "
    "by hand: a word pointing exactly away from a has shifted similarity 0 with it, and must not win merely "
    "for that.",
])
def check_three_cos_mul(three_cos_mul) -> None:
    g = rng(ID_ANALOGY)
    V, dim = 60, 12
    words = [f"w{j}" for j in range(V)]
    name = "3CosAdd and 3CosMul disagree: one candidate very close to b only, one fairly close to both b and c"
    vectors, (ia, ib, ic) = _add_and_mul_disagree(g, V, dim)
    with forbidding(*SIMILARITY_REFERENCES):
        got = call(name, three_cos_mul, vectors.copy(), list(words), words[ia], words[ib], words[ic])
    want = _three_cos_mul(vectors, ia, ib, ic)
    assert want != _three_cos_add(vectors, ia, ib, ic), "the case no longer tells 3CosMul from 3CosAdd"
    same_value(name, got, words[want], what="the answer")
    for i in range(6):
        vectors = g.normal(size=(V, dim)) * g.uniform(0.1, 5.0, size=(V, 1))  # lengths vary, as word2vec's do
        ia, ib, ic = (int(j) for j in g.choice(V, 3, replace=False))
        if i == 1:  # b and c alike, unlike a: b and c are strong candidates if not taken out
            vectors[ic] = vectors[ib] * 0.5 + 0.1 * g.normal(size=dim)
            vectors[ia] = -vectors[ib] + 0.5 * g.normal(size=dim)
        if i == 2:  # a planted short answer near unit(b) - unit(a) + unit(c)
            unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
            planted = next(j for j in range(V) if j not in (ia, ib, ic))
            vectors[planted] = 0.2 * (unit[ib] - unit[ia] + unit[ic]) + 0.01 * g.normal(size=dim)
        if i == 3:  # a along an axis, one word pointing exactly away from it, b and c close to a
            vectors[ia] = 2.0 * np.eye(dim)[0]
            vectors[next(j for j in range(V) if j not in (ia, ib, ic))] = -3.0 * np.eye(dim)[0]
            vectors[ib], vectors[ic] = np.eye(dim)[0] + 0.03 * np.eye(dim)[1], 4 * (np.eye(dim)[0] + 0.03 * np.eye(dim)[2])
        name = f"random vectors of varied lengths, question {i + 1}" + {
            1: " (b and c alike)", 2: " (a planted short answer)", 3: " (a word exactly opposite a)"}.get(i, "")
        with forbidding(*SIMILARITY_REFERENCES):
            got = call(name, three_cos_mul, vectors.astype(np.float32), list(words), words[ia], words[ib], words[ic])
        same_value(name, got, words[_three_cos_mul(vectors.astype(np.float32), ia, ib, ic)], what="the answer")


def _add_and_mul_disagree(g: np.random.Generator, V: int, dim: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    """(V, dim) float32 vectors and the indices of a, b, c, built so that 3CosAdd and 3CosMul pick different words.

    In an orthonormal frame a, b, c are the first three axes; candidate x has cosines (0.9, -0.1) with (b, c), candidate
    y (0.35, 0.35), both 0 with a: the sum (3CosAdd) prefers x, the product of shifted cosines (3CosMul) prefers y. The
    other words lean away from b and c. A random rotation and random lengths hide the frame."""
    frame = np.linalg.qr(g.normal(size=(dim, dim)))[0]  # (dim, dim) orthonormal columns: a random rotation
    a, b, c, x, y = (np.eye(dim)[j] for j in range(5))
    rows = g.normal(size=(V, dim)) * 0.15 - 0.5 * (b + c)  # fillers: negative cosines with b and c
    rows[:, :3] += 0.05 * g.normal(size=(V, 3))
    ia, ib, ic, ix, iy = (int(j) for j in g.choice(V, 5, replace=False))
    rows[ia], rows[ib], rows[ic] = a, b, c
    rows[ix] = 0.9 * b - 0.1 * c + np.sqrt(1 - 0.82) * x
    rows[iy] = 0.35 * b + 0.35 * c + np.sqrt(1 - 2 * 0.35 ** 2) * y
    rows *= g.uniform(0.5, 3.0, size=(V, 1))  # lengths vary, as word2vec's do
    return (rows @ frame.T).astype(np.float32), (ia, ib, ic)


def _three_cos_add(vectors: np.ndarray, ia: int, ib: int, ic: int) -> int:
    """3CosAdd (a, b, c excluded), in float64: the index of its answer, to check that a case separates the two."""
    unit = vectors.astype(np.float64)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    scores = unit @ (unit[ib] - unit[ia] + unit[ic])
    scores[[ia, ib, ic]] = -np.inf
    return int(scores.argmax())


def _three_cos_mul(vectors: np.ndarray, ia: int, ib: int, ic: int) -> int:
    """Levy & Goldberg's 3CosMul (cosines shifted to [0, 1], ε = 1e-3), in float64: the index of the answer."""
    unit = vectors.astype(np.float64)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    shifted = (unit @ unit[[ia, ib, ic]].T + 1) / 2                       # (V, 3)
    scores = shifted[:, 1] * shifted[:, 2] / (shifted[:, 0] + 1e-3)      # (V,)
    scores[[ia, ib, ic]] = -np.inf
    return int(scores.argmax())
