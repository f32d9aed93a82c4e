"""lmcourse.generate against transformers' generate, on a small GPT-2 built from a config (no download)."""

import pytest
import torch

transformers = pytest.importorskip("transformers")

from transformers.generation.logits_process import (
    MinNewTokensLengthLogitsProcessor,
    MinPLogitsWarper,
    NoBadWordsLogitsProcessor,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    TopKLogitsWarper,
    TopPLogitsWarper,
    TypicalLogitsWarper,
)

from lmcourse.generate import (
    GenerateOutput,
    GenerationConfig,
    apply_bad_words,
    apply_min_new_tokens,
    apply_no_repeat_ngram,
    apply_repetition_penalty,
    banned_ngram_tokens,
    generate,
    min_p_filter,
    process_scores,
    top_k_filter,
    top_p_filter,
    typical_filter,
)

VOCAB = 40


@pytest.fixture(scope="module")
def hf_model():
    torch.manual_seed(0)
    # initializer_range=0.2 (not 0.02) gives a random model with clear-cut, varied preferences
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                                     bos_token_id=0, eos_token_id=0, pad_token_id=0, initializer_range=0.2)
    return transformers.GPT2LMHeadModel(config).eval().double()


@pytest.fixture(scope="module")
def ours(hf_model):
    gpt = pytest.importorskip("lmcourse.gpt")
    return gpt.GPT.from_hf(hf_model)


def hf_generate(model, prompt, seed=None, attention_mask=None, **options):
    """transformers' generate with our options; sampling draws from the global generator seeded with `seed`,
    which yields the same numbers as the private generator `generate(seed=seed)` draws from."""
    eos = options.pop("eos_token_id", None)
    options["top_k"] = options.get("top_k") or 0  # off: transformers' default is 50, ours None
    options.setdefault("do_sample", False)
    if seed is not None:
        torch.manual_seed(seed)
    mask = torch.ones_like(prompt) if attention_mask is None else attention_mask
    return model.generate(prompt, attention_mask=mask, eos_token_id=eos, pad_token_id=eos if eos is not None else 0,
                          **options)


PROMPT = torch.tensor([[5, 9, 2, 7], [11, 3, 3, 8]])
EOS = 23  # with this model and prompt, beams end at different steps, and early_stopping changes the result

