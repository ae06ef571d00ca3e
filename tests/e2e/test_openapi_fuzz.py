"""docs/openapi.yaml against `make serve`, by a generic OpenAPI tester: Schemathesis.

`make serve` is started as it is everywhere else (infra/gateway/serve_process.py) and
Schemathesis's own command line (`st run`, in a process of its own) is pointed at it with the
document, every phase (the document's examples, coverage, fuzzing, and stateful sequences
through the document's links: `POST /items` -> `DELETE /items/{item_id}`, the refresh and
update mode) and
every check that applies: the statuses, media types, headers and bodies of every answer must
be the document's, schema-valid requests must be accepted and invalid ones refused, a
resource must be there after its creation and gone after its removal, the JWT must be
enforced, one user must not read another's Items. One more check is this file's own: an
answer may carry no header the document does not list for its status. The run is bounded
(`MAX_EXAMPLES` per operation, no shrinking, a fixed seed; `OPENAPI_FUZZ_SEED` and
`OPENAPI_FUZZ_EXAMPLES` change them) and keeps nothing: no Hypothesis database, no
Schemathesis cache, everything it writes is in a temporary directory.

What the tester cannot know, and this file tells it (each where it is done, with the reason):

- The document lists every Plaid Link product and says only those the service is configured
  with (`PLAID_PRODUCTS`) are accepted: the server here is configured with all of them.
- A `public_token` is only good when Link made it: every request's `public_token` that has
  the documented form is replaced by a fresh one from the Plaid stand-in (before_call).
- `LinkText`'s pattern names the surrogates (`\\ud800-\\udfff`), which Schemathesis's Rust
  regex engine cannot express; Schemathesis is given the pattern without them (the same
  pattern on every string it can send) instead of dropping it.
- `LinkText` means `str.isprintable()`, which no regex without `\\p{}` can say exactly: the
  pattern also lets through unassigned, private-use and some format characters (the gap
  `tests/integration/test_contract.py` pins). Such characters are replaced in what is sent.
- The `unsupported_method` check expects 405 for a method a path does not have; an HTTP API
  answers 404 `{"message":"Not Found"}` (it has no 405), as the document's 404s say.
- `max_response_time` is a timing assertion (10 s by default): not on a loaded CI machine.
- `POST /webhooks/plaid` takes only what Plaid signed, and make serve's Plaid stand-in keeps
  its signing key to itself (its control routes rotate the key and fire webhooks for an
  Item, none gives the private key or a signature for a body of one's own): no hook can sign
  what Schemathesis generates, so that operation is fuzzed for what it answers (every
  answer still has to be documented) but is not expected to reach a 200 here.
  tests/integration/test_contract.py gives it its real 200s.

Beside the random walks, each link of `POST /items` is also followed by hand from a real 201,
deterministically. The last tests break a copy of the document in the ways that matter (a
status, a header, a header's value, a body, a link) and show that the same checks then fail;
and check what API Gateway answers before any route is matched (a body over 10 MB), which
no generated request reaches.

This module is also the run's hooks module (`SCHEMATHESIS_HOOKS`): the hooks and the check
register only in Schemathesis's process, where `OPENAPI_FUZZ_STANDIN_URL` is set.
"""

from __future__ import annotations

import copy
import http.client
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import pytest
import yaml

from infra.gateway.jwt_local import dev_token
from infra.gateway.serve_process import ServeProcess, serve
from linktoken.plaid_values import LINK_PRODUCTS

if TYPE_CHECKING:
    from schemathesis import Case, CheckContext, HookContext, Response

ROOT = Path(__file__).resolve().parents[2]
DOC_PATH = ROOT / "docs" / "openapi.yaml"
HOOKS_MODULE = "tests.e2e.test_openapi_fuzz"
STANDIN_ENV = "OPENAPI_FUZZ_STANDIN_URL"
SEED = int(os.environ.get("OPENAPI_FUZZ_SEED", "20261207"))
MAX_EXAMPLES = int(os.environ.get("OPENAPI_FUZZ_EXAMPLES", "25"))
# Two app users, so that object_level_authorization has someone to try the other's Items as.
PEERS = ("alice", "bob")

