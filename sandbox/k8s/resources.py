"""The resource types the test server serves: discovery documents, defaulting and validation."""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass, field

from .selectors import SelectorError, selector_from_label_selector

SERVER_VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0-firebreak",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T00:00:00Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SUB_VERBS = ["get", "patch", "update"]
_BASE_FIELDS = frozenset({"metadata.name", "metadata.namespace"})


@dataclass(frozen=True)
class ResourceType:
    """One REST resource (``deployments.apps``) with what discovery says about it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    has_status: bool = False
    generation: bool = False
    field_labels: frozenset[str] = field(default_factory=frozenset)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``deployments.apps`` / ``pods``: how error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def supported_fields(self) -> frozenset[str]:
        return _BASE_FIELDS | self.field_labels

    def discovery(self) -> list[dict]:
        entries = [
            {
                "name": self.plural,
                "singularName": self.singular,
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ALL_VERBS
                if self.plural != "namespaces"
                else [v for v in ALL_VERBS if v != "deletecollection"],
                **({"shortNames": list(self.short_names)} if self.short_names else {}),
                **({"categories": list(self.categories)} if self.categories else {}),
            }
        ]
        for sub in self.subresources:
            entry = {"name": f"{self.plural}/{sub}", "singularName": "", "namespaced": self.namespaced}
            if sub == "scale":
                entry.update(group="autoscaling", version="v1", kind="Scale", verbs=SUB_VERBS)
            elif sub == "finalize":
                entry.update(kind=self.kind, verbs=["update"])
            elif sub in ("log", "eviction"):
                entry.update(kind="Pod" if sub == "log" else "Eviction", verbs=["get"] if sub == "log" else ["create"])
                if sub == "eviction":
                    entry.update(group="policy", version="v1")
            else:
                entry.update(kind=self.kind, verbs=SUB_VERBS)
            entries.append(entry)
        return entries


_POD_FIELDS = frozenset(
    {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    }
)
_EVENT_FIELDS = frozenset(
    {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    }
)

RESOURCES: tuple[ResourceType, ...] = (
    ResourceType(
        "",
        "v1",
        "namespaces",
        "Namespace",
        False,
        ("ns",),
        ("finalize", "status"),
        has_status=True,
        field_labels=frozenset({"status.phase"}),
    ),
    ResourceType(
        "",
        "v1",
        "nodes",
        "Node",
        False,
        ("no",),
        ("status",),
        has_status=True,
        field_labels=frozenset({"spec.unschedulable"}),
    ),
    ResourceType(
        "",
        "v1",
        "pods",
        "Pod",
        True,
        ("po",),
        ("eviction", "log", "status"),
        ("all",),
        has_status=True,
        field_labels=_POD_FIELDS,
    ),
    ResourceType("", "v1", "services", "Service", True, ("svc",), ("status",), ("all",), has_status=True),
    ResourceType("", "v1", "endpoints", "Endpoints", True, ("ep",)),
    ResourceType("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    ResourceType("", "v1", "secrets", "Secret", True, field_labels=frozenset({"type"})),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    ResourceType("", "v1", "events", "Event", True, ("ev",), field_labels=_EVENT_FIELDS),
    ResourceType("events.k8s.io", "v1", "events", "Event", True, ("ev",), field_labels=_EVENT_FIELDS),
    ResourceType(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        True,
        ("deploy",),
        ("scale", "status"),
        ("all",),
        has_status=True,
        generation=True,
    ),
    ResourceType(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        True,
        ("rs",),
        ("scale", "status"),
        ("all",),
        has_status=True,
        generation=True,
        field_labels=frozenset({"status.replicas"}),
    ),
    ResourceType(
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        True,
        ("sts",),
        ("scale", "status"),
        ("all",),
        has_status=True,
        generation=True,
    ),
    ResourceType(
        "apps", "v1", "daemonsets", "DaemonSet", True, ("ds",), ("status",), ("all",), has_status=True, generation=True
    ),
    ResourceType("apps", "v1", "controllerrevisions", "ControllerRevision", True),
    ResourceType(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        True,
        ("hpa",),
        ("status",),
        ("all",),
        has_status=True,
        generation=True,
    ),
    ResourceType(
        "autoscaling",
        "v1",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        True,
        ("hpa",),
        ("status",),
        ("all",),
        has_status=True,
        generation=True,
    ),
    ResourceType(
        "batch",
        "v1",
        "jobs",
        "Job",
        True,
        (),
        ("status",),
        ("all",),
        has_status=True,
        generation=True,
        field_labels=frozenset({"status.successful"}),
    ),
    ResourceType(
        "batch", "v1", "cronjobs", "CronJob", True, ("cj",), ("status",), ("all",), has_status=True, generation=True
    ),
    ResourceType("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ("netpol",), generation=True),
    ResourceType(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        True,
        ("pdb",),
        ("status",),
        has_status=True,
        generation=True,
    ),
    ResourceType(
        "networking.k8s.io", "v1", "ingresses", "Ingress", True, ("ing",), ("status",), has_status=True, generation=True
    ),
)

BY_PATH: dict[tuple[str, str, str], ResourceType] = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_KIND: dict[tuple[str, str], ResourceType] = {(r.api_version, r.kind): r for r in RESOURCES}
GROUPS: dict[str, list[str]] = {}
for _r in RESOURCES:
    if _r.group and _r.version not in GROUPS.setdefault(_r.group, []):
        GROUPS[_r.group].append(_r.version)


def api_group_list() -> dict:
    """``GET /apis``."""
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [api_group(name) for name in GROUPS]}


def api_group(name: str) -> dict:
    """``GET /apis/{group}``."""
    versions = [{"groupVersion": f"{name}/{v}", "version": v} for v in GROUPS[name]]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": versions, "preferredVersion": versions[0]}


def api_resource_list(group: str, version: str) -> dict:
    """``GET /api/v1`` or ``GET /apis/{group}/{version}``, subresources included."""
    resources = [entry for r in RESOURCES if (r.group, r.version) == (group, version) for entry in r.discovery()]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


# ------------------------------------------------------------------------------------------------ validation
class Invalid(Exception):
    """A validation failure: the apiserver's 422 with ``details.causes``."""

    def __init__(self, causes: list[tuple[str, str, str]]):
        super().__init__("; ".join(message for _, _, message in causes))
        self.causes = causes  # (reason, field, message)


