"""Which inputs this process takes when several run at once: :func:`shard_from_env` reads the
launcher's environment (torchrun, SLURM ``srun``), :func:`balance` splits the inputs into
disjoint, size-balanced shares, and :func:`process_device` / :func:`process_threads` give each
process its own GPU or its share of the CPU cores.

No process group is created: every process computes the same split from the same input list,
so they need not talk to each other (the run's index is written by rank 0 once the others'
completion markers are there, see :mod:`lgrnet.runs.batch`).
"""
from __future__ import annotations

import heapq
import os
from dataclasses import dataclass
from typing import List, Mapping, Optional, Sequence

from ..errors import UserError


@dataclass(frozen=True)
class Shard:
    """This process's place: ``rank`` of ``world_size`` processes, ``local_rank`` of
    ``local_world_size`` on this machine; ``launcher``: "torchrun", "slurm" or None (one process);
    ``run_id``: the launcher's id of the run (torchrun's rendezvous id, SLURM's job.step), or None."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    launcher: Optional[str] = None
    run_id: Optional[str] = None

    def describe(self) -> str:
        return f"process {self.rank} of {self.world_size} ({self.launcher})" if self.world_size > 1 else "one process"


def _int(env: Mapping[str, str], key: str) -> Optional[int]:
    value = env.get(key)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise UserError(f"environment variable {key}={value!r}: not an integer") from None


def shard_from_env(env: Optional[Mapping[str, str]] = None) -> Shard:
    """The :class:`Shard` of this process: the one reader of the launchers' environment, used by
    ``predict``, ``evaluate`` and ``train``.

    torchrun: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``TORCHELASTIC_RUN_ID``.
    Without them, a task of an ``srun`` step: ``SLURM_STEP_NUM_TASKS`` (the step's tasks, which srun
    sets and a batch script does not), ``SLURM_PROCID``, ``SLURM_LOCALID``,
    ``SLURM_STEP_TASKS_PER_NODE`` / ``SLURM_NTASKS_PER_NODE`` / ``SLURM_TASKS_PER_NODE``,
    ``SLURM_JOB_ID`` and ``SLURM_STEP_ID``. A batch script run without srun (it sees the job's
    ``SLURM_NTASKS`` and ``SLURM_PROCID=0``, but no step) is one process, as is an unset environment."""
    env = os.environ if env is None else env
    if _int(env, "WORLD_SIZE") is not None:
        world, rank = _int(env, "WORLD_SIZE"), _int(env, "RANK") or 0
        local = _int(env, "LOCAL_RANK") or 0
        local_world = _int(env, "LOCAL_WORLD_SIZE") or world
        run_id = env.get("TORCHELASTIC_RUN_ID")
        launcher = "torchrun"
    elif _int(env, "SLURM_STEP_NUM_TASKS") is not None:
        world, rank = _int(env, "SLURM_STEP_NUM_TASKS"), _int(env, "SLURM_PROCID") or 0
        local = _int(env, "SLURM_LOCALID") or 0
        local_world = (_tasks_per_node(env.get("SLURM_STEP_TASKS_PER_NODE")) or _int(env, "SLURM_NTASKS_PER_NODE")
                       or _tasks_per_node(env.get("SLURM_TASKS_PER_NODE")) or world)
        job, step = env.get("SLURM_JOB_ID"), env.get("SLURM_STEP_ID")
        run_id = f"{job}.{step}" if job else None
        launcher = "slurm"
    else:
        return Shard()
    if not (world >= 1 and 0 <= rank < world and 0 <= local < max(local_world, 1)):
        raise UserError(f"{launcher} environment: rank {rank} of {world} (local {local} of {local_world}) is not valid")
    if run_id in ("", "none"):  # torchrun without --rdzv-id
        run_id = None
    return Shard(rank=rank, world_size=world, local_rank=local, local_world_size=max(1, local_world),
                 launcher=launcher, run_id=run_id)


def _tasks_per_node(value: Optional[str]) -> Optional[int]:
    """SLURM_TASKS_PER_NODE like "4(x2),3" -> 4 (the first node's count)."""
    if not value:
        return None
    head = value.split(",")[0].split("(")[0]
    return int(head) if head.isdigit() else None


def input_size(path: str) -> int:
    """How much work an input is, for balancing: a file's size in bytes; a folder's files' sizes
    summed (a frame folder); 0 when it cannot be read (it fails fast anyway)."""
    try:
        if os.path.isdir(path):
            return sum(e.stat().st_size for e in os.scandir(path) if e.is_file())
        return os.path.getsize(path)
    except OSError:
        return 0


def balance(sizes: Sequence[int], world_size: int) -> List[List[int]]:
    """Split inputs of ``sizes`` into ``world_size`` disjoint shares of about equal total size.

    Greedy (longest first): inputs in decreasing size (ties by position) go to the share with
    the least total so far (ties: the lowest rank). Deterministic, so every process computes the
    same split. Returns, per rank, the positions of its inputs in increasing order."""
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    heap = [(0, r) for r in range(world_size)]
    shares: List[List[int]] = [[] for _ in range(world_size)]
    for i in sorted(range(len(sizes)), key=lambda i: (-int(sizes[i]), i)):
        total, r = heapq.heappop(heap)
        shares[r].append(i)
        heapq.heappush(heap, (total + int(sizes[i]), r))
    return [sorted(s) for s in shares]


def process_device(device: str, shard: Shard) -> str:
    """The device of this process: with several processes on a machine, "auto" and a bare "cuda"
    become ``cuda:<local rank % GPUs>`` when CUDA is available (one GPU per process); an explicit
    ``cuda:N`` or "cpu" is kept."""
    import torch

    name = str(device or "auto")
    if shard.world_size > 1 and name in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{shard.local_rank % torch.cuda.device_count()}"
    return name


def process_threads(shard: Shard, cores: Optional[int] = None) -> int:
    """CPU threads for this process's model: the machine's cores (this process's affinity)
    divided among the processes on the machine, at least 1."""
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:
            cores = os.cpu_count() or 1
    return max(1, cores // max(1, shard.local_world_size))
