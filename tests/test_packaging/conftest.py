import pytest
from wheel_builds import build_dists


@pytest.fixture(scope='session')
def dist_dir(tmp_path_factory):
    """The sdist and wheel of the working tree, built once per session."""
    return build_dists(tmp_path_factory.mktemp('src') / 'mmsupertickets',
                       tmp_path_factory.mktemp('dist'))
