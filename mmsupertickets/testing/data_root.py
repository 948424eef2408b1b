"""Pointing a config at generated data elsewhere."""

__all__ = ['redirect_paths']


def redirect_paths(obj, old: str, new: str):
    """A copy of the config tree ``obj`` with the prefix ``old`` of every
    string replaced by ``new`` (e.g. ``'data/demo/'`` by a temp folder).

    Example:
        >>> redirect_paths({'a': ['data/demo/x', 1]}, 'data/demo/', '/t/')
        {'a': ['/t/x', 1]}
    """
    if isinstance(obj, dict):
        return {k: redirect_paths(v, old, new) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redirect_paths(v, old, new) for v in obj)
    if isinstance(obj, str) and obj.startswith(old):
        return new + obj[len(old):]
    return obj