# Every check Schemathesis has but these, which cannot apply here (`--checks all` would also
# turn on max_response_time, with a 10 s limit).
EXCLUDED_CHECKS = {
    # Expects 405 for a method a path lacks (TRACE /items); API Gateway's HTTP API answers
    # 404 {"message":"Not Found"} for any method and path without a route: it has no 405.
    "unsupported_method": "an HTTP API answers 404, never 405",
    # Fails an answer slower than 10 s: a timing assertion, meaningless on a loaded machine.
    "max_response_time": "no timing assertions",
}
# This file's own check (registered by the hooks below).
OWN_CHECKS = {"undocumented_response_headers"}
# Operations no generated request can succeed at against make serve, and why.
NO_SUCCESS_EXPECTED = {
    # Only a webhook signed with the Plaid stand-in's key is a 200, and the key stays inside
    # make serve's process (infra/doubles/standin_control.py has no route that gives it or
    # signs a given body): every generated request is 401 WEBHOOK_UNVERIFIED (or 413, 503).
    "POST /webhooks/plaid": "the stand-in's signing key cannot be had from outside make serve",
}


def checks_to_run() -> set[str]:
    """Every check Schemathesis has, but the excluded ones, and this file's."""
    import schemathesis.specs.openapi.checks  # noqa: F401 - registers the OpenAPI checks
    from schemathesis.checks import CHECKS

    return (set(CHECKS.get_all_names()) - set(EXCLUDED_CHECKS)) | OWN_CHECKS


# Headers of HTTP itself, on any answer; the document lists the API's own.
PROTOCOL_HEADERS = frozenset({"content-length", "date", "connection", "keep-alive"})
# Added by make serve only, never by the deployed API: `x-content-type-options` by the guard
# every local server shares (infra/gateway/local_guard.py), `x-plaid-stand-in` to every
# function answer while the Plaid stand-in plays Plaid (infra/gateway/serve.py).
LOCAL_ONLY_HEADERS = frozenset({"x-content-type-options", "x-plaid-stand-in"})
# The surrogates in LinkText's pattern; the same class without them is equal on every string
# that can be sent as UTF-8 (surrogates cannot), and Schemathesis's regex engine takes it.
SURROGATES_AND_PRIVATE_USE = r"\ud800-\uf8ff"
PRIVATE_USE = r"\ue000-\uf8ff"


# ------------------------------------------------------ the hooks (Schemathesis's process) ---
def _link_text_char(doc: dict[str, Any]) -> re.Pattern[str]:
    """One character LinkText's pattern accepts (its character class, as Python reads it)."""
    pattern = doc["components"]["schemas"]["LinkText"]["pattern"]
    match = re.fullmatch(r"\^(\[.+\])\+\$", pattern)
    assert match, f"LinkText's pattern is no longer ^[...]+$: {pattern!r}; update the hooks"
    return re.compile(match.group(1))


def _printable(value: Any, allowed: re.Pattern[str]) -> Any:
    """`value` with each character the pattern lets through but the service refuses (not
    `str.isprintable()`) replaced by `?`; what the pattern refuses is left as it is."""
    if isinstance(value, str):
        return "".join("?" if allowed.fullmatch(c) and not c.isprintable() else c for c in value)
    if isinstance(value, list):
        return [_printable(item, allowed) for item in value]
    if isinstance(value, dict):
        return {key: _printable(item, allowed) for key, item in value.items()}
    return value


def undocumented_response_headers(ctx: CheckContext, response: Response, case: Case[Any]) -> None:
    """This file's check: an answer carries only the headers its status documents (and
    HTTP's own, and make serve's local-only ones)."""
    documented = case.operation.responses.find_by_status_code(response.status_code)
    if documented is None:
        return  # an undocumented status: status_code_conformance's to report
    allowed = {name.lower() for name, _ in documented.headers.items()}
    allowed |= PROTOCOL_HEADERS | LOCAL_ONLY_HEADERS
    if documented.definition.get("content"):
        allowed.add("content-type")  # its value is content_type_conformance's
    extra = sorted({name.lower() for name in response.headers} - allowed)
    if extra:
        raise AssertionError(
            f"{case.operation.label} {response.status_code}: header(s) {extra} are not "
            f"documented for this status (documented: {sorted(allowed)})"
        )


