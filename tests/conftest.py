import gc
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), 'utils'))


def _manager_classes(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _manager_classes(sub)


@pytest.fixture(autouse=True)
def fresh_global_instances():
    """Start each test without the runners' named global instances.

    mmengine names a runner's DefaultScope, MessageHub and Visualizer after
    its experiment, which is a timestamp to the second. Two tests building
    runners within one second would share them, so the second runner would
    build its model in the first one's registry scope.
    """
    yield
    from mmengine.utils import ManagerMixin
    for cls in _manager_classes(ManagerMixin):
        cls._instance_dict.clear()
    # Free the runners of runs that raised, so that their SuperTickets
    # scope (checkpoint loaders, work-dir lock) ends here, not in a later
    # test of the same process.
    gc.collect()


@pytest.fixture(scope='session')
def cityscapes_root(tmp_path_factory):
    from mmsupertickets.testing.cityscapes import generate_cityscapes
    root = str(tmp_path_factory.mktemp('data') / 'cityscapes')
    generate_cityscapes(root, num_train=8, num_val=2, image_size=(32, 64),
                        seed=0)
    return root


@pytest.fixture(scope='session')
def imagenet_root(tmp_path_factory):
    from mmsupertickets.testing.imagenet import generate_imagenet
    root = str(tmp_path_factory.mktemp('data') / 'imagenet')
    generate_imagenet(root, num_train=2, num_val=1, image_size=(32, 32),
                      seed=0)
    return root
