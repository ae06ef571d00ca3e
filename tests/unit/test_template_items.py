"""template.yaml's Items feature: three functions that share everything but their role,
handler, timeout and log group; the table and the key; IAM exactly as the Items design draws
it (kms:Encrypt in one role, kms:Decrypt on the key in two, each bound to an Item's
encryption context; DynamoDB actions per function on the table only); the routes behind the
JWT authorizer; alarms, saved queries and outputs for the exchange.

Like tests/unit/test_template.py, they read the template as data and need no AWS or SAM CLI.
"""

from __future__ import annotations

import ast
import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.gateway.cfn_template import FunctionRoute, function_routes, load_template
from linktoken.aws_json import CONNECT_TIMEOUT_S, MAX_ATTEMPTS, READ_TIMEOUT_S
from linktoken.plaid_client import RetryPolicy
from linktoken.problems import PROBLEM_TYPES
from plaiditems.service import EXCHANGE_LOCK_SECONDS

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]
API_GATEWAY_MAX_SECONDS = 30
NO_VALUE = {"Ref": "AWS::NoValue"}

# Function -> its role, Handler and log group.
FUNCTIONS = {
    "LinkTokenFunction": ("LinkTokenFunctionRole", "app.lambda_handler", "FunctionLogGroup"),
    "ItemExchangeFunction": (
        "ItemExchangeFunctionRole",
        "exchange_app.lambda_handler",
        "ItemExchangeFunctionLogGroup",
    ),
    "ItemsFunction": ("ItemsFunctionRole", "items_app.lambda_handler", "ItemsFunctionLogGroup"),
}
# The webhook processor unseals tokens too (its table use is in test_template_webhooks.py).
ROLES = {function: role for function, (role, _, _) in FUNCTIONS.items()} | {
    "WebhookProcessorFunction": "WebhookProcessorFunctionRole"
}
TABLE_ARN = {"Fn::GetAtt": ["ItemsTable", "Arn"]}
KEY_ARN = {"Fn::GetAtt": ["ItemsKey", "Arn"]}
# The Items design: which function may do what to the table.
TABLE_ACTIONS = {
    "LinkTokenFunction": {"dynamodb:GetItem"},
    "ItemExchangeFunction": {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
    },
    "ItemsFunction": {"dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem"},
}
# Only ciphertexts sealed for one Item of one owner: exactly these context keys, both present.
ITEM_CONTEXT = {
    "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["item_id", "owner"]},
    "Null": {"kms:EncryptionContext:item_id": "false", "kms:EncryptionContext:owner": "false"},
}


def props(name: str) -> dict[str, Any]:
    properties: dict[str, Any] = RESOURCES[name]["Properties"]
    return properties


def statements(function: str) -> list[dict[str, Any]]:
    """The statements of a function's role, each Fn::If taken both ways (NoValue dropped)."""
    (policy,) = props(ROLES[function])["Policies"]
    found: list[dict[str, Any]] = []
    for statement in policy["PolicyDocument"]["Statement"]:
        if set(statement) == {"Fn::If"}:
            _, when_true, when_false = statement["Fn::If"]
            found += [s for s in (when_true, when_false) if s != NO_VALUE]
        else:
            found.append(statement)
    return found


def actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def evaluate_condition(name: str, params: dict[str, str]) -> bool:
    """One of the template's Conditions (Equals, Not, And, Or, Condition) for these values."""

    operations: dict[str, Callable[[list[Any]], Any]] = {
        "Fn::Equals": lambda values: values[0] == values[1],
        "Fn::Not": lambda values: not values[0],
        "Fn::And": all,
        "Fn::Or": any,
    }

    def value(expr: Any) -> Any:
        if not isinstance(expr, dict):
            return expr
        ((fn, args),) = expr.items()
        if fn == "Ref":
            return params[args]
        if fn == "Condition":
            return evaluate_condition(args, params)
        assert fn in operations, f"this evaluator does not know {fn}"
        return operations[fn]([value(arg) for arg in args])

    return bool(value(TEMPLATE["Conditions"][name]))


