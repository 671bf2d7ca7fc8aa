"""The benchmark still runs: `python -m anyres_demo.bench --smoke` (small inputs, one round, no
thresholds: speed targets are for the full run by hand, on a quiet machine)."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_smoke_run_prints_every_section_with_ratios():
    out = subprocess.run([sys.executable, "-m", "anyres_demo.bench", "--smoke"], cwd=REPO,
                         capture_output=True, text=True, timeout=900,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    for header in ("load average at start", "counts:", "sweep:", "encode:", "user path",
                   "probes on a", "legibility, uncached"):
        assert header in text, (header, text[-3000:])
    assert text.count("x (") >= 10  # ratios with their spread
    assert "same recalls: yes" in text
