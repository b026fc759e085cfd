"""ShadowVerdictStep: a CDK pipelines step that fails the pipeline unless the shadow was promoted."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as cpactions
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import pipelines
from constructs import Construct

from ._nag import acknowledge_wildcard_resource
from .errors import Problems, shown
from .promotion_workflow import PromotionWorkflow

#: The longest test a verdict step can follow: CodePipeline's 7-day limit for the action, less a day for
#: judging, an approval and the endpoint update.
MAX_FOLLOWED_SECONDS = 6 * 86400


@jsii.implements(pipelines.ICodePipelineActionFactory)
class ShadowVerdictStep(pipelines.Step):
    """Runs a stage's ``PromotionWorkflow`` from a CDK pipeline and fails the pipeline unless the shadow was promoted.

    Give it as ``post`` of the stage that deploys the shadow (or of a wave holding that stage)::

        pipeline.add_stage(shadow_stage, post=[ShadowVerdictStep("Verdict", stage=shadow_stage)])
        pipeline.add_stage(promoted_stage)   # runs only when the verdict step succeeded

    The step is CodePipeline's own Step Functions invoke action (category Invoke, provider
    StepFunctions): it starts the workflow's state machine with ``PromotionWorkflow.PIPELINE_INPUT``
    (follow the test's own execution, or judge now; end FAILED unless the shadow was promoted) and
    succeeds or fails with that execution. No CodeBuild project, no polling script.

    The pipeline's stack cannot reference resources of a stage's stacks, so the state machine is
    addressed by its ARN, built from the workflow's literal ``state_machine_name`` and the account
    and region of the workflow's stack (the pipeline stack's own when that stack is
    environment-agnostic: CDK pipelines deploys it there). The action's role may start executions
    of that one state machine and describe it, and describe its executions
    (``execution:<name>:*``); nothing else.

    CodePipeline waits at most 7 days for a Step Functions invoke action (its quotas page): a test
    that ends itself later than that after its deploy (the workflow's ``duration``, plus judging and
    the endpoint update) fails the step by timeout, so the step refuses a workflow whose ``duration``
    is longer than 6 days.

    :param id: the step's identifier, also the action's name in the pipeline stage.
    :param stage: the ``cdk.Stage`` whose workflow to run: the stage given to ``add_stage``.
    :param workflow: the ``PromotionWorkflow`` to run. Default: the one PromotionWorkflow among the
        stage's stacks (an error when there is none, or more than one).
    """

    def __init__(self, id: str, *, stage: cdk.Stage, workflow: PromotionWorkflow | None = None) -> None:
        super().__init__(id)
        problems = Problems(f"ShadowVerdictStep {id!r}")
        if not isinstance(stage, cdk.Stage):
            problems.add(f"stage must be an aws_cdk.Stage, got {shown(stage)}")
        elif workflow is not None and not isinstance(workflow, PromotionWorkflow):
            problems.add(f"workflow must be a PromotionWorkflow, got {shown(workflow)}")
        elif workflow is not None and not _in_stage(workflow, stage):
            owner = cdk.Stage.of(workflow)
            problems.add(f"workflow {workflow.node.path!r} is not inside stage {_path(stage)}; it is in "
                         f"{'stage ' + _path(owner) if owner is not None else 'no stage'}")
        elif workflow is None:
            found = [c for c in stage.node.find_all() if isinstance(c, PromotionWorkflow) and _in_stage(c, stage)]
            if not found:
                stacks = [c.node.path for c in stage.node.children if isinstance(c, cdk.Stack)]
                problems.add(f"stage {_path(stage)} holds no PromotionWorkflow to run; found stacks "
                             f"{stacks or 'none'}")
            elif len(found) > 1:
                problems.add(f"stage {_path(stage)} holds {len(found)} PromotionWorkflows "
                             f"{[c.node.path for c in found]}: give workflow= to choose one")
            else:
                workflow = found[0]
        problems.raise_if_any()
        assert workflow is not None, "no workflow added a problem"
        name = workflow.state_machine_name
        if not isinstance(name, str) or cdk.Token.is_unresolved(name):
            problems.add(f"the state machine of workflow {workflow.node.path!r} must have a literal name, "
                         f"got {'a token' if isinstance(name, str) else shown(name)}")
            problems.raise_if_any()
        if workflow.ends_itself and workflow.duration.to_seconds() > MAX_FOLLOWED_SECONDS:
            problems.add(f"workflow {workflow.node.path!r} ends its test {workflow.duration.to_human_string()} after "
                         "the deploy, but CodePipeline waits at most 7 days for a Step Functions action (judging and "
                         "the endpoint update included): give it duration=cdk.Duration.days(6) or less (ShadowTest and "
                         "PromotionWorkflow take it)")
            problems.raise_if_any()
        #: The ``cdk.Stage`` whose workflow the step runs.
        self.stage = stage
        #: The ``PromotionWorkflow`` the step runs.
        self.workflow = workflow
        #: The physical name of the workflow's state machine.
        self.state_machine_name = name

    def state_machine_arn(self, scope: Construct) -> str:
        """The ARN of the workflow's state machine as written in the stack of ``scope`` (the pipeline's)."""
        return self._arn(scope, "stateMachine", self.state_machine_name)

    def produce_action(self, stage: codepipeline.IStage, *, action_name: str, run_order: jsii.Number,
                       scope: Construct, **_: Any) -> pipelines.CodePipelineActionFactoryResult:
        """Add the Step Functions invoke action to the pipeline stage (CDK pipelines calls this)."""
        state_machine = sfn.StateMachine.from_state_machine_arn(scope, f"{action_name}StateMachine",
                                                               self.state_machine_arn(scope))
        stage.add_action(_VerdictAction(
            executions=self._arn(scope, "execution", f"{self.state_machine_name}:*"),
            action_name=action_name, run_order=run_order, state_machine=state_machine,
            state_machine_input=cpactions.StateMachineInput.literal(dict(PromotionWorkflow.PIPELINE_INPUT))))
        return pipelines.CodePipelineActionFactoryResult(run_orders_consumed=1)

    def _arn(self, scope: Construct, resource: str, name: str) -> str:
        """An ARN in the workflow's account and region (the pipeline's when the workflow's stack has none)."""
        here, there = cdk.Stack.of(scope), cdk.Stack.of(self.workflow)
        account = here.account if cdk.Token.is_unresolved(there.account) else there.account
        region = here.region if cdk.Token.is_unresolved(there.region) else there.region
        return here.format_arn(service="states", account=account, region=region, resource=resource, resource_name=name,
                               arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)


class _VerdictAction(cpactions.StepFunctionInvokeAction):
    """The invoke action, acknowledging its one wildcard on whichever role CodePipeline gives it (a role under
    the action in the pipeline stack, or one in a support stack when the workflow is in another account)."""

    def __init__(self, *, executions: str, **props: Any) -> None:
        super().__init__(**props)
        self._executions = executions

    def _bound(self, scope: Construct, stage: codepipeline.IStage, *, bucket: Any, role: Any) -> Any:
        config = super()._bound(scope, stage, bucket=bucket, role=role)
        acknowledge_wildcard_resource(role, self._executions, "DescribeExecution on the executions of the one "
                                      "workflow state machine; CodePipeline names each execution at run time.")
        return config


def _in_stage(construct: Construct, stage: cdk.Stage) -> bool:
    """Whether ``construct`` is deployed by ``stage`` itself (not by a stage nested in it, nor elsewhere)."""
    owner = cdk.Stage.of(construct)
    return owner is not None and owner.node.path == stage.node.path and owner.node.root is stage.node.root


def _path(stage: cdk.Stage) -> str:
    return repr(stage.node.path) if stage.node.path else "(the app)"


__all__ = ["ShadowVerdictStep"]