def deploy_parameters(env: str) -> dict[str, str]:
    """The template's defaults, overridden by infra/samconfig.toml's values for `env`."""
    config = tomllib.loads((ROOT / "infra" / "samconfig.toml").read_text())
    params = {name: str(spec.get("Default", "")) for name, spec in PARAMETERS.items()}
    for entry in config[env]["deploy"]["parameters"]["parameter_overrides"]:
        key, _, value = entry.partition("=")
        params[key] = value.strip('"')
    return params


# --------------------------------------------------------------------------- functions ---
# What may differ between the three functions; everything else must be identical.
OWN_SETTINGS = {"Description", "Handler", "Timeout", "Role", "Events", "DeploymentPreference"}


@pytest.mark.parametrize("function", ["ItemExchangeFunction", "ItemsFunction"])
def test_the_items_functions_share_every_setting_of_the_link_token_function(
    function: str,
) -> None:
    """Same code, build, runtime, memory, tracing, alias and publishing, concurrency, VPC,
    SnapStart, log settings and environment: only what the design separates differs."""
    reference, other = props("LinkTokenFunction"), props(function)
    assert set(other) == set(reference)
    for key in set(reference) - OWN_SETTINGS - {"LoggingConfig"}:
        assert other[key] == reference[key], f"{function}.{key} drifted from LinkTokenFunction's"
    assert RESOURCES[function]["Metadata"] == RESOURCES["LinkTokenFunction"]["Metadata"]
    own_log = {k: v for k, v in other["LoggingConfig"].items() if k != "LogGroup"}
    assert own_log == {k: v for k, v in reference["LoggingConfig"].items() if k != "LogGroup"}
    deployment = {k: v for k, v in other["DeploymentPreference"].items() if k != "Alarms"}
    assert deployment == {
        k: v for k, v in reference["DeploymentPreference"].items() if k != "Alarms"
    }


@pytest.mark.parametrize("function", list(FUNCTIONS))
def test_each_function_runs_its_handler_from_the_shared_code(function: str) -> None:
    _, handler, _ = FUNCTIONS[function]
    assert props(function)["Handler"] == handler
    assert props(function)["CodeUri"] == "handler/"
    module, _, name = handler.rpartition(".")
    source = ROOT / "handler" / f"{module.replace('.', '/')}.py"
    assert source.is_file(), f"{handler}: no {source}"
    tree = ast.parse(source.read_text())
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assigned = {
        t.id
        for n in tree.body
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    assert name in defined | assigned, f"{handler} is not defined in {source}"


@pytest.mark.parametrize("function", list(FUNCTIONS))
def test_every_function_is_told_the_table_and_the_key(function: str) -> None:
    variables = props(function)["Environment"]["Variables"]
    assert variables["ITEMS_TABLE"] == {"Ref": "ItemsTable"}
    assert variables["ITEMS_KEY_ID"] == KEY_ARN


def test_the_exchange_timeout_outlasts_the_cleanup_of_an_exchange() -> None:
    """Once Plaid has exchanged, the function must store the Item or remove it: the exchange
    attempt, sealing, storing and one /item/remove attempt fit, with room before them for a
    cold secret read and the exchange claim at their worst. The answer may come after API
    Gateway's 30 s (the app retries; the exchange record answers it), the cleanup may not."""
    policy = RetryPolicy()
    aws_call = MAX_ATTEMPTS * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S) + 1.0  # + standard backoff
    assert aws_call == 7
    after_exchange = (
        policy.attempt_seconds  # the exchange, attempted once
        + 2 * aws_call  # kms:Encrypt, PutItem
        + policy.attempt_seconds  # /item/remove when either failed
        + policy.safety_margin
    )
    before_exchange = 2 * aws_call  # a cold secret read, the exchange claim
    timeout = props("ItemExchangeFunction")["Timeout"]
    assert isinstance(timeout, int)
    assert timeout >= before_exchange + after_exchange
    assert (after_exchange, timeout) == (30.5, 45)
    assert timeout > API_GATEWAY_MAX_SECONDS, "sized for the cleanup, not the answer"
    # A retry that arrives while this invocation may still run must find the claim held.
    assert timeout < EXCHANGE_LOCK_SECONDS


