"""Reading a synthesized cloud assembly (``cdk.out``): the template ``cdk deploy`` would deploy.

``manifest.json`` lists artifacts; a stack is an artifact of type ``aws:cloudformation:stack`` whose
``properties.templateFile`` names its template, deployed under ``properties.stackName`` (default:
the artifact id) in ``environment`` (``aws://account/region``). Stages (``cdk.Stage``, CDK
Pipelines) are nested assemblies (``cdk:cloud-assembly``, ``properties.directoryName``), searched too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .aws import CliError

STACK_TYPE, NESTED_TYPE = "aws:cloudformation:stack", "cdk:cloud-assembly"


@dataclass
class SynthesizedStack:
    artifact_id: str
    stack_name: str
    display_name: str
    template_path: Path
    #: The environment's region, or None when the stack is environment-agnostic.
    region: str | None

    def template(self) -> dict[str, Any]:
        return _json_object(self.template_path, f"the template of {self.display_name}", "a JSON object")


def _json_object(path: Path, what: str, kind: str, missing: str | None = None) -> dict[str, Any]:
    """A JSON object read from ``path``; a one-line CliError naming ``what`` otherwise."""
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise CliError(missing or f"cannot read {what}: {path} not found") from None
    except OSError as error:
        raise CliError(f"cannot read {what}: {error}") from None
    except ValueError as error:
        raise CliError(f"{what} ({path}) is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise CliError(f"{what} ({path}) is not {kind}")
    return value


def _manifest(directory: Path) -> dict[str, Any]:
    path = directory / "manifest.json"
    return _json_object(path, f"the manifest of {directory}", "a cloud assembly manifest",
                        missing=f"no cloud assembly at {directory} ({path.name} not found): run `cdk synth` first, "
                                f"or pass its output folder with --app")


def _region(environment: Any) -> str | None:
    if isinstance(environment, str) and environment.startswith("aws://"):
        parts = environment[len("aws://"):].split("/")
        if len(parts) == 2 and parts[1] and parts[1] != "unknown-region":
            return parts[1]
    return None


def stacks_in(directory: Path, depth: int = 0) -> list[SynthesizedStack]:
    """Every stack of the assembly at ``directory`` and of its nested assemblies."""
    found: list[SynthesizedStack] = []
    for artifact_id, artifact in (_manifest(directory).get("artifacts") or {}).items():
        if not isinstance(artifact, dict):
            continue
        properties = artifact.get("properties") or {}
        if artifact.get("type") == STACK_TYPE and properties.get("templateFile"):
            found.append(SynthesizedStack(
                artifact_id=artifact_id, stack_name=properties.get("stackName") or artifact_id,
                display_name=artifact.get("displayName") or artifact_id,
                template_path=directory / properties["templateFile"], region=_region(artifact.get("environment"))))
        elif artifact.get("type") == NESTED_TYPE and properties.get("directoryName") and depth < 8:
            nested = directory / properties["directoryName"]
            if (nested / "manifest.json").is_file():
                found.extend(stacks_in(nested, depth + 1))
    return found


def find_stack(directory: Path, name: str) -> SynthesizedStack:
    """The assembly's stack deployed as, or displayed as, ``name`` (CliError, exit 2, if none or several)."""
    if not directory.is_dir():
        raise CliError(f"no cloud assembly at {directory} (not a folder): run `cdk synth` first, "
                       f"or pass its output folder with --app")
    stacks = stacks_in(directory)
    matches = [s for s in stacks if name in (s.stack_name, s.display_name)]
    if not matches:
        listed = ", ".join(sorted({s.display_name for s in stacks})) or "none"
        raise CliError(f"stack {name} is not in the cloud assembly {directory} (its stacks: {listed})")
    if len(matches) > 1:
        listed = ", ".join(f"{s.display_name} ({s.region or 'any region'})" for s in matches)
        raise CliError(f"{len(matches)} stacks of {directory} are named {name}: {listed}; pass the display name")
    return matches[0]
