"""A test double for one moto gap: state machines created by CloudFormation cannot be executed.

With ``execute_state_machine`` on, moto's Step Functions API uses its ASL-interpreting backend,
but its CloudFormation support still creates state machines in the plain backend: a stack deploys
(CREATE_COMPLETE, an ARN) yet ListStateMachines / StartExecution do not see the machine. While
installed, ``StepFunctionsDouble`` creates and deletes them in whichever backend the API uses.
"""

from __future__ import annotations

from typing import Any

from moto.stepfunctions import models as sfn_models
from moto.stepfunctions.responses import get_backend
from moto.stepfunctions.utils import cfn_to_api_tags


class StepFunctionsDouble:
    def __init__(self) -> None:
        self._saved: dict[str, Any] = {}

    def install(self) -> StepFunctionsDouble:
        machine = sfn_models.StateMachine
        self._saved = {"create": machine.__dict__["create_from_cloudformation_json"],
                       "delete": machine.__dict__["delete_from_cloudformation_json"]}

        def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            properties = cloudformation_json["Properties"]
            tags = cfn_to_api_tags(properties.get("Tags", []))
            return get_backend(account_id, region_name).create_state_machine(
                properties.get("StateMachineName", resource_name), properties.get("DefinitionString", ""),
                properties.get("RoleArn", ""), tags=tags)

        def delete(cls, resource_name, cloudformation_json, account_id, region_name):
            get_backend(account_id, region_name).delete_state_machine(resource_name)

        machine.create_from_cloudformation_json = classmethod(create)
        machine.delete_from_cloudformation_json = classmethod(delete)
        return self

    def uninstall(self) -> None:
        if self._saved:
            sfn_models.StateMachine.create_from_cloudformation_json = self._saved.pop("create")
            sfn_models.StateMachine.delete_from_cloudformation_json = self._saved.pop("delete")

    def __enter__(self) -> StepFunctionsDouble:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()
