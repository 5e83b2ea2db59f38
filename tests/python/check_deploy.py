"""Static checks of the compose demo (compose.yaml; `make test-compose` runs it for real) and
of the mesh manifests (no Kubernetes here): they must agree with the local demo and with what
the real filter and companion accept, publish nothing beyond 127.0.0.1, and give every
service a health check that its dependants wait for. Prints one JSON object for tests/tests/deploy_check.rs:

  {"companion_env": {...},            # compose companion environment, to be parsed by the companion
   "istio_companion_env": {...},      # the same for the Istio Deployment
   "istio_filter_config": "...json",  # WasmPlugin pluginConfig as the filter receives it
   "problems": [...]}                 # consistency problems found here
"""

import json
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
problems = []


def check(cond, what):
    if not cond:
        problems.append(what)


compose_dir = ROOT / "envoy/compose"
compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
services = compose.get("services", {})
for name in ("hazelcast-1", "hazelcast-2", "companion", "app", "filter", "envoy", "wasm-plugin"):
    check(name in services, f"compose: service {name} missing")
check(services["wasm-plugin"].get("profiles") == ["oci"] and services["wasm-plugin"]["build"]["target"] == "wasm-plugin",
      "compose: the Istio image is built only on request (profile oci), from the wasm-plugin target")
services = {k: v for k, v in services.items() if k != "wasm-plugin"}  # never run

versions = dict(re.findall(r"^(\w+)=(\S+)$", (ROOT / "deploy/versions.sh").read_text(), re.M))
for name in ("hazelcast-1", "hazelcast-2"):
    check(services[name]["image"] == f"hazelcast/hazelcast:{versions['HAZELCAST_VERSION']}",
          f"compose: {name} image tag differs from deploy/versions.sh")
    check("-Dhazelcast.config=/opt/hazelcast/config_ext/hazelcast.yaml" in services[name]["environment"]["JAVA_OPTS"],
          f"compose: {name} must name its configuration the way the official image documents")
check(services["envoy"]["image"] == f"envoyproxy/envoy:v{versions['ENVOY_VERSION']}",
      "compose: Envoy image tag differs from deploy/versions.sh")
requirements = (ROOT / "deploy/demo-app/requirements.txt").read_text()
check(f"hazelcast-python-client=={versions['HZ_PYTHON_CLIENT_VERSION']}" in requirements,
      "deploy/demo-app/requirements.txt: the Hazelcast Python client differs from deploy/versions.sh")

# Every bind-mounted file exists; named volumes are declared.
for name, svc in services.items():
    for vol in svc.get("volumes", []):
        src = vol.split(":")[0]
        if src.startswith((".", "/")):
            check((ROOT / src).resolve().exists(), f"compose: {name} mounts missing {src}")
        else:
            check(src in (compose.get("volumes") or {}), f"compose: {name} mounts undeclared volume {src}")

# Health checks everywhere (but the one-shot filter copy), and dependencies wait for them.
for name, svc in services.items():
    if name != "filter":
        check("healthcheck" in svc, f"compose: {name} has no health check")
    for dep, cond in (svc.get("depends_on") or {}).items():
        want = "service_completed_successfully" if dep == "filter" else "service_healthy"
        check(isinstance(cond, dict) and cond.get("condition") == want,
              f"compose: {name} must depend on {dep} with condition {want}")
check(services["filter"].get("restart", "no") == "no", "compose: the filter copy runs once")

# The member config the compose demo mounts.
hz = yaml.safe_load((ROOT / "deploy/compose/hazelcast.yaml").read_text())["hazelcast"]
hz_port = hz["network"]["port"]["port"]
check(hz["cluster-name"] == "dev", "compose: Hazelcast cluster name must be dev (official client default)")
check(hz["properties"].get("hazelcast.phone.home.enabled") == "false", "compose: phone-home must be off")
check(hz["network"]["join"]["multicast"]["enabled"] is False, "compose: multicast must be off")
check(hz["network"]["join"]["auto-detection"]["enabled"] is False, "compose: auto-detection must be off")
members = [f"{n}:{hz_port}" for n in ("hazelcast-1", "hazelcast-2")]
check(hz["network"]["join"]["tcp-ip"]["member-list"] == members, "compose: the members must list each other")
rest = hz["network"].get("rest-api", {})
check(rest.get("enabled") is True and rest["endpoint-groups"]["HEALTH_CHECK"]["enabled"] is True,
      "compose: the members' health endpoint (the health check) must be on")
check(not any(g.get("enabled") for k, g in rest.get("endpoint-groups", {}).items() if k != "HEALTH_CHECK"),
      "compose: no REST endpoint group but HEALTH_CHECK")
