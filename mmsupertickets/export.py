"""Export a SuperTicket from a training checkpoint into deployable files.

A training checkpoint of a SuperTickets run holds the (shrunk) weights, the
searched architecture and the pruning masks in
``checkpoint['meta']['supertickets']``. :func:`export_ticket` turns it into
a folder that needs none of the search machinery:

- ``arch.json``: the model-level architecture ``{unit name: channels}``;
- ``ticket.pth``: a plain ``state_dict`` (tensors only) of the physically
  shrunk subnet with the masks baked in (pruned weights are 0);
- ``ticket_sparse.pth``: the same weights in a sparse storage form (kept
  values and their flat int32 indices for every masked weight), read back
  by :func:`load_sparse_state_dict`;
- ``config.py``: a stock mmseg/mmpose/mmpretrain config that builds the
  shrunk model (each searchable module gets its part of ``arch.json``),
  without the SuperTickets hooks, with ``load_from`` at ``ticket.pth``;
- ``ticket.onnx`` (optional): the tensor forward of the shrunk model;
- ``summary.json``: params and MACs of the supernet, the shrunk subnet and
  the sparse ticket, sparsity, file sizes.

Two artefacts must not be confused: the shrunk channels make the model
faster on every runtime; the unstructured zeros make it smaller only when
stored sparsely and faster only on a runtime with sparse kernels.

Which weights are exported when the run kept an EMA: mmengine's
``EMAHook`` swaps the averaged weights into ``checkpoint['state_dict']``
when it saves (and the live ones into ``checkpoint['ema_state_dict']``), so
by default (``weights='saved'``) the EMA weights are exported, the ones the
run validated with; ``weights='live'`` exports the raw training weights.

Example:
    >>> from mmsupertickets.export import export_ticket
    >>> summary = export_ticket('configs/xxx.py', 'work_dirs/xxx/iter_8.pth',
    ...                         'tickets/xxx', onnx=True)
    >>> # later, anywhere: tools/test.py tickets/xxx/config.py \\
    >>> #     tickets/xxx/ticket.pth
"""
import copy
import inspect
import json
import os
import os.path as osp
import shutil
import tempfile
import warnings
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.config import Config

from .engine.ticket_meta import META_KEY, TICKET_HOOK_TYPES, is_ticket_hook
from .flops import ModelForward as _Forward
from .flops import complexity, format_count
from .structures.arch import apply_arch, check_arch_fits, prefixed_arch
from .structures.masks import WeightMasks
from .utils.atomic_write import save_checkpoint_atomically
from .utils.checkpoint_io import load_checkpoint_file

__all__ = [
    'export_ticket', 'build_model', 'ticket_config', 'arch_owners',
    'select_weights', 'sparse_state_dict', 'dense_state_dict',
    'load_sparse_state_dict', 'export_onnx', 'format_summary',
    'SEARCH_HOOK_TYPES'
]

SPARSE_FORMAT = 'mmsupertickets.sparse_state_dict'
# An exported ticket is a plain model: the ticket hooks leave its config.
SEARCH_HOOK_TYPES = TICKET_HOOK_TYPES
ONNX_OPSET = 17
ONNX_EXPORTER = ('torch.onnx.export(dynamo=False): the TorchScript-based '
                 'exporter (the dynamo exporter needs the onnxscript '
                 'package, which is not a dependency)')
COUNTING = ('params: weights and biases of every Conv2d and Linear; MACs: '
            'Conv2d and Linear only (BN, activations, additions, pooling and '
            'resizes count 0), one image, through backbone, neck and main '
            'head')
SPEEDUP_NOTE = (
    'Real speedup: the shrunk channels (config.py + ticket.pth, ticket.onnx) '
    'cut MACs on every runtime; the unstructured zeros only shrink storage '
    'in ticket_sparse.pth and only run faster on a runtime with sparse '
    'kernels: dense runtimes (PyTorch, onnxruntime) multiply the zeros.')
