"""A bounded schemathesis run against the OpenAPI schema that `imprint serve` publishes: no 5xx, and every
response conforms to the schema, for generated valid and invalid requests to every route."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Served, serving

pytestmark = [pytest.mark.slow, pytest.mark.server]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A service of its own: the fuzzer deletes users and queues consolidations, which must not reach
    the state or the job queue of the other HTTP tests."""
    short = {"IMPRINT_MAX_NEW_TOKENS": "4", "IMPRINT_MAX_TOKENS_LIMIT": "4"}  # hundreds of chat turns
    with serving(tmp_path_factory.mktemp("fuzz-state"), **short) as running:
        yield running


def test_generated_requests_get_no_5xx_and_conform(fuzzed: Served, tmp_path: Path) -> None:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert exe is not None, "schemathesis is a dev dependency; reinstall with `pip install -e .[dev]`"
    started = time.monotonic()
    run = subprocess.run(
        [
            exe,
            "run",
            f"{fuzzed.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {fuzzed.keys['acme']}",
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
            "--phases",
            "examples,fuzzing",
            "--max-examples",
            "5",
            "--seed",
            "20261124",
            "--request-timeout",
            "300",
            "--max-time",
            "420",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    output = run.stdout + run.stderr
    logging.getLogger(__name__).info(
        "schemathesis ran %.0f s:\n%s", time.monotonic() - started, output[-1500:]
    )
    assert run.returncode == 0, output[-6000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    tested = re.search(r"Tested: (\d+)", output)
    assert selected and tested, output[-3000:]
    assert int(tested.group(1)) == int(selected.group(2)) >= 18  # every operation of the schema was exercised
