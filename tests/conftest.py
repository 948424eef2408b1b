import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))


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
