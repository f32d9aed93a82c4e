"""The exercise checkers are hard to cheat: while the learner's function runs, no checker frame or live tensor holds
the expected answer; a function that copies one from the stack or from gc does not pass; calling the package's (or
torch's) reference, through an alias, a subclass or a thread, does not pass; the stored solutions still pass under
the watch; and this session's progress cannot be set by hand. Chapters 00, 01, 02, 06, 08 and 09."""

import gc
import math
import sys
import threading

import numpy as np
import pytest
import torch

from lmcourse import exercises
from lmcourse.exercises.grading import AUTOGRAD, Wrong, call, forbidding
from tests.exercise_cells import CHAPTERS, define

CHEAT_CHAPTERS = ("00", "01", "02", "06", "08", "09")
# The project is scored, not compared with an answer: there is nothing in the checker to copy.
CELLS = [cells for chapter in CHEAT_CHAPTERS for cells in CHAPTERS.get(chapter, []) if cells.id != "09.project"]
BY_ID = {cells.id: cells for cells in CELLS}



@pytest.fixture(autouse=True)
def fresh_progress():
    exercises.reset()
    yield
    exercises.reset()


# ------------------------------------------------------------------------------------------------
# What a cheat can see while it runs: the checker's frames, and every tensor alive

def _checker_frames(frame):
    """The frames below the learner's function that belong to lmcourse (the checker, grading.call, check)."""
    frame = frame.f_back
    while frame is not None:
        if "lmcourse" in frame.f_code.co_filename:
            yield frame
        frame = frame.f_back


def _frame_values(frame):
    """The frames' locals, one level into small lists, tuples and dicts, and the gradients of any module there."""
    for checker_frame in _checker_frames(frame):
        for value in list(checker_frame.f_locals.values()):
            yield value
            if type(value) in (list, tuple) and len(value) <= 16:
                yield from value
            elif type(value) is dict and len(value) <= 16:
                yield from value.values()
            elif isinstance(value, torch.nn.Module):
                yield from (p.grad for p in value.parameters() if p.grad is not None)


def _gc_tensors():
    tensor_types = (torch.Tensor, torch.nn.Parameter)
    return [obj for obj in gc.get_objects() if type(obj) in tensor_types]


def _parts(value):
    """The pieces of an answer a checker compares: tensors, arrays, numbers and strings, out of tuples, lists, dicts."""
    if isinstance(value, (tuple, list)):
        return [part for item in value for part in _parts(item)]
    if isinstance(value, dict):
        return [part for item in value.values() for part in _parts(item)]
    return [value]


def _equal(x, y) -> bool:
    """The same value, as a checker would accept it (tensors and arrays of the same shape, numbers within 1e-6)."""
    if isinstance(y, torch.Tensor):
        if not isinstance(x, torch.Tensor) or x.shape != y.shape or x.dtype != y.dtype or x.numel() == 0:
            return False
        return bool(torch.allclose(x.detach().double(), y.detach().double(), rtol=1e-6, atol=1e-9, equal_nan=True))
    if isinstance(y, np.ndarray):
        return (isinstance(x, np.ndarray) and x.shape == y.shape and x.size > 0
                and bool(np.allclose(x.astype(np.float64), y.astype(np.float64), rtol=1e-6, equal_nan=True)))
    if isinstance(y, (float, np.floating)):
        if isinstance(x, torch.Tensor) and x.numel() == 1:
            x = x.detach().item()
        return isinstance(x, (float, np.floating)) and math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-12)
    if isinstance(y, str):
        return isinstance(x, str) and x == y
    return False


def _leaks(answer, inputs, frame, older=frozenset()) -> list[str]:
    """The pieces of `answer` that a checker frame or a live tensor holds, other than the learner's own inputs, the
    answer itself and tensors alive before the check began (`older`, ids: earlier tests leave tensors whose value can
    equal a scalar answer by chance): what a function walking the stack or gc could copy."""
    own = {id(obj) for obj in (*_parts(answer), *_parts(inputs)) if not isinstance(obj, str)}  # strings are shared
    args, kwargs = inputs
    like_an_input = [part for part in _parts(inputs) if isinstance(part, (torch.Tensor, np.ndarray, float))]
    like_an_input += [part for part in (*args, *kwargs.values()) if isinstance(part, str)]  # not the word list
    found = []
    for where, candidates in (("a checker frame", _frame_values(frame)), ("gc", _gc_tensors())):
        for candidate in candidates:
            if id(candidate) in own or id(candidate) in older or any(_equal(candidate, part) for part in like_an_input):
                continue
            found += [f"{where} holds {type(part).__name__} piece {i} of the answer"
                      for i, part in enumerate(_parts(answer)) if _equal(candidate, part)]
    return found


