"""Test-run policy: no silent skips for missing data, and a summary of every skip.

When ``CI=true`` or ``RECSEEK_STRICT_DATA=1``, a test skipped because its data could not
be found fails instead (``.ci/run`` sets both), so a checkout without the shared data
cannot pass with its real-data checks quietly left out. At the end of every run the
skipped tests are counted by reason, each reason with what it means.
"""

from __future__ import annotations

import os
import re
from collections import Counter

import pytest

#: Skip reasons that mean "the data this test needs is missing".
MISSING_DATA = re.compile(
    r"(data|sample|movielens|ml-100k|filmtrust|cranfield|jstarcraft)\b.*\b(not found|not available|missing|absent)",
    re.IGNORECASE,
)

#: (pattern, explanation) for the end-of-run summary; the first match wins.
SKIP_KINDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (MISSING_DATA, "test data not found: set RECSEEK_TEST_DATA to the shared data folder "
                   "(with CI=true or RECSEEK_STRICT_DATA=1 these fail instead)"),
    (re.compile(r"POSTGRES", re.IGNORECASE), "no PostgreSQL server: .ci/run starts one and exports "
                                             "RECSEEK_TEST_POSTGRES_URL"),
    (re.compile(r"could not import|not installed|No module named", re.IGNORECASE),
     "an optional package is not installed (see the extras in pyproject.toml)"),
)


def strict_data() -> bool:
    """True when missing test data must fail the run (CI, or RECSEEK_STRICT_DATA=1)."""
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("RECSEEK_STRICT_DATA", "") == "1"


def skip_reason(report: pytest.TestReport) -> str:
    """The reason text of a skipped report."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
    else:
        reason = str(longrepr)
    return reason.removeprefix("Skipped: ")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and strict_data():
        reason = skip_reason(report)
        if MISSING_DATA.search(reason):
            report.outcome = "failed"
            report.longrepr = (f"{item.nodeid}: its test data is missing ({reason}); with CI=true or "
                               "RECSEEK_STRICT_DATA=1 that is a failure, not a skip")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if not hasattr(r, "wasxfail")]
    if not skipped:
        return
    reasons = Counter(skip_reason(r) for r in skipped)
    terminalreporter.section("why tests were skipped")
    terminalreporter.write_line(f"{len(skipped)} test(s) skipped, for {len(reasons)} reason(s):")
    for reason, n in reasons.most_common():
        kind = next((text for pattern, text in SKIP_KINDS if pattern.search(reason)),
                    "the test does not apply here (its own reason)")
        terminalreporter.write_line(f"  {n:4d} x {reason}  -- {kind}")
