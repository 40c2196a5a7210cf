import pytest


def test_runner_is_an_apu(therock_env):
    (gpu,) = therock_env.visible_gpus
    assert gpu.is_apu


@pytest.mark.requires_gfx1151
@pytest.mark.requires_gtt_gb(60)
def test_gtt_is_large_enough(gtt_info):
    assert gtt_info.exceeds_vram is not False
