from .hrnas_seg_head import HRNASSegHead

__all__ = ['HRNASSegHead']
