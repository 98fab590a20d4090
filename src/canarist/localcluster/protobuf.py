"""Decoding of Kubernetes protobuf request bodies for the few kinds kubectl's generators send that way.

`kubectl create namespace|configmap|secret|serviceaccount` post `application/vnd.kubernetes.protobuf`
bodies. This reads those kinds (field numbers from k8s.io/api's generated.proto) into the JSON form;
any other kind is answered 415 by the caller.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]
MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    """A body that is not a Kubernetes protobuf envelope of a supported kind."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, Any]]:
    out: list[tuple[int, Any]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value = buf[pos : pos + length]
            pos += length
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.append((number, value))
    return out


# A message schema: field number -> (json name, kind, nested schema)
Schema = dict[int, tuple[str, str, Any]]

_TIME: Schema = {}
_OWNER: Schema = {
    1: ("kind", "string", None),
    3: ("name", "string", None),
    4: ("uid", "string", None),
    5: ("apiVersion", "string", None),
    6: ("controller", "bool", None),
    7: ("blockOwnerDeletion", "bool", None),
}
_META: Schema = {
    1: ("name", "string", None),
    2: ("generateName", "string", None),
    3: ("namespace", "string", None),
    5: ("uid", "string", None),
    6: ("resourceVersion", "string", None),
    7: ("generation", "int", None),
    8: ("creationTimestamp", "time", None),
    11: ("labels", "map", "string"),
    12: ("annotations", "map", "string"),
    13: ("ownerReferences", "messages", _OWNER),
    14: ("finalizers", "strings", None),
}
_REF: Schema = {
    1: ("kind", "string", None),
    2: ("namespace", "string", None),
    3: ("name", "string", None),
    4: ("uid", "string", None),
    5: ("apiVersion", "string", None),
}
_LOCAL_REF: Schema = {1: ("name", "string", None)}
_SELECTOR: Schema = {
    1: ("matchLabels", "map", "string"),
    2: (
        "matchExpressions",
        "messages",
        {1: ("key", "string", None), 2: ("operator", "string", None), 3: ("values", "strings", None)},
    ),
}
_QUANTITY: Schema = {1: ("string", "string", None)}
_CONTAINER: Schema = {
    1: ("name", "string", None),
    2: ("image", "string", None),
    3: ("command", "strings", None),
    4: ("args", "strings", None),
    5: ("workingDir", "string", None),
    6: (
        "ports",
        "messages",
        {
            1: ("name", "string", None),
            2: ("hostPort", "int", None),
            3: ("containerPort", "int", None),
            4: ("protocol", "string", None),
        },
    ),
    7: ("env", "messages", {1: ("name", "string", None), 2: ("value", "string", None)}),
    8: ("resources", "resources", None),
    13: ("terminationMessagePath", "string", None),
    14: ("imagePullPolicy", "string", None),
    20: ("terminationMessagePolicy", "string", None),
}
_POD_SPEC: Schema = {
    2: ("containers", "messages", _CONTAINER),
    3: ("restartPolicy", "string", None),
    4: ("terminationGracePeriodSeconds", "int*", None),
    6: ("dnsPolicy", "string", None),
    7: ("nodeSelector", "map", "string"),
    8: ("serviceAccountName", "string", None),
    19: ("schedulerName", "string", None),
    20: ("initContainers", "messages", _CONTAINER),
}
_TEMPLATE: Schema = {1: ("metadata", "message", _META), 2: ("spec", "message", _POD_SPEC)}
KINDS: dict[str, Schema] = {
    "ConfigMap": {
        1: ("metadata", "message", _META),
        2: ("data", "map", "string"),
        3: ("binaryData", "map", "bytes"),
        4: ("immutable", "bool", None),
    },
    "Secret": {
        1: ("metadata", "message", _META),
        2: ("data", "map", "bytes"),
        3: ("type", "string", None),
        4: ("stringData", "map", "string"),
        5: ("immutable", "bool", None),
    },
    "Namespace": {
        1: ("metadata", "message", _META),
        2: ("spec", "message", {1: ("finalizers", "strings", None)}),
        3: ("status", "message", {1: ("phase", "string", None)}),
    },
    "ServiceAccount": {
        1: ("metadata", "message", _META),
        2: ("secrets", "messages", _REF),
        3: ("imagePullSecrets", "messages", _LOCAL_REF),
        4: ("automountServiceAccountToken", "bool", None),
    },
    "Deployment": {
        1: ("metadata", "message", _META),
        2: (
            "spec",
            "message",
            {
                1: ("replicas", "int*", None),
                2: ("selector", "message", _SELECTOR),
                3: ("template", "message", _TEMPLATE),
                4: (
                    "strategy",
                    "message",
                    {
                        1: ("type", "string", None),
                        2: (
                            "rollingUpdate",
                            "message",
                            {
                                1: ("maxUnavailable", "intorstring", None),
                                2: ("maxSurge", "intorstring", None),
                            },
                        ),
                    },
                ),
                5: ("minReadySeconds", "int", None),
                6: ("revisionHistoryLimit", "int*", None),
                7: ("paused", "boolz", None),
                9: ("progressDeadlineSeconds", "int*", None),
            },
        ),
    },
    "Service": {
        1: ("metadata", "message", _META),
        2: (
            "spec",
            "message",
            {
                1: (
                    "ports",
                    "messages",
                    {
                        1: ("name", "string", None),
                        2: ("protocol", "string", None),
                        3: ("port", "int", None),
                        4: ("targetPort", "intorstring", None),
                        5: ("nodePort", "int", None),
                        6: ("appProtocol", "string", None),
                    },
                ),
                2: ("selector", "map", "string"),
                3: ("clusterIP", "string", None),
                4: ("type", "string", None),
                10: ("externalName", "string", None),
                7: ("sessionAffinity", "string", None),
            },
        ),
    },
}


def _decode(buf: bytes, schema: Schema) -> Obj:
    out: Obj = {}
    for number, value in _fields(buf):
        spec = schema.get(number)
        if spec is None:
            continue
        name, kind, nested = spec
        if kind == "string":
            if value:
                out[name] = bytes(value).decode()
        elif kind in ("int", "int*"):
            number_value = int(value)
            if number_value >= 1 << 63:
                number_value -= 1 << 64
            if number_value or kind == "int*":
                out[name] = number_value
        elif kind == "bool":
            out[name] = bool(value)
        elif kind == "boolz":
            if value:
                out[name] = True
        elif kind == "message":
            decoded = _decode(value, nested)
            if decoded:
                out[name] = decoded
        elif kind == "messages":
            out.setdefault(name, []).append(_decode(value, nested))
        elif kind == "strings":
            out.setdefault(name, []).append(bytes(value).decode())
        elif kind == "time":
            seconds = next((v for n, v in _fields(value) if n == 1), 0)
            if seconds:
                out[name] = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        elif kind == "intorstring":
            parts = dict(_fields(value))
            out[name] = bytes(parts.get(3, b"")).decode() if parts.get(1) == 1 else int(parts.get(2, 0))
        elif kind == "resources":
            resources: Obj = {}
            for sub_number, sub_value in _fields(value):
                if sub_number in (1, 2):
                    entry = dict(_fields(sub_value))
                    quantity = _decode(bytes(entry.get(2, b"")), _QUANTITY).get("string", "")
                    key = "limits" if sub_number == 1 else "requests"
                    resources.setdefault(key, {})[bytes(entry.get(1, b"")).decode()] = quantity
            out[name] = resources
        elif kind == "map":
            entry = dict(_fields(value))
            key = bytes(entry.get(1, b"")).decode()
            raw = bytes(entry.get(2, b""))
            out.setdefault(name, {})[key] = (
                base64.b64encode(raw).decode() if nested == "bytes" else raw.decode()
            )
    return out


def decode_object(body: bytes) -> Obj:
    """The JSON form of a `k8s\\x00` protobuf envelope holding a supported kind."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic prefix")
    envelope = dict(_fields(body[len(MAGIC) :]))
    type_meta = dict(_fields(envelope.get(1, b"")))
    api_version = bytes(type_meta.get(1, b"")).decode()
    kind = bytes(type_meta.get(2, b"")).decode()
    schema = KINDS.get(kind)
    if schema is None:
        raise ProtobufError(f"protobuf bodies of kind {kind or '?'} are not supported; send JSON")
    obj = _decode(bytes(envelope.get(2, b"")), schema)
    return {"apiVersion": api_version, "kind": kind, **obj}
