"""Fine-tuning an encoder: a sentence classifier and an extractive question-answering head, with their data.

Read top to bottom: the tasks (`source_sentences`: which corpus, news or Wikipedia, a sentence comes
from; `person_or_place`: is the masked word of a sentence a place or a person?; `reading_comprehension`:
generated who-lives-where contexts with questions whose answer is a span of the context), the heads (`SequenceClassifier` on the [CLS] vector, `SpanQA` with a start and
an end score per token), and the scores (`accuracy`, `best_span`, `span_accuracy`, and the baselines
`bag_of_words_accuracy` and `words_beside_mask_accuracy`).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from lmcourse.checks import check_int, check_number, check_targets, describe
from lmcourse.data import load_corpus
from lmcourse.hub import load_local_hf
from lmcourse.tokenizers import split_sentences, split_words
from lmcourse.transformer import Encoder

__all__ = ["QAExample", "SequenceClassifier", "SpanQA", "accuracy", "bag_of_words_accuracy", "best_span", "hf_answer", "load_local_hf",
           "encode_masked", "encode_qa", "person_or_place", "reading_comprehension", "source_sentences", "span_accuracy",
           "type_baseline_accuracy", "vectors_at", "words_beside_mask", "words_beside_mask_accuracy"]

SOURCES = ("lee", "wiki")  # label 0: Lee news (Australian news wire), label 1: the Wikipedia extract


# ----------------------------------------------------------------------------- a classification task

def source_sentences(split: str, n_per_class: int | None = None, min_words: int = 6, max_words: int = 40,
                     seed: int = 0) -> list[tuple[str, int]]:
    """Sentences labelled by their corpus: 0 = Lee news, 1 = Wikipedia, balanced, shuffled.

    From the corpora's fixed train or valid split (so held-out sentences are never seen in training);
    sentences of min_words..max_words words; n_per_class of each (default: as many as the smaller has).
    """
    if split not in ("train", "valid"):
        raise ValueError(f"split must be 'train' or 'valid', got {split!r}")
    check_int("min_words", min_words)
    check_int("max_words", max_words, minimum=min_words, fix=f"at least min_words={min_words}")
    check_int("seed", seed, minimum=0)
    pools = []
    for name in SOURCES:
        sentences = [s for s in split_sentences(load_corpus(name, split)) if min_words <= len(split_words(s)) <= max_words]
        random.Random(seed).shuffle(sentences)
        pools.append(sentences)
    available = min(len(p) for p in pools)
    if not available:  # the length window, not n_per_class, left a corpus without sentences
        raise ValueError(f"min_words={min_words} to max_words={max_words} leaves no {split!r} sentence in one of "
                         f"the corpora {SOURCES}; widen the window (the default is 6..40 words)")
    n = available if n_per_class is None else check_int("n_per_class", n_per_class, maximum=available,
                                                        fix=f"{split!r} sentences of {min_words}..{max_words} words "
                                                            f"give at most {available} per class")
    pairs = [(s, label) for label, pool in enumerate(pools) for s in pool[:n]]
    random.Random(seed + 1).shuffle(pairs)
    return pairs


# person or place: capitalised words that name a place or a person in the course's corpora; words that name
# both (Darwin, Victoria, Jordan, Washington) are left out
PLACE_WORDS = """
    Australia Sydney Melbourne Canberra Brisbane Adelaide Perth Tasmania Queensland London Paris Berlin Rome
    Moscow Athens Chicago Egypt China India Japan France Germany Italy Spain Russia Canada Texas Ireland Greece
    Afghanistan Pakistan Israel Iraq Iran Kabul Kandahar Jerusalem Indonesia Jakarta Fiji Europe Asia Africa
    America Britain England Scotland Zealand Korea Vietnam Mexico Brazil Argentina Poland Sweden Norway Denmark
    Austria Switzerland Portugal Turkey Syria Lebanon Palestine Gaza Bethlehem Tokyo Beijing Boston Florida
    California York Oxford Cambridge Vienna Madrid Prague Cairo Baghdad Tehran Manila Singapore Malaysia
    Thailand Nepal Kenya Nigeria Ethiopia Babylon Persia Sparta Carthage Venice Florence Naples Sicily Holland
    Belgium Hungary Ukraine Finland Iceland Cuba Chile Peru Bangladesh