def test_the_items_function_answers_inside_api_gateway_like_the_link_token_function() -> None:
    timeout = props("ItemsFunction")["Timeout"]
    assert timeout == props("LinkTokenFunction")["Timeout"] == 20
    assert timeout < API_GATEWAY_MAX_SECONDS


# ------------------------------------------------------------------------------ routes ---
def test_routes_are_the_designs_and_each_goes_to_its_function() -> None:
    assert function_routes(TEMPLATE) == [
        FunctionRoute("POST", "/link-token", "LinkTokenFunction", "app.lambda_handler", 20),
        FunctionRoute("POST", "/items", "ItemExchangeFunction", "exchange_app.lambda_handler", 45),
        FunctionRoute("GET", "/items", "ItemsFunction", "items_app.lambda_handler", 20),
        FunctionRoute(
            "DELETE", "/items/{item_id}", "ItemsFunction", "items_app.lambda_handler", 20
        ),
        FunctionRoute(
            "POST", "/items/{item_id}/refresh", "ItemsFunction", "items_app.lambda_handler", 20
        ),
        FunctionRoute(
            "POST",
            "/webhooks/plaid",
            "WebhookReceiverFunction",
            "webhook_app.lambda_handler",
            10,
            authorized=False,
        ),
    ]


@pytest.mark.parametrize("function", list(FUNCTIONS))
def test_every_route_is_behind_the_jwt_authorizer(function: str) -> None:
    auth = props("LinkTokenApi")["Auth"]
    assert auth["DefaultAuthorizer"] == "JwtAuthorizer"
    for event in props(function)["Events"].values():
        assert event["Type"] == "HttpApi"
        assert set(event["Properties"]) == {"ApiId", "Method", "Path", "PayloadFormatVersion"}, (
            "no per-route Auth override (e.g. Authorizer: NONE)"
        )
        assert event["Properties"]["ApiId"] == {"Ref": "LinkTokenApi"}
        assert event["Properties"]["PayloadFormatVersion"] == "2.0"


# -------------------------------------------------------------------------------- logs ---
@pytest.mark.parametrize("function", list(FUNCTIONS))
def test_each_function_writes_to_its_own_log_group_only(function: str) -> None:
    role, _, group = FUNCTIONS[function]
    assert props(function)["LoggingConfig"]["LogGroup"] == {"Ref": group}
    assert props(function)["Role"] == {"Fn::GetAtt": [role, "Arn"]}
    assert "Policies" not in props(function), "the stack's role, so SAM adds no managed policy"
    logs, *others = statements(function)
    assert logs["Sid"] == "WriteOwnLogGroup"
    assert logs["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert logs["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}"
        f":log-group:${{{group}}}:*"
    }
    assert "logs:" not in json.dumps(others)
    log_group = props(group)
    assert log_group["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
    assert log_group["KmsKeyId"] == {
        "Fn::If": ["EncryptLogs", {"Fn::GetAtt": ["LogsKey", "Arn"]}, NO_VALUE]
    }
    assert RESOURCES[group]["DeletionPolicy"] == "Delete"


def test_log_groups_are_distinct() -> None:
    names = [props(group)["LogGroupName"]["Fn::Sub"] for _, _, group in FUNCTIONS.values()]
    assert len(set(names)) == len(names) == 3


# --------------------------------------------------------------------------------- IAM ---
def _key_statements(function: str) -> list[dict[str, Any]]:
    return [s for s in statements(function) if s["Resource"] == KEY_ARN]


def test_only_the_exchange_role_may_encrypt_and_only_with_an_items_context() -> None:
    encrypting = {
        function: [s for s in statements(function) if "kms:Encrypt" in actions(s)]
        for function in ROLES
    }
    assert {f for f, found in encrypting.items() if found} == {"ItemExchangeFunction"}
    (seal,) = encrypting["ItemExchangeFunction"]
    assert seal["Effect"] == "Allow"
    assert actions(seal) == {"kms:Encrypt"}
    assert seal["Resource"] == KEY_ARN
    assert seal["Condition"] == ITEM_CONTEXT
    # Nothing else in the template grants kms:Encrypt (the ItemsKey policy is root's alone;
    # LogsKey's lets CloudWatch Logs encrypt its own log groups).
    others = {
        k: v for k, v in RESOURCES.items() if k not in {"ItemExchangeFunctionRole", "LogsKey"}
    }
    assert '"kms:Encrypt"' not in json.dumps(others)


def test_the_exchange_role_cannot_decrypt_with_the_items_key() -> None:
    assert [actions(s) for s in _key_statements("ItemExchangeFunction")] == [{"kms:Encrypt"}]
    # Its only kms:Decrypt is the Plaid secret's own key, through Secrets Manager, and only
    # when PlaidSecretKmsKeyArn is set: never a ciphertext of the table.
    decrypting = [s for s in statements("ItemExchangeFunction") if "kms:Decrypt" in actions(s)]
    (secret_key,) = decrypting
    assert secret_key["Sid"] == "DecryptPlaidSecret"
    assert secret_key["Resource"] == {"Ref": "PlaidSecretKmsKeyArn"}
    assert secret_key["Condition"] == {
        "StringEquals": {
            "kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.${AWS::URLSuffix}"}
        }
    }