CASES = {
    "greedy": dict(max_new_tokens=20),
    "greedy_repetition_penalty": dict(max_new_tokens=20, repetition_penalty=1.3),
    "greedy_no_repeat_3": dict(max_new_tokens=20, no_repeat_ngram_size=3),
    "beam_3": dict(max_new_tokens=12, num_beams=3),
    "beam_5_classic": dict(max_new_tokens=15, num_beams=5, no_repeat_ngram_size=2, early_stopping=True),
    "beam_4_length_penalty": dict(max_new_tokens=12, num_beams=4, length_penalty=0.5),
    "beam_5_never": dict(max_new_tokens=15, num_beams=5, early_stopping="never"),
    "beam_4_never_length_penalty": dict(max_new_tokens=12, num_beams=4, length_penalty=2.0, early_stopping="never"),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("with_eos", [False, True])
def test_generate_matches_transformers_on_hf_model(hf_model, name, with_eos):
    options = dict(CASES[name])
    if with_eos:
        options["eos_token_id"] = EOS
    expected = hf_generate(hf_model, PROMPT, **options)
    got = generate(hf_model, PROMPT, **options)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("use_cache", [False, True])
def test_generate_matches_transformers_on_converted_gpt(hf_model, ours, name, use_cache):
    options = dict(CASES[name])
    options["eos_token_id"] = EOS
    expected = hf_generate(hf_model, PROMPT, **options)
    assert torch.equal(generate(ours, PROMPT, use_cache=use_cache, **options), expected)


def test_early_stopping_changes_the_beam_search_result_here(hf_model):
    """The cases above would not test early_stopping if it made no difference for this model."""
    options = dict(max_new_tokens=15, num_beams=5, no_repeat_ngram_size=2, eos_token_id=EOS)
    assert not torch.equal(generate(hf_model, PROMPT, early_stopping=True, **options)[:, :18],
                           generate(hf_model, PROMPT, early_stopping=False, **options)[:, :18])


def test_early_stopping_never_matches_transformers_where_it_differs_from_false(hf_model):
    options = dict(max_new_tokens=12, num_beams=4, eos_token_id=39)  # here "never" searches on where False stops
    never = generate(hf_model, PROMPT, early_stopping="never", **options)
    assert torch.equal(never, hf_generate(hf_model, PROMPT, early_stopping="never", **options))
    heuristic = generate(hf_model, PROMPT, early_stopping=False, **options)
    assert never.shape != heuristic.shape or not torch.equal(never, heuristic)


def test_kv_cache_gives_identical_tokens_when_sampling(ours):
    options = dict(max_new_tokens=30, do_sample=True, temperature=0.8, top_k=20, top_p=0.9, seed=3)
    assert torch.equal(generate(ours, PROMPT, use_cache=True, **options),
                       generate(ours, PROMPT, use_cache=False, **options))


def test_sampling_with_a_seed_repeats_and_returns_prompt_first(ours):
    a = generate(ours, PROMPT, 25, do_sample=True, seed=1)
    b = generate(ours, PROMPT, 25, do_sample=True, seed=1)
    assert torch.equal(a, b) and a.shape == (2, 4 + 25) and torch.equal(a[:, :4], PROMPT)


def test_sampling_at_tiny_temperature_is_greedy(ours):
    greedy = generate(ours, PROMPT, 15)
    assert torch.equal(generate(ours, PROMPT, 15, do_sample=True, temperature=1e-4, seed=0), greedy)


def test_sampling_with_top_k_1_is_greedy(ours):
    assert torch.equal(generate(ours, PROMPT, 15, do_sample=True, top_k=1, seed=0), generate(ours, PROMPT, 15))


def test_sampled_tokens_follow_the_model_distribution():
    """One step of sampling from a fixed distribution: frequencies match the probabilities (chi-square)."""
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])

    class Fixed(torch.nn.Module):
        def forward(self, idx):
            return probs.log().expand(idx.size(0), idx.size(1), 4)

    draws = generate(Fixed(), torch.zeros(4000, 1, dtype=torch.long), 1, do_sample=True, seed=0)[:, 1]
    counts = torch.bincount(draws, minlength=4).double()
    chi2 = ((counts - 4000 * probs) ** 2 / (4000 * probs)).sum()
    assert chi2 < 16.3  # the 99.9% point of chi-square with 3 degrees of freedom


def test_top_k_filter_matches_transformers():
    scores = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    assert torch.equal(top_k_filter(scores, 7), TopKLogitsWarper(7)(None, scores.clone()))


@pytest.mark.parametrize("top_p", [0.05, 0.5, 0.9, 1.0])
def test_top_p_filter_matches_transformers(top_p):
    scores = torch.randn(3, 50, generator=torch.Generator().manual_seed(1)) * 3
    assert torch.equal(top_p_filter(scores, top_p), TopPLogitsWarper(top_p)(None, scores.clone()))


def test_top_p_keeps_the_smallest_set_with_enough_mass():
    scores = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    kept = torch.isfinite(top_p_filter(scores, 0.75))
    assert kept.tolist() == [[True, True, False, False]]


def test_repetition_penalty_matches_transformers():
    ids = torch.tensor([[1, 4, 4, 7], [0, 2, 3, 9]])
    scores = torch.randn(2, 12, generator=torch.Generator().manual_seed(2))
    expected = RepetitionPenaltyLogitsProcessor(1.7)(ids, scores.clone())
    assert torch.allclose(apply_repetition_penalty(ids, scores, 1.7), expected)


