import math
import warnings

import pytest
import torch
from torch import nn

from lmcourse.attention import KVCache, MultiHeadAttention
from lmcourse.transformer import (
    DecoderLayer,
    Encoder,
    EncoderLayer,
    FeedForward,
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    TransformerConfig,
    init_weights,
    sinusoidal_positions,
)


def test_sinusoidal_positions_match_the_paper_formula():
    T, d = 50, 16
    pe = sinusoidal_positions(T, d)
    for pos in (0, 7, 49):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            assert pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-5)
            assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-5)


def test_sinusoidal_offset_is_a_rotation_independent_of_position():
    pe = sinusoidal_positions(100, 8)
    # each (sin, cos) pair keeps unit length, and shifting by k rotates it by the same angle everywhere
    assert torch.allclose(pe[:, 0::2] ** 2 + pe[:, 1::2] ** 2, torch.ones(100, 4), atol=1e-5)
    dots = (pe[10:] * pe[:-10]).sum(-1)  # <PE[p], PE[p+10]> is the same for every p
    assert torch.allclose(dots, dots[0].expand_as(dots), atol=1e-4)


def test_positional_encodings_add_to_the_input_and_reject_long_input():
    x = torch.zeros(2, 5, 8)
    assert torch.allclose(SinusoidalPositionalEncoding(8, 10)(x)[1], sinusoidal_positions(10, 8)[:5])
    learned = LearnedPositionalEncoding(8, 10)
    assert torch.allclose(learned(x)[0], learned.weight[:5])
    with pytest.raises(ValueError, match="max_len"):
        learned(torch.zeros(1, 11, 8))
    with pytest.raises(ValueError, match="even n_embd"):
        sinusoidal_positions(4, 7)


def test_feed_forward_acts_on_each_position_alone():
    ff = FeedForward(8, 32)
    x = torch.randn(2, 6, 8)
    y = ff(x)
    assert torch.allclose(y[:, 3], ff(x[:, 3:4])[:, 0], atol=1e-6)
    with pytest.raises(ValueError, match="activation"):
        FeedForward(8, 32, activation="tanh")


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_equals_torch_with_copied_weights(norm_first, activation):
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, activation=activation, batch_first=True,
                                     norm_first=norm_first).eval()
    ours = EncoderLayer.from_torch(ref).eval()
    x = torch.randn(3, 7, 32)
    lengths = torch.tensor([7, 4, 2])
    real = torch.arange(7)[None, :] < lengths[:, None]  # (B, T) True = real token
    with torch.no_grad():
        expected = ref(x, src_key_padding_mask=~real)  # torch: True = ignore
        got, weights = ours(x, key_padding=real, need_weights=True)
        got_fused, _ = ours(x, key_padding=real)
    for b, n in enumerate(lengths.tolist()):  # padded query rows are undefined in torch's fast path
        assert torch.allclose(got[b, :n], expected[b, :n], atol=1e-5)
        assert torch.allclose(got_fused[b, :n], expected[b, :n], atol=1e-5)
    assert weights.shape == (3, 4, 7, 7)
    assert torch.all(weights[1, :, :, 4:] == 0)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_the_block_equals_torch_in_both_norm_placements_causal_or_not(norm_first, causal):
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, activation="gelu", batch_first=True,
                                     norm_first=norm_first).eval()
    ours = EncoderLayer.from_torch(ref, causal=causal).eval()
    x = torch.randn(3, 7, 32)
    real = torch.arange(7)[None, :] < torch.tensor([7, 5, 3])[:, None]  # (B, T) True = real token
    causal_mask = torch.ones(7, 7, dtype=torch.bool).triu(1) if causal else None  # torch: True = may not attend
    with torch.no_grad():
        expected = ref(x, src_mask=causal_mask, src_key_padding_mask=~real, is_causal=causal)
        fused, _ = ours(x, key_padding=real)
        explicit, weights = ours(x, key_padding=real, need_weights=True)
    for got in (fused, explicit):
        assert torch.allclose(got[real], expected[real], atol=1e-5)  # padded query rows are undefined in torch
    assert torch.all(weights.triu(1) == 0) == causal