@pytest.mark.parametrize(
    "function", ["LinkTokenFunction", "ItemsFunction", "WebhookProcessorFunction"]
)
def test_the_link_token_items_and_processor_roles_decrypt_only_with_an_items_context(
    function: str,
) -> None:
    (unseal,) = _key_statements(function)
    assert unseal["Sid"] == "UnsealAccessTokens"
    assert unseal["Effect"] == "Allow"
    assert actions(unseal) == {"kms:Decrypt"}
    assert unseal["Condition"] == ITEM_CONTEXT
    assert not [s for s in statements(function) if "kms:Encrypt" in actions(s)]


@pytest.mark.parametrize("function", list(FUNCTIONS))
def test_each_role_uses_the_table_exactly_as_the_design_says(function: str) -> None:
    on_table = [s for s in statements(function) if s["Resource"] == TABLE_ARN]
    (statement,) = on_table
    assert statement["Effect"] == "Allow"
    assert actions(statement) == TABLE_ACTIONS[function]
    # No DynamoDB action anywhere else in the role, and none on another resource.
    elsewhere = [s for s in statements(function) if s is not statement]
    assert "dynamodb:" not in json.dumps(elsewhere)


@pytest.mark.parametrize("function", list(ROLES))
def test_each_role_reads_the_secret_as_the_link_token_role_does(function: str) -> None:
    def secret_statements(name: str) -> list[dict[str, Any]]:
        return [
            s for s in statements(name) if s["Sid"] in {"ReadPlaidSecret", "DecryptPlaidSecret"}
        ]

    assert secret_statements(function) == secret_statements("LinkTokenFunction")
    assert [s["Sid"] for s in secret_statements(function)] == [
        "ReadPlaidSecret",
        "DecryptPlaidSecret",
    ]
    role, reference = props(ROLES[function]), props("LinkTokenFunctionRole")
    assert role["ManagedPolicyArns"] == reference["ManagedPolicyArns"]
    assert role["AssumeRolePolicyDocument"] == reference["AssumeRolePolicyDocument"]


@pytest.mark.parametrize("function", list(FUNCTIONS))
def test_no_wildcard_in_any_function_role(function: str) -> None:
    text = json.dumps(props(ROLES[function])["Policies"])
    assert '"*"' not in text
    for broad in (
        "kms:*",
        "dynamodb:*",
        "secretsmanager:*",
        "kms:ReEncrypt",
        "kms:GenerateDataKey",
    ):
        assert broad not in text, broad
    # Every statement names its resource: the table, the key, the secret or the log group.
    assert all(s.get("Resource") for s in statements(function))