def test_no_repeat_ngram_matches_transformers():
    ids = torch.tensor([[1, 2, 3, 1, 2], [4, 4, 4, 4, 5], [1, 2, 1, 2, 1]])
    scores = torch.zeros(3, 8)
    for n in (1, 2, 3):
        assert torch.equal(apply_no_repeat_ngram(ids, scores, n), NoRepeatNGramLogitsProcessor(n)(ids, scores.clone()))


def test_banned_ngram_tokens_lists_what_followed_the_last_tokens():
    assert banned_ngram_tokens([1, 2, 3, 1, 2], 3) == [3]
    assert banned_ngram_tokens([1, 2], 3) == []


def test_process_scores_ignores_sampling_options_when_greedy():
    scores = torch.randn(2, 10)
    ids = torch.zeros(2, 1, dtype=torch.long)
    assert torch.equal(process_scores(ids, scores, do_sample=False, temperature=0.5, top_k=2), scores)


@pytest.mark.parametrize("bad, message", [
    (dict(do_sample=True, temperature=0.0), "temperature"),
    (dict(top_p=1.5), "top_p"),
    (dict(top_p=0.0), "top_p"),
    (dict(top_k=0), "top_k"),
    (dict(num_beams=0), "num_beams"),
    (dict(no_repeat_ngram_size=-1), "no_repeat_ngram_size"),
    (dict(repetition_penalty=0.0), "repetition_penalty"),
    (dict(max_new_tokens=-1), "max_new_tokens"),
])
def test_bad_options_raise_value_error(hf_model, bad, message):
    options = dict(max_new_tokens=5) | bad
    with pytest.raises(ValueError, match=message):
        generate(hf_model, PROMPT, **options)


def test_prompt_longer_than_block_size_raises_without_crop(hf_model):
    with pytest.raises(ValueError, match="block_size=64.*crop_context=True"):
        generate(hf_model, torch.zeros(1, 60, dtype=torch.long), 10)