_NAME_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


WORKLOAD_KINDS = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet")
# apps/v1 StatefulSet validation (ValidateStatefulSetUpdate): the spec fields an update may change
_STS_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)


def _go_map(labels: dict) -> str:
    return "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items())) + "}"


def validate(rtype: ResourceType, obj: dict, old: dict | None = None) -> None:
    """Raise :class:`Invalid` for what the apiserver rejects with 422 on the kinds runbooks touch."""
    causes: list[tuple[str, str, str]] = []
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    label_re = _LABEL_1123 if rtype.plural in ("namespaces", "services") else _NAME_1123
    if not name:
        causes.append(("FieldValueRequired", "metadata.name", "name or generateName is required"))
    elif len(name) > (63 if label_re is _LABEL_1123 else 253) or not label_re.match(name):
        causes.append(
            (
                "FieldValueInvalid",
                "metadata.name",
                f"Invalid value: {name!r}: a lowercase RFC 1123 "
                f"{'label' if label_re is _LABEL_1123 else 'subdomain'} must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character",
            )
        )
    for _key, value in (meta.get("labels") or {}).items():
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(("FieldValueInvalid", "metadata.labels", f"Invalid value: {value!r}: a valid label value"))
    if rtype.kind in WORKLOAD_KINDS:
        _validate_workload(rtype, obj, old, causes)
    if rtype.kind == "HorizontalPodAutoscaler":
        _validate_hpa(obj.get("spec") or {}, causes)
    if rtype.kind == "NetworkPolicy":
        _validate_network_policy(obj.get("spec") or {}, causes)
    if rtype.kind == "PodDisruptionBudget":
        from .disruption import validate as validate_disruption_budget

        validate_disruption_budget(obj.get("spec") or {}, causes)
    if rtype.kind in ("ConfigMap", "Secret"):
        for field in ("data", "binaryData", "stringData"):
            for key in obj.get(field) or {}:
                if not isinstance(key, str) or len(key) > 253 or not _CONFIG_KEY.match(key):
                    causes.append(
                        (
                            "FieldValueInvalid",
                            f"{field}[{key}]",
                            f"Invalid value: {key!r}: a valid config key must consist of alphanumeric characters, "
                            "'-', '_' or '.'",
                        )
                    )
    if rtype.kind == "ControllerRevision":
        if not isinstance(obj.get("revision"), int) or obj["revision"] < 0:
            causes.append(("FieldValueInvalid", "revision", f"Invalid value: {obj.get('revision')!r}: must be >= 0"))
        if old is not None and old.get("data") != obj.get("data"):
            causes.append(("FieldValueInvalid", "data", "field is immutable"))
    if rtype.kind == "Pod" or rtype.kind in WORKLOAD_KINDS:
        spec = obj.get("spec") or {}
        pod_spec = spec if rtype.kind == "Pod" else ((spec.get("template") or {}).get("spec") or {})
        prefix = "spec" if rtype.kind == "Pod" else "spec.template.spec"
        containers = pod_spec.get("containers")
        if not containers:
            causes.append(("FieldValueRequired", f"{prefix}.containers", "Required value"))
        for i, container in enumerate(containers or []):
            if not container.get("name"):
                causes.append(("FieldValueRequired", f"{prefix}.containers[{i}].name", "Required value"))
            if not container.get("image"):
                causes.append(("FieldValueRequired", f"{prefix}.containers[{i}].image", "Required value"))
    if causes:
        raise Invalid(causes)


