"""The drop-in matrix: the plugin on every stock config of mmseg, mmpose
(body 2D keypoints) and mmpretrain.

For each stock config whose model builds on CPU, a short run checks the
README's two promises on generated data in the real on-disk formats
(:mod:`mmsupertickets.testing`):

- variant ``a``: the stock model with ``ProgressivePruningHook`` trains 2
  iterations through the stock runner, the ticket is exported
  (:func:`~mmsupertickets.apis.export.export_ticket`) and reloaded and run
  through the codebase's stock inference API;
- variant ``b`` (configs with an ``HRNet`` backbone): the backbone is
  swapped for ``SuperTicketHRNet(out_channels=<the stock widths>)`` — the
  documented adaptation, nothing else changes — the three SuperTickets
  hooks are added, and the same follows.

What a run changes in a stock config, and only that: weights from the
internet are dropped (``pretrained``/``init_cfg`` of type ``Pretrained``),
the datasets become the generated ones (mmseg labels are folded into the
model's class count), the inputs are small (mmseg and mmpretrain; mmpose
keeps its codec's input size, which its heads are built for), random
augmentations are left out, the loop runs 2 iterations, ``AmpOptimWrapper``
becomes ``OptimWrapper`` (CPU), learning-rate schedules are left out.

A config is skipped, with its reason, when its model does not build on
CPU (ops missing from the mmcv build, packages or files from the internet),
has more than :data:`MAX_PARAMS` parameters, or has no generated data of
its kind (depth estimation, keypoint layouts other than COCO's 17,
self-supervised and multimodal mmpretrain models).

Example:
    >>> from mmsupertickets.testing.dropin import run_config
    >>> run_config('mmseg', 'hrnet/fcn_hr18_4xb2-80k_cityscapes-512x1024.py',
    ...            'b', '/tmp/dropin')['result']  # doctest: +SKIP
    'pass'
"""
import copy
import glob
import hashlib
import importlib
import itertools
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Dict, List, Optional, Sequence, Tuple

CODEBASES = ('mmseg', 'mmpose', 'mmpretrain')
# Folder of each codebase's configs that the matrix covers.
CONFIG_DIRS = dict(mmseg='', mmpose='body_2d_keypoint', mmpretrain='')
MAX_PARAMS = 150e6
SEG_SIZE = 64
CLS_SIZE = 64
# Per-config time limit of a run in its own process, seconds.
TIMEOUT = 1200
# Stock training transforms that only add randomness.
_RANDOM_TRANSFORMS = re.compile(
    r'Random|Albu|Photometric|Mosaic|MixUp|YOLOX|FilterAnnotations|'
    r'CachedMixUp|CachedMosaic|HalfBody|Flip|ColorJitter|AutoAugment|'
    r'RandAugment|Erasing|Lighting|CutMix')

__all__ = ['list_configs', 'run_config', 'run_matrix', 'format_table',
           'generate_data', 'CODEBASES']


def config_root(codebase: str) -> str:
    """The folder of a codebase's packaged stock configs."""
    pkg = importlib.import_module(codebase)
    return osp.join(osp.dirname(pkg.__file__), '.mim', 'configs')


def list_configs(codebase: str) -> List[str]:
    """The stock configs the matrix covers, relative to
    :func:`config_root`, sorted."""
    root = config_root(codebase)
    base = osp.join(root, CONFIG_DIRS[codebase])
    found = glob.glob(osp.join(base, '**', '*.py'), recursive=True)
    return sorted(
        osp.relpath(p, root) for p in found
        if '_base_' not in osp.relpath(p, root).split(os.sep))


# ------------------------------------------------------------------ data


def generate_data(root: str) -> Dict[str, str]:
    """Write (once) the small generated datasets the runs read; returns the
    root of each format."""
    from mmsupertickets.testing.ade20k import generate_ade20k
    from mmsupertickets.testing.cityscapes import generate_cityscapes
    from mmsupertickets.testing.coco_keypoints import generate_coco_keypoints
    from mmsupertickets.testing.imagenet import generate_imagenet
    makers = dict(
        ade20k=lambda r: generate_ade20k(r, 4, 2, (64, 64)),
        cityscapes=lambda r: generate_cityscapes(r, 4, 2, (64, 128)),
        coco=lambda r: generate_coco_keypoints(r, 4, 2, (256, 192)),
        imagenet=lambda r: generate_imagenet(r, 1, 1, (64, 64)))
    roots = {}
    for name, make in makers.items():
        path = osp.join(root, name)
        if not osp.exists(osp.join(path, '.done')):
            shutil.rmtree(path, ignore_errors=True)
            make(path)
            open(osp.join(path, '.done'), 'w').close()
        roots[name] = path
    return roots


