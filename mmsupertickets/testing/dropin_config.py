"""A stock config rewritten the way a drop-in matrix cell runs it
(:mod:`mmsupertickets.testing.dropin`): no weights from the internet, the
generated data, the SuperTickets hooks, a 2-iteration loop on CPU."""
import copy
import importlib
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Tuple

from .dropin_data import SEG_SIZE, generated_loader

__all__ = ['config_root', 'hrnet_widths', 'swap_hrnet', 'training_config']


def config_root(codebase: str) -> str:
    """The folder of a codebase's packaged stock configs.

    Example:
        >>> config_root('mmseg')  # doctest: +SKIP
        '.../site-packages/mmseg/.mim/configs'
    """
    pkg = importlib.import_module(codebase)
    return osp.join(osp.dirname(pkg.__file__), '.mim', 'configs')


def hrnet_widths(backbone: dict, codebase: str
                 ) -> Optional[Tuple[Sequence[int], tuple]]:
    """(out_channels, out_indices) that make SuperTicketHRNet return what
    a stock ``HRNet`` backbone config returns, or None for other
    backbones.

    Example:
        >>> hrnet_widths(dict(type='HRNet', extra=dict(stage4=dict(
        ...     num_channels=(18, 36, 72, 144)))), 'mmseg')
        ((18, 36, 72, 144), (0, 1, 2, 3))
    """
    if backbone.get('type') != 'HRNet':
        return None
    from mmsupertickets.models.backbones.supertickets_hrnet import HRNET_WIDTHS
    extra = backbone.get('extra') or {}
    stage4 = extra.get('stage4') or {}
    widths = stage4.get('num_channels') or HRNET_WIDTHS[
        str(backbone.get('arch', 'w32')).lower()]
    # mmpose's HRNet returns only the highest-resolution branch unless
    # stage4 says otherwise; mmseg's takes it as an argument.
    multiscale = stage4.get('multiscale_output', codebase != 'mmpose') \
        and backbone.get('multiscale_output', True)
    if multiscale:
        return tuple(widths), (0, 1, 2, 3)
    return (widths[0], ), (0, )


def swap_hrnet(model: dict, codebase: str) -> bool:
    """The documented adaptation: the ``HRNet`` backbone becomes
    ``SuperTicketHRNet(out_channels=<stock widths>)``; False if the model
    has no HRNet backbone.

    Example:
        >>> model = dict(backbone=dict(type='HRNet', extra=dict(
        ...     stage4=dict(num_channels=(18, 36, 72, 144)))))
        >>> swap_hrnet(model, 'mmseg'), model['backbone']['type']
        (True, 'SuperTicketHRNet')
    """
    found = hrnet_widths(model.get('backbone') or {}, codebase)
    if found is None:
        return False
    widths, indices = found
    model['backbone'] = dict(type='SuperTicketHRNet',
                             out_channels=list(widths),
                             out_indices=list(indices))
    return True


def training_config(codebase: str, config: str, variant: str, work_dir: str,
                    roots: Dict[str, str], size: Optional[int] = None):
    """The stock config as the matrix runs it, with the input shape and
    the inference image: ``(cfg, shape, image)`` or a skip reason str.
    ``size`` replaces mmpretrain's small input (see
    :func:`~.dropin_data.config_image_size`).

    Example:
        >>> cfg, shape, image = training_config(  # doctest: +SKIP
        ...     'mmseg', 'hrnet/fcn_hr18_4xb2-80k_cityscapes-512x1024.py',
        ...     'b', '/tmp/dropin/cell', generate_data('/tmp/dropin/data'))
    """
    from mmengine.config import Config
    try:
        cfg = Config.fromfile(osp.join(config_root(codebase),
                                       config)).to_dict()
    except Exception as e:  # noqa: BLE001 - mmengine's parsing errors vary
        # e.g. a read_base config importing `mmpose.configs._base_`, which
        # the installed package does not ship: the codebase's own tools
        # cannot load it either.
        return ('the stock config does not load from the installed '
                f'package: {type(e).__name__}: ' +
                str(e).splitlines()[0][:200])
    model = cfg['model']
    _drop_weights(model)
    reason = _unsupported(codebase, model)
    if reason is not None:
        return reason
    made = generated_loader(cfg, codebase, config, roots, size)
    if made is None:
        # mmpose 1.x ships associative embedding for inference only.
        return 'the stock config has no training pipeline (it is empty)'
    loader, shape, image = made
    if codebase == 'mmpretrain':
        _drop_batch_augments(cfg)
    if variant == 'b' and not swap_hrnet(model, codebase):
        return 'no HRNet backbone'
    _make_short_run(cfg, work_dir, loader, _matrix_hooks(variant, shape))
    _keep_test_part(cfg, codebase, loader)
    # A visualizer of its own per run (mmengine keeps one per name).
    cfg['visualizer'] = dict(cfg.get('visualizer') or dict(
        type='Visualizer'), name=f'dropin_{time.time_ns()}',
        vis_backends=[dict(type='LocalVisBackend')])
    cfg.get('env_cfg', {}).update(cudnn_benchmark=False,
                                  mp_cfg=dict(mp_start_method='fork'))
    return Config(cfg), shape, image


