"""Components every tab shares: the image, the model and its budget settings.

The explorer builds them; the chat and probe tabs take them as inputs so they always use the
same image and settings the explorer shows.
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr


@dataclass
class Shared:
    image: gr.Image  # type="filepath"; decode with images.load_image (upload, paste or example)
    model: gr.Dropdown  # preset repo id (anyres_demo.presets.PRESETS)
    max_pixels: gr.Number  # Qwen budget override (0/empty = checkpoint value)
    min_pixels: gr.Number
    max_tiles: gr.Number  # InternVL override
    min_tiles: gr.Number
    pinpoints: gr.Textbox  # LLaVA canvas list "672x336, 336x672, ..." (WxH), empty = checkpoint

    @property
    def settings(self) -> list:
        """[model, max_pixels, min_pixels, max_tiles, min_tiles, pinpoints] as handler inputs."""
        return [self.model, self.max_pixels, self.min_pixels, self.max_tiles, self.min_tiles,
                self.pinpoints]
