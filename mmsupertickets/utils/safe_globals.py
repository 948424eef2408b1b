"""The allow-list of what a checkpoint may unpickle besides tensors.

mmengine 0.10.7 checkpoints hold the message hub's ``HistoryBuffer``
objects, numpy values and, with OneCycle schedulers, an annealing function.
:func:`weights_only_load` loads a file with exactly those types allowed on
top of torch's own tensor types, on every supported torch:

- torch with ``torch.serialization.safe_globals`` (>= 2.5): ``weights_only``
  loading inside that context, so torch's global allow-list is left as it
  was;
- older torch (2.1): the same names through a restricted unpickler that
  refuses every other global, since ``add_safe_globals`` does not exist.

numpy arrays are allowed under both spellings of numpy's module
(``numpy.core`` written by NumPy 1.x, ``numpy._core`` by NumPy 2), so files
written on either stack load on both. Nothing here changes torch's or
mmengine's state outside one call.
"""
import _compat_pickle
import codecs
import collections
import pickle
from typing import Any, Dict

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.optim.scheduler.param_scheduler import OneCycleParamScheduler

__all__ = ['weights_only_load', 'SAFE_GLOBALS']

# The attributes a checkpoint may look up with ``getattr``: the statistics
# methods mmengine's HistoryBuffer registers for itself, and the annealing
# function mmengine's OneCycle schedulers keep in their state.
_ALLOWED_ATTRIBUTES = {
    HistoryBuffer: ('min', 'max', 'current', 'mean'),
    OneCycleParamScheduler: ('_annealing_cos', '_annealing_linear'),
}


def _allowed_getattr(obj: Any, name: str) -> Any:
    """Stand-in for ``builtins.getattr`` while unpickling a checkpoint.

    Pickle protocol 2 (the one ``torch.save`` uses) writes a method or a
    static method as ``getattr(cls, 'name')``. Allow-listing the real
    ``getattr`` would let a file reach any attribute of any allowed object
    (module globals included), so only the lookups in
    ``_ALLOWED_ATTRIBUTES`` are answered.
    """
    allowed = _ALLOWED_ATTRIBUTES.get(obj, ()) if isinstance(obj,
                                                             type) else ()
    if name in allowed:
        return getattr(obj, name)
    choices = '; '.join(f'{cls.__name__}.{{{",".join(names)}}}'
                        for cls, names in _ALLOWED_ATTRIBUTES.items())
    raise pickle.UnpicklingError(
        f'Unsupported global: refused getattr({obj!r}, {name!r}); only '
        f'{choices} are allowed')


def _numpy_globals() -> Dict[str, Any]:
    if int(np.__version__.split('.')[0]) >= 2:
        from numpy._core import multiarray
    else:
        from numpy.core import multiarray
    names = {}
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        names[f'{module}._reconstruct'] = multiarray._reconstruct
        names[f'{module}.scalar'] = multiarray.scalar
    names['numpy.ndarray'] = np.ndarray
    names['numpy.dtype'] = np.dtype
    # NumPy >= 1.25 pickles a dtype's state through its concrete class.
    dtypes = getattr(np, 'dtypes', None)
    for cls in ('Float64DType', 'Float32DType', 'Float16DType',
                'Int64DType', 'Int32DType', 'UInt8DType', 'BoolDType'):
        if hasattr(dtypes, cls):
            names[f'numpy.dtypes.{cls}'] = getattr(dtypes, cls)
    return names


# Everything a checkpoint written by mmengine 0.10.7 through the stock
# runner holds besides tensors and plain containers, found by saving real
# checkpoints and loading them with ``weights_only=True``: the message
# hub's HistoryBuffer values, OneCycle scheduler state, numpy arrays and
# scalars (history, runtime info, mmpose's dataset_meta).
SAFE_GLOBALS: Dict[str, Any] = {
    'mmengine.logging.history_buffer.HistoryBuffer': HistoryBuffer,
    'mmengine.optim.scheduler.param_scheduler.OneCycleParamScheduler':
    OneCycleParamScheduler,
    'builtins.getattr': _allowed_getattr,
    **_numpy_globals(),
}


# Allowed by newer torch's weights-only unpickler itself: protocol 2 pickles
# a numpy array's bytes as codecs.encode(text, 'latin1'); mmengine keeps
# counters and sets in its runtime state.
_LEGACY_TORCH_GLOBALS = {
    '_codecs.encode': codecs.encode,
    'collections.Counter': collections.Counter,
    'builtins.set': set,
    'builtins.frozenset': frozenset,
    'builtins.bytearray': bytearray,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only torch's weights-only globals and ``SAFE_GLOBALS``."""

    def find_class(self, module: str, name: str) -> Any:
        from torch._weights_only_unpickler import _get_allowed_globals
        # Protocol 2 writes Python 2 names (``__builtin__.getattr``).
        module, name = _compat_pickle.NAME_MAPPING.get(
            (module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        full_path = f'{module}.{name}'
        allowed = SAFE_GLOBALS.get(full_path) or \
            _LEGACY_TORCH_GLOBALS.get(full_path)
        if allowed is None:
            allowed = _get_allowed_globals().get(full_path)
        if allowed is None:
            raise pickle.UnpicklingError(
                f'Unsupported global: GLOBAL {full_path} was not an allowed '
                'global by default')
        return allowed


class _RestrictedPickleModule:
    """A ``pickle_module`` for :func:`torch.load` with the restriction."""
    Unpickler = _RestrictedUnpickler
    __name__ = 'mmsupertickets.restricted_pickle'

    @staticmethod
    def load(f, **kwargs):
        return _RestrictedUnpickler(f, **kwargs).load()


def weights_only_load(f: Any, map_location: Any = 'cpu') -> Any:
    """``torch.load`` allowing tensors and :data:`SAFE_GLOBALS` only.

    Args:
        f: A path or a binary file object.
        map_location: As in :func:`torch.load`. Defaults to ``'cpu'``.

    Raises:
        pickle.UnpicklingError: the file pickles anything else; the message
            names the refused global.
    """
    scoped = getattr(torch.serialization, 'safe_globals', None)
    if scoped is not None:
        with scoped([(obj, name) for name, obj in SAFE_GLOBALS.items()]):
            return torch.load(f, map_location=map_location,
                              weights_only=True)
    return torch.load(f, map_location=map_location, weights_only=False,
                      pickle_module=_RestrictedPickleModule)
