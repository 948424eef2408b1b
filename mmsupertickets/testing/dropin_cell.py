"""One cell of the drop-in matrix (:mod:`mmsupertickets.testing.dropin`):
a stock config trained, its ticket exported and run through the stock
inference API, in this process or in a process of its own."""
import copy
import hashlib
import importlib
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import time
import traceback
from typing import Dict, Optional, Union

from .dropin_config import training_config
from .dropin_data import (
    config_image_size,
    generate_data,
    register_fold_labels,
)

MAX_PARAMS = 150e6
# Marks the line of a cell's process that carries its result.
_RESULT = 'DROPIN_RESULT '
# The hooks a cell adds; the stock baseline runs without them.
PLUGIN_HOOKS = ('ProgressivePruningHook', 'SuperNetSearchHook',
                'IterativeReactivationHook')
# How the cell and the stock run name non-finite numbers.
_NON_FINITE = re.compile(r'DivergenceError|differs from the ticket by nan|'
                         r'not finite \(NaN or inf\)')

__all__ = ['run_config', 'run_in_process', 'main', 'stock_baseline',
           'same_failure', 'MAX_PARAMS', 'PLUGIN_HOOKS']


def run_config(codebase: str, config: str, variant: str, work_root: str,
               roots: Optional[Dict[str, str]] = None) -> dict:
    """One cell of the matrix, in this process; the result of a config
    whose run is identical to one already done in ``work_root`` is reused
    (``same_as`` names it).

    Example:
        >>> run_config('mmpretrain', 'resnet/resnet18_8xb32_in1k.py',
        ...            'a', '/tmp/dropin')['result']  # doctest: +SKIP
        'pass'
    """
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
    from mmengine.runner import Runner

    import mmsupertickets  # noqa: F401

    register_fold_labels()
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
        key = _cell_key(codebase, variant, cfg, shape)
        same = osp.join(work_root, 'cells', key + '.json')
        if osp.exists(same):
            return _reused(same, row, start)
        stage = 'build'
        row['_key'] = key
        skip = _stock_model_skip(codebase, config, variant, work_dir, roots,
                                 cfg, shape, start)
        if skip == 'refit':
            # The stock model does not run at the small input: the config's
            # own image size, the same for every config of that model.
            size = config_image_size(_stock_config(codebase, config))
            cfg, shape, image = training_config(
                codebase, config, variant, work_dir, roots, size=size)
            row['input_size'] = size
            key = row['_key'] = _cell_key(codebase, variant, cfg, shape)
            same = osp.join(work_root, 'cells', key + '.json')
            if osp.exists(same):
                return _reused(same, row, start)
        elif skip is not None:
            return dict(row, result='skip', stage=stage, **skip)
        times = dict(build=time.time() - start)
        stage = 'train'
        torch.manual_seed(0)
        Runner.from_cfg(cfg).train()
        times['train'] = time.time() - start - sum(times.values())
        stage = 'export'
        summary, ticket_dir = _export(cfg, work_dir, shape)
        times['export'] = time.time() - start - sum(times.values())
        stage = 'inference'
        got = _infer(codebase, cfg.model['type'],
                     osp.join(ticket_dir, 'config.py'),
                     osp.join(ticket_dir, 'ticket.pth'), image)
        return dict(row, result='pass', error='', stage='done',
                    seconds=round(time.time() - start, 1),
                    sparsity=round(summary['ticket']['sparsity'], 4),
                    output=list(got),
                    stage_seconds={k: round(v, 1) for k, v in times.items()},
                    macs=summary['subnet']['macs'],
                    ticket_macs=summary['ticket']['macs'])
    except Exception as e:  # noqa: BLE001 - the cell's result
        failed = dict(row, result='fail', stage=stage, error=_first_line(e),
                      trace=traceback.format_exc()[-3000:])
    finally:
        # Checkpoints of large models add up over a matrix.
        shutil.rmtree(work_dir, ignore_errors=True)
    if stage in ('train', 'export'):
        stock = stock_baseline(codebase, config, work_root, roots,
                               row.get('input_size'))
        if same_failure(failed['error'], stock):
            failed.update(result='skip', plugin_error=failed['error'],
                          error='fails without the plugin too: ' + stock)
    return dict(failed, seconds=round(time.time() - start, 1))


