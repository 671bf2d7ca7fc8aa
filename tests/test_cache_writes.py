"""gradio's output cache under concurrency: identical pictures from many sessions at once must
never be served truncated (ui/hardening.atomic_cache_writes)."""
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from anyres_demo.ui import formats, hardening
from gradio import processing_utils


def test_cache_writes_are_patched_and_keep_gradios_names(tmp_path):
    hardening.atomic_cache_writes()
    assert processing_utils.save_pil_to_cache.atomic and processing_utils.save_bytes_to_cache.atomic
    img = Image.fromarray(np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3))
    path = Path(processing_utils.save_pil_to_cache(img, str(tmp_path), format="png"))
    data = formats.encode(img, "png")
    assert path == (tmp_path / processing_utils.hash_bytes(data) / "image.png").resolve()
    assert path.read_bytes() == data
    other = Path(processing_utils.save_bytes_to_cache(b"abc", "x.bin", str(tmp_path)))
    assert other.name == "x.bin" and other.read_bytes() == b"abc"
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]  # no staging files left


def test_identical_concurrent_writes_are_never_read_truncated(tmp_path):
    hardening.atomic_cache_writes()
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
    path = Path(processing_utils.save_pil_to_cache(img, str(tmp_path), format="png"))
    size = path.stat().st_size
    stop, short_reads = threading.Event(), []

    def reader():
        while not stop.is_set():
            n = len(path.read_bytes())
            if n != size:
                short_reads.append(n)

    def writer():
        for _ in range(30):
            processing_utils.save_pil_to_cache(img, str(tmp_path), format="png")

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer) for _ in range(4)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert short_reads == []
