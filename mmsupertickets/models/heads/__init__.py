from importlib.util import find_spec

# The segmentation head builds on mmseg's decode head: registered only where
# mmseg is installed (mmsupertickets[seg]).
if find_spec('mmseg') is not None:
    from .hrnas_seg_head import HRNASSegHead
    __all__ = ['HRNASSegHead']
else:
    __all__ = []