_WEIGHT_NOTES = dict(
    ema='EMA-averaged weights (EMAHook saved them as the state_dict)',
    model='trained weights (the run kept no EMA)',
    live='live training weights of an EMAHook run (not the EMA)')
FILES = ('arch.json', 'ticket.pth', 'ticket_sparse.pth', 'config.py',
         'ticket.onnx', 'summary.json')


# -- config and model --------------------------------------------------------
def _load_config(config: Union[str, Config, dict]) -> Config:
    if isinstance(config, Config):
        return copy.deepcopy(config)
    if isinstance(config, dict):
        return Config(copy.deepcopy(config))
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file {config!r} does not exist')
    return Config.fromfile(config)


def build_model(cfg: Config) -> nn.Module:
    """Build ``cfg.model`` through the registries of the config's scope.

    Weights are not initialised: they are loaded from a checkpoint next.

    Example:
        >>> model = build_model(Config.fromfile('ticket/config.py'))
    """
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.utils import import_modules_from_strings
    if cfg.get('custom_imports'):
        # A Config built from a dict has not imported them yet.
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    return MODELS.build(cfg.model)


def arch_owners(model: nn.Module,
                arch: Dict[str, int]) -> Dict[str, Dict[str, int]]:
    """Split a model-level architecture by the top-level child owning it.

    Args:
        model: The model built from the training config.
        arch: ``{unit name: channels}`` over the whole model.

    Returns:
        ``{child name: arch with names local to that child}``, e.g.
        ``{'backbone': {...}, 'decode_head': {'block.paths.k3': 32}}``.

    Raises:
        ValueError: a unit outside every child, or a child holding units
            whose class takes no ``arch`` argument.

    Example:
        >>> arch_owners(model, {'backbone.stage0.fuse.blocks.out0_in0.'
        ...                     'paths.k3': 8})
        {'backbone': {'stage0.fuse.blocks.out0_in0.paths.k3': 8}}
    """
    owners = {}
    for name, child in model.named_children():
        local = prefixed_arch(arch, name)
        if not local:
            continue
        if 'arch' not in inspect.signature(type(child).__init__).parameters:
            raise ValueError(
                f'model.{name} ({type(child).__name__}) holds searchable '
                'units but takes no arch= argument, so a config cannot '
                'build it at the searched sizes')
        owners[name] = local
    owned = {f'{n}.{k}' for n, local in owners.items() for k in local}
    stray = sorted(set(arch) - owned)
    if stray:
        raise ValueError(f'{len(stray)} units of the architecture belong to '
                         f'no child module of the model (e.g. {stray[:3]})')
    return owners


def ticket_config(cfg: Config, owners: Dict[str, Dict[str, int]],
                  load_from: str) -> Config:
    """The training config turned into the config of the exported ticket.

    The SuperTickets hooks leave ``custom_hooks`` (other custom hooks stay),
    each module in ``owners`` gets ``arch=`` with its part of the
    architecture, and ``load_from`` points at the ticket's weights.

    Args:
        cfg: The training config (not modified).
        owners: ``{child of cfg.model: local arch}`` from
            :func:`arch_owners`.
        load_from: Value of ``load_from``.

    Returns:
        Config: The ticket's config.

    Example:
        >>> cfg = ticket_config(train_cfg, arch_owners(model, arch),
        ...                     '{{ fileDirname }}/ticket.pth')
        >>> cfg.model.backbone.arch  # the backbone's searched widths
    """
    cfg = copy.deepcopy(cfg)
    for name, local in owners.items():
        module_cfg = cfg.model.get(name)
        if not isinstance(module_cfg, dict):
            raise ValueError(
                f'model.{name} holds searchable units but the config has no '
                f'dict for it (got {type(module_cfg).__name__}): cannot set '
                'its arch')
        module_cfg['arch'] = dict(sorted(local.items()))
        # The weights come from load_from; a supernet-sized Pretrained
        # init would only report size mismatches before being replaced.
        init_cfg = module_cfg.get('init_cfg')
        if isinstance(init_cfg, dict) and init_cfg.get('type') == \
                'Pretrained':
            module_cfg['init_cfg'] = None
    hooks = cfg.get('custom_hooks') or []
    cfg.custom_hooks = [h for h in hooks if not is_ticket_hook(h)]
    cfg.load_from = load_from
    cfg.resume = False
    return cfg


