"""export: JSON round-trips the plan and layout; the snippet really reproduces the view."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from anyres_demo import build_layout, plan_image
from anyres_demo.export import FORMAT, export_dict, png_bytes, snippet, to_json, write_exports
from anyres_demo.views import overlay

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_json_holds_the_plan_and_every_token():
    plan = plan_image((600, 1600), "llava-next")
    layout = build_layout(plan)
    data = json.loads(to_json(plan, layout))
    assert data["format"] == FORMAT
    p = data["plan"]
    assert p["model"] == "llava-hf/llava-v1.6-mistral-7b-hf" and p["num_tokens"] == 2136
    assert p["image"] == {"height": 600, "width": 1600} and p["canvas"] == {"height": 336, "width": 1008}
    assert p["resized"] == {"height": 336, "width": 897} and p["paste_yx"] == [0, 55]
    assert p["unpad_cells"] == {"top": 0, "bottom": 0, "left": 4, "right": 4}
    assert p["formula"] == "576 + 24x64 + 24 = 2136"
    assert len(p["crops"]) == 4 and p["crops"][1]["window"] == [0.0, 0.0, 336.0, 336.0]
    assert sum(c["chosen"] for c in p["candidates"]) == 1
    assert p["settings"]["pinpoints_hw"][0] == [336, 672]
    lay = data["layout"]
    assert all(len(lay[k]) == 2136 for k in ("kind", "crop", "row", "col", "box"))
    assert lay["kinds"][lay["kind"][-1]] == "newline" and lay["box"][-1] is None
    assert lay["counts_by_kind"] == {"base": 576, "tile": 1536, "newline": 24}
    first_tile = lay["box"][576]
    assert first_tile == [round(v, 3) for v in layout.box[576].tolist()]


def test_export_dict_wrapper_tokens_for_qwen():
    plan = plan_image((1080, 1920), "qwen2-vl", max_pixels=1_000_000)
    data = export_dict(plan, build_layout(plan))
    assert data["plan"]["tokens_by_kind"]["wrapper"] == 2
    assert data["plan"]["settings"]["max_pixels"] == 1_000_000
    assert data["layout"]["kind"][0] == data["layout"]["kinds"].index("wrapper")


def test_png_bytes_decode_to_the_same_pixels():
    img = Image.fromarray(np.arange(60, dtype=np.uint8).reshape(4, 5, 3))
    back = Image.open(io.BytesIO(png_bytes(img)))
    assert back.format == "PNG" and np.array_equal(np.asarray(back), np.asarray(img))


def test_snippet_runs_and_reproduces_the_count(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (1600, 600), (10, 120, 200)).save(path)
    code = snippet("OpenGVLab/InternVL3-1B-hf", plan_image((600, 1600), "internvl").image_hw,
                   {"max_tiles": 6}, image_path=str(path))
    assert "plan_image(image, 'OpenGVLab/InternVL3-1B-hf', max_tiles=6)" in code
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": REPO}, timeout=120)
    assert out.returncode == 0, out.stderr
    expected = plan_image((600, 1600), "internvl", max_tiles=6)
    assert out.stdout.splitlines()[0] == f"{expected.num_tokens} tokens in total: {expected.formula}"
    assert (tmp_path / "overlay.png").exists() and (tmp_path / "token_map.png").exists()
    assert len(list(tmp_path.glob("crop_*.png"))) == expected.num_crops


def test_write_exports_writes_three_files(tmp_path):
    image = Image.new("RGB", (300, 200), (200, 30, 30))
    plan = plan_image(image, "llava-next")
    layout = build_layout(plan)
    paths = write_exports(plan, layout, overlay(image, plan, layout), str(tmp_path),
                          "llava-hf/llava-v1.6-mistral-7b-hf", image_name="/tmp/x/My scan (1).png")
    stem = "My_scan_1_llava-v1.6-mistral-7b-hf"  # after the image and the model, not file.py
    assert sorted(os.path.basename(p) for p in paths.values()) == [
        f"{stem}_overlay.png", f"{stem}_plan.json", f"{stem}_reproduce.py"]
    assert "load_image('My scan (1).png')" in open(paths["py"]).read()
    assert json.load(open(paths["json"]))["plan"]["num_tokens"] == plan.num_tokens
    assert Image.open(paths["png"]).size[0] == 900
    compile(open(paths["py"]).read(), "reproduce.py", "exec")  # raises SyntaxError if broken
