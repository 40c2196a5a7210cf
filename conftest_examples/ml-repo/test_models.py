import pytest


def test_tokenizer():
    """Runs everywhere: no hardware needed."""
    assert "gfx1151".upper() == "GFX1151"


@pytest.mark.requires_gfx1151
def test_strix_halo_kernels(gpu_arch):
    assert gpu_arch == "gfx1151"


@pytest.mark.requires_gfx1151
@pytest.mark.requires_gpu_memory_gb(96)
def test_70b_model_fits(gtt_info, batch_size):
    assert gtt_info.allocatable_bytes >= 96 * 2**30
    assert batch_size == 8


@pytest.mark.requires_gfx("gfx11", "gfx12")
def test_rdna_wave32(therock_env):
    assert therock_env.visible_gpus