# -- weights -----------------------------------------------------------------
def select_weights(checkpoint: dict,
                   weights: str = 'saved') -> Tuple[Dict, str]:
    """The state_dict to export from a training checkpoint, and its origin.

    Args:
        checkpoint: A loaded mmengine checkpoint.
        weights: ``'saved'``: ``checkpoint['state_dict']``, which holds the
            EMA weights when the run used ``EMAHook`` (mmengine swaps them
            in when saving); ``'live'``: the raw training weights of an
            ``EMAHook`` run (from ``checkpoint['ema_state_dict']``).

    Returns:
        tuple: ``(state_dict, origin)`` with origin ``'ema'``, ``'model'``
        or ``'live'``.

    Example:
        >>> state, origin = select_weights(ckpt)  # origin 'ema' with EMA
    """
    if weights not in ('saved', 'live'):
        raise ValueError(f"weights={weights!r} must be 'saved' or 'live'")
    if not isinstance(checkpoint, dict):
        raise ValueError('the checkpoint is not a dict but a '
                         f'{type(checkpoint).__name__}')
    state = checkpoint.get('state_dict', checkpoint)
    ema = checkpoint.get('ema_state_dict')
    if weights == 'saved':
        return state, 'ema' if ema is not None else 'model'
    if ema is None:
        raise ValueError("weights='live' needs a checkpoint saved with "
                         'EMAHook (it has no ema_state_dict); its '
                         'state_dict already holds the live weights')
    live = {k[len('module.'):]: v for k, v in ema.items()
            if k.startswith('module.')}
    return OrderedDict((k, live.get(k, v)) for k, v in state.items()), 'live'