# ------------------------------------------------------------------------ table and key ---
def test_the_table_is_keyed_on_demand_recoverable_and_expiring() -> None:
    table = props("ItemsTable")
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert table["AttributeDefinitions"] == [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
        {"AttributeName": "item_id", "AttributeType": "S"},
    ]
    # Webhooks name only the item_id: the processor finds the owner's key through this index,
    # which holds keys only (no health, no sealed token).
    assert table["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "ByItemId",
            "KeySchema": [{"AttributeName": "item_id", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }
    ]
    assert "LocalSecondaryIndexes" not in table
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
    assert "TableName" not in table, "a retained table must not block re-creating the stack"


@pytest.mark.parametrize(("env", "protected"), [("dev", False), ("prod", True)])
def test_deletion_protection_is_on_for_the_prod_parameters_only(env: str, protected: bool) -> None:
    table = props("ItemsTable")
    condition, when_true, when_false = table["DeletionProtectionEnabled"]["Fn::If"]
    assert (when_true, when_false) == (True, False)
    assert evaluate_condition(condition, deploy_parameters(env)) is protected
    assert deploy_parameters(env)["PlaidEnv"] == {"dev": "sandbox", "prod": "production"}[env]


def test_the_table_and_key_outlive_the_stack() -> None:
    for name in ("ItemsTable", "ItemsKey"):
        assert RESOURCES[name]["DeletionPolicy"] == "Retain", name
        assert RESOURCES[name]["UpdateReplacePolicy"] == "Retain", name
        assert "Condition" not in RESOURCES[name], name


def test_the_key_is_symmetric_rotated_and_administered_by_the_account_alone() -> None:
    key = props("ItemsKey")
    assert key["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert key["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert key["EnableKeyRotation"] is True
    assert key["PendingWindowInDays"] == 30
    (statement,) = key["KeyPolicy"]["Statement"]
    assert statement == {
        "Sid": "AccountAdministersTheKey",
        "Effect": "Allow",
        "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}},
        "Action": "kms:*",
        "Resource": "*",
    }
    alias = props("ItemsKeyAlias")
    assert alias["TargetKeyId"] == {"Ref": "ItemsKey"}
    assert alias["AliasName"] == {"Fn::Sub": "alias/${AWS::StackName}/items"}


def test_no_other_resource_grants_on_the_table_or_the_key() -> None:
    """The three roles and the webhook processor's are the only grants: no resource policy,
    grant or other role names them (the receiver's least of all)."""
    roles = set(ROLES.values())
    assert "Items" not in json.dumps(RESOURCES["WebhookReceiverFunctionRole"])
    mentions = {
        name
        for name, resource in RESOURCES.items()
        if resource["Type"] in {"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::KMS::Grant"}
        and ("ItemsTable" in json.dumps(resource) or "ItemsKey" in json.dumps(resource))
    }
    assert mentions == roles


# ----------------------------------------------------------------------- observability ---
def _alarm(name: str) -> dict[str, Any]:
    assert RESOURCES[name]["Type"] == "AWS::CloudWatch::Alarm"
    return props(name)


def test_item_exchange_failed_alarm_sums_exactly_the_server_side_codes() -> None:
    alarm = _alarm("ItemExchangeFailedAlarm")
    stats = [q["MetricStat"] for q in alarm["Metrics"] if "MetricStat" in q]
    codes = set()
    for stat in stats:
        metric = stat["Metric"]
        assert metric["MetricName"] == "ItemExchangeFailed"
        assert metric["Namespace"] == {"Ref": "MetricsNamespace"}
        dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        assert dims.keys() == {"service", "ErrorCode"}
        assert dims["service"] == {"Ref": "ServiceName"}
        codes.add(dims["ErrorCode"])
        assert (stat["Period"], stat["Stat"]) == (60, "Sum")
    server_side = {code for code, kind in PROBLEM_TYPES.items() if kind.status >= 429}
    assert codes == server_side, "alarm codes drifted from linktoken/problems.py"
    assert "STORAGE_UNAVAILABLE" in codes
    assert not codes & {"INVALID_PUBLIC_TOKEN", "DUPLICATE_ITEM", "EXCHANGE_IN_PROGRESS"}
    assert len(stats) <= 10, "CloudWatch allows at most 10 metrics in one alarm"
    (expression,) = [q for q in alarm["Metrics"] if q.get("ReturnData")]
    ids = {q["Id"] for q in alarm["Metrics"] if "MetricStat" in q}
    assert expression["Expression"] == f"SUM([{', '.join(q['Id'] for q in alarm['Metrics'][1:])}])"
    assert set(expression["Expression"][5:-2].split(", ")) == ids
    assert alarm["Threshold"] == {"Ref": "ItemExchangeFailedAlarmCount"}
    assert PARAMETERS["ItemExchangeFailedAlarmCount"]["Default"] >= 1


def test_any_orphan_left_pages_someone() -> None:
    alarm = _alarm("OrphanLeftAlarm")
    assert alarm["Namespace"] == {"Ref": "MetricsNamespace"}
    assert alarm["MetricName"] == "OrphanLeft"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": {"Ref": "ServiceName"}}]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 60, 1)
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    topic = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], NO_VALUE]}
    assert alarm["AlarmActions"] == alarm["OKActions"] == topic


