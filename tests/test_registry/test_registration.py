"""mmsupertickets modules are visible by plain type from every codebase."""
import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import init_default_scope

import mmsupertickets  # noqa: F401  (registers the modules)
from mmsupertickets.models import (
    HRNASClsNeck,
    HRNASFusionNeck,
    HRNASSegHead,
    SuperTicketHRNet,
)

SCOPES = ('mmseg', 'mmpose', 'mmpretrain')

# Smallest arguments that build each module.
MODULE_CFGS = {
    'SuperTicketHRNet': (SuperTicketHRNet, dict(type='SuperTicketHRNet')),
    'HRNASSegHead': (HRNASSegHead,
                     dict(type='HRNASSegHead', channels=90, num_classes=19)),
    'HRNASFusionNeck': (HRNASFusionNeck,
                        dict(type='HRNASFusionNeck', out_channels=90)),
    'HRNASClsNeck': (HRNASClsNeck, dict(type='HRNASClsNeck')),
}


def test_registered_in_root_registry():
    for name, (cls, _) in MODULE_CFGS.items():
        assert ROOT_MODELS.get(name) is cls, name


@pytest.mark.parametrize('scope', SCOPES)
@pytest.mark.parametrize('name', sorted(MODULE_CFGS))
def test_build_from_downstream_scope(scope, name):
    init_default_scope(scope)
    registry = importlib.import_module(f'{scope}.registry').MODELS
    cls, cfg = MODULE_CFGS[name]
    # The downstream registry finds the module through its root parent.
    assert registry.get(name) is cls
    assert isinstance(registry.build(dict(cfg)), cls)


def test_custom_imports_in_a_fresh_process(tmp_path):
    """A config's custom_imports alone registers the modules."""
    config = tmp_path / 'cfg.py'
    config.write_text(textwrap.dedent("""\
        default_scope = 'mmseg'
        custom_imports = dict(imports=['mmsupertickets'],
                              allow_failed_imports=False)
        model = dict(type='HRNASSegHead', channels=90, num_classes=19)
        """))
    script = textwrap.dedent(f"""\
        import sys
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        assert 'mmsupertickets' not in sys.modules
        cfg = Config.fromfile({str(config)!r})
        assert 'mmsupertickets' in sys.modules
        init_default_scope(cfg.default_scope)
        from mmseg.registry import MODELS
        print(type(MODELS.build(cfg.model)).__name__)
        """)
    result = subprocess.run([sys.executable, '-c', script],
                            capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == 'HRNASSegHead'
