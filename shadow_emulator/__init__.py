"""Local AWS emulation for shadow-constructs' tests and demo: test doubles only, never deployed.

Nothing in ``shadow_constructs`` imports this package.
"""

from .athena import AthenaDouble
from .cloudwatch import CloudWatchDouble
from .lambdas import LambdaDouble
from .runtime import EndpointRuntimeDouble
from .sagemaker import SageMakerDouble, validate_request
from .stepfunctions import StepFunctionsDouble

__all__ = ["AthenaDouble", "CloudWatchDouble", "EndpointRuntimeDouble", "LambdaDouble", "SageMakerDouble", "StepFunctionsDouble",
           "validate_request"]
