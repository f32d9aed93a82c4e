"""lmcourse.zoo: a tiny recipe trains and loads back, its card is complete, and every mismatch is refused."""

import dataclasses
import datetime
import hashlib
import json
import shutil

import pytest
import torch
from torch.nn import functional as F

from lmcourse.charlm import CharLSTM
from lmcourse.data import load_corpus
from lmcourse.files import sha256_file
from lmcourse.mlm import MaskedLM, SpecialTokens, evaluate_mlm
from lmcourse.sequences import cross_entropy
from lmcourse.text_diffusion import TextDenoiser, diffusion_bound
from lmcourse.train import count_parameters
from lmcourse.zoo import CARD_FIELDS, RECIPES, card_path, load, train, weights_path
from lmcourse.zoo import build as build_module
from lmcourse.zoo.build import build, build_tokenizer, tokenizer_sha256
from lmcourse.zoo.cli import main

NAME = "tiny-test"
FIX = r"python -m lmcourse\.zoo train tiny-test"
KNOWN = ("char-lstm-wiki, diffusion-char-wiki, gpt-char-wiki, mlm-bpe-wiki, tiny-test, tiny-test-diffusion, "
         "tiny-test-lstm, tiny-test-mlm")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """tiny-test trained once into a temporary zoo folder: (root, trained model, card)."""
    root = tmp_path_factory.mktemp("zoo")
    model, card = train(NAME, device="cpu", root=root, progress=False)
    return root, model, card


@pytest.fixture
def copy(trained, tmp_path):
    """A copy of the trained zoo folder that a test may damage."""
    root = tmp_path / "zoo"
    shutil.copytree(trained[0], root)
    return root


def edit_card(root, change):
    path = card_path(NAME, root)
    card = json.loads(path.read_text())
    change(card)
    path.write_text(json.dumps(card))


def test_loaded_model_has_the_logits_of_the_trained_weights_rounded_to_bfloat16(trained):
    root, trained_model, _ = trained
    model, tokenizer, _ = load(NAME, root=root)
    assert not model.training and all(p.dtype == torch.float32 for p in model.parameters())
    rounded = build(RECIPES[NAME], tokenizer).model.eval()
    rounded.load_state_dict({k: v.bfloat16().float() for k, v in trained_model.state_dict().items()})
    ids = torch.tensor([tokenizer.encode("The history of the city")])
    with torch.no_grad():
        logits, reference, unrounded = model(ids)[0], rounded(ids)[0], trained_model(ids)[0]
    torch.testing.assert_close(logits, reference, rtol=0, atol=0)
    torch.testing.assert_close(logits, unrounded, rtol=0.05, atol=0.05)  # bfloat16 keeps 8 bits of mantissa


def test_card_scores_are_those_of_the_loaded_and_the_trained_model_on_the_whole_valid_split(trained):
    root, trained_model, card = trained
    model, tokenizer, _ = load(NAME, root=root)
    valid = torch.tensor(tokenizer.encode(load_corpus("wiki", "valid")))
    block = RECIPES[NAME].block_size
    with torch.no_grad():  # one batch holds windows of 32 tokens
        assert cross_entropy(lambda x: model(x)[0], valid, block, batch_size=512) == pytest.approx(card["valid_nats_per_char"], rel=1e-9)
        assert cross_entropy(lambda x: trained_model(x)[0], valid, block, batch_size=512) == pytest.approx(
            card["valid_nats_per_char_before_cast"], rel=1e-9)


def test_weights_file_is_a_bfloat16_state_dict_that_loads_with_weights_only(trained):
    root, trained_model, _ = trained
    state = torch.load(weights_path(NAME, root), weights_only=True)
    assert state.keys() == trained_model.state_dict().keys()
    assert all(t.dtype == torch.bfloat16 for t in state.values() if t.is_floating_point())
    assert state["wte.weight"].data_ptr() == state["lm_head.weight"].data_ptr()  # tied weights stored once