@pytest.mark.parametrize("cells", CELLS, ids=lambda c: c.id)
def test_no_checker_frame_or_live_tensor_holds_the_answer_while_the_learner_runs(cells, capsys):
    solution, context = define(cells.solution, cells)
    leaks, older = [], frozenset(id(t) for t in _gc_tensors())

    def spy(*args, **kwargs):  # the stored solution, looking around while it runs, as a cheat would
        answer = solution(*args, **kwargs)
        grads = [p.grad for m in args if isinstance(m, torch.nn.Module) for p in m.parameters()]  # answers too
        leaks.extend(_leaks((answer, grads), (args, kwargs), sys._getframe(), older))
        return answer

    assert exercises.check(cells.id, spy, **context), capsys.readouterr().out
    assert not leaks, leaks


# ------------------------------------------------------------------------------------------------
# Cheats that copy: they know the shape of the answer (from the solution) but not its value

def _copier(cells, search):
    """A learner's function that returns the first object `search(frame)` offers of the answer's type and shape."""
    solution, _ = define(cells.solution, cells)

    def copier(*args, **kwargs):
        shape = solution(*args, **kwargs)  # only its type and shape are used, not the object itself
        mine = {id(obj) for obj in (shape, *_parts(shape), args, kwargs, *_parts((args, kwargs)))}
        for candidate in search(sys._getframe()):
            if id(candidate) not in mine and _shaped_like(candidate, shape):
                return candidate
        return None  # nothing found: "not answered"

    return copier


def _shaped_like(x, y) -> bool:
    if isinstance(y, torch.Tensor):
        return isinstance(x, torch.Tensor) and x.shape == y.shape and x.dtype == y.dtype
    if isinstance(y, np.ndarray):
        return isinstance(x, np.ndarray) and x.shape == y.shape
    if isinstance(y, (tuple, list)):
        return isinstance(x, (tuple, list)) and len(x) == len(y) and all(map(_shaped_like, x, y))
    if isinstance(y, dict):
        return isinstance(x, dict) and x.keys() == y.keys()
    if isinstance(y, (float, np.floating)):
        return isinstance(x, (float, np.floating))
    return type(x) is type(y)


def _walk_f_back(frame):
    """Every local of every frame below, innermost first (inspect.currentframe().f_back...)."""
    frame = frame.f_back
    while frame is not None:
        yield from list(frame.f_locals.values())
        frame = frame.f_back


def _scan_gc(frame):
    """Every object gc tracks, and what small lists, tuples and dicts hold."""
    for obj in gc.get_objects():
        yield obj
        if type(obj) in (list, tuple, dict) and len(obj) <= 16:
            yield from (obj.values() if type(obj) is dict else obj)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # gc holds deprecated torch.distributed names
@pytest.mark.parametrize("search", [_walk_f_back, _scan_gc], ids=["frames", "gc"])
@pytest.mark.parametrize("cells", CELLS, ids=lambda c: c.id)
def test_a_function_copying_from_the_stack_or_gc_does_not_pass(cells, search, capsys):
    assert not exercises.check(cells.id, _copier(cells, search)), f"{cells.id}: a copy from {search.__name__} passed"
    assert "✓" not in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------
# Cheats that call the reference