def mint_public_token(standin_url: str) -> str:
    """A fresh public token from the stand-in's `/sandbox/public_token/create`."""
    import requests

    from infra.invoke.local_env import STANDIN_KEYS

    client_id, secret = STANDIN_KEYS
    answer = requests.post(
        f"{standin_url}/sandbox/public_token/create",
        json={"institution_id": "ins_109508", "initial_products": ["transactions"]},
        headers={"plaid-client-id": client_id, "plaid-secret": secret},
        timeout=30,
    )
    answer.raise_for_status()
    token: str = answer.json()["public_token"]
    return token


def _register_hooks(standin_url: str) -> None:
    import schemathesis

    doc = yaml.safe_load(DOC_PATH.read_text())
    link_text = _link_text_char(doc)
    request = doc["components"]["schemas"]["ItemExchangeRequest"]
    public_token = re.compile(request["properties"]["public_token"]["pattern"])

    @schemathesis.hook
    def before_load_schema(context: HookContext, raw_schema: dict[str, Any]) -> None:
        text = raw_schema["components"]["schemas"]["LinkText"]
        assert SURROGATES_AND_PRIVATE_USE in text["pattern"], "LinkText's pattern changed"
        text["pattern"] = text["pattern"].replace(SURROGATES_AND_PRIVATE_USE, PRIVATE_USE)

    @schemathesis.hook("before_call")
    def as_link_gives_it(context: HookContext, case: Case[Any], kwargs: dict[str, Any]) -> None:
        if case.operation.definition.raw.get("operationId") != "exchangeItem":
            return
        body = case.body
        if not isinstance(body, dict):
            return
        # Only a value of the documented form is replaced: what is invalid stays invalid.
        token = body.get("public_token")
        if isinstance(token, str) and public_token.fullmatch(token):
            body["public_token"] = mint_public_token(standin_url)
        if "metadata" in body:
            body["metadata"] = _printable(body["metadata"], link_text)

    schemathesis.check(undocumented_response_headers)


if os.environ.get(STANDIN_ENV):
    _register_hooks(os.environ[STANDIN_ENV])


# ------------------------------------------------------------------------ running it ---
@dataclass
class Run:
    returncode: int
    output: str
    events: list[dict[str, Any]]
    seconds: float

    def scenarios(self, phase: str | None = None) -> Iterator[dict[str, Any]]:
        for event in self.events:
            scenario = event.get("ScenarioFinished")
            if scenario and scenario.get("recorder") and phase in (None, scenario["phase"]):
                yield scenario["recorder"]

    def checks_run(self) -> set[str]:
        return {
            check["name"]
            for recorder in self.scenarios()
            for checks in recorder.get("checks", {}).values()
            for check in checks
        }

    def answers(self) -> Iterator[tuple[str, dict[str, Any], int | None]]:
        """(operation label, case, status) of every request sent."""
        for recorder in self.scenarios():
            for case_id, case in recorder.get("cases", {}).items():
                value = case["value"]
                response = recorder.get("interactions", {}).get(case_id, {}).get("response")
                status = response["status_code"] if response else None
                yield f"{value['method']} {value['path']}", case, status


@pytest.fixture(scope="module")
def server() -> Iterator[ServeProcess]:
    # Every product the document lists is offered, so that every schema-valid request is one
    # this deployment accepts (the document says only configured products are).
    env = {"WORKERS": "2", "PLAID_PRODUCTS": ",".join(sorted(LINK_PRODUCTS))}
    with serve(env) as running:
        assert running.standin_url, "make serve runs the Plaid stand-in by default"
        yield running


