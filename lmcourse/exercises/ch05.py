"""Chapter 05 · the Transformer: rotary positions, a decoder block in both norm orders, whole-word masking.

Each exercise is the step next to one the chapter shows: rotary positions after the sinusoidal clocks, the
decoder block after the encoder block, whole-word masking after BERT's per-token rule. Every expected value
is computed after the learner's function has returned, from copies of the inputs it was given.
"""

from __future__ import annotations

import copy

import torch

from lmcourse.exercises.grading import call, exercise, expect_pair, forbidding, generator, same_tensor

ID_ROTARY, ID_DECODER, ID_WHOLE_WORD = "05.apply_rotary", "05.decoder_block", "05.whole_word_mask"


# ------------------------------------------------------------------------------------------------ rotary positions

@exercise(ID_ROTARY, "rotary positions (RoPE)", hints=[
    "Start from section 1: pair i of the dimensions, (2i, 2i+1), has its own clock, and position p sets that "
    "clock to the angle the sinusoidal encoding uses for pair i. Here the pair is not a new vector added to x: "
    "it is the part of x to turn. Which pairs, by which angle, and are your positions the ones you were given?",
    "Treat (x[..., 2i], x[..., 2i+1]) as a point in the plane, the even dimension on the first axis, and turn it "
    "counter-clockwise by the angle: its length must not change. Work on the even and the odd columns together, "
    "with the angles shaped (T, d/2) so that they broadcast over the leading dimensions of x.",
    "Why it works: turning q by the angle of position m and k by that of n leaves their dot product a function of "
    "n - m alone (rotations compose and keep lengths), which is section 1's 'three tokens back looks the same "
    "everywhere', now inside the attention scores. Test your function on it: shift both positions by the same "
    "amount and the score must not move.",
])
def check_apply_rotary(apply_rotary) -> None:
    g = generator(ID_ROTARY)
    cases = [("x (2, 5, 8), positions 0..4", (2, 5, 8), torch.arange(5), torch.float32),
             ("(B, heads, T, head_dim) = (2, 3, 6, 16), positions 100..105 (after 100 cached tokens)", (2, 3, 6, 16),
              torch.arange(100, 106), torch.float32),
             ("one pair (d_model = 2), positions 0, 1, 7, 1000, not in order", (1, 4, 2),
              torch.tensor([0, 1, 7, 1000]), torch.float32),
             ("float64 x (3, 7, 10)", (3, 7, 10), torch.arange(7), torch.float64),
             ("d_model = 64, 40 positions", (1, 40, 64), torch.arange(40), torch.float32)]
    for name, shape, positions, dtype in cases:
        _rotary_case(name, apply_rotary, (torch.randn(shape, generator=g) * 1.5).to(dtype), positions)