def test_a_causal_block_does_not_look_ahead_and_extends_a_kv_cache_to_the_same_numbers():
    torch.manual_seed(0)
    block = EncoderLayer(16, 2, 64, dropout=0.0, activation="gelu_tanh", norm_first=True, causal=True).eval()
    x = torch.randn(2, 6, 16)
    changed = torch.cat([x[:, :4], torch.randn(2, 2, 16)], dim=1)
    cache = KVCache(n_layer=1)
    with torch.no_grad():
        whole, _ = block(x)
        assert torch.allclose(block(changed)[0][:, :4], whole[:, :4], atol=1e-6)
        steps = [block(x[:, t:t + 1], kv_cache=cache)[0] for t in range(6)]
    assert torch.allclose(torch.cat(steps, dim=1), whole, atol=1e-5)


def test_feed_forward_with_gelu_tanh_equals_transformers_gpt2_mlp():
    transformers = pytest.importorskip("transformers")
    from transformers.models.gpt2.modeling_gpt2 import GPT2MLP

    torch.manual_seed(0)
    ref = GPT2MLP(64, transformers.GPT2Config(n_embd=16, resid_pdrop=0.0)).eval()
    ours = FeedForward(16, 64, activation="gelu_tanh")
    with torch.no_grad():  # GPT-2's Conv1D stores (in, out), the transpose of nn.Linear's weight
        for linear, conv in ((ours.linear1, ref.c_fc), (ours.linear2, ref.c_proj)):
            linear.weight.copy_(conv.weight.T)
            linear.bias.copy_(torch.randn_like(conv.bias))
            conv.bias.copy_(linear.bias)
        x = torch.randn(2, 5, 16)
        assert torch.allclose(ours(x), ref(x), atol=1e-6)


def test_init_weights_is_gpt2s_with_the_residual_writes_scaled_by_depth():
    torch.manual_seed(0)
    layers = nn.ModuleList(EncoderLayer(128, 4, 512, norm_first=True) for _ in range(3))
    init_weights(layers)
    assert abs(layers[0].ff.linear2.weight.std().item() - 0.02) < 0.002
    init_weights(layers, n_layer=3)
    residual = 0.02 / math.sqrt(2 * 3)
    for layer in layers:
        assert abs(layer.ff.linear1.weight.std().item() - 0.02) < 0.002
        assert abs(layer.self_attn.q_proj.weight.std().item() - 0.02) < 0.002
        for writes in (layer.ff.linear2, layer.self_attn.out_proj):
            assert abs(writes.weight.std().item() - residual) < 0.1 * residual
        assert not layer.ff.linear1.bias.any() and not layer.self_attn.out_proj.bias.any()
        assert torch.equal(layer.norm1.weight, torch.ones(128)) and not layer.norm1.bias.any()


