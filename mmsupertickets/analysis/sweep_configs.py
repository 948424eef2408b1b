"""The sweep's configs, all derived from the user's SuperTickets config:
the SuperTickets and search-only arms of a seed, one ratio's SuperTickets
run and the retraining of a ticket with its masks fixed."""
import copy
import os
import os.path as osp
from typing import Optional, Sequence

from mmengine.config import Config

__all__ = [
    'derive_arms', 'supertickets_config', 'fixed_mask_config',
    'write_arm_configs', 'write_task_config', 'shorten_schedule'
]


def _hook_type(hook) -> str:
    t = hook.get('type') if isinstance(hook, dict) else type(hook)
    name = t if isinstance(t, str) else getattr(t, '__name__', str(t))
    return name.split('.')[-1]


def _find_hook(cfg: Config, name: str) -> Optional[dict]:
    return next((h for h in cfg.get('custom_hooks') or []
                 if _hook_type(h) == name), None)


def _without_hooks(cfg: Config, names: Sequence[str]) -> Config:
    cfg = copy.deepcopy(cfg)
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks') or []
                        if _hook_type(h) not in names]
    return cfg


def _schedule_end(cfg: Config) -> tuple:
    """``('iters' | 'epochs', end)`` of the config's training loop."""
    train_cfg = cfg.get('train_cfg') or {}
    if 'max_iters' in train_cfg:
        return 'iters', int(train_cfg['max_iters'])
    if 'max_epochs' in train_cfg:
        return 'epochs', int(train_cfg['max_epochs'])
    raise ValueError('train_cfg has neither max_iters nor max_epochs: '
                     f'{dict(train_cfg)}')


def _evaluate_once_at_end(cfg: Config) -> None:
    """One evaluation, after the last iteration; one checkpoint, there."""
    unit, end = _schedule_end(cfg)
    cfg.train_cfg.val_interval = end
    cfg.train_cfg.pop('val_begin', None)
    ckpt = dict(cfg.get('default_hooks', {}).get('checkpoint') or
                dict(type='CheckpointHook'))
    ckpt.update(interval=end, by_epoch=unit == 'epochs', max_keep_ckpts=1,
                save_last=True, save_best=None)
    cfg.default_hooks = dict(cfg.get('default_hooks') or {}, checkpoint=ckpt)


def shorten_schedule(cfg: Config, iters: int) -> None:
    """An iteration-based schedule cut to ``iters`` (scheduler bounds and
    T_max scaled with it), in place: a pipeline check (``--quick``)."""
    unit, end = _schedule_end(cfg)
    if unit != 'iters':
        cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters,
                             val_interval=iters)
        for sched in cfg.get('param_scheduler') or []:
            sched['by_epoch'] = False
            sched.pop('convert_to_iter_based', None)
        end = 1 if unit == 'epochs' else end
    scale = iters / end
    for sched in cfg.get('param_scheduler') or []:
        for key in ('begin', 'end', 'T_max', 'total_steps'):
            if key in sched:
                sched[key] = max(1, round(sched[key] * scale)) \
                    if key != 'begin' else round(sched[key] * scale)
        if 'end' in sched:
            sched['end'] = max(sched['end'], sched.get('begin', 0) + 1)
    cfg.train_cfg.max_iters = iters


