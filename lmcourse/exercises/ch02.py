"""Chapter 02 · word embeddings: the cosine similarity matrix, the skip-gram negative-sampling loss and its
gradients, and the 3CosAdd analogy."""

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
    same_number,
    same_tensor,
    same_value,
)

ID_COSINE, ID_SGNS, ID_ANALOGY = "02.cosine_matrix", "02.sgns_loss_and_grads", "02.three_cos_add"
# Ready-made similarities and analogies the exercises ask the learner to write: refused while the learner's code runs.
SIMILARITY_REFERENCES = ("lmcourse.embeddings", "gensim.models.keyedvectors", "sklearn.metrics.pairwise",
                         "scipy.spatial.distance", "torch.nn.functional.cosine_similarity")


@exercise(ID_COSINE, "the cosine similarity matrix", hints=[
    "cos(u, v) = u.v / (|u| |v|) for every pair of a row of A and a row of B: one matrix product of unit vectors. "
    "Which axis holds a vector's coordinates? And what should an all-zero vector give?",
    "Divide each row by its own norm (np.linalg.norm(A, axis=1, keepdims=True)), guarding all-zero rows "
    "(np.maximum(norm, 1e-12)), then A_unit @ B_unit.T.",
    "unit = lambda X: X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12); return unit(A) @ unit(B).T.",
])
def check_cosine_matrix(cosine_matrix) -> None:
    from lmcourse.embeddings import cosine_similarity

    g = rng(ID_COSINE)
    zero = g.normal(size=(4, 6))
    zero[2] = 0.0
    cases = [("A (5, 8) and B (3, 8)", g.normal(size=(5, 8)), g.normal(size=(3, 8))),
             ("rows of very different lengths", g.normal(size=(4, 10)) * np.array([[1e-3], [1], [1e3], [7]]),
              g.normal(size=(6, 10))),
             ("an all-zero row gives 0, not NaN", zero, g.normal(size=(2, 6))),
             ("A against itself (float32)", *(2 * [g.normal(size=(7, 16)).astype(np.float32)]))]
    for name, A, B in cases:
        with forbidding(*SIMILARITY_REFERENCES):
            got = call(name, cosine_matrix, A.copy(), B.copy())
        if not isinstance(got, np.ndarray):
            raise Wrong(name, f"the result is a {type(got).__name__}; return a numpy array")
        same_array(name, np.asarray(got, dtype=np.float64), cosine_similarity(A[:, None, :], B[None, :, :]), atol=1e-5, rtol=1e-5)


@exercise(ID_SGNS, "the skip-gram negative-sampling loss and its gradients", hints=[
    "The loss pulls the true context's score up and the negatives' scores down: "
    "-[log σ(u_pos·v) + Σ_k log σ(-u_neg_k·v)], summed over the batch. d/ds log σ(s) = σ(-s).",
    "s_pos = (u_pos * v).sum(-1) (B,), s_neg = einsum('bkd,bd->bk', u_neg, v) (B, K); use "
    "torch.nn.functional.logsigmoid (log(sigmoid(x)) is -inf for x below about -100 in float32).",
    "g_pos = -σ(-s_pos) (B,), g_neg = σ(s_neg) (B, K) are dloss/ds; grad_v = g_pos[:, None] * u_pos + "
    "einsum('bk,bkd->bd', g_neg, u_neg); grad_u_pos = g_pos[:, None] * v; grad_u_neg = g_neg[..., None] * v[:, None, :].",
])
def check_sgns_loss_and_grads(sgns_loss_and_grads) -> None:
    from lmcourse.skipgram import SkipGramNS

    cases = [("batch 4, 5 negatives, dim 8", 4, 5, 8, 0.5), ("batch 1, 1 negative, dim 3", 1, 1, 3, 0.5),
             ("large scores (|u·v| up to ~300): numerically stable?", 3, 4, 6, 7.0)]
    for i, (name, B, K, dim, scale) in enumerate(cases):
        g = generator(ID_SGNS, i)
        model = SkipGramNS(1 + B + B * (K + 1), dim)
        with torch.no_grad():
            model.emb_in.copy_(torch.randn(model.emb_in.shape, generator=g) * scale)
            model.emb_out.copy_(torch.randn(model.emb_out.shape, generator=g) * scale)
        ids = torch.randperm(model.emb_in.shape[0], generator=g)  # distinct words: gradients do not add up
        centre, context, negatives = ids[:B], ids[B:2 * B], ids[2 * B:2 * B + B * K].view(B, K)
        with torch.no_grad():
            v, u_pos, u_neg = model.emb_in[centre], model.emb_out[context], model.emb_out[negatives]
        with forbidding(*AUTOGRAD, why="this exercise asks for the gradients by hand, without autograd"), \
                forbidding("lmcourse.skipgram"):
            got = call(name, sgns_loss_and_grads, v.clone(), u_pos.clone(), u_neg.clone())
        if not isinstance(got, tuple) or len(got) != 4:
            raise Wrong(name, f"return a tuple (loss, grad_v, grad_u_pos, grad_u_neg), got {type(got).__name__}")
        loss = model.loss(centre, context, negatives)  # the reference, after the learner's answer
        loss.backward()
        same_number(name, got[0], loss.item(), rtol=1e-5, what="the loss")
        same_tensor(name, got[1], model.emb_in.grad[centre], atol=1e-4, what="grad_v")
        same_tensor(name, got[2], model.emb_out.grad[context], atol=1e-4, what="grad_u_pos")
        same_tensor(name, got[3], model.emb_out.grad[negatives], atol=1e-4, what="grad_u_neg")


@exercise(ID_ANALOGY, "the 3CosAdd analogy", hints=[
    "'a is to b as c is to ?': look for the word whose direction is closest to b - a + c. Are all vectors on "
    "the same footing (length)? Can the answer be one of the question words?",
    "Normalise every row to unit length first, target = unit[b] - unit[a] + unit[c], score every word by "
    "cosine with the target, and skip a, b and c themselves.",
    "unit = vectors / norms; scores = unit @ target; scores[[index[a], index[b], index[c]]] = -inf; "
    "return words[int(scores.argmax())].",
])
def check_three_cos_add(three_cos_add) -> None:
    from lmcourse.embeddings import analogy, to_keyed_vectors

    g = rng(ID_ANALOGY)
    for i in range(4):
        V, dim = 60, 12
        words = [f"w{j}" for j in range(V)]
        vectors = g.normal(size=(V, dim)) * g.uniform(0.1, 5.0, size=(V, 1))  # lengths vary, as word2vec's do
        a, b, c = (words[j] for j in g.choice(V, 3, replace=False))
        if i == 1:  # a, b, c of very different lengths, and a planted short answer near unit(b) - unit(a) + unit(c)
            ia, ib, ic = (words.index(w) for w in (a, b, c))
            for j, length in ((ia, 5.0), (ib, 0.2), (ic, 1.0)):
                vectors[j] *= length / np.linalg.norm(vectors[j])
            unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
            planted = next(j for j in range(V) if j not in (ia, ib, ic))
            vectors[planted] = 0.2 * (unit[ib] - unit[ia] + unit[ic]) + 0.01 * g.normal(size=dim)
        name = f"random vectors of varied lengths, question {i + 1}" + (" (a planted short answer)" if i == 1 else "")
        with forbidding(*SIMILARITY_REFERENCES):
            got = call(name, three_cos_add, vectors.astype(np.float32), list(words), a, b, c)
        same_value(name, got, analogy(to_keyed_vectors(words, vectors), a, b, c, topn=1)[0][0], what="the answer")
