"""Static checks of template.yaml and the deploy configuration around it.

cfn-lint and `sam validate --lint` (.ci/sam-checks.sh) prove the template is valid; these tests
prove it says what this service needs: the runtime and architecture the code is built for (that
handler/Makefile builds for the same is tests/integration/test_template.py), a timeout that covers the
handler's retry budget, an IAM policy that grants nothing beyond the one secret, no credential
or test-only override in the environment, CORS closed by default, and alarms and queries that
match the handler's metrics and log fields. They read the template with a loader that
understands CloudFormation's short tags, and need no AWS and no SAM CLI.
"""

from __future__ import annotations

import ast
import itertools
import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from infra.gateway.cfn_template import function_routes, load_template
from linktoken.plaid_client import RetryPolicy
from linktoken.problems import PROBLEM_TYPES
from linktoken.secret_store import make_secrets_client

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]
FUNCTION = RESOURCES["LinkTokenFunction"]["Properties"]
API = RESOURCES["LinkTokenApi"]["Properties"]
ENV: dict[str, Any] = FUNCTION["Environment"]["Variables"]
ROLE = RESOURCES["LinkTokenFunctionRole"]["Properties"]
API_GATEWAY_MAX_SECONDS = 30
# Lambda's default concurrency quota per account and region (new accounts may get less).
ACCOUNT_CONCURRENCY = 1000

# The configuration contract (linktoken/config.py, Powertools): what the template must set.
EXPECTED_ENV = {
    "PLAID_SECRET_ID",
    "PLAID_SECRET_TTL_SECONDS",
    "PLAID_ENV",
    "PLAID_CLIENT_NAME",
    "PLAID_PRODUCTS",
    "PLAID_COUNTRY_CODES",
    "PLAID_LANGUAGE",
    "PLAID_REDIRECT_URI",
    "PLAID_ANDROID_PACKAGE_NAME",
    "PLAID_WEBHOOK_URL",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "ITEMS_TABLE",
    "ITEMS_KEY_ID",
    "WEBHOOK_QUEUE_URL",
    "PLAID_WEBHOOK_PATH",
}
# Every function of the template (tests/unit/test_template_items.py: what they share).
FUNCTIONS = (
    "LinkTokenFunction",
    "ItemExchangeFunction",
    "ItemsFunction",
    "WebhookReceiverFunction",
    "WebhookProcessorFunction",
)


