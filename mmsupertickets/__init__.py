from .version import __version__
from .safe_loading import (install_local_checkpoint_loader,
                           register_safe_globals)
from . import engine, models  # noqa: F401,E402  (registers the modules)

# torch>=2.6 loads checkpoints with weights_only=True; allow-list exactly
# the types mmengine's checkpoints carry so that resuming works.
register_safe_globals()
install_local_checkpoint_loader()

__all__ = ['__version__']