def _rotary_case(name: str, apply_rotary, x: torch.Tensor, positions: torch.Tensor) -> None:
    got = call(name, apply_rotary, x.clone(), positions.clone())
    # the expected value, only now: RoFormer's rotation of each pair (2i, 2i+1) by p * 10000^(-2i/d), in float64
    d = x.shape[-1]
    angle = positions.double()[:, None] * 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # (T, d/2)
    even, odd = x.double()[..., 0::2], x.double()[..., 1::2]
    want = torch.stack([even * angle.cos() - odd * angle.sin(), even * angle.sin() + odd * angle.cos()], dim=-1)
    same_tensor(name, got, want.flatten(-2).to(x.dtype), atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------------------------------------ the decoder block

@exercise(ID_DECODER, "a decoder block, post-norm and pre-norm", hints=[
    "Look at section 2: the encoder block in both orders, and the sentence on the decoder under it. A decoder "
    "block has three sub-layers, each inside a residual connection with its own norm (norm1, norm2, norm3). For "
    "each attention: where do its queries come from, where its keys and values, and what may it not see?",
    "Self-attention reads the decoder's own stream, may not look ahead and may not read padded targets; "
    "cross-attention asks from the decoder's stream and reads memory, never its padding. MultiHeadAttention "
    "takes both restrictions itself (is_causal, key_padding): no mask of your own is needed.",
    "The idea: each sub-layer is the same residual wrapper around a different function. Post-norm normalises the "
    "sum after adding; pre-norm normalises only the copy the sub-layer reads, so the stream that moves on is never "
    "normalised. Write the wrapper once, for both orders, and apply it to the three sub-layers in turn.",
])
def check_decoder_block(decoder_block) -> None:
    from lmcourse.transformer import DecoderLayer

    T_, F_ = True, False
    cases = [("post-norm, d_model=32, 4 heads, T=5, S=7, no padding", False, 32, 4, 2, 5, 7, None, None),
             ("pre-norm, d_model=16, 2 heads, T=4, S=6, padded memory", True, 16, 2, 2, 4, 6, None,
              torch.tensor([[T_] * 6, [T_] * 4 + [F_] * 2])),
             ("post-norm, left-padded targets: queries 0 and 1 of example 1 see no key (fully masked rows)", False,
              24, 3, 2, 6, 5, torch.tensor([[T_] * 6, [F_, F_] + [T_] * 4]), torch.tensor([[T_] * 3 + [F_] * 2, [T_] * 5])),
             ("pre-norm, right-padded targets and padded memory", True, 32, 4, 2, 5, 4,
              torch.tensor([[T_] * 3 + [F_] * 2, [T_] * 5]), torch.tensor([[T_] * 4, [T_, F_, F_, F_]])),
             ("pre-norm, a single target token (T=1), S=3", True, 16, 4, 3, 1, 3, None, None)]
    for i, (name, norm_first, d, heads, B, T, S, tgt_padding, memory_padding) in enumerate(cases):
        g = generator(ID_DECODER, i)
        with torch.random.fork_rng():  # random weights without touching the notebook's random state
            torch.manual_seed(int(torch.randint(2**31, (1,), generator=g)))
            layer = DecoderLayer(d, heads, 4 * d, dropout=0.0, activation="gelu", norm_first=norm_first).eval()
            with torch.no_grad():  # norms that are not the identity, so a missing or misplaced one shows
                for norm in (layer.norm1, layer.norm2, layer.norm3):
                    norm.weight.uniform_(0.5, 1.5)
                    norm.bias.normal_(0, 0.3)
        y = torch.randn(B, T, d, generator=g) * 2 + 1
        memory = torch.randn(B, S, d, generator=g) * 1.5 - 0.5  # another scale: reading y for memory shows
        _decoder_case(name, decoder_block, layer, y, memory, tgt_padding, memory_padding)


def _decoder_case(name, decoder_block, layer, y, memory, tgt_padding, memory_padding) -> None:
    from lmcourse.transformer import DecoderLayer

    paddings = [None if m is None else m.clone() for m in (tgt_padding, memory_padding)]
    with torch.no_grad():
        with forbidding(DecoderLayer, "torch.nn.TransformerDecoderLayer"):   # its forward is the answer
            got = call(name, decoder_block, copy.deepcopy(layer), y.clone(), memory.clone(), *paddings)
        want, _ = layer(y, memory, memory_padding, tgt_padding=tgt_padding)   # the package's layer, after the call
    same_tensor(name, got, want, atol=1e-5)


# ------------------------------------------------------------------------------------------------ whole-word masking

@exercise(ID_WHOLE_WORD, "whole-word masking", hints=[
    "Section 4 picks each token on its own; here the decision belongs to the word and is read at its first "
    "token only. For every position, which position holds the decision of the word it belongs to? And what "
    "about a window whose first tokens continue a word that began before it?",
    "A running count of the word starts along the row tells every token which word it belongs to; a running "
    "maximum over the positions where a word starts tells it where that word began (a loop over the positions "
    "works too). Then look up u_pick there. Special tokens are never picked, and labels exist only where a "
    "token was picked.",
    "Two decisions at two levels: picking is per word (every token of a picked word gets a label), the "
    "[MASK] / random / keep split of section 4 stays per token, each picked token with its own u_split. Check "
    "both levels on a row you write by hand.",
])
def check_whole_word_mask(whole_word_mask) -> None:
    g = generator(ID_WHOLE_WORD)
    n_regular, mask_id = 20, 22
    cls_id, pad_id = n_regular, n_regular + 1
    for name, shape, p, layout in [("4 x 12 regular tokens, p = 0.3", (4, 12), 0.3, "plain"),
                                   ("[CLS] in front and padding at the end (special tokens), p = 0.5", (3, 14), 0.5, "specials"),
                                   ("rows that start in the middle of a word, p = 0.4", (4, 10), 0.4, "mid-word"),
                                   ("u_pick exactly p at some word starts (not picked), u_split exactly 0.8 and 0.9", (3, 16), 0.5,
                                    "thresholds"),
                                   ("p = 0.99, a row of padding only and long words", (3, 20), 0.99, "long"),
                                   ("p = 0.15, 8 x 64", (8, 64), 0.15, "plain")]:
        ids = torch.randint(n_regular, shape, generator=g)
        word_start = torch.rand(shape, generator=g) < (0.25 if layout == "long" else 0.5)
        word_start[:, 0] = layout != "mid-word"
        if layout == "mid-word":
            word_start[0, 0] = True  # one row starts with a word, the others inside one
        if layout in ("specials", "long"):
            ids[:, 0] = cls_id
            ids[0, -3:] = ids[1, -1:] = pad_id
            if layout == "long":
                ids[2] = pad_id  # a row of padding only: nothing to pick
            special = ids >= n_regular
            word_start |= special | torch.cat([torch.zeros_like(special[:, :1]), special[:, :-1]], dim=1)
        u_pick, u_split = torch.rand(shape, generator=g), torch.rand(shape, generator=g)
        if layout == "thresholds":
            starts = word_start.nonzero()
            for b, t in starts[::3].tolist():
                u_pick[b, t] = p
            u_split[:, ::4] = torch.tensor(0.8)
            u_split[:, 2::4] = torch.tensor(0.9)   # float32: not below 0.9, so kept
        random_ids = torch.randint(n_regular, shape, generator=g)
        _whole_word_case(name, whole_word_mask, ids, word_start, u_pick, u_split, random_ids, mask_id, n_regular, p)


def _whole_word_case(name, whole_word_mask, ids, word_start, u_pick, u_split, random_ids, mask_id, n_regular, p):
    with forbidding("lmcourse.mlm.mask_tokens", why="the per-token rule of section 4, not the whole-word one"):
        got = call(name, whole_word_mask, ids.clone(), word_start.clone(), u_pick.clone(), u_split.clone(),
                   random_ids.clone(), mask_id, n_regular, p)
    got = expect_pair(name, got, "(inputs, labels)")
    # the expected value, only now: each token reads its word's decision at the word's first token
    T = ids.shape[1]
    start = word_start.clone()
    start[:, 0] = True
    first = torch.where(start, torch.arange(T), 0).cummax(dim=1).values     # (B, T): where each token's word begins
    picked = (u_pick.gather(1, first) < p) & (ids < n_regular)
    labels = torch.where(picked, ids, torch.full_like(ids, -100))
    inputs = torch.where(picked & (u_split < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(picked & (u_split >= 0.8) & (u_split < 0.9), random_ids, inputs)
    same_tensor(name, got[1], labels, what="labels")
    same_tensor(name, got[0], inputs, what="inputs")