def _register_transforms():
    from mmcv.transforms import BaseTransform
    from mmengine.registry import TRANSFORMS

    if TRANSFORMS.get('FoldLabels') is not None:
        return

    @TRANSFORMS.register_module()
    class FoldLabels(BaseTransform):
        """Folds generated segmentation labels into ``num_classes`` (the
        model's class count stays stock); 255 stays ignored."""

        def __init__(self, num_classes: int):
            self.num_classes = int(num_classes)

        def transform(self, results: dict) -> dict:
            seg = results['gt_seg_map']
            keep = seg != 255
            seg = seg.copy()
            seg[keep] = seg[keep] % self.num_classes
            results['gt_seg_map'] = seg
            return results


# ---------------------------------------------------------- config edits


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


def _find(obj, key):
    """First value of ``key`` in a nested dict/list, depth first."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        obj = list(obj.values())
    if isinstance(obj, list):
        for v in obj:
            found = _find(v, key)
            if found is not None:
                return found
    return None


def _loader(dataset: dict, batch_size: int = 2) -> dict:
    return dict(batch_size=batch_size, num_workers=0,
                persistent_workers=False,
                sampler=dict(type='InfiniteSampler', shuffle=False),
                dataset=dataset)


def _seg_data(cfg, config: str, roots) -> Tuple[dict, tuple, str]:
    heads = cfg['model'].get('decode_head')
    head = heads[0] if isinstance(heads, list) else heads
    num_classes = (head or {}).get('num_classes', 2)
    if 'cityscapes' in config:
        root = roots['cityscapes']
        dataset = dict(type='CityscapesDataset', data_root=root,
                       data_prefix=dict(img_path='leftImg8bit/train',
                                        seg_map_path='gtFine/train'))
        zero = False
    else:
        root = roots['ade20k']
        dataset = dict(type='ADE20KDataset', data_root=root,
                       data_prefix=dict(img_path='images/training',
                                        seg_map_path='annotations/training'))
        zero = True
    dataset['pipeline'] = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', reduce_zero_label=zero),
        dict(type='FoldLabels', num_classes=num_classes),
        dict(type='Resize', scale=(SEG_SIZE, SEG_SIZE), keep_ratio=False),
        dict(type='PackSegInputs')]
    pre = cfg['model'].get('data_preprocessor') or {}
    if 'size' in pre or 'size_divisor' not in pre:
        pre['size'] = (SEG_SIZE, SEG_SIZE)
    cfg['model']['data_preprocessor'] = pre
    cfg['model']['test_cfg'] = dict(mode='whole')
    image = sorted(glob.glob(osp.join(
        root, 'leftImg8bit/train/*/*.png' if not zero else
        'images/training/*.jpg')))[0]
    return _loader(dataset), (SEG_SIZE, SEG_SIZE), image


def _num_keypoints(model: dict) -> Optional[int]:
    head = model.get('head') or {}
    for key in ('num_keypoints', 'out_channels'):
        if isinstance(head.get(key), int):
            return head[key]
    return None


def _pose_data(cfg, roots) -> Tuple[dict, tuple, str]:
    stock = cfg['train_dataloader']['dataset']
    while 'pipeline' not in stock and 'datasets' in stock:
        stock = stock['datasets'][0]
    stages = [t for t in stock.get('pipeline', cfg.get('train_pipeline', []))
              if not _RANDOM_TRANSFORMS.search(str(t.get('type', '')))]
    if cfg['model']['type'] == 'BottomupPoseEstimator' and not any(
            'Bottomup' in str(t.get('type')) for t in stages):
        # The bottom-up affine is also the resize to the input size.
        aff = next(t for t in stock['pipeline']
                   if 'BottomupRandomAffine' in str(t.get('type')))
        stages.insert(1, aff)
    size = _find(stages, 'input_size') or _find(cfg.get('codec'),
                                                 'input_size')
    root = roots['coco']
    mode = 'bottomup' if cfg['model']['type'] == 'BottomupPoseEstimator' \
        else 'topdown'
    dataset = dict(type='CocoDataset', data_root=root, data_mode=mode,
                   ann_file='annotations/person_keypoints_train2017.json',
                   data_prefix=dict(img='train2017/'), pipeline=stages)
    image = sorted(glob.glob(osp.join(root, 'train2017', '*.jpg')))[0]
    w, h = size if size else (192, 256)
    return _loader(dataset), (h, w), image


def _cls_data(cfg, roots) -> Tuple[dict, tuple, str]:
    root = roots['imagenet']
    dataset = dict(type='CustomDataset', data_root=root,
                   ann_file='meta/train.txt', data_prefix='train',
                   with_label=True,
                   pipeline=[dict(type='LoadImageFromFile'),
                             dict(type='Resize', scale=(CLS_SIZE, CLS_SIZE)),
                             dict(type='PackInputs')])
    image = sorted(glob.glob(osp.join(root, 'train', '*', '*.JPEG')))[0]
    return _loader(dataset), (CLS_SIZE, CLS_SIZE), image


def hrnet_widths(backbone: dict, codebase: str
                 ) -> Optional[Tuple[Sequence[int], tuple]]:
    """(out_channels, out_indices) that make SuperTicketHRNet return what
    a stock ``HRNet`` backbone config returns, or None for other
    backbones."""
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
    has no HRNet backbone."""
    found = hrnet_widths(model.get('backbone') or {}, codebase)
    if found is None:
        return False
    widths, indices = found
    model['backbone'] = dict(type='SuperTicketHRNet',
                             out_channels=list(widths),
                             out_indices=list(indices))
    return True