def branches(value: Any) -> list[Any]:
    """Every value `value` can take once each Fn::If is decided either way (NoValue dropped)."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        _, when_true, when_false = value["Fn::If"]
        return [b for side in (when_true, when_false) for b in branches(side)]
    if value == {"Ref": "AWS::NoValue"}:
        return []
    if isinstance(value, list):
        return [list(combo) for combo in itertools.product(*(branches(v) or [None] for v in value))]
    return [value]


def pattern(name: str) -> re.Pattern[str]:
    return re.compile(PARAMETERS[name]["AllowedPattern"])


def evaluate(expr: Any, params: dict[str, str]) -> Any:
    """A rule expression (Ref, Fn::Equals/Not/And/Or) with these parameter values."""
    if not isinstance(expr, dict):
        return expr
    ((fn, args),) = expr.items()
    if fn == "Ref":
        return params[args]
    values = [evaluate(arg, params) for arg in args]
    operations: dict[str, Callable[[], Any]] = {
        "Fn::Equals": lambda: values[0] == values[1],
        "Fn::Not": lambda: not values[0],
        "Fn::And": lambda: all(values),
        "Fn::Or": lambda: any(values),
    }
    assert fn in operations, f"this evaluator does not know {fn}"
    return operations[fn]()


def refusing_rules(overrides: dict[str, str]) -> list[str]:
    """The template's Rules whose assertions fail for these values over the defaults: what
    CloudFormation refuses before changing anything."""
    params = {name: str(spec.get("Default", "")) for name, spec in PARAMETERS.items()}
    params |= overrides
    return [
        name
        for name, rule in TEMPLATE["Rules"].items()
        if evaluate(rule.get("RuleCondition", True), params)
        and not all(evaluate(a["Assert"], params) for a in rule["Assertions"])
    ]


# ------------------------------------------------------------------------------ function --
def test_function_runs_the_code_it_was_built_and_tested_for() -> None:
    assert FUNCTION["Runtime"] == "python3.13"
    assert FUNCTION["Architectures"] == ["arm64"]
    assert FUNCTION["Tracing"] == "Active"
    assert FUNCTION["CodeUri"] == "handler/"
    module, _, name = FUNCTION["Handler"].rpartition(".")
    source = ROOT / FUNCTION["CodeUri"] / f"{module.replace('.', '/')}.py"
    tree = ast.parse(source.read_text())
    assert name in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, (
        f"{FUNCTION['Handler']} is not a function in {source}"
    )
    assert FUNCTION["AutoPublishAlias"] == "live"
    assert FUNCTION["LoggingConfig"]["LogFormat"] == "JSON"


def test_timeout_covers_the_retry_budget_and_stays_under_api_gateway(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timeout = FUNCTION["Timeout"]
    assert isinstance(timeout, int)
    assert timeout < API_GATEWAY_MAX_SECONDS, "API Gateway gives up at 30 s: answer before that"

    policy = RetryPolicy()
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    secrets: Any = (
        make_secrets_client().meta.config
    )  # botocore's Config sets its fields at run time
    secret_attempts = secrets.retries["total_max_attempts"]
    secret_budget = secret_attempts * (secrets.connect_timeout + secrets.read_timeout)
    backoff = max(policy.backoff_cap, policy.max_retry_after)

    # A cold secret read that uses all its attempts, then one full Plaid attempt.
    assert timeout >= secret_budget + policy.attempt_seconds + policy.safety_margin
    # With the secret cached: a first attempt that timed out, the longest wait, a second one.
    assert timeout >= 2 * policy.attempt_seconds + backoff + policy.safety_margin
    # The handler never starts an attempt that cannot finish, so more attempts are bounded by
    # get_remaining_time_in_millis(), not by this number.
    assert policy.max_attempts >= 2


def test_reserved_concurrency_is_off_by_default() -> None:
    assert PARAMETERS["ReservedConcurrency"]["Default"] == ""
    assert branches(FUNCTION["ReservedConcurrentExecutions"]) == [{"Ref": "ReservedConcurrency"}]
    assert TEMPLATE["Conditions"]["HasReservedConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ReservedConcurrency"}, ""]}]
    }


def test_default_throttling_bounds_concurrency_and_cost_when_plaid_is_slow() -> None:
    """API Gateway's token bucket admits at most burst + rate x t requests in any t seconds,
    and when Plaid is slow each one holds a function instance for up to the timeout (API
    Gateway does not retry). With the defaults the worst case stays a small share of a
    default account's concurrency, whatever the load on the API."""
    rate = PARAMETERS["ApiThrottlingRateLimit"]["Default"]
    burst = PARAMETERS["ApiThrottlingBurstLimit"]["Default"]
    timeout = FUNCTION["Timeout"]
    memory_gb = PARAMETERS["MemorySize"]["Default"] / 1024
    assert (rate, burst, timeout, memory_gb) == (5, 20, 20, 1)
    worst_concurrency = burst + rate * timeout
    assert worst_concurrency == 120
    assert worst_concurrency <= 0.15 * ACCOUNT_CONCURRENCY
    # Billed compute at worst: every admitted request runs the whole timeout.
    assert rate * timeout * memory_gb == 100  # GB-s per second, 360,000 an hour
    # The stage applies them, and docs/deploy.md gives the operator the same arithmetic.
    assert API["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
    }
    docs = (ROOT / "docs" / "deploy.md").read_text()
    times = "\N{MULTIPLICATION SIGN}"
    assert f"20 + 5 {times} 20 = 120" in docs
    assert f"5 {times} 20 {times} 1 GB = 100 GB-s" in docs


def test_snapstart_is_opt_in_on_published_versions() -> None:
    assert PARAMETERS["SnapStart"]["Default"] == "false"
    assert FUNCTION["SnapStart"] == {
        "ApplyOn": {"Fn::If": ["SnapStartOn", "PublishedVersions", "None"]}
    }
    # What the handler does after a restore is tested in test_observability.py.


def test_parameter_only_changes_can_publish_a_new_version() -> None:
    assert FUNCTION["AutoPublishAliasAllProperties"] is True
    assert FUNCTION["AutoPublishCodeSha256"] == {"Ref": "DeployRevision"}
    assert PARAMETERS["DeployRevision"]["Default"] == ""


def test_gradual_deployment_is_optional_and_rolls_back_on_alarms() -> None:
    preference = FUNCTION["DeploymentPreference"]
    assert preference["Enabled"] == {"Ref": "GradualDeployment"}
    assert PARAMETERS["GradualDeployment"]["Default"] == "false"
    assert preference["Type"] == {"Ref": "GradualDeploymentType"}
    assert "Canary10Percent5Minutes" in PARAMETERS["GradualDeploymentType"]["AllowedValues"]
    for alarm in preference["Alarms"]:
        assert RESOURCES[alarm["Ref"]]["Type"] == "AWS::CloudWatch::Alarm"


