"""Validation of flagger.app documents into path-qualified problems.

``validate_document(obj)`` accepts anything (the result of a YAML/JSON parse, or junk) and never raises.
It checks, in order:

1. the shape: the OpenAPI schema of the generated CRD (types, enums, required fields, patterns, bounds,
   ``oneOf`` constraints), plus canarist's stricter hints (whole numbers, non-negative weights, durations)
   and unknown fields (kubectl's strict field validation rejects them, and the API server would drop them);
   A MetricTemplate ``spec.provider.type`` or AlertProvider ``spec.type`` outside the CRD's enum is accepted
   when an installed plugin declares that name (entry point groups ``canarist.metric_providers`` and
   ``canarist.notifiers``, see :mod:`canarist.plugins`; the plugin is not imported here). A cluster whose
   CRD keeps the enum still refuses it: see docs/metrics.md#plugins;
2. cross-field rules Flagger checks at run time (Knative/provider consistency, session cookie names...) or
   that would make a run fail (a metric without a query, a provider without its reference...).

A document that validates clean also loads with ``Canary.model_validate`` (and friends).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ValidationError

from canarist.api import defaults
from canarist.api._base import CHECK_KEY
from canarist.api.alert_provider import AlertProvider
from canarist.api.canary import Canary
from canarist.api.crds import KINDS, shared_validation_schema
from canarist.api.metric_template import MetricTemplate
from canarist.durations import parse_duration
from canarist.plugins import METRIC_PROVIDERS_GROUP, NOTIFIERS_GROUP, installed_names

_INT32_MAX = 2**31 - 1
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_MODELS: dict[str, type[BaseModel]] = {
    "Canary": Canary,
    "MetricTemplate": MetricTemplate,
    "AlertProvider": AlertProvider,
}
_TYPE_NAMES = {
    "object": "an object (a map)",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "a boolean (true or false)",
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document. ``path`` is like ``spec.analysis.metrics[0].interval`` ("" = the root)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def describe(value: object) -> str:
    """A short name of the type of ``value``, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, bytes | bytearray):
        return "binary data"
    return type(value).__name__


