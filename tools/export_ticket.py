"""Export the SuperTicket of a training checkpoint into deployable files.

Writes into ``--out`` (a fresh folder; an existing non-empty one only with
``--force``; a symbolic link is followed and its target written; one export
at a time: a second one to the same folder is refused while the first
runs). The checkpoint is only read; it may be an ``http(s)://`` URL, which
is downloaded and read through the same safe loader as ``load_from``:

- ``arch.json``: the searched architecture ``{unit name: channels}``;
- ``ticket.pth``: a stock checkpoint (``state_dict`` + ``meta.dataset_meta``)
  of the shrunk subnet, pruned weights zero; ``init_model`` / ``get_model``
  of mmseg, mmpose and mmpretrain load it with ``config.py``;
- ``ticket_sparse.pth``: kept values + flat int32 indices of every masked
  weight (``mmsupertickets.structures.sparse_format.load_sparse_state_dict``
  reads it back);
- ``config.py``: a stock config that builds the shrunk model without the
  SuperTickets hooks and loads ``ticket.pth``;
- ``ticket.onnx`` (``--onnx``): the tensor forward at ``--shape``, checked
  against PyTorch with onnxruntime;
- ``summary.json``: params/MACs of supernet, shrunk subnet and sparse
  ticket, sparsity, file sizes.

With ``EMAHook`` in the training run the exported weights are the EMA ones
(mmengine saves them as ``state_dict``); ``--weights live`` exports the raw
training weights instead.

Examples::

    python tools/export_ticket.py configs/xxx_cityscapes.py \
        work_dirs/xxx/iter_39990.pth --out tickets/cityscapes --onnx
    python tools/test.py tickets/cityscapes/config.py \
        tickets/cityscapes/ticket.pth
"""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction

import mmsupertickets  # noqa: F401  (registers modules before the build)
from mmsupertickets.apis.export import export_ticket, format_summary
from mmsupertickets.apis.export.ticket_folder import resolve_out_dir
from mmsupertickets.utils.checkpoint_io import (
    CheckpointLoadError,
    local_checkpoint_path,
)
from mmsupertickets.utils.file_lock import FolderLock, FolderLockedError


def parse_args():
    parser = argparse.ArgumentParser(
        description='Export a SuperTicket (shrunk subnet, baked masks, '
        'sparse weights, config, optional ONNX) from a training checkpoint')
    parser.add_argument('config', help='training config file path')
    parser.add_argument(
        'checkpoint', help='checkpoint of that run (a file or an http(s) '
        'URL)')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='input size of the MAC counts, the checks and the ONNX graph; '
        'defaults to the profiling size stored in the checkpoint')
    parser.add_argument(
        '--onnx', action='store_true', help='also write ticket.onnx')
    parser.add_argument(
        '--force',
        action='store_true',
        help='replace --out if it exists and is not empty')
    parser.add_argument(
        '--weights',
        choices=('saved', 'live'),
        default='saved',
        help="'saved': the checkpoint's state_dict (the EMA weights of a "
        "run with EMAHook); 'live': the raw training weights of such a run")
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings with key=value pairs')
    return parser.parse_args()


def main():
    args = parse_args()
    try:
        # The lock is on the link's target, which is what gets replaced.
        out = resolve_out_dir(args.out)
        with FolderLock(out, '--out'):
            summary = export_ticket(
                args.config,
                local_checkpoint_path(args.checkpoint),
                out,
                shape=args.shape,
                onnx=args.onnx,
                force=args.force,
                weights=args.weights,
                cfg_options=args.cfg_options)
    except (ValueError, KeyError, FileExistsError, FileNotFoundError,
            CheckpointLoadError, FolderLockedError) as err:
        # Bad input: one line naming it, no traceback; nothing was written.
        message = err.args[0] if isinstance(err, KeyError) and err.args \
            else str(err)
        sys.exit(f'export_ticket.py: error: {message}')
    print(format_summary(summary))
    print(f'Wrote {args.out}' + (f' (-> {out})' if out != osp.abspath(
        args.out) else ''))


if __name__ == '__main__':
    main()
