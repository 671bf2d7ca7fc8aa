"""Test-wide setup: everything runs offline; the hub must never be contacted."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory):
    """One saved random-weight tiny model per family (hf_helpers.FAMILIES), built once for the
    whole run and shared by the chat and vision-tower tests. Read-only for the tests."""
    from hf_helpers import FAMILIES, family_preset

    from anyres_demo.backends import tiny_models

    dirs = {}
    for family in FAMILIES:
        folder = tmp_path_factory.mktemp(f"tiny-{family}")
        tiny_models.build_tiny_model(family_preset(family), str(folder))
        dirs[family] = str(folder)
    return dirs