def test_rollback_alarms_watch_the_new_version_and_ignore_plaid_outages() -> None:
    """A canary must roll back on what the new release breaks, never on Plaid's own state nor
    on the failures of the version it replaces."""
    alarms = {alarm["Ref"] for alarm in FUNCTION["DeploymentPreference"]["Alarms"]}
    assert alarms == {"FunctionErrorsAlarm", "ReleaseRegressionAlarm"}
    new_version = {"Fn::GetAtt": ["LinkTokenFunction", "Version.Version"]}
    errors = RESOURCES["FunctionErrorsAlarm"]["Properties"]
    assert {"Name": "ExecutedVersion", "Value": new_version} in errors["Dimensions"]
    regression = RESOURCES["ReleaseRegressionAlarm"]["Properties"]
    assert regression["MetricName"] == "ReleaseRegression"
    assert {"Name": "FunctionVersion", "Value": new_version} in regression["Dimensions"]
    # Version numbers repeat across the stack's functions: the function is named too.
    assert {"Name": "FunctionName", "Value": {"Ref": "LinkTokenFunction"}} in regression[
        "Dimensions"
    ]

    counted = {code for code, kind in PROBLEM_TYPES.items() if kind.release_regression}
    assert counted == {"INTERNAL_ERROR", "MISCONFIGURED", "UPSTREAM_REJECTED"}
    assert not counted & {"RATE_LIMITED", "UPSTREAM_UNAVAILABLE", "UPSTREAM_TIMEOUT"}