for m in ("hzcache*", "cache"):
    mc = hz["map"].get(m, {})
    ev = mc.get("eviction", {})
    check(mc.get("backup-count", 0) >= 1 and ev.get("eviction-policy") in ("LRU", "LFU") and ev.get("size"),
          f"compose: map {m} must be bounded (backups, eviction, max size)")

env = {k: str(v) for k, v in services["companion"]["environment"].items()}


def env_file(service):
    """KEY=VALUE lines of a service's env_file (compose reads them into its environment)."""
    out = {}
    name = services[service].get("env_file")
    if name:
        for line in (ROOT / name).read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                out[k] = v
    return out


env.update(env_file("companion"))
check("HZCACHE_CALLOUT_SECRET" in env, "compose: the companion has no callout secret")
check("HZCACHE_CALLOUT_SECRET" not in services["companion"]["environment"],
      "compose: the callout secret belongs in the env file, not compose.yaml")
check(env_file("envoy").get("HZCACHE_CALLOUT_SECRET") == env.get("HZCACHE_CALLOUT_SECRET"),
      "compose: Envoy and the companion must share the callout secret")
# Published: only Envoy's listener and the app, and only on 127.0.0.1.
for name, service in services.items():
    for port in service.get("ports", []):
        check(str(port).startswith("127.0.0.1:"), f"compose: {name} publishes {port} beyond 127.0.0.1")
    if name not in ("envoy", "app"):
        check(not service.get("ports"), f"compose: {name} must not publish any port")
check(env.get("HZCACHE_HAZELCAST") == ",".join(members), "compose: companion must reach both members")
check(env.get("HZCACHE_CLUSTER_NAME") == hz["cluster-name"], "compose: cluster names differ")
app_port = services["app"]["ports"][0].rsplit(":", 1)[1]
check(services["app"]["environment"]["HAZELCAST_MEMBERS"] == ",".join(members), "compose: the app must reach both members")
check(env.get("HZCACHE_ORIGINS") == f"default=http://app:{app_port}", "compose: companion origin is not the app")

# The Envoy config mounted into the envoy service points at these services and ports.
envoy = yaml.safe_load((compose_dir / "envoy.yaml").read_text())
clusters = {c["name"]: c for c in envoy["static_resources"]["clusters"]}


def endpoint(cluster):
    ep = clusters[cluster]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    sa = ep["address"]["socket_address"]
    return sa["address"], str(sa["port_value"])


companion_listen_port = env["HZCACHE_LISTEN"].rsplit(":", 1)[1]
check(endpoint("origin") == ("app", app_port), "compose envoy: origin cluster is not the app")
check(endpoint("hzcache_companion") == ("companion", companion_listen_port), "compose envoy: companion cluster is not companion")
check(envoy["admin"]["address"]["socket_address"]["address"] == "127.0.0.1",
      "compose envoy: the admin endpoint must listen on the container's loopback only")
listener_port = str(envoy["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"])
check(f"127.0.0.1:{listener_port}:{listener_port}" in services["envoy"]["ports"], "compose: Envoy listener port not published on 127.0.0.1")
mounts = {v.split(":")[1]: v.split(":")[0] for v in services["envoy"]["volumes"]}
check(mounts.get("/etc/envoy/envoy.yaml") == "./envoy/compose/envoy.yaml", "compose: Envoy must mount envoy/compose/envoy.yaml")
wasm_path = re.search(r'filename: "([^"]+)"', (compose_dir / "envoy.yaml").read_text()).group(1)
check(mounts.get(str(pathlib.PurePosixPath(wasm_path).parent)) == "wasm", "compose envoy: the .wasm is not in the wasm volume")

# Istio manifests: deploy/istio/*.yaml (deploy/istio/alternatives/ holds the gateway placement).
DIGEST = re.compile(r"^oci://[^@\s]+@sha256:[0-9a-f]{64}$")
SECRET_STAND_IN = "stand-in-for-the-kubernetes-secret"


def load_docs(paths):
    return [d for f in paths for d in yaml.safe_load_all(pathlib.Path(f).read_text()) if d]


def restricted_pss(where, pod):
    """The Kubernetes "restricted" Pod Security Standard (v1.34), checked on a pod spec."""
    check(not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), f"{where}: host namespaces")
    psc = pod.get("securityContext", {})
    allowed_volumes = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                       "persistentVolumeClaim", "projected", "secret"}
    for vol in pod.get("volumes", []):
        kinds = set(vol) - {"name"}
        check(kinds <= allowed_volumes, f"{where}: volume {vol.get('name')} of type {kinds - allowed_volumes}")
    for c in pod.get("initContainers", []) + pod.get("containers", []):
        sc = c.get("securityContext", {})
        w = f"{where}: container {c['name']}"
        check(not sc.get("privileged"), f"{w}: privileged")
        check(sc.get("allowPrivilegeEscalation") is False, f"{w}: allowPrivilegeEscalation must be false")
        caps = sc.get("capabilities", {})
        check("ALL" in caps.get("drop", []), f"{w}: capabilities must drop ALL")
        check(set(caps.get("add", [])) <= {"NET_BIND_SERVICE"}, f"{w}: adds capabilities")
        check((sc.get("runAsNonRoot", psc.get("runAsNonRoot"))) is True, f"{w}: runAsNonRoot must be true")
        check(sc.get("runAsUser", psc.get("runAsUser")) != 0, f"{w}: runs as UID 0")
        seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
        check(seccomp in ("RuntimeDefault", "Localhost"), f"{w}: seccompProfile must be RuntimeDefault or Localhost")
        check(not any(p.get("hostPort") for p in c.get("ports", [])), f"{w}: hostPort")