def training_config(codebase: str, config: str, variant: str, work_dir: str,
                    roots: Dict[str, str]):
    """The stock config as the matrix runs it, with the input shape and
    the inference image: ``(cfg, shape, image)`` or a skip reason str."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(config_root(codebase), config)).to_dict()
    model = cfg['model']
    _drop_weights(model)
    kind = model.get('type', '')
    if codebase == 'mmseg':
        if 'Depth' in kind:
            return 'depth estimation: no generated depth data'
        loader, shape, image = _seg_data(cfg, config, roots)
    elif codebase == 'mmpose':
        if kind not in ('TopdownPoseEstimator', 'BottomupPoseEstimator'):
            return f'{kind}: not a top-down/bottom-up pose estimator'
        k = _num_keypoints(model)
        if k not in (None, 17):
            return f'{k} keypoints: only COCO\'s 17 are generated'
        loader, shape, image = _pose_data(cfg, roots)
    else:
        if kind != 'ImageClassifier':
            return (f'{kind}: not an image classifier (self-supervised or '
                    f'multimodal model)')
        loader, shape, image = _cls_data(cfg, roots)
        pre = model.get('data_preprocessor') or cfg.get(
            'data_preprocessor') or {}
        model['data_preprocessor'] = {
            k: v for k, v in pre.items() if k != 'batch_augments'}
    hooks = [dict(type='ProgressivePruningHook', target_sparsity=0.5,
                  prune_interval=1, step=0.25, by_epoch=False)]
    if variant == 'b':
        if not swap_hrnet(model, codebase):
            return 'no HRNet backbone'
        hooks = [dict(type='SuperNetSearchHook', warmup=0, min_macs=0,
                      shrink_interval=1, input_shape=list(shape),
                      by_epoch=False)] + hooks + [
                          dict(type='IterativeReactivationHook')]
    imports = (cfg.get('custom_imports') or {}).get('imports', [])
    imports = [imports] if isinstance(imports, str) else list(imports)
    optim = cfg.get('optim_wrapper') or dict(
        type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01))
    if optim.get('type') == 'AmpOptimWrapper':
        optim = {k: v for k, v in optim.items()
                 if k not in ('loss_scale', 'dtype')}
        optim['type'] = 'OptimWrapper'
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
        param_scheduler=None, optim_wrapper=optim,
        default_hooks=default_hooks,
        custom_hooks=[h for h in cfg.get('custom_hooks') or []
                      if 'PipelineSwitch' not in str(h.get('type'))] + hooks,
        log_level='WARNING', randomness=dict(seed=0),
        auto_scale_lr=dict(enable=False, base_batch_size=2))
    # No validation; the stock test pipeline stays, the inference APIs
    # read it (mmseg's at the small input).
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
    # A visualizer of its own per run (mmengine keeps one per name).
    cfg['visualizer'] = dict(cfg.get('visualizer') or dict(
        type='Visualizer'), name=f'dropin_{time.time_ns()}',
        vis_backends=[dict(type='LocalVisBackend')])
    cfg.get('env_cfg', {}).update(cudnn_benchmark=False,
                                  mp_cfg=dict(mp_start_method='fork'))
    return Config(cfg), shape, image


# ------------------------------------------------------------------- run


def _first_line(e: BaseException) -> str:
    text = f'{type(e).__name__}: {e}'.strip().splitlines()
    return text[0][:300] if text else type(e).__name__


def _infer(codebase: str, model_kind: str, config: str, ckpt: str,
           image: str):
    """Reload the ticket and run one image through the stock API."""
    if codebase == 'mmseg':
        from mmseg.apis import inference_model, init_model
        model = init_model(config, ckpt, device='cpu')
        out = inference_model(model, image)
        return tuple(out.pred_sem_seg.data.shape)
    if codebase == 'mmpose':
        from mmpose.apis import (
            inference_bottomup,
            inference_topdown,
            init_model,
        )
        model = init_model(config, ckpt, device='cpu')
        if model_kind == 'BottomupPoseEstimator':
            out = inference_bottomup(model, image)
        else:
            out = inference_topdown(model, image)
        return tuple(out[0].pred_instances.keypoints.shape)
    from mmpretrain.apis import ImageClassificationInferencer
    inferencer = ImageClassificationInferencer(config, pretrained=ckpt,
                                               device='cpu')
    out = inferencer(image)[0]
    return (len(out['pred_scores']), )


def run_config(codebase: str, config: str, variant: str, work_root: str,
               roots: Optional[Dict[str, str]] = None) -> dict:
    """One cell of the matrix, in this process; the result of a config
    whose run is identical to one already done in ``work_root`` is reused
    (``same_as`` names it)."""
    row = _run_config(codebase, config, variant, work_root, roots)
    key = row.pop('_key', None)
    if key and 'same_as' not in row and row['result'] != 'fail':
        os.makedirs(osp.join(work_root, 'cells'), exist_ok=True)
        with open(osp.join(work_root, 'cells', key + '.json'), 'w') as f:
            json.dump(row, f)
    return row


def _run_config(codebase: str, config: str, variant: str, work_root: str,
                roots: Optional[Dict[str, str]] = None) -> dict:
    """One cell of the matrix, in this process.

    Returns:
        dict: ``codebase``, ``config``, ``variant``, ``result`` (``pass``,
        ``fail`` or ``skip``), ``error`` (first line, or the skip reason),
        ``stage`` (where it stopped), ``seconds`` and on success
        ``sparsity``, ``macs`` and ``ticket_macs``.
    """
    import torch
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import Runner

    import mmsupertickets  # noqa: F401
    from mmsupertickets.apis.export import export_ticket

    _register_transforms()
    start = time.time()
    row = dict(codebase=codebase, config=config, variant=variant)
    name = re.sub(r'[^\w.-]', '_', config) + '_' + variant
    work_dir = osp.join(work_root, name)
    shutil.rmtree(work_dir, ignore_errors=True)
    roots = roots or generate_data(osp.join(work_root, 'data'))
    stage = 'config'
    try:
        importlib.import_module(f'{codebase}.utils').register_all_modules(
            init_default_scope=False)
        made = training_config(codebase, config, variant, work_dir, roots)
        if isinstance(made, str):
            return dict(row, result='skip', error=made, stage=stage,
                        seconds=0.0)
        cfg, shape, image = made
        # Configs that differ only in what a matrix run replaces (schedule,
        # dataset paths, batch size) run the same cell: reuse its result.
        key = hashlib.sha1(json.dumps(
            [codebase, variant, cfg.model, cfg.optim_wrapper,
             cfg.custom_hooks, cfg.train_dataloader.dataset.type, shape],
            sort_keys=True, default=str).encode()).hexdigest()[:16]
        same = osp.join(work_root, 'cells', key + '.json')
        if osp.exists(same):
            with open(same) as f:
                first = json.load(f)
            return dict(first, **row, same_as=first['config'],
                        seconds=round(time.time() - start, 1))
        stage = 'build'
        row['_key'] = key
        init_default_scope(cfg.get('default_scope', codebase))
        for mod in cfg['custom_imports']['imports']:
            importlib.import_module(mod)
        try:
            stock = copy.deepcopy(cfg.model)
            if variant == 'b':
                # Whether the stock model builds decides skip vs fail.
                stock = training_config(codebase, config, 'a', work_dir,
                                        roots)[0].model
            model = MODELS.build(stock)
        except Exception as e:  # noqa: BLE001 - the model does not build
            return dict(row, result='skip', stage=stage, seconds=round(
                time.time() - start, 1), error='stock model does not build '
                'on CPU: ' + _first_line(e))
        params = sum(p.numel() for p in model.parameters())
        del model
        if params > MAX_PARAMS:
            return dict(row, result='skip', stage=stage, seconds=0.0,
                        error=f'{params / 1e6:.0f}M parameters (more than '
                        f'{MAX_PARAMS / 1e6:.0f}M, too large for the CPU '
                        'matrix)')
        times = dict(build=time.time() - start)
        stage = 'train'
        torch.manual_seed(0)
        runner = Runner.from_cfg(cfg)
        runner.train()
        del runner
        times['train'] = time.time() - start - sum(times.values())
        stage = 'export'
        cfg_file = osp.join(work_dir, 'train_cfg.py')
        cfg.dump(cfg_file)
        out = osp.join(work_dir, 'ticket')
        summary = export_ticket(cfg_file, osp.join(work_dir, 'iter_2.pth'),
                                out, shape=shape)
        sparsity = summary['ticket']['sparsity']
        if abs(sparsity - 0.5) > 0.01:
            raise AssertionError(f'ticket sparsity {sparsity:.3f}, the '
                                 'hook\'s target is 0.5')
        times['export'] = time.time() - start - sum(times.values())
        stage = 'inference'
        got = _infer(codebase, cfg.model['type'],
                     osp.join(out, 'config.py'), osp.join(out, 'ticket.pth'),
                     image)
        return dict(row, result='pass', error='', stage='done',
                    seconds=round(time.time() - start, 1),
                    sparsity=round(sparsity, 4), output=list(got),
                    stage_seconds={k: round(v, 1) for k, v in times.items()},
                    macs=summary['subnet']['macs'],
                    ticket_macs=summary['ticket']['macs'])
    except Exception as e:  # noqa: BLE001 - the cell's result
        return dict(row, result='fail', stage=stage, error=_first_line(e),
                    seconds=round(time.time() - start, 1),
                    trace=traceback.format_exc()[-3000:])
    finally:
        # Checkpoints of large models add up over a matrix.
        shutil.rmtree(work_dir, ignore_errors=True)


def cells(filter_regex: Optional[str] = None,
          codebases: Sequence[str] = CODEBASES) -> List[tuple]:
    """(codebase, config, variant) of every matrix cell; variant ``b`` only
    where the stock backbone is HRNet (decided from the config text)."""
    pattern = re.compile(filter_regex) if filter_regex else None
    per_codebase = []
    for codebase in codebases:
        found = []
        for config in list_configs(codebase):
            key = f'{codebase}/{config}'
            if pattern and not pattern.search(key):
                continue
            found.append((codebase, config, 'a'))
            if re.search(r'hrnet|hr\d\d|_hr_|ocrnet', config, re.I):
                found.append((codebase, config, 'b'))
        per_codebase.append(found)
    # Round robin over the codebases: a partial run covers all of them.
    return [c for group in itertools.zip_longest(*per_codebase)
            for c in group if c is not None]


def _run_in_process(cell, work_root: str, timeout: float) -> dict:
    codebase, config, variant = cell
    cmd = [sys.executable, '-m', 'mmsupertickets.testing.dropin', codebase,
           config, variant, work_root]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get(
        'OMP_NUM_THREADS', '1'))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return dict(codebase=codebase, config=config, variant=variant,
                    result='fail', stage='timeout', seconds=timeout,
                    error=f'no result within {timeout:.0f} s')
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith('DROPIN_RESULT '):
            return json.loads(line[len('DROPIN_RESULT '):])
    tail = (proc.stderr.strip().splitlines() or ['(no output)'])[-1]
    return dict(codebase=codebase, config=config, variant=variant,
                result='fail', stage='crash', seconds=0.0,
                error=f'process exited {proc.returncode}: {tail[:300]}')


def _save(path: str, results: Dict[str, dict]) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(dict(results=sorted(results.values(), key=lambda r: (
            r['codebase'], r['config'], r['variant']))), f, indent=1)
    os.replace(tmp, path)


def _key(row) -> str:
    return f'{row["codebase"]}/{row["config"]}#{row["variant"]}'


def load_results(path: Optional[str]) -> Dict[str, dict]:
    if not path or not osp.exists(path):
        return {}
    with open(path) as f:
        return {_key(r): r for r in json.load(f)['results']}


def run_matrix(filter_regex: Optional[str] = None, jobs: int = 1,
               out: Optional[str] = None, work_root: Optional[str] = None,
               timeout: float = TIMEOUT, in_process: bool = False,
               codebases: Sequence[str] = CODEBASES,
               progress=print, retry_failed: bool = False) -> List[dict]:
    """Run the matrix cells (each in its own process unless
    ``in_process``), skipping those already in ``out`` (failed ones too
    unless ``retry_failed``); ``out`` is rewritten after every cell, so an
    interrupted run resumes."""
    from concurrent.futures import ThreadPoolExecutor
    results = load_results(out)
    if retry_failed:
        results = {k: r for k, r in results.items() if r['result'] != 'fail'}
    todo = [c for c in cells(filter_regex, codebases)
            if f'{c[0]}/{c[1]}#{c[2]}' not in results]
    work_root = work_root or tempfile.mkdtemp(prefix='dropin_')
    roots = generate_data(osp.join(work_root, 'data'))
    done = []

    def one(cell):
        row = (run_config(*cell, work_root, roots) if in_process else
               _run_in_process(cell, work_root, timeout))
        results[_key(row)] = row
        done.append(row)
        if out:
            _save(out, results)
        progress(f'[{len(done)}/{len(todo)}] {row["result"]:4} '
                 f'{row["codebase"]}/{row["config"]} ({row["variant"]}) '
                 f'{row["seconds"]:.0f}s {row["error"][:120]}')
        return row

    if jobs <= 1 or in_process:
        rows = [one(c) for c in todo]
    else:
        with ThreadPoolExecutor(jobs) as pool:
            rows = list(pool.map(one, todo))
    selected = cells(filter_regex, codebases)
    keys = {f'{c[0]}/{c[1]}#{c[2]}' for c in selected}
    return [r for k, r in results.items() if k in keys] or rows


def summarize(rows: Sequence[dict]) -> Dict[str, dict]:
    """Counts per codebase and variant: pass, fail, skip and the pass
    share of the buildable (non-skipped) configs."""
    table = {}
    for r in rows:
        if r['error'] == 'no HRNet backbone':
            continue
        t = table.setdefault(f'{r["codebase"]} ({r["variant"]})',
                             dict(passed=0, failed=0, skipped=0))
        t[dict(pass_='passed', fail='failed', skip='skipped')[
            r['result'] + ('_' if r['result'] == 'pass' else '')]] += 1
    for t in table.values():
        run = t['passed'] + t['failed']
        t['pass_share'] = round(t['passed'] / run, 4) if run else None
    return table


def format_table(rows: Sequence[dict]) -> str:
    """The matrix as text: one line per cell, then the counts."""
    lines = [f'{"config":70} {"v":1} {"result":6} first error line']
    for r in sorted(rows, key=lambda r: (r['codebase'], r['config'],
                                         r['variant'])):
        lines.append(f'{r["codebase"] + "/" + r["config"]:70} '
                     f'{r["variant"]:1} {r["result"]:6} {r["error"][:150]}')
    lines.append('')
    for key, t in summarize(rows).items():
        share = ('-' if t['pass_share'] is None else
                 f'{100 * t["pass_share"]:.1f} %')
        lines.append(f'{key:20} pass {t["passed"]:4}  fail {t["failed"]:4}'
                     f'  skip {t["skipped"]:4}  pass share of buildable '
                     f'{share}')
    return '\n'.join(lines)


def _main(argv) -> None:
    codebase, config, variant, work_root = argv
    roots = generate_data(osp.join(work_root, 'data'))
    row = run_config(codebase, config, variant, work_root, roots)
    print('DROPIN_RESULT ' + json.dumps(row), flush=True)


if __name__ == '__main__':
    _main(sys.argv[1:])