@pytest.mark.parametrize("use_cache", [True, False])
def test_crop_context_equals_a_sliding_window_reference(ours, use_cache):
    block = ours.config.block_size
    prompt = torch.randint(ours.config.vocab_size, (2, block - 3), generator=torch.Generator().manual_seed(0))
    out = generate(ours, prompt, 10, crop_context=True, use_cache=use_cache)
    want = prompt
    with torch.no_grad():
        for _ in range(10):  # greedy, each step reading only the last block_size tokens
            logits, _ = ours(want[:, -block:])
            want = torch.cat([want, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert out.shape == (2, block + 7) and torch.equal(out, want)


def test_prompt_must_be_a_2d_long_tensor(hf_model):
    with pytest.raises(ValueError, match="idx must be a LongTensor"):
        generate(hf_model, torch.tensor([1, 2, 3]), 5)


# ---------------------------------------------------------------------------------------------- beam sampling

BATCH = torch.randint(VOCAB, (8, 4), generator=torch.Generator().manual_seed(1))  # 8 prompts: 8 cases per call
BEAM_SAMPLE_FILTERS = [dict(top_k=1), dict(top_k=2), dict(top_p=0.05), dict(top_p=0.5), dict(top_k=3, top_p=0.2)]


@pytest.mark.parametrize("eos", [None, EOS])
def test_beam_sampling_keeps_two_tokens_after_filters_as_transformers(hf_model, eos):
    """Beam sampling keeps min_tokens_to_keep=2 after top-k/top-p (one could be eos): 3 seeds x 2 beam widths x
    5 filters x 8 prompts = 240 cases per eos setting, token for token."""
    for seed in range(3):
        for num_beams in (2, 3):
            for filters in BEAM_SAMPLE_FILTERS:
                options = dict(do_sample=True, num_beams=num_beams, max_new_tokens=5, eos_token_id=eos, **filters)
                expected = hf_generate(hf_model, BATCH, seed=seed, **options)
                assert torch.equal(generate(hf_model, BATCH, seed=seed, **options), expected), (seed, options)


@pytest.mark.parametrize("options", [dict(top_k=0), dict(temperature=0.7, top_k=5, top_p=0.8)], ids=str)
def test_sampling_matches_transformers_with_the_same_seed(hf_model, options):
    """5 seeds x 8 prompts = 40 sampled sequences per case, token for token."""
    options = dict(options, do_sample=True, max_new_tokens=12, eos_token_id=EOS)
    for seed in range(5):
        expected = hf_generate(hf_model, BATCH, seed=seed, **options)
        ours = dict(options, top_k=options["top_k"] or None)
        assert torch.equal(generate(hf_model, BATCH, seed=seed, **ours), expected), seed


def test_filters_keep_min_tokens_to_keep_as_transformers():
    """top-k, top-p, min-p and typical-p on 64 random rows, for every setting below (288 comparisons)."""
    scores = torch.randn(64, 30, generator=torch.Generator().manual_seed(3)) * 3
    for keep in (1, 2, 3):
        for k in (1, 2, 5):
            assert torch.equal(top_k_filter(scores, k, keep), TopKLogitsWarper(k, min_tokens_to_keep=keep)(None, scores))
        for p in (0.01, 0.3, 0.9, 1.0):
            assert torch.equal(top_p_filter(scores, p, keep), TopPLogitsWarper(p, min_tokens_to_keep=keep)(None, scores))
        for p in (0.0, 0.05, 0.3, 1.0):
            assert torch.equal(min_p_filter(scores, p, keep), MinPLogitsWarper(p, min_tokens_to_keep=keep)(None, scores))
        for p in (0.01, 0.2, 0.5, 0.95):
            assert torch.equal(typical_filter(scores, p, keep),
                               TypicalLogitsWarper(p, min_tokens_to_keep=keep)(None, scores))


# ---------------------------------------------------------------------------------------------- NaN and shapes

class NaNAfterTwoSteps(torch.nn.Module):
    """Logits that turn NaN once the sequence is 6 tokens long (as a model with a NaN weight on some path)."""

    def forward(self, idx):
        logits = torch.zeros(*idx.shape, VOCAB)
        return logits.fill_(float("nan")) if idx.size(1) >= 6 else logits


@pytest.mark.parametrize("options", [dict(), dict(do_sample=True, seed=0), dict(num_beams=2)], ids=str)
def test_nan_logits_raise_naming_the_step(options):
    with pytest.raises(ValueError, match="NaN logits at generation step 3.*half precision"):
        generate(NaNAfterTwoSteps(), PROMPT, 5, **options)


def test_process_scores_refuses_ids_and_scores_with_different_rows():
    with pytest.raises(ValueError, match=r"ids .*\(2, 2\).*scores .*\(3, 40\)"):
        process_scores(torch.tensor([[1, 2], [3, 4]]), torch.zeros(3, VOCAB), repetition_penalty=1.2)


# ---------------------------------------------------------------------------------------------- options

OPTION_CASES = {
    "sample_3_returns": dict(do_sample=True, num_return_sequences=3, max_new_tokens=8),
    "beam_4_best_2": dict(num_beams=4, num_return_sequences=2, max_new_tokens=8),
    "beam_3_best_3": dict(num_beams=3, num_return_sequences=3, max_new_tokens=10, length_penalty=0.5),
    "beam_sample_3_best_2": dict(do_sample=True, num_beams=3, num_return_sequences=2, max_new_tokens=6),
    "greedy_min_new_tokens": dict(min_new_tokens=6, max_new_tokens=10),
    "sample_min_new_tokens": dict(do_sample=True, min_new_tokens=5, max_new_tokens=8),
    "beam_min_new_tokens": dict(num_beams=3, min_new_tokens=4, max_new_tokens=8),
    "greedy_bad_words": dict(bad_words_ids=[[7], [3, 9], [12, 30, 5], [EOS]], max_new_tokens=12),
    "beam_bad_words": dict(num_beams=3, bad_words_ids=[[1], [2], [25, 17]], max_new_tokens=8),
    "sample_bad_words": dict(do_sample=True, bad_words_ids=[[7], [3, 9]], max_new_tokens=8),
    "sample_min_p": dict(do_sample=True, min_p=0.2, max_new_tokens=10),
    "sample_min_p_temperature": dict(do_sample=True, min_p=0.05, temperature=1.5, top_k=10, max_new_tokens=10),
    "sample_typical_p": dict(do_sample=True, typical_p=0.5, max_new_tokens=10),
    "beam_sample_min_p_typical_p": dict(do_sample=True, num_beams=2, min_p=0.1, typical_p=0.9, max_new_tokens=6),
}


@pytest.mark.parametrize("name", sorted(OPTION_CASES))
def test_option_matches_transformers(hf_model, name):
    """Each option against transformers' generate: 2 seeds x 8 prompts (x num_return_sequences rows) per case."""
    options = dict(OPTION_CASES[name], eos_token_id=EOS)
    for seed in range(2):
        expected = hf_generate(hf_model, BATCH, seed=seed, **options)
        got = generate(hf_model, BATCH, seed=seed if options.get("do_sample") else None, **options)
        assert torch.equal(got, expected), seed


@pytest.mark.parametrize("name", ["greedy", "sample_3_returns", "beam_4_best_2", "beam_sample_min_p_typical_p"])
def test_output_scores_match_transformers(hf_model, name):
    """The processed scores of every step (transformers: output_scores=True, return_dict_in_generate=True)."""
    options = dict(OPTION_CASES.get(name, dict(max_new_tokens=8)), eos_token_id=EOS)
    seed = 0 if options.get("do_sample") else None
    expected = hf_generate(hf_model, BATCH, seed=seed, output_scores=True, return_dict_in_generate=True, **options)
    got = generate(hf_model, BATCH, seed=seed, output_scores=True, **options)
    assert isinstance(got, GenerateOutput) and torch.equal(got.sequences, expected.sequences)
    assert len(got.scores) == len(expected.scores)
    for ours, theirs in zip(got.scores, expected.scores):
        assert torch.equal(ours, theirs)


@pytest.mark.parametrize("use_cache", [False, True])
def test_options_match_transformers_on_converted_gpt(hf_model, ours, use_cache):
    options = dict(num_beams=3, num_return_sequences=2, min_new_tokens=3, bad_words_ids=[[7], [3, 9]],
                   max_new_tokens=8, eos_token_id=EOS)
    assert torch.equal(generate(ours, BATCH, use_cache=use_cache, **options), hf_generate(hf_model, BATCH, **options))


def test_num_return_sequences_rows_follow_their_prompt(ours):
    out = generate(ours, PROMPT, 5, do_sample=True, num_return_sequences=3, seed=0)
    assert out.shape == (6, 9) and torch.equal(out[:, :4], PROMPT.repeat_interleave(3, dim=0))


def test_bad_words_matches_transformers_processor():
    ids = torch.tensor([[1, 3, 9, 3], [12, 30, 5, 12], [4, 4, 4, 30]])
    scores = torch.randn(3, VOCAB, generator=torch.Generator().manual_seed(4))
    words = [[7], [3, 9], [12, 30], [4, 30, 2], [30, 11, 30, 6]]  # the last one is longer than the rows
    assert torch.equal(apply_bad_words(ids, scores, words), NoBadWordsLogitsProcessor(words)(ids, scores.clone()))


def test_min_new_tokens_matches_transformers_processor():
    scores = torch.randn(2, VOCAB, generator=torch.Generator().manual_seed(5))
    for length in (4, 6, 7, 9):
        ids = torch.zeros(2, length, dtype=torch.long)
        expected = MinNewTokensLengthLogitsProcessor(4, 3, EOS)(ids, scores.clone())
        assert torch.equal(apply_min_new_tokens(ids, scores, 4, 3, EOS), expected), length


def test_repetition_penalty_skips_left_padding_as_transformers():
    ids = torch.tensor([[5, 5, 1, 2], [5, 3, 3, 4], [9, 8, 7, 6]])
    n_pads = torch.tensor([2, 1, 0])
    scores = torch.randn(3, 12, generator=torch.Generator().manual_seed(6))
    expected = RepetitionPenaltyLogitsProcessor(1.5, prompt_ignore_length=n_pads)(ids, scores.clone())
    assert torch.equal(apply_repetition_penalty(ids, scores, 1.5, n_pads=n_pads), expected)


# ---------------------------------------------------------------------------------------------- GenerationConfig

def test_generation_config_gives_the_same_tokens_as_keywords(hf_model):
    config = GenerationConfig(max_new_tokens=10, num_beams=3, no_repeat_ngram_size=2, eos_token_id=EOS)
    assert torch.equal(generate(hf_model, PROMPT, generation_config=config),
                       generate(hf_model, PROMPT, 10, num_beams=3, no_repeat_ngram_size=2, eos_token_id=EOS))


def test_keywords_override_the_generation_config(hf_model):
    config = GenerationConfig(max_new_tokens=10, do_sample=True, top_k=5, seed=1)
    assert torch.equal(generate(hf_model, PROMPT, 4, generation_config=config, seed=2),
                       generate(hf_model, PROMPT, 4, do_sample=True, top_k=5, seed=2))


def test_unknown_option_is_a_type_error_suggesting_the_name(hf_model):
    with pytest.raises(TypeError, match="'top_n'.*did you mean 'top_p'"):
        generate(hf_model, PROMPT, 5, top_n=0.9)


def test_generation_config_checks_its_fields_when_built():
    with pytest.raises(ValueError, match="top_p must be in"):
        GenerationConfig(top_p=1.5)


# ---------------------------------------------------------------------------------------------- left padding

PADDED = torch.tensor([[0, 0, 0, 5, 9], [11, 3, 3, 8, 2], [0, 0, 14, 6, 6], [0, 0, 0, 0, 21]])
PAD_MASK = (torch.arange(5) >= torch.tensor([3, 0, 2, 4])[:, None]).long()  # 1 = real token, 0 = left padding

PADDING_CASES = {
    "greedy": dict(max_new_tokens=10),
    "greedy_repetition_penalty": dict(max_new_tokens=10, repetition_penalty=1.5),
    "sample": dict(do_sample=True, top_k=10, max_new_tokens=10),
    "sample_2_returns": dict(do_sample=True, num_return_sequences=2, max_new_tokens=10),
    "beam_3": dict(num_beams=3, max_new_tokens=8),
    "beam_3_best_2_no_repeat": dict(num_beams=3, num_return_sequences=2, no_repeat_ngram_size=2, max_new_tokens=8),
}


@pytest.mark.parametrize("name", sorted(PADDING_CASES))
def test_left_padded_batch_matches_transformers_on_hf_model(hf_model, name):
    """4 prompts of lengths 2, 5, 3 and 1 in one batch, 2 seeds when sampling."""
    options = dict(PADDING_CASES[name], eos_token_id=EOS)
    for seed in range(2) if options.get("do_sample") else [None]:
        expected = hf_generate(hf_model, PADDED, seed=seed, attention_mask=PAD_MASK, **options)
        assert torch.equal(generate(hf_model, PADDED, seed=seed, attention_mask=PAD_MASK, **options), expected)


class NoMask(torch.nn.Module):
    """A model whose forward takes token ids only (as an LSTM of the course)."""

    def forward(self, idx):
        return torch.zeros(*idx.shape, VOCAB)


@pytest.mark.parametrize("bad, message", [
    (dict(attention_mask=torch.ones(2, 3, dtype=torch.long)), r"attention_mask .*shape of idx \(4, 5\)"),
    (dict(attention_mask=PAD_MASK.float()), r"attention_mask .*0s and 1s"),
    (dict(attention_mask=PAD_MASK * 2), r"attention_mask .*0s and 1s"),
    (dict(attention_mask=PAD_MASK.flip(1)), r"attention_mask must pad on the left"),
    (dict(attention_mask=PAD_MASK * torch.tensor([[1], [1], [1], [0]])), r"attention_mask rows \[3\] are all padding"),
])
def test_bad_attention_mask_raises_value_error(hf_model, bad, message):
    with pytest.raises(ValueError, match=message):
        generate(hf_model, PADDED, 3, **bad)


def test_padding_for_a_model_without_attention_mask_raises():
    with pytest.raises(ValueError, match="NoMask.forward takes no attention_mask"):
        generate(NoMask(), PADDED, 3, attention_mask=PAD_MASK)


def test_an_all_ones_attention_mask_needs_no_support_from_the_model():
    assert generate(NoMask(), PADDED, 3, attention_mask=torch.ones_like(PADDED)).shape == (4, 8)


@pytest.mark.parametrize("bad, message", [
    (dict(do_sample=True, min_p=1.5), r"min_p must be in \[0, 1\], got 1.5"),
    (dict(do_sample=True, min_p=-0.1), r"min_p must be in \[0, 1\]"),
    (dict(do_sample=True, typical_p=0.0), r"typical_p must be in \(0, 1\], got 0.0"),
    (dict(do_sample=True, typical_p=1.2), r"typical_p must be in \(0, 1\]"),
    (dict(num_beams=2, num_return_sequences=3), "num_return_sequences=3 exceeds num_beams=2"),
    (dict(num_return_sequences=2), "num_return_sequences=2 with greedy search"),
    (dict(do_sample=True, num_return_sequences=0), "num_return_sequences must be an int >= 1"),
    (dict(min_new_tokens=-1, eos_token_id=EOS), "min_new_tokens must be an int >= 0"),
    (dict(min_new_tokens=3), "min_new_tokens=3 needs an eos_token_id"),
    (dict(bad_words_ids=[7, 8]), "bad_words_ids must be a non-empty list of non-empty lists"),
    (dict(bad_words_ids=[[7], []]), "bad_words_ids must be a non-empty list of non-empty lists"),
    (dict(bad_words_ids=[[7, -1]]), "bad_words_ids must be"),
    (dict(bad_words_ids=[[7.0]]), "bad_words_ids must be"),
    (dict(bad_words_ids=[[7], [3, VOCAB + 2]]), rf"bad_words_ids holds token ids \[{VOCAB + 2}\] outside"),
    (dict(output_scores="yes"), "output_scores must be True or False"),
    (dict(generation_config=dict(top_k=3)), "generation_config must be a lmcourse.generate.GenerationConfig"),
])
def test_bad_new_options_raise_naming_the_option(hf_model, bad, message):
    error = TypeError if "generation_config" in bad else ValueError
    with pytest.raises(error, match=message):
        generate(hf_model, PROMPT, 3, **bad)


@pytest.mark.parametrize("name", sorted(PADDING_CASES))
@pytest.mark.parametrize("use_cache", [False, True])
def test_left_padded_batch_matches_transformers_on_converted_gpt(hf_model, ours, name, use_cache):
    options = dict(PADDING_CASES[name], eos_token_id=EOS)
    seed = 0 if options.get("do_sample") else None
    expected = hf_generate(hf_model, PADDED, seed=seed, attention_mask=PAD_MASK, **options)
    got = generate(ours, PADDED, seed=seed, attention_mask=PAD_MASK, use_cache=use_cache, **options)
    assert torch.equal(got, expected)
