"""Hardware-friendly widths: live channel counts rounded to a divisor."""
import torch

__all__ = ['round_live_channels']


def round_live_channels(live: torch.Tensor, magnitude: torch.Tensor,
                        divisor: int) -> torch.Tensor:
    """The live-channel mask of one unit, with a multiple of ``divisor``
    channels (or none) kept: the largest ``magnitude`` ones.

    The count rounds up to the next multiple when the unit has that many
    channels (dead channels of the largest magnitude come back), else down;
    a unit with no live channel stays empty.

    Example:
        >>> live = torch.tensor([True] * 5 + [False] * 7)
        >>> mag = torch.arange(12.).flip(0)  # channel 0 is the largest
        >>> round_live_channels(live, mag, 4).nonzero().flatten().tolist()
        [0, 1, 2, 3, 4, 5, 6, 7]
        >>> round_live_channels(torch.ones(6, dtype=torch.bool), mag[:6],
        ...                     4).sum().item()
        4
    """
    if divisor < 1:
        raise ValueError(f'channel divisor {divisor} must be >= 1')
    count, channels = int(live.sum()), live.numel()
    if divisor == 1 or count == 0 or count % divisor == 0:
        return live
    up = -(-count // divisor) * divisor
    target = up if up <= channels else count // divisor * divisor
    if target == 0:
        return torch.zeros_like(live)
    # Live channels first, then by magnitude: rounding up revives the
    # strongest dead ones, rounding down drops the weakest live ones.
    order = torch.argsort(magnitude.float() + live.float() * (
        magnitude.abs().max() + 1), descending=True)
    out = torch.zeros_like(live)
    out[order[:target]] = True
    return out
