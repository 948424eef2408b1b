"""Starting distributed runs, also on machines without a GPU.

mmengine's launchers call ``torch.cuda.set_device`` before creating the
process group, which fails on a CPU-only machine. :func:`init_dist_for_device`
creates a ``gloo`` group itself when CUDA is unavailable; the runner then
skips its own ``init_dist`` because a group exists. With CUDA it does
nothing and mmengine sets up NCCL as usual.
"""
import datetime
import os
import subprocess
from typing import Any, Optional, Tuple

import torch
import torch.distributed as torch_dist
from mmengine.logging import print_log

__all__ = ['init_dist_for_device', 'setup_launcher', 'LAUNCHERS']

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def _slurm_master_addr(node_list: str) -> str:
    # The first host of the allocation hosts the rendezvous, as with
    # mmengine's slurm launcher.
    return subprocess.getoutput(
        f'scontrol show hostname {node_list} | head -n1').strip()


def _ranks_from_env(launcher: str) -> Tuple[int, int]:
    """(rank, world size) for ``launcher``; exports the variables that
    ``env://`` rendezvous and the runner read."""
    env = os.environ
    if launcher == 'pytorch':
        # torchrun exports all of them.
        rank, world_size = int(env['RANK']), int(env['WORLD_SIZE'])
        local_rank = int(env.get('LOCAL_RANK', 0))
    elif launcher == 'mpi':
        rank = int(env['OMPI_COMM_WORLD_RANK'])
        world_size = int(env['OMPI_COMM_WORLD_SIZE'])
        local_rank = int(env['OMPI_COMM_WORLD_LOCAL_RANK'])
        if 'MASTER_ADDR' not in env:
            raise KeyError('launcher "mpi" needs the MASTER_ADDR '
                           'environment variable')
    else:  # slurm
        rank = int(env['SLURM_PROCID'])
        world_size = int(env['SLURM_NTASKS'])
        local_rank = int(env.get('SLURM_LOCALID', 0))
        env.setdefault('MASTER_ADDR',
                       _slurm_master_addr(env['SLURM_NODELIST']))
    env.setdefault('MASTER_PORT', '29500')
    env['RANK'], env['WORLD_SIZE'] = str(rank), str(world_size)
    # The runner reads LOCAL_RANK when it wraps the model.
    env['LOCAL_RANK'] = str(local_rank)
    return rank, world_size


def init_dist_for_device(launcher: str,
                         backend: Optional[str] = None,
                         timeout: Optional[float] = None) -> bool:
    """Create the default process group for ``launcher`` when there is no
    GPU.

    Call it before the runner is built. Without CUDA it initialises a
    process group from the launcher's environment variables (``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` from torchrun; the
    ``OMPI_*`` or ``SLURM_*`` equivalents otherwise). With CUDA, or when a
    group already exists, it does nothing and the runner's ``init_dist``
    (``env_cfg.dist_cfg``) takes over.

    Args:
        launcher (str): One of ``'none'``, ``'pytorch'``, ``'slurm'``,
            ``'mpi'``. ``'none'`` does nothing.
        backend (str, optional): Backend for the CPU group. Defaults to
            ``'gloo'``. ``'nccl'`` is refused: it needs GPUs.
        timeout (float, optional): Collective timeout in seconds, as in
            ``env_cfg.dist_cfg.timeout``. Defaults to torch's default.

    Returns:
        bool: True if this call created the process group.

    Example:
        >>> # in a script started by torchrun on a CPU-only machine
        >>> init_dist_for_device('pytorch')  # doctest: +SKIP
        True
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f'launcher must be one of {LAUNCHERS}, '
                         f'but got {launcher!r}')
    if (launcher == 'none' or torch.cuda.is_available()
            or torch_dist.is_initialized()):
        return False
    backend = backend or 'gloo'
    if backend == 'nccl':
        raise ValueError('backend "nccl" needs CUDA, which is not available '
                         'here; use "gloo"')
    rank, world_size = _ranks_from_env(launcher)
    kwargs: dict = dict(
        backend=backend,
        init_method='env://',
        rank=rank,
        world_size=world_size)
    if timeout is not None:
        kwargs['timeout'] = datetime.timedelta(seconds=timeout)
    torch_dist.init_process_group(**kwargs)
    print_log(
        f'CUDA is unavailable: initialised a {backend!r} process group '
        f'(rank {rank} of {world_size})',
        logger='current')
    return True


def setup_launcher(cfg: Any, launcher: str) -> None:
    """Prepare ``cfg`` and the process group for ``launcher``.

    Used by ``tools/train.py`` and ``tools/test.py`` before they build the
    runner: sets ``cfg.launcher``, creates a CPU process group when needed
    (:func:`init_dist_for_device`, timeout from ``env_cfg.dist_cfg``) and,
    for a distributed run whose config names no ``model_wrapper_cfg``,
    selects :class:`DeviceAgnosticDDP` with the arguments the runner's own
    default wrapper gets (``broadcast_buffers=False`` and the config's
    ``find_unused_parameters``).

    Args:
        cfg (mmengine.Config): The config to update in place.
        launcher (str): One of ``'none'``, ``'pytorch'``, ``'slurm'``,
            ``'mpi'``.
    """
    cfg.launcher = launcher
    if launcher == 'none':
        return
    dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', {})
    init_dist_for_device(launcher, timeout=dist_cfg.get('timeout'))
    if cfg.get('model_wrapper_cfg') is None:
        # Registered by importing mmsupertickets (which imports this module).
        cfg.model_wrapper_cfg = dict(
            type='DeviceAgnosticDDP',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