# ------------------------------------------------------------------------- environment ---
def test_environment_sets_the_configuration_contract() -> None:
    assert set(ENV) == EXPECTED_ENV
    assert ENV["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}
    assert ENV["PLAID_ENV"] == {"Ref": "PlaidEnv"}
    assert PARAMETERS["PlaidEnv"]["AllowedValues"] == ["sandbox", "production"]
    # The table's name and the key's ARN (linktoken/config.py accepts either form of the key).
    assert ENV["ITEMS_TABLE"] == {"Ref": "ItemsTable"}
    assert ENV["ITEMS_KEY_ID"] == {"Fn::GetAtt": ["ItemsKey", "Arn"]}
    assert ENV["WEBHOOK_QUEUE_URL"] == {"Ref": "WebhookQueue"}
    # The stack's own receiver route, which new Items' link tokens name (on the request's domain).
    receiver = RESOURCES["WebhookReceiverFunction"]["Properties"]["Events"]["PlaidWebhook"]
    assert ENV["PLAID_WEBHOOK_PATH"] == receiver["Properties"]["Path"] == "/webhooks/plaid"


def test_no_test_override_and_no_credential_in_template_or_parameters() -> None:
    text = (ROOT / "template.yaml").read_text()
    assert "PLAID_BASE_URL" not in text, "a test-only override must never be deployable"
    credential_like = re.compile(r"PASSWORD|TOKEN|API_?KEY|CLIENT_ID|SECRET(?!_ID$|_TTL_SECONDS$)")
    assert not [name for name in ENV if credential_like.search(name)]
    for name, value in ENV.items():
        if name == "PLAID_WEBHOOK_PATH":  # the template's own route, not a setting
            continue
        for literal in (b for b in branches(value) if isinstance(b, str)):
            assert literal in {"false", "true"}, f"{name} has a literal value {literal!r}"
    # "LinkToken" is the product and "SecretsManager" a service, not credentials.
    secretish = re.compile(
        r"(?i)password|(?<!link)token|apikey|accesskey|clientid"
        r"|secret(?!id$|kmskeyarn$|ttlseconds$|smanager)"
    )
    assert not [name for name in PARAMETERS if secretish.search(name)]


def test_env_json_names_exactly_the_template_variables() -> None:
    env_json = json.loads((ROOT / "infra" / "env.json").read_text())
    assert set(env_json) == set(FUNCTIONS)
    for name in FUNCTIONS:
        variables = RESOURCES[name]["Properties"]["Environment"]["Variables"]
        assert set(env_json[name]) == set(variables), name
        assert "PLAID_BASE_URL" not in env_json[name]
        # Local runs of all three share one configuration (one table, one key, one secret).
        assert env_json[name] == env_json["LinkTokenFunction"], name


# --------------------------------------------------------------------------------- IAM ---
def _statements() -> list[Any]:
    assert FUNCTION["Role"] == {"Fn::GetAtt": ["LinkTokenFunctionRole", "Arn"]}
    assert "Policies" not in FUNCTION, "the stack's role, so SAM adds no managed policy"
    (policy,) = ROLE["Policies"]
    statements: list[Any] = policy["PolicyDocument"]["Statement"]
    return statements


XRAY_WRITE = {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AWSXrayWriteOnlyAccess"}
VPC_ACCESS = {
    "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}


def test_the_function_writes_logs_to_its_own_log_group_only() -> None:
    """No AWSLambdaBasicExecutionRole (logs:CreateLogGroup, CreateLogStream and PutLogEvents on
    every log group of the account): two actions on the function's own log group."""
    logs = _statements()[0]
    assert logs["Effect"] == "Allow"
    assert logs["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert logs["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}"
        ":log-group:${FunctionLogGroup}:*"
    }
    assert FUNCTION["LoggingConfig"]["LogGroup"] == {"Ref": "FunctionLogGroup"}
    # Nothing else in the role mentions logs: no other statement, no managed policy for them.
    others = json.dumps(_statements()[1:])
    assert "logs:" not in others
    # At most X-Ray's writes and, in a VPC only, the network interfaces (tested below).
    assert branches(ROLE["ManagedPolicyArns"]) == [[XRAY_WRITE, VPC_ACCESS]]
    assert "BasicExecutionRole" not in json.dumps(TEMPLATE["Resources"])
    assert ROLE["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]


def test_iam_reads_only_the_one_secret() -> None:
    _logs, read, *rest = _statements()
    assert read["Effect"] == "Allow"
    assert read["Action"] == "secretsmanager:GetSecretValue"
    resources = branches(read["Resource"])
    assert resources == [
        {"Ref": "PlaidSecret"},
        {"Ref": "PlaidSecretId"},
        {
            "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}"
            ":secret:${PlaidSecretId}-??????"
        },
    ]
    assert not any("*" in json.dumps(r) for r in resources)
    assert RESOURCES["PlaidSecret"]["Condition"] == "CreateSecret"
    # Only the secret key's statement may follow, then update mode's two Items statements
    # (tests/unit/test_template_items.py).
    assert len(rest) == 3
    assert [statement["Sid"] for statement in rest[1:]] == ["ReadItems", "UnsealAccessTokens"]


def test_iam_decrypts_only_with_the_given_key_through_secrets_manager() -> None:
    _, _, kms, *_items = _statements()
    cases = branches(kms)
    assert len(cases) == 1, "the kms statement exists only when a key is given"
    assert kms["Fn::If"][0] == "HasKmsKey"
    statement = cases[0]
    assert statement["Action"] == "kms:Decrypt"
    assert statement["Resource"] == {"Ref": "PlaidSecretKmsKeyArn"}
    assert "kms:ViaService" in statement["Condition"]["StringEquals"]
    assert PARAMETERS["PlaidSecretKmsKeyArn"]["Default"] == ""


def test_no_wildcards_anywhere_in_the_function_policy() -> None:
    text = json.dumps(ROLE["Policies"])
    assert '"*"' not in text
    assert "secretsmanager:*" not in text
    assert "kms:*" not in text


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("plaid", True),
        ("prod/plaid-link-token", True),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/plaid-AbC123", True),
        ("*", False),
        ("plaid*", False),
        ("plaid?", False),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:*", False),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/plaid", False),  # partial
    ],
)
def test_secret_parameter_names_exactly_one_secret(value: str, accepted: bool) -> None:
    assert bool(pattern("PlaidSecretId").fullmatch(value)) is accepted


def test_secret_is_referenced_or_created_empty() -> None:
    secret = RESOURCES["PlaidSecret"]["Properties"]
    assert "SecretString" not in secret
    assert "GenerateSecretString" not in secret
    assert ENV["PLAID_SECRET_ID"] == {
        "Fn::If": ["CreateSecret", {"Ref": "PlaidSecret"}, {"Ref": "PlaidSecretId"}]
    }


# --------------------------------------------------------------------------------- API ---
def test_api_requires_a_jwt_on_every_route() -> None:
    auth = API["Auth"]
    authorizer = auth["Authorizers"][auth["DefaultAuthorizer"]]
    assert authorizer["JwtConfiguration"] == {
        "issuer": {"Ref": "JwtIssuer"},
        "audience": {"Ref": "JwtAudience"},
    }
    assert authorizer["IdentitySource"] == "$request.header.Authorization"
    event = FUNCTION["Events"]["CreateLinkToken"]
    assert event["Type"] == "HttpApi"
    assert event["Properties"] == {
        "ApiId": {"Ref": "LinkTokenApi"},
        "Method": "POST",
        "Path": "/link-token",
        "PayloadFormatVersion": "2.0",
    }, "no per-route Auth override (e.g. Authorizer: NONE)"


