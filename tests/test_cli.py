import json
import subprocess
import sys

import pytest
from PIL import Image

from anyres_demo.cli import main


def run_json(capsys, *argv):
    code = main(["tokens", "--json", *argv])
    return code, json.loads(capsys.readouterr().out)


def test_json_fields_for_every_family(capsys):
    code, recs = run_json(capsys, "-m", "llava-next", "-m", "llava-onevision", "-m", "qwen2-vl",
                          "-m", "internvl", "--size", "1920x1080")
    assert code == 0
    by = {r["strategy"]: r for r in recs}
    assert set(by) == {"llava_next", "llava_onevision", "qwen2_vl", "internvl"}
    ln = by["llava_next"]
    assert (ln["width"], ln["height"], ln["num_image_tokens"], ln["num_wrapper_tokens"]) == (1920, 1080, 1948, 0)
    assert (ln["num_crops"], ln["canvas_hw"], ln["grid_rows"], ln["grid_cols"]) == (5, [672, 672], 2, 2)
    assert ln["tokens_by_kind"] == {"base": 576, "tile": 1344, "newline": 28}
    q = by["qwen2_vl"]
    assert (q["num_image_tokens"], q["num_wrapper_tokens"], q["num_crops"]) == (2691, 2, 1)
    assert (q["grid_rows"], q["grid_cols"], q["canvas_hw"]) == (39, 69, [1092, 1932])
    iv = by["internvl"]
    assert (iv["num_image_tokens"], iv["num_crops"], iv["grid_rows"], iv["grid_cols"]) == (2304, 9, 2, 4)
    assert by["llava_onevision"]["num_image_tokens"] == 7269


def test_overrides_flags(capsys):
    _, recs = run_json(capsys, "-m", "qwen2-vl", "-s", "640x480", "--max-pixels", "100000")
    assert recs[0]["num_image_tokens"] == 117
    _, recs = run_json(capsys, "-m", "internvl", "-s", "640x480", "--max-tiles", "6")
    assert recs[0]["num_crops"] == 7
    _, recs = run_json(capsys, "-m", "llava-next", "-s", "1920x1080", "--pinpoints", "336x336")
    assert (recs[0]["grid_rows"], recs[0]["grid_cols"]) == (1, 1)


@pytest.mark.parametrize("argv,message", [
    (["-m", "qwen2-vl", "-s", "10x3000"], "above 200:1"),
    (["-m", "llava-next", "-s", "0x5"], "below 1 pixel"),
    (["-m", "nope", "-s", "10x10"], "unknown model 'nope'"),
    (["-m", "llava-next", "-s", "banana"], "WIDTHxHEIGHT"),
    (["-m", "llava-next", "-i", "/no/such/file.png"], ""),
])
def test_errors_are_objects_with_nonzero_exit(capsys, argv, message):
    code, recs = run_json(capsys, *argv)
    assert code == 1
    assert len(recs) == 1 and message in recs[0]["error"]


def test_image_file_and_table_output(tmp_path, capsys):
    path = tmp_path / "wide.png"
    Image.new("RGB", (500, 300), "white").save(path)
    assert main(["tokens", "-m", "llava-next", "-i", str(path)]) == 0
    out = capsys.readouterr().out
    assert "500x300" in out and "1560" in out and "base 576" in out


def test_module_entry_point_never_tracebacks():
    out = subprocess.run([sys.executable, "-m", "anyres_demo", "tokens", "-m", "qwen2-vl",
                          "-s", "1x1000", "--json"], capture_output=True, text=True)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "above 200:1" in json.loads(out.stdout)[0]["error"]