def stock_baseline(codebase: str, config: str, work_root: str,
                   roots: Dict[str, str],
                   size: Optional[int] = None) -> Optional[str]:
    """The first error line of the cell's run without the plugin, or None.

    The baseline is the variant-a config of the cell (at the cell's
    ``size``) minus the plugin's hooks (for variant b also minus
    ``SuperTicketHRNet``: the stock backbone), trained the same 2
    iterations; then, as a cell checks them, its weights and its eval-mode
    outputs on the export check's seeded image must be finite.

    Example:
        >>> stock_baseline(  # doctest: +SKIP
        ...     'mmseg', 'cgnet/cgnet_fcn_4xb4-60k_cityscapes-680x680.py',
        ...     '/tmp/dropin', roots)
        'IndexError: index 255 is out of bounds for dimension 0 with size 19'
    """
    import torch
    from mmengine.runner import Runner

    from mmsupertickets.apis.export.onnx_check import as_tuple
    from mmsupertickets.engine.finite_checks import check_finite_modules
    from mmsupertickets.flops import ModelForward
    work_dir = osp.join(work_root, 'stock_' + re.sub(r'[^\w.-]', '_', config))
    shutil.rmtree(work_dir, ignore_errors=True)
    try:
        cfg, shape, _ = training_config(codebase, config, 'a', work_dir,
                                        roots, size=size)
        cfg.custom_hooks = [h for h in cfg.custom_hooks
                            if h['type'] not in PLUGIN_HOOKS]
        torch.manual_seed(0)
        runner = Runner.from_cfg(cfg)
        runner.train()
        model = runner.model
        check_finite_modules({'': model}, 2, 'the end of the stock run')
        model.eval()
        x = torch.randn(1, 3, *shape,
                        generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            out = as_tuple(ModelForward(model)(x))
        if not all(bool(torch.isfinite(o).all()) for o in out):
            raise RuntimeError('the stock model\'s eval-mode outputs are '
                               'not finite (NaN or inf)')
    except Exception as e:  # noqa: BLE001 - the baseline's result
        return _first_line(e)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return None


def same_failure(cell_error: str, stock_error: Optional[str]) -> bool:
    """Whether the stock run failed the way the cell did: the same first
    error line, or non-finite numbers in both (the plugin's divergence
    check and export comparison name them, the stock run does not).

    Example:
        >>> same_failure('DivergenceError: training diverged at iteration '
        ...              '2: ...', 'DivergenceError: training diverged at '
        ...              'iteration 2: ...')
        True
        >>> same_failure('KeyError: x', None)
        False
    """
    if stock_error is None:
        return False
    return cell_error == stock_error or (
        _NON_FINITE.search(cell_error) is not None
        and _NON_FINITE.search(stock_error) is not None)


def _cell_key(codebase: str, variant: str, cfg, shape) -> str:
    # Configs that differ only in what a matrix run replaces (schedule,
    # dataset paths, batch size) run the same cell: reuse its result.
    return hashlib.sha1(json.dumps(
        [codebase, variant, cfg.model, cfg.optim_wrapper,
         cfg.custom_hooks, cfg.train_dataloader.dataset.type, shape],
        sort_keys=True, default=str).encode()).hexdigest()[:16]


def _reused(path: str, row: dict, start: float) -> dict:
    with open(path) as f:
        first = json.load(f)
    return dict(first, **row, same_as=first['config'],
                seconds=round(time.time() - start, 1))


def _stock_model_skip(codebase: str, config: str, variant: str,
                      work_dir: str, roots: Dict[str, str], cfg, shape,
                      start: float) -> Union[dict, str, None]:
    """``seconds`` and ``error`` of a cell whose stock model does not build
    on CPU, is too large or has nothing to prune; ``'refit'`` if it does not
    run at the cell's input size; else None."""
    from mmengine.registry import MODELS, init_default_scope
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
        return dict(seconds=round(time.time() - start, 1),
                    error='stock model does not build on CPU: ' +
                    _first_line(e))
    params = sum(p.numel() for p in model.parameters())
    if params > MAX_PARAMS:
        return dict(seconds=0.0,
                    error=f'{params / 1e6:.0f}M parameters (more than '
                    f'{MAX_PARAMS / 1e6:.0f}M, too large for the CPU '
                    'matrix)')
    if variant == 'a' and not _prunable(model):
        return dict(seconds=round(time.time() - start, 1), error=(
            'nothing to prune: every trainable conv/linear is in the '
            'default exclude (frozen backbone, only the excluded head '
            'trains); ProgressivePruningHook refuses such a model, as '
            'documented'))
    if codebase == 'mmpretrain' and not _runs_at(model, shape):
        return 'refit'
    return None


def _prunable(model) -> bool:
    """Whether the hook would find weights to prune (its own rule)."""
    from mmsupertickets.pruning.prunable import (
        DEFAULT_EXCLUDE,
        prunable_weights,
    )
    model.train()  # stock backbones freeze their stages in train()
    return bool(prunable_weights(model, DEFAULT_EXCLUDE,
                                 trainable_only=True))


def _runs_at(model, shape) -> bool:
    """Whether the stock model's forward runs on an image of ``shape``
    (one fixed to its image size, e.g. by a position bias or an attention
    window, does not)."""
    import torch
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, *shape), mode='tensor')
    except Exception:  # noqa: BLE001 - any failure: not at this size
        return False
    return True


