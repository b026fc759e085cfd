"""Print a readable plan of the shadow tests in a synthesized CDK app (cdk.out).

    shadow-plan [cdk.out]

The plan is read from the templates CloudFormation will receive, not from the Python
objects that produced them, so it shows exactly what ``cdk deploy`` would create.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shadow_runtime import looks as _looks

from .stack import MARK

HOURS_PER_DAY = 24


@dataclass
class VariantPlan:
    role: str  # "production" or "shadow"
    name: str
    instance_type: str
    instance_count: int
    weight: float
    model: str
    image: str
    model_data: str
    autoscaling: tuple[int, int] | None = None


@dataclass
class EndpointPlan:
    stack: str
    config_id: str
    endpoint_name: str
    variants: list[VariantPlan]
    capture: dict[str, Any] | None
    storage_key: str | None
    deployment: dict[str, Any] | None

    @property
    def production(self) -> list[VariantPlan]:
        return [v for v in self.variants if v.role == "production"]

    @property
    def shadow(self) -> VariantPlan | None:
        return next((v for v in self.variants if v.role == "shadow"), None)

    @property
    def sampling_percent(self) -> float | None:
        if self.shadow is None:
            return None
        return 100 * self.shadow.weight / self.production[0].weight

    def instance_hours_per_day(self) -> dict[str, tuple[int, int]]:
        """Per variant name: (hours at the initial count, hours at the autoscaling maximum)."""
        return {v.name: (v.instance_count * HOURS_PER_DAY,
                         (v.autoscaling[1] if v.autoscaling else v.instance_count) * HOURS_PER_DAY)
                for v in self.variants}


@dataclass
class ManagedTestPlan:
    name: str
    endpoint_name: str
    source_variant: str
    variants: list[VariantPlan]
    sampling_percent: int
    schedule: str
    desired_state: str
    capture: str | None


@dataclass
class StackPlan:
    name: str
    endpoints: list[EndpointPlan]
    managed_tests: list[ManagedTestPlan] = field(default_factory=list)
    workflows: list[str] = field(default_factory=list)
    analytics: list[str] = field(default_factory=list)
    resources: Counter = field(default_factory=Counter)
    resource_paths: dict[str, list[str]] = field(default_factory=dict)
    retained: list[str] = field(default_factory=list)


class _Template:
    def __init__(self, template: dict[str, Any], assets: dict[str, Any], outdir: Path) -> None:
        self.resources: dict[str, Any] = template.get("Resources", {})
        self.assets = assets
        self.outdir = outdir

    def path(self, logical_id: str) -> str:
        """A resource's construct path without the stack and the trailing /Resource."""
        path = self.resources.get(logical_id, {}).get("Metadata", {}).get("aws:cdk:path", logical_id)
        parts = path.split("/")[1:]
        if parts and parts[-1] in ("Resource", "Default"):
            parts = parts[:-1]
        return "/".join(parts) or logical_id

    def render(self, value: Any) -> str:
        """A CloudFormation value as text a person can read."""
        if isinstance(value, (str, int, float)):
            return str(value)
        if isinstance(value, dict) and len(value) == 1:
            (fn, arg), = value.items()
            if fn == "Ref":
                return f"<{arg}>" if arg.startswith("AWS::") else f"<{self.path(arg)}>"
            if fn == "Fn::GetAtt":
                return f"<{self.path(arg[0])}.{arg[1]}>"
            if fn == "Fn::Join":
                return arg[0].join(self.render(v) for v in arg[1])
            if fn == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                return re.sub(r"\$\{([^}]+)\}", lambda m: f"<{m.group(1)}>", text)
            if fn == "Fn::FindInMap":
                return f"<{arg[0]}[{self.render(arg[1])}]>"
        return json.dumps(value)

    def model_data(self, value: Any) -> str:
        text = self.render(value)
        match = re.search(r"/([0-9a-f]{64})(\.[\w.]+)?$", text)
        if match and match.group(1) in self.assets:
            packaging = self.assets[match.group(1)]["source"]
            size = (self.outdir / packaging["path"]).stat().st_size if (self.outdir / packaging["path"]).exists() else 0
            return f"local asset {match.group(1)[:12]}… ({size / 1024:.1f} KiB, uploaded by cdk deploy)"
        return text