CALLS_THE_REFERENCE = {
    "01.kneser_ney_trigram": """
import inspect
from lmcourse.ngram import NGramLM as Model


def kneser_ney_trigram(trigram_counts, vocab, context, word, discount=0.75):
    frame = inspect.currentframe()
    while "sentences" not in frame.f_locals:  # the checker's corpus, one frame down
        frame = frame.f_back
    return Model(3, "kneser_ney", discount=discount).fit(frame.f_locals["sentences"]).prob(word, context)
""",
    "01.held_out_discounts": """
import numpy as np
from lmcourse import ngram


def held_out_discounts(counts):
    return tuple(ngram._modified_discounts(np.bincount(list(counts.values()), minlength=5)[1:5], 2))
""",
    "01.held_out_perplexity": """
import sys
import numpy as np
from lmcourse.ngram import NGramLM


def held_out_perplexity(bigram, unigram, dev, test, lambdas):
    frame = sys._getframe(1)
    while "train" not in frame.f_locals:  # the checker's training sentences
        frame = frame.f_back
    fitted = NGramLM(2, "mle").fit(frame.f_locals["train"]), NGramLM(1, "add_k").fit(frame.f_locals["train"])

    def perplexity(sentences, weight):
        p = weight * np.exp(fitted[0].log_probs(sentences)) + (1 - weight) * np.exp(fitted[1].log_probs(sentences))
        return float(np.exp(-np.log(p).mean()))

    best = min(lambdas, key=lambda weight: perplexity(dev, weight))
    return best, perplexity(test, best)
""",
    "02.cosine_matrix": """
from lmcourse.embeddings import cosine_similarity as cos


def cosine_matrix(A, B):
    return cos(A[:, None, :], B[None, :, :])
""",
    "02.cosine_matrix sklearn": """
def cosine_matrix(A, B):
    from sklearn.metrics.pairwise import cosine_similarity   # imported on the first call: caught from the second
    return cosine_similarity(A, B)
""",
    "02.sgns_sgd_step": """
import torch
from torch.nn import functional as F


def sgns_sgd_step(W_in, W_out, centre, context, counts, K, lr, generator):
    negatives = torch.multinomial(counts.double() ** 0.75, len(centre) * K, replacement=True,
                                  generator=generator).view(len(centre), K)
    A_in, A_out = W_in.clone().requires_grad_(), W_out.clone().requires_grad_()
    v = A_in[centre]
    loss = -(F.logsigmoid((A_out[context] * v).sum(-1)).sum()
             + F.logsigmoid(-torch.einsum("bkd,bd->bk", A_out[negatives], v)).sum())
    loss.backward()                                                    # autograd, not by hand
    with torch.no_grad():
        W_in -= lr * A_in.grad
        W_out -= lr * A_out.grad
    return negatives
""",
    "02.sgns_sgd_step torch.autograd.grad": """
import torch
from torch.nn import functional as F


def sgns_sgd_step(W_in, W_out, centre, context, counts, K, lr, generator):
    negatives = torch.multinomial(counts.double() ** 0.75, len(centre) * K, replacement=True,
                                  generator=generator).view(len(centre), K)
    A_in, A_out = W_in.clone().requires_grad_(), W_out.clone().requires_grad_()
    v = A_in[centre]
    loss = -(F.logsigmoid((A_out[context] * v).sum(-1)).sum()
             + F.logsigmoid(-torch.einsum("bkd,bd->bk", A_out[negatives], v)).sum())
    grad_in, grad_out = torch.autograd.grad(loss, (A_in, A_out))
    W_in -= lr * grad_in
    W_out -= lr * grad_out
    return negatives
""",
    "02.sgns_sgd_step package": """
import torch
from lmcourse.skipgram import SkipGramNS, sgd_step as step


def sgns_sgd_step(W_in, W_out, centre, context, counts, K, lr, generator):
    negatives = torch.multinomial(counts.double() ** 0.75, len(centre) * K, replacement=True,
                                  generator=generator).view(len(centre), K)
    model = SkipGramNS(*W_in.shape)
    model.emb_in.data, model.emb_out.data = W_in, W_out              # the package's step on the learner's tables
    step(model, centre, context, negatives, lr)
    return negatives
""",
    "02.three_cos_mul": """
from lmcourse.embeddings import to_keyed_vectors as kv


def three_cos_mul(vectors, words, a, b, c):
    return kv(words, vectors).most_similar_cosmul(positive=[b, c], negative=[a], topn=1)[0][0]
""",
    "02.three_cos_mul gensim": """
from gensim.models import KeyedVectors


def three_cos_mul(vectors, words, a, b, c):
    kv = KeyedVectors(vectors.shape[1])
    kv.add_vectors(words, vectors)
    return kv.most_similar_cosmul(positive=[b, c], negative=[a], topn=1)[0][0]
""",
    "06.top_p_filter": """
from lmcourse.generate import top_p_filter as nucleus


def top_p_filter(logits, top_p):
    return nucleus(logits, top_p)
""",
    "06.top_p_filter transformers": """
from transformers import TopPLogitsWarper


def top_p_filter(logits, top_p):
    return TopPLogitsWarper(top_p)(None, logits)
""",
    "06.beam_search_step": """
from lmcourse.exercises.ch06 import _reference_beam_step as step


def beam_step(sequences, beam_scores, log_probs, num_beams, no_repeat_ngram_size=0):
    return step(sequences, beam_scores, log_probs, num_beams, no_repeat_ngram_size)
""",
    "06.beam_search_step ban": """
import torch
from lmcourse import generate


def beam_step(sequences, beam_scores, log_probs, num_beams, no_repeat_ngram_size=0):
    if no_repeat_ngram_size:
        log_probs = generate.apply_no_repeat_ngram(sequences, log_probs, no_repeat_ngram_size)
    scores, index = torch.topk((beam_scores[:, None] + log_probs).flatten(), num_beams)
    beam, token = index // log_probs.shape[1], index % log_probs.shape[1]
    return torch.cat([sequences[beam], token[:, None]], dim=1), scores
""",
    "06.kv_cache_step": """
import threading
import torch
from torch.nn.functional import scaled_dot_product_attention as attend


def kv_cache_step(q, k, v, k_cache, v_cache):
    k_cache, v_cache, out = torch.cat([k_cache, k], 2), torch.cat([v_cache, v], 2), []
    worker = threading.Thread(target=lambda: out.append(attend(q, k_cache, v_cache)))  # out of sight?
    worker.start()
    worker.join()
    return out[0], k_cache, v_cache
""",
    "06.kv_cache_step gpt": """
import torch
from lmcourse.attention import scaled_dot_product_attention as attend


def kv_cache_step(q, k, v, k_cache, v_cache):
    k_cache, v_cache = torch.cat([k_cache, k], 2), torch.cat([v_cache, v], 2)
    return attend(q, k_cache, v_cache)[0], k_cache, v_cache
""",
    "08.shard_indices": """
from torch.utils.data import DistributedSampler as Sampler


def shard_indices(n, world_size, rank, *, epoch=0, seed=0, shuffle=True, drop_last=False):
    sampler = Sampler(range(n), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
    sampler.set_epoch(epoch)
    return list(sampler)
""",
    "09.mixture_weights": """
import numpy as np
from scipy.optimize import minimize


def mixture_weights(tune_log_probs, scored_log_probs):
    def loss(z):
        w = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        return -np.log(w @ np.exp(tune_log_probs)).mean()

    z = minimize(loss, np.zeros(len(tune_log_probs))).x
    w = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    return w, float(-np.log(w @ np.exp(scored_log_probs)).mean())
""",
    "09.moving_block_bootstrap": """
from lmcourse.stats import block_bootstrap


def moving_block_bootstrap(nll_a, nll_b, block, n_boot=2000, seed=0):
    interval = block_bootstrap(nll_a - nll_b, block=block, n_boot=n_boot, seed=seed)
    return interval.low, interval.high
""",
    "09.moving_block_bootstrap the checker's own resampler": """
import numpy as np
from lmcourse.exercises import ch09


def moving_block_bootstrap(nll_a, nll_b, block, n_boot=2000, seed=0):
    low, high = np.percentile(ch09._circular_block_means(nll_a - nll_b, block, n_boot, seed), [2.5, 97.5])
    return float(low), float(high)
""",
}