def _stock_config(codebase: str, config: str) -> dict:
    from mmengine.config import Config

    from .dropin_config import config_root
    return Config.fromfile(osp.join(config_root(codebase),
                                    config)).to_dict()


def _export(cfg, work_dir: str, shape) -> tuple:
    """Export the trained ticket: the export summary and its folder."""
    from mmsupertickets.apis.export import export_ticket
    cfg_file = osp.join(work_dir, 'train_cfg.py')
    cfg.dump(cfg_file)
    out = osp.join(work_dir, 'ticket')
    summary = export_ticket(cfg_file, osp.join(work_dir, 'iter_2.pth'),
                            out, shape=shape)
    sparsity = summary['ticket']['sparsity']
    if abs(sparsity - 0.5) > 0.01:
        raise AssertionError(f'ticket sparsity {sparsity:.3f}, the '
                             'hook\'s target is 0.5')
    return summary, out


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


def run_in_process(cell: tuple, work_root: str, timeout: float) -> dict:
    """:func:`run_config` of ``cell`` = (codebase, config, variant) in a
    process of its own (``python -m mmsupertickets.testing.dropin``): a
    crash or a timeout is the cell's failure, not the matrix's.

    Example:
        >>> run_in_process(('mmpretrain', 'resnet/resnet18_8xb32_in1k.py',
        ...                 'a'), '/tmp/dropin', 1200)  # doctest: +SKIP
    """
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
        if line.startswith(_RESULT):
            return json.loads(line[len(_RESULT):])
    tail = (proc.stderr.strip().splitlines() or ['(no output)'])[-1]
    return dict(codebase=codebase, config=config, variant=variant,
                result='fail', stage='crash', seconds=0.0,
                error=f'process exited {proc.returncode}: {tail[:300]}')


def main(argv) -> None:
    """The process :func:`run_in_process` starts: ``argv`` = codebase,
    config, variant, work root; prints the cell's result line.

    Example:
        >>> main(['mmpretrain', 'resnet/resnet18_8xb32_in1k.py', 'a',
        ...       '/tmp/dropin'])  # doctest: +SKIP
        DROPIN_RESULT {"codebase": "mmpretrain", ...}
    """
    codebase, config, variant, work_root = argv
    roots = generate_data(osp.join(work_root, 'data'))
    row = run_config(codebase, config, variant, work_root, roots)
    # On a line of its own: a progress bar may have left the last one open.
    print('\n' + _RESULT + json.dumps(row), flush=True)
