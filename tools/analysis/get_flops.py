"""Print the params and MACs of a model built from a config.

The convention is the one of DESIGN §2 (and of the HR-NAS/SuperTickets
papers): parameters are the weights and biases of every Conv2d and Linear;
MACs are counted for Conv2d and Linear only (BN, activations, additions,
pooling and resizes count 0), for one image of the given size, in eval mode,
through ``extract_feat`` and the main head (the data preprocessor and any
auxiliary head run no MACs here; the params of an auxiliary head are
counted). The whole model and the backbone alone are reported; the rest
(neck and head) is their difference.

An exported ticket folder (what ``tools/export_ticket.py`` writes) may be
given instead of a config: its ``config.py`` builds the dense subnet at the
widths of ``arch.json``, ``--shape`` defaults to the ``input_shape`` of its
``summary.json``, and the zeros of its ``ticket.pth`` give the sparse counts
as the export counts them (each Conv2d/Linear layer's MACs and weights ×
its share of nonzero weights; its bias stays dense). ``--checkpoint`` reads
the zeros of any other weights that fit the config.

Examples::

    python tools/analysis/get_flops.py configs/xxx_cityscapes.py \
        --shape 512 1024
    python tools/analysis/get_flops.py configs/xxx_in1k.py --shape 224 224 \
        --cfg-options model.neck.out_channels=1280
    python tools/analysis/get_flops.py tickets/xxx  # an exported ticket
"""
import argparse
import json
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.registry import MODELS, init_default_scope

import mmsupertickets  # noqa: F401  (registers modules before the build)
from mmsupertickets.flops import complexity, count_params, format_count
from mmsupertickets.pruning.prunable import prunable_weights
from mmsupertickets.structures.value_checks import check_input_shape
from mmsupertickets.utils.checkpoint_io import load_checkpoint_file
from mmsupertickets.utils.json_reader import read_json


def parse_args():
    parser = argparse.ArgumentParser(
        description='Params and MACs (Conv2d + Linear only) of a model')
    parser.add_argument(
        'config', help='config file path, or an exported ticket folder')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='input image height and width (for a ticket folder: defaults '
        'to the input_shape of its summary.json)')
    parser.add_argument(
        '--checkpoint',
        help='weights whose zeros give the sparse params and MACs (for a '
        'ticket folder: defaults to its ticket.pth)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings with key=value pairs, e.g. '
        'model.decode_head.channels=180')
    parser.add_argument(
        '--json', action='store_true', help='also print the counts as JSON')
    args = parser.parse_args()
    if osp.isdir(args.config):
        folder = args.config
        args.config = osp.join(folder, 'config.py')
        if args.checkpoint is None:
            args.checkpoint = osp.join(folder, 'ticket.pth')
        if args.shape is None:
            summary = osp.join(folder, 'summary.json')
            args.shape = read_json(summary).get('input_shape')
    if args.shape is None:
        parser.error('--shape is required unless CONFIG is a ticket folder')
    try:
        args.shape = check_input_shape(args.shape, '--shape')
    except ValueError as e:
        parser.error(str(e))
    return args


def build_model(cfg: Config):
    """Build ``cfg.model`` through the registries of the config's scope."""
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    # The root MODELS switches to the default scope's registry, which falls
    # back to the root where mmsupertickets registers its modules.
    # No init_weights: counts do not depend on the values, and a
    # ``Pretrained`` init would need the network.
    return MODELS.build(cfg.model)


def nonzero_densities(model, checkpoint: str) -> dict:
    """Load ``checkpoint`` into ``model``; the share of nonzero entries of
    every Conv2d/Linear weight, by weight name.

    A pruned weight of an exported ticket is stored as zero, so these are
    the densities of its masks (a kept weight that is exactly zero, which
    magnitude pruning would have cut first, would count as pruned).
    """
    state = load_checkpoint_file(checkpoint)
    model.load_state_dict(state.get('state_dict', state), strict=True)
    # exclude=(): the final classifier too, so that any zeros count; a
    # layer without zeros has density 1, as an unmasked one in the export.
    return {name: float(w.count_nonzero()) / max(w.numel(), 1)
            for name, w in prunable_weights(model, exclude=()).items()}


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    model = build_model(cfg)
    shape = tuple(args.shape)

    densities = nonzero_densities(model, args.checkpoint) \
        if args.checkpoint else None
    total = complexity(model, shape, densities)
    backbone = complexity(model.backbone, shape) \
        if hasattr(model, 'backbone') else None

    h, w = shape
    print(f'Input: 1x3x{h}x{w} (eval mode, one image)')
    print('Counted: params = weights + biases of every Conv2d and Linear; '
          'MACs = Conv2d and Linear only (BN, activations, additions, '
          'pooling and resizes count 0), through backbone, neck and main '
          'head (no data preprocessor, no auxiliary head).')
    parts = [f'{name}={type(m).__name__}'
             for name, m in model.named_children()
             if name != 'data_preprocessor' and count_params(m) > 0]
    print(f'Model: {type(model).__name__} with {", ".join(parts)}')
    rest = ' + '.join(name for name, m in model.named_children()
                      if name not in ('data_preprocessor', 'backbone')
                      and count_params(m) > 0) or 'rest'
    rows = [('whole model', total)]
    if backbone is not None:
        rows.append(('backbone alone', backbone))
        rows.append((rest, dict(
            params=total['params'] - backbone['params'],
            macs=total['macs'] - backbone['macs'])))
    if densities is not None:
        print(f'Sparse: the nonzero weights of {args.checkpoint}; each '
              'layer\'s MACs and weights x its density, biases dense.')
        rows.append(('sparse whole model', dict(
            params=total['sparse_params'], macs=total['sparse_macs'])))
    width = max(len(name) for name, _ in rows)
    for name, c in rows:
        print(f'{name:<{width}}  params {format_count(c["params"]):>8} '
              f'({c["params"]:,})  MACs {format_count(c["macs"]):>8} '
              f'({c["macs"]:,})')
    if args.json:
        print(json.dumps({name: dict(params=c['params'], macs=c['macs'])
                          for name, c in rows}, indent=2))


if __name__ == '__main__':
    main()
