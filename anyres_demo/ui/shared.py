"""Components every tab shares: the image, the model and its settings.

The explorer builds them; the chat and probe tabs take them as inputs so they always use the
same image and settings the explorer shows. The settings are one control per
`overrides.SETTING_SPECS` row, in that order: handlers receive them as trailing `*values` and
turn them into keyword arguments with `named_settings`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import gradio as gr

from ..overrides import SETTING_SPECS


@dataclass
class Shared:
    image: gr.Image  # type="filepath"; decode with images.load_image (upload, paste or example)
    model: gr.Dropdown  # preset repo id (anyres_demo.presets.PRESETS)
    controls: dict[str, Any] = field(default_factory=dict)  # SETTING_SPECS name -> component

    @property
    def settings(self) -> list:
        """[model, *one control per SETTING_SPECS row] as handler inputs."""
        return [self.model, *self.setting_controls]

    @property
    def setting_controls(self) -> list:
        return [self.controls[name] for name in SETTING_SPECS]


def named_settings(values: Sequence[Any]) -> dict[str, Any]:
    """The trailing setting values of a handler, keyed by SETTING_SPECS name, in that order;
    settings not given (a shorter list, as an older API client sends) are the checkpoint's."""
    names = list(SETTING_SPECS)
    if len(values) > len(names):
        raise ValueError(f"expected at most {len(names)} settings ({', '.join(names)}), got {len(values)}")
    return dict(zip(names, values))
