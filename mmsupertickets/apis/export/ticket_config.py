"""The ticket's config: the training config read in, the ticket's written."""
import copy
import os.path as osp
from typing import Dict, Union

from mmengine.config import Config

from mmsupertickets.engine.ticket_meta import is_ticket_hook

from .subnet import WEIGHT_NOTES

__all__ = ['load_config', 'ticket_config', 'config_text']


def load_config(config: Union[str, Config, dict]) -> Config:
    """A private copy of the training config, from a file, Config or dict.

    Args:
        config (str | Config | dict): The config or its file.

    Returns:
        Config: A deep copy (the argument is not modified).

    Raises:
        FileNotFoundError: ``config`` names no existing file.

    Example:
        >>> load_config(dict(model=dict(type='M'))).model.type
        'M'
    """
    if isinstance(config, Config):
        return copy.deepcopy(config)
    if isinstance(config, dict):
        return Config(copy.deepcopy(config))
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file {config!r} does not exist')
    return Config.fromfile(config)


def ticket_config(cfg: Config, owners: Dict[str, Dict[str, int]],
                  load_from: str) -> Config:
    """The training config turned into the config of the exported ticket.

    The SuperTickets hooks leave ``custom_hooks`` (other custom hooks stay),
    each module in ``owners`` gets ``arch=`` with its part of the
    architecture, and ``load_from`` points at the ticket's weights.

    Args:
        cfg: The training config (not modified).
        owners: ``{child of cfg.model: local arch}`` from
            :func:`~mmsupertickets.apis.export.subnet.arch_owners`.
        load_from: Value of ``load_from``.

    Returns:
        Config: The ticket's config.

    Raises:
        ValueError: a module in ``owners`` has no dict in ``cfg.model``.

    Example:
        >>> cfg = ticket_config(  # doctest: +SKIP
        ...     train_cfg, arch_owners(model, arch),
        ...     '{{ fileDirname }}/ticket.pth')
        >>> cfg.model.backbone.arch  # doctest: +SKIP
        {'stage0.fuse.blocks.out0_in0.paths.k3': 8, ...}
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


def config_text(cfg: Config, config_src: str, ckpt_path: str,
                weights_origin: str) -> str:
    """The text of the ticket's ``config.py``: a header, then ``cfg``.

    Args:
        cfg (Config): The ticket's config from :func:`ticket_config`.
        config_src (str): Where the training config came from.
        ckpt_path (str): The exported checkpoint.
        weights_origin (str): ``'ema'``, ``'model'`` or ``'live'``.

    Returns:
        str: Python source that ``Config.fromfile`` reads back.

    Example:
        >>> text = config_text(Config(dict(load_from='ticket.pth')),
        ...                    'train.py', 'iter_8.pth', 'model')
        >>> text.splitlines()[0]
        '# SuperTicket exported by mmsupertickets (tools/export_ticket.py).'
        >>> text.splitlines()[-1]
        "load_from='ticket.pth'"
    """
    header = [
        '# SuperTicket exported by mmsupertickets (tools/export_ticket.py).',
        # repr: a file name may hold a newline, which would end the comment.
        f'# Training config: {config_src!r}',
        f'# Checkpoint: {ckpt_path!r}',
        f'# Weights: {WEIGHT_NOTES[weights_origin]}',
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
