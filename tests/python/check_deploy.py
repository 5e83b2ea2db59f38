"""Static checks of the container and mesh manifests, which cannot run here (no Docker, no
Kubernetes): they must agree with the local demo and with what the real filter and companion
accept. Prints one JSON object for tests/tests/deploy_check.rs:

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
compose = yaml.safe_load((compose_dir / "docker-compose.yaml").read_text())
services = compose.get("services", {})
for name in ("hazelcast", "backend", "companion", "envoy"):
    check(name in services, f"compose: service {name} missing")

versions = dict(re.findall(r"^(\w+)=(\S+)$", (ROOT / "scripts/versions.sh").read_text(), re.M))
check(services["hazelcast"]["image"] == f"hazelcast/hazelcast:{versions['HAZELCAST_VERSION']}",
      "compose: Hazelcast image tag differs from scripts/versions.sh")

# Every bind-mounted file exists.
for name, svc in services.items():
    for vol in svc.get("volumes", []):
        src = vol.split(":")[0]
        check((compose_dir / src).resolve().exists(), f"compose: {name} mounts missing {src}")

# The member config the compose demo mounts.
hz = yaml.safe_load((compose_dir / "hazelcast.yaml").read_text())["hazelcast"]
hz_port = hz["network"]["port"]["port"]
check(hz["cluster-name"] == "dev", "compose: Hazelcast cluster name must be dev (official client default)")
check(hz["properties"].get("hazelcast.phone.home.enabled") == "false", "compose: phone-home must be off")
check(hz["network"]["join"]["multicast"]["enabled"] is False, "compose: multicast must be off")
check(hz["network"]["join"]["auto-detection"]["enabled"] is False, "compose: auto-detection must be off")

env = {k: str(v) for k, v in services["companion"]["environment"].items()}


def env_file(service):
    """KEY=VALUE lines of a service's env_file (compose reads them into its environment)."""
    out = {}
    name = services[service].get("env_file")
    if name:
        for line in (compose_dir / name).read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                out[k] = v
    return out


env.update(env_file("companion"))
check("HZCACHE_CALLOUT_SECRET" in env, "compose: the companion has no callout secret")
check(env_file("envoy").get("HZCACHE_CALLOUT_SECRET") == env.get("HZCACHE_CALLOUT_SECRET"),
      "compose: Envoy and the companion must share the callout secret")
for name, service in services.items():
    for port in service.get("ports", []):
        check(str(port).startswith("127.0.0.1:"), f"compose: {name} publishes {port} beyond 127.0.0.1")
check(env.get("HZCACHE_HAZELCAST") == f"hazelcast:{hz_port}", "compose: companion must reach hazelcast:<member port>")
check(env.get("HZCACHE_CLUSTER_NAME") == hz["cluster-name"], "compose: cluster names differ")
backend_cmd = services["backend"]["command"]
backend_port = backend_cmd[2]
check(env.get("HZCACHE_ORIGINS") == f"default=http://backend:{backend_port}", "compose: companion origin is not the backend")

# The Envoy config baked into the envoy image points at these services and ports.
envoy = yaml.safe_load((compose_dir / "envoy.yaml").read_text())
clusters = {c["name"]: c for c in envoy["static_resources"]["clusters"]}


def endpoint(cluster):
    ep = clusters[cluster]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    sa = ep["address"]["socket_address"]
    return sa["address"], str(sa["port_value"])


companion_listen_port = env["HZCACHE_LISTEN"].rsplit(":", 1)[1]
check(endpoint("origin") == ("backend", backend_port), "compose envoy: origin cluster is not backend")
check(endpoint("hzcache_companion") == ("companion", companion_listen_port), "compose envoy: companion cluster is not companion")
listener_port = str(envoy["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"])
check(f"127.0.0.1:{listener_port}:{listener_port}" in services["envoy"]["ports"], "compose: Envoy listener port not published on 127.0.0.1")

# Istio manifests.
docs = [d for f in sorted((ROOT / "envoy/istio").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
kinds = {d["kind"]: d for d in docs}
for kind in ("Deployment", "Service", "WasmPlugin"):
    check(kind in kinds, f"istio: {kind} missing")
dep = kinds["Deployment"]
container = dep["spec"]["template"]["spec"]["containers"][0]
istio_env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
secret_refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
check("HZCACHE_CALLOUT_SECRET" in secret_refs, "istio: the callout secret must come from a Secret")
# What the Secret would hold, for the companion's --check-config below.
for name in secret_refs:
    istio_env[name] = "stand-in-for-the-kubernetes-secret"
svc = kinds["Service"]
plugin = kinds["WasmPlugin"]["spec"]["pluginConfig"]
fqdn = f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc.cluster.local"
svc_port = svc["spec"]["ports"][0]["port"]
check(plugin["companion"]["cluster"] == f"outbound|{svc_port}||{fqdn}", "istio: filter callout cluster does not name the companion Service")
check(plugin["companion"]["authority"] == fqdn, "istio: filter authority is not the companion Service host")
check(istio_env["HZCACHE_LISTEN"].endswith(f":{svc['spec']['ports'][0]['targetPort']}"), "istio: companion listens on another port than the Service targets")
probe_paths = {container["readinessProbe"]["httpGet"]["path"], container["livenessProbe"]["httpGet"]["path"]}
check(probe_paths == {"/readyz", "/healthz"}, "istio: probes must use /readyz and /healthz")
# A VM that traps is replaced (filter/README.md "When the VM fails"), in every shipped config.
check(kinds["WasmPlugin"]["spec"].get("failStrategy") == "FAIL_RELOAD", "istio: failStrategy must be FAIL_RELOAD")
for path in ("envoy/envoy.yaml.tmpl", "envoy/compose/envoy.yaml"):
    policies = re.findall(r"^\s*failure_policy:\s*(\S+)", (ROOT / path).read_text(), re.M)
    check(policies == ["FAIL_RELOAD"], f"{path}: failure_policy must be FAIL_RELOAD (got {policies})")

json.dump({
    "companion_env": env,
    "istio_companion_env": istio_env,
    "istio_filter_config": json.dumps(plugin),
    "problems": problems,
}, sys.stdout)
