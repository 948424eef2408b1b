"""Small, learnable synthetic datasets in the stock OpenMMLab formats.

Each generator writes one dataset in exactly the on-disk layout that the
stock dataset class reads, so configs keep the stock ``dataset_type`` and
pipelines and only change ``data_root`` and image sizes:

- :func:`generate_cityscapes`: mmseg ``CityscapesDataset``.
- :func:`generate_ade20k`: mmseg ``ADE20KDataset``.
- :func:`generate_coco_keypoints`: mmpose ``CocoDataset`` (top-down).
- :func:`generate_imagenet`: mmpretrain ``ImageNet``.

All take ``(root, num_train, num_val, image_size, seed)`` and return a dict
describing what was written. Output is a pure function of the arguments.
``tools/dataset_converters/generate_data.py`` is the command line front end.

:func:`events_every_epoch` and :class:`KillChannelsHook` make the
SuperTickets events of a run of a few steps happen (tests, smoke sweeps).
"""
from .ade20k import generate_ade20k
from .cityscapes import generate_cityscapes
from .coco_keypoints import generate_coco_keypoints
from .data_root import redirect_paths
from .imagenet import generate_imagenet
from .kill_channels_hook import KillChannelsHook
from .short_runs import events_every_epoch

__all__ = [
    'generate_cityscapes', 'generate_ade20k', 'generate_coco_keypoints',
    'generate_imagenet', 'redirect_paths', 'events_every_epoch',
    'KillChannelsHook'
]
