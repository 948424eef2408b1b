"""Export of a SuperTicket from a training checkpoint into deployable files."""
from mmsupertickets.structures.sparse_format import (
                                                     dense_state_dict,
                                                     load_sparse_state_dict,
                                                     sparse_state_dict,
)

from .onnx_check import export_onnx
from .subnet import arch_owners, build_model, select_weights
from .ticket_config import ticket_config
from .ticket_export import export_ticket, format_summary

__all__ = [
    'export_ticket', 'build_model', 'ticket_config', 'arch_owners',
    'select_weights', 'sparse_state_dict', 'dense_state_dict',
    'load_sparse_state_dict', 'export_onnx', 'format_summary'
]
