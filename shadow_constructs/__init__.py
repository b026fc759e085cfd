"""shadow-constructs: AWS CDK constructs for shadow-testing SageMaker models."""

from .capture import CaptureStore, DataCapture
from .deployment import CapacitySize, DeploymentGuardrails, TrafficRouting
from .endpoint import IShadowEndpoint, ShadowEndpoint, ShadowEndpointBase
from .errors import ConfigError
from .metrics import ENDPOINT_METRICS, EndpointMetric
from .model import ModelData, ModelImage, ServingModel
from .variant import RoutingStrategy, Variant, VariantAutoscaling

__all__ = [
    "ENDPOINT_METRICS",
    "CapacitySize",
    "CaptureStore",
    "ConfigError",
    "DataCapture",
    "DeploymentGuardrails",
    "EndpointMetric",
    "IShadowEndpoint",
    "ModelData",
    "ModelImage",
    "RoutingStrategy",
    "ServingModel",
    "ShadowEndpoint",
    "ShadowEndpointBase",
    "TrafficRouting",
    "Variant",
    "VariantAutoscaling",
]
