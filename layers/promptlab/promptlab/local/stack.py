"""The stack `template.yaml` describes, made concrete: queues created, functions and their events resolved."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptlab.core.json_types import JsonObject
from promptlab.local.cfn import Resolver, load_template, parameter_values

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

ACCOUNT_ID = "123456789012"


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    code_dir: Path
    handler: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]


@dataclass(frozen=True)
class Route:
    function: str
    method: str
    path: str
    pattern: re.Pattern[str]

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in {"ANY", method.upper()}:
            return None
        found = self.pattern.fullmatch(path)
        return found.groupdict() if found else None


@dataclass(frozen=True)
class SqsMapping:
    function: str
    queue_logical_id: str
    queue_url: str
    queue_arn: str
    batch_size: int
    report_batch_item_failures: bool
    maximum_concurrency: int
    enabled: bool
    batching_window_seconds: float = 0.0


@dataclass(frozen=True)
class Schedule:
    function: str
    rate_seconds: float
    payload: JsonObject


@dataclass
class Stack:
    template_path: Path
    stack_name: str
    region: str
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    mappings: list[SqsMapping] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    queue_urls: dict[str, str] = field(default_factory=dict)
    buckets: list[str] = field(default_factory=list)  # the S3 buckets whose condition holds, by name
    # The API's MinimumCompressionSize: answers this large are gzipped for clients that accept it.
    minimum_compression_size: int | None = None

    def route_for(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route serving a request and its path parameters; static paths win over templated ones."""
        for route in sorted(self.routes, key=lambda r: (r.path.count("{"), -len(r.path))):
            params = route.match(method, path)
            if params is not None:
                return route, params
        return None

    def environment(self) -> dict[str, str]:
        """The union of every function's environment (one process hosts them all)."""
        merged: dict[str, str] = {}
        for spec in self.functions.values():
            merged.update(spec.environment)
        return merged


def _path_pattern(path: str) -> re.Pattern[str]:
    regex = ""
    for piece in re.split(r"(\{[^}]+\})", path):
        if piece.startswith("{") and piece.endswith("}"):
            name = piece[1:-1]
            if name.endswith("+"):
                regex += f"(?P<{name[:-1]}>.+)"
            else:
                regex += f"(?P<{name}>[^/]+)"
        else:
            regex += re.escape(piece)
    return re.compile(regex)


def _rate_seconds(expression: str) -> float:
    found = re.fullmatch(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not found:
        raise ValueError(f"the local runner supports rate(...) schedules, not {expression!r}")
    unit = {"minute": 60, "hour": 3600, "day": 86400}[found.group(2).rstrip("s")]
    return int(found.group(1)) * unit


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _create_queues(
    template: JsonObject, resolver: Resolver, sqs: SQSClient, stack_name: str
) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    resources = template.get("Resources") or {}
    pending = {lid: r for lid, r in resources.items() if r.get("Type") == "AWS::SQS::Queue"}
    urls: dict[str, str] = {}
    attributes: dict[tuple[str, str], str] = dict(resolver.attributes)
    while pending:
        progressed = False
        for logical_id, resource in list(pending.items()):
            resolver.attributes = attributes
            try:
                props = resolver.resolve(resource.get("Properties") or {})
            except KeyError:
                continue  # depends on a queue not created yet
            name = props.get("QueueName") or f"{stack_name}-{logical_id}"
            attrs: dict[str, str] = {
                key: (json.dumps(props[key]) if key == "RedrivePolicy" else _env_value(props[key]))
                for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds",
                            "ReceiveMessageWaitTimeSeconds", "RedrivePolicy", "MaximumMessageSize")
                if key in props
            }  # fmt: skip
            if props.get("FifoQueue"):
                attrs["FifoQueue"] = "true"
            url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]  # type: ignore[arg-type]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            urls[logical_id] = url
            attributes[(logical_id, "Arn")] = arn
            attributes[(logical_id, "QueueName")] = name
            attributes[(logical_id, "QueueUrl")] = url
            del pending[logical_id]
            progressed = True
        if not progressed:
            raise ValueError(f"cannot resolve the properties of queues {sorted(pending)}")
    return urls, attributes


