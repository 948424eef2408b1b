"""Demo configs on tiny generated data, shortened for tests."""
import os.path as osp

from mmengine.config import Config
from mmengine.runner import Runner

from mmsupertickets.testing import events_every_epoch, redirect_paths

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def generate_demo_data(task, root):
    """Tiny data in the demo sub-layout under ``root``."""
    from mmsupertickets.testing import (
        generate_ade20k,
        generate_cityscapes,
        generate_coco_keypoints,
        generate_imagenet,
    )
    if task == 'cityscapes':
        generate_cityscapes(osp.join(root, 'cityscapes'), num_train=8,
                            num_val=2, image_size=(64, 128), seed=0)
    elif task == 'ade20k':
        generate_ade20k(osp.join(root, 'ade', 'ADEChallengeData2016'),
                        num_train=8, num_val=2, image_size=(64, 64), seed=0)
    elif task == 'coco':
        generate_coco_keypoints(osp.join(root, 'coco'), num_train=4,
                                num_val=2, image_size=(96, 128), seed=0)
    else:
        generate_imagenet(osp.join(root, 'imagenet'), num_train=2,
                          num_val=1, image_size=(32, 32), seed=0)


DEMO_DATA = {
    'cityscapes': 'cityscapes', 'ade20k': 'ade20k', 'coco': 'coco',
    'in1k': 'imagenet'
}


def demo_runner(path, tmp_path, hook_options=None):
    """A Runner of the demo config ``path`` on tiny generated data: four
    iterations with a shrink and prunes every epoch; ``hook_options``
    (``{hook type: {key: value}}``) then override hook settings."""
    cfg = Config.fromfile(osp.join(REPO, path))
    data = next(v for k, v in DEMO_DATA.items() if k in path)
    root = str(tmp_path / 'data')
    generate_demo_data(data, root)
    cfg = Config(redirect_paths(cfg.to_dict(), 'data/demo/', root + '/'))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.log_level = 'WARNING'
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 10**6
    cfg.default_hooks.pop('visualization', None)
    # Four iterations: two epochs of two iterations (or of as many as the
    # tiny dataset gives), validating once at the end.
    cfg.train_dataloader.batch_size = 4 if data != 'coco' else 2
    cfg.val_dataloader.batch_size = 2
    iter_based = cfg.train_cfg.get('type') == 'IterBasedTrainLoop'
    if iter_based:
        cfg.train_cfg.max_iters = 4
        cfg.train_cfg.val_interval = 4
    else:
        cfg.train_cfg.max_epochs = 2
        cfg.train_cfg.val_interval = 2
    # Events every epoch; BN re-estimated before the single validation.
    events_every_epoch(cfg, bn_interval=4 if iter_based else 2)
    for hook in cfg.custom_hooks:
        hook.update((hook_options or {}).get(hook['type'], {}))
    return Runner.from_cfg(cfg), cfg
