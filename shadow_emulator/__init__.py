"""Local AWS emulation for shadow-constructs' tests and demo: test doubles only, never deployed.

Nothing in ``shadow_constructs`` imports this package.
"""

from .sagemaker import SageMakerDouble, validate_request

__all__ = ["SageMakerDouble", "validate_request"]