def _variant(tpl: _Template, role: str, prop: dict[str, Any]) -> VariantPlan:
    model_ref = prop["ModelName"]
    model_id = model_ref["Fn::GetAtt"][0] if isinstance(model_ref, dict) and "Fn::GetAtt" in model_ref else None
    container = {} if model_id is None else tpl.resources.get(model_id, {}).get("Properties", {}).get("PrimaryContainer", {})
    image = tpl.render(container.get("Image", "?"))
    return VariantPlan(
        role=role, name=prop["VariantName"], instance_type=prop.get("InstanceType", "serverless"),
        instance_count=int(prop.get("InitialInstanceCount", 0)), weight=float(prop.get("InitialVariantWeight", 1.0)),
        model=tpl.path(model_id) if model_id else tpl.render(model_ref),
        image=re.sub(r"^<SageMakerXGBoostRegistries\[<AWS::Region>\]>\.dkr\.ecr\.<AWS::Region>\.<AWS::URLSuffix>/",
                     "SageMaker's ", image),
        model_data=tpl.model_data(container["ModelDataUrl"]) if "ModelDataUrl" in container else "in the image")


def plan_stack(name: str, template: dict[str, Any], assets: dict[str, Any], outdir: Path) -> StackPlan:
    tpl = _Template(template, assets, outdir)
    stack = StackPlan(name=name, endpoints=[])
    for logical_id, resource in tpl.resources.items():
        kind = resource["Type"]
        stack.resources[kind] += 1
        stack.resource_paths.setdefault(kind, []).append(tpl.path(logical_id))
        if resource.get("DeletionPolicy") == "Retain":
            stack.retained.append(f"{tpl.path(logical_id)} ({kind})")
    endpoints = {r["Properties"]["EndpointConfigName"]["Fn::GetAtt"][0]: r
                 for r in tpl.resources.values() if r["Type"] == "AWS::SageMaker::Endpoint"
                 and isinstance(r["Properties"].get("EndpointConfigName"), dict)
                 and "Fn::GetAtt" in r["Properties"]["EndpointConfigName"]}
    scaling = {}
    for r in tpl.resources.values():
        if r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget":
            variant = tpl.render(r["Properties"]["ResourceId"]).rsplit("/variant/", 1)[-1]
            scaling[variant] = (int(r["Properties"]["MinCapacity"]), int(r["Properties"]["MaxCapacity"]))
    for logical_id, resource in tpl.resources.items():
        if resource["Type"] != "AWS::SageMaker::EndpointConfig":
            continue
        props = resource["Properties"]
        variants = [_variant(tpl, "production", p) for p in props.get("ProductionVariants", [])]
        variants += [_variant(tpl, "shadow", p) for p in props.get("ShadowProductionVariants", [])]
        for v in variants:
            v.autoscaling = scaling.get(v.name)
        capture = None
        if "DataCaptureConfig" in props:
            dc = props["DataCaptureConfig"]
            header = dc.get("CaptureContentTypeHeader", {})
            capture = {
                "destination": tpl.render(dc["DestinationS3Uri"]),
                "modes": [o["CaptureMode"] for o in dc.get("CaptureOptions", [])],
                "sampling_percent": dc.get("InitialSamplingPercentage"),
                "kms_key": tpl.render(dc["KmsKeyId"]) if "KmsKeyId" in dc else None,
                "csv": header.get("CsvContentTypes", []), "json": header.get("JsonContentTypes", []),
            }
        endpoint = endpoints.get(logical_id, {}).get("Properties", {})
        stack.endpoints.append(EndpointPlan(
            stack=name, config_id=tpl.path(logical_id),
            endpoint_name=endpoint.get("EndpointName", "generated by CloudFormation"),
            variants=variants, capture=capture,
            storage_key=tpl.render(props["KmsKeyId"]) if "KmsKeyId" in props else None,
            deployment=endpoint.get("DeploymentConfig")))
    for resource in tpl.resources.values():
        if resource["Type"] == "AWS::SageMaker::InferenceExperiment":
            stack.managed_tests.append(_managed_test(tpl, resource["Properties"]))
    schedules = [tpl.render(r["Properties"]["ScheduleExpression"]) for r in tpl.resources.values()
                 if r["Type"] == "AWS::Scheduler::Schedule"]
    timers = [int(r["Properties"]["DurationSeconds"]) for r in tpl.resources.values()
              if r["Type"] == "Custom::ShadowTestEnd"]
    for logical_id, resource in tpl.resources.items():
        if resource["Type"] == "AWS::StepFunctions::StateMachine":
            states = tpl.render(resource["Properties"].get("DefinitionString", ""))
            steps = [name for name in ("AwaitApproval", "WaitForMoreTraffic", "StopExperiment", "UpdateEndpoint",
                                       "MeasureAgreement") if name in states]
            measured = "gather metrics, measure the prediction agreement (Athena over the capture), " \
                if "MeasureAgreement" in steps else "gather metrics, "
            text = f"{tpl.path(logical_id)}: {measured}judge, report, then "
            text += "end the managed test (StopInferenceExperiment)" if "StopExperiment" in steps \
                else "update the endpoint with its guardrails"
            if "AwaitApproval" in steps:
                text += "; promotion waits for a person's approval"
            if timers:
                text += f"; the test ENDS ITSELF {_duration_text(timers[0])} after the deploy that creates it"
                text += _looks_text(states, timers[0])
                text += _cost_until_end(stack.endpoints, timers[0])
            elif schedules:
                text += f"; starts {schedules[0]}"
            else:
                text += "; never ends itself (ends_itself=False): started by you"
            text += _undecided_text("WaitForMoreTraffic" in steps, resource.get("Metadata", {}).get(MARK, {}))
            stack.workflows.append(text)
    tables = [r["Properties"] for r in tpl.resources.values() if r["Type"] == "AWS::Glue::Table"]
    queries = sorted(tpl.render(r["Properties"]["Name"]) for r in tpl.resources.values()
                     if r["Type"] == "AWS::Athena::NamedQuery")
    for logical_id, resource in tpl.resources.items():
        if resource["Type"] != "AWS::Athena::WorkGroup":
            continue
        configuration = resource["Properties"].get("WorkGroupConfiguration", {})
        text = f"{tpl.path(logical_id)} (Athena workgroup {tpl.render(resource['Properties']['Name'])})"
        for table in tables:
            table_input, parameters = table["TableInput"], table["TableInput"].get("Parameters", {})
            text += (f": table {tpl.render(table['DatabaseName'])}.{tpl.render(table_input['Name'])} over "
                     f"{tpl.render(table_input['StorageDescriptor']['Location'])}<endpoint>/<variant>/yyyy/mm/dd/hh/, "
                     f"endpoint {tpl.render(parameters.get('projection.endpoint.values', '?'))}, "
                     f"variants {tpl.render(parameters.get('projection.variant.values', '?'))}")
        if queries:
            text += f"; {len(queries)} named queries ({', '.join(queries)})"
        if "BytesScannedCutoffPerQuery" in configuration:
            text += f"; at most {configuration['BytesScannedCutoffPerQuery'] / 1024 ** 3:.1f} GiB scanned per query"
        stack.analytics.append(text)
    return stack