def schemathesis_run(server: ServeProcess, workdir: Path, doc: Path = DOC_PATH, *args: str) -> Run:
    """`st run` over `doc` against the server, as users of its own; its events from the
    NDJSON report."""
    users = uuid.uuid4().hex[:8]
    auth = workdir / "auth.json"
    auth.write_text(
        json.dumps(
            {
                "auth": [
                    {
                        "name": peer,
                        "fixedHeaders": [
                            {
                                "name": "Authorization",
                                "value": f"Bearer {dev_token(sub=f'fuzz-{peer}-{users}')}",
                            }
                        ],
                    }
                    for peer in PEERS
                ]
            }
        )
    )
    config = workdir / "schemathesis.toml"
    config.write_text(
        "\n".join(
            [
                "[cache]",
                "enabled = false",  # nothing kept between runs
                "[warnings]",
                # Anything the tool could not do (a pattern it cannot use, an operation it
                # never got past 404 with, ...) fails the run instead of weakening it.
                "fail-on = true",
                "[auth.wfc]",
                f"path = {json.dumps(str(auth))}",
                f"peers = {json.dumps(list(PEERS))}",
                *_no_success_warnings(doc),
            ]
        )
        + "\n"
    )
    events = workdir / "events.ndjson"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        str(doc),
        "--url",
        server.url,
        "--checks",
        ",".join(sorted(checks_to_run())),
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--no-shrink",
        "--generation-database",
        "none",
        # Generation time is not the API's: no health check on a loaded machine's speed.
        "--suppress-health-check",
        "too_slow",
        "--request-timeout",
        "60",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(events),
        "--no-color",
        *args,
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": HOOKS_MODULE,
        STANDIN_ENV: str(server.standin_url),
        "HYPOTHESIS_STORAGE_DIRECTORY": str(workdir / "hypothesis"),
        "NO_COLOR": "1",
    }
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 - this interpreter's own Schemathesis
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    seconds = time.monotonic() - started
    lines = events.read_text().splitlines() if events.exists() else []
    return Run(
        done.returncode,
        f"$ {' '.join(command)}\n{done.stdout}\n{done.stderr}",
        [json.loads(line) for line in lines if line.strip()],
        seconds,
    )


def _no_success_warnings(doc_path: Path) -> list[str]:
    """Schemathesis's config for the NO_SUCCESS_EXPECTED operations: every warning but
    `missing_auth` ("only 401/403 responses": what an unsigned webhook must get), and each
    still fails the run."""
    from schemathesis.config._warnings import DEFAULT_DISPLAYED_WARNINGS
    from schemathesis.core.warnings import SchemathesisWarning

    doc = yaml.safe_load(doc_path.read_text())
    display = [
        w.value for w in DEFAULT_DISPLAYED_WARNINGS if w is not SchemathesisWarning.MISSING_AUTH
    ]
    lines: list[str] = []
    for label in sorted(NO_SUCCESS_EXPECTED):
        method, path = label.split(" ", 1)
        operation_id = doc["paths"][path][method.lower()]["operationId"]
        lines += [
            "[[operations]]",
            f"include-operation-id = {json.dumps(operation_id)}",
            "[operations.warnings]",
            f"display = {json.dumps(display)}",
            "fail-on = true",
        ]
    return lines


