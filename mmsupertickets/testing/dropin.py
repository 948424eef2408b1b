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

The code: :mod:`~mmsupertickets.testing.dropin_data` (the generated data),
:mod:`~mmsupertickets.testing.dropin_config` (the config a cell runs),
:mod:`~mmsupertickets.testing.dropin_cell` (one cell) and
:mod:`~mmsupertickets.testing.dropin_matrix` (the cells, the results
file, the table); their names are importable from here too.

Example:
    >>> from mmsupertickets.testing.dropin import run_config
    >>> run_config('mmseg', 'hrnet/fcn_hr18_4xb2-80k_cityscapes-512x1024.py',
    ...            'b', '/tmp/dropin')['result']  # doctest: +SKIP
    'pass'
"""
import sys

# Re-exported: configs and tools import them from this module.
from .dropin_cell import MAX_PARAMS, main, run_config  # noqa: F401
from .dropin_config import (  # noqa: F401
    config_root,
    hrnet_widths,
    swap_hrnet,
    training_config,
)
from .dropin_data import CLS_SIZE, SEG_SIZE, generate_data  # noqa: F401
from .dropin_matrix import (  # noqa: F401
    CODEBASES,
    CONFIG_DIRS,
    TIMEOUT,
    cells,
    format_table,
    list_configs,
    load_results,
    run_matrix,
    summarize,
)

__all__ = ['list_configs', 'run_config', 'run_matrix', 'format_table',
           'generate_data', 'CODEBASES']

if __name__ == '__main__':
    # A cell in a process of its own (dropin_cell.run_in_process).
    main(sys.argv[1:])
