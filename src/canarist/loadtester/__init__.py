"""canarist.loadtester: a flagger-loadtester compatible API server with a command allow-list.

See docs/webhooks.md for the endpoints and the safety rules.
"""

from canarist.loadtester.runner import CommandOutcome, run_command
from canarist.loadtester.safety import (
    DEFAULT_ALLOWED_COMMANDS,
    PIPE_FILTERS,
    CommandPolicy,
    CommandRejected,
    check_command,
)
from canarist.loadtester.server import HookPayload, LoadTester, LoadTesterConfig, parse_payload, serve

__all__ = [
    "DEFAULT_ALLOWED_COMMANDS",
    "PIPE_FILTERS",
    "CommandOutcome",
    "CommandPolicy",
    "CommandRejected",
    "HookPayload",
    "LoadTester",
    "LoadTesterConfig",
    "check_command",
    "parse_payload",
    "run_command",
    "serve",
]
