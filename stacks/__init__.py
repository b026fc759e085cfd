"""Composition of the example shadow-test app."""

from .config import ShadowTestConfig
from .shadow_test_stack import ShadowTestStack

__all__ = ["ShadowTestConfig", "ShadowTestStack"]
