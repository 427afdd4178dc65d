"""`./dev sam`: a deploy rehearsal without AWS — would the stack CloudFormation creates be the one the code expects?

The template is transformed by samtranslator (what `sam deploy` sends CloudFormation), then:
1. every `Ref`, `Fn::GetAtt`, `Fn::Sub` variable and `Fn::If` condition names a parameter, resource,
   pseudo parameter or condition that exists (so the functions' environments all resolve);
2. every queue a function's code sends to has its URL in that function's environment and an
   `sqs:SendMessage` grant in its role, and every queue it polls a receive grant;
3. every function that talks to a database or Redis secret may read it;
4. with Bedrock on, the worker may invoke exactly the given models, and the economy function may start and
   follow batch inference jobs, pass their role, and read and write its bucket's batch files.
Exits 1 naming each problem.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PSEUDO = {"AWS::Region", "AWS::AccountId", "AWS::StackName", "AWS::Partition", "AWS::NoValue", "AWS::URLSuffix",
          "AWS::StackId", "AWS::NotificationARNs"}  # fmt: skip
JOB_QUEUES = {"JobQueueHigh", "JobQueueNormal", "JobQueueLow"}
# What each function's code sends to (jobs/*.py): the queues' logical ids.
SENDS: dict[str, set[str]] = {
    "ApiFunction": JOB_QUEUES | {"NotifyQueue"},
    "WorkerFunction": JOB_QUEUES | {"JobDLQ", "NotifyQueue"},  # parking re-sends, fallbacks, dead letters
    "DlqFunction": {"NotifyQueue"},
    "IntakeFunction": JOB_QUEUES | {"IntakeDLQ"},
    "NotifierFunction": set(),
    "SweeperFunction": JOB_QUEUES | {"NotifyQueue"},
    "EconomyFunction": {"JobQueueLow", "NotifyQueue"},
    "ConsoleFunction": set(),
    "MigrateFunction": set(),
}
URL_ENV = {
    "JobQueueHigh": "JOB_QUEUE_HIGH_URL",
    "JobQueueNormal": "JOB_QUEUE_NORMAL_URL",
    "JobQueueLow": "JOB_QUEUE_LOW_URL",
    "JobDLQ": "JOB_DLQ_URL",
    "IntakeDLQ": "INTAKE_DLQ_URL",
    "NotifyQueue": "NOTIFY_QUEUE_URL",
}
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def transformed() -> dict[str, Any]:
    """The CloudFormation template `sam deploy` would create, code locations as if packaged to S3."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse((ROOT / "template.yaml").read_text())
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str):
                props[key] = "s3://rehearsal/" + props[key].strip("/")

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    result: dict[str, Any] = transform(template, {}, NoManagedPolicies())
    return result


def walk(node: Any, where: str = "") -> Iterator[tuple[str, str, Any]]:
    """Every intrinsic function in the template: (where, name, argument)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"Ref", "Fn::GetAtt", "Fn::Sub", "Fn::If"}:
                yield where, key, value
            yield from walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{where}/{index}")


def check_references(template: dict[str, Any], problems: list[str]) -> None:
    names = set(template.get("Parameters", {})) | set(template["Resources"]) | PSEUDO
    conditions = set(template.get("Conditions", {}))
    for where, function, argument in walk(template["Resources"]):
        if function == "Ref" and argument not in names:
            problems.append(f"{where}: Ref {argument!r} names nothing")
        elif function == "Fn::GetAtt":
            target = argument[0] if isinstance(argument, list) else str(argument).split(".")[0]
            if target not in template["Resources"]:
                problems.append(f"{where}: GetAtt of {target!r}, which is not a resource")
        elif function == "Fn::Sub":
            text, local = (argument[0], set(argument[1])) if isinstance(argument, list) else (argument, set())
            for variable in _SUB_VARIABLE.findall(text):
                if variable.split(".")[0] not in names | local:
                    problems.append(f"{where}: Sub variable ${{{variable}}} names nothing")
        elif function == "Fn::If" and argument[0] not in conditions:
            problems.append(f"{where}: condition {argument[0]!r} is not defined")


def _policies(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A role's inline policies, conditional ones (`Fn::If`) taken as granted."""
    for policy in role.get("Properties", {}).get("Policies", []):
        if "Fn::If" in policy:
            policy = policy["Fn::If"][1]
        if isinstance(policy, dict) and "PolicyDocument" in policy:
            yield policy


