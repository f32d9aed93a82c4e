"""An encoder-decoder's attention in one view: the encoder's self-attention, the decoder's (causal)
self-attention and the decoder's cross-attention to the encoder, with a selector between them.

A Hugging Face encoder-decoder model (BART, T5, Marian...) called with output_attentions=True returns all
three: `encoder_attentions`, `decoder_attentions` and `cross_attentions`, one (B, H, Tq, Tk) per layer.
`head_view(output, encoder_tokens=..., decoder_tokens=...)` and `model_view(...)` build a view of each
part and hand them to `EncoderDecoderView`, which shows one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from lmcourse.viz.attention import attention_with_labels
from lmcourse.viz.views import View

__all__ = ["PARTS", "EncoderDecoderView", "check_no_part_tokens", "encoder_decoder_parts", "is_encoder_decoder"]

PARTS = {"encoder": "encoder self-attention", "decoder": "decoder self-attention",
         "cross": "cross-attention (decoder queries, encoder keys)"}


def is_encoder_decoder(attention) -> bool:
    """True for an encoder-decoder model's output (it has `cross_attentions`, even if None)."""
    return hasattr(attention, "cross_attentions") and hasattr(attention, "encoder_attentions")


def check_no_part_tokens(encoder_tokens=None, decoder_tokens=None) -> None:
    """Refuse encoder_tokens / decoder_tokens for attention that is not an encoder-decoder output."""
    if encoder_tokens is not None or decoder_tokens is not None:
        raise ValueError("encoder_tokens= and decoder_tokens= name the tokens of an encoder-decoder output (one with "
                         "encoder_attentions, decoder_attentions and cross_attentions); for other attention give "
                         "tokens= (and key_tokens= for cross-attention)")


def encoder_decoder_parts(output, tokens: Sequence[str] | None, key_tokens: Sequence[str] | None,
                          encoder_tokens: Sequence[str] | None, decoder_tokens: Sequence[str] | None,
                          batch_index: int = 0) -> dict[str, tuple]:
    """Each part of an encoder-decoder output as (array (L, H, Tq, Tk), query labels, key labels):
    encoder (encoder tokens both sides), decoder (decoder tokens), cross (decoder queries, encoder keys)."""
    if tokens is not None or key_tokens is not None:
        raise ValueError("an encoder-decoder output has two token sequences: give encoder_tokens= and "
                         "decoder_tokens= instead of tokens / key_tokens")
    encoder = attention_with_labels(output.encoder_attentions, encoder_tokens, None, batch_index)
    decoder = attention_with_labels(output.decoder_attentions, decoder_tokens, None, batch_index)
    cross = attention_with_labels(output.cross_attentions, decoder[1], encoder[1], batch_index)
    return {"encoder": encoder, "decoder": decoder, "cross": cross}


class EncoderDecoderView(View):
    """Three views of one encoder-decoder output (`views`: encoder, decoder, cross), one shown at a time.
    `select(part=...)` switches; other arguments go to the part shown (e.g. layer=, token=)."""

    def __init__(self, views: dict[str, View], *, part: str = "cross", kind: str = "head view",
                 title: str | None = None):
        if set(views) != set(PARTS):
            raise ValueError(f"views must have the parts {list(PARTS)}, got {list(views)}")
        self.views, self.kind, self.title, self.part = views, kind, title, "cross"
        self.select(part=part)

    @property
    def view(self) -> View:
        """The view of the part shown now."""
        return self.views[self.part]

    def select(self, *, part: str | None = None, **kwargs) -> EncoderDecoderView:
        """Show `part` ("encoder", "decoder" or "cross"); pass the rest to that part's `select`. Returns self."""
        if part is not None:
            if part not in PARTS:
                raise ValueError(f"part must be one of {list(PARTS)}, got {part!r}")
            self.part = part
        if kwargs:
            self.view.select(**kwargs)
        if self._widget is not None:
            self._part_menu.value = self.part
        return self

    def caption(self) -> str:
        head = f"{self.title}: " if self.title else ""
        return f"{head}encoder-decoder {self.kind}, showing the {PARTS[self.part]}: {self.view.caption()}"

    def svg(self) -> str:
        return self.view.svg()

    def figure(self) -> Figure:
        return self.view.figure()

    def html_body(self, prefix: str = "ed") -> str:
        """All three parts in the page, one shown at a time (radio buttons, plain CSS)."""
        css = [f"#{prefix} .part{{display:none}} #{prefix} label{{font:bold 13px sans-serif;margin-right:1em;"
               "cursor:pointer}"]
        css += [f"#{prefix}-{name}:checked~.part.{name}{{display:block}} "
                f"#{prefix}-{name}:checked~.parts label[for={prefix}-{name}]{{text-decoration:underline}}"
                for name in PARTS]
        radios = [f'<input type="radio" name="{prefix}-part" id="{prefix}-{name}" hidden'
                  f'{" checked" * (name == self.part)}>' for name in PARTS]
        labels = "".join(f'<label for="{prefix}-{name}">{text}</label>' for name, text in PARTS.items())
        parts = [f'<div class="part {name}">{view.html_body(f"{prefix}-{name}-v")}</div>'
                 for name, view in self.views.items()]
        return "\n".join([f"<style>{' '.join(css)}</style>", f'<div id="{prefix}">', *radios,
                          f'<div class="parts">{labels}</div>', *parts, "</div>"])

    def _build_widget(self):
        import ipywidgets as widgets

        self._part_menu = widgets.ToggleButtons(options=[(text, name) for name, text in PARTS.items()],
                                                value=self.part, style=dict(button_width="auto"))
        box = widgets.Box([self.view.widget])

        def show(change):
            self.part = change["new"]
            box.children = [self.view.widget]

        self._part_menu.observe(show, names="value")
        return widgets.VBox([self._part_menu, box])
