"""Export: the plan and its token layout as JSON, a picture as PNG bytes, and a Python snippet
that reproduces the view with the project's API.

Sizes are written as {"height": .., "width": ..} and boxes as [x0, y0, x1, y1] in original
pixels, so nobody has to guess an axis order. Never imports gradio.
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import re
from typing import Any

import numpy as np
from PIL import Image

from .geometry import Box, Size
from .layout import KINDS, Layout
from .strategies.base import Plan

FORMAT = "anyres-explorer/plan-v1"


def _size(size: Size | None) -> dict[str, int] | None:
    return None if size is None else {"height": size.height, "width": size.width}


def _box(box: Box) -> list[float]:
    return [round(float(v), 3) for v in box.as_tuple()]


def plan_dict(plan: Plan) -> dict[str, Any]:
    """Everything the processor decides for the image, JSON-ready."""
    return {
        "model": plan.preset.repo_id,
        "strategy": plan.strategy,
        "settings": _plain(dataclasses.asdict(plan.preset.settings)),
        "image": _size(plan.image_hw),
        "grid": {"rows": plan.grid_rows, "cols": plan.grid_cols},
        "canvas": _size(plan.canvas_hw),
        "resized": _size(plan.resized_hw),
        "paste_yx": list(plan.paste_yx),
        "features": _size(plan.features_hw),
        "unpad_cells": None if plan.unpad_cells is None else dict(zip(
            ("top", "bottom", "left", "right"), plan.unpad_cells)),
        "unpadded": _size(plan.unpadded_hw),
        "final": _size(plan.final_hw),
        "tokens_by_kind": dict(plan.tokens_by_kind),
        "num_image_tokens": plan.num_image_tokens,  # the placeholders the processor repeats
        "num_special_tokens": plan.num_special_tokens,  # markers around or between them
        "num_tokens": plan.num_tokens,  # tokens in total: both
        "formula": plan.formula,
        "divergences": list(plan.divergences),
        "crops": [{"index": c.index, "kind": c.kind, "row": c.row, "col": c.col,
                   "resize": _size(c.resize_hw), "canvas": _size(c.canvas_hw),
                   "paste_yx": list(c.paste_yx), "window": _box(c.window), "source": _box(c.source)}
                  for c in plan.crops],
        "candidates": [{"grid": {"rows": c.grid_rows, "cols": c.grid_cols}, "canvas": _size(c.canvas_hw),
                        "scores": {k: float(v) for k, v in c.scores.items()}, "chosen": c.chosen,
                        "note": c.note} for c in plan.candidates],
    }


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively (JSON has no tuples)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def layout_dict(layout: Layout) -> dict[str, Any]:
    """The token layout as columns (one entry per token, in sequence order)."""
    box = np.round(layout.box, 3)
    return {
        "kinds": list(KINDS),
        "kind": layout.kind.astype(int).tolist(),  # index into "kinds"
        "crop": layout.crop.astype(int).tolist(),
        "row": layout.row.astype(int).tolist(),
        "col": layout.col.astype(int).tolist(),
        # [x0, y0, x1, y1] original pixels; null for newline / wrapper / padding-only tokens
        "box": [None if math.isnan(b[0]) else b for b in box.tolist()],
        "counts_by_kind": layout.counts_by_kind(),
    }


def export_dict(plan: Plan, layout: Layout) -> dict[str, Any]:
    return {"format": FORMAT, "plan": plan_dict(plan), "layout": layout_dict(layout)}


def to_json(plan: Plan, layout: Layout) -> str:
    return json.dumps(export_dict(plan, layout), separators=(",", ":"))


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=3)
    return buf.getvalue()


def _kwargs_code(overrides: dict[str, Any]) -> str:
    return "".join(f", {k}={v!r}" for k, v in sorted(overrides.items()))


def snippet(model: str, size_hw: Size, overrides: dict[str, Any] | None = None,
            image_path: str = "your_image.png") -> str:
    """Python that reproduces the explorer's view of an image with the project's API."""
    ov = _kwargs_code(overrides or {})
    return f'''# AnyRes Explorer: reproduce this view. Needs the package: `pip install .` in a checkout.
from anyres_demo import build_layout, plan_image
from anyres_demo.images import load_image
from anyres_demo.render import render_crops
from anyres_demo.views import overlay, token_map

image = load_image({image_path!r}).image  # the {size_hw} image analysed
plan = plan_image(image, {model!r}{ov})
layout = build_layout(plan)
print(plan.num_tokens, "tokens in total:", plan.formula)
print(layout.counts_by_kind())
overlay(image, plan, layout).save("overlay.png")
token_map(image, plan, layout).save("token_map.png")
for i, crop in enumerate(render_crops(image, plan)):
    crop.save(f"crop_{{i:02d}}.png")
'''


def export_stem(image_name: str | None, repo_id: str) -> str:
    """`<image>_<model>`: e.g. photo_scene_llava-v1.6-mistral-7b-hf (safe file-name characters)."""
    model = repo_id.split("/")[-1]
    image = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.splitext(os.path.basename(image_name or ""))[0])
    image = image.strip("._-")[:60]
    return f"{image}_{model}" if image else model


def write_exports(plan: Plan, layout: Layout, overlay_image: Image.Image, folder: str,
                  model: str, overrides: dict[str, Any] | None = None,
                  image_name: str | None = None) -> dict[str, str]:
    """Write <image>_<model>_plan.json, _overlay.png and _reproduce.py into `folder` (the script
    opens `image_name`); returns their paths."""
    os.makedirs(folder, exist_ok=True)
    stem = export_stem(image_name, plan.preset.repo_id)
    paths = {"json": os.path.join(folder, f"{stem}_plan.json"),
             "png": os.path.join(folder, f"{stem}_overlay.png"),
             "py": os.path.join(folder, f"{stem}_reproduce.py")}
    with open(paths["json"], "w", encoding="utf-8") as f:
        f.write(to_json(plan, layout))
    with open(paths["png"], "wb") as f:
        f.write(png_bytes(overlay_image))
    with open(paths["py"], "w", encoding="utf-8") as f:
        f.write(snippet(model, plan.image_hw, overrides,
                        image_path=os.path.basename(image_name) if image_name else "your_image.png"))
    return paths
