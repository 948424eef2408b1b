"""mmsupertickets: SuperTickets for OpenMMLab 2.0.

Importing the package registers its models and hooks into mmengine's root
registries and nothing else. The layers, each importing only those below:
``utils`` (checkpoint I/O, launch) → ``structures`` (searchable units,
shrink plans, arch specs, masks, sparse format) → ``pruning`` (prunable
set, scorers, selection, schedules) → ``flops`` → ``models`` → ``engine``
(hooks, runner surgery, ticket meta, event log) → ``apis`` (export, S+P).
"""
from .version import __version__
from . import engine, models  # noqa: F401,E402  (registers the modules)

__all__ = ['__version__']
