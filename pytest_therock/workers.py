"""pytest-xdist: each worker gets its own slice of the visible GPUs."""

from __future__ import annotations

import dataclasses

from .environment import Environment


def gpu_slices(visible: int, per_worker: int, workers: int) -> list[range]:
    """Positions in the visible GPU list for each worker; ValueError if they do not fit."""
    fit = visible // per_worker
    if workers > fit:
        raise ValueError(
            f"{workers} workers x {per_worker} GPU(s) need {workers * per_worker} GPUs, "
            f"{visible} visible: at most {fit} worker(s) fit (use -n {fit})"
            if fit
            else f"{per_worker} GPU(s) per worker need {per_worker} GPUs, {visible} visible"
        )
    return [range(k * per_worker, (k + 1) * per_worker) for k in range(workers)]


def worker_variables(env: Environment, positions: range) -> dict[str, str]:
    """Visibility variables that show a worker only its GPUs.

    ROCR_VISIBLE_DEVICES names them among all GPUs (so a filter the user had set is
    respected: the slice is taken from what it left visible); HIP and CUDA then
    index that list from 0.
    """
    visible = env.visible_gpus
    absolute = [env.gpus.index(visible[p]) for p in positions]
    local = ",".join(str(i) for i in range(len(absolute)))
    return {
        "ROCR_VISIBLE_DEVICES": ",".join(str(i) for i in absolute),
        "HIP_VISIBLE_DEVICES": local,
        "CUDA_VISIBLE_DEVICES": local,
    }


def for_worker(env: Environment, variables: dict[str, str]) -> Environment:
    """The environment as a worker with these visibility variables sees it."""
    return dataclasses.replace(env, env_vars={**env.env_vars, **variables})