""".split()
PERSON_WORDS = """
    John Mary Peter Anna David Maria Paul James Thomas George Robert Michael Henry William Charles Edward
    Richard Louis Arthur Joseph Howard Bush Arafat Sharon Osama Laden Yasser Ariel Tony Simon Mark Andrew
    Stephen Ian Kevin Bob Jim Jack Alexander Napoleon Caesar Plato Aristotle Newton Einstein Marx Lenin Stalin
    Hitler Churchill Lincoln Jefferson Shakespeare Homer Socrates Augustine Luther Calvin Kant Hegel Nietzsche
    Freud Mozart Beethoven Bach Jesus Moses Abraham Muhammad Buddha Elizabeth Anne Margaret Sarah Susan Jane
    Helen Ruth Alice Emily Grace Kate Lisa Philip Harry Frank Fred Martin Karl Albert Isaac Francis Hugh Ralph
    Roger Bill Tom Steve Chris Matthew Daniel Samuel Adam Jonathan
""".split()


def person_or_place(split: str, n_per_class: int | None = None, max_words: int = 30, max_chars: int = 200,
                    seed: int = 0) -> list[tuple[str, int]]:
    """Cloze sentences: a place or a person's name in a sentence of the corpora is replaced by "[MASK]"; label 0 if it
    was a place (`PLACE_WORDS`), 1 if a person (`PERSON_WORDS`). Only the context tells which, as in named-entity
    recognition, and guessing a hidden word from its context is exactly what masked-LM pretraining practised.

    Sentences of 4..max_words words (counted at spaces), at most max_chars characters, from both corpora's fixed
    train or valid split (so held-out sentences are never seen in training or pretraining); a sentence with
    several such words gives one example per word (the others stay visible). Balanced: n_per_class of each label
    (default: as many as the rarer label has), drawn with `seed`, shuffled. Encode with `encode_masked`.
    """
    if split not in ("train", "valid"):
        raise ValueError(f"split must be 'train' or 'valid', got {split!r}")
    check_int("max_words", max_words, minimum=4, fix="sentences have at least 4 words")
    check_int("max_chars", max_chars)
    kind = {w: 0 for w in PLACE_WORDS} | {w: 1 for w in PERSON_WORDS}
    pools = ([], [])
    for sentence in (s for name in SOURCES for s in split_sentences(load_corpus(name, split))):
        words = sentence.split()
        if not 4 <= len(words) <= max_words or len(sentence) > max_chars:
            continue
        for i, word in enumerate(words):
            m = re.fullmatch(r"([A-Za-z]+)((?:'s)?[^A-Za-z]*)", word)  # the name and what follows it: 's , . ) ...
            if m and m.group(1) in kind:
                pools[kind[m.group(1)]].append(" ".join(words[:i] + ["[MASK]" + m.group(2)] + words[i + 1:]))
    available = min(len(p) for p in pools)
    if not available:  # the length limits, not n_per_class, left a label without sentences
        raise ValueError(f"max_words={max_words} and max_chars={max_chars} leave no {split!r} sentence naming a "
                         "place or a person for one of the labels; raise them (the defaults are 30 and 200)")
    n = available if n_per_class is None else check_int("n_per_class", n_per_class, maximum=available,
                                                        fix=f"split {split!r} gives at most {available} per class")
    rng = random.Random(seed)
    pairs = [(s, label) for label, pool in enumerate(pools) for s in rng.sample(pool, n)]
    rng.shuffle(pairs)
    return pairs


def encode_masked(specials, text: str) -> list[int]:
    """Token ids of `text` (no [CLS]) with each literal "[MASK]" as the mask token's id."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {describe(text)}; encode one sentence at a time, e.g. "
                         "[encode_masked(specials, s) for s, _ in pairs]")
    ids = []
    for j, piece in enumerate(text.split("[MASK]")):
        ids += [specials.mask_id] if j else []
        ids += specials.encode(piece) if piece else []
    return ids


def vectors_at(h: torch.Tensor, ids: torch.Tensor, token_id: int, name: str = "token_id") -> torch.Tensor:
    """(B, n_embd): each row's vector of h (B, T, n_embd) at the first position where ids (B, T) hold token_id.
    `name`: the caller's name for token_id, for the error message."""
    if h.ndim != 3 or ids.shape != h.shape[:2]:
        raise ValueError(f"h must be (B, T, n_embd) and ids (B, T) with the same B and T, got h {tuple(h.shape)} "
                         f"and ids {tuple(ids.shape)}")
    hit = ids == token_id
    if not hit.any(1).all():
        raise ValueError(f"{name}={token_id}: some rows of ids do not hold that token; put it in every row")
    return h[torch.arange(len(ids), device=h.device), hit.int().argmax(1).to(h.device)]