def _undecided_text(extends: bool, mark: dict[str, Any]) -> str:
    """What an INCONCLUSIVE verdict at the test's end does (the workflow's ``undecided`` mark)."""
    undecided = mark.get("undecided")
    first = "; INCONCLUSIVE at the end extends the test, and still INCONCLUSIVE after that" if extends \
        else "; INCONCLUSIVE at the end"
    if undecided == "remove_shadow":
        return f"{first} REMOVES THE SHADOW (production untouched): the test stops costing"
    if undecided == "keep":
        return f"{first} KEEPS THE SHADOW running, and billing, until you end it"
    return "; INCONCLUSIVE extends the test" if extends else ""


def _looks_text(definition: str, duration_seconds: int) -> str:
    """The look schedule of a self-ending test, read from its state machine's PlanLook step."""
    try:
        plan = json.loads(definition)["States"][_looks.PLAN_STATE]["Parameters"]
        look_seconds, min_minutes = int(plan["look_seconds"]), int(plan.get("min_minutes") or 0)
    except (ValueError, KeyError, TypeError):
        return " (one execution waits in WaitForTestEnd; `shadow-test status` shows when)"
    start = datetime(2000, 1, 1, tzinfo=UTC)  # any start: only the durations matter
    looks = _looks.schedule(start, start + timedelta(seconds=duration_seconds), look_seconds, min_minutes)
    count = len(looks)
    return (f"; it is judged at {count} look{'s' if count != 1 else ''}: every {_duration_text(look_seconds)} from "
            f"{_duration_text(60 * looks[0].minutes)} on and at its end, and a PROMOTE or REJECT at a look ends "
            f"it then (one execution waits in {_looks.LOOK_WAIT_STATE}; `shadow-test status` shows the next look)")


