"""Chapter 05 · the Transformer: sinusoidal positions, a pre-norm encoder block, BERT's masking rule."""

from __future__ import annotations

import torch

from lmcourse.exercises.grading import call, exercise, expect_pair, generator, same_tensor

ID_PE, ID_PRE_NORM, ID_MLM = "05.sinusoidal_positions", "05.pre_norm_block", "05.bert_mask"


@exercise(ID_PE, "sinusoidal positional encodings", hints=[
    "Dimensions come in pairs (2i, 2i+1) that share one frequency: sine in the even column, cosine in the odd "
    "one. How does the frequency depend on the pair index i?",
    "angle[pos, i] = pos / 10000^(2i / d_model) for i = 0 .. d_model/2 - 1; PE[:, 0::2] = sin(angle), "
    "PE[:, 1::2] = cos(angle) (interleaved, not sin block then cos block).",
    "pos = torch.arange(n)[:, None]; inv_freq = 10000 ** (-torch.arange(0, d_model, 2) / d_model); "
    "angle = pos * inv_freq; pe = torch.zeros(n, d_model); pe[:, 0::2] = angle.sin(); pe[:, 1::2] = angle.cos().",
])
def check_sinusoidal_positions(sinusoidal_positions) -> None:
    from lmcourse.transformer import sinusoidal_positions as reference

    for n, d in [(10, 16), (1, 2), (50, 64), (7, 6), (200, 8)]:
        case = f"n_positions={n}, d_model={d}"
        got = call(case, sinusoidal_positions, n, d)
        same_tensor(case, got, reference(n, d), atol=1e-4, rtol=1e-4)


@exercise(ID_PRE_NORM, "a pre-norm encoder block", hints=[
    "Pre-norm keeps a clean residual stream: x itself is never normalised in place; each sub-layer reads a "
    "normalised copy and adds its output back. Which norm goes with which sub-layer?",
    "x = x + self_attn(norm1(x), norm1(x), norm1(x), mask=mask)[0]; then x = x + ff(norm2(x)).",
    "Normalise once per sub-layer: a = layer.norm1(x); x = x + layer.self_attn(a, a, a, mask=mask)[0]; "
    "return x + layer.ff(layer.norm2(x)).",
])
def check_pre_norm_block(pre_norm_block) -> None:
    from lmcourse.transformer import EncoderLayer

    g = generator(ID_PRE_NORM)
    cases = [("d_model=32, 4 heads, no mask", 32, 4, 2, 6, None),
             ("d_model=16, 2 heads, causal mask", 16, 2, 3, 5, torch.ones(5, 5, dtype=torch.bool).tril()),
             ("d_model=24, 3 heads, padding mask", 24, 3, 2, 4,
              torch.tensor([[True] * 4, [True, True, False, False]])[:, None, None, :])]
    for name, d, heads, B, T, mask in cases:
        with torch.random.fork_rng():
            torch.manual_seed(int(torch.randint(2**31, (1,), generator=g)))
            layer = EncoderLayer(d, heads, 4 * d, dropout=0.0, norm_first=True).eval()
            with torch.no_grad():  # non-trivial norms, so forgetting one shows
                for norm in (layer.norm1, layer.norm2):
                    norm.weight.uniform_(0.5, 1.5)
                    norm.bias.normal_(0, 0.3)
        x = torch.randn(B, T, d, generator=g) * 2 + 1
        with torch.no_grad():
            want, _ = layer(x, mask=mask)
            got = call(name, pre_norm_block, layer, x.clone(), mask)
        same_tensor(name, got, want, atol=1e-5)


@exercise(ID_MLM, "BERT's 80/10/10 masking rule", hints=[
    "Three decisions per position: is it picked (and may it be: specials never are), and if picked, is it "
    "masked, replaced by a random token, or left as it is? Labels exist only where a position was picked.",
    "picked = (u_pick < p) & (ids < n_regular); labels = ids where picked, else -100; of the picked: "
    "u_split < 0.8 -> mask_id, 0.8 <= u_split < 0.9 -> random_ids, the rest unchanged.",
    "Use torch.where three times: labels = torch.where(picked, ids, -100); inputs = torch.where(picked & "
    "(u_split < 0.8), mask_id, ids); inputs = torch.where(picked & (u_split >= 0.8) & (u_split < 0.9), random_ids, inputs).",
])
def check_bert_mask(bert_mask) -> None:
    from lmcourse.mlm import mask_tokens

    g = generator(ID_MLM)
    n_regular, mask_id = 20, 21
    cases = [("4 x 12 regular tokens, p = 0.3", (4, 12), 0.3, False),
             ("with special tokens (ids >= n_regular) that are never picked", (3, 10), 0.5, True),
             ("p = 0.15, 8 x 64", (8, 64), 0.15, False),
             ("p = 0.99: nearly everything picked", (2, 30), 0.99, True)]
    for name, shape, p, specials in cases:
        ids = torch.randint(n_regular, shape, generator=g)
        if specials:
            ids[:, 0], ids[:, -2:] = n_regular, n_regular + 1  # [CLS] in front, padding at the end
        seed = int(torch.randint(2**31, (1,), generator=g))
        want = mask_tokens(ids, mask_id, n_regular, p, generator=torch.Generator().manual_seed(seed))
        draws = torch.Generator().manual_seed(seed)  # mask_tokens draws in this order
        u_pick, u_split = torch.rand(shape, generator=draws), torch.rand(shape, generator=draws)
        random_ids = torch.randint(n_regular, shape, generator=draws)
        got = call(name, bert_mask, ids.clone(), u_pick, u_split, random_ids, mask_id, n_regular, p)
        got = expect_pair(name, got, "(inputs, labels)")
        same_tensor(name, got[1], want[1], what="labels")
        same_tensor(name, got[0], want[0], what="inputs")
