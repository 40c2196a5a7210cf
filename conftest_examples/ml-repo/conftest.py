import pytest


@pytest.fixture(scope="session")
def batch_size(gtt_info):
    """Size the batch to the GTT this GPU can really allocate."""
    usable_gib = (gtt_info.usable_bytes or 0) / 2**30
    return 8 if usable_gib >= 96 else 2
