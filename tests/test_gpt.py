"""lmcourse.gpt against transformers' GPT-2 (built from a small config, no download) and closed forms."""

import math

import pytest
import torch
from torch.nn import functional as F

transformers = pytest.importorskip("transformers")

from lmcourse.gpt import GPT, GPTConfig, KVCache
from lmcourse.train import train


def small_config(**changes):
    return GPTConfig(**(dict(vocab_size=50, block_size=32, n_layer=2, n_head=4, n_embd=32) | changes))


@pytest.fixture(scope="module")
def hf_model():
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=61, n_positions=40, n_embd=48, n_layer=3, n_head=4,
                                     initializer_range=0.1)
    return transformers.GPT2LMHeadModel(config).eval()


def test_from_hf_gives_identical_logits(hf_model):
    ids = torch.randint(61, (3, 40), generator=torch.Generator().manual_seed(1))
    ours = GPT.from_hf(hf_model)
    with torch.no_grad():
        expected = hf_model(ids).logits
        got, _ = ours(ids)
    assert got.shape == expected.shape == (3, 40, 61)
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)


def test_from_hf_keeps_the_head_tied(hf_model):
    ours = GPT.from_hf(hf_model)
    assert ours.lm_head.weight is ours.wte.weight
    assert ours.num_parameters(non_embedding=False) == sum(p.numel() for p in hf_model.parameters())


def test_from_hf_rejects_other_models():
    bert = transformers.BertForMaskedLM(transformers.BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1,
                                                                num_attention_heads=2, intermediate_size=32))
    with pytest.raises(ValueError, match="GPT2LMHeadModel"):
        GPT.from_hf(bert)


def test_forward_gives_logits_for_every_position_and_the_mean_cross_entropy():
    torch.manual_seed(0)
    model = GPT(small_config())
    idx, targets = torch.randint(50, (2, 32)), torch.randint(50, (2, 32))
    logits, loss = model(idx, targets)
    assert logits.shape == (2, 32, 50)
    assert torch.allclose(loss, F.cross_entropy(logits.reshape(-1, 50), targets.reshape(-1)))
    assert model(idx)[1] is None


def test_logits_to_keep_gives_the_last_positions_of_the_full_logits():
    torch.manual_seed(0)
    model = GPT(small_config()).eval()
    idx = torch.randint(50, (2, 20))
    with torch.no_grad():
        full, _ = model(idx)
        last, loss = model(idx, logits_to_keep=1)
        last_three, _ = model(idx, logits_to_keep=3)
        cache = model.new_kv_cache()
        model(idx[:, :12], kv_cache=cache, logits_to_keep=1)
        cached, _ = model(idx[:, 12:], kv_cache=cache, logits_to_keep=1)  # the cached path, as generate uses it
    assert last.shape == (2, 1, 50) and loss is None
    assert torch.allclose(last, full[:, -1:], atol=1e-6)
    assert torch.allclose(last_three, full[:, -3:], atol=1e-6)
    assert torch.allclose(cached, full[:, -1:], atol=1e-5)


def test_initial_loss_is_close_to_log_vocab_size():
    torch.manual_seed(0)
    model = GPT(small_config(vocab_size=500, n_embd=64))
    _, loss = model(torch.randint(500, (4, 32)), torch.randint(500, (4, 32)))
    assert abs(loss.item() - math.log(500)) < 0.1


def test_future_tokens_do_not_change_past_logits():
    torch.manual_seed(0)
    model = GPT(small_config()).eval()
    a = torch.randint(50, (1, 20))
    b = a.clone()
    b[0, 12:] = (b[0, 12:] + 1) % 50
    with torch.no_grad():
        assert torch.allclose(model(a)[0][:, :12], model(b)[0][:, :12], atol=1e-6)
        assert not torch.allclose(model(a)[0][:, 12:], model(b)[0][:, 12:], atol=1e-6)


def test_kv_cache_forward_equals_full_forward():
    torch.manual_seed(0)
    model = GPT(small_config()).eval()
    idx = torch.randint(50, (3, 20))
    cache = model.new_kv_cache()
    with torch.no_grad():
        full, _ = model(idx)
        parts = [model(idx[:, :7], kv_cache=cache)[0]]  # a prompt, then one token at a time
        parts += [model(idx[:, t:t + 1], kv_cache=cache)[0] for t in range(7, 20)]
    assert cache.length == 20
    assert torch.allclose(torch.cat(parts, dim=1), full, atol=1e-5)