def _queues_granted(role: dict[str, Any], action: str) -> set[str]:
    """Logical ids of the queues a role's inline policies allow `action` on (`sqs:SendMessage*` covers it)."""
    granted: set[str] = set()
    for policy in _policies(role):
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if statement["Effect"] == "Allow" and any(action.startswith(a.rstrip("*")) for a in actions):
                for _, name, argument in walk({"Resource": statement["Resource"]}):
                    if name == "Fn::GetAtt":
                        granted.add(argument[0])
    return granted


def check_queues(template: dict[str, Any], problems: list[str]) -> None:
    resources = template["Resources"]
    for function, queues in SENDS.items():
        if function not in resources:
            problems.append(f"{function}: in the rehearsal's table but not in the template")
            continue
        props = resources[function]["Properties"]
        env = props.get("Environment", {}).get("Variables", {})
        role_id = props["Role"]["Fn::GetAtt"][0]
        sendable = _queues_granted(resources[role_id], "sqs:SendMessage")
        for queue in sorted(queues):
            if env.get(URL_ENV[queue]) != {"Ref": queue}:
                problems.append(f"{function}: sends to {queue} but its {URL_ENV[queue]} is not that queue's URL")
            if queue not in sendable:
                problems.append(f"{function}: sends to {queue} but its role may not")
    for lid, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::EventSourceMapping":
            continue
        props = resource["Properties"]
        queue = props["EventSourceArn"]["Fn::GetAtt"][0]
        function = props["FunctionName"]["Ref"]
        role_id = resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]
        if queue not in _queues_granted(resources[role_id], "sqs:ReceiveMessage"):
            problems.append(f"{lid}: {function} polls {queue} but its role may not receive from it")


def _statements(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in _policies(role):
        yield from policy["PolicyDocument"]["Statement"]


def _grants(role: dict[str, Any], action: str) -> list[Any]:
    """The resources of a role's statements that allow `action`."""
    found = []
    for statement in _statements(role):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if statement["Effect"] == "Allow" and action in actions:
            found.append(statement["Resource"])
    return found


BEDROCK_GRANTS: dict[str, list[tuple[str, Any]]] = {  # function → (action, the resource it must be granted on)
    "WorkerFunction": [("bedrock:InvokeModel", {"Ref": "BedrockModelArns"})],
    "EconomyFunction": [
        ("bedrock:CreateModelInvocationJob", {"Ref": "BedrockModelArns"}),
        ("bedrock:GetModelInvocationJob", None),
        ("iam:PassRole", {"Fn::GetAtt": ["BedrockBatchRole", "Arn"]}),
        ("s3:PutObject", None),
        ("s3:GetObject", None),
    ],
}


def check_bedrock(template: dict[str, Any], problems: list[str]) -> None:
    resources = template["Resources"]
    for function, grants in BEDROCK_GRANTS.items():
        role = resources[resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]]
        for action, resource in grants:
            granted = _grants(role, action)
            if not granted:
                problems.append(f"{function}: uses {action} (Bedrock) but its role may not")
            elif resource is not None and resource not in granted:
                problems.append(f"{function}: {action} is granted on {granted}, not on {resource}")
    env = resources["EconomyFunction"]["Properties"]["Environment"]["Variables"]
    if "BedrockBatchBucket" not in str(env.get("PROMPTLAB_BEDROCK_BATCH_BUCKET")):
        problems.append("EconomyFunction: PROMPTLAB_BEDROCK_BATCH_BUCKET is not the stack's batch bucket")


def main() -> int:
    template = transformed()
    problems: list[str] = []
    check_references(template, problems)
    check_queues(template, problems)
    check_bedrock(template, problems)
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    for problem in problems:
        print(f"REHEARSAL: {problem}", file=sys.stderr)
    print(f"deploy rehearsal: {len(template['Resources'])} resources, {len(functions)} functions, "
          f"{len(problems)} problems")  # fmt: skip
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