@pytest.mark.parametrize("need_weights", [False, True])
def test_encoder_layer_takes_a_float_mask_with_key_padding_as_torch_does(need_weights):
    torch.manual_seed(0)
    # train() with dropout 0: torch's documented path (its eval-mode fast path gives NaN for this combination)
    ref = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True).train()
    ours = EncoderLayer.from_torch(ref).eval()
    x = torch.randn(3, 7, 32)
    lengths = torch.tensor([7, 4, 2])
    real = torch.arange(7)[None, :] < lengths[:, None]  # (B, T) True = real token
    bias = nn.Transformer.generate_square_subsequent_mask(7) + torch.randn(7, 7)  # float additive, -inf above
    with torch.no_grad(), pytest.warns(UserWarning, match="mismatched"):  # torch accepts it, with a warning
        expected = ref(x, src_mask=bias, src_key_padding_mask=~real)
    with torch.no_grad():
        got, _ = ours(x, mask=bias, key_padding=real, need_weights=need_weights)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_encoder_layer_3d_mask_with_key_padding_stays_per_example():
    torch.manual_seed(0)
    ours = EncoderLayer(16, 4, 32, dropout=0.0).eval()
    x = torch.randn(2, 5, 16)
    keep = torch.rand(2, 5, 5) > 0.3
    keep[..., 0] = True
    real = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    with torch.no_grad():
        got, w = ours(x, mask=keep, key_padding=real, need_weights=True)
        want = torch.cat([ours(x[b:b + 1], mask=keep[b:b + 1] & real[b, None, None, :])[0] for b in range(2)])
    assert w.shape == (2, 4, 5, 5)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_encoder_layer_has_the_same_parameter_count_as_torch():
    ref = nn.TransformerEncoderLayer(64, 8, 256, batch_first=True)
    ours = EncoderLayer(64, 8, 256)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    # 4 d^2 + 4 d (attention) + 2 d n_inner + n_inner + d (feed-forward) + 4 d (two layer norms)
    d, f = 64, 256
    assert sum(p.numel() for p in ours.parameters()) == 4 * d * d + 4 * d + 2 * d * f + f + d + 4 * d


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_equals_torch_with_copied_weights(norm_first):
    torch.manual_seed(1)
    ref = nn.TransformerDecoderLayer(16, 2, 32, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    ours = DecoderLayer.from_torch(ref).eval()
    x, memory = torch.randn(2, 5, 16), torch.randn(2, 6, 16)
    with torch.no_grad():
        expected = ref(x, memory, tgt_mask=nn.Transformer.generate_square_subsequent_mask(5), tgt_is_causal=True)
        got, (w_self, w_cross) = ours(x, memory, need_weights=True)
    assert torch.allclose(got, expected, atol=1e-5)
    assert w_self.shape == (2, 2, 5, 5) and w_cross.shape == (2, 2, 5, 6)
    assert torch.all(w_self.triu(1) == 0)  # causal: no query sees a later position


def test_decoder_output_does_not_depend_on_future_tokens():
    torch.manual_seed(2)
    layer = DecoderLayer(16, 2, 32, dropout=0.0).eval()
    x, memory = torch.randn(1, 6, 16), torch.randn(1, 4, 16)
    changed = x.clone()
    changed[:, 4:] += 1.0
    with torch.no_grad():
        a, _ = layer(x, memory)
        b, _ = layer(changed, memory)
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-6)
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_encoder_uses_our_multi_head_attention_and_returns_per_layer_weights():
    enc = Encoder(TransformerConfig(vocab_size=20, max_len=16, n_layer=3, n_head=2, n_embd=16, dropout=0.0))
    assert all(isinstance(layer.self_attn, MultiHeadAttention) for layer in enc.layers)
    ids = torch.randint(0, 20, (2, 9))
    hidden, weights = enc(ids, need_weights=True)
    assert hidden.shape == (2, 9, 16) and len(weights) == 3 and weights[0].shape == (2, 2, 9, 9)
    assert torch.allclose(weights[2].sum(-1), torch.ones(2, 2, 9), atol=1e-5)


