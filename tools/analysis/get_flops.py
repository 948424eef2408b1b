"""Print the params and MACs of a model built from a config.

The convention is the one of DESIGN §2 (and of the HR-NAS/SuperTickets
papers): parameters are the weights and biases of every Conv2d and Linear;
MACs are counted for Conv2d and Linear only (BN, activations, additions,
pooling and resizes count 0), for one image of the given size, in eval mode,
through ``extract_feat`` and the main head (the data preprocessor and any
auxiliary head run no MACs here; the params of an auxiliary head are
counted). The whole model and the backbone alone are reported; the rest
(neck and head) is their difference.

Examples::

    python tools/analysis/get_flops.py configs/xxx_cityscapes.py \
        --shape 512 1024
    python tools/analysis/get_flops.py configs/xxx_in1k.py --shape 224 224 \
        --cfg-options model.neck.out_channels=1280
"""
import argparse
import json

import mmsupertickets  # noqa: F401  (registers modules before the build)
from mmengine.config import Config, DictAction
from mmengine.registry import MODELS, init_default_scope

from mmsupertickets.flops import complexity, count_params, format_count


def parse_args():
    parser = argparse.ArgumentParser(
        description='Params and MACs (Conv2d + Linear only) of a model')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        required=True,
        metavar=('H', 'W'),
        help='input image height and width')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings with key=value pairs, e.g. '
        'model.decode_head.channels=180')
    parser.add_argument(
        '--json', action='store_true', help='also print the counts as JSON')
    return parser.parse_args()


def build_model(cfg: Config):
    """Build ``cfg.model`` through the registries of the config's scope."""
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    # The root MODELS switches to the default scope's registry, which falls
    # back to the root where mmsupertickets registers its modules.
    # No init_weights: counts do not depend on the values, and a
    # ``Pretrained`` init would need the network.
    return MODELS.build(cfg.model)


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    model = build_model(cfg)
    shape = tuple(args.shape)

    total = complexity(model, shape)
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
