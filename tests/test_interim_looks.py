"""Interim looks in the synthesized workflow (issue 14): the self-ending execution's look loop and its settings.

The loop's behaviour is executed in test_workflow_execution.py; its schedule in test_looks.py."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from conftest import policy_statements, template_of
from test_promotion_workflow import definition
from test_test_end import workflow_stack

from shadow_constructs import ConfigError


@pytest.fixture(scope="module")
def template() -> assertions.Template:
    return template_of(workflow_stack(duration=cdk.Duration.days(2), criteria={"min_minutes": 30}))


def test_the_self_ending_execution_plans_waits_for_and_judges_each_look(template):
    states = definition(template)["States"]
    entry = states["WaitForTestEnd?"]["Choices"][0]
    assert entry["Next"] == "StartLooks" and {c["Variable"] for c in entry["And"]} == {"$.test_start", "$.test_end"}
    plan = states["PlanLook"]["Parameters"]
    assert plan["look_seconds"] == 3600 and plan["min_minutes"] == 30  # the default interval, the criteria's minimum
    assert plan["now.$"] == "$$.State.EnteredTime" and plan["after.$"] == "$.look.number"
    assert states["PlanLook"]["Next"] == "WaitForNextLook"
    assert states["WaitForNextLook"] == {"Type": "Wait", "TimestampPath": "$.look.at", "Next": "LookWindow"}
    window = states["LookWindow"]["Parameters"]
    assert (window["minutes.$"], window["end.$"], window["look.$"]) == ("$.look.minutes", "$.look.at", "$.look")
    assert states["LookWindow"]["Next"] == "GatherMetrics"
    # After the judge: an undecided interim look goes back to planning; anything else is published and acted on.
    interim = states["InterimLook?"]
    assert states["Judge"]["Next"] == "InterimLook?" and interim["Default"] == "PublishVerdict"
    assert interim["Choices"][0]["Next"] == "PlanLook"
    assert {c.get("StringEquals") for c in interim["Choices"][0]["And"]} >= {"INCONCLUSIVE"}
    assert states["Judge"]["Parameters"]["run.$"] == "$.run"


def test_the_look_planner_is_a_function_with_no_permissions_but_its_logs(template):
    functions = template.find_resources("AWS::Lambda::Function")
    planner = next(r for r in functions.values() if r["Properties"]["Handler"] == "shadow_runtime.looks.plan_look")
    role = planner["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = policy_statements(template, role[:-8] + "DefaultPolicy")  # the id less its hash
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert statements and actions <= {"logs:CreateLogStream", "logs:PutLogEvents"}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"look_interval": cdk.Duration.minutes(5)}, r"look_interval must be between 10 minutes and 30 days, got 5 minutes"),
    ({"look_interval": cdk.Duration.hours(3), "duration": cdk.Duration.hours(2)},
     r"look_interval \(10800 s\) must not be longer than the test's duration \(7200 s\)"),
    ({"look_interval": cdk.Duration.minutes(10), "duration": cdk.Duration.days(30)},
     r"makes 4320 looks; an execution's history holds at most 900 .* at least 2880 s"),
    ({"look_interval": cdk.Duration.hours(1), "ends_itself": False}, r"look_interval \(.*\) applies to a test that ends"),
    ({"look_interval": "1h"}, r"look_interval must be an aws_cdk.Duration, got '1h'"),
])
def test_bad_look_intervals_are_refused_at_synth(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        workflow_stack(**kwargs)


def test_frequent_looks_within_the_history_limit_are_allowed():
    stack = workflow_stack(look_interval=cdk.Duration.minutes(12), duration=cdk.Duration.days(7))  # 840 looks
    plan = definition(template_of(stack))["States"]["PlanLook"]["Parameters"]
    assert plan["look_seconds"] == 720



def test_the_states_the_timer_may_stop_in_are_states_of_the_workflow(template):
    """lifecycle.still_waiting names them; a renamed state would silently stop the cancelling of a pending test."""
    from shadow_runtime import looks

    names = set(definition(template)["States"])
    assert looks.STOPPABLE_STATES - names == {"MeasureAgreement"}  # only with capture_analytics: test_live_agreement
