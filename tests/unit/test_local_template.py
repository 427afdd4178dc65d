from pathlib import Path

from promptlab.local.cfn import Resolver, load_template, merge_globals, parameter_values
from promptlab.local.pollers import failed_ids
from promptlab.local.stack import _path_pattern, _rate_seconds

ROOT = Path(__file__).resolve().parents[2]


def test_short_form_tags_load_as_intrinsics() -> None:
    template = load_template(ROOT / "template.yaml")
    worker = template["Resources"]["WorkerFunction"]["Properties"]
    assert worker["Events"]["HighPriorityJobs"]["Properties"]["Queue"] == {"Fn::GetAtt": ["JobQueueHigh", "Arn"]}
    # Globals merged: the worker keeps its own variables and gains the global ones.
    variables = worker["Environment"]["Variables"]
    assert "PROMPTLAB_ANTHROPIC_API_KEY_PARAMETER" in variables and "DATABASE_URL" in variables
    assert worker["Runtime"] == "python3.11" and worker["Timeout"] == 300


def test_globals_merge_maps_and_add_up_lists_as_sam_does() -> None:
    # samtranslator gives a function with Layers [b] under Globals Layers [a] both: [a, b]
    merged = merge_globals({"Layers": ["a"], "Environment": {"Variables": {"A": "1", "B": "1"}}},
                           {"Layers": ["b"], "Environment": {"Variables": {"B": "2"}}})  # fmt: skip
    assert merged == {"Layers": ["a", "b"], "Environment": {"Variables": {"A": "1", "B": "2"}}}


def test_intrinsics_resolve() -> None:
    template = {"Conditions": {"IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}}}
    resolver = Resolver(
        template,
        parameters=parameter_values({"Parameters": {"Stage": {"Default": "dev"}}}, {"Stage": "prod"}),
        pseudo={"AWS::Region": "eu-west-1"},
        refs={"Queue": "http://q"},
        attributes={("Queue", "Arn"): "arn:q"},
    )
    assert (
        resolver.resolve({"Fn::Sub": "${AWS::Region}/${Stage}/${Queue.Arn}/${!Literal}"})
        == "eu-west-1/prod/arn:q/${Literal}"
    )
    assert resolver.resolve({"Fn::If": ["IsProd", "big", "small"]}) == "big"
    assert resolver.resolve({"Fn::Join": ["-", [{"Ref": "Queue"}, "x"]]}) == "http://q-x"
    assert resolver.resolve({"A": {"Ref": "AWS::NoValue"}, "B": 1}) == {"B": 1}


def test_paths_and_rates() -> None:
    assert _path_pattern("/templates/{id}/versions").fullmatch("/templates/tpl_1/versions")
    assert not _path_pattern("/templates/{id}").fullmatch("/templates/a/b")
    assert _path_pattern("/files/{proxy+}").fullmatch("/files/a/b")
    assert _rate_seconds("rate(5 minutes)") == 300 and _rate_seconds("rate(1 hour)") == 3600


def test_partial_batch_response_rules() -> None:
    batch = {"m1", "m2"}
    assert failed_ids({"batchItemFailures": []}, batch) == set()
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "m2"}]}, batch) == {"m2"}
    # Lambda treats an unknown or empty identifier as a failure of the whole batch.
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, batch) == batch
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": ""}]}, batch) == batch
    assert failed_ids(None, batch) == set()


def test_every_api_route_is_an_api_event_in_the_template() -> None:
    import promptlab.api.app  # noqa: F401  (registers every route)
    from promptlab.api.declared import sam_events

    template = load_template(ROOT / "template.yaml")
    events = template["Resources"]["ApiFunction"]["Properties"]["Events"]
    assert events == sam_events(), "template.yaml's API events differ from the routes: run ./dev routes"


def test_the_events_writer_replaces_only_the_api_functions_events() -> None:
    from tools.routes import with_events

    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    assert with_events(text) == text  # the committed template is what the writer makes
    stale = text.replace('Path: "/usage", Method: get}', 'Path: "/usage", Method: post}')
    assert stale != text and with_events(stale) == text
    # the next function's events are left alone
    assert "ConsolePage:" in with_events(text) and with_events(text).count("HighPriorityJobs:") == 1


def test_local_pollers_keep_the_priority_ratios() -> None:
    from promptlab.local.runner import LocalRunner

    runner = LocalRunner(template=ROOT / "template.yaml")
    assert [runner.pollers_for(n) for n in (20, 10, 5, 2, 1000)] == [8, 4, 2, 1, 8]


def test_the_template_keeps_its_security_rules() -> None:
    template = load_template(ROOT / "template.yaml")
    resources = template["Resources"]
    queues = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    assert queues and all(q.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in q for q in queues.values())
    dead_letter_queues = [name for name in queues if name.endswith("DLQ")]
    assert dead_letter_queues and all(queues[n]["MessageRetentionPeriod"] == 14 * 86_400 for n in dead_letter_queues)
    functions = {n: r["Properties"] for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    for name, props in functions.items():
        for policy in props.get("Policies", []):
            # Least privilege: SAM policy templates scoped to one resource, or statements with named actions.
            assert isinstance(policy, dict), f"{name}: managed policy {policy!r}"
            for statement in policy.get("Statement", []):
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert all("*" not in action for action in actions), f"{name}: wildcard action in {statement}"


def test_operators_get_alarms_a_vpc_and_secrets_by_name() -> None:
    template = load_template(ROOT / "template.yaml")
    alarms = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    watched = {(a["MetricName"], str(a["Dimensions"][0]["Value"])) for a in alarms}
    for queue in ("JobQueueHigh", "JobQueueNormal", "JobQueueLow"):
        assert ("ApproximateAgeOfOldestMessage", str({"Fn::GetAtt": [queue, "QueueName"]})) in watched
    assert ("ApproximateNumberOfMessagesVisible", str({"Fn::GetAtt": ["JobDLQ", "QueueName"]})) in watched
    assert {("Errors", str({"Ref": "WorkerFunction"})), ("Throttles", str({"Ref": "WorkerFunction"}))} <= watched
    # The stack's own VPC with DataStores=create, else the subnets given
    vpc = template["Globals"]["Function"]["VpcConfig"]["Fn::If"]
    assert vpc[0] == "CreateDataStores" and vpc[2]["Fn::If"][0] == "InGivenVpc"
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["PROMPTLAB_DATABASE_SECRET_ARN"] == {
        "Fn::If": [
            "CreateDataStores",
            {"Fn::GetAtt": ["DatabaseCluster", "MasterUserSecret.SecretArn"]},
            {"Ref": "DatabaseSecretArn"},
        ]
    }
    assert template["Parameters"]["DatabaseUrl"]["NoEcho"] is True


def test_every_bucket_refuses_requests_without_tls() -> None:
    resources = load_template(ROOT / "template.yaml")["Resources"]
    buckets = {name for name, r in resources.items() if r["Type"] == "AWS::S3::Bucket"}
    guarded = set()
    for policy in (r for r in resources.values() if r["Type"] == "AWS::S3::BucketPolicy"):
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}:
                guarded.add(policy["Properties"]["Bucket"]["Ref"])
    assert buckets and guarded == buckets


def test_the_api_writes_access_logs_without_keys_or_bodies() -> None:
    import json

    api = load_template(ROOT / "template.yaml")["Resources"]["PromptLabApi"]["Properties"]
    line = json.loads(api["AccessLogSetting"]["Format"])
    assert {"requestId", "status", "latencyMs", "route", "ip"} <= set(line)
    assert not any(word in json.dumps(line).lower() for word in ("authorization", "apikey", "header", "body"))
