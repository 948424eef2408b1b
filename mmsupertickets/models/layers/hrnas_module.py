"""What the HR-NAS backbone, heads and necks share as modules."""
from mmsupertickets.structures.state_checks import ExactStateLoading

from .weight_init import init_hrnas_weights

__all__ = ['HRNASModule']


class HRNASModule(ExactStateLoading):
    """Mixin of the modules holding searchable units.

    They load a ``state_dict`` exactly or refuse it
    (:class:`~mmsupertickets.structures.state_checks.ExactStateLoading`),
    and initialise as HR-NAS (:func:`init_hrnas_weights`, with the
    module's ``conv_init_std``) unless an ``init_cfg`` is given.

    Example:
        >>> class MyNeck(HRNASModule, BaseModule):  # doctest: +SKIP
        ...     conv_init_std = None
    """

    def init_weights(self) -> None:
        if self.init_cfg is not None:
            super().init_weights()
        else:
            init_hrnas_weights(self, self.conv_init_std)