def _validate_workload(rtype: ResourceType, obj: dict, old: dict | None, causes: list) -> None:
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append(("FieldValueRequired", "spec.selector", "Required value"))
    else:
        try:
            matches = selector_from_label_selector(selector)(template_labels)
        except SelectorError as exc:
            causes.append(("FieldValueInvalid", "spec.selector", str(exc)))
        else:
            if not matches:
                causes.append(
                    (
                        "FieldValueInvalid",
                        "spec.template.metadata.labels",
                        f"Invalid value: {_go_map(template_labels)}: `selector` does not match template `labels`",
                    )
                )
    if old is not None and (old.get("spec") or {}).get("selector") != selector:
        causes.append(("FieldValueInvalid", "spec.selector", f"Invalid value: {selector!r}: field is immutable"))
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        causes.append(("FieldValueInvalid", "spec.replicas", f"Invalid value: {replicas!r}: must be >= 0"))
    if rtype.kind == "StatefulSet":
        _validate_statefulset(spec, old, causes)
    if rtype.kind == "DaemonSet":
        _validate_daemonset(spec, causes)
    if rtype.kind == "Deployment":
        strategy = spec.get("strategy") or {}
        if strategy.get("type") not in (None, "RollingUpdate", "Recreate"):
            causes.append(
                ("FieldValueNotSupported", "spec.strategy.type", f'Unsupported value: "{strategy.get("type")}"')
            )
        rolling = strategy.get("rollingUpdate") or {}
        for key in ("maxSurge", "maxUnavailable"):
            value = rolling.get(key)
            if isinstance(value, str) and not re.fullmatch(r"\d+%", value):
                causes.append(
                    (
                        "FieldValueInvalid",
                        f"spec.strategy.rollingUpdate.{key}",
                        f"Invalid value: {value!r}: a valid "
                        "percent string must be a numeric string followed by an ending '%'",
                    )
                )
        if strategy.get("type") == "Recreate" and strategy.get("rollingUpdate"):
            causes.append(
                ("Forbidden", "spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")
            )
        elif (
            rolling
            and not causes
            and scaled(rolling.get("maxSurge"), 100, True) == 0 == scaled(rolling.get("maxUnavailable"), 100, False)
        ):
            causes.append(
                (
                    "FieldValueInvalid",
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    "Invalid value: 0: may not be 0 when `maxSurge` is 0",
                )
            )