def _check_encoder(encoder: object) -> None:
    if not isinstance(encoder, Encoder):
        raise ValueError(f"encoder must be an lmcourse.transformer.Encoder, got {describe(encoder)}; e.g. a "
                         "pretrained MaskedLM's .encoder")


class SequenceClassifier(nn.Module):
    """An `Encoder` + a linear layer on the first ([CLS]) position's vector, or, with `read_id`, on the vector at the
    first position holding that token (e.g. the [MASK] of `person_or_place`: the classifier reads the hidden word's slot).

    forward(ids (B, T), key_padding (B, T) bool, labels (B,) or None) -> (logits (B, n_classes), loss or None).
    """

    def __init__(self, encoder: Encoder, n_classes: int, dropout: float = 0.1, read_id: int | None = None):
        super().__init__()
        _check_encoder(encoder)
        check_int("n_classes", n_classes, minimum=2)
        check_number("dropout", dropout, 0, 1, high_open=True)
        if read_id is not None:
            check_int("read_id", read_id, 0, encoder.config.vocab_size - 1,
                      fix="a token id of the encoder's vocabulary (e.g. specials.mask_id), or None to read [CLS]")
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.config.n_embd, n_classes)
        self.read_id = read_id

    def forward(self, ids: torch.Tensor, key_padding: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        h, _ = self.encoder(ids, key_padding=key_padding)  # (B, T, n_embd)
        vector = h[:, 0] if self.read_id is None else vectors_at(h, ids, self.read_id, "read_id")  # [CLS] sees every token
        logits = self.classifier(self.dropout(vector))  # (B, n_classes)
        if labels is None:
            return logits, None
        check_targets("labels", labels, logits.shape[:1])
        try:
            return logits, F.cross_entropy(logits, labels)
        except IndexError as exc:  # named only when it happens: a range check would cost a device sync per step
            raise ValueError(f"labels must be class ids in [0, n_classes={logits.size(-1)}): {exc}") from exc


@torch.no_grad()
def accuracy(model: nn.Module, ids: torch.Tensor, key_padding: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 128) -> float:
    """Fraction of correct argmax predictions of a `SequenceClassifier` (eval mode, batched)."""
    check_int("batch_size", batch_size)
    if len(ids) == 0:
        raise ValueError("ids is empty (0 examples), so there is no accuracy to measure; give at least one example")
    check_targets("labels", labels, (len(ids),))
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for i in range(0, len(ids), batch_size):
        logits, _ = model(ids[i:i + batch_size].to(device), key_padding[i:i + batch_size].to(device))
        correct += (logits.argmax(-1).cpu() == labels[i:i + batch_size]).sum().item()
    model.train(was_training)
    return correct / len(ids)


def _logistic_accuracy(vectorizer, train: list[tuple[str, int]], test: list[tuple[str, int]], C: float) -> float:
    """Logistic regression (scikit-learn) on the features `vectorizer` makes of each sentence, fitted on `train`;
    its accuracy on `test`."""
    from sklearn.linear_model import LogisticRegression

    for name, examples in (("train", train), ("test", test)):
        if not examples:
            raise ValueError(f"{name} is empty; give (sentence, label) pairs")
    if len({y for _, y in train}) < 2:
        raise ValueError(f"train holds one class only ({train[0][1]!r}); a classifier needs examples of at least two")
    x_train = vectorizer.fit_transform([s for s, _ in train])
    clf = LogisticRegression(C=C, max_iter=2000).fit(x_train, [y for _, y in train])
    return float(clf.score(vectorizer.transform([s for s, _ in test]), [y for _, y in test]))


def bag_of_words_accuracy(train: list[tuple[str, int]], test: list[tuple[str, int]], C: float = 1.0) -> float:
    """The baseline: logistic regression on word counts (scikit-learn), accuracy on `test`. Word order is ignored."""
    from sklearn.feature_extraction.text import CountVectorizer

    return _logistic_accuracy(CountVectorizer(tokenizer=split_words, lowercase=False, token_pattern=None), train, test, C)


def words_beside_mask(text: str, window: int = 2) -> list[str]:
    """The `window` words on each side of the one "[MASK]" in `text`, each named by its place, nearest first:
    "In [MASK] the rain fell" -> ["left-1=in", "left-2=<s>", "right-1=the", "right-2=rain"]. Words as `split_words`
    cuts them (lowercased, a punctuation mark is a word); "<s>" and "</s>" stand beyond the sentence's ends."""
    check_int("window", window)
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {describe(text)}; give one cloze sentence, e.g. 'In [MASK] it rained'")
    if text.count("[MASK]") != 1:
        raise ValueError(f"text must hold exactly one '[MASK]', got {text.count('[MASK]')} in {text[:60]!r}; give a "
                         "cloze sentence such as person_or_place makes")
    before, after = text.split("[MASK]")
    left = split_words(before)[::-1] + ["<s>"] * window   # nearest first
    right = split_words(after) + ["</s>"] * window
    return ([f"left-{i + 1}={w}" for i, w in enumerate(left[:window])]
            + [f"right-{i + 1}={w}" for i, w in enumerate(right[:window])])


def words_beside_mask_accuracy(train: list[tuple[str, int]], test: list[tuple[str, int]], window: int = 2,
                               C: float = 1.0) -> float:
    """The positional baseline of a cloze task: logistic regression on the `window` words each side of "[MASK]",
    one one-hot block per position (`words_beside_mask`: left-1, left-2, ..., right-1, ...), accuracy on `test`.
    It reads the cues right beside the gap in their order ('in [MASK]', '[MASK] said') and nothing else."""
    from sklearn.feature_extraction.text import CountVectorizer

    check_int("window", window)
    return _logistic_accuracy(CountVectorizer(analyzer=lambda text: words_beside_mask(text, window)), train, test, C)


# ----------------------------------------------------------------------------- extractive question answering

# names and places are capitalised as in running text; all are among the 4000 most frequent words of the
# Wikipedia extract, so a small word vocabulary knows them and a byte-pair vocabulary has most as one token
NAMES = ("John", "Mary", "Peter", "Anna", "David", "Maria", "Paul", "James", "Thomas", "George",
         "Robert", "Michael", "Henry", "William", "Charles", "Edward", "Richard", "Louis", "Arthur", "Joseph")
CITIES = ("London", "Paris", "Berlin", "Rome", "Moscow", "Athens", "Chicago", "Egypt", "China", "India",
          "Japan", "France", "Germany", "Italy", "Spain", "Russia", "Canada", "Texas", "Ireland", "Greece")
JOBS = ("teacher", "writer", "poet", "judge", "actor", "king", "philosopher", "president", "student", "author",
        "artist", "leader", "minister", "player", "professor", "bishop", "historian", "queen", "director", "officer")
FACTS = (  # (statement, question, which slot is the answer)
    ("{name} lives in {city} .", "where does {name} live ?", "city"),
    ("{name} works as {article} {job} .", "what is the job of {name} ?", "job"),
    ("{name} was born in {city2} .", "where was {name} born ?", "city2"),
)


@dataclass
class QAExample:
    """A question about a context; the answer is context_words[start:end + 1] (word positions, inclusive)."""

    context: str
    question: str
    answer: str
    start: int
    end: int


def reading_comprehension(n: int, seed: int = 0, n_people: int = 3) -> list[QAExample]:
    """`n` generated reading-comprehension examples: n_people people, each with a city, a birthplace and a
    job, the facts shuffled into one context; the question asks one fact about one person. With two or more
    people, answering needs the question's name and relation matched against the context; with one (a first
    stage of a curriculum) the relation alone answers it."""
    check_int("n", n)
    check_int("seed", seed, minimum=0)
    check_int("n_people", n_people, 1, len(NAMES), fix="how many people each context describes")
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        people = [{"name": name, "city": rng.choice(CITIES), "city2": rng.choice(CITIES), "job": rng.choice(JOBS)}
                  for name in rng.sample(NAMES, n_people)]
        for person in people:
            person["article"] = "an" if person["job"][0] in "aeiou" else "a"
        facts = [(template, person) for person in people for template, _, _ in FACTS]
        rng.shuffle(facts)
        words, spans = [], {}
        for template, person in facts:
            sentence = template.format(**person).split()
            for slot in ("city", "city2", "job"):
                if "{" + slot + "}" in template:
                    position = len(words) + template.split().index("{" + slot + "}")
                    spans[(person["name"], slot)] = position
            words += sentence
        person = rng.choice(people)
        _, question, slot = rng.choice(FACTS)
        position = spans[(person["name"], slot)]
        examples.append(QAExample(" ".join(words), question.format(**person), person[slot], position, position))
    return examples


def type_baseline_accuracy(examples: list[QAExample]) -> float:
    """The baseline a reader must beat: the expected exact-match accuracy of pointing at a random context word of
    the answer's type (a place for where-questions, a job for job-questions), i.e. the mean of 1 / (words of that
    type in the context). It knows what kind of word to look for, not which one."""
    if not examples:
        raise ValueError("examples is empty; give at least one QAExample")
    for ex in examples:
        if not isinstance(ex, QAExample):
            raise ValueError(f"examples must be QAExamples (from reading_comprehension), got a {type(ex).__name__}")
    total = 0.0
    for ex in examples:
        kind = JOBS if ex.answer in JOBS else CITIES
        total += 1 / sum(word in kind for word in ex.context.split())
    return total / len(examples)


def _encode_words(specials, words: list[str]) -> tuple[list[int], list[int]]:
    """Words as ids, each with the spacing it has in running text (a space before a word, none before punctuation,
    so ' where' is one byte-pair token as in the pretraining text, not 'w|here'); and where each word's tokens begin
    (len(words) + 1 positions, the last one the end)."""
    ids, starts = [], []
    for word in words:
        starts.append(len(ids))
        ids += specials.encode(" " + word if word[0].isalnum() else word)
    starts.append(len(ids))
    return ids, starts


def encode_qa(examples: list[QAExample], specials, max_len: int) -> dict[str, torch.Tensor]:
    """[CLS] question [SEP] context [SEP] as ids (N, T), key_padding (N, T), and the answer's token
    positions start/end (N,) in that sequence, plus context_mask (N, T): True on context tokens (where a span may lie),
    and question_word (N, T): the index of the question word each question token belongs to, -1 elsewhere.
    Question and context are encoded word by word as running text is (see `_encode_words`)."""
    if not examples:
        raise ValueError("examples is empty; give at least one QAExample, e.g. reading_comprehension(8)")
    rows, starts, ends, offsets, question_words = [], [], [], [], []
    for ex in examples:
        q, q_starts = _encode_words(specials, ex.question.split())
        c, word_starts = _encode_words(specials, ex.context.split())  # a word may be several byte-pair tokens
        row = [specials.cls_id] + q + [specials.sep_id] + c + [specials.sep_id]
        if len(row) > max_len:
            raise ValueError(f"an example has {len(row)} tokens, more than max_len={max_len}; raise max_len")
        offset = len(q) + 2
        rows.append(row)
        starts.append(offset + word_starts[ex.start])
        ends.append(offset + word_starts[ex.end + 1] - 1)
        offsets.append((offset, offset + len(c)))
        question_words.append([w for w in range(len(q_starts) - 1) for _ in range(q_starts[w], q_starts[w + 1])])
    ids, key_padding = specials.batch(rows, max_len, cls=False)
    positions = torch.arange(ids.shape[1])
    context_mask = torch.stack([(positions >= a) & (positions < b) for a, b in offsets])
    question_word = torch.full_like(ids, -1)
    for i, words in enumerate(question_words):
        question_word[i, 1:1 + len(words)] = torch.tensor(words, dtype=torch.long)
    return {"ids": ids, "key_padding": key_padding, "start": torch.tensor(starts), "end": torch.tensor(ends),
            "context_mask": context_mask, "question_word": question_word}


class SpanQA(nn.Module):
    """An `Encoder` + a linear layer giving each token a start score and an end score (BERT for SQuAD).

    forward(ids (B, T), key_padding (B, T), start (B,) or None, end (B,) or None)
    -> (start_logits (B, T), end_logits (B, T), loss: mean of the start and end cross-entropies, or None).
    """

    def __init__(self, encoder: Encoder):
        super().__init__()
        _check_encoder(encoder)
        self.encoder = encoder
        self.qa_outputs = nn.Linear(encoder.config.n_embd, 2)

    def forward(self, ids: torch.Tensor, key_padding: torch.Tensor | None = None, start: torch.Tensor | None = None,
                end: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        h, _ = self.encoder(ids, key_padding=key_padding)
        start_logits, end_logits = self.qa_outputs(h).unbind(-1)  # (B, T) each
        if key_padding is not None:  # padding is never an answer
            start_logits = start_logits.masked_fill(~key_padding, torch.finfo(start_logits.dtype).min)
            end_logits = end_logits.masked_fill(~key_padding, torch.finfo(end_logits.dtype).min)
        loss = None
        if start is not None and end is not None:
            try:
                loss = (F.cross_entropy(start_logits, start) + F.cross_entropy(end_logits, end)) / 2
            except IndexError as exc:  # named only when it happens: a range check would cost a device sync per step
                raise ValueError(f"start and end must be token positions in [0, T={ids.shape[1]}): {exc}") from exc
        return start_logits, end_logits, loss


def best_span(start_logits: torch.Tensor, end_logits: torch.Tensor, allowed: torch.Tensor | None = None,
              max_answer_len: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """The span (i, j), i <= j < i + max_answer_len, both in `allowed`, with the highest start[i] + end[j].

    start_logits, end_logits (B, T); allowed (B, T) bool (e.g. the context tokens). Returns start, end (B,).
    """
    if start_logits.shape != end_logits.shape or start_logits.ndim != 2:
        raise ValueError(f"start_logits and end_logits must both be (batch, T), got {tuple(start_logits.shape)} "
                         f"and {tuple(end_logits.shape)}")
    if allowed is not None and (not isinstance(allowed, torch.Tensor) or allowed.shape != start_logits.shape):
        raise ValueError(f"allowed must be a bool tensor shaped like start_logits {tuple(start_logits.shape)}, "
                         f"got {describe(allowed)}")
    check_int("max_answer_len", max_answer_len)
    if allowed is not None and not allowed.any(1).all():
        row = int((~allowed.any(1)).nonzero()[0])
        raise ValueError(f"allowed is False everywhere in row {row}, so that row has no span to choose; allow at "
                         "least one position per row (e.g. the context tokens)")
    T = start_logits.shape[1]
    scores = start_logits.float()[:, :, None] + end_logits.float()[:, None, :]  # (B, T_start, T_end)
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    valid = ((j >= i) & (j < i + max_answer_len)).to(scores.device)[None]  # (1, T, T)
    if allowed is not None:
        valid = valid & allowed[:, :, None] & allowed[:, None, :]
    scores = scores.masked_fill(~valid, float("-inf"))
    flat = scores.flatten(1).argmax(-1)  # (B,)
    return flat // T, flat % T


@torch.no_grad()
def span_accuracy(model: SpanQA, batch: dict[str, torch.Tensor], batch_size: int = 128) -> float:
    """Exact-match accuracy: the fraction of examples whose predicted (start, end) is exactly the answer's."""
    check_int("batch_size", batch_size)
    if len(batch["ids"]) == 0:
        raise ValueError("batch['ids'] is empty (0 examples), so there is no accuracy to measure; "
                         "give at least one example (encode_qa of a non-empty list)")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    hits = 0
    for k in range(0, len(batch["ids"]), batch_size):
        part = {name: t[k:k + batch_size] for name, t in batch.items()}
        s, e, _ = model(part["ids"].to(device), part["key_padding"].to(device))
        ps, pe = best_span(s.cpu(), e.cpu(), part["context_mask"])
        hits += ((ps == part["start"]) & (pe == part["end"])).sum().item()
    model.train(was_training)
    return hits / len(batch["ids"])


# ----------------------------------------------------------------------------- a real pretrained model, if cached

# `load_local_hf` (in lmcourse.hub, with the offline guard) loads one from the local cache without any network.


@torch.no_grad()
def hf_answer(model: nn.Module, tokenizer, question: str, context: str, max_answer_len: int = 15) -> str:
    """Extractive QA with a Hugging Face *ForQuestionAnswering model: our `best_span` over the context
    tokens of [CLS] question [SEP] context [SEP], mapped back to the context's characters."""
    enc = tokenizer(question, context, return_tensors="pt", return_offsets_mapping=True, truncation="only_second")
    offsets = enc.pop("offset_mapping")[0]
    context_tokens = torch.tensor([sid == 1 for sid in enc.sequence_ids(0)])[None]  # (1, T)
    device = next(model.parameters()).device
    out = model(**{k: v.to(device) for k, v in enc.items()})
    start, end = best_span(out.start_logits.cpu(), out.end_logits.cpu(), context_tokens, max_answer_len)
    return context[int(offsets[int(start), 0]):int(offsets[int(end), 1])]