def build_stack(
    template_path: Path,
    *,
    sqs: SQSClient,
    stack_name: str = "promptlab-local",
    region: str = "us-east-1",
    parameter_overrides: dict[str, str] | None = None,
) -> Stack:
    """Read the template, create its queues in `sqs`, and resolve functions, routes, mappings, schedules."""
    template = load_template(template_path)
    root = template_path.parent
    pseudo = {
        "AWS::Region": region,
        "AWS::AccountId": ACCOUNT_ID,
        "AWS::StackName": stack_name,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackId": f"arn:aws:cloudformation:{region}:{ACCOUNT_ID}:stack/{stack_name}/local",
    }
    resources: JsonObject = template.get("Resources") or {}
    # S3 bucket names are lower case; other names keep the logical id's case.
    refs = {
        lid: f"{stack_name}-{lid}".lower() if r.get("Type") == "AWS::S3::Bucket" else f"{stack_name}-{lid}"
        for lid, r in resources.items()
    }
    resolver = Resolver(
        template,
        parameters=parameter_values(template, parameter_overrides or {}),
        pseudo=pseudo,
        refs=refs,
        attributes={},
    )
    urls, attributes = _create_queues(template, resolver, sqs, stack_name)
    for lid, resource in resources.items():
        if resource.get("Type") == "AWS::Serverless::Function":
            attributes[(lid, "Arn")] = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{stack_name}-{lid}"
        if resource.get("Type") == "AWS::S3::Bucket":
            attributes[(lid, "Arn")] = f"arn:aws:s3:::{refs[lid]}"
    refs.update(urls)
    resolver.refs = refs
    resolver.attributes = attributes
    stack = Stack(template_path=template_path, stack_name=stack_name, region=region, queue_urls=urls)
    stack.buckets = [
        refs[lid]
        for lid, r in resources.items()
        if r.get("Type") == "AWS::S3::Bucket" and ("Condition" not in r or resolver.condition(r["Condition"]))
    ]
    arn_to_queue = {attributes[(lid, "Arn")]: lid for lid in urls}
    for resource in resources.values():
        if resource.get("Type") == "AWS::Serverless::Api":
            size = resolver.resolve((resource.get("Properties") or {}).get("MinimumCompressionSize"))
            stack.minimum_compression_size = None if size is None else int(size)
    for lid, resource in resources.items():
        if resource.get("Type") == "AWS::Serverless::Function":
            _add_function(stack, lid, resolver.resolve(resource.get("Properties") or {}), root, arn_to_queue)
    return stack


def _add_function(stack: Stack, lid: str, props: JsonObject, root: Path, arn_to_queue: dict[str, str]) -> None:
    """One function of the template with its API routes, SQS mappings and schedules."""
    variables = (props.get("Environment") or {}).get("Variables") or {}
    stack.functions[lid] = FunctionSpec(
        logical_id=lid,
        name=f"{stack.stack_name}-{lid}",
        code_dir=(root / props["CodeUri"]).resolve(),
        handler=props["Handler"],
        timeout_seconds=int(props.get("Timeout", 3)),
        memory_mb=int(props.get("MemorySize", 128)),
        environment={k: _env_value(v) for k, v in variables.items()},
    )
    for event in (props.get("Events") or {}).values():
        kind, ep = event.get("Type"), event.get("Properties") or {}
        if kind == "Api":
            path = ep["Path"]
            stack.routes.append(
                Route(function=lid, method=ep["Method"].upper(), path=path, pattern=_path_pattern(path))
            )
        elif kind == "SQS":
            queue_lid = arn_to_queue[ep["Queue"]]
            stack.mappings.append(
                SqsMapping(
                    function=lid,
                    queue_logical_id=queue_lid,
                    queue_url=stack.queue_urls[queue_lid],
                    queue_arn=ep["Queue"],
                    batch_size=int(ep.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures" in (ep.get("FunctionResponseTypes") or []),
                    maximum_concurrency=int((ep.get("ScalingConfig") or {}).get("MaximumConcurrency", 10)),
                    enabled=bool(ep.get("Enabled", True)),
                    batching_window_seconds=float(ep.get("MaximumBatchingWindowInSeconds", 0)),
                )
            )
        elif kind in {"Schedule", "ScheduleV2"}:
            expression = str(ep.get("Schedule") or ep.get("ScheduleExpression"))
            payload = json.loads(ep["Input"]) if ep.get("Input") else {}
            stack.schedules.append(Schedule(function=lid, rate_seconds=_rate_seconds(expression), payload=payload))