def test_cors_is_closed_by_default_and_never_a_wildcard() -> None:
    assert PARAMETERS["CorsOrigins"]["Default"] == PARAMETERS["CorsHttpOrigins"]["Default"] == ""
    for name in ("CorsOrigins", "CorsHttpOrigins"):
        origins = pattern(name)
        for value in ("*", "https://*.example.com", "http://*.example.com", "null"):
            assert not origins.fullmatch(value), (name, value)
        for value in ("https://a.example.com,*", "http://localhost:3000,*"):
            assert not origins.fullmatch(value), (name, value)
    cors = API["CorsConfiguration"]
    assert cors["Fn::If"][0] == "HasCors"
    assert cors["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    assert TEMPLATE["Conditions"]["HasCors"] == {
        "Fn::Or": [{"Condition": "HasHttpsCors"}, {"Condition": "HasHttpCors"}]
    }
    config = cors["Fn::If"][1]
    assert branches(config["AllowOrigins"]) == [
        {"Fn::Split": [",", {"Fn::Sub": "${CorsOrigins},${CorsHttpOrigins}"}]},
        {"Fn::Split": [",", {"Ref": "CorsOrigins"}]},
        {"Fn::Split": [",", {"Ref": "CorsHttpOrigins"}]},
    ]
    # The routes' methods, and OPTIONS for the preflight API Gateway answers itself.
    assert config["AllowMethods"] == ["GET", "POST", "DELETE", "OPTIONS"]
    assert set(config["AllowMethods"]) == {r.method for r in function_routes(TEMPLATE)} | {
        "OPTIONS"
    }
    assert config["AllowHeaders"] == ["authorization", "content-type"]
    assert config["ExposeHeaders"] == [
        "retry-after",
        "location",
    ]  # Retry-After, and POST /items's Location
    assert config["MaxAge"] > 0
    assert config["AllowCredentials"] is False


def test_origins_and_the_webhook_are_https_outside_sandbox() -> None:
    """CorsOrigins and PlaidWebhookUrl take https only; http:// origins have their own
    parameter, which the Rules refuse unless PlaidEnv=sandbox (a Rule cannot test a substring,
    so the scheme is told by the parameter)."""
    https_origins, http_origins = pattern("CorsOrigins"), pattern("CorsHttpOrigins")
    assert https_origins.fullmatch("https://app.example.com,https://admin.example.com:8443")
    for value in ("http://localhost:3000", "https://app.example.com,http://localhost:3000"):
        assert not https_origins.fullmatch(value), value
    assert http_origins.fullmatch("http://localhost:3000,http://192.168.1.20:5173")
    assert not http_origins.fullmatch("https://app.example.com")
    webhook = pattern("PlaidWebhookUrl")
    assert webhook.fullmatch("") and webhook.fullmatch("https://hooks.example.com/plaid")
    for value in ("http://hooks.example.com/plaid", "HTTP://hooks.example.com", "ftp://x.example"):
        assert not webhook.fullmatch(value), value

    http_origin = {"CorsHttpOrigins": "http://localhost:3000"}
    assert refusing_rules({**http_origin, "PlaidEnv": "production"}) == ["HttpOriginsOnlyInSandbox"]
    assert refusing_rules({**http_origin, "PlaidEnv": "sandbox"}) == []
    assert refusing_rules({"PlaidEnv": "production", "CorsOrigins": "https://a.example.com"}) == []


