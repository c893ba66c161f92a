"""The pytest plugin of the conformance run: exemptions, and the count.

Each exempt test (``exemptions.toml``: test id -> reason) is marked as an expected
failure with its reason, so it still runs but its failure does not fail the run;
one that passes is listed, as its exemption may be dropped. At the end the plugin
prints the count: the exempt tests, then passed / failed / skipped among the others
(tests ipyparallel itself marks xfail are counted apart).
"""

from __future__ import annotations

from collections import Counter

import pytest

PREFIX = "ipyparallel/tests/"  # exemption ids leave it out: test_client.py::TestClient::...


class ExemptionReport:
    """Marks exempt tests, tallies outcomes, and prints the count."""

    def __init__(self, exemptions: dict[str, str]) -> None:
        self.exemptions = exemptions
        self.outcomes: dict[str, str] = {}

    @staticmethod
    def test_id(nodeid: str) -> str:
        """A test's id as the exemption list writes it."""
        return nodeid.removeprefix(PREFIX)

    @pytest.hookimpl(tryfirst=True)  # before -k deselects: the check sees every test
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Mark the exempt tests; refuse an exemption naming no test of a collected module."""
        collected = {self.test_id(item.nodeid) for item in items}
        modules = {test.split("::")[0] for test in collected}
        stale = sorted({t for t in self.exemptions if t.split("::")[0] in modules} - collected)
        if stale:
            raise pytest.UsageError(f"exemptions.toml names tests that do not exist: {stale}")
        for item in items:
            reason = self.exemptions.get(self.test_id(item.nodeid))
            if reason:
                item.add_marker(pytest.mark.xfail(reason=f"exempt: {reason}", strict=False))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep each test's outcome: a failure in any phase, else its call's."""
        test = self.test_id(report.nodeid)
        if report.failed:
            outcome = "failed"
        elif hasattr(report, "wasxfail"):  # exempt here, or marked xfail by ipyparallel
            outcome = "xpassed" if report.passed else "xfailed"
        elif report.skipped:
            outcome = "skipped"
        elif report.when == "call":
            outcome = "passed"
        else:
            return
        if self.outcomes.get(test) != "failed":
            self.outcomes[test] = outcome

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Print the count, and any exempt test that passed."""
        exempt = Counter(o for t, o in self.outcomes.items() if t in self.exemptions)
        count = Counter(o for t, o in self.outcomes.items() if t not in self.exemptions)
        write = terminalreporter.write_line
        for test, outcome in sorted(self.outcomes.items()):
            if test in self.exemptions and outcome in ("passed", "xpassed"):
                write(f"compat: exempt test passed, its exemption may go: {test}")
        write(
            f"compat: {sum(exempt.values())} exempt ({exempt['xfailed']} failed as allowed); "
            f"{count['xfailed'] + count['xpassed']} marked xfail by ipyparallel itself"
        )
        write(
            f"compat: {count['passed']} passed, {count['failed']} failed, "
            f"{count['skipped']} skipped"
        )
