from .supertickets_hrnet import SuperTicketHRNet

__all__ = ['SuperTicketHRNet']