def test_kv_cache_writes_each_step_in_place_into_one_buffer():
    torch.manual_seed(0)
    model = GPT(small_config()).eval()
    idx = torch.randint(50, (2, 12))
    cache = model.new_kv_cache(max_len=12)
    with torch.no_grad():
        model(idx[:, :4], kv_cache=cache)
        buffers = [k.data_ptr() for k in cache.keys]
        for t in range(4, 12):
            model(idx[:, t:t + 1], kv_cache=cache)
    assert [k.data_ptr() for k in cache.keys] == buffers  # no new tensor per step (no torch.cat)
    assert cache.keys[0].shape[2] == 12 and cache.length == 12


def test_kv_cache_grows_when_its_capacity_is_too_small():
    cache = KVCache(n_layer=1, max_len=2)
    for t in range(5):
        k = torch.full((1, 2, 1, 3), float(t))
        keys, values = cache.update(0, k, k)
    assert keys[0, 0, :, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0] and cache.length == 5


def test_kv_cache_reorder_keeps_chosen_rows():
    cache = KVCache(n_layer=1)
    k = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 2, 4, 5)
    cache.update(0, k, k)
    cache.reorder(torch.tensor([2, 2, 0]))
    assert cache.keys[0][:, 0, 0, 0].tolist() == [2.0, 2.0, 0.0] and cache.length == 4


def test_weights_start_as_gpt2_does():
    torch.manual_seed(0)
    config = small_config(n_layer=4, n_embd=128, n_head=4)
    model = GPT(config)
    assert abs(model.wte.weight.std().item() - 0.02) < 0.002
    assert abs(model.blocks[0].ff.linear1.weight.std().item() - 0.02) < 0.002
    residual_std = 0.02 / math.sqrt(2 * config.n_layer)
    assert abs(model.blocks[0].ff.linear2.weight.std().item() - residual_std) < 0.1 * residual_std
    assert abs(model.blocks[0].self_attn.out_proj.weight.std().item() - residual_std) < 0.1 * residual_std
    assert torch.count_nonzero(model.blocks[0].ff.linear1.bias) == 0


def test_optimizer_decays_matrices_only_and_holds_each_parameter_once():
    model = GPT(small_config())
    decay, no_decay = model.configure_optimizer(lr=1e-3).param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim == 2 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])
    held = [id(p) for g in (decay, no_decay) for p in g["params"]]
    assert len(held) == len(set(held)) == len(list(model.parameters()))