def _short(value: object, limit: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


# ------------------------------------------------------------------------------------------------ schema


class _SchemaChecker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def check(self, schema: dict[str, Any], value: object, path: str, *, strict_fields: bool = True) -> None:
        if schema.get("x-kubernetes-int-or-string"):
            if isinstance(value, bool) or not isinstance(value, int | str):
                self.add(path, f"must be an integer or a string, got {describe(value)}")
            elif isinstance(value, int) and not -_INT32_MAX - 1 <= value <= _INT32_MAX:
                self.add(path, "is out of range")
            return
        expected = schema.get("type")
        if expected is not None and not self._type_ok(expected, value, path):
            return
        if "enum" in schema and value not in schema["enum"]:
            allowed = ", ".join(_short(v) if v == "" else str(v) for v in schema["enum"])
            self.add(path, f"unsupported value {_short(value)}: must be one of {allowed}")
            return
        if isinstance(value, str):
            self._string(schema, value, path)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self._number(schema, value, path)
        elif isinstance(value, list):
            self._array(schema, value, path)
        elif isinstance(value, dict):
            self._object(schema, value, path, strict_fields)
        if "oneOf" in schema and isinstance(value, dict):
            self._one_of(schema["oneOf"], value, path)
        if "anyOf" in schema and not any(self._matches(branch, value) for branch in schema["anyOf"]):
            self.add(path, "does not match any of the allowed shapes")
        if "not" in schema and self._matches(schema["not"], value):
            self.add(path, "has a forbidden combination of fields")

    def _type_ok(self, expected: str, value: object, path: str) -> bool:
        ok: bool
        if expected == "object":
            ok = isinstance(value, dict)
        elif expected == "array":
            ok = isinstance(value, list)
        elif expected == "string":
            ok = isinstance(value, str)
        elif expected == "boolean":
            ok = isinstance(value, bool)
        elif expected == "integer":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif expected == "number":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if ok and isinstance(value, float) and not math.isfinite(value):
                self.add(path, "must be a finite number")
                return False
        else:
            ok = True
        if not ok:
            self.add(path, f"must be {_TYPE_NAMES.get(expected, expected)}, got {describe(value)}")
        return ok

    def _string(self, schema: dict[str, Any], value: str, path: str) -> None:
        check = schema.get(CHECK_KEY, {})
        pattern = schema.get("pattern")
        if "minLength" in schema and len(value) < schema["minLength"]:
            self.add(
                path,
                "must not be empty"
                if schema["minLength"] == 1
                else f"must be at least {schema['minLength']} characters",
            )
            return
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            self.add(path, f"must be at most {schema['maxLength']} characters")
            return
        if pattern is not None and re.search(pattern, value) is None:
            if check.get("duration"):
                self.add(
                    path,
                    f"invalid duration {_short(value)}: must be a number of seconds or minutes like 30s or 1m",
                )
            else:
                self.add(path, f"invalid value {_short(value)}: must match {pattern}")
            return
        if check.get("duration") and value != "":
            try:
                seconds = parse_duration(value)
            except ValueError as error:
                self.add(path, str(error))
                return
            if seconds < 0:
                self.add(path, f"invalid duration {_short(value)}: must not be negative")
        if schema.get("format") == "date-time" and value and _DATE_TIME.match(value) is None:
            self.add(path, f"invalid timestamp {_short(value)}: must be RFC 3339 like 2024-01-31T12:00:00Z")

    def _number(self, schema: dict[str, Any], value: float, path: str) -> None:
        check = schema.get(CHECK_KEY, {})
        if check.get("integer") and isinstance(value, float) and not value.is_integer():
            self.add(path, f"must be a whole number, got {value:g}")
            return
        minimum = check.get("min", schema.get("minimum"))
        maximum = check.get("max", schema.get("maximum"))
        if minimum is not None and value < minimum:
            self.add(path, f"must be >= {minimum}")
        elif maximum is not None and value > maximum:
            self.add(path, f"must be <= {maximum}")
        elif (check.get("integer") or schema.get("type") == "integer") and abs(value) > _INT32_MAX:
            self.add(path, f"must be <= {_INT32_MAX}")

    def _array(self, schema: dict[str, Any], value: list[Any], path: str) -> None:
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            self.add(path, f"must have at most {schema['maxItems']} items")
        items = schema.get("items")
        if isinstance(items, dict):
            for index, item in enumerate(value):
                self.check(items, item, f"{path}[{index}]")

    def _object(self, schema: dict[str, Any], value: dict[Any, Any], path: str, strict_fields: bool) -> None:
        properties: dict[str, Any] = schema.get("properties", {})
        for name in schema.get("required", []):
            if value.get(name) is None:
                self.add(_join(path, name), "is required")
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if not isinstance(key, str):
                self.add(path, f"keys must be strings, got {describe(key)} {_short(key)}")
                continue
            if key in properties:
                if item is not None:
                    self.check(properties[key], item, _join(path, key))
            elif isinstance(additional, dict):
                self.check(additional, item, f"{path}[{key}]" if path else key)
            elif properties and strict_fields and "type" in schema:
                self.add(_join(path, key), "unknown field")

    def _matches(self, schema: dict[str, Any], value: object) -> bool:
        probe = _SchemaChecker()
        probe.check(schema, value, "", strict_fields=False)
        return not probe.problems

    def _one_of(self, branches: list[dict[str, Any]], value: dict[Any, Any], path: str) -> None:
        matched = [branch for branch in branches if self._matches(branch, value)]
        if len(matched) == 1:
            return
        plain = [b for b in branches if "not" not in b]
        required_sets = [list(b.get("required", [])) for b in plain]
        common = [n for n in required_sets[0] if all(n in r for r in required_sets)] if required_sets else []
        choices: list[str] = []
        for names in required_sets:
            choices.extend(n for n in names if n not in common and n not in choices)
        listing = _alternatives(choices)
        at_most = len(plain) < len(branches)  # a "none of them" branch: the fields are optional
        if not matched:
            missing = [n for n in common if value.get(n) is None]
            if missing:
                for name in missing:
                    self.add(_join(path, name), "is required")
                return
            for branch in plain:
                if all(value.get(n) is not None for n in branch.get("required", [])):
                    probe = _SchemaChecker()
                    probe.check(branch, value, path, strict_fields=False)
                    if probe.problems:
                        self.problems.extend(probe.problems)
                        return
            self.add(path, f"must set one of {listing} (none is set)")
        else:
            present = [n for n in choices if value.get(n) is not None]
            quantity = "at most one" if at_most else "only one"
            if len(present) > 1:
                fields = ", ".join(present[:-1]) + " and " + present[-1]
                self.add(path, f"{fields} conflict: set {quantity} of {listing}")
            else:
                self.add(path, f"must set {quantity} of {listing}")


def _alternatives(names: list[str]) -> str:
    """``a, b or c``."""
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " or " + names[-1]


# ------------------------------------------------------------------------------------------------ semantics


def _is_url(text: str) -> bool:
    parsed = urlparse(text)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


_REQUIRES: dict[str, tuple[str, str]] = {
    "nginx": ("ingressRef", "spec.ingressRef"),
    "skipper": ("ingressRef", "spec.ingressRef"),
    "apisix": ("routeRef", "spec.routeRef"),
}
_HPA_API_VERSION = "autoscaling/v2"
_KEDA_API_VERSION = "keda.sh/v1alpha1"


def _canary_rules(canary: Canary) -> list[Problem]:
    problems: list[Problem] = []

    def add(path: str, message: str) -> None:
        problems.append(Problem(path, message))

    spec = canary.spec
    provider = spec.provider
    target = spec.target_ref
    if target.is_knative():
        if provider and provider != "knative":
            add("spec.provider", f"can't use {provider} provider with Knative Service as target")
        if spec.autoscaler_ref is not None:
            add("spec.autoscalerRef", "can't use autoscaler with Knative Service")
    elif provider == "knative" and target.kind:
        add(
            "spec.targetRef", f"can't use {target.kind}/{target.name} as target if provider is set to knative"
        )
    if target.kind == "Service" and not target.is_knative() and target.api_version != "v1":
        add(
            "spec.targetRef.apiVersion",
            "must be v1 for a Kubernetes Service target (or serving.knative.dev/v1 for a Knative Service)",
        )
    if target.kind == "Service" and not target.is_knative() and spec.autoscaler_ref is not None:
        add("spec.autoscalerRef", "a Service target runs no pods of its own to autoscale")
    if provider in _REQUIRES:
        key, path = _REQUIRES[provider]
        if getattr(spec, "ingress_ref" if key == "ingressRef" else "route_ref") is None:
            add(path, f"is required for the {provider} provider")
    if provider.startswith("gatewayapi") and not spec.service.gateway_refs:
        add("spec.service.gatewayRefs", f"is required for the {provider} provider")
    if provider == "appmesh" and not spec.service.mesh_name:
        add("spec.service.meshName", "is required for the appmesh provider")
    if spec.service.delegation and (spec.service.hosts or spec.service.gateways):
        add("spec.service.delegation", "a delegate VirtualService must not set hosts or gateways")

    scaler = spec.autoscaler_ref
    if scaler is not None:
        if scaler.kind == "HorizontalPodAutoscaler" and scaler.api_version != _HPA_API_VERSION:
            add("spec.autoscalerRef.apiVersion", f"must be {_HPA_API_VERSION} for a HorizontalPodAutoscaler")
        if scaler.kind == "ScaledObject" and scaler.api_version != _KEDA_API_VERSION:
            add("spec.autoscalerRef.apiVersion", f"must be {_KEDA_API_VERSION} for a ScaledObject")
        replicas = scaler.primary_scaler_replicas
        if (
            replicas
            and replicas.min_replicas
            and replicas.max_replicas
            and replicas.min_replicas > replicas.max_replicas
        ):
            add("spec.autoscalerRef.primaryScalerReplicas", "minReplicas must be <= maxReplicas")

    section = "analysis" if spec.analysis is not None else "canaryAnalysis"
    analysis = canary.analysis()
    if analysis is None:
        return problems
    base = f"spec.{section}"
    weights = analysis.step_weights
    if (
        not spec.skip_analysis
        and canary.strategy() == "canary"
        and provider != "kubernetes"
        and "step_weight" in analysis.model_fields_set
        and analysis.step_weight == 0
        and not any(w > 0 for w in weights)
    ):
        add(
            f"{base}.stepWeight",
            "must be greater than 0 for a progressive canary (or set stepWeights, "
            "or iterations for A/B testing or blue/green): with no weight step the analysis never advances",
        )
    if any(b < a for a, b in itertools.pairwise(weights)):
        add(f"{base}.stepWeights", "must be in increasing order")
    affinity = analysis.session_affinity
    if (
        affinity is not None
        and affinity.primary_cookie_name
        and affinity.primary_cookie_name == affinity.cookie_name
    ):
        add(
            f"{base}.sessionAffinity.primaryCookieName",
            "can't use the same cookie name for both primary and cookie name; please update them to be different",
        )
    for index, metric in enumerate(analysis.metrics):
        path = f"{base}.metrics[{index}]"
        rng = metric.threshold_range
        if rng is not None and rng.min is not None and rng.max is not None and rng.min > rng.max:
            add(f"{path}.thresholdRange", f"min ({rng.min:g}) must be <= max ({rng.max:g})")
        if metric.name and not metric.is_builtin() and metric.template_ref is None and not metric.query:
            add(
                path,
                f"metric {_short(metric.name)} is not builtin (request-success-rate, request-duration): "
                "set templateRef or query",
            )
        if metric.template_ref is not None and metric.query:
            add(path, "set only one of templateRef or query")
        guard = metric.min_samples
        if guard is not None and "query" in guard.model_fields_set and not guard.query.strip():
            add(f"{path}.minSamples.query", "must not be empty: a query that returns the number of samples")
        compare = metric.compare
        if compare is not None:
            if not (metric.name == "request-success-rate" and metric.is_builtin()):
                add(
                    f"{path}.compare",
                    "only the builtin request-success-rate can be compared with the primary yet "
                    "(no templateRef or query)",
                )
            if not 0 < compare.alpha < 1:
                add(f"{path}.compare.alpha", f"must be between 0 and 1 (exclusive), got {compare.alpha:g}")
            if compare.min_effect > 100:
                add(
                    f"{path}.compare.minEffect",
                    f"is in percentage points: at most 100, got {compare.min_effect:g}",
                )
    for index, hook in enumerate(analysis.webhooks):
        if hook.url and not _is_url(hook.url):
            add(
                f"{base}.webhooks[{index}].url",
                f"invalid URL {_short(hook.url)}: must be an absolute http(s) URL",
            )
    names = [hook.name for hook in analysis.webhooks]
    for index, name in enumerate(names):
        if name and name in names[:index]:
            add(f"{base}.webhooks[{index}].name", f"duplicate webhook name {_short(name)}")
    return problems


def _alert_provider_rules(provider: AlertProvider) -> list[Problem]:
    problems: list[Problem] = []
    if provider.spec.address and not _is_url(provider.spec.address):
        problems.append(
            Problem(
                "spec.address",
                f"invalid URL {_short(provider.spec.address)}: must be an absolute http(s) URL",
            )
        )
    if provider.spec.proxy and urlparse(provider.spec.proxy).scheme not in ("http", "https", "socks5"):
        problems.append(Problem("spec.proxy", f"invalid proxy URL {_short(provider.spec.proxy)}"))
    return problems


def _metric_template_rules(template: MetricTemplate) -> list[Problem]:
    problems: list[Problem] = []
    if not template.spec.query.strip() and "query" in template.spec.model_fields_set:
        problems.append(Problem("spec.query", "must not be empty"))
    address = template.spec.provider.address
    if (
        address
        and template.spec.provider.type in ("prometheus", "graphite", "influxdb")
        and not _is_url(address)
    ):
        problems.append(
            Problem(
                "spec.provider.address", f"invalid URL {_short(address)}: must be an absolute http(s) URL"
            )
        )
    return problems


def _pydantic_problems(error: ValidationError) -> list[Problem]:
    out = []
    for item in error.errors():
        path = ""
        for part in item["loc"]:
            path = f"{path}[{part}]" if isinstance(part, int) else _join(path, part)
        out.append(Problem(path, item["msg"]))
    return out


# ------------------------------------------------------------------------------------------------ entry points


def validate_document(obj: object) -> list[Problem]:
    """Problems of one flagger.app document (empty when valid). Never raises."""
    problems, _ = parse_document(obj)
    return problems


def parse_document(obj: object) -> tuple[list[Problem], BaseModel | None]:
    """Validate one document and load it into its model (Canary, MetricTemplate or AlertProvider).

    Returns the problems and the model; the model is None when the document cannot be loaded at all.
    """
    if not isinstance(obj, dict):
        return [Problem("", f"must be a map (a Kubernetes object), got {describe(obj)}")], None
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    problems: list[Problem] = []
    if not isinstance(api_version, str):
        problems.append(Problem("apiVersion", "is required" if api_version is None else "must be a string"))
    elif api_version != defaults.API_VERSION:
        problems.append(
            Problem(
                "apiVersion", f"unsupported apiVersion {_short(api_version)}: must be {defaults.API_VERSION}"
            )
        )
    if not isinstance(kind, str) or kind not in KINDS:
        shown = (
            "is required"
            if kind is None
            else f"unsupported kind {_short(kind)}: must be one of {', '.join(KINDS)}"
        )
        problems.append(Problem("kind", shown))
        return problems, None
    checker = _SchemaChecker()
    checker.check(shared_validation_schema(kind), obj, "")
    problems.extend(_without_plugin_types(kind, obj, checker.problems))
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        name = metadata.get("name")
        if name is None and metadata.get("generateName") is None:
            problems.append(Problem("metadata.name", "is required"))
        elif name is not None and not isinstance(name, str):
            problems.append(Problem("metadata.name", f"must be a string, got {describe(name)}"))
        namespace = metadata.get("namespace")
        if namespace is not None and not isinstance(namespace, str):
            problems.append(Problem("metadata.namespace", f"must be a string, got {describe(namespace)}"))
    elif metadata is None:
        problems.append(Problem("metadata.name", "is required"))
    try:
        model = _MODELS[kind].model_validate(obj)
    except ValidationError as error:
        if not problems:
            problems.extend(_pydantic_problems(error))
        return problems, None
    except (RecursionError, ValueError, TypeError) as error:
        problems.append(Problem("", f"cannot be read: {error}"))
        return problems, None
    if isinstance(model, Canary):
        problems.extend(_canary_rules(model))
    elif isinstance(model, AlertProvider):
        problems.extend(_alert_provider_rules(model))
    elif isinstance(model, MetricTemplate):
        problems.extend(_metric_template_rules(model))
    return _dedupe(problems), model


#: where a plugin may add a type the CRD's enum does not list: kind -> (path, spec keys, entry point group)
_PLUGIN_TYPE_PATHS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "MetricTemplate": ("spec.provider.type", ("spec", "provider", "type"), METRIC_PROVIDERS_GROUP),
    "AlertProvider": ("spec.type", ("spec", "type"), NOTIFIERS_GROUP),
}


def _without_plugin_types(kind: str, obj: dict[str, Any], problems: list[Problem]) -> list[Problem]:
    """``problems`` without the enum refusal of a type an installed plugin provides."""
    where = _PLUGIN_TYPE_PATHS.get(kind)
    if where is None:
        return problems
    path, keys, group = where
    value: object = obj
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    refused = [p for p in problems if p.path == path and p.message.startswith("unsupported value ")]
    if not refused or not isinstance(value, str) or not value or value not in installed_names(group):
        return problems
    return [p for p in problems if p not in refused]


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    out = []
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            out.append(problem)
    return out


def is_flagger_document(obj: object) -> bool:
    """Whether ``obj`` claims to be a flagger.app object (by its apiVersion group)."""
    if not isinstance(obj, dict):
        return False
    api_version = obj.get("apiVersion")
    return isinstance(api_version, str) and api_version.split("/", 1)[0] == defaults.API_GROUP
