"""What the scheduler and the kubelet would report about a pod: its status, its Events and its log.

A pod is bound to a node when it has none (``default-scheduler``, Event ``Scheduled``). Its containers
start ``rollout_delay`` seconds later (``ContainerCreating`` until then) and then, per container:

- an image matching ``bad_image_pattern`` is never pulled: ``ErrImagePull``, then ``ImagePullBackOff``
  (Events Pulling, Failed, BackOff); the pod stays ``Pending``;
- an env/envFrom reference to a ConfigMap or Secret (or a key) that does not exist, unless ``optional``:
  ``CreateContainerConfigError`` (Event Failed ``Error: configmap "x" not found``), ``Pending``;
- a configMap/secret volume whose object does not exist: the pod stays ``ContainerCreating`` (Event
  FailedMount ``MountVolume.SetUp failed for volume ...``);
- an image matching ``crash_image_pattern`` starts, exits with code 1 after half a back-off, and is
  restarted after a back-off that doubles each time (``crash_backoff``, capped at 32 times it), in
  ``CrashLoopBackOff`` in between, with ``restartCount`` and ``lastState.terminated``; never Ready; the
  pod is ``Running`` (``Failed`` with ``restartPolicy: Never``); Event BackOff ``Back-off restarting failed
  container``; ``pods/log`` answers the lines the crashed run wrote;
- otherwise the container runs and is Ready (Events Pulled, Created, Started).

A pod on a node whose ``Ready`` condition is not True is not Ready (the node lifecycle controller's
``MarkPodsNotReady``).
"""

from __future__ import annotations

import hashlib

from .store import now_iso

BACKOFF_CAP = 32  # the kubelet's 10 s back-off doubles up to 5 min: 32 steps of it


def _ref_error(store, rtypes: dict, namespace: str, kind: str, name: str, key: str | None) -> str | None:
    """The kubelet's message for a missing ConfigMap/Secret (or key), None when it resolves."""
    rtype = rtypes[kind]
    obj = store.lookup(rtype, namespace, name)
    label = "configmap" if kind == "ConfigMap" else "secret"
    if obj is None:
        return f'{label} "{name}" not found'
    if key is not None:
        data = {**(obj.get("data") or {}), **(obj.get("binaryData") or {})}
        if key not in data:
            return f"couldn't find key {key} in {kind} {namespace}/{name}"
    return None


def config_error(store, rtypes: dict, namespace: str, container: dict) -> str | None:
    """``CreateContainerConfigError``: the first env/envFrom reference that does not resolve."""
    for source in container.get("envFrom") or []:
        for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            ref = source.get(field)
            if ref and not ref.get("optional"):
                error = _ref_error(store, rtypes, namespace, kind, ref.get("name", ""), None)
                if error:
                    return error
    for env in container.get("env") or []:
        value_from = env.get("valueFrom") or {}
        for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
            ref = value_from.get(field)
            if ref and not ref.get("optional"):
                error = _ref_error(store, rtypes, namespace, kind, ref.get("name", ""), ref.get("key"))
                if error:
                    return error
    return None


def mount_error(store, rtypes: dict, namespace: str, pod_spec: dict) -> str | None:
    """``FailedMount``: a configMap/secret volume whose object does not exist."""
    for volume in pod_spec.get("volumes") or []:
        for field, kind, name_key in (("configMap", "ConfigMap", "name"), ("secret", "Secret", "secretName")):
            source = volume.get(field)
            if source and not source.get("optional"):
                error = _ref_error(store, rtypes, namespace, kind, source.get(name_key, ""), None)
                if error:
                    return f'MountVolume.SetUp failed for volume "{volume.get("name")}" : {error}'
    return None


def crash_cycle(started: float, now: float, backoff: float) -> tuple[int, float | None, float | None, float]:
    """Restarts of a container that exits after half a back-off: (restarts, last crash started, last crash
    finished, current run started or next restart time)."""
    restarts, run_start, last = 0, started, (None, None)
    run = backoff / 2
    while True:
        crash = run_start + run
        if now < crash:
            return restarts, last[0], last[1], run_start
        delay = backoff * min(2**restarts, BACKOFF_CAP)
        last = (run_start, crash)
        if now < crash + delay:
            return restarts, last[0], last[1], -(crash + delay)  # negative: waiting until then
        restarts += 1
        run_start = crash + delay


def crash_log(pod: dict, container: dict, started: float) -> list[str]:
    """What a container that exits with status 1 wrote before exiting."""
    ts = now_iso(started)
    env = {e.get("name"): e.get("value") for e in container.get("env") or []}
    target = env.get("DATABASE_HOST") or env.get("API_URL") or "db.internal:5432"
    return [
        f"{ts} INFO starting {container.get('image', '')} (pid 1) in pod {pod['metadata']['name']}",
        f"{ts} INFO loading configuration from /etc/app/config.yaml",
        f"{ts} ERROR connecting to {target}: dial tcp 10.0.3.12:5432: connect: connection refused",
        f"{ts} FATAL cannot start without a database connection, exiting with status 1",
    ]


