"""The one reader of the project's JSON files: duplicate keys refused.

``json.load`` keeps the last of two equal keys without a word, so an
``arch.json`` holding a unit twice would build whichever width came last.
Every JSON file the project reads (architectures, export summaries, event
logs) goes through :func:`read_json` or :func:`parse_json`, which refuse a
duplicate key naming the file and the key.
"""
import json
import os
from typing import Any, List, Union

__all__ = ['JSONFileError', 'parse_json', 'read_json', 'read_json_lines']


class JSONFileError(ValueError):
    """A JSON file that cannot be read as the project writes them."""


def _no_duplicates(source: str):

    def hook(pairs):
        out = {}
        for key, value in pairs:
            if key in out:
                raise JSONFileError(f'{source}: key {key!r} appears twice '
                                    'in one object; which one is meant '
                                    'cannot be told')
            out[key] = value
        return out
    return hook


def parse_json(text: str, source: str = 'the JSON text') -> Any:
    """``text`` parsed, refusing duplicate keys.

    Example:
        >>> parse_json('{"a": 1}')
        {'a': 1}
        >>> parse_json('{"a": 1, "a": 2}', 'arch.json')
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        mmsupertickets.utils.json_reader.JSONFileError: arch.json: key 'a' ...
    """
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates(source))
    except JSONFileError:
        raise
    except ValueError as e:
        raise JSONFileError(f'{source} is not valid JSON: {e}') from e


def read_json(path: Union[str, os.PathLike]) -> Any:
    """The content of the JSON file ``path`` (see :func:`parse_json`).

    Raises:
        JSONFileError: the file cannot be read or parsed; names the file.
    """
    source = f'JSON file {os.fspath(path)!r}'
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise JSONFileError(f'{source} cannot be read: {e}') from e
    return parse_json(text, source)


def read_json_lines(path: Union[str, os.PathLike]) -> List[Any]:
    """Every non-empty line of the JSON-lines file ``path``, parsed."""
    source = os.fspath(path)
    try:
        with open(path, encoding='utf-8') as f:
            lines = f.readlines()
    except (OSError, UnicodeDecodeError) as e:
        raise JSONFileError(f'JSON lines file {source!r} cannot be read: '
                            f'{e}') from e
    return [parse_json(line, f'line {i} of {source!r}')
            for i, line in enumerate(lines, 1) if line.strip()]