def _duration_text(seconds: int) -> str:
    hours = seconds / 3600
    if hours >= 48 and hours % 24 == 0:
        return f"{hours / 24:g} days"
    if seconds < 3600:
        return f"{seconds / 60:g} minute{'' if seconds == 60 else 's'}"
    return f"{hours:g} hour{'' if hours == 1 else 's'}"


def _cost_until_end(endpoints: list[EndpointPlan], seconds: int) -> str:
    """The instance-hours the shadow test costs from its deploy to its end (at the initial counts)."""
    tested = [ep for ep in endpoints if ep.shadow is not None]
    if not tested:
        return ""
    days = seconds / 86400
    total = sum(h[0] for ep in tested for h in ep.instance_hours_per_day().values()) * days
    shadow = sum(ep.instance_hours_per_day()[ep.shadow.name][0] for ep in tested if ep.shadow) * days
    return f"; until then it costs {total:,.0f} instance-hours ({shadow:,.0f} of them the shadow's)"


def _managed_test(tpl: _Template, props: dict[str, Any]) -> ManagedTestPlan:
    shadow_config = props.get("ShadowModeConfig", {})
    source = shadow_config.get("SourceModelVariantName", "?")
    variants = []
    for v in props.get("ModelVariants", []):
        infra = v.get("InfrastructureConfig", {}).get("RealTimeInferenceConfig", {})
        model = v["ModelName"]
        model_text = tpl.path(model["Fn::GetAtt"][0]) if isinstance(model, dict) and "Fn::GetAtt" in model \
            else tpl.render(model)
        variants.append(VariantPlan(
            role="production" if v["VariantName"] == source else "shadow", name=v["VariantName"],
            instance_type=infra.get("InstanceType", "?"), instance_count=int(infra.get("InstanceCount", 0)),
            weight=1.0, model=model_text, image="-", model_data="-"))
    schedule = props.get("Schedule")
    storage = props.get("DataStorageConfig")
    return ManagedTestPlan(
        name=tpl.render(props.get("Name", "?")), endpoint_name=tpl.render(props.get("EndpointName", "?")),
        source_variant=source, variants=variants,
        sampling_percent=next(iter(shadow_config.get("ShadowModelVariants", [])), {}).get("SamplingPercentage", 100),
        schedule=f"{schedule['StartTime']} to {schedule['EndTime']}" if schedule else "7 days from creation",
        desired_state=props.get("DesiredState", "Running"),
        capture=tpl.render(storage["Destination"]) if storage else None)


def plan_assembly(outdir: str | Path) -> list[StackPlan]:
    """Plans of every stack in a cloud assembly directory."""
    outdir = Path(outdir)
    manifest = json.loads((outdir / "manifest.json").read_text())
    plans = []
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        template = json.loads((outdir / artifact["properties"]["templateFile"]).read_text())
        assets_file = outdir / f"{artifact_id}.assets.json"
        assets = json.loads(assets_file.read_text()).get("files", {}) if assets_file.exists() else {}
        plans.append(plan_stack(artifact.get("displayName", artifact_id), template, assets, outdir))
    return plans


def _deployment_text(config: dict[str, Any] | None) -> str:
    if not config:
        return "SageMaker's default (blue/green, all at once)"
    policy = config.get("BlueGreenUpdatePolicy", {})
    routing = policy.get("TrafficRoutingConfiguration", {})
    size = routing.get("CanarySize") or routing.get("LinearStepSize")
    size_text = ""
    if size:
        size_text = f" {size['Value']}{'%' if size['Type'] == 'CAPACITY_PERCENT' else ' instance(s)'}"
    alarms = config.get("AutoRollbackConfiguration", {}).get("Alarms", [])
    text = (f"blue/green {routing.get('Type', '?')}{size_text}, wait {routing.get('WaitIntervalInSeconds', 0)} s, "
            f"old fleet kept {policy.get('TerminationWaitInSeconds', 0)} s")
    if "MaximumExecutionTimeoutInSeconds" in policy:
        text += f", timeout {policy['MaximumExecutionTimeoutInSeconds']} s"
    return text + f", {len(alarms)} auto-rollback alarm(s)"


