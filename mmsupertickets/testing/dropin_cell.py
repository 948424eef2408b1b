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
from typing import Dict, Optional

from .dropin_config import training_config
from .dropin_data import generate_data, register_fold_labels

MAX_PARAMS = 150e6
# Marks the line of a cell's process that carries its result.
_RESULT = 'DROPIN_RESULT '

__all__ = ['run_config', 'run_in_process', 'main', 'MAX_PARAMS']


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
                                 cfg, start)
        if skip is not None:
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
        return dict(row, result='fail', stage=stage, error=_first_line(e),
                    seconds=round(time.time() - start, 1),
                    trace=traceback.format_exc()[-3000:])
    finally:
        # Checkpoints of large models add up over a matrix.
        shutil.rmtree(work_dir, ignore_errors=True)


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
                      work_dir: str, roots: Dict[str, str], cfg,
                      start: float) -> Optional[dict]:
    """``seconds`` and ``error`` of a cell whose stock model does not build
    on CPU or is too large, else None."""
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
    del model
    if params > MAX_PARAMS:
        return dict(seconds=0.0,
                    error=f'{params / 1e6:.0f}M parameters (more than '
                    f'{MAX_PARAMS / 1e6:.0f}M, too large for the CPU '
                    'matrix)')
    return None


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
