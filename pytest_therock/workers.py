"""pytest-xdist: each worker gets its own slice of the visible GPUs."""

from __future__ import annotations

from collections.abc import Sequence

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
    return env._replace(env_vars={**env.env_vars, **variables})


def worker_ids(tx: Sequence[str]) -> list[str]:
    """The ids pytest-xdist gives the workers of these ``--tx`` specs, in order.

    ``N*SPEC`` stands for N workers (xdist's ``workermanage.parse_tx_spec_config``);
    a spec's ``id=NAME`` names its worker, the others get ``gw0``, ``gw1``, ... in
    order (execnet's ``Group.allocate_id``).
    """
    ids: list[str] = []
    auto = 0
    for spec in tx:
        count, star, rest = spec.partition("*")
        for one in [rest] * int(count) if star and count.isdigit() else [spec]:
            named = [part[3:] for part in one.split("//") if part.startswith("id=")]
            if named:
                ids.append(named[-1])
            else:
                ids.append(f"gw{auto}")
                auto += 1
    return ids


class SliceBook:
    """Which worker holds which GPU slice: slices follow worker identity.

    Each planned worker id gets its own slice. When a worker goes down (xdist calls
    ``pytest_testnodedown`` before it starts the replacement of a crashed worker,
    under a new id), its slice is freed, and the next worker without a slice of its
    own takes it: a replacement runs on the GPUs of the worker it replaces.
    """

    def __init__(self, ids: Sequence[str], slices: Sequence[range]) -> None:
        self.planned = dict(zip(ids, slices, strict=True))
        self.held: dict[str, range] = {}
        self.free: list[range] = []

    def take(self, worker_id: str) -> range:
        """The slice of ``worker_id``; ValueError when every slice is held by a live worker."""
        if worker_id in self.held:
            return self.held[worker_id]
        held = list(self.held.values())
        own = self.planned.get(worker_id)
        if own is not None and own not in held:
            chosen = own
        elif self.free:
            chosen = self.free[0]
        else:
            spare = [s for s in self.planned.values() if s not in held]
            if not spare:
                raise ValueError(
                    f"no GPU slice left for worker {worker_id!r}: all {len(held)} are in use"
                )
            chosen = spare[0]
        if chosen in self.free:
            self.free.remove(chosen)
        self.held[worker_id] = chosen
        return chosen

    def release(self, worker_id: str) -> None:
        """``worker_id`` went down: its slice goes to the next worker without one."""
        chosen = self.held.pop(worker_id, None)
        if chosen is not None:
            self.free.append(chosen)
