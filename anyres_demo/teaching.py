"""Short teaching texts shown beside each view (Markdown), written for a workshop audience.

`teaching(view, strategy)` returns the general text for a view followed by the family's
paragraph when there is one. Plain strings; never imports gradio.
"""
from __future__ import annotations

GENERAL: dict[str, str] = {
    "grid": (
        "A vision encoder only accepts small, fixed-size squares (336, 384 or 448 px). To read a "
        "large or oddly shaped image, the processor **resizes** it, sometimes **pads** it onto a "
        "bigger canvas, and **cuts** that canvas into tiles. Yellow lines are tile borders, thin "
        "white lines the cells that each become one token. Dark hatching is padding the "
        "processor added; red hatching marks feature rows or columns the model throws away again."),
    "crops": (
        "These are the pictures the vision encoder actually receives, in the order it receives "
        "them. Look for squashing (a circle turned into an oval), black padding bars, and how "
        "legible small text still is at the tile resolution. The global view (base image or "
        "thumbnail) sees everything, but blurred."),
    "token_map": (
        "Every visual token is a cell, coloured by kind. Click a cell to see its position in the "
        "sequence the language model reads, which crop it came from and which pixels of your "
        "image it covers. The count here is the count you pay for in the context window."),
    "ledger": (
        "The ledger adds the tokens up part by part. Its total equals what the transformers "
        "processor inserts into the prompt for this image (the project's tests check it against "
        "the real processors). The formula shows where each number comes from."),
    "why": (
        "Each strategy scores candidates and keeps one. Surprising choices usually come from a "
        "tie-break: two canvases keep the same number of pixels, or two grids have the same "
        "aspect-ratio gap. The table lists every candidate in the order it was tried."),
    "divergence": (
        "The original research code and the transformers port do not always agree. Where this "
        "image lands on a known difference, the note says what each would do. The explorer "
        "follows transformers."),
    "compare": (
        "The same image under every family. Notice how differently the budget is spent: a fixed "
        "grid plus a global view (LLaVA), a native-resolution patch grid (Qwen2-VL), or squashed "
        "tiles plus a thumbnail (InternVL)."),
    "whatif": (
        "No upload needed: move the sliders and watch the token count jump in steps. Each step "
        "is a new canvas, grid or rounding bucket. The star marks the size you chose. Flat "
        "stretches mean more pixels cost nothing extra; steep ones mean every pixel is paid for."),
    "export": (
        "Take the analysis with you: the plan and every token's source box as JSON, the overlay "
        "as PNG, and a Python snippet that rebuilds this view with the project's API."),
}

FAMILY: dict[str, dict[str, str]] = {
    "llava_next": {
        "grid": (
            "**LLaVA-NeXT** picks the canvas from a fixed list (672x336, 336x672, 672x672, "
            "1008x336, 336x1008) that keeps the most image pixels, resizes keeping the aspect "
            "ratio, pads the rest black, and cuts 336 px tiles. After the vision encoder it "
            "removes the padding rows again (**unpadding**) and appends a **newline** token to "
            "every row, so the model knows where a row ends."),
        "crops": ("Crop 0 is the **base image**: the whole picture squashed to 336x336, "
                  "ignoring the aspect ratio. The tiles follow, row by row."),
    },
    "llava_onevision": {
        "grid": (
            "**LLaVA-OneVision** works like LLaVA-NeXT with 384 px SigLIP tiles and any grid up "
            "to 6x6. When the unpadded grid holds more than about 9 tiles' worth of cells, it is "
            "**bilinearly downscaled**, so very large images do not cost more."),
        "crops": ("Crop 0 is the squashed base image; the tiles follow row by row. SigLIP reads "
                  "27 patches of 14 px, so the last 6 px of every 384 px tile are never seen."),
    },
    "qwen2_vl": {
        "grid": (
            "**Qwen2-VL / Qwen2.5-VL** does not tile. It resizes the image so both sides are "
            "multiples of 28, keeps the pixel count between min_pixels and max_pixels, and cuts "
            "14 px patches; every 2x2 patches merge into one token. Bigger images simply cost "
            "more tokens, up to the budget."),
        "crops": ("One image, resized to multiples of 28: that is all the encoder receives. "
                  "Very large results are shown scaled down here."),
    },
    "internvl": {
        "grid": (
            "**InternVL** chooses the grid of 448 px tiles (up to max_tiles) whose aspect ratio "
            "is closest to the image's, then **squashes** the image onto it, so the aspect "
            "ratio changes slightly. Each tile becomes 16x16 = 256 tokens after pixel shuffle."),
        "crops": ("The tiles come first, row by row; the **thumbnail** (the whole image at "
                  "448x448) comes last, and only when there is more than one tile."),
    },
    "qwen3_vl": {
        "grid": (
            "**Qwen3-VL / Qwen3.5** resize like Qwen2-VL with 16 px patches, so both sides become "
            "multiples of **32**, and the checkpoints keep the area between 65,536 px (at least "
            "64 tokens: small images are scaled up) and 16,777,216 px (16,384 tokens). "
            "qwen-vl-utils floors at 4,096 px instead, so small images differ (100x100: 64 "
            "tokens here, 9 there). Qwen3-VL's **DeepStack** adds features from three more "
            "vision layers to the first three decoder layers at the same image positions: same "
            "tokens, same order."),
        "crops": ("One image, resized to multiples of 32: that is all the encoder receives. "
                  "Very large results are shown scaled down here."),
    },
    "pixtral": {
        "grid": (
            "**Pixtral / Mistral Small 3.1** keep the native resolution: an image whose longer "
            "side is above the longest edge (1024 / 1540 px) is scaled down, never up, and each "
            "side is rounded up to a multiple of the token size (16 px; Mistral Small: 14 px "
            "patches merged 2x2, 28 px). Every row of [IMG] tokens ends with **[IMG_BREAK]**, "
            "the last with **[IMG_END]**, so the model knows the image's shape."),
        "crops": ("One image, resized to multiples of the token size (slightly stretched, no "
                  "padding): that is all the encoder receives."),
    },
}


def teaching(view: str, strategy: str | None = None) -> str:
    """Markdown for `view`, plus the family's paragraph for it when there is one."""
    if view not in GENERAL:
        raise ValueError(f"no teaching text for view {view!r}; known: {', '.join(GENERAL)}")
    extra = FAMILY.get(strategy or "", {}).get(view)
    if extra is None and strategy:  # the family module's own teaching(view) hook, if any
        from .strategies import STRATEGIES, hook

        own = hook(strategy, "teaching") if strategy in STRATEGIES else None
        extra = own(view) if own is not None else None
    return GENERAL[view] + ("\n\n" + extra if extra else "")
