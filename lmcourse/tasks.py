"""Generated toy transduction tasks for encoder-decoder models: exact answers, any length, no download.

`ReversalTask`: "3 1 4 1 5" -> "5 1 4 1 3". The answer's first token depends on the input's last,
so a decoder without attention must carry the whole input in one fixed-size vector; with attention
it reads the input position it needs (an anti-diagonal alignment).

`OrderTask`: a sentence classification that only word order can solve. Both classes use the same
words in the same numbers; the label says which of two marker words comes first, so a bag of words
is at chance by construction, while a model that reads in order can be right every time.

Token ids: 0 = <pad>, 1 = <bos>, 2 = <eos>, then the symbols.
"""

from __future__ import annotations

import torch

from lmcourse.checks import check_int, check_positive_ints

PAD, BOS, EOS = 0, 1, 2
SPECIALS = ("<pad>", "<bos>", "<eos>")


class ReversalTask:
    """Reverse a string of `n_symbols` symbols ("0".."9", then letters) of length min_len..max_len."""

    def __init__(self, n_symbols: int = 10, min_len: int = 2, max_len: int = 12):
        symbols = "0123456789abcdefghijklmnopqrstuvwxyz"
        check_int("n_symbols", n_symbols, 2, len(symbols))
        check_positive_ints(min_len=min_len, max_len=max_len)
        if not min_len <= max_len:
            raise ValueError(f"need 1 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}")
        self.symbols, self.min_len, self.max_len = symbols[:n_symbols], min_len, max_len
        self.itos = list(SPECIALS) + list(self.symbols)
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def target(self, source: str) -> str:
        """The right answer for `source`."""
        return source[::-1]

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise ValueError(f"text must be a str of symbols, got {text!r}; e.g. task.encode({self.symbols[:3]!r})")
        unknown = sorted(set(text) - set(self.symbols))
        if unknown:
            raise ValueError(f"text has symbols {unknown} outside this task's alphabet {self.symbols!r}")
        return [self.stoi[c] for c in text]

    def decode(self, ids) -> str:
        """Ids -> text, stopping at <eos> and skipping <pad>/<bos>."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"ids {bad[:5]} are outside this task's vocabulary [0, vocab_size={self.vocab_size}); "
                             "decode ids of this task (from task.encode or a model trained on it)")
        out = []
        for i in ids:
            if i == EOS:
                break
            if i >= len(SPECIALS):
                out.append(self.itos[i])
        return "".join(out)

    def sample(self, n: int, seed: int, length: int | None = None) -> list[tuple[str, str]]:
        """n (source, target) pairs; lengths uniform in [min_len, max_len] unless `length` is given."""
        check_int("n", n)
        g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
        if length is not None:
            check_int("length", length, fix="or None for lengths in [min_len, max_len]")
        lengths = (torch.full((n,), length) if length is not None
                   else torch.randint(self.min_len, self.max_len + 1, (n,), generator=g))
        pairs = []
        for t in lengths.tolist():
            src = "".join(self.symbols[i] for i in torch.randint(len(self.symbols), (t,), generator=g).tolist())
            pairs.append((src, self.target(src)))
        return pairs

    def batch(self, pairs: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pairs -> (src (B, S) padded, src_lengths (B,), tgt_in (B, T) = <bos> y, tgt_out (B, T) = y <eos>)."""
        if not pairs:
            raise ValueError("pairs is empty; give at least one (source, target) pair, e.g. task.sample(8, seed=0)")
        srcs = [self.encode(s) for s, _ in pairs]
        tgts = [self.encode(t) for _, t in pairs]
        S, T = max(map(len, srcs)), max(map(len, tgts)) + 1
        src = torch.full((len(pairs), S), PAD)
        tgt_in, tgt_out = torch.full((len(pairs), T), PAD), torch.full((len(pairs), T), PAD)
        for b, (s, t) in enumerate(zip(srcs, tgts)):
            src[b, :len(s)] = torch.tensor(s)
            tgt_in[b, :len(t) + 1] = torch.tensor([BOS] + t)
            tgt_out[b, :len(t) + 1] = torch.tensor(t + [EOS])
        return src, torch.tensor([len(s) for s in srcs]), tgt_in, tgt_out

    def batches(self, batch_size: int, seed: int):
        """Endless training batches (src, src_lengths, tgt_in, tgt_out) for `lmcourse.train.train`."""
        step = 0
        while True:
            yield self.batch(self.sample(batch_size, seed=seed * 1_000_003 + step))
            step += 1


FILLERS = ("the", "a", "film", "plot", "was", "and", "very", "actors", "music", "story",
           "it", "is", "but", "scene", "long", "of", "with", "end", "this", "one")


class OrderTask:
    """Label 1 if the word `markers[0]` comes before `markers[1]` in the sentence, else 0.

    Each sentence has min_len..max_len words: both markers once each, the rest drawn uniformly from
    `FILLERS`. Ids: 0 = <pad>, then the fillers, then the two markers.
    """

    def __init__(self, min_len: int = 6, max_len: int = 30, markers: tuple[str, str] = ("cat", "dog")):
        check_positive_ints(min_len=min_len, max_len=max_len)
        if not 2 <= min_len <= max_len:
            raise ValueError(f"need 2 <= min_len <= max_len (two markers per sentence), got "
                             f"min_len={min_len}, max_len={max_len}")
        if len(markers) != 2 or markers[0] == markers[1] or set(markers) & set(FILLERS):
            raise ValueError(f"markers must be two different words that are not fillers, got {markers!r}")
        self.min_len, self.max_len, self.markers = min_len, max_len, tuple(markers)
        self.itos = ["<pad>", *FILLERS, *markers]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def sample(self, n: int, seed: int) -> list[tuple[str, int]]:
        """n (sentence, label) pairs with balanced random labels."""
        check_int("n", n)
        g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
        out = []
        for _ in range(n):
            length = int(torch.randint(self.min_len, self.max_len + 1, (1,), generator=g))
            words = [FILLERS[i] for i in torch.randint(len(FILLERS), (length,), generator=g).tolist()]
            a, b = torch.randperm(length, generator=g)[:2].tolist()  # two distinct positions
            words[a], words[b] = self.markers
            out.append((" ".join(words), int(a < b)))
        return out

    def batch(self, examples: list[tuple[str, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Examples -> (ids (B, T) padded with 0 on the right, lengths (B,), labels (B,))."""
        if not examples:
            raise ValueError("examples is empty; give at least one (sentence, label) pair, e.g. task.sample(8, seed=0)")
        seqs = [[self.stoi[w] for w in s.split()] for s, _ in examples]
        lengths = torch.tensor([len(q) for q in seqs])
        ids = torch.zeros(len(seqs), int(lengths.max()), dtype=torch.long)
        for r, q in enumerate(seqs):
            ids[r, :len(q)] = torch.tensor(q)
        return ids, lengths, torch.tensor([y for _, y in examples])