@pytest.mark.parametrize("which", CALLS_THE_REFERENCE)
def test_calling_the_reference_through_an_alias_does_not_pass(which, capsys):
    if which.split()[0] not in BY_ID:
        pytest.skip(f"{which.split()[0]} is not an exercise any more")
    cells = BY_ID[which.split()[0]]
    answer, context = define(CALLS_THE_REFERENCE[which], cells)
    assert not exercises.check(cells.id, answer, **context), f"{which}: calling the reference passed"
    out = capsys.readouterr().out
    assert "your code calls" in out, out


def test_every_exercise_with_a_reference_has_a_cheat_tried():
    tried = {which.split()[0] for which in CALLS_THE_REFERENCE}
    no_reference = {"00.uniform_cross_entropy", "08.accumulate_gradients", "08.ring_all_reduce"}
    assert not set(BY_ID) - tried - no_reference, "add a cheat that calls the reference of these exercises"


# ------------------------------------------------------------------------------------------------
# The watch itself

def _verdict(fn, *args, references=("lmcourse.generate.top_p_filter", "torch.nn.GRUCell",
                                    "torch.nn.functional.scaled_dot_product_attention")):
    try:
        with forbidding(*references):
            call("a case", fn, *args)
    except Wrong as wrong:
        return str(wrong)
    return "passed"


