"""canarist.loadtester: a flagger-loadtester compatible API server with a command allow-list.

See docs/webhooks.md for the endpoints and the safety rules.
"""

from canarist.loadtester.runner import CommandOutcome, run_command, run_pipeline
from canarist.loadtester.safety import (
    DEFAULT_ALLOWED_COMMANDS,
    PIPE_FILTERS,
    CommandPolicy,
    CommandRejected,
    CommandUnrunnable,
    Stage,
    check_command,
    split_pipeline,
)
from canarist.loadtester.server import HookPayload, LoadTester, LoadTesterConfig, parse_payload, serve

__all__ = [
    "DEFAULT_ALLOWED_COMMANDS",
    "PIPE_FILTERS",
    "CommandOutcome",
    "CommandPolicy",
    "CommandRejected",
    "CommandUnrunnable",
    "HookPayload",
    "LoadTester",
    "LoadTesterConfig",
    "Stage",
    "check_command",
    "parse_payload",
    "run_command",
    "run_pipeline",
    "serve",
    "split_pipeline",
]
