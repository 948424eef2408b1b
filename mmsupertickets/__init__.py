"""mmsupertickets: SuperTickets for OpenMMLab 2.0.

Importing the package registers its models and hooks into mmengine's root
registries and nothing else. The layers, each importing only those below:
``utils`` (checkpoint I/O, launch) → ``structures`` (searchable units,
shrink plans, arch specs, masks, sparse format) → ``pruning`` (prunable
set, scorers, selection, schedules) → ``flops`` → ``models`` → ``engine``
(hooks, runner surgery, ticket meta, event log) → ``apis`` (export, S+P).
"""
import mmcv
import mmengine
from mmengine.utils import digit_version

from .version import __version__

# Tested ranges (setup.py's install_requires says the same).
MMCV_MIN, MMCV_MAX = '2.0.0', '2.2.0'
MMENGINE_MIN, MMENGINE_MAX = '0.10.5', '1.0.0'


def _check_version(name: str, version: str, low: str, high: str) -> None:
    if not digit_version(low) <= digit_version(version) < digit_version(high):
        raise ImportError(
            f'mmsupertickets {__version__} needs {name}>={low},<{high}, but '
            f'{name}=={version} is installed. See the README, section '
            '"Installation", for the tested versions.')


_check_version('mmcv', mmcv.__version__, MMCV_MIN, MMCV_MAX)
_check_version('mmengine', mmengine.__version__, MMENGINE_MIN, MMENGINE_MAX)

# `_base_ = 'mmsupertickets::supertickets/...'` in a config: mmengine
# resolves `pkg::` paths only for the packages in this table (then through
# the installed package's .mim/configs).
from mmengine.config.utils import MODULE2PACKAGE  # noqa: E402

MODULE2PACKAGE.setdefault('mmsupertickets', 'mmsupertickets')

# Registers the models, the hooks and the 'atomic_local' file backend.
from . import engine, models  # noqa: F401,E402
from .utils import atomic_write  # noqa: F401,E402

__all__ = ['__version__']
