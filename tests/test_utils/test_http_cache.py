"""http(s) checkpoints are cached by their whole URL and checked against the
hash their file name carries (#21.7)."""
import hashlib
import os

import pytest
import torch
from fixture_runs import served_folder
from mmengine.runner.checkpoint import CheckpointLoader

from mmsupertickets.utils.checkpoint_io import (
    CheckpointLoadError,
    local_checkpoint_path,
    safe_checkpoint_loading,
)


@pytest.fixture
def served(tmp_path, monkeypatch):
    with served_folder(tmp_path, monkeypatch) as www_and_url:
        yield www_and_url


def put(www, name, value):
    path = www / name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({'state_dict': {'w': torch.full((3, ), float(value))}}, path)
    return path


def weight(checkpoint):
    return checkpoint['state_dict']['w'][0].item()


def test_two_urls_with_one_file_name_are_two_files(served):
    www, url = served
    put(www, 'a/tiny.pth', 1)
    put(www, 'b/tiny.pth', 2)
    with safe_checkpoint_loading():
        first = CheckpointLoader.load_checkpoint(f'{url}/a/tiny.pth')
        second = CheckpointLoader.load_checkpoint(f'{url}/b/tiny.pth')
        again = CheckpointLoader.load_checkpoint(f'{url}/a/tiny.pth')
    assert (weight(first), weight(second), weight(again)) == (1, 2, 1)
    # Each URL downloaded once into a folder of its own.
    cached = local_checkpoint_path(f'{url}/b/tiny.pth')
    assert os.path.basename(cached) == 'tiny.pth'
    assert cached != local_checkpoint_path(f'{url}/a/tiny.pth')


def test_the_hash_in_the_file_name_is_checked(served):
    www, url = served
    path = put(www, 'tmp.pth', 3)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    os.rename(path, www / f'tiny-{digest[:8]}.pth')
    (www / 'tiny-deadbeef.pth').write_bytes((www / f'tiny-{digest[:8]}.pth')
                                            .read_bytes())
    with safe_checkpoint_loading():
        good = CheckpointLoader.load_checkpoint(
            f'{url}/tiny-{digest[:8]}.pth')
        assert weight(good) == 3
        with pytest.raises(CheckpointLoadError,
                           match='sha256 prefix .deadbeef.') as info:
            CheckpointLoader.load_checkpoint(f'{url}/tiny-deadbeef.pth')
    assert f'{url}/tiny-deadbeef.pth' in str(info.value)
    cache = torch.hub.get_dir()
    names = [n for _, _, files in os.walk(cache) for n in files]
    assert names == [f'tiny-{digest[:8]}.pth']  # nothing else was kept


def test_download_failure_and_remote_storage_name_the_url(served):
    _, url = served
    with pytest.raises(CheckpointLoadError, match='download failed') as info:
        local_checkpoint_path(f'{url}/missing.pth')
    assert f'{url}/missing.pth' in str(info.value)
    for remote in ('s3://bucket/x.pth', 'petrel://b/x.pth',
                   'pavi://model/x.pth'):
        with pytest.raises(CheckpointLoadError, match='copy the file'):
            local_checkpoint_path(remote)
        with safe_checkpoint_loading():
            with pytest.raises(CheckpointLoadError, match='copy the file'):
                CheckpointLoader.load_checkpoint(remote)
