"""Schemathesis against the served OpenAPI spec of a real agent, with a token of each scope (``read``, ``operate``,
``admin``), a bounded number of examples per operation (the full run is ``python benchmarks/schemathesis_run.py``):
no 5xx but the declared 503, every status documented (the 403 of a route above the token's scope among them), every
answer in its declared schema and content type, ``Allow`` naming every method of a path.

``positive_data_acceptance`` is not among the checks: times, durations and label filters are text in forms a
schema cannot bound (``99999999999999d`` has the form of a duration but not its range), so schema-valid text may get
a 400 that names the valid forms, as it should.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from agent_process import ServedAgent, serve_agent
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

SECRETS = {"read": "fuzz-read-token-0123456789ab", "operate": "fuzz-operate-token-0123456789"}
NO_SUPERVISOR = "collectors:\n  services:\n    supervisor:\n      enabled: false\n"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedAgent]:
    """A real agent with a read and an operate token beside the generated admin one."""
    tokens = "".join(f"    - {{name: fuzz-{s}, scope: {s}, secret: {t}}}\n" for s, t in SECRETS.items())
    with serve_agent(tmp_path_factory.mktemp("fuzz"), NO_SUPERVISOR, agent_yaml=f"  tokens:\n{tokens}") as served:
        yield served


@pytest.mark.parametrize("scope", ["read", "operate", "admin"])
def test_every_route_answers_as_its_spec_says_to_each_scope(agent: ServedAgent, scope: str) -> None:
    headers = {"Authorization": f"Bearer {SECRETS.get(scope) or agent.token()}"}
    schema = schemathesis.openapi.from_url(f"{agent.base_url}/api/v1/openapi.json", headers=headers, timeout=30)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 34
    statuses: Counter[int] = Counter()
    needed: Counter[str] = Counter()  # the scope each 403 of scope names
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=4,
            deadline=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def answers_as_declared(case: schemathesis.Case) -> None:
            response = case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)
            statuses[response.status_code] += 1
            if response.status_code == 403 and "required_scope" in response.json():
                needed[response.json()["required_scope"]] += 1

        answers_as_declared()
    above = {"read": {"operate", "admin"}, "operate": {"admin"}, "admin": set()}[scope]
    assert set(needed) == above, f"a {scope} token is refused what needs {dict(needed)} ({dict(statuses)})"