def test_encoder_ignores_padding_tokens():
    torch.manual_seed(3)
    enc = Encoder(TransformerConfig(vocab_size=20, max_len=16, n_layer=2, n_head=2, n_embd=16, dropout=0.0)).eval()
    ids = torch.randint(1, 20, (1, 5))
    padded = torch.cat([ids, torch.tensor([[7, 7, 7]])], dim=1)
    real = torch.tensor([[True] * 5 + [False] * 3])
    with torch.no_grad():
        a, _ = enc(ids)
        b, _ = enc(padded, key_padding=real)
    assert torch.allclose(a, b[:, :5], atol=1e-5)


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="divisible"):
        TransformerConfig(vocab_size=10, n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="positional"):
        TransformerConfig(vocab_size=10, positional="rotary")
    with pytest.raises(ValueError, match="dropout"):
        EncoderLayer(16, 2, 32, dropout=1.5)
    enc = Encoder(TransformerConfig(vocab_size=10, max_len=8, n_embd=16, n_head=2))
    with pytest.raises(ValueError, match="vocab_size"):
        enc(torch.tensor([[3, 12]]))
    with pytest.raises(ValueError, match="long"):
        enc(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="key_padding"):
        enc(torch.tensor([[1, 2]]), key_padding=torch.ones(1, 2))
    with pytest.raises(ValueError, match="batch_first"):
        EncoderLayer.from_torch(nn.TransformerEncoderLayer(16, 2, 32))


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_equals_torch_with_every_mask_and_padding(norm_first):
    torch.manual_seed(4)
    g = torch.Generator().manual_seed(5)
    # train() with dropout 0: torch's documented path (no eval-mode fast path)
    ref = nn.TransformerDecoderLayer(16, 2, 32, dropout=0.0, batch_first=True, norm_first=norm_first).train()
    ours = DecoderLayer.from_torch(ref).eval()
    B, T, S = 3, 5, 6
    x, memory = torch.randn(B, T, 16, generator=g), torch.randn(B, S, 16, generator=g)
    tgt_allowed, mem_allowed = torch.rand(T, T, generator=g) > 0.3, torch.rand(T, S, generator=g) > 0.3
    tgt_allowed[:, 0] = mem_allowed[:, 0] = True  # every query keeps a real key: no row left empty
    tgt_real = torch.arange(T)[None, :] < torch.tensor([5, 3, 1])[:, None]
    mem_real = torch.arange(S)[None, :] < torch.tensor([6, 2, 4])[:, None]
    bias = torch.randn(T, T, generator=g).masked_fill(~tgt_allowed, float("-inf"))  # a float tgt_mask
    causal = nn.Transformer.generate_square_subsequent_mask(T)
    for tgt_mask, torch_tgt_mask in ((tgt_allowed, ~tgt_allowed | ~torch.ones(T, T, dtype=bool).tril()),
                                     (bias, bias + causal)):
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about mixing float and bool masks
            expected = ref(x, memory, tgt_mask=torch_tgt_mask, memory_mask=~mem_allowed,
                           tgt_key_padding_mask=~tgt_real, memory_key_padding_mask=~mem_real)
            for need_weights in (False, True):
                got, _ = ours(x, memory, memory_padding=mem_real, need_weights=need_weights, tgt_mask=tgt_mask,
                              memory_mask=mem_allowed, tgt_padding=tgt_real)
                torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_encoder_and_decoder_layers_agree_with_and_without_weights_on_fully_masked_rows():
    torch.manual_seed(6)
    enc, dec = EncoderLayer(16, 4, 32, dropout=0.0).eval(), DecoderLayer(16, 4, 32, dropout=0.0).eval()
    x, memory = torch.randn(2, 5, 16), torch.randn(2, 4, 16)
    bias = torch.randn(2, 5, 5).masked_fill(torch.rand(2, 5, 5) > 0.5, float("-inf"))
    bias[:, 2] = float("-inf")  # query 2 attends nothing
    with torch.no_grad():
        fused, _ = enc(x, mask=bias)
        explicit, _ = enc(x, mask=bias, need_weights=True)
        torch.testing.assert_close(explicit, fused, atol=1e-5, rtol=1e-5)
        fused, _ = dec(x, memory, tgt_mask=bias)
        explicit, _ = dec(x, memory, tgt_mask=bias, need_weights=True)
        torch.testing.assert_close(explicit, fused, atol=1e-5, rtol=1e-5)


def test_layers_name_width_dtype_and_torch_polarity_mistakes():
    enc, dec = EncoderLayer(8, 2, 16, dropout=0.0), DecoderLayer(8, 2, 16, dropout=0.0, norm_first=True)
    x = torch.randn(2, 3, 8)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, T >= 1, n_embd=8\), got a tensor of shape \(2, 3, 6\)"):
        enc(torch.randn(2, 3, 6))
    with pytest.raises(ValueError, match="memory has dtype torch.float64"):
        dec(x, torch.randn(2, 4, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="key_padding.*every row starts with padding"):
        enc(x, key_padding=torch.tensor([[False, False, True], [False, True, True]]))  # torch's True = padding
    with pytest.raises(ValueError, match="norm_first must be True"):
        EncoderLayer(8, 2, 16, norm_first="pre")
