"""Flagger's flags are accepted with Go's single-dash spelling, and the environment overrides them."""

import pytest

from canarist.operator.settings import OperatorSettings, parse_settings


def test_defaults_match_flagger():
    settings = parse_settings([])
    assert settings == OperatorSettings()
    assert settings.metrics_server == "http://prometheus:9090"
    assert settings.selector_labels == ("app", "name", "app.kubernetes.io/name")
    assert settings.enable_config_tracking is True
    assert settings.control_loop_interval_s == 10.0
    assert settings.min_analysis_interval_s == 10.0
    assert settings.port == 8080


def test_go_style_flags_as_in_flagger_manifests():
    settings = parse_settings(
        [
            "-mesh-provider=istio",
            "-metrics-server=http://prometheus.istio-system:9090",
            "-enable-leader-election",
            "-leader-election-namespace",
            "flagger-system",
            "-enable-config-tracking=false",
            "-selector-labels=app,name",
            "-include-label-prefix=app.kubernetes.io,team",
            "-control-loop-interval=5s",
            "--min-analysis-interval=500ms",
            "-zap-encoding=console",
        ],
        environ={},
    )
    assert settings.metrics_server == "http://prometheus.istio-system:9090"
    assert settings.enable_leader_election is True
    assert settings.leader_election_namespace == "flagger-system"
    assert settings.enable_config_tracking is False
    assert settings.selector_labels == ("app", "name")
    assert settings.include_label_prefix == ("app.kubernetes.io", "team")
    assert settings.control_loop_interval_s == 5.0
    assert settings.min_analysis_interval_s == 0.5
    assert settings.log_format == "console"


def test_log_format_has_flaggers_and_our_spellings():
    assert parse_settings(["-zap-encoding=console"]).log_format == "console"
    assert parse_settings(["-log-format", "console"]).log_format == "console"
    assert parse_settings(["--log-format=json"]).log_format == "json"


def test_environment_overrides_win_over_flags():
    settings = parse_settings(
        ["-slack-url=https://flag.example/hook", "-event-webhook=http://flag"],
        environ={"SLACK_URL": "https://env.example/hook", "EVENT_WEBHOOK_URL": "http://env"},
    )
    assert settings.slack_url == "https://env.example/hook"
    assert settings.event_webhook == "http://env"


def test_lease_lives_in_the_watched_namespace_when_one_is_set():
    assert parse_settings(["-namespace=test"]).leader_election_lease_namespace == "test"
    assert parse_settings([]).leader_election_lease_namespace == "kube-system"


@pytest.mark.parametrize("argv", [["-enable-leader-election=maybe"], ["-control-loop-interval=soon"]])
def test_bad_flag_values_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(argv)
    assert exit_info.value.code == 2
    assert "invalid" in capsys.readouterr().err