def test_card_has_every_field_and_the_right_hashes(trained):
    root, model, card = trained
    assert json.loads(card_path(NAME, root).read_text()) == card
    assert set(CARD_FIELDS) <= card.keys()
    assert card["recipe"] == RECIPES[NAME].as_dict()
    assert card["data_sha256"] == hashlib.sha256(load_corpus("wiki", "train").encode()).hexdigest()
    assert card["weights_sha256"] == sha256_file(weights_path(NAME, root))
    assert card["weights_bytes"] == weights_path(NAME, root).stat().st_size
    assert card["parameters"] == count_parameters(model)
    assert card["tokenizer_vocab_size"] == build_tokenizer(RECIPES[NAME]).vocab_size
    assert card["steps_taken"] == 20
    assert card["curve"]["step"] == [0, 10, 20] and len(card["curve"]["nats_per_char"]) == 3
    assert card["curve"]["nats_per_char"][-1] < card["curve"]["nats_per_char"][0]  # 20 steps do learn something
    assert {"type", "name", "cpu", "torch_threads", "precision"} <= card["device"].keys()
    assert card["device"]["type"] == "cpu" and card["torch_version"] == torch.__version__
    assert card["git_commit"] is None or len(card["git_commit"]) == 40
    assert card["wall_seconds"] >= card["train_seconds"] >= 0
    assert "bfloat16" in card["valid_note"]
    assert datetime.datetime.fromisoformat(card["date"]).tzinfo is not None


def test_training_leaves_only_the_weights_and_the_card(trained):
    root = trained[0]
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == \
        ["cards/tiny-test.json", "weights/tiny-test.pt"]


def test_training_again_gives_the_same_weights(trained, tmp_path):
    _, first, card = trained
    again, card_again = train(NAME, device="cpu", root=tmp_path, progress=False)
    for (key, a), b in zip(first.state_dict().items(), again.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=key)
    assert card_again["curve"] == card["curve"]