def derive_arms(config, seed: int, bn_samples: Optional[int] = None,
                quick: bool = False,
                data_root: Optional[Sequence[str]] = None) -> dict:
    """The search-only and SuperTickets configs of one seed, from
    ``config`` (the SuperTickets one; a ratio is set per run).

    Same data, model, optimizer and schedule; the pruning hook must be
    there, and the search hook too. A ``BNRecalibrationHook`` is added
    (``bn_samples`` samples; default: the config's ``PreciseBNHook``'s,
    else 200) and the runs evaluate once, at their end.

    Args:
        data_root: ``(old, new)`` path prefix replaced in the config.
        quick: A few iterations with events every epoch (tests).

    Returns:
        dict: ``supertickets`` and ``search`` configs (Config).
    """
    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    cfg = copy.deepcopy(cfg)
    if data_root:
        from mmsupertickets.testing import redirect_paths
        cfg = Config(redirect_paths(cfg.to_dict(), *data_root),
                     filename=cfg.filename)
    for name in ('SuperNetSearchHook', 'ProgressivePruningHook'):
        if _find_hook(cfg, name) is None:
            raise ValueError(f'the config has no {name} in custom_hooks: '
                             'the sweep derives its arms from a SuperTickets '
                             'config (SuperNetSearchHook, '
                             'ProgressivePruningHook)')
    if quick:
        from mmsupertickets.testing import events_every_epoch
        shorten_schedule(cfg, 4)
        cfg.train_dataloader.batch_size = 2
        events_every_epoch(cfg)
        bn_samples = bn_samples or 4
    precise = _find_hook(cfg, 'PreciseBNHook')
    if bn_samples is None:
        bn_samples = int(precise.get('num_samples', 200)) if precise \
            else 200
    cfg.custom_hooks = list(cfg.custom_hooks) + [
        dict(type='BNRecalibrationHook', num_samples=bn_samples)]
    _evaluate_once_at_end(cfg)
    cfg.randomness = dict(cfg.get('randomness') or {}, seed=seed)
    cfg.resume = False
    cfg.load_from = None
    search = _without_hooks(cfg, ('ProgressivePruningHook',
                                  'IterativeReactivationHook'))
    return dict(supertickets=cfg, search=search)


def supertickets_config(cfg: Config, ratio: float) -> Config:
    """``cfg`` with the pruning hook's target set to ``ratio``."""
    cfg = copy.deepcopy(cfg)
    _find_hook(cfg, 'ProgressivePruningHook')['target_sparsity'] = ratio
    return cfg


def fixed_mask_config(cfg: Config, ratio: float) -> Config:
    """Retraining of a ticket with its masks and architecture fixed: no
    search, no reactivation, a pruning hook that never prunes (it rebuilds
    the subnet and loads the masks from the checkpoint)."""
    pp = dict(_find_hook(cfg, 'ProgressivePruningHook'))
    cfg = _without_hooks(cfg, ('SuperNetSearchHook', 'ProgressivePruningHook',
                               'IterativeReactivationHook'))
    pp.update(target_sparsity=ratio, prune_interval=None,
              reactivation=None)
    cfg.custom_hooks = list(cfg.custom_hooks) + [pp]
    return cfg


def write_arm_configs(config, seeds: Sequence[int], work_dir: str,
                      bn_samples: Optional[int] = None, quick: bool = False,
                      data_root: Optional[Sequence[str]] = None) -> dict:
    """:func:`derive_arms` for every seed, each config also written to
    ``work_dir/<arm>_s<seed>.py`` for reference.

    Returns:
        dict: ``{seed: {arm: Config}}``.

    Example:
        >>> arms = write_arm_configs(  # doctest: +SKIP
        ...     'configs/supertickets/demo/st.py', [0, 1], 'work')
        >>> sorted(arms[0])  # doctest: +SKIP
        ['search', 'supertickets']
    """
    arms = {}
    for seed in seeds:
        arms[seed] = derive_arms(config, seed, bn_samples, quick, data_root)
        for name, cfg in arms[seed].items():
            cfg.dump(osp.join(work_dir, f'{name}_s{seed}.py'))
    return arms


def write_task_config(arms: dict, task: dict, work_dir: str) -> str:
    """Write the config one task of :func:`~.sweep_schedule.plan_tasks`
    runs to ``work_dir/<task id>/config.py``; its path.

    S+P tasks get the search-only config: they prune its checkpoint and
    retrain with it.

    Example:
        >>> write_task_config(  # doctest: +SKIP
        ...     arms, dict(id='supertickets_r0.9_s0', kind='supertickets',
        ...                seed=0, ratio=0.9), 'work')
        'work/supertickets_r0.9_s0/config.py'
    """
    base = arms[task['seed']]
    if task['kind'] == 'search' or task['kind'] == 'sp':
        cfg = base['search']
    elif task['kind'] == 'supertickets':
        cfg = supertickets_config(base['supertickets'], task['ratio'])
    else:
        cfg = fixed_mask_config(base['supertickets'], task['ratio'])
    path = osp.join(work_dir, task['id'], 'config.py')
    os.makedirs(osp.dirname(path), exist_ok=True)
    cfg.dump(path)
    return path
