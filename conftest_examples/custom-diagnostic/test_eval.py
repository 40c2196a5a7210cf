def test_eval_smoke(therock_env):
    assert therock_env.visible_gpus