def test_a_flipped_byte_in_the_weights_is_refused_naming_file_hashes_and_fix(copy):
    path = weights_path(NAME, copy)
    payload = bytearray(path.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    path.write_bytes(payload)
    expected = json.loads(card_path(NAME, copy).read_text())["weights_sha256"]
    with pytest.raises(ValueError, match=FIX) as caught:
        load(NAME, root=copy)
    message = str(caught.value)
    assert str(path) in message and expected in message and hashlib.sha256(payload).hexdigest() in message
    assert "restore the file with git" in message


def test_training_text_other_than_the_cards_is_refused(copy):
    edit_card(copy, lambda card: card.update(data_sha256="0" * 64))
    with pytest.raises(ValueError, match=r"training text .* sha256 [0-9a-f]{64}.* sha256 0{64}.*" + FIX):
        load(NAME, root=copy)


def test_a_tokenizer_other_than_the_cards_is_refused(copy):
    edit_card(copy, lambda card: card.update(tokenizer_sha256="0" * 64))
    with pytest.raises(ValueError, match=r"tokenizer .* sha256 0{64}.*" + FIX):
        load(NAME, root=copy)


def test_a_recipe_changed_since_training_is_refused(copy):
    edit_card(copy, lambda card: card["recipe"].update(steps=10))
    with pytest.raises(ValueError, match=r"steps=10.*steps=20.*" + FIX):
        load(NAME, root=copy)


def test_a_card_missing_a_field_is_named(copy):
    edit_card(copy, lambda card: card.pop("curve"))
    with pytest.raises(ValueError, match=r"tiny-test\.json lacks the field\(s\) curve .*" + FIX):
        load(NAME, root=copy)


def test_a_card_that_is_not_json_is_refused(copy):
    card_path(NAME, copy).write_text("{not json")
    with pytest.raises(ValueError, match=r"not a readable JSON card.*" + FIX):
        load(NAME, root=copy)


def test_a_missing_card_says_how_to_train(copy):
    card_path(NAME, copy).unlink()
    with pytest.raises(FileNotFoundError, match=r"tiny-test\.json does not exist.*" + FIX):
        load(NAME, root=copy)


def test_missing_weights_say_how_to_train(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"has not been trained here.*" + FIX):
        load(NAME, root=tmp_path)


def test_an_unknown_name_lists_the_known_ones(tmp_path):
    for call in (lambda: load("gpt-wiki", root=tmp_path), lambda: train("gpt-wiki", root=tmp_path)):
        with pytest.raises(ValueError, match=r"'gpt-wiki' is not a reference model.*" + KNOWN):
            call()


def test_gpt_char_wiki_recipe_is_the_one_asked_for():
    r = RECIPES["gpt-char-wiki"]
    assert (r.corpus, r.split, r.tokenizer, r.kind) == ("wiki", "train", "char", "gpt")
    assert r.model == {"n_layer": 4, "n_head": 4, "n_embd": 192, "dropout": 0.1, "attn_dropout": 0.0}
    assert (r.block_size, r.steps, r.mixed_precision) == (256, 6000, "bf16")
    assert (r.batch_size, r.lr, r.betas, r.weight_decay) == (32, 2e-3, (0.9, 0.99), 0.1)
    assert (r.warmup_steps, r.min_lr, r.eval_every, r.eval_chars) == (100, r.lr / 10, 250, 32_768)
    assert r.dtype_on_disk in ("bfloat16", "float32")


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_builds_its_model(name):
    recipe = RECIPES[name]
    assert recipe.name == name and "\n" not in recipe.about
    tokenizer = build_tokenizer(recipe)
    model = build(recipe, tokenizer).model
    if recipe.kind == "gpt":
        assert model.config.block_size == recipe.block_size and model.config.vocab_size == tokenizer.vocab_size
    elif recipe.kind == "char_lstm":
        assert isinstance(model, CharLSTM) and model.hidden_size == recipe.model["hidden_size"]
    elif recipe.kind == "text_diffusion":
        assert isinstance(model, TextDenoiser) and not model.causal and model.mask_id == tokenizer.vocab_size
    else:
        assert isinstance(model, MaskedLM) and model.encoder.config.vocab_size == tokenizer.vocab_size + 4


@pytest.mark.parametrize("change, match", [
    (dict(warmup_steps=21), r"warmup_steps must be an int in \[0, 20\]"),
    (dict(split="valid"), r"split must be 'train'"),
    (dict(dtype_on_disk="int8"), r"dtype_on_disk must be one of"),
    (dict(min_lr=1.0), r"min_lr must be in"),
    (dict(mask_prob=0.15), r"mask_prob must be a share in \(0, 1\) for a masked LM and None for other kinds"),
    (dict(mixed_precision="fp8"), r"mixed_precision must be one of \('auto', 'bf16', 'fp16', 'off'\), got 'fp8'"),
    (dict(max_mask_rate=0.5), r"max_mask_rate is for a masked-diffusion LM \(kind 'text_diffusion'\); got kind 'gpt'"),
    (dict(kind="text_diffusion", max_mask_rate=0.0), r"max_mask_rate must be .*got 0\.0.*or None to train on the ELBO"),
    (dict(kind="text_diffusion", max_mask_rate=1.5), r"max_mask_rate must be .*got 1\.5"),
])
def test_a_bad_recipe_is_named(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(RECIPES[NAME], **change)


def test_a_bf16_recipe_trains_in_bf16_autocast_on_a_cpu_and_its_card_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(RECIPES, NAME, dataclasses.replace(RECIPES[NAME], mixed_precision="bf16"))
    trained, card = train(NAME, device="cpu", root=tmp_path, progress=False)
    assert card["device"]["precision"] == "bfloat16 autocast" and card["recipe"]["mixed_precision"] == "bf16"
    curve = card["curve"]["nats_per_char"]
    assert curve[-1] < curve[0]  # it learns
    model, _, loaded_card = load(NAME, root=tmp_path)  # the card's recipe is the one in code while patched
    assert loaded_card == card and next(model.parameters()).dtype == torch.float32


def test_an_unknown_model_kind_is_named():
    recipe = dataclasses.replace(RECIPES[NAME], kind="rnn")
    with pytest.raises(ValueError, match=r"model kind 'rnn'.*\['char_lstm', 'gpt', 'masked_lm', 'text_diffusion'\]"):
        build(recipe, build_tokenizer(recipe))


def test_char_lstm_recipe_is_chapter_03s_way_made_larger():
    r = RECIPES["char-lstm-wiki"]
    assert (r.corpus, r.split, r.tokenizer, r.kind) == ("wiki", "train", "char", "char_lstm")
    assert r.model == {"embed_dim": 64, "hidden_size": 512, "num_layers": 2, "dropout": 0.25}
    assert (r.batch_size, r.block_size, r.dtype_on_disk) == (32, 128, "bfloat16")


def test_an_lstm_trains_with_its_state_carried_and_its_card_scores_32_carried_parts(tmp_path):
    name = "tiny-test-lstm"
    trained, card = train(name, device="cpu", root=tmp_path, progress=False)
    model, tokenizer, loaded_card = load(name, root=tmp_path)
    assert isinstance(model, CharLSTM) and loaded_card == card and not model.training
    assert card["curve"]["nats_per_char"][-1] < card["curve"]["nats_per_char"][0]
    valid = torch.tensor(tokenizer.encode(load_corpus("wiki", "valid")))
    part = -(-(len(valid) - 1) // 32)
    with torch.no_grad():  # each part read in one call: the state is carried from its first character to its last
        ends = [min(s + part, len(valid) - 1) for s in range(0, len(valid) - 1, part)]
        nats = torch.cat([F.cross_entropy(model(valid[s:e][None])[0], valid[s + 1:e + 1], reduction="none")
                          for s, e in zip(range(0, len(valid) - 1, part), ends)])
    assert len(nats) == len(valid) - 1
    assert nats.double().mean().item() == pytest.approx(card["valid_nats_per_char"], rel=1e-6)
    assert "32 consecutive parts, the LSTM state carried" in card["valid_note"]
    state = torch.load(weights_path(name, tmp_path), weights_only=True)
    assert state.keys() == trained.state_dict().keys() and state["lstm.weight_hh_l0"].dtype == torch.bfloat16


def test_a_masked_lm_trains_reads_mask_and_its_card_scores_masked_tokens(tmp_path):
    name = "tiny-test-mlm"
    trained, card = train(name, device="cpu", root=tmp_path, progress=False)
    model, specials, loaded_card = load(name, root=tmp_path)
    assert isinstance(model, MaskedLM) and isinstance(specials, SpecialTokens) and loaded_card == card
    assert card["metric"] == "masked_nats_per_token" and "nats_per_char" not in card["curve"]
    curve = card["curve"]["masked_nats_per_token"]
    assert curve[-1] < curve[0] and "15 % of the tokens picked" in card["valid_note"]
    valid = torch.tensor(specials.encode(load_corpus("wiki", "valid")))
    scored = evaluate_mlm(model, valid, specials, 32, n_windows=len(valid) // 32, mask_prob=0.15)
    assert scored["loss"] == pytest.approx(card["valid_masked_nats_per_token"], rel=1e-6)
    assert scored["n"] > 0.13 * len(valid)  # the whole valid split, 15 % of it picked
    assert tokenizer_sha256(specials.tokenizer) == card["tokenizer_sha256"]  # the BPE merges are learnt the same way


def test_a_diffusion_lm_trains_on_its_bound_and_its_card_scores_the_bound(tmp_path):
    name = "tiny-test-diffusion"
    trained, card = train(name, device="cpu", root=tmp_path, progress=False)
    model, tokenizer, loaded_card = load(name, root=tmp_path)
    assert isinstance(model, TextDenoiser) and not model.causal and loaded_card == card
    assert card["metric"] == "bound_nats_per_char" and "nats_per_char" not in card["curve"]
    curve = card["curve"]["bound_nats_per_char"]
    assert curve[-1] < curve[0] and "8 stratified rates" in card["valid_note"]
    valid = torch.tensor(tokenizer.encode(load_corpus("wiki", "valid")))
    bound = diffusion_bound(model, valid, 32, n_times=8, batch_size=512, seed=0)
    assert bound == pytest.approx(card["valid_bound_nats_per_char"], rel=1e-6)
    ours = RECIPES["diffusion-char-wiki"]
    gpt = RECIPES["gpt-char-wiki"]
    without_dropout = {k: v for k, v in gpt.model.items() if k != "attn_dropout"} | {"dropout": 0.0}
    reference = dataclasses.replace(gpt, name=ours.name, about=ours.about, kind="text_diffusion", model=without_dropout,
                                    max_mask_rate=0.5)
    assert ours == reference  # gpt-char-wiki's recipe (bf16 autocast, 6,000 steps) without its dropout, on chapter 07's loss


def test_a_diffusion_recipe_with_a_max_mask_rate_trains_on_the_masked_lm_loss(monkeypatch):
    calls = []

    def masked_lm_loss(model, x0, t_max):
        calls.append(t_max)
        return build_module.masked_diffusion_loss(model, x0)

    monkeypatch.setattr(build_module, "masked_lm_loss", masked_lm_loss)
    recipe = RECIPES["tiny-test-diffusion"]
    for max_mask_rate, expected in ((None, []), (0.5, [0.5])):
        calls.clear()
        trainable = build(dataclasses.replace(recipe, max_mask_rate=max_mask_rate), build_tokenizer(recipe))
        trainable.loss_fn(trainable.model, (torch.zeros(2, 8, dtype=torch.long), None))
        assert calls == expected


def test_a_card_without_its_metrics_score_is_named(copy):
    edit_card(copy, lambda card: card.pop("valid_nats_per_char"))
    with pytest.raises(ValueError, match=r"tiny-test\.json lacks the field\(s\) valid_nats_per_char .*" + FIX):
        load(NAME, root=copy)
    edit_card(copy, lambda card: card.update(metric="bleu"))
    with pytest.raises(ValueError, match=r"lacks the field\(s\) metric \(one of nats_per_char, masked_nats_per_token, bound_nats_per_char, "
                                         r"not 'bleu'\)"):
        load(NAME, root=copy)


def test_a_card_older_than_a_recipe_field_at_its_default_still_loads(copy):
    edit_card(copy, lambda card: card["recipe"].pop("mask_prob"))
    load(NAME, root=copy)
    edit_card(copy, lambda card: card["recipe"].update(mask_prob=0.4))
    with pytest.raises(ValueError, match=r"mask_prob=0\.4.*mask_prob=None"):
        load(NAME, root=copy)


def test_cli_lists_shows_and_names_errors(trained, tmp_path, capsys):
    root = str(trained[0])
    assert main(["list", "--root", root]) == 0
    listing = capsys.readouterr().out
    assert any(line.split()[:2] == ["tiny-test", "yes"] and "kB" in line for line in listing.splitlines())
    assert any(line.split()[:2] == ["gpt-char-wiki", "no"] for line in listing.splitlines())
    assert main(["show", NAME, "--root", root]) == 0
    shown = capsys.readouterr().out
    assert "nats/char as saved" in shown and "step      20" in shown
    assert main(["show", "gpt-char-wiki", "--root", root]) == 0
    assert "not trained: python -m lmcourse.zoo train gpt-char-wiki" in capsys.readouterr().out
    assert main(["show", "nope", "--root", root]) == 1
    assert KNOWN in capsys.readouterr().err
