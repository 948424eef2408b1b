"""The demo tasks: config, dataset, headline metric and title of each."""
import os.path as osp
from collections import OrderedDict

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# Where the demo configs read their data (relative to the repository).
DATA_ROOT = 'data/demo'
CONFIG_DIR = 'configs/supertickets/demo/'


def _task(config: str, dataset: str, folder: str, metric: str, label: str,
          title: str, digits: int = 2) -> dict:
    """One task: its demo config (under :data:`CONFIG_DIR`), the generator's
    dataset name, the folder of that dataset under the data root, the
    headline metric key in the evaluator's output, its label, the report's
    title and the decimals the metric is printed with."""
    return dict(config=CONFIG_DIR + config, dataset=dataset, folder=folder,
                metric=metric, label=label, title=title, digits=digits)


TASKS = OrderedDict(
    seg=_task('supertickets_hrnas_1xb4-demo_cityscapes-128x256.py',
              'cityscapes', 'cityscapes', 'mIoU', 'mIoU (%)',
              'Cityscapes semantic segmentation (synthetic)'),
    ade20k=_task('supertickets_hrnas_1xb8-demo_ade20k-128x128.py', 'ade20k',
                 'ade/ADEChallengeData2016', 'mIoU', 'mIoU (%)',
                 'ADE20K semantic segmentation (synthetic)'),
    pose=_task('supertickets_td-hm_hrnas_1xb16-demo_coco-128x96.py', 'coco',
               'coco', 'coco/AP', 'AP (OKS)',
               'COCO top-down keypoints (synthetic)', digits=3),
    cls=_task('supertickets_hrnas_1xb32-demo_in1k-64px.py', 'imagenet',
              'imagenet', 'accuracy/top1', 'top-1 accuracy (%)',
              'ImageNet classification (synthetic, 10 classes)'),
)


def task_title(name: str) -> str:
    """The report title of task ``name`` (the name itself if unknown)."""
    return TASKS[name]['title'] if name in TASKS else name
