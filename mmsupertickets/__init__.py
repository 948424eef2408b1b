from .version import __version__
from . import models  # noqa: F401  (registers the modules)

__all__ = ['__version__']
