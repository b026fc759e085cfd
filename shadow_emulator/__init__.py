"""Local AWS emulation for shadow-constructs' tests and demo: test doubles only, never deployed.

Nothing in ``shadow_constructs`` imports this package.
"""

from .athena import AthenaDouble
from .clock import EmulatorClock
from .cloudformation import CloudFormationDouble
from .cloudwatch import CloudWatchDouble
from .lambdas import LambdaDouble
from .runtime import EndpointRuntimeDouble
from .sagemaker import SageMakerDouble, validate_request
from .stepfunctions import DefinitionParseCache, StepFunctionsDouble, WaitStateDouble

__all__ = ["AthenaDouble", "CloudFormationDouble", "CloudWatchDouble", "DefinitionParseCache", "EmulatorClock",
           "EndpointRuntimeDouble", "LambdaDouble", "SageMakerDouble", "StepFunctionsDouble", "WaitStateDouble", "validate_request"]