def _percent_or_int(value, path: str, causes: list) -> None:
    if isinstance(value, str) and not re.fullmatch(r"\d+%", value):
        causes.append(
            (
                "FieldValueInvalid",
                path,
                f"Invalid value: {value!r}: a valid percent string must be a numeric string followed by an ending '%'",
            )
        )


def _validate_statefulset(spec: dict, old: dict | None, causes: list) -> None:
    policy = spec.get("podManagementPolicy", "OrderedReady")
    if policy not in ("OrderedReady", "Parallel"):
        causes.append(("FieldValueNotSupported", "spec.podManagementPolicy", f'Unsupported value: "{policy}"'))
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") not in ("RollingUpdate", "OnDelete"):
        causes.append(
            ("FieldValueNotSupported", "spec.updateStrategy.type", f'Unsupported value: "{strategy.get("type")}"')
        )
    if strategy.get("type") == "OnDelete" and strategy.get("rollingUpdate"):
        causes.append(
            (
                "FieldValueInvalid",
                "spec.updateStrategy.rollingUpdate",
                "only allowed for updateStrategy 'RollingUpdate'",
            )
        )
    partition = (strategy.get("rollingUpdate") or {}).get("partition", 0)
    if not isinstance(partition, int) or partition < 0:
        causes.append(
            (
                "FieldValueInvalid",
                "spec.updateStrategy.rollingUpdate.partition",
                f"Invalid value: {partition!r}: must be greater than or equal to 0",
            )
        )
    if old is not None:
        old_spec = old.get("spec") or {}
        changed = {k for k in set(spec) | set(old_spec) if k not in _STS_MUTABLE and spec.get(k) != old_spec.get(k)}
        if changed - {"selector"}:
            causes.append(
                (
                    "Forbidden",
                    "spec",
                    "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
                    "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                )
            )


_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PROTOCOLS = ("SCTP", "TCP", "UDP")


_LABEL_KEY_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_SELECTOR_FIELDS = ("matchLabels", "matchExpressions")
REQUIREMENT_FIELDS = ("key", "operator", "values")


def _label_key_ok(key) -> bool:
    if not isinstance(key, str):
        return False
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _NAME_1123.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_LABEL_KEY_NAME.match(name))