def test_stage_is_throttled_and_access_logged_with_retention() -> None:
    assert API["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
    }
    settings = API["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    # The format must be one valid JSON object once API Gateway substitutes the variables.
    sample = re.sub(r"\$context\.[A-Za-z.]+", "1", settings["Format"])
    doc = json.loads(sample)
    assert {"requestId", "status", "routeKey", "authorizerError"} <= set(doc)
    assert "claims" not in settings["Format"], "the raw JWT sub is never logged"
    for group in ("ApiAccessLogGroup", "FunctionLogGroup"):
        assert RESOURCES[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
    assert FUNCTION["LoggingConfig"]["LogGroup"] == {"Ref": "FunctionLogGroup"}


# ------------------------------------------------------------- encryption and network ---
NO_VALUE = {"Ref": "AWS::NoValue"}
LOG_GROUPS = (
    "FunctionLogGroup",
    "ApiAccessLogGroup",
    "ItemExchangeFunctionLogGroup",
    "ItemsFunctionLogGroup",
)


def _log_group_arn(group: str) -> str:
    name = RESOURCES[group]["Properties"]["LogGroupName"]["Fn::Sub"]
    return f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:{name}"


def test_log_groups_are_encrypted_with_the_stacks_key_only_when_asked() -> None:
    assert PARAMETERS["LogsKmsKey"]["Default"] == "false"
    assert TEMPLATE["Conditions"]["EncryptLogs"] == {"Fn::Equals": [{"Ref": "LogsKmsKey"}, "true"]}
    for group in LOG_GROUPS:
        assert RESOURCES[group]["Properties"]["KmsKeyId"] == {
            "Fn::If": ["EncryptLogs", {"Fn::GetAtt": ["LogsKey", "Arn"]}, NO_VALUE]
        }
    key = RESOURCES["LogsKey"]
    assert key["Condition"] == RESOURCES["LogsKeyAlias"]["Condition"] == "EncryptLogs"
    assert key["Properties"]["EnableKeyRotation"] is True


def test_logs_key_serves_cloudwatch_logs_for_exactly_these_log_groups() -> None:
    admin, logs = RESOURCES["LogsKey"]["Properties"]["KeyPolicy"]["Statement"]
    # The account's own root (IAM decides who administers it), never a wildcard principal.
    assert admin["Principal"] == {
        "AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    }
    assert logs["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.${AWS::URLSuffix}"}}
    assert not [a for a in logs["Action"] if a == "kms:*" or a.startswith("kms:Create")]
    context = logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
    assert [c["Fn::Sub"] for c in context] == [_log_group_arn(g) for g in LOG_GROUPS]


def test_outside_a_vpc_the_role_may_not_manage_network_interfaces() -> None:
    """The network-interface rights Lambda needs in a VPC come with the VPC only."""
    assert ROLE["ManagedPolicyArns"][1] == {"Fn::If": ["InVpc", VPC_ACCESS, NO_VALUE]}
    assert "ec2:" not in json.dumps(ROLE["Policies"])


def test_vpc_is_off_by_default_and_needs_both_vpc_and_subnets() -> None:
    assert PARAMETERS["VpcId"]["Default"] == PARAMETERS["VpcSubnetIds"]["Default"] == ""
    # Both, though the Rules below already require both: cfn-lint then knows the subnets are
    # never empty where they are used.
    assert TEMPLATE["Conditions"]["InVpc"] == {
        "Fn::And": [
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "VpcId"}, ""]}]},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "VpcSubnetIds"}, ""]}]},
        ]
    }
    # Rules: a VPC without subnets, or subnets without a VPC, is refused before deploying.
    rules = TEMPLATE["Rules"]
    asserted = {
        json.dumps(rule["RuleCondition"]): json.dumps(rule["Assertions"][0]["Assert"])
        for rule in rules.values()
    }
    for given, needed in (("VpcId", "VpcSubnetIds"), ("VpcSubnetIds", "VpcId")):
        set_ = json.dumps({"Fn::Not": [{"Fn::Equals": [{"Ref": given}, ""]}]})
        assert asserted[set_] == json.dumps({"Fn::Not": [{"Fn::Equals": [{"Ref": needed}, ""]}]})
    assert pattern("VpcId").fullmatch("vpc-0123456789abcdef0")
    subnets = pattern("VpcSubnetIds")
    assert subnets.fullmatch("subnet-0123abcd,subnet-0123456789abcdef0")
    assert not subnets.fullmatch("subnet-0123abcd,") and not subnets.fullmatch("sg-0123abcd")


def test_in_a_vpc_the_function_only_speaks_https_out() -> None:
    assert FUNCTION["VpcConfig"] == {
        "Fn::If": [
            "InVpc",
            {
                "SubnetIds": {"Fn::Split": [",", {"Ref": "VpcSubnetIds"}]},
                "SecurityGroupIds": [{"Ref": "FunctionSecurityGroup"}],
            },
            NO_VALUE,
        ]
    }
    group = RESOURCES["FunctionSecurityGroup"]
    assert group["Condition"] == "InVpc"
    assert "SecurityGroupIngress" not in group["Properties"]
    (egress,) = group["Properties"]["SecurityGroupEgress"]
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 443, 443)


