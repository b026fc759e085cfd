"""Composition of the example shadow-test app."""

from .config import ManagedTestConfig, ShadowTestConfig
from .managed_test_stack import ManagedShadowTestStack
from .shadow_test_stack import ShadowTestStack

__all__ = ["ManagedShadowTestStack", "ManagedTestConfig", "ShadowTestConfig", "ShadowTestStack"]
