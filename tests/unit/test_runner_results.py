"""How ansible-runner's stats and events become a typed RunResult."""

from quantbot_infra.runner import FailedTask, HostSummary, _event_failure, _host_summaries


def test_host_summaries_from_runner_stats():
    stats = {
        "ok": {"a": 5, "b": 3},
        "changed": {"a": 2},
        "failures": {"b": 1},
        "dark": {"c": 1},
        "skipped": {"a": 1},
        "rescued": {},
        "ignored": {},
        "processed": {"a": 1, "b": 1, "c": 1},
    }
    hosts = _host_summaries(stats)
    assert hosts["a"] == HostSummary(ok=5, changed=2, skipped=1)
    assert hosts["b"] == HostSummary(ok=3, failed=1)
    assert hosts["c"] == HostSummary(unreachable=1)
    assert _host_summaries(None) == {}


def test_failed_event_becomes_failed_task():
    event = {"event": "runner_on_failed",
             "event_data": {"host": "h1", "task": "Install", "res": {"msg": "No package"}}}
    assert _event_failure(event) == FailedTask("h1", "Install", "No package")


def test_ignored_failure_is_not_reported():
    event = {"event": "runner_on_failed",
             "event_data": {"host": "h1", "task": "t", "ignore_errors": True, "res": {"msg": "x"}}}
    assert _event_failure(event) is None


def test_unreachable_event():
    event = {"event": "runner_on_unreachable",
             "event_data": {"host": "h2", "task": "Gather", "res": {"msg": "timed out"}}}
    failure = _event_failure(event)
    assert failure.unreachable and failure.message == "timed out"


def test_censored_result_keeps_the_secret_out():
    event = {"event": "runner_on_failed",
             "event_data": {"host": "h", "task": "t", "res": {
                 "censored": "the output has been hidden due to the fact that 'no_log: true'"}}}
    assert "no_log" in _event_failure(event).message


def test_loop_failure_names_the_item():
    event = {"event": "runner_on_failed", "event_data": {"host": "h", "task": "t", "res": {
        "msg": "One or more items failed",
        "results": [{"failed": False, "item": "a"},
                    {"failed": True, "item": "b", "msg": "boom"}]}}}
    assert _event_failure(event).message == "item b: boom"
