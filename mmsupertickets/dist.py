"""Distributed helpers that also work on machines without a GPU.

mmengine's launchers call ``torch.cuda.set_device`` before creating the
process group, which fails on a CPU-only machine. :func:`init_dist_for_device`
creates a ``gloo`` group itself when CUDA is unavailable; the runner then
skips its own ``init_dist`` because a group exists. With CUDA it does
nothing and mmengine sets up NCCL as usual.
"""
import datetime
import os
import subprocess
from typing import Any, List, Optional, Tuple

import torch
import torch.distributed as torch_dist
from mmengine import dist as mm_dist
from mmengine.logging import print_log
from torch.nn.parallel import DistributedDataParallel

__all__ = [
    'init_dist_for_device', 'setup_launcher', 'broadcast_tensor_',
    'broadcast_object', 'rewrap_ddp'
]

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
        # Registers the wrapper named below.
        import mmsupertickets.models.wrappers  # noqa: F401
        cfg.model_wrapper_cfg = dict(
            type='DeviceAgnosticDDP',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))


def broadcast_tensor_(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Overwrite ``tensor`` in place with its value on rank ``src``.

    Decisions such as pruning masks must be identical on every rank:
    compute them on ``src`` and broadcast. Does nothing when not
    distributed.

    Args:
        tensor (torch.Tensor): Same shape and dtype on every rank.
        src (int): The rank whose value wins. Defaults to 0.

    Returns:
        torch.Tensor: ``tensor`` itself, for chaining.
    """
    mm_dist.broadcast(tensor, src=src)
    return tensor


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Return rank ``src``'s ``obj`` on every rank.

    For small picklable values (an architecture spec, a list of channel
    indices). Returns ``obj`` unchanged when not distributed.

    Args:
        obj: Any picklable object; only the one on ``src`` matters.
        src (int): The rank whose object is returned. Defaults to 0.

    Returns:
        The object from rank ``src``.
    """
    holder = [obj]
    mm_dist.broadcast_object_list(holder, src=src)
    return holder[0]


def _stale_accumulators(module: torch.nn.Module) -> List[str]:
    """Parameters whose gradient accumulator still expects an older shape.

    A parameter's accumulator is cached while anything holds it; an
    autograd graph built before the shape change does (for instance the
    loss the train loop passes to ``after_train_iter`` as ``outputs``).
    Reading the shape uses a private torch attribute; without it no
    parameter is reported.
    """
    stale = []
    with torch.enable_grad():
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            accumulator = param.view_as(param).grad_fn.next_functions[0][0]
            metadata = getattr(accumulator, '_input_metadata', None)
            if metadata and tuple(metadata[0].shape) != tuple(param.shape):
                stale.append(name)
    return stale


def _release_reducer(wrapper: DistributedDataParallel) -> None:
    """Detach a DDP wrapper from its module's parameters for good.

    Its reducer hooks every parameter's gradient accumulator and keeps the
    accumulators alive. An accumulator remembers the shape its parameter
    had when it was made, and a new reducer built while the old one lives
    reuses it, so backward would reject gradients of the new shape.
    Dropping the reducer (and the logger that references it) frees them.
    """
    if not hasattr(wrapper, 'reducer'):
        return  # released by an earlier call
    wrapper._remove_autograd_hooks()
    for handle in getattr(wrapper, '_accum_grad_hooks', ()):
        handle.remove()
    del wrapper.reducer
    if hasattr(wrapper, 'logger'):
        del wrapper.logger


def rewrap_ddp(runner: Any) -> bool:
    """Re-wrap ``runner.model`` after its parameters changed shape.

    DDP fixes its gradient buckets when it is built, so after slicing
    parameters in place the old wrapper would all-reduce into buckets of
    the old sizes. This builds a new wrapper of the same class with the
    constructor arguments the old one recorded (``init_kwargs``, see
    :class:`DeviceAgnosticDDP`) and assigns it to ``runner.model``. The old
    wrapper is detached from the parameters first and must not be used
    again. The wrapped module and its parameters (hence the optimizer's
    references) stay the same objects. Every rank must call it at the same
    point: building DDP is a collective operation, and it checks that the
    shapes agree across ranks.

    No autograd graph from before the shape change may be alive: it pins
    each parameter's gradient accumulator at the old shape, and the new
    reducer would reuse it. Call it from ``before_train_iter`` or
    ``after_train_epoch``, not from ``after_train_iter``, where the train
    loop still holds the last loss (``outputs``); it raises otherwise, and
    can be called again once the graph is gone.

    Args:
        runner (mmengine.runner.Runner): Any object with a ``model``
            attribute.

    Returns:
        bool: False if ``runner.model`` is not a DDP wrapper (nothing to
        do), True after re-wrapping.
    """
    old = runner.model
    if not isinstance(old, DistributedDataParallel):
        return False
    init_kwargs = getattr(old, 'init_kwargs', None)
    if init_kwargs is None:
        raise TypeError(
            f'cannot re-wrap a {type(old).__name__}: it does not record its '
            "constructor arguments; set model_wrapper_cfg=dict(type="
            "'DeviceAgnosticDDP') (tools/train.py does so by default)")
    # The old reducer holds the accumulators too: release it first.
    _release_reducer(old)
    stale = _stale_accumulators(old.module)
    if stale:
        raise RuntimeError(
            'cannot re-wrap while an autograd graph built before the shape '
            f'change is alive: it pins the old gradient shapes of {stale}. '
            'Call rewrap_ddp again once it is gone, e.g. in '
            'before_train_iter or after_train_epoch (in after_train_iter '
            'the loop still holds the last loss as `outputs`)')
    new = type(old)(module=old.module, **init_kwargs)
    new.train(old.training)
    runner.model = new
    return True