def mesh_checks(where, docs, placement="sidecar"):
    """What a correct and safe mesh install must say, for the plain manifests and every
    rendered chart alike. Returns the companion environment and the filter configuration."""
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    # The Hazelcast chart's own Services (hazelcast.enabled) are not the companion's.
    by_kind["Service"] = [s for s in by_kind.get("Service", []) if s["spec"].get("selector", {}).get("app", "").endswith("companion")]
    for kind in ("Deployment", "Service", "WasmPlugin", "PodDisruptionBudget", "AuthorizationPolicy",
                 "PeerAuthentication"):
        check(len(by_kind.get(kind, [])) == 1, f"{where}: expected one {kind}, got {len(by_kind.get(kind, []))}")
        if not by_kind.get(kind):
            return {}, {}
    dep, svc, wp = by_kind["Deployment"][0], by_kind["Service"][0], by_kind["WasmPlugin"][0]
    pdb, authz = by_kind["PodDisruptionBudget"][0], by_kind["AuthorizationPolicy"][0]
    pod = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    container = pod["containers"][0]
    restricted_pss(f"{where}: companion", pod)
    check(pod.get("automountServiceAccountToken") is False, f"{where}: the companion needs no API token")
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]
            if "secretKeyRef" in e.get("valueFrom", {})}
    check("HZCACHE_CALLOUT_SECRET" in refs, f"{where}: the callout secret must come from a Secret")
    check(refs.get("HZCACHE_ADMIN_TOKEN", {}).get("optional") is True,
          f"{where}: the admin token must come from a Secret, optional")
    for name in refs:
        env[name] = SECRET_STAND_IN
    probes = {p: container.get(p, {}).get("httpGet", {}).get("path") for p in
              ("startupProbe", "readinessProbe", "livenessProbe")}
    check(probes == {"startupProbe": "/healthz", "readinessProbe": "/readyz", "livenessProbe": "/healthz"},
          f"{where}: probes must be startup /healthz, readiness /readyz, liveness /healthz (got {probes})")
    res = container.get("resources", {})
    check(res.get("requests", {}).get("memory") and res.get("limits", {}).get("memory"),
          f"{where}: the companion needs memory requests and limits")
    # Service -> container port -> the port the companion listens on.
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    sport = svc["spec"]["ports"][0]
    target = sport["targetPort"]
    target = ports.get(target, target)
    check(env.get("HZCACHE_LISTEN", "").endswith(f":{target}"), f"{where}: the Service targets another port than the companion listens on")
    check(sport["name"].startswith("http"), f"{where}: the Service port must be named http* for Istio")
    check(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()), f"{where}: the Service selects no companion pod")
    check(pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"],
          f"{where}: the PodDisruptionBudget does not select the companion")
    check(dep["spec"]["replicas"] > pdb["spec"].get("minAvailable", 0), f"{where}: minAvailable blocks every drain")
    check(by_kind["PeerAuthentication"][0]["spec"]["mtls"]["mode"] == "STRICT", f"{where}: the companion must require mTLS")

    # AuthorizationPolicy: ALLOW, only named principals, /v1/* and /healthz for callers and
    # /admin/* for operators, never both in one rule, nothing open to everyone.
    check(authz["spec"].get("action", "ALLOW") == "ALLOW", f"{where}: AuthorizationPolicy must be ALLOW")
    check(all(labels.get(k) == v for k, v in authz["spec"]["selector"]["matchLabels"].items()),
          f"{where}: the AuthorizationPolicy does not select the companion")
    saw_callers = saw_admin = False
    for rule in authz["spec"]["rules"]:
        sources = [f["source"] for f in rule.get("from", [])]
        check(sources and all(set(s) == {"principals"} and s["principals"] for s in sources),
              f"{where}: every AuthorizationPolicy rule must name principals")
        paths = {p for t in rule.get("to", []) for p in t["operation"].get("paths", ["*"])}
        admin = {p for p in paths if p.startswith("/admin")}
        check(not (admin and paths - admin), f"{where}: a rule mixes /admin with other paths")
        check(paths <= {"/v1/fetch", "/v1/invalidate", "/healthz", "/admin/*"}, f"{where}: unexpected paths {paths}")
        saw_admin |= bool(admin)
        saw_callers |= "/v1/fetch" in paths
    check(saw_callers and saw_admin, f"{where}: the AuthorizationPolicy must allow callers /v1/* and operators /admin/*")

    # The WasmPlugin: after authorisation, inbound only (sidecar), pinned, secret from HOST.
    spec = wp["spec"]
    plugin = spec["pluginConfig"]
    check(spec.get("phase") == "STATS", f"{where}: WasmPlugin phase must be STATS (after AuthorizationPolicy)")
    if placement == "sidecar":
        check(spec.get("match") and all(m.get("mode") == "SERVER" for m in spec["match"]),
              f"{where}: a sidecar WasmPlugin must match mode SERVER only")
    else:
        check(all(m.get("mode") != "SERVER" for m in spec.get("match", [])), f"{where}: mode SERVER selects nothing on a gateway")
    check(bool(DIGEST.match(spec.get("url", ""))) or (spec.get("url", "").startswith(("file://", "https://")) and spec.get("sha256")),
          f"{where}: the filter image must be pinned by digest")
    check(spec.get("failStrategy") in ("FAIL_RELOAD", "FAIL_OPEN"), f"{where}: failStrategy must not fail closed")
    secret_env = plugin["companion"].get("secret_env", "HZCACHE_CALLOUT_SECRET")
    vm_env = {e["name"]: e for e in spec.get("vmConfig", {}).get("env", [])}
    check(vm_env.get(secret_env, {}).get("valueFrom") == "HOST", f"{where}: the callout secret must come from the proxy's environment (valueFrom: HOST)")
    check("value" not in vm_env.get(secret_env, {}), f"{where}: the callout secret must not be written into the WasmPlugin")
    fqdn = f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc.cluster.local"
    check(plugin["companion"]["cluster"] == f"outbound|{sport['port']}||{fqdn}", f"{where}: filter callout cluster does not name the companion Service")
    check(plugin["companion"]["authority"] == fqdn, f"{where}: filter authority is not the companion Service host")
    origins = dict(o.split("=", 1) for o in env.get("HZCACHE_ORIGINS", "").split(",") if o)
    for rule in plugin.get("rules", []):
        check(rule.get("origin", "default") in origins, f"{where}: rule {rule.get('name')} names an origin the companion lacks")
    for url in origins.values():
        check(re.match(r"^https?://[a-z0-9-]+\.[a-z0-9-]+\.svc\.cluster\.local(:\d+)?$", url),
              f"{where}: origin {url} is not a mesh service name (SERVICE.NAMESPACE.svc.cluster.local)")
    return env, plugin


