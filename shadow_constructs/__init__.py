"""shadow-constructs: AWS CDK constructs for shadow-testing SageMaker models."""

from .alarms import ShadowAlarms
from .capture import CaptureLocation, CaptureStore, DataCapture
from .capture_analytics import CaptureAnalytics
from .dashboard import ShadowDashboard
from .deployment import CapacitySize, DeploymentGuardrails, TrafficRouting
from .endpoint import IShadowEndpoint, ShadowEndpoint, ShadowEndpointBase
from .errors import ConfigError
from .managed_test import ExperimentOutcome, ManagedShadowTest
from .metric_factory import VERDICT_SERIES, ShadowMetricFactory
from .metrics import ENDPOINT_METRICS, EndpointMetric
from .model import ModelData, ModelImage, ServingModel
from .phase import InstanceSettings, TestPhase
from .promotion_workflow import Criteria, InconclusiveAction, PromotionWorkflow
from .shadow_testing import ShadowTest
from .variant import RoutingStrategy, Variant, VariantAutoscaling

__all__ = [
    "ENDPOINT_METRICS",
    "VERDICT_SERIES",
    "ExperimentOutcome",
    "ManagedShadowTest",
    "ShadowAlarms",
    "ShadowDashboard",
    "ShadowMetricFactory",
    "CapacitySize",
    "CaptureAnalytics",
    "CaptureLocation",
    "CaptureStore",
    "ConfigError",
    "Criteria",
    "DataCapture",
    "DeploymentGuardrails",
    "EndpointMetric",
    "IShadowEndpoint",
    "InconclusiveAction",
    "InstanceSettings",
    "PromotionWorkflow",
    "ModelData",
    "ModelImage",
    "RoutingStrategy",
    "ServingModel",
    "ShadowEndpoint",
    "ShadowEndpointBase",
    "ShadowTest",
    "TestPhase",
    "TrafficRouting",
    "Variant",
    "VariantAutoscaling",
]
