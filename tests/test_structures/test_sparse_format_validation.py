"""ticket_sparse.pth is checked fully before a tensor is built (issue 21,
probe 4): nothing wraps, overwrites, truncates or allocates silently."""
import os

import pytest
import torch

from mmsupertickets.structures.sparse_format import (
    MAX_EXPANSION,
    SparseFormatError,
    load_sparse_state_dict,
    save_sparse_state_dict,
    sparse_state_dict,
)


def _state():
    w = torch.arange(1., 13.).view(3, 4)
    keep = torch.zeros(3, 4, dtype=torch.bool)
    keep.view(-1)[[1, 5, 6, 11]] = True
    return {'w': w * keep, 'b': torch.ones(3)}, {'w': keep}


def _write(tmp_path, edit):
    state, masks = _state()
    obj = sparse_state_dict(state, masks)
    edit(obj)
    path = str(tmp_path / 'ticket_sparse.pth')
    torch.save(obj, path)
    return path


def _entry(key, value):
    def edit(obj):
        obj['sparse']['w'][key] = value
    return edit


@pytest.mark.parametrize('edit,problem', [
    (_entry('indices', torch.tensor([-1, 5, 6, 11], dtype=torch.int32)),
     r'index -1 is outside \[0, 12\)'),
    (_entry('indices', torch.tensor([1, 5, 6, 12], dtype=torch.int32)),
     r'index 12 is outside \[0, 12\)'),
    (_entry('indices', torch.tensor([1, 5, 5, 11], dtype=torch.int32)),
     'strictly increasing'),
    (_entry('indices', torch.tensor([1, 6, 5, 11], dtype=torch.int32)),
     'strictly increasing'),
    (_entry('indices', torch.tensor([1., 5.5, 6., 11.])),
     'int32 or int64 tensor, got torch.float32'),
    (_entry('values', torch.tensor([2, 6, 7, 12])),
     'floating-point tensor, got torch.int64'),
    (_entry('values', torch.ones(3)), '3 values for 4 indices'),
    (_entry('values', torch.ones(2, 2)), 'of shape \\(2, 2\\)'),
    (_entry('shape', [3, -4]), 'non-negative ints'),
    (_entry('shape', [3.0, 4]), 'non-negative ints'),
    (_entry('shape', [2, 4]), r'index 11 is outside \[0, 8\)'),
    (lambda obj: obj['order'].remove('w'), 'stored but not in order'),
    (lambda obj: obj['order'].append('w'), 'listed twice'),
    (lambda obj: obj['order'].append('x'), 'in order but stored nowhere'),
    (lambda obj: obj['dense'].update(w=torch.ones(3, 4)),
     'both dense and sparse'),
])
def test_a_bad_sparse_file_is_refused_naming_file_and_tensor(
        tmp_path, edit, problem):
    path = _write(tmp_path, edit)
    with pytest.raises(SparseFormatError, match=problem) as info:
        load_sparse_state_dict(path)
    message = str(info.value)
    assert path in message
    # ... and the tensor: 'x' is the name only the order list holds.
    assert "'w'" in message or "'x'" in message, message


def test_a_small_file_cannot_allocate_a_huge_tensor(tmp_path):
    """A shape 1e9 elements wide from a file of a few KB is refused before
    anything is allocated; the bound is MAX_EXPANSION x the file size."""
    path = _write(tmp_path, _entry('shape', [10**9]))
    size = os.path.getsize(path)
    with pytest.raises(SparseFormatError, match=f'{MAX_EXPANSION}x') as info:
        load_sparse_state_dict(path)
    assert f'{size:,} bytes stored' in str(info.value)
    assert "tensor 'w'" in str(info.value)


def test_shapes_of_the_model_are_checked_when_given(tmp_path):
    path = str(tmp_path / 'ticket_sparse.pth')
    state, masks = _state()
    save_sparse_state_dict(state, masks, path)
    ok = load_sparse_state_dict(path, shapes={'w': (3, 4), 'b': (3, )})
    assert torch.equal(ok['w'], state['w']) and list(ok) == ['w', 'b']
    with pytest.raises(SparseFormatError, match=r"'w': shape \[3, 4\] "
                       r"differs from the model's \[4, 3\]"):
        load_sparse_state_dict(path, shapes={'w': (4, 3), 'b': (3, )})
    with pytest.raises(SparseFormatError, match="'c': in the model but "
                       'missing from the file'):
        load_sparse_state_dict(path, shapes={'w': (3, 4), 'b': (3, ),
                                             'c': (1, )})
    with pytest.raises(SparseFormatError, match="'b': not a tensor of "
                       'the model'):
        load_sparse_state_dict(path, shapes={'w': (3, 4)})
