"""Latency tables measured on a target device, and the latency they predict.

``table`` holds the format, ``predictor`` the cost model the search hook
steers by; ``timing`` and ``build`` measure a table (they import
onnxruntime only when it is asked for).
"""
from .predictor import (
                        LatencyCost,
                        check_table,
                        predict_latency,
                        unit_signature,
                        unit_widths,
)
from .table import (
                        RUNTIMES,
                        TABLE_FORMAT,
                        LatencyTable,
                        interpolate,
                        width_grid,
)

__all__ = ['LatencyTable', 'LatencyCost', 'check_table', 'predict_latency',
           'unit_signature', 'unit_widths', 'width_grid', 'interpolate',
           'RUNTIMES', 'TABLE_FORMAT']
