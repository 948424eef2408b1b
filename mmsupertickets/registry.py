"""Registries used by mmsupertickets.

Modules are registered into mmengine's *root* registries. Every downstream
registry (``mmseg``, ``mmpose``, ``mmpretrain``) has the root as its parent and
falls back to it, so one registration makes a module visible from all three
default scopes by its plain type name.
"""
from mmengine.registry import HOOKS, MODEL_WRAPPERS, MODELS

__all__ = ['MODELS', 'HOOKS', 'MODEL_WRAPPERS']