if len(sys.argv) > 1 and sys.argv[1] == "--mesh":
    # Rendered chart output: tests/tests/manifests_check.rs.
    placement, files = sys.argv[2], sys.argv[3:]
    env, plugin = mesh_checks(f"rendered {placement}", load_docs(files), placement)
    json.dump({"companion_env": env, "filter_config": json.dumps(plugin), "problems": problems}, sys.stdout)
    sys.exit(0)

istio_env, plugin = mesh_checks("deploy/istio", load_docs(sorted((ROOT / "deploy/istio").glob("*.yaml"))))
check(load_docs([ROOT / "deploy/istio/wasmplugin.yaml"])[0]["spec"].get("failStrategy") == "FAIL_RELOAD",
      "istio: failStrategy must be FAIL_RELOAD")
gateway = load_docs([ROOT / "deploy/istio/alternatives/gateway-wasmplugin.yaml"])
check(len(gateway) == 1 and gateway[0]["kind"] == "WasmPlugin", "istio: the gateway alternative is one WasmPlugin")
gw = gateway[0]["spec"]
check(gw.get("phase") == "STATS" and "match" not in gw and gw["selector"]["matchLabels"] == {"istio": "ingressgateway"},
      "istio: the gateway WasmPlugin must be phase STATS on the ingress gateway, without match")
check(gw["pluginConfig"]["companion"] == plugin.get("companion"), "istio: the two placements must call the same companion")
for path in ("envoy/envoy.yaml.tmpl", "envoy/compose/envoy.yaml"):
    policies = re.findall(r"^\s*failure_policy:\s*(\S+)", (ROOT / path).read_text(), re.M)
    check(policies == ["FAIL_RELOAD"], f"{path}: failure_policy must be FAIL_RELOAD (got {policies})")

json.dump({
    "companion_env": env,
    "istio_companion_env": istio_env,
    "istio_filter_config": json.dumps(plugin),
    "problems": problems,
}, sys.stdout)
