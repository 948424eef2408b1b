"""Checks run before a runner is built, so bad input fails early and clearly.

The stock loaders report a missing folder with a bare ``FileNotFoundError``
and an empty one with ``need at least one array to concatenate`` from deep
inside mmengine; here both name the dataloader, the dataset and the path.
"""
import copy
import os.path as osp

from mmengine.config import Config
from mmengine.registry import DATASETS, init_default_scope


def _describe(key: str, ds_cfg: dict) -> str:
    where = ds_cfg.get('data_root') or ds_cfg.get('ann_file') or ''
    return f'{key}.dataset ({ds_cfg.get("type")} at {where!r})'


def _check_dataset(key: str, ds_cfg: dict) -> None:
    if 'dataset' in ds_cfg and isinstance(ds_cfg['dataset'], dict):
        return _check_dataset(key, ds_cfg['dataset'])  # dataset wrappers
    root = ds_cfg.get('data_root')
    if root and not osp.isdir(root):
        raise FileNotFoundError(
            f'{_describe(key, ds_cfg)}: the folder {root!r} does not exist. '
            'Generate demo data with tools/dataset_converters/'
            'generate_data.py or point data_root at the dataset.')
    cfg = copy.deepcopy(ds_cfg)
    cfg['lazy_init'] = True
    try:
        dataset = DATASETS.build(cfg)
        samples = dataset.load_data_list()
    except TypeError:
        return  # not an mmengine BaseDataset; the runner will tell
    except FileNotFoundError as e:
        raise FileNotFoundError(f'{_describe(key, ds_cfg)}: {e}') from None
    if len(samples) == 0:
        raise ValueError(
            f'{_describe(key, ds_cfg)} is empty: no samples were found with '
            f'data_prefix={ds_cfg.get("data_prefix")!r}, '
            f'ann_file={ds_cfg.get("ann_file")!r}')


def check_datasets(cfg: Config, keys=('train_dataloader', )) -> None:
    """Raise a clear error for a missing or empty dataset of ``keys``."""
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    for key in keys:
        loader = cfg.get(key)
        if loader is not None and isinstance(loader.get('dataset'), dict):
            _check_dataset(key, loader['dataset'].to_dict() if hasattr(
                loader['dataset'], 'to_dict') else dict(loader['dataset']))
