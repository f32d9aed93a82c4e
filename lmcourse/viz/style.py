"""One colour per model family, the same in every chapter's plots."""

MODEL_COLORS = {
    "entropy": "#000000",    # the floor no model can beat
    "ngram": "#1f77b4",
    "word2vec": "#17becf",
    "rnn": "#9467bd",
    "lstm": "#ff7f0e",
    "seq2seq": "#8c564b",
    "transformer": "#2ca02c",
    "gpt": "#d62728",
    "diffusion": "#e377c2",
    "reference": "#7f7f7f",  # torch / gensim / transformers, when we compare against them
}


def model_color(family: str) -> str:
    """The course colour of a model family ("ngram", "lstm", "gpt", ...)."""
    if family not in MODEL_COLORS:
        raise ValueError(f"family={family!r} has no course colour; choose one of {sorted(MODEL_COLORS)}")
    return MODEL_COLORS[family]
