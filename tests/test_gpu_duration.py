"""ZeroGPU durations are sized to the work (a room shares one quota per IP)."""
from anyres_demo import plan_image
from anyres_demo.backends.chat import (GPU_MIN_SECONDS, GPU_SECONDS, GenerationSettings, Prepared,
                                       gpu_seconds)


def seconds(model: str, max_new_tokens: int, capture: bool = True) -> int:
    plan = plan_image((1080, 1920), model)
    prepared = Prepared(inputs={}, plan=plan, prompt_len=plan.num_tokens + 40, overrides={}, image=None)
    return gpu_seconds(prepared, GenerationSettings(max_new_tokens=max_new_tokens,
                                                    capture_attention=capture))


def test_duration_grows_with_answer_length_and_model_size():
    small = [seconds("llava-onevision", n) for n in (32, 256, 1024, 8192)]
    assert small == sorted(small) and small[0] == GPU_MIN_SECONDS and small[-1] == GPU_SECONDS
    assert seconds("llava-next", 512) > seconds("llava-onevision", 512)  # 7B vs 0.5B
    assert seconds("llava-next", 512, capture=False) < seconds("llava-next", 512)


def test_short_answers_never_ask_for_the_ceiling():
    assert seconds("llava-next", 128) < GPU_SECONDS / 2
