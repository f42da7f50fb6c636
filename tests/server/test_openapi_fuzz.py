"""Schemathesis against the served OpenAPI spec of a real agent, a bounded number of examples per operation (the
full run is ``python benchmarks/schemathesis_run.py``): no 5xx but the declared 503, every status documented,
every answer in its declared schema and content type, ``Allow`` naming every method of a path.

``positive_data_acceptance`` is not among the checks: times, durations and label filters are text in forms a
schema cannot bound (``99999999999999d`` has the form of a duration but not its range), so schema-valid text may get
a 400 that names the valid forms, as it should.
"""

from __future__ import annotations

import schemathesis
from agent_process import ServedAgent
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def test_every_route_answers_as_its_spec_says(served: ServedAgent) -> None:
    headers = {"Authorization": f"Bearer {served.token()}"}
    schema = schemathesis.openapi.from_url(f"{served.base_url}/api/v1/openapi.json", headers=headers, timeout=30)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 34
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=6,
            deadline=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def answers_as_declared(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

        answers_as_declared()