def test_in_a_vpc_secrets_manager_is_reached_through_an_endpoint_only_the_function_uses() -> None:
    assert PARAMETERS["VpcSecretsManagerEndpoint"]["Default"] == "true"
    assert TEMPLATE["Conditions"]["CreateSecretsManagerEndpoint"] == {
        "Fn::And": [
            {"Condition": "InVpc"},
            {"Fn::Equals": [{"Ref": "VpcSecretsManagerEndpoint"}, "true"]},
        ]
    }
    endpoint = RESOURCES["SecretsManagerEndpoint"]
    props = endpoint["Properties"]
    assert endpoint["Condition"] == "CreateSecretsManagerEndpoint"
    assert props["ServiceName"] == {"Fn::Sub": "com.amazonaws.${AWS::Region}.secretsmanager"}
    assert (props["VpcEndpointType"], props["PrivateDnsEnabled"]) == ("Interface", True)
    assert props["SubnetIds"] == FUNCTION["VpcConfig"]["Fn::If"][1]["SubnetIds"]
    group = RESOURCES[props["SecurityGroupIds"][0]["Ref"]]
    assert group["Condition"] == "CreateSecretsManagerEndpoint"
    (ingress,) = group["Properties"]["SecurityGroupIngress"]
    assert ingress["SourceSecurityGroupId"] == {"Ref": "FunctionSecurityGroup"}
    assert (ingress["IpProtocol"], ingress["FromPort"], ingress["ToPort"]) == ("tcp", 443, 443)
    # The endpoint starts no connection: its one egress rule matches no traffic.
    (egress,) = group["Properties"]["SecurityGroupEgress"]
    assert egress["CidrIp"] == "255.255.255.255/32"


def _resource_blocks(text: str) -> dict[str, str]:
    """Each resource's text in template.yaml: from its `  Name:` line to the next one."""
    body = text.split("\nResources:\n", 1)[1].split("\nOutputs:\n", 1)[0]
    parts = re.split(r"^  ([A-Za-z0-9]+):\n", body, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_checkov_suppression_sits_on_its_resource_with_a_reason() -> None:
    """checkov's findings that are not fixed are justified beside their resource, and only
    those: the three Lambda ones on each function (and reserved concurrency on the SQS
    consumer), the customer-key ones on the table and the two queues."""
    text = (ROOT / "template.yaml").read_text()
    skips = re.findall(r"^ *# checkov:skip=(CKV_\w+):(.*)$", text, flags=re.MULTILINE)
    found = {
        name: sorted(re.findall(r"# checkov:skip=(CKV_\w+):", block))
        for name, block in _resource_blocks(text).items()
        if "checkov:skip" in block
    }
    lambda_skips = ["CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"]
    assert found == {
        "LinkTokenFunction": lambda_skips,
        "ItemExchangeFunction": lambda_skips,
        "ItemsFunction": lambda_skips,
        "WebhookReceiverFunction": lambda_skips,
        "WebhookProcessorFunction": ["CKV_AWS_115", *lambda_skips],
        "ItemsTable": ["CKV_AWS_119"],
        "WebhookQueue": ["CKV_AWS_27"],
        "WebhookDeadLetterQueue": ["CKV_AWS_27"],
    }
    # What the queues' justification says: SQS-managed encryption at rest.
    for queue in ("WebhookQueue", "WebhookDeadLetterQueue"):
        assert RESOURCES[queue]["Properties"]["SqsManagedSseEnabled"] is True
    # And the processor's: no reserved concurrency to throttle the event source mapping.
    assert "ReservedConcurrentExecutions" not in RESOURCES["WebhookProcessorFunction"]["Properties"]
    assert len(skips) == sum(len(checks) for checks in found.values())
    for check, reason in skips:
        assert len(reason.split()) >= 8, f"{check} needs a reason, not a bare suppression"


# ----------------------------------------------------------------------- observability ---
def _alarms() -> dict[str, Any]:
    return {
        k: v["Properties"] for k, v in RESOURCES.items() if v["Type"] == "AWS::CloudWatch::Alarm"
    }


def test_alarms_cover_errors_5xx_failures_throttles_and_duration() -> None:
    watched = set()
    for props in _alarms().values():
        if "MetricName" in props:
            watched.add(props["MetricName"])
        for query in props.get("Metrics", []):
            if "MetricStat" in query:
                watched.add(query["MetricStat"]["Metric"]["MetricName"])
    assert {"Errors", "Throttles", "Duration", "5xx", "LinkTokenFailed"} <= watched
    for name, props in _alarms().items():
        assert props["AlarmActions"] == {
            "Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
        }, name
        assert props["TreatMissingData"] == "notBreaching", name


def test_link_token_failed_alarm_sums_exactly_the_server_side_codes() -> None:
    props = _alarms()["LinkTokenFailedAlarm"]
    stats = [q["MetricStat"] for q in props["Metrics"] if "MetricStat" in q]
    codes = set()
    for stat in stats:
        metric = stat["Metric"]
        assert metric["MetricName"] == "LinkTokenFailed"
        assert metric["Namespace"] == {"Ref": "MetricsNamespace"}
        dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        assert dims["service"] == {"Ref": "ServiceName"}
        codes.add(dims["ErrorCode"])
    server_side = {code for code, kind in PROBLEM_TYPES.items() if kind.status >= 429}
    assert codes == server_side, "alarm codes drifted from linktoken/problems.py"
    assert len(stats) <= 10, "CloudWatch allows at most 10 metrics in one alarm"
    (expression,) = [q for q in props["Metrics"] if q.get("ReturnData")]
    ids = {q["Id"] for q in props["Metrics"] if "MetricStat" in q}
    assert set(re.findall(r"[a-z][A-Za-z0-9]*", expression["Expression"])) - {"SUM"} == ids
    # Metrics land where the alarm looks: the same parameters feed Powertools.
    assert ENV["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}
    assert ENV["POWERTOOLS_SERVICE_NAME"] == {"Ref": "ServiceName"}


def test_saved_queries_cover_the_operator_investigations() -> None:
    queries = {
        v["Properties"]["Name"]["Fn::Sub"]: v["Properties"]["QueryString"]
        for v in RESOURCES.values()
        if v["Type"] == "AWS::Logs::QueryDefinition"
    }
    text = "\n".join(queries.values())

    def used_in_one(*needles: str) -> bool:
        return any(all(n in q for n in needles) for q in queries.values())

    assert used_in_one(
        "link_token_failed", "plaid_error_code", "plaid_request_id", "correlation_id"
    )
    assert used_in_one("user_ref")
    assert used_in_one("plaid_latency_ms", "sort plaid_latency_ms desc")
    assert used_in_one("platform.report", "initDurationMs")
    assert not re.search(r"\bsub\s*=|claims", text), "queries never need the raw sub"


def test_outputs_name_what_an_operator_looks_for() -> None:
    assert {
        "ApiUrl",
        "LinkTokenEndpoint",
        "FunctionName",
        "FunctionAlias",
        "FunctionLogGroupName",
        "ApiAccessLogGroupName",
    } <= set(TEMPLATE["Outputs"])


def test_deploy_md_names_every_output_and_nothing_else() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text()
    paragraph = text.split("\nOutputs: ", 1)[1].split("\n\n", 1)[0]
    assert set(re.findall(r"`([A-Za-z]+)`", paragraph)) == set(TEMPLATE["Outputs"])


# ------------------------------------------------------------------ deploy configuration --
def _overrides(env: str) -> dict[str, str]:
    config = tomllib.loads((ROOT / "infra" / "samconfig.toml").read_text())
    entries = config[env]["deploy"]["parameters"]["parameter_overrides"]
    parsed = {}
    for entry in entries:
        key, _, value = entry.partition("=")
        parsed[key] = value.strip('"')
    return parsed


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_samconfig_sets_known_parameters_and_all_required_ones(env: str) -> None:
    overrides = _overrides(env)
    assert set(overrides) <= set(PARAMETERS), (
        f"unknown parameters: {set(overrides) - set(PARAMETERS)}"
    )
    required = {name for name, p in PARAMETERS.items() if "Default" not in p}
    assert required <= set(overrides)
    for name, value in overrides.items():
        spec = PARAMETERS[name]
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], value), (name, value)
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]], (name, value)
    assert refusing_rules(overrides) == [], "CloudFormation's Rules would refuse this deploy"