def _drop_weights(obj):
    """Remove every reference to weights from the internet, in place."""
    if isinstance(obj, dict):
        for key in list(obj):
            value = obj[key]
            if key == 'pretrained' and isinstance(value, str):
                obj[key] = None
            elif key == 'init_cfg':
                inits = value if isinstance(value, list) else [value]
                kept = [i for i in inits if not (isinstance(i, dict) and (
                    i.get('type') == 'Pretrained' or 'checkpoint' in i))]
                obj[key] = (kept if isinstance(value, list) else
                            (kept[0] if kept else None))
            elif key in ('checkpoint', 'pretrained_model', 'init_ckpt') \
                    and isinstance(value, str) and '://' in value:
                obj[key] = None
            else:
                _drop_weights(value)
    elif isinstance(obj, list):
        for v in obj:
            _drop_weights(v)
    return obj


def _num_keypoints(model: dict) -> Optional[int]:
    head = model.get('head') or {}
    # UDP's combined target has a heatmap and x/y offsets per keypoint.
    per_keypoint = 3 if (head.get('decoder') or {}).get(
        'heatmap_type') == 'combined' else 1
    if isinstance(head.get('num_keypoints'), int):
        return head['num_keypoints']
    if isinstance(head.get('out_channels'), int):
        return head['out_channels'] // per_keypoint
    return None


def _unsupported(codebase: str, model: dict) -> Optional[str]:
    """Why a model has no generated data of its kind, or None."""
    kind = model.get('type', '')
    if codebase == 'mmseg':
        if 'Depth' in kind:
            return 'depth estimation: no generated depth data'
    elif codebase == 'mmpose':
        if kind not in ('TopdownPoseEstimator', 'BottomupPoseEstimator'):
            return f'{kind}: not a top-down/bottom-up pose estimator'
        k = _num_keypoints(model)
        if k not in (None, 17):
            return f'{k} keypoints: only COCO\'s 17 are generated'
    elif kind != 'ImageClassifier':
        return (f'{kind}: not an image classifier (self-supervised or '
                f'multimodal model)')
    return None


def _drop_batch_augments(cfg: dict) -> None:
    # mmpretrain's batch augments (mixup, cutmix) only add randomness.
    model = cfg['model']
    pre = model.get('data_preprocessor') or cfg.get(
        'data_preprocessor') or {}
    model['data_preprocessor'] = {
        k: v for k, v in pre.items() if k != 'batch_augments'}


def _matrix_hooks(variant: str, shape: tuple) -> List[dict]:
    """The pruning hook (variant a), or all three SuperTickets hooks."""
    hooks = [dict(type='ProgressivePruningHook', target_sparsity=0.5,
                  prune_interval=1, step=0.25, by_epoch=False)]
    if variant == 'b':
        hooks = [dict(type='SuperNetSearchHook', warmup=0, min_macs=0,
                      shrink_interval=1, input_shape=list(shape),
                      by_epoch=False)] + hooks + [
                          dict(type='IterativeReactivationHook')]
    return hooks


def _cpu_optim_wrapper(cfg: dict) -> dict:
    optim = cfg.get('optim_wrapper') or dict(
        type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01))
    if optim.get('type') == 'AmpOptimWrapper':
        optim = {k: v for k, v in optim.items()
                 if k not in ('loss_scale', 'dtype')}
        optim['type'] = 'OptimWrapper'
    return optim


def _make_short_run(cfg: dict, work_dir: str, loader: dict,
                    hooks: List[dict]) -> None:
    """2 iterations on the generated data with ``hooks``, no schedule, a
    checkpoint at the end, in place."""
    imports = (cfg.get('custom_imports') or {}).get('imports', [])
    imports = [imports] if isinstance(imports, str) else list(imports)
    default_hooks = dict(cfg.get('default_hooks') or {})
    default_hooks.update(
        checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2),
        logger=dict(type='LoggerHook', interval=100))
    default_hooks.pop('visualization', None)
    cfg.update(
        custom_imports=dict(imports=imports + [
            'mmsupertickets', 'mmsupertickets.testing.dropin'],
            allow_failed_imports=False),
        work_dir=work_dir, load_from=None, resume=False, launcher='none',
        train_dataloader=loader,
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=2,
                       val_interval=10**6),
        param_scheduler=None, optim_wrapper=_cpu_optim_wrapper(cfg),
        default_hooks=default_hooks,
        custom_hooks=[h for h in cfg.get('custom_hooks') or []
                      if 'PipelineSwitch' not in str(h.get('type'))] + hooks,
        log_level='WARNING', randomness=dict(seed=0),
        auto_scale_lr=dict(enable=False, base_batch_size=2))


def _keep_test_part(cfg: dict, codebase: str, loader: dict) -> None:
    """No validation; the stock test part stays (the inference APIs read
    its pipeline, mmseg's at the small input), in place."""
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator'):
        cfg.pop(key, None)
    tests = ('test_dataloader', 'test_cfg', 'test_evaluator')
    # test_cfg = dict() is a complete test part: only None means none.
    has_test = all(cfg.get(k) is not None for k in tests)
    if not has_test and codebase == 'mmpretrain':
        # Pre-training configs have no test part; the inferencer needs one.
        test = copy.deepcopy(loader)
        test['sampler'] = dict(type='DefaultSampler', shuffle=False)
        cfg.update(test_dataloader=test, test_cfg=dict(),
                   test_evaluator=dict(type='Accuracy'))
    elif not has_test:
        for key in tests:
            cfg.pop(key, None)
    if codebase == 'mmseg' and cfg.get('test_dataloader'):
        cfg['test_pipeline'] = [
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(SEG_SIZE, SEG_SIZE), keep_ratio=False),
            dict(type='PackSegInputs')]
        cfg['test_dataloader']['dataset']['pipeline'] = cfg['test_pipeline']