def _validate_label_selector(selector, path: str, causes: list) -> None:
    """``metav1validation.ValidateLabelSelector``: label keys and values, operators, and the values rules."""
    if not isinstance(selector, dict):
        return
    for key, value in (selector.get("matchLabels") or {}).items():
        if not _label_key_ok(key):
            causes.append(("FieldValueInvalid", f"{path}.matchLabels", f"Invalid value: {key!r}: a valid label key"))
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(
                ("FieldValueInvalid", f"{path}.matchLabels", f"Invalid value: {value!r}: a valid label value")
            )
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        where = f"{path}.matchExpressions[{i}]"
        operator, values = expr.get("operator"), expr.get("values") or []
        if operator in ("In", "NotIn") and not values:
            causes.append(
                (
                    "FieldValueRequired",
                    f"{where}.values",
                    "Required value: must be specified when `operator` is 'In' or 'NotIn'",
                )
            )
        elif operator in ("Exists", "DoesNotExist") and values:
            causes.append(
                (
                    "Forbidden",
                    f"{where}.values",
                    "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
            )
        elif operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            causes.append(
                (
                    "FieldValueInvalid",
                    f"{where}.operator",
                    f"Invalid value: {operator!r}: not a valid selector operator",
                )
            )
        if not _label_key_ok(expr.get("key")):
            causes.append(
                ("FieldValueInvalid", f"{where}.key", f"Invalid value: {expr.get('key')!r}: a valid label key")
            )
        for value in values:
            if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
                causes.append(
                    ("FieldValueInvalid", f"{where}.values", f"Invalid value: {value!r}: a valid label value")
                )


def network_policy_selectors(spec: dict):
    """``(path, selector)`` for every LabelSelector of a NetworkPolicy spec (the pods, and each peer's)."""
    if not isinstance(spec, dict):
        return
    if isinstance(spec.get("podSelector"), dict):
        yield "spec.podSelector", spec["podSelector"]
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            for j, peer in enumerate((rule or {}).get(peers_key) or []):
                for key in ("podSelector", "namespaceSelector"):
                    if isinstance((peer or {}).get(key), dict):
                        yield f"spec.{direction}[{i}].{peers_key}[{j}].{key}", peer[key]


def unknown_selector_fields(obj: dict, prune: bool = False) -> list[str]:
    """The fields of a NetworkPolicy's LabelSelectors that the API does not know (``spec.podSelector.app``), as the
    apiserver's decoder names them; ``prune`` drops them, as it does unless ``fieldValidation=Strict``."""
    found = []
    for path, selector in list(network_policy_selectors(obj.get("spec"))):
        for key in [k for k in selector if k not in LABEL_SELECTOR_FIELDS]:
            found.append(f"{path}.{key}")
            if prune:
                del selector[key]
        for i, expr in enumerate(selector.get("matchExpressions") or []):
            if not isinstance(expr, dict):
                continue
            for key in [k for k in expr if k not in REQUIREMENT_FIELDS]:
                found.append(f"{path}.matchExpressions[{i}].{key}")
                if prune:
                    del expr[key]
    return found


def _validate_network_policy(spec: dict, causes: list) -> None:
    """``ValidateNetworkPolicySpec``: policyTypes, ports (protocol, number or IANA name, endPort), peers, and the
    label selectors."""
    for path, selector in network_policy_selectors(spec):
        _validate_label_selector(selector, path, causes)
    types = spec.get("policyTypes") or []
    for i, value in enumerate(types):
        if value not in ("Ingress", "Egress"):
            causes.append(
                (
                    "FieldValueNotSupported",
                    f"spec.policyTypes[{i}]",
                    f'Unsupported value: "{value}": supported values: "Egress", "Ingress"',
                )
            )
    if len(types) > 2:
        causes.append(
            (
                "FieldValueInvalid",
                "spec.policyTypes",
                f"Invalid value: {types!r}: may not specify more than two policyTypes",
            )
        )
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            for j, port in enumerate(rule.get("ports") or []):
                path = f"spec.{direction}[{i}].ports[{j}]"
                protocol = port.get("protocol", "TCP")
                if protocol not in _PROTOCOLS:
                    causes.append(
                        (
                            "FieldValueNotSupported",
                            f"{path}.protocol",
                            f'Unsupported value: "{protocol}": supported values: "SCTP", "TCP", "UDP"',
                        )
                    )
                number = port.get("port")
                if isinstance(number, bool) or (number is not None and not isinstance(number, (int, str))):
                    causes.append(("FieldValueInvalid", f"{path}.port", f"Invalid value: {number!r}: must be a port"))
                elif isinstance(number, int) and not 1 <= number <= 65535:
                    causes.append(
                        (
                            "FieldValueInvalid",
                            f"{path}.port",
                            f"Invalid value: {number}: must be between 1 and 65535, inclusive",
                        )
                    )
                elif isinstance(number, str) and (
                    len(number) > 15 or not _PORT_NAME.match(number) or not re.search("[a-z]", number) or "--" in number
                ):
                    causes.append(
                        (
                            "FieldValueInvalid",
                            f"{path}.port",
                            f"Invalid value: {number!r}: must contain only lowercase alpha-numeric characters (a-z, "
                            "0-9) and hyphens (-), at most 15 characters, at least one letter",
                        )
                    )
                end = port.get("endPort")
                if end is not None:
                    if not isinstance(number, int):
                        causes.append(
                            (
                                "FieldValueInvalid",
                                f"{path}.endPort",
                                f"Invalid value: {end!r}: may not be specified when `port` is non-numeric",
                            )
                        )
                    elif not isinstance(end, int) or end < number:
                        causes.append(
                            (
                                "FieldValueInvalid",
                                f"{path}.endPort",
                                f"Invalid value: {end!r}: must be greater than or equal to `port`",
                            )
                        )
                    elif end > 65535:
                        causes.append(
                            (
                                "FieldValueInvalid",
                                f"{path}.endPort",
                                f"Invalid value: {end}: must be between 1 and 65535, inclusive",
                            )
                        )
            for j, peer in enumerate(rule.get(peers_key) or []):
                path = f"spec.{direction}[{i}].{peers_key}[{j}]"
                block = peer.get("ipBlock")
                selectors = [k for k in ("podSelector", "namespaceSelector") if peer.get(k) is not None]
                if block is not None and selectors:
                    causes.append(("Forbidden", path, "may not specify more than 1 peer type"))
                if block is None and not selectors:
                    causes.append(("FieldValueRequired", path, "must specify a peer"))
                if block is not None:
                    cidr = block.get("cidr", "")
                    try:
                        network = ipaddress.ip_network(cidr, strict=False)
                    except ValueError:
                        causes.append(
                            (
                                "FieldValueInvalid",
                                f"{path}.ipBlock.cidr",
                                f"Invalid value: {cidr!r}: must be a valid CIDR value, "
                                "(e.g. 10.9.8.0/24 or 2001:db8::/64)",
                            )
                        )
                        continue
                    for k, other in enumerate(block.get("except") or []):
                        try:
                            inner = ipaddress.ip_network(other, strict=False)
                            inside = inner.version == network.version and inner.subnet_of(network) and inner != network
                        except ValueError:
                            inside = False
                        if not inside:
                            causes.append(
                                (
                                    "FieldValueInvalid",
                                    f"{path}.ipBlock.except[{k}]",
                                    f"Invalid value: {other!r}: must be a strict subset of `cidr`",
                                )
                            )


def _validate_hpa(spec: dict, causes: list) -> None:
    """``ValidateHorizontalPodAutoscaler``: scaleTargetRef kind and name, 1 <= minReplicas <= maxReplicas."""
    ref = spec.get("scaleTargetRef") or {}
    for key in ("kind", "name"):
        if not ref.get(key):
            causes.append(("FieldValueRequired", f"spec.scaleTargetRef.{key}", "Required value"))
    minimum, maximum = spec.get("minReplicas", 1), spec.get("maxReplicas")
    if not isinstance(maximum, int) or maximum < 1:
        causes.append(
            ("FieldValueInvalid", "spec.maxReplicas", f"Invalid value: {maximum!r}: must be greater than or equal to 1")
        )
    if not isinstance(minimum, int) or minimum < 1:
        causes.append(
            ("FieldValueInvalid", "spec.minReplicas", f"Invalid value: {minimum!r}: must be greater than or equal to 1")
        )
    elif isinstance(maximum, int) and minimum > maximum:
        causes.append(
            (
                "FieldValueInvalid",
                "spec.maxReplicas",
                f"Invalid value: {maximum}: must be greater than or equal to `minReplicas`",
            )
        )


def _validate_daemonset(spec: dict, causes: list) -> None:
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") not in ("RollingUpdate", "OnDelete"):
        causes.append(
            ("FieldValueNotSupported", "spec.updateStrategy.type", f'Unsupported value: "{strategy.get("type")}"')
        )
    rolling = strategy.get("rollingUpdate") or {}
    for key in ("maxSurge", "maxUnavailable"):
        _percent_or_int(rolling.get(key), f"spec.updateStrategy.rollingUpdate.{key}", causes)
    if rolling and scaled(rolling.get("maxSurge", 0), 100, True) == 0 == scaled(
        rolling.get("maxUnavailable", 1), 100, False
    ):
        causes.append(
            (
                "FieldValueInvalid",
                "spec.updateStrategy.rollingUpdate.maxUnavailable",
                "Invalid value: 0: may not be 0 when `maxSurge` is 0",
            )
        )


def scaled(value: int | str | None, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``: ints as is, percentages of ``total`` rounded up or down."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    percent = int(value.rstrip("%"))
    whole, rest = divmod(percent * total, 100)
    return whole + (1 if round_up and rest else 0)


# ------------------------------------------------------------------------------------------------- defaulting
def _default_pod_spec(spec: dict) -> None:
    for key, value in (
        ("restartPolicy", "Always"),
        ("terminationGracePeriodSeconds", 30),
        ("dnsPolicy", "ClusterFirst"),
        ("securityContext", {}),
        ("schedulerName", "default-scheduler"),
    ):
        spec.setdefault(key, value)
    for container in spec.get("containers") or []:
        image = container.get("image") or ""
        tag = image.rsplit("/", 1)[-1]
        always = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
        container.setdefault("imagePullPolicy", "Always" if always else "IfNotPresent")
        container.setdefault("resources", {})
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")


def apply_defaults(rtype: ResourceType, obj: dict) -> None:
    """Fill in the defaults the apiserver adds, so that stored and round-tripped objects compare equal."""
    spec = obj.get("spec")
    if rtype.kind in WORKLOAD_KINDS and isinstance(spec, dict):
        if rtype.kind != "DaemonSet":
            spec.setdefault("replicas", 1)
        if rtype.kind == "StatefulSet":
            spec.setdefault("podManagementPolicy", "OrderedReady")
            spec.setdefault("revisionHistoryLimit", 10)
            strategy = spec.setdefault("updateStrategy", {})
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
            retention = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
            retention.setdefault("whenDeleted", "Retain")
            retention.setdefault("whenScaled", "Retain")
        if rtype.kind == "DaemonSet":
            spec.setdefault("revisionHistoryLimit", 10)
            strategy = spec.setdefault("updateStrategy", {})
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                rolling = strategy.setdefault("rollingUpdate", {})
                rolling.setdefault("maxUnavailable", 1)
                rolling.setdefault("maxSurge", 0)
        if rtype.kind == "Deployment":
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
            strategy = spec.setdefault("strategy", {})
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                rolling = strategy.setdefault("rollingUpdate", {})
                rolling.setdefault("maxSurge", "25%")
                rolling.setdefault("maxUnavailable", "25%")
        template = spec.get("template")
        if isinstance(template, dict):
            template.setdefault("metadata", {}).setdefault("creationTimestamp", None)
            if isinstance(template.get("spec"), dict):
                _default_pod_spec(template["spec"])
    elif rtype.kind == "Pod" and isinstance(spec, dict):
        _default_pod_spec(spec)
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("serviceAccountName", "default")
    elif rtype.kind == "Service" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    elif rtype.kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta.get("labels"), dict):
            meta["labels"] = {}
        # the namespace strategy (PrepareForCreate/PrepareForUpdate) always sets it: it cannot be changed
        meta["labels"]["kubernetes.io/metadata.name"] = meta.get("name", "")
    elif rtype.kind == "HorizontalPodAutoscaler" and isinstance(spec, dict):
        spec.setdefault("minReplicas", 1)
        if rtype.version == "v2":  # SetDefaults_HorizontalPodAutoscaler (autoscaling/v2)
            if not spec.get("metrics"):
                spec["metrics"] = [
                    {
                        "type": "Resource",
                        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
                    }
                ]
            behavior = spec.setdefault("behavior", {})
            up = behavior.setdefault("scaleUp", {})
            up.setdefault("stabilizationWindowSeconds", 0)
            up.setdefault("selectPolicy", "Max")
            up.setdefault(
                "policies",
                [
                    {"type": "Pods", "value": 4, "periodSeconds": 15},
                    {"type": "Percent", "value": 100, "periodSeconds": 15},
                ],
            )
            down = behavior.setdefault("scaleDown", {})
            down.setdefault("selectPolicy", "Max")
            down.setdefault("policies", [{"type": "Percent", "value": 100, "periodSeconds": 15}])
    elif rtype.kind == "Secret":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict) and string_data:
            # stringData is write-only: the v1 conversion merges it into data, base64-encoded, stringData winning
            data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            obj["data"] = data
    elif rtype.kind == "NetworkPolicy" and isinstance(spec, dict):
        # the decoder drops fields the schema does not have (fieldValidation Ignore or Warn, the default)
        unknown_selector_fields(obj, prune=True)
        if "policyTypes" not in spec:
            spec["policyTypes"] = ["Ingress"] + (["Egress"] if "egress" in spec else [])
