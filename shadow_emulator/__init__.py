"""Local AWS emulation for shadow-constructs' tests and demo: test doubles only, never deployed.

Nothing in ``shadow_constructs`` imports this package. Its names load on first use (PEP 562): importing the
package, or a light module of it such as ``shadow_emulator.ports``, does not load moto.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {"AthenaDouble": "athena", "CloudFormationDouble": "cloudformation", "CloudWatchDouble": "cloudwatch",
          "DefinitionParseCache": "stepfunctions", "EmulatorClock": "clock", "EndpointRuntimeDouble": "runtime",
          "LambdaDouble": "lambdas", "SageMakerDouble": "sagemaker", "StepFunctionsDouble": "stepfunctions",
          "WaitStateDouble": "stepfunctions", "validate_request": "sagemaker"}

__all__ = ["AthenaDouble", "CloudFormationDouble", "CloudWatchDouble", "DefinitionParseCache", "EmulatorClock",
           "EndpointRuntimeDouble", "LambdaDouble", "SageMakerDouble", "StepFunctionsDouble", "WaitStateDouble", "validate_request"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from .athena import AthenaDouble
    from .clock import EmulatorClock
    from .cloudformation import CloudFormationDouble
    from .cloudwatch import CloudWatchDouble
    from .lambdas import LambdaDouble
    from .runtime import EndpointRuntimeDouble
    from .sagemaker import SageMakerDouble, validate_request
    from .stepfunctions import DefinitionParseCache, StepFunctionsDouble, WaitStateDouble