class Kubelet:
    """Pod status and Events for the controllers (one instance per :class:`Controllers`)."""

    def __init__(self, controllers):
        self.c = controllers
        self.recorded: set[tuple] = set()  # (pod uid, what) already recorded once

    def reset(self) -> None:
        self.recorded.clear()

    def _once(self, pod: dict, what: str, reason: str, message: str, etype: str = "Normal", field: str = "") -> None:
        key = (pod["metadata"]["uid"], what)
        if key in self.recorded or self.c.instant:
            return
        self.recorded.add(key)
        node = pod["spec"].get("nodeName", "")
        self.c.record_event(pod, reason, message, etype, "kubelet", node, field_path=field)

    def _repeat(self, pod: dict, what: str, count: int, reason: str, message: str, etype: str, field: str) -> None:
        """An Event recorded once per occurrence (the recorder bumps ``count``)."""
        for index in range(1, count + 1):
            self._once(pod, f"{what}#{index}", reason, message, etype, field)

    # -------------------------------------------------------------------------------------------- status
    def status(self, pod: dict, started: float, now: float) -> dict:
        c, store = self.c, self.c.store
        spec, meta = pod["spec"], pod["metadata"]
        namespace = meta.get("namespace", "")
        created = meta["creationTimestamp"]
        node = c.node(spec.get("nodeName", ""))
        host_ip = next(
            (a["address"] for a in (node or {}).get("status", {}).get("addresses") or [] if a["type"] == "InternalIP"),
            "",
        )
        sandbox_ready = now >= started
        mount = mount_error(store, c.ref_types, namespace, spec) if sandbox_ready else None
        if mount:
            self._once(pod, "mount:" + mount, "FailedMount", mount, "Warning")
        running_since = sandbox_ready and not mount
        seed = int(hashlib.sha256(meta["uid"].encode()).hexdigest(), 16)
        statuses = []
        any_started = failed = False
        for container in spec.get("containers") or []:
            status, started_once, exited = self.container(pod, container, started, now, running_since)
            any_started |= started_once
            failed |= exited
            statuses.append(status)
        node_ready = node is not None and c.node_ready(node)
        ready = bool(statuses) and all(s["ready"] for s in statuses) and node_ready
        containers_ready = bool(statuses) and all(s["ready"] for s in statuses)
        start_ts = now_iso(started) if sandbox_ready else created
        unready = [s["name"] for s in statuses if not s["ready"]]
        message = f"containers with unready status: [{' '.join(unready)}]"

        def cond(ctype: str, ok: bool, ts: str, reason: str = "", msg: str = "") -> dict:
            entry = {
                "type": ctype,
                "status": "True" if ok else "False",
                "lastProbeTime": None,
                "lastTransitionTime": ts,
            }
            if not ok and reason:
                entry.update(reason=reason, message=msg)
            return entry

        phase = "Pending"
        if failed:
            phase = "Failed"
        elif any_started:
            phase = "Running"
        status = {
            "phase": phase,
            "conditions": [
                cond("PodReadyToStartContainers", running_since, start_ts),
                cond("Initialized", True, created),
                cond("Ready", ready, start_ts, "ContainersNotReady" if unready else "", message if unready else ""),
                cond("ContainersReady", containers_ready, start_ts, "ContainersNotReady", message),
                cond("PodScheduled", True, created),
            ],
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}] if host_ip else [],
            "startTime": created,
            "containerStatuses": statuses,
            "qosClass": "BestEffort",
        }
        if running_since:
            ip = f"10.244.{seed % 250}.{(seed >> 8) % 250 + 2}"
            status["podIP"], status["podIPs"] = ip, [{"ip": ip}]
        if not node_ready and containers_ready:
            status["conditions"][2] = cond("Ready", False, start_ts)
        return status

    def container(self, pod: dict, container: dict, started: float, now: float, running: bool) -> tuple:
        """(containerStatus, has it ever started, has it terminated for good)."""
        c = self.c
        name, image = container["name"], container.get("image", "")
        field = f"spec.containers{{{name}}}"
        status = {"name": name, "image": image, "imageID": "", "ready": False, "restartCount": 0, "started": False}
        if not running:
            status["state"] = {"waiting": {"reason": "ContainerCreating"}}
            return status, False, False
        if c.bad_image.search(image):
            self._once(pod, f"pull:{name}", "Pulling", f'Pulling image "{image}"', field=field)
            self._once(
                pod,
                f"pull-failed:{name}",
                "Failed",
                f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and unpack image '
                f'"{image}": failed to resolve reference "{image}": {image}: not found',
                "Warning",
                field,
            )
            self._once(pod, f"errpull:{name}", "Failed", "Error: ErrImagePull", "Warning", field)
            if now < started + c.crash_backoff / 4:  # the first pull fails, then the kubelet backs off
                status["state"] = {"waiting": {"reason": "ErrImagePull", "message": f"{image}: not found"}}
            else:
                self._once(pod, f"backoff:{name}", "BackOff", f'Back-off pulling image "{image}"', field=field)
                self._once(pod, f"pullbackoff:{name}", "Failed", "Error: ImagePullBackOff", "Warning", field)
                status["state"] = {
                    "waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}
                }
            return status, False, False
        image_id = "registry.local/" + image.rsplit("/", 1)[-1].split(":")[0] + "@sha256:"
        status["imageID"] = image_id + hashlib.sha256(image.encode()).hexdigest()
        if container.get("imagePullPolicy") == "Always":
            self._once(pod, f"pull:{name}", "Pulling", f'Pulling image "{image}"', field=field)
            self._once(
                pod,
                f"pulled:{name}",
                "Pulled",
                f'Successfully pulled image "{image}" in 1.204s (1.204s including waiting). '
                "Image size: 52428800 bytes.",
                field=field,
            )
        else:
            self._once(
                pod, f"pulled:{name}", "Pulled", f'Container image "{image}" already present on machine', field=field
            )
        error = config_error(c.store, c.ref_types, pod["metadata"].get("namespace", ""), container)
        if error:
            self._once(pod, f"config:{name}:{error}", "Failed", f"Error: {error}", "Warning", field)
            status["state"] = {"waiting": {"reason": "CreateContainerConfigError", "message": error}}
            return status, False, False
        container_id = "containerd://" + hashlib.sha256((pod["metadata"]["uid"] + name).encode()).hexdigest()
        self._once(pod, f"created:{name}", "Created", f"Created container {name}", field=field)
        self._once(pod, f"started:{name}", "Started", f"Started container {name}", field=field)
        status["containerID"] = container_id
        if not c.crash_image.search(image):
            status.update(ready=True, started=True, state={"running": {"startedAt": now_iso(started)}})
            return status, True, False
        restarts, last_start, last_end, current = crash_cycle(started, now, c.crash_backoff)
        never = pod["spec"].get("restartPolicy", "Always") == "Never"
        terminated = None
        if last_start is not None:
            terminated = {
                "exitCode": 1,
                "reason": "Error",
                "startedAt": now_iso(last_start),
                "finishedAt": now_iso(last_end),
                "containerID": container_id,
            }
        if never and terminated:
            status.update(restartCount=0, state={"terminated": terminated})
            return status, True, True
        status["restartCount"] = restarts
        if terminated:
            status["lastState"] = {"terminated": terminated}
        crashes = restarts + (1 if current < 0 else 0)
        self._repeat(
            pod,
            f"crash:{name}",
            crashes,
            "BackOff",
            f"Back-off restarting failed container {name} in pod {pod['metadata']['name']}_"
            f"{pod['metadata'].get('namespace', '')}({pod['metadata']['uid']})",
            "Warning",
            field,
        )
        if current < 0:
            delay = 10 * min(2 ** (crashes - 1), BACKOFF_CAP)
            status["state"] = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {_duration(delay)} restarting failed container={name} "
                    f"pod={pod['metadata']['name']}_{pod['metadata'].get('namespace', '')}({pod['metadata']['uid']})",
                }
            }
        else:
            status.update(started=True, state={"running": {"startedAt": now_iso(current)}})
        return status, True, False

    # ----------------------------------------------------------------------------------------------- log
    def log(self, pod: dict, container_name: str, previous: bool) -> list[str]:
        """The container's log lines, or a ``ValueError`` with the kubelet's message."""
        c = self.c
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        spec_containers = {x["name"]: x for x in pod["spec"].get("containers") or []}
        pod_name = pod["metadata"]["name"]
        if not statuses:
            raise ValueError(f'container "{container_name}" in pod "{pod_name}" is waiting to start: ContainerCreating')
        if not container_name and len(statuses) > 1:
            names = " ".join(s["name"] for s in statuses)
            raise ValueError(f"a container name must be specified for pod {pod_name}, choose one of: [{names}]")
        status = next((s for s in statuses if s["name"] == container_name), None) if container_name else statuses[0]
        if status is None:
            raise ValueError(f"container {container_name} is not valid for pod {pod_name}")
        container = spec_containers.get(status["name"], {})
        started = c.ready_at.get(pod["metadata"]["uid"])
        crashing = c.crash_image.search(status.get("image", "")) is not None
        last = (status.get("lastState") or {}).get("terminated")
        if previous:
            if not last:
                raise ValueError(f'previous terminated container "{status["name"]}" in pod "{pod_name}" not found')
            return crash_log(pod, container, started or 0)
        state = status.get("state") or {}
        if "waiting" in state:
            if crashing and last:
                return crash_log(pod, container, started or 0)  # the last run's output, as kubectl logs shows
            reason = state["waiting"].get("reason", "")
            why = "trying and failing to pull image" if reason == "ImagePullBackOff" else reason
            raise ValueError(f'container "{status["name"]}" in pod "{pod_name}" is waiting to start: {why}')
        if crashing or "terminated" in state:
            return crash_log(pod, container, started or 0)
        ts = state["running"]["startedAt"]
        return [
            f"{ts} INFO starting {status['image']}",
            f"{ts} INFO listening",
            f"{ts} INFO readiness probe /healthz ok",
        ]


def _duration(seconds: int) -> str:
    """Go's ``time.Duration`` string for whole seconds (``10s``, ``1m20s``, ``5m0s``)."""
    minutes, secs = divmod(seconds, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"