def documented_operations(doc: dict[str, Any]) -> set[str]:
    """Every operation of the document, as Schemathesis labels it (`POST /items`)."""
    return {
        f"{method.upper()} {path}"
        for path, item in doc["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
    }


def operation_of(doc: dict[str, Any], operation_id: str) -> tuple[str, str]:
    """(METHOD, path) of an operationId."""
    (found,) = [
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and operation.get("operationId") == operation_id
    ]
    return found


def documented_links(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every link of the answers of `POST /items` (by name): the ones from the Item it makes."""
    links: dict[str, dict[str, Any]] = {}
    for status, response in doc["paths"]["/items"]["post"]["responses"].items():
        for name, link in response.get("links", {}).items():
            links[name] = {**link, "status": int(status)}
    return links


def links_followed(run: Run) -> set[str]:
    """The links the stateful phase followed (whatever their target answered)."""
    followed = set()
    for recorder in run.scenarios("stateful"):
        for case in recorder.get("cases", {}).values():
            transition = case.get("transition")
            if transition and case.get("is_transition_applied"):
                # "POST /items -> [201] RemoveItem -> DELETE /items/{item_id}"
                followed.add(transition["id"].split("] ", 1)[1].split(" -> ", 1)[0])
    return followed


def conformance_failures(
    method: str, path: str, path_parameters: dict[str, str] | None, answer: Any, doc: Path
) -> str | None:
    """What the document's checks say of one real answer (a `requests` or Schemathesis
    response) to `method path`: Schemathesis's conformance checks and this file's; None when
    it conforms."""
    import schemathesis
    from schemathesis.core.failures import FailureGroup
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    case = schemathesis.openapi.from_path(doc)[path][method].Case(path_parameters=path_parameters)
    checks = [
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        undocumented_response_headers,
    ]
    try:
        case.validate_response(answer, checks=checks)
    except FailureGroup as failures:
        return "\n".join(str(failure) for failure in failures.exceptions)
    except AssertionError as failure:  # one failure (Schemathesis's Failure is one)
        return str(failure)
    return None


# ----------------------------------------------------------------------------- the tests ---
def test_a_generic_openapi_tester_finds_nothing_undocumented(
    server: ServeProcess, tmp_path: Path
) -> None:
    run = schemathesis_run(server, tmp_path)
    print(f"schemathesis: {run.seconds:.1f} s, exit {run.returncode}")
    assert run.returncode == 0, run.output
    assert run.events, run.output

    # Every check ran (on every answer it applies to), and none of the excluded ones.
    ran = run.checks_run()
    assert ran == checks_to_run(), (checks_to_run() ^ ran, run.output)

    # Every operation got past validation to a success, so the checks saw its real work (but
    # those no generated request can succeed at: NO_SUCCESS_EXPECTED), and every operation was
    # sent requests, all of whose answers the checks above found documented.
    doc = yaml.safe_load(DOC_PATH.read_text())
    answered = {label for label, _, status in run.answers() if status}
    assert documented_operations(doc) <= answered, run.output  # (and other methods' 404s)
    succeeded = {label for label, _, status in run.answers() if status and status < 300}
    assert succeeded == documented_operations(doc) - set(NO_SUCCESS_EXPECTED), run.output

    # The stateful phase went through every link of the document.
    assert set(documented_links(doc)) == {"RemoveItem", "RefreshItem", "UpdateModeLinkToken"}
    assert set(documented_links(doc)) <= links_followed(run), run.output


def follow_links(server: ServeProcess, doc_path: Path) -> dict[str, tuple[int, str | None]]:
    """Each link of `POST /items`'s 201, followed by hand from a real one (an Item of its own
    user per link): link name -> (its target's status, what the checks say of that answer)."""
    import requests

    doc = yaml.safe_load(doc_path.read_text())
    example = doc["paths"]["/items"]["post"]["requestBody"]["content"]["application/json"]
    outcomes: dict[str, tuple[int, str | None]] = {}
    standin_url = server.standin_url
    assert standin_url, "make serve runs its Plaid stand-in here"
    for name, link in documented_links(doc).items():
        public_token = mint_public_token(standin_url)
        auth = {"authorization": f"Bearer {dev_token(sub=f'links-{name}-{uuid.uuid4().hex}')}"}
        created = requests.post(
            f"{server.url}/items",
            json={
                **example["examples"]["web"]["value"],
                "public_token": public_token,
            },
            headers=auth,
            timeout=60,
        )
        assert created.status_code == link["status"] == 201, created.text

        method, path = operation_of(doc, link["operationId"])
        parameters = {k: _runtime(v, created) for k, v in link.get("parameters", {}).items()}
        body = _runtime(link["requestBody"], created) if "requestBody" in link else None
        target = path.format_map({k: quote(str(v), safe="") for k, v in parameters.items()})
        answer = requests.request(method, server.url + target, json=body, headers=auth, timeout=60)
        said = conformance_failures(method, path, parameters or None, answer, doc_path)
        outcomes[name] = (answer.status_code, said)
    return outcomes


def _runtime(value: Any, answer: Any) -> Any:
    """An OpenAPI runtime expression (`$response.body#/item_id`, or `{...}` embedded in a
    string of a literal), evaluated against one answer; only the forms the document uses."""
    if isinstance(value, dict):
        return {key: _runtime(item, answer) for key, item in value.items()}
    if not isinstance(value, str):
        return value
    whole = re.fullmatch(r"\{?\$response\.body#(/[^}]*)\}?", value)
    if whole is None:
        assert "$" not in value, f"a runtime expression this test cannot evaluate: {value}"
        return value
    found = answer.json()
    for part in whole.group(1).split("/")[1:]:
        found = found[part.replace("~1", "/").replace("~0", "~")]
    return found


def test_every_link_of_post_items_leads_to_its_item(server: ServeProcess) -> None:
    """Deterministic, beside the stateful phase's random walks: each link's target, called
    with what the link takes from a real 201, answers a documented success."""
    outcomes = follow_links(server, DOC_PATH)

    assert outcomes == {
        "RemoveItem": (204, None),
        "RefreshItem": (200, None),
        "UpdateModeLinkToken": (200, None),
    }


# ------------------------------------------------- the same run, against a wrong document ---
def _header(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": False, "schema": schema}


# Ways the document can be wrong (each on an answer the examples phase gets), and what the
# run then says. All in one document: each is on its own answer or its own check.
BREAKAGES: dict[str, tuple[Any, str]] = {
    "a status it answers is missing (POST /link-token's 200)": (
        lambda doc: doc["paths"]["/link-token"]["post"]["responses"].pop("200"),
        "Undocumented status code",
    ),
    "a header it sends is missing (POST /items 201's Location)": (
        lambda doc: doc["paths"]["/items"]["post"]["responses"]["201"]["headers"].pop("Location"),
        "header(s) ['location'] are not documented for this status",
    ),
    "a field of a body is missing (ItemCreated's plaid_request_id)": (
        lambda doc: doc["components"]["schemas"]["ItemCreated"]["properties"].pop(
            "plaid_request_id"
        ),
        "Additional properties are not allowed ('plaid_request_id' was unexpected)",
    ),
    "a header's value is not the one it sends (DELETE's 404 Cache-Control)": (
        lambda doc: doc["paths"]["/items/{item_id}"]["delete"]["responses"]["404"][
            "headers"
        ].update({"Cache-Control": _header({"type": "string", "const": "no-cache"})}),
        "Response header does not conform to the schema",
    ),
}


def _broken_copy(tmp_path: Path, *mutations: Any) -> Path:
    doc = yaml.safe_load(DOC_PATH.read_text())
    broken = copy.deepcopy(doc)
    for mutate in mutations:
        mutate(broken)
        assert broken != doc
    path = tmp_path / "openapi.yaml"
    path.write_text(yaml.safe_dump(broken, sort_keys=False, allow_unicode=True))
    return path


def test_the_run_fails_when_a_status_header_or_body_is_not_the_documents(
    server: ServeProcess, tmp_path: Path
) -> None:
    path = _broken_copy(tmp_path, *(mutate for mutate, _ in BREAKAGES.values()))

    run = schemathesis_run(server, tmp_path, path, "--phases", "examples")

    assert run.returncode == 1, run.output
    unnoticed = [breakage for breakage, (_, said) in BREAKAGES.items() if said not in run.output]
    assert not unnoticed, run.output


def test_a_link_that_takes_the_wrong_field_is_caught(server: ServeProcess, tmp_path: Path) -> None:
    def remove_with_the_request_id(doc: dict[str, Any]) -> None:
        link = doc["paths"]["/items"]["post"]["responses"]["201"]["links"]["RemoveItem"]
        link["parameters"]["item_id"] = "$response.body#/request_id"

    outcomes = follow_links(server, _broken_copy(tmp_path, remove_with_the_request_id))

    assert outcomes["RemoveItem"][0] == 404
    assert outcomes["RefreshItem"] == (200, None)
    assert outcomes["UpdateModeLinkToken"] == (200, None)


# ------------------------------------------- API Gateway's answers before any route ---
@pytest.mark.parametrize(
    ("method", "path"),
    [
        tuple(label.split(" ", 1))
        for label in sorted(documented_operations(yaml.safe_load(DOC_PATH.read_text())))
    ],
)
def test_a_body_over_10_mb_gets_the_documented_413(
    server: ServeProcess, method: str, path: str
) -> None:
    """API Gateway refuses a body over its 10 MB limit before anything else; no generated
    request is that large, so this one is sent by hand (its head only: it is refused before
    its body would be read) and checked against the document by the same checks."""
    import requests
    import schemathesis

    item_id = "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6"
    target = path.replace("{item_id}", item_id)
    headers = {
        "authorization": f"Bearer {dev_token(sub='fuzz-413')}",
        "content-type": "application/json",
        "content-length": str(11 * 1024 * 1024),
    }
    url = urlsplit(server.url)
    assert url.hostname is not None
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        connection.request(method, target, headers=headers)
        reply = connection.getresponse()
        raw = reply.read()
    finally:
        connection.close()
    assert reply.status == 413, raw

    received: dict[str, list[str]] = {}
    for name, value in reply.getheaders():
        received.setdefault(name.lower(), []).append(value)
    answer = schemathesis.Response(
        status_code=reply.status,
        headers=received,
        content=raw,
        request=requests.Request(method, server.url + target, headers=headers).prepare(),
        elapsed=0.0,
        verify=True,
    )
    path_parameters = {"item_id": item_id} if "{item_id}" in path else None
    assert conformance_failures(method, path, path_parameters, answer, DOC_PATH) is None
