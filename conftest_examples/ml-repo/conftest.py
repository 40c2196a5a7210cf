import pytest


@pytest.fixture(scope="session")
def batch_size(gtt_info):
    """Size the batch to what this GPU can really allocate (from the carve-out or GTT)."""
    usable_gib = (gtt_info.allocatable_bytes or 0) / 2**30
    return 8 if usable_gib >= 96 else 2
