from .hrnas_cls_neck import HRNASClsNeck
from .hrnas_fusion_neck import HRNASFusionNeck

__all__ = ['HRNASClsNeck', 'HRNASFusionNeck']