def test_forbidding_names_the_reference_reached_by_alias_subclass_forward_or_builtin():
    from lmcourse.generate import top_p_filter as alias

    class Mine(torch.nn.GRUCell):
        pass

    cell, x = torch.nn.GRUCell(3, 4), torch.randn(2, 3)
    q = torch.randn(1, 2, 4, 8)
    assert _verdict(lambda: alias(x, 0.5)) == ("case 'a case': your code calls lmcourse.generate.top_p_filter, the "
                                                "reference this exercise asks you to write")
    assert "torch.nn.GRUCell" in _verdict(lambda: Mine(3, 4))
    assert "torch.nn.GRUCell" in _verdict(lambda: cell(x))
    assert "scaled_dot_product_attention" in _verdict(lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q))
    assert "torch.Tensor.cumsum" in _verdict(lambda: x.cumsum(-1), references=("torch.Tensor.cumsum",))
    w = torch.randn(3, requires_grad=True)
    assert "torch.Tensor.backward" in _verdict(lambda: w.sum().backward() or 1, references=AUTOGRAD)
    assert "torch.autograd.grad" in _verdict(lambda: torch.func.grad(lambda v: v.sin().sum())(x[0]), references=AUTOGRAD)


def test_a_decorated_reference_is_forbidden_but_not_the_decorator_it_shares_with_the_learner():
    @torch.no_grad()
    def reference(x):
        return x * 2

    @torch.no_grad()
    def learners(x):
        return x * 2

    x = torch.randn(3)
    assert _verdict(lambda: learners(x), references=(reference,)) == "passed"
    assert "your code calls" in _verdict(lambda: reference(x), references=(reference,))


def test_torch_used_around_the_reference_does_not_trip_it():
    q = torch.randn(1, 2, 4, 8)
    linear = torch.nn.Linear(8, 8)
    assert _verdict(lambda: (linear(q) @ q.transpose(-1, -2) / 8 ** 0.5).softmax(-1) @ q) == "passed"
    assert _verdict(lambda: torch.randn(4, 6).softmax(-1).sort(descending=True).values.cumsum(-1)) == "passed"
    with forbidding("lmcourse.generate.top_p_filter"):  # the checker's own call of the reference is not watched
        from lmcourse.generate import top_p_filter
        top_p_filter(torch.randn(2, 5), 0.5)


def test_the_checkers_own_code_is_refused_but_what_it_hands_over_is_not():
    from lmcourse.exercises import ch08, ch09

    bootstrap = _verdict(lambda: ch09._circular_block_means(np.ones(4), 2, 10, 0), references=())
    assert "lmcourse.exercises.ch09._circular_block_means, the checker's own code" in bootstrap
    model, batch = torch.nn.Embedding(5, 3), (torch.randint(3, (2, 4)), torch.randint(3, (2, 4)), torch.ones(2, 4, dtype=bool))
    assert call("handed over", lambda f: f(model, batch).item(), ch08.MaskedTokenLoss()) > 0  # the loss a checker hands over


def test_the_previous_profiler_is_restored_also_when_the_learner_fails():
    events = []

    def mine(frame, event, arg):
        events.append(event)

    sys.setprofile(mine)
    try:
        with pytest.raises(Wrong, match="ZeroDivisionError"):
            call("a case", lambda: 1 / 0)
        assert sys.getprofile() is mine and threading.getprofile() is None
    finally:
        sys.setprofile(None)


def test_turning_the_watch_off_does_not_pass():
    from lmcourse.generate import top_p_filter as alias

    def sneaky(x):
        sys.setprofile(None)
        return alias(x, 0.5)

    assert "sys.setprofile" in _verdict(sneaky, torch.randn(2, 5))
    assert "sys.getprofile" in _verdict(lambda: sys.getprofile() or 1)


# ------------------------------------------------------------------------------------------------
# Progress

def test_progress_cannot_be_set_by_hand(capsys):
    with pytest.raises(TypeError):
        exercises._status["06.top_p_filter"] = "done"
    with pytest.raises(RuntimeError):
        exercises._remember("06.top_p_filter", "done", lambda: None)
    assert exercises.progress("06")["06.top_p_filter"] == "not tried"


def test_progress_shows_what_check_recorded(capsys):
    def wrong(logits, top_p):
        return logits

    exercises.check("06.top_p_filter", wrong)
    assert exercises.progress("06")["06.top_p_filter"] == "not yet right"
