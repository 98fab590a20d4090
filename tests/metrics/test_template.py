from __future__ import annotations

import pytest

from canarist.metrics.template import RenderError, TemplateModel, collapse_whitespace, render

MODEL = TemplateModel(
    name="podinfo",
    namespace="test",
    target="podinfo-target",
    service="podinfo-svc",
    ingress="podinfo-ing",
    route="podinfo-route",
    interval="1m",
    variables={"direction": "inbound", "host": "app.example.com"},
)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ name }}", "podinfo"),
        ("{{name}}", "podinfo"),
        ("{{   namespace\t}}", "test"),
        ("{{ target }}", "podinfo-target"),
        ("{{ service }}", "podinfo-svc"),
        ("{{ ingress }}", "podinfo-ing"),
        ("{{ route }}", "podinfo-route"),
        ("{{ interval }}", "1m"),
        ("{{ variables.direction }}", "inbound"),
        ("{{variables.host}}", "app.example.com"),
        ("plain text", "plain text"),
        ("", ""),
        ('{{ "literal" }}', "literal"),
        ("{{ `raw` }}", "raw"),
        ("{{/* a comment */}}x", "x"),
    ],
)
def test_every_model_value(template: str, expected: str) -> None:
    assert render(template, MODEL) == expected


def test_a_realistic_query() -> None:
    template = """
    sum(rate(http_requests_total{namespace="{{ namespace }}", pod=~"{{ target }}-[0-9a-z]+", direction="{{ variables.direction }}"}[{{ interval }}]))
    """
    assert collapse_whitespace(render(template, MODEL)) == (
        ' sum(rate(http_requests_total{namespace="test", pod=~"podinfo-target-[0-9a-z]+", direction="inbound"}[1m])) '
    )


def test_trim_markers_and_printf_variable() -> None:
    template = (
        'x  {{- $route := printf "kube_%s__%s_canary__%s" namespace ingress service }}\n'
        '  route=~"{{ $route }}"  {{- " " -}}   end'
    )
    assert render(template, MODEL) == 'x\n  route=~"kube_test__podinfo-ing_canary__podinfo-svc" end'


def test_printf_verbs() -> None:
    assert render('{{ printf "%s|%v|%d|%q|100%%" name 1 42 "a\\"b" }}', MODEL) == 'podinfo|1|42|"a\\"b"|100%'
    assert render('{{ printf "%s-%s" name }}', MODEL) == "podinfo-%!s(MISSING)"
    assert render('{{ printf "%s" name namespace }}', MODEL) == "podinfo%!(EXTRA string=test)"
    assert render('{{ printf "%d" name }}', MODEL) == "%!d(string=podinfo)"


def test_variable_reassignment_and_use() -> None:
    assert render("{{ $a := name }}{{ $a = namespace }}{{ $a }}", MODEL) == "test"


def test_variables_map_prints_like_go() -> None:
    assert render("{{ variables }}", MODEL) == "map[direction:inbound host:app.example.com]"


def test_collapse_keeps_single_edge_spaces() -> None:
    assert collapse_whitespace("\n\tsum(\n\t\trate(x[1m])\n)  ") == " sum( rate(x[1m]) ) "


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ variables.missing }}", 'variable "missing" is not defined in templateVariables'),
        ("{{ nope }}", 'function "nope" not defined'),
        ("{{ $x }}", 'undefined variable "$x"'),
        ("{{ $x = name }}", 'undefined variable "$x"'),
        ("{{ .name }}", "field access on the data is not supported"),
        ("{{ name | printf }}", "not supported"),
        ("{{ if name }}x{{ end }}", '"if" is not supported'),
        ("{{ range variables }}{{ end }}", '"range" is not supported'),
        ("{{ name namespace }}", "wrong number of args for name: want 0 got 1"),
        ("{{ name.x }}", "name is a string and has no fields"),
        ("{{ variables.direction.x }}", "have no fields"),
        ('{{ "a" "b" }}', "can't give argument to non-function"),
        ("{{ printf }}", "wrong number of args for printf"),
        ('{{ printf "%x" name }}', 'unsupported verb "%x"'),
        ("{{ name", "unclosed action"),
        ("{{ }}", "missing value"),
        ("{{ name ; }}", "unexpected ';'"),
        ("{{ __import__ }}", 'function "__import__" not defined'),
        ("{{ name.__class__ }}", "has no fields"),
        ("{{ variables.__class__ }}", 'variable "__class__" is not defined in templateVariables'),
        ("{{ (name) }}", "not supported"),
    ],
)
def test_errors(template: str, message: str) -> None:
    with pytest.raises(RenderError, match=None) as caught:
        render(template, MODEL)
    assert message in str(caught.value)


def test_empty_model_renders_empty_strings() -> None:
    assert render("[{{ interval }}]{{ route }}", TemplateModel()) == "[]"
