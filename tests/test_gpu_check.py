"""`python -m anyres_demo.gpu_check`: skips cleanly without a GPU; on one, every check passes."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: see below")
def test_without_a_gpu_it_says_skip_and_exits_0():
    proc = subprocess.run([sys.executable, "-m", "anyres_demo.gpu_check"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines() == [
        "SKIP gpu_check: no CUDA GPU here (torch.cuda.is_available() is False)"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_chat_capture_and_heatmap_pass_in_each_precision(capsys):
    from anyres_demo import gpu_check

    assert gpu_check.run() == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("PASS heatmap") for line in lines) >= len(gpu_check.FAMILY_MODELS)