def test_exact_flop_count_matches_torch_flop_counter():
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    T, config = 16, small_config(block_size=16)
    model = GPT(config).eval()
    flops = model.flops_per_token(context=T)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randint(50, (1, T)))
    # the counter sees attention's matmuls only when they run as explicit matmuls, not inside CPU's fused kernel
    assert counter.get_total_flops() in ((flops["forward"] - flops["attention"]) * T, flops["forward"] * T)
    q = k = v = torch.randn(1, config.n_head, T, config.n_embd // config.n_head)
    with FlopCounterMode(display=False) as counter:
        for _ in range(config.n_layer):
            (q @ k.transpose(-2, -1)).softmax(-1) @ v
    assert flops["attention"] * T == counter.get_total_flops()


def test_six_n_rule_is_close_to_the_exact_count_when_context_is_short():
    model = GPT(GPTConfig(vocab_size=1000, block_size=64, n_layer=4, n_head=4, n_embd=256))
    flops = model.flops_per_token(context=64)
    assert abs(flops["6N"] / flops["exact"] - 1) < 0.1


def test_training_through_the_shared_loop_learns_a_pattern():
    torch.manual_seed(0)
    model = GPT(small_config(vocab_size=8, block_size=16))
    pattern = torch.arange(8).repeat(4)[None]  # 0 1 2 ... 7 0 1 ...
    batches = [(pattern[:, :16], pattern[:, 1:17])]
    history = train(model, batches, optimizer=model.configure_optimizer(lr=3e-3), steps=60, progress=False)
    assert history.loss[-1] < 0.1 < history.loss[0]


@pytest.mark.parametrize("changes, message", [
    (dict(n_embd=30, n_head=4), "divisible by n_head"),
    (dict(n_layer=0), "n_layer"),
    (dict(dropout=1.0), "dropout"),
    (dict(attn_dropout=-0.1), "attn_dropout"),
])
def test_bad_config_raises_value_error(changes, message):
    with pytest.raises(ValueError, match=message):
        small_config(**changes)


@pytest.mark.parametrize("dropout, attn_dropout, random", [(0.0, 0.0, False), (0.5, 0.0, True), (0.0, 0.5, True)])
def test_dropout_where_gpt2_puts_it(dropout, attn_dropout, random):
    """dropout on the embeddings and branch outputs, attn_dropout on the attention weights, none inside the MLP."""
    model = GPT(small_config(dropout=dropout, attn_dropout=attn_dropout)).train()
    for block in model.blocks:
        assert (block.dropout1.p, block.self_attn.dropout, block.ff.dropout.p) == (dropout, attn_dropout, 0.0)
    idx = torch.randint(0, 50, (2, 16))
    assert (not torch.equal(model(idx)[0], model(idx)[0])) == random
    assert GPT(small_config(dropout=0.2)).blocks[0].self_attn.dropout == 0.2  # None: the same as dropout


def test_sequence_longer_than_block_size_raises():
    model = GPT(small_config())
    with pytest.raises(ValueError, match="block_size=32"):
        model(torch.zeros(1, 33, dtype=torch.long))


def left_padded(prompts: list[torch.Tensor], more: torch.Tensor, pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids (B, T), attention_mask (B, T)): each prompt right-aligned after pad_id tokens, then the tokens `more`."""
    T = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), T), pad_id)
    mask = torch.zeros(len(prompts), T, dtype=torch.long)
    for b, p in enumerate(prompts):
        ids[b, T - len(p):], mask[b, T - len(p):] = p, 1
    return torch.cat([ids, more.expand(len(prompts), -1)], 1), torch.cat([mask, torch.ones_like(mask[:, :len(more)])], 1)


def cached_logits(model, ids, mask, prompt_len):
    """Logits of the padded prompts through a fresh cache, then of every later token one at a time."""
    cache = model.new_kv_cache()
    parts = [model(ids[:, :prompt_len], kv_cache=cache, attention_mask=mask[:, :prompt_len])[0]]
    for t in range(prompt_len, ids.size(1)):
        parts.append(model(ids[:, t:t + 1], kv_cache=cache, attention_mask=mask[:, :t + 1])[0])
    return torch.cat(parts, dim=1)


def test_left_padded_batch_gives_each_prompts_own_logits_with_and_without_the_cache():
    torch.manual_seed(0)
    model = GPT(small_config()).eval()
    g = torch.Generator().manual_seed(3)
    prompts = [torch.randint(1, 50, (n,), generator=g) for n in (9, 4, 12)]
    more = torch.randint(1, 50, (5,), generator=g)
    ids, mask = left_padded(prompts, more)
    with torch.no_grad():
        full, _ = model(ids, attention_mask=mask)
        cached = cached_logits(model, ids, mask, prompt_len=12)
        for b, p in enumerate(prompts):
            alone, _ = model(torch.cat([p, more])[None])
            n = len(p) + len(more)
            torch.testing.assert_close(full[b, -n:], alone[0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(cached[b, -n:], alone[0], atol=1e-5, rtol=1e-5)


def test_left_padded_batch_equals_transformers_gpt2_with_its_attention_mask_and_positions(hf_model):
    ours = GPT.from_hf(hf_model)
    g = torch.Generator().manual_seed(4)
    prompts = [torch.randint(1, 61, (n,), generator=g) for n in (14, 5, 9, 1)]
    ids, mask = left_padded(prompts, torch.randint(1, 61, (6,), generator=g))
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)  # transformers' generate, for GPT-2
    real = mask.bool()
    with torch.no_grad():
        expected = hf_model(ids, attention_mask=mask, position_ids=positions).logits
        got, _ = ours(ids, attention_mask=mask)
        cached = cached_logits(ours, ids, mask, prompt_len=14)
    torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cached[real], expected[real], atol=1e-5, rtol=1e-5)


def test_attention_mask_of_torch_polarity_or_without_tokens_is_refused():
    model = GPT(small_config()).eval()
    ids = torch.ones(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="attention_mask.*rows \\[1\\] hold no real token"):
        model(ids, attention_mask=torch.tensor([[1, 1, 1], [0, 0, 0]]))
    with pytest.raises(ValueError, match="attention_mask.*every row starts with padding"):
        model(ids, attention_mask=torch.tensor([[False, False, True], [False, True, True]]))  # torch: True = pad


def test_nan_weights_are_refused_not_turned_into_finite_logits():
    torch.manual_seed(0)
    model = GPT(small_config()).eval()
    with torch.no_grad():
        model.blocks[1].self_attn.q_proj.weight[3, 5] = float("nan")
    with pytest.raises(ValueError, match="q_proj, k_proj or v_proj turn finite inputs into nan"):
        model(torch.randint(50, (2, 8)))


def test_kv_cache_of_another_batch_size_or_model_is_refused():
    model = GPT(small_config()).eval()
    cache = model.new_kv_cache()
    model(torch.ones(1, 2, dtype=torch.long), kv_cache=cache)
    with pytest.raises(ValueError, match="holds a batch of 1 sequences, got a batch of 2"):
        model(torch.ones(2, 1, dtype=torch.long), kv_cache=cache)
    with pytest.raises(ValueError, match="kv_cache has n_layer=3 layers, this model 2"):
        model(torch.ones(1, 2, dtype=torch.long), kv_cache=KVCache(3))


@pytest.mark.parametrize("changes, message", [(dict(n_layer=3), "n_layer=3 but the weights hold 2"),
                                              (dict(n_embd=16), "n_embd=16 but the weights hold 32")])
def test_from_checkpoint_names_the_config_field_its_weights_contradict(tmp_path, changes, message):
    import dataclasses

    from lmcourse.checkpoint import save_checkpoint

    model = GPT(small_config())
    save_checkpoint(tmp_path / "gpt.pt", model, config={**dataclasses.asdict(model.config), **changes})
    with pytest.raises(ValueError, match=message):
        GPT.from_checkpoint(tmp_path / "gpt.pt")


# a block's parameters as the GPT named and ordered them before its blocks were chapter 05's EncoderLayer (nanoGPT's names)
BEFORE_ENCODER_LAYER = {"norm1.weight": "ln_1.weight", "norm1.bias": "ln_1.bias",
                        "self_attn.q_proj.weight": "attn.q_proj.weight", "self_attn.q_proj.bias": "attn.q_proj.bias",
                        "self_attn.k_proj.weight": "attn.k_proj.weight", "self_attn.k_proj.bias": "attn.k_proj.bias",
                        "self_attn.v_proj.weight": "attn.v_proj.weight", "self_attn.v_proj.bias": "attn.v_proj.bias",
                        "self_attn.out_proj.weight": "attn.out_proj.weight",
                        "self_attn.out_proj.bias": "attn.out_proj.bias",
                        "norm2.weight": "ln_2.weight", "norm2.bias": "ln_2.bias",
                        "ff.linear1.weight": "mlp.c_fc.weight", "ff.linear1.bias": "mlp.c_fc.bias",
                        "ff.linear2.weight": "mlp.c_proj.weight", "ff.linear2.bias": "mlp.c_proj.bias"}


def _as_saved_before(model: GPT) -> dict:
    """model's state dict under the earlier names, in the earlier order (ln_1, attn, ln_2, mlp in each block)."""
    state = model.state_dict()
    old = {k: v for k, v in state.items() if not k.startswith("blocks.")}
    for i in range(model.config.n_layer):
        old |= {f"blocks.{i}.{name}": state[f"blocks.{i}.{new}"] for new, name in BEFORE_ENCODER_LAYER.items()}
    return old


def test_a_checkpoint_saved_before_the_blocks_were_encoder_layers_loads_with_the_same_logits(tmp_path):
    import dataclasses

    from lmcourse.checkpoint import load_checkpoint

    torch.manual_seed(0)
    model = GPT(small_config()).eval()
    path = tmp_path / "old.pt"
    optimizer = model.configure_optimizer(lr=1e-3)
    torch.save({"format": 1, "model": _as_saved_before(model), "optimizer": optimizer.state_dict(),
                "metadata": {"config": dataclasses.asdict(model.config)}}, path)
    ids = torch.randint(50, (2, 16))
    with torch.no_grad():
        assert torch.equal(GPT.from_checkpoint(path).eval()(ids)[0], model(ids)[0])
        again = GPT(small_config()).eval()
        again.load_state_dict(_as_saved_before(model))  # a plain load_state_dict translates too
        assert torch.equal(again(ids)[0], model(ids)[0])
    with pytest.raises(ValueError, match="optimizer state would update the wrong ones; load the weights with optimizer=None"):
        load_checkpoint(path, again, again.configure_optimizer(lr=1e-3))