def _state_dict_difference(model: nn.Module, state: Dict) -> Optional[str]:
    """How ``state`` differs from ``model.state_dict()``, or None."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in own if k in state and torch.is_tensor(state[k])
                  and state[k].shape != own[k].shape]
    parts = []
    if missing:
        parts.append(f'{len(missing)} model tensors missing from it (e.g. '
                     f'{missing[:3]})')
    if unexpected:
        parts.append(f'{len(unexpected)} tensors the model does not have '
                     f'(e.g. {unexpected[:3]})')
    if mismatched:
        k = mismatched[0]
        parts.append(f'{len(mismatched)} shape mismatches (e.g. {k}: '
                     f'{tuple(state[k].shape)} in the checkpoint, '
                     f'{tuple(own[k].shape)} in the model)')
    return '; '.join(parts) or None


def _plain_state_dict(model: nn.Module) -> 'OrderedDict[str, torch.Tensor]':
    # Cloned so that no tensor drags a larger shared storage into the file.
    return OrderedDict((k, v.detach().cpu().clone().contiguous())
                       for k, v in model.state_dict().items())


# -- sparse storage ----------------------------------------------------------
def sparse_state_dict(state: Dict[str, torch.Tensor],
                      masks: Dict[str, torch.Tensor]) -> dict:
    """Sparse storage form of a state_dict whose masked weights are zero.

    Args:
        state: The dense state_dict (masks baked in).
        masks: ``{weight name: bool keep-mask}``.

    Returns:
        dict: ``format``, ``version``, ``order`` (the key order),
        ``dense`` (tensors without a mask) and ``sparse``
        (``{name: {'shape', 'indices' (flat, int32), 'values'}}``); only
        tensors, strings, ints and lists, so ``torch.load`` reads it with
        ``weights_only=True``.

    Example:
        >>> obj = sparse_state_dict(model.state_dict(), masks.state_dict())
        >>> torch.equal(dense_state_dict(obj)['w'], model.state_dict()['w'])
        True
    """
    unknown = sorted(set(masks) - set(state))
    if unknown:
        raise KeyError(f'masks for tensors not in the state_dict: '
                       f'{unknown[:3]}')
    dense, sparse = OrderedDict(), OrderedDict()
    for name, tensor in state.items():
        mask = masks.get(name)
        if mask is None:
            dense[name] = tensor
            continue
        if mask.shape != tensor.shape:
            raise ValueError(f'mask of {name} has shape {tuple(mask.shape)} '
                             f'but the tensor has {tuple(tensor.shape)}')
        if tensor.numel() > torch.iinfo(torch.int32).max:
            raise ValueError(f'{name} has {tensor.numel()} elements, too '
                             'many for int32 indices')
        flat_idx = mask.flatten().nonzero().flatten()
        sparse[name] = dict(
            shape=list(tensor.shape),
            indices=flat_idx.to(torch.int32),
            values=tensor.flatten()[flat_idx].clone())
    return dict(format=SPARSE_FORMAT, version=1, order=list(state),
                dense=dense, sparse=sparse)


def dense_state_dict(obj: dict) -> 'OrderedDict[str, torch.Tensor]':
    """The dense state_dict of a :func:`sparse_state_dict` object."""
    if not isinstance(obj, dict) or obj.get('format') != SPARSE_FORMAT:
        found = obj.get('format') if isinstance(obj, dict) else \
            type(obj).__name__
        raise ValueError(f'not a sparse state_dict of format '
                         f'{SPARSE_FORMAT!r} (found {found!r})')
    if obj.get('version') != 1:
        raise ValueError(f'sparse state_dict version {obj.get("version")!r} '
                         'is not supported (only 1)')
    out = OrderedDict()
    for name in obj['order']:
        if name in obj['dense']:
            out[name] = obj['dense'][name]
            continue
        entry = obj['sparse'][name]
        values = entry['values']
        flat = torch.zeros(int(torch.Size(entry['shape']).numel()),
                           dtype=values.dtype)
        flat[entry['indices'].long()] = values
        out[name] = flat.view(entry['shape'])
    return out


def load_sparse_state_dict(path: str) -> 'OrderedDict[str, torch.Tensor]':
    """Read ``ticket_sparse.pth`` back into the dense state_dict.

    The result equals ``ticket.pth`` key by key (same order, same values,
    zeros at the pruned positions).

    Args:
        path (str): A file written by :func:`export_ticket`.

    Returns:
        OrderedDict: The dense state_dict.

    Example:
        >>> state = load_sparse_state_dict('ticket/ticket_sparse.pth')
        >>> model.load_state_dict(state, strict=True)
    """
    return dense_state_dict(load_checkpoint_file(path))


# -- onnx --------------------------------------------------------------------
def _as_tuple(out):
    return (out, ) if isinstance(out, torch.Tensor) else tuple(out)


def export_onnx(model: nn.Module, shape: Sequence[int], path: str,
                batch: int = 2, seed: int = 0) -> dict:
    """Export the tensor forward to ONNX and compare onnxruntime with torch.

    The graph maps a preprocessed (normalised) image batch to the head's raw
    output, as ``mode='tensor'`` does; the batch size is dynamic, the
    spatial size is fixed to ``shape`` (the trace freezes shape-dependent
    resizes).

    Args:
        model: The model (eval mode is set).
        shape: (H, W) of the input.
        path: Target ``.onnx`` file.
        batch: Batch size of the check. Defaults to 2.
        seed: Seed of the random check batch. Defaults to 0.

    Returns:
        dict: ``exporter``, ``opset``, ``input_shape``, ``check_batch`` and
        ``max_abs_diff`` (None when onnxruntime is not installed).

    Example:
        >>> export_onnx(model, (512, 1024), 'ticket.onnx')['max_abs_diff']
    """
    h, w = shape
    forward = _Forward(model.eval()).eval()
    example = torch.zeros(1, 3, h, w)
    with torch.no_grad():
        num_out = len(_as_tuple(forward(example)))
    outputs = ['output'] if num_out == 1 else [
        f'output{i}' for i in range(num_out)]
    with warnings.catch_warnings():
        # The tracer warns about every shape comparison it freezes; the
        # spatial size is fixed on purpose. The legacy exporter announces
        # its own deprecation.
        warnings.simplefilter('ignore')
        torch.onnx.export(
            forward, (example, ), path, dynamo=False,
            opset_version=ONNX_OPSET, input_names=['input'],
            output_names=outputs,
            dynamic_axes={n: {0: 'batch'} for n in ['input'] + outputs})
    result = dict(exporter=ONNX_EXPORTER, opset=ONNX_OPSET,
                  input_shape=[batch, 3, h, w], check_batch=batch,
                  max_abs_diff=None)
    try:
        import onnxruntime
    except ImportError:
        return result
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, h, w, generator=g)
    session = onnxruntime.InferenceSession(
        path, providers=['CPUExecutionProvider'])
    got = session.run(None, {'input': x.numpy()})
    with torch.no_grad():
        ref = _as_tuple(forward(x))
    diff = max(float((torch.from_numpy(o) - r).abs().max())
               for o, r in zip(got, ref))
    scale = max(float(r.abs().max()) for r in ref)
    # float32 rounding grows with the output's magnitude: the relative
    # figure is the one to compare across models.
    result.update(max_abs_diff=diff, max_abs_output=scale,
                  max_rel_diff=diff / scale if scale > 0 else diff)
    return result


# -- output folder -----------------------------------------------------------
def _inside(path: str, folder: str) -> bool:
    path, folder = osp.realpath(path), osp.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _check_out_dir(out_dir: str, force: bool, keep: Sequence[str]) -> None:
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise FileExistsError(f'--out {out_dir!r} exists and is not a folder')
    for path in keep:
        if path and _inside(path, out_dir):
            raise ValueError(f'--out {out_dir!r} contains {path!r}; the '
                             'export writes a fresh folder and must not '
                             'replace its own inputs')
    if osp.isdir(out_dir) and os.listdir(out_dir) and not force:
        raise FileExistsError(
            f'--out {out_dir!r} exists and is not empty; pass --force to '
            'replace it')


def _move_into_place(tmp_dir: str, out_dir: str) -> None:
    """Rename the finished temp folder to ``out_dir`` (replacing it)."""
    if not osp.isdir(out_dir):
        os.rename(tmp_dir, out_dir)
        return
    if not os.listdir(out_dir):
        os.rmdir(out_dir)
        os.rename(tmp_dir, out_dir)
        return
    old = tempfile.mkdtemp(prefix=f'.{osp.basename(out_dir)}.old-',
                           dir=osp.dirname(out_dir))
    os.rmdir(old)
    os.rename(out_dir, old)
    try:
        os.rename(tmp_dir, out_dir)
    except BaseException:
        os.rename(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _make_parents(folder: str) -> list:
    """Create missing ancestors of ``folder``; return those created."""
    created = []
    parent = osp.dirname(folder)
    while parent and not osp.isdir(parent):
        created.append(parent)
        parent = osp.dirname(parent)
    for path in reversed(created):
        os.mkdir(path)
    return created


# -- the export --------------------------------------------------------------
def _ticket_meta(checkpoint: dict, ckpt_path: str) -> dict:
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    meta = meta.get(META_KEY) if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or 'arch' not in meta:
        raise ValueError(
            f'checkpoint {ckpt_path!r} has no meta.{META_KEY}.arch: it was '
            'not saved by a run with SuperNetSearchHook or '
            'ProgressivePruningHook')
    return meta


def _config_text(cfg: Config, config_src: str, ckpt_path: str,
                 weights_origin: str) -> str:
    header = [
        '# SuperTicket exported by mmsupertickets (tools/export_ticket.py).',
        f'# Training config: {config_src}',
        f'# Checkpoint: {ckpt_path}',
        f'# Weights: {_WEIGHT_NOTES[weights_origin]}',
        '# Builds the searched subnet at the sizes of arch.json (the arch= of',
        '# each searchable module) and loads ticket.pth, whose pruned weights',
        '# are zero. The search, pruning and reactivation hooks are removed:',
        '# training with this config trains the subnet densely (pruned',
        '# weights may grow back). load_from is resolved against the folder',
        '# of this file, so the exported folder can be moved as a whole.',
        '',
    ]
    # yapf needs minutes for the hundreds of arch entries of a paper-size
    # model; the unformatted text is the same Python.
    plain = Config(cfg.to_dict(), format_python_code=False)
    return '\n'.join(header) + plain.pretty_text + '\n'


def _relative_tolerance(ref: Tuple[torch.Tensor, ...]) -> float:
    scale = max(float(r.abs().max()) for r in ref) if ref else 1.0
    return 1e-4 * max(1.0, scale)


def _file_sizes(folder: str, ckpt_path: str) -> dict:
    sizes = {'checkpoint': osp.getsize(ckpt_path)}
    for name in FILES:
        path = osp.join(folder, name)
        if osp.isfile(path) and name != 'summary.json':
            sizes[name] = osp.getsize(path)
    return sizes


def export_ticket(config: Union[str, Config, dict],
                  checkpoint: str,
                  out_dir: str,
                  shape: Optional[Sequence[int]] = None,
                  onnx: bool = False,
                  force: bool = False,
                  weights: str = 'saved',
                  cfg_options: Optional[dict] = None) -> dict:
    """Write the deployable files of the SuperTicket in ``checkpoint``.

    Everything is written into a temporary folder beside ``out_dir`` that
    replaces it only once complete; on any error nothing is left behind.
    The checkpoint is only read.

    Args:
        config (str | Config | dict): The training config.
        checkpoint (str): A checkpoint of that run.
        out_dir (str): Folder to write (see the module docstring).
        shape (Sequence[int], optional): (H, W) of the MAC counts, the
            output check and the ONNX graph. Defaults to the profiling size
            the search hook stored in the checkpoint.
        onnx (bool): Also write ``ticket.onnx`` and check it with
            onnxruntime. Defaults to False.
        force (bool): Replace a non-empty ``out_dir``. Defaults to False.
        weights (str): ``'saved'`` (EMA weights of an ``EMAHook`` run) or
            ``'live'``; see :func:`select_weights`. Defaults to ``'saved'``.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        dict: The content of ``summary.json``.

    Raises:
        FileExistsError: ``out_dir`` is not empty and ``force`` is False.
        ValueError: the checkpoint does not fit the config (the message
            names the difference) or carries no SuperTickets metadata.
        CheckpointLoadError: the checkpoint file cannot be read.

    Example:
        >>> summary = export_ticket(
        ...     'configs/supertickets/xxx_cityscapes.py',
        ...     'work_dirs/xxx/iter_39990.pth', 'tickets/cityscapes',
        ...     shape=(512, 1024), onnx=True)
        >>> summary['subnet']['macs'] < summary['supernet']['macs']
        True
    """
    out_dir = osp.abspath(out_dir)
    ckpt_path = osp.abspath(checkpoint)
    config_path = config if isinstance(config, str) else None
    _check_out_dir(out_dir, force, [ckpt_path, config_path])

    # 1. Read and check everything in memory before writing anything.
    cfg = _load_config(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    ckpt = load_checkpoint_file(ckpt_path)
    meta = _ticket_meta(ckpt, ckpt_path)
    arch = dict(sorted(meta['arch'].items()))
    state, origin = select_weights(ckpt, weights)
    search = meta.get('search') or {}
    pruning = meta.get('pruning') or {}
    if shape is None:
        if not search.get('input_shape'):
            raise ValueError('no --shape given and the checkpoint stores no '
                             'profiling input shape: pass shape=(H, W)')
        shape = search['input_shape']
    shape = [int(s) for s in shape]
    if len(shape) != 2 or min(shape) <= 0:
        raise ValueError(f'shape must be (H, W) > 0, got {shape}')

    model = build_model(cfg)
    check_arch_fits(model, arch)
    owners = arch_owners(model, arch)
    cost = search.get('supernet_cost')
    if cost and list(search.get('input_shape') or []) == shape:
        supernet = dict(params=cost['params'], macs=cost['macs'],
                        input_shape=shape,
                        source='checkpoint meta.supertickets.search.'
                        'supernet_cost')
    else:
        # Stored at another size or not at all: the training config builds
        # the supernet, count it at this shape.
        measured = complexity(model, shape)
        supernet = dict(params=measured['params'], macs=measured['macs'],
                        input_shape=shape,
                        source='measured on the model the training config '
                        'builds')
    apply_arch(model, arch)
    problem = _state_dict_difference(model, state)
    if problem:
        raise ValueError(f'the checkpoint does not fit the config at its '
                         f'searched architecture: {problem}')
    model.load_state_dict(state, strict=True)
    masks = WeightMasks()
    masks.load_state_dict(model, pruning.get('masks') or {})
    masks.bake(model)
    model.eval()
    mask_state = masks.state_dict()
    masks.clear()  # the weights now carry the zeros themselves
    ticket_state = _plain_state_dict(model)
    densities = {n: float(m.sum()) / max(m.numel(), 1)
                 for n, m in mask_state.items()}
    cost = complexity(model, shape, densities)
    kept = sum(int(m.sum()) for m in mask_state.values())
    total = sum(m.numel() for m in mask_state.values())
    exported_cfg = ticket_config(cfg, owners, '{{ fileDirname }}/ticket.pth')

    # 2. Write into a temporary folder, check it, then move it in place.
    created = _make_parents(out_dir)
    tmp_dir = tempfile.mkdtemp(prefix=f'.{osp.basename(out_dir)}.tmp-',
                               dir=osp.dirname(out_dir))
    try:
        # mkdtemp makes it private (0700); the result should look like any
        # folder the user creates.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_dir, 0o777 & ~umask)
        with open(osp.join(tmp_dir, 'arch.json'), 'w') as f:
            json.dump(arch, f, indent=1)
            f.write('\n')
        save_checkpoint_atomically(ticket_state,
                                   osp.join(tmp_dir, 'ticket.pth'))
        save_checkpoint_atomically(
            sparse_state_dict(ticket_state, mask_state),
            osp.join(tmp_dir, 'ticket_sparse.pth'))
        config_file = osp.join(tmp_dir, 'config.py')
        with open(config_file, 'w') as f:
            f.write(_config_text(exported_cfg, config_path or '(in memory)',
                                 ckpt_path, origin))

        # The exported config alone must rebuild the same model.
        rebuilt_cfg = Config.fromfile(config_file)
        rebuilt = build_model(rebuilt_cfg)
        rebuilt.load_state_dict(load_checkpoint_file(rebuilt_cfg.load_from),
                                strict=True)
        rebuilt.eval()
        x = torch.randn(1, 3, *shape,
                        generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            ref = _as_tuple(_Forward(model)(x))
            got = _as_tuple(_Forward(rebuilt)(x))
        rebuild_diff = max(float((a - b).abs().max())
                           for a, b in zip(ref, got))
        if rebuild_diff > _relative_tolerance(ref):
            raise RuntimeError(
                f'the model built from the exported config differs from the '
                f'ticket by {rebuild_diff:.3g} (max abs): export aborted')

        onnx_result = None
        if onnx:
            onnx_result = export_onnx(rebuilt, shape,
                                      osp.join(tmp_dir, 'ticket.onnx'))

        summary = OrderedDict(
            input_shape=shape,
            counting=COUNTING,
            weights=dict(origin=origin, note=_WEIGHT_NOTES[origin]),
            supernet=supernet,
            subnet=dict(params=cost['params'], macs=cost['macs'],
                        note='physically shrunk channels, dense weights'),
            ticket=dict(
                params=cost['sparse_params'],
                macs=cost['sparse_macs'],
                macs_note='exact: sum over layers of MACs x that layer\'s '
                'density',
                macs_x_global_density=cost['macs_x_global_density'],
                macs_x_global_density_note='the paper\'s figure: dense '
                'subnet MACs x global density of the masked weights',
                masked_weights=total,
                kept_weights=kept,
                sparsity=1 - kept / total if total else 0.0,
                target_sparsity=pruning.get('target_sparsity')),
            units=dict(
                total=len(arch),
                kept=sum(1 for c in arch.values() if c > 0),
                channels=sum(arch.values())),
            rebuilt_from_config_max_abs_diff=rebuild_diff,
            onnx=onnx_result,
            speedup=SPEEDUP_NOTE)
        summary['files'] = _file_sizes(tmp_dir, ckpt_path)
        with open(osp.join(tmp_dir, 'summary.json'), 'w') as f:
            json.dump(summary, f, indent=2)
            f.write('\n')
        _move_into_place(tmp_dir, out_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        for path in created:  # innermost first
            try:
                os.rmdir(path)
            except OSError:
                break
        raise
    return summary


def format_summary(summary: dict) -> str:
    """A short table of :func:`export_ticket`'s summary.

    Example:
        >>> print(format_summary(summary))
    """
    h, w = summary['input_shape']
    rows = [
        ('dense supernet', summary['supernet']['params'],
         summary['supernet']['macs'], ''),
        ('shrunk subnet', summary['subnet']['params'],
         summary['subnet']['macs'], 'config.py + ticket.pth'),
        ('sparse ticket', summary['ticket']['params'],
         summary['ticket']['macs'], 'exact per-layer sparse MACs'),
        ('  (paper: MACs x density)', None,
         summary['ticket']['macs_x_global_density'], ''),
    ]
    lines = [f'Input 1x3x{h}x{w}; {summary["counting"]}.',
             f'Weights: {summary["weights"]["note"]}.',
             f'{"":<26}{"params":>10}{"MACs":>10}']
    for name, params, macs, note in rows:
        p = format_count(params) if params is not None else ''
        lines.append(f'{name:<26}{p:>10}{format_count(macs):>10}  {note}')
    t = summary['ticket']
    lines.append(f'Sparsity {t["sparsity"]:.4f} of {t["masked_weights"]:,} '
                 'masked weights'
                 + (f' (target {t["target_sparsity"]})'
                    if t['target_sparsity'] is not None else ''))
    files = summary['files']
    lines.append('Files: ' + ', '.join(
        f'{k} {v / 2**20:.2f} MiB' for k, v in files.items()))
    if summary.get('onnx'):
        onnx = summary['onnx']
        diff = onnx['max_abs_diff']
        lines.append(
            'ONNX (' + onnx['exporter'].split(':')[0] +
            f', opset {onnx["opset"]}): onnxruntime vs PyTorch ' +
            (f'max abs diff {diff:.3g} (outputs up to '
             f'{onnx["max_abs_output"]:.3g}, relative '
             f'{onnx["max_rel_diff"]:.2g})' if diff is not None else
             'not checked (onnxruntime missing)'))
    lines.append(summary['speedup'])
    return '\n'.join(lines)
