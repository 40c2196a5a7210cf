import os

import pytest


@pytest.mark.parametrize("shard", range(16))
def test_shard_runs_on_its_own_gpu(shard, therock_env, gpu_arch):
    (gpu,) = therock_env.visible_gpus  # exactly one GPU per worker
    assert os.environ["HIP_VISIBLE_DEVICES"] == "0"
    assert os.environ["ROCR_VISIBLE_DEVICES"] == str(therock_env.gpus.index(gpu))