def render_plan(plans: list[StackPlan]) -> str:
    lines: list[str] = []
    for stack in plans:
        lines.append(f"Stack {stack.name}")
        for ep in stack.endpoints:
            lines.append(f"  Endpoint {ep.endpoint_name} (config {ep.config_id})")
            for v in ep.variants:
                scale = f", autoscaling {v.autoscaling[0]}-{v.autoscaling[1]}" if v.autoscaling else ""
                lines.append(f"    {v.role:<10} variant {v.name!r}: {v.instance_count} x {v.instance_type}{scale}, "
                             f"weight {v.weight:g}")
                lines.append(f"               model {v.model}: image {v.image}")
                lines.append(f"               model data {v.model_data}")
            if ep.shadow:
                lines.append(f"    sampling   {ep.sampling_percent:g}% of production requests are copied to the "
                             f"shadow (weight {ep.shadow.weight:g} / {ep.production[0].weight:g}); "
                             "only production answers callers")
            else:
                lines.append("    sampling   no shadow variant: a plain endpoint")
            if ep.capture:
                c = ep.capture
                lines.append(f"    capture    {' + '.join(c['modes']).lower()} of {c['sampling_percent']}% of requests "
                             f"to {c['destination']}/<endpoint>/<variant>/yyyy/mm/dd/hh/")
                lines.append(f"               encrypted with {c['kms_key'] or 'the bucket default'}; "
                             f"CSV {', '.join(c['csv']) or '-'}; JSON {', '.join(c['json']) or '-'}; "
                             "other content types base64")
            else:
                lines.append("    capture    off: the shadow's responses are discarded")
            lines.append(f"    storage    {'KMS ' + ep.storage_key if ep.storage_key else 'no KMS key'}")
            lines.append(f"    updates    {_deployment_text(ep.deployment)}")
            hours = ep.instance_hours_per_day()
            low, high = sum(h[0] for h in hours.values()), sum(h[1] for h in hours.values())
            split = ", ".join(f"{name} {h[0]}" + (f"-{h[1]}" if h[1] != h[0] else "") for name, h in hours.items())
            total = f"{low}" if low == high else f"{low}-{high}"
            lines.append(f"    cost       {total} instance-hours per day ({split})")
            if ep.shadow:
                shadow_hours = hours[ep.shadow.name][0]
                lines.append(f"               the shadow adds {shadow_hours} instance-hours per day "
                             f"({100 * shadow_hours / max(low - shadow_hours, 1):.0f}% on top of production)")
        for test in stack.managed_tests:
            state = test.desired_state
            if state == "Completed":
                state += (" - production retained, shadow removed" if any(v.role == "production" for v in test.variants)
                          else " - shadow PROMOTED, production removed")
            lines.append(f"  Managed shadow test {test.name} on existing endpoint {test.endpoint_name} ({state})")
            for v in test.variants:
                lines.append(f"    {v.role:<10} variant {v.name!r}: {v.instance_count} x {v.instance_type}, model {v.model}")
            lines.append(f"    sampling   {test.sampling_percent}% of requests to variant {test.source_variant!r} "
                         "are copied to the shadow")
            lines.append(f"    schedule   {test.schedule}")
            lines.append(f"    capture    {test.capture + '/' if test.capture else 'off'}")
            shadow = next((v for v in test.variants if v.role == "shadow"), None)
            if shadow:
                lines.append(f"    cost       the shadow adds {shadow.instance_count * HOURS_PER_DAY} instance-hours per day "
                             "while the test runs")
        for workflow in stack.workflows:
            lines.append(f"  Promotion workflow {workflow}")
        for analytics in stack.analytics:
            lines.append(f"  Capture analytics {analytics}")
        total = sum(stack.resources.values())
        lines.append(f"  Will create {total} resources:")
        for kind, count in sorted(stack.resources.items()):
            names = ", ".join(stack.resource_paths[kind][:4]) + (", ..." if count > 4 else "")
            lines.append(f"    {count:>2} x {kind:<42} {names}")
        if stack.retained:
            lines.append(f"  Kept after cdk destroy: {', '.join(stack.retained)}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the shadow-test plan of a synthesized CDK app.")
    parser.add_argument("outdir", nargs="?", default="cdk.out", help="cloud assembly directory (default: cdk.out)")
    args = parser.parse_args(argv)
    if not (Path(args.outdir) / "manifest.json").exists():
        print(f"shadow-plan: no cloud assembly in {args.outdir!r}; run `cdk synth` first", file=sys.stderr)
        return 2
    plans = plan_assembly(args.outdir)
    if not any(p.endpoints or p.managed_tests for p in plans):
        print(f"shadow-plan: no SageMaker endpoint config in {args.outdir!r}", file=sys.stderr)
        return 1
    print(render_plan(plans))
    return 0


if __name__ == "__main__":
    sys.exit(main())