@pytest.mark.parametrize("function", ["ItemExchangeFunction", "ItemsFunction"])
def test_each_items_function_rolls_back_on_its_own_errors(function: str) -> None:
    rollback, regression_ref = props(function)["DeploymentPreference"]["Alarms"]
    # Its own release regressions: its name and new version, never another function's.
    regression = _alarm(regression_ref["Ref"])
    assert regression["MetricName"] == "ReleaseRegression"
    assert regression["Dimensions"] == [
        {"Name": "service", "Value": {"Ref": "ServiceName"}},
        {"Name": "FunctionName", "Value": {"Ref": function}},
        {"Name": "FunctionVersion", "Value": {"Fn::GetAtt": [function, "Version.Version"]}},
    ]
    alarm = _alarm(rollback["Ref"])
    assert alarm["MetricName"] == "Errors"
    assert {"Name": "FunctionName", "Value": {"Ref": function}} in alarm["Dimensions"]
    assert {
        "Name": "ExecutedVersion",
        "Value": {"Fn::GetAtt": [function, "Version.Version"]},
    } in alarm["Dimensions"]
    throttles = _alarm(f"{function}ThrottlesAlarm")
    assert throttles["MetricName"] == "Throttles"
    assert {"Name": "FunctionName", "Value": {"Ref": function}} in throttles["Dimensions"]


def _queries() -> dict[str, dict[str, Any]]:
    return {
        v["Properties"]["Name"]["Fn::Sub"]: v["Properties"]
        for v in RESOURCES.values()
        if v["Type"] == "AWS::Logs::QueryDefinition"
    }


def test_saved_queries_find_exchange_failures_by_cause_and_orphans() -> None:
    exchange_group = [{"Ref": "ItemExchangeFunctionLogGroup"}]
    by_cause = [
        q
        for q in _queries().values()
        if 'filter message = "item_exchange_failed"' in q["QueryString"]
        and "by error_code, cause" in q["QueryString"]
    ]
    assert [q["LogGroupNames"] for q in by_cause] == [exchange_group]
    orphans = [q for q in _queries().values() if "ispresent(orphan)" in q["QueryString"]]
    assert [q["LogGroupNames"] for q in orphans] == [exchange_group]
    assert "item_id" in orphans[0]["QueryString"]
    assert "orphan_cause" in orphans[0]["QueryString"]


def test_the_cross_function_queries_read_every_function_log_group() -> None:
    groups = [{"Ref": group} for _, _, group in FUNCTIONS.values()]
    for name, query in _queries().items():
        if "One user" in name or "One request" in name:
            assert all(g in query["LogGroupNames"] for g in groups), name


def test_outputs_name_the_table_the_key_and_the_new_functions() -> None:
    outputs = TEMPLATE["Outputs"]
    assert outputs["ItemsTableName"]["Value"] == {"Ref": "ItemsTable"}
    assert outputs["ItemsTableArn"]["Value"] == TABLE_ARN
    assert outputs["ItemsKeyArn"]["Value"] == KEY_ARN
    assert outputs["ItemsKeyAlias"]["Value"] == {"Ref": "ItemsKeyAlias"}
    assert outputs["ItemExchangeFunctionName"]["Value"] == {"Ref": "ItemExchangeFunction"}
    assert outputs["ItemsFunctionName"]["Value"] == {"Ref": "ItemsFunction"}
    # make doctor --stack reads FunctionName: still the link-token function.
    assert outputs["FunctionName"]["Value"] == {"Ref": "LinkTokenFunction"}