_V2_EVENT = {
    "type": "object",
    "required": ["version", "routeKey", "rawPath", "headers", "requestContext", "isBase64Encoded"],
    "properties": {
        "version": {"const": "2.0"},
        "routeKey": {"const": "POST /link-token"},
        "rawPath": {"const": "/link-token"},
        "headers": {"type": "object", "propertyNames": {"pattern": "^[a-z0-9-]+$"}},
        "isBase64Encoded": {"type": "boolean"},
        "body": {"type": "string"},
        "requestContext": {
            "type": "object",
            "required": ["requestId", "http", "routeKey", "stage", "apiId", "timeEpoch"],
            "properties": {
                "requestId": {"type": "string", "minLength": 1},
                "http": {
                    "type": "object",
                    "required": ["method", "path", "sourceIp"],
                    "properties": {"method": {"const": "POST"}, "path": {"const": "/link-token"}},
                },
            },
        },
    },
}


def test_events_are_realistic_v2_payloads_with_expectations() -> None:
    events = ROOT / "infra" / "events"
    expected = json.loads((events / "expected.json").read_text())
    assert set(expected) == {p.name for p in events.glob("*.json")} - {"expected.json"}
    assert expected["ok.json"] == 200
    for name in expected:
        event = json.loads((events / name).read_text())
        if name == "payload-v1.json":  # the deliberately wrong payload format
            assert event["version"] == "1.0"
            continue
        jsonschema.validate(event, _V2_EVENT)
        claims = event["requestContext"].get("authorizer", {}).get("jwt", {}).get("claims", {})
        assert ("sub" in claims) is (name != "no-identity.json"), name
