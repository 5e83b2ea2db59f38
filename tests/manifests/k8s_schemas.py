"""Writes kubeconform's JSON schemas, offline, from two Go modules already in the module cache:

  - the Kubernetes OpenAPI v3 documents shipped in k8s.io/kubernetes (api/openapi-spec/v3), and
  - Istio's CRDs in istio.io/api (kubernetes/customresourcedefinitions.gen.yaml).

Layout (kubeconform's `-schema-location DIR/{{.NormalizedKubernetesVersion}}-standalone{{.StrictSuffix}}/{{.ResourceKind}}{{.KindSuffix}}.json`):

  OUT/v<K8S>-standalone-strict/deployment-apps-v1.json
  OUT/v<K8S>-standalone-strict/wasmplugin-extensions-v1alpha1.json

Every schema is standalone (its references are copied under `definitions`) and strict: an object
schema that lists `properties` and says nothing of `additionalProperties` gets
`additionalProperties: false`, so an unknown or misspelt field is an error, as the API server's
field validation would make it. Fields Kubernetes marks `x-kubernetes-preserve-unknown-fields`
(a WasmPlugin's `pluginConfig`) stay open. CEL rules (`x-kubernetes-validations`) are not
checked: kubeconform has no CEL.

usage: k8s_schemas.py K8S_MODULE_DIR ISTIO_API_MODULE_DIR K8S_VERSION OUT_DIR
"""

import json
import pathlib
import sys

import yaml

# The API groups the manifests and chart may use; the others are left out to keep the cache small.
K8S_DOCS = [
    "api__v1_openapi.json",
    "apis__apps__v1_openapi.json",
    "apis__policy__v1_openapi.json",
    "apis__networking.k8s.io__v1_openapi.json",
    "apis__rbac.authorization.k8s.io__v1_openapi.json",
    "apis__autoscaling__v2_openapi.json",
    "apis__batch__v1_openapi.json",
]


def strict(node):
    """additionalProperties: false on every closed object schema, recursively."""
    if isinstance(node, list):
        for n in node:
            strict(n)
        return
    if not isinstance(node, dict):
        return
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return
    if "properties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False
    for k, v in node.items():
        if k != "enum":
            strict(v)


def nullable(node):
    """OpenAPI `nullable: true` as JSON Schema (`null` allowed)."""
    if isinstance(node, list):
        for n in node:
            nullable(n)
        return
    if not isinstance(node, dict):
        return
    if node.get("nullable") is True and isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
    for k, v in node.items():
        if k != "enum":
            nullable(v)


def int_or_string(node):
    """CRDs say `x-kubernetes-int-or-string: true`; JSON Schema needs both types spelled out."""
    if isinstance(node, list):
        for n in node:
            int_or_string(n)
        return
    if not isinstance(node, dict):
        return
    if node.get("x-kubernetes-int-or-string"):
        node.pop("type", None)
        node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    for v in node.values():
        int_or_string(v)


def refs(node, out):
    if isinstance(node, dict):
        r = node.get("$ref")
        if isinstance(r, str):
            out.add(r.rsplit("/", 1)[1])
        for v in node.values():
            refs(v, out)
    elif isinstance(node, list):
        for v in node:
            refs(v, out)


def relink(node):
    if isinstance(node, dict):
        r = node.get("$ref")
        if isinstance(r, str) and r.startswith("#/components/schemas/"):
            node["$ref"] = "#/definitions/" + r[len("#/components/schemas/"):]
        for v in node.values():
            relink(v)
    elif isinstance(node, list):
        for v in node:
            relink(v)


def write(out_dir, kind, group, version, schema):
    suffix = "-" + group.split(".")[0].lower() + "-" + version.lower() if group else "-" + version.lower()
    path = out_dir / f"{kind.lower()}{suffix}.json"
    path.write_text(json.dumps(schema, sort_keys=True))
    return path


def kubernetes(mod, out_dir):
    count = 0
    for name in K8S_DOCS:
        doc = json.loads((mod / "api/openapi-spec/v3" / name).read_text())
        schemas = doc["components"]["schemas"]
        for sname, s in schemas.items():
            gvks = s.get("x-kubernetes-group-version-kind") or []
            # A kind's own document (not the List, not the meta types every group repeats).
            if len(gvks) != 1 or sname.startswith("io.k8s.apimachinery."):
                continue
            gvk = gvks[0]
            if gvk["kind"].endswith("List"):
                continue
            seen, todo = set(), {sname}
            while todo:
                n = todo.pop()
                seen.add(n)
                found = set()
                refs(schemas[n], found)
                todo |= found - seen
            seen.discard(sname)
            root = json.loads(json.dumps(s))
            root["definitions"] = {n: json.loads(json.dumps(schemas[n])) for n in sorted(seen)}
            relink(root)
            # The kind and apiVersion a file is for, so a schema is never used for another.
            api_version = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            root["properties"]["apiVersion"] = {"type": "string", "enum": [api_version]}
            root["properties"]["kind"] = {"type": "string", "enum": [gvk["kind"]]}
            root["required"] = sorted(set(root.get("required", [])) | {"apiVersion", "kind"})
            nullable(root)
            strict(root)
            write(out_dir, gvk["kind"], gvk["group"], gvk["version"], root)
            count += 1
    return count


def istio(mod, out_dir):
    count = 0
    crds = yaml.safe_load_all((mod / "kubernetes/customresourcedefinitions.gen.yaml").read_text())
    for crd in crds:
        if not crd:
            continue
        spec = crd["spec"]
        kind, group = spec["names"]["kind"], spec["group"]
        for v in spec["versions"]:
            schema = json.loads(json.dumps(v["schema"]["openAPIV3Schema"]))
            props = schema.setdefault("properties", {})
            props["apiVersion"] = {"type": "string", "enum": [f"{group}/{v['name']}"]}
            props["kind"] = {"type": "string", "enum": [kind]}
            # The CRD leaves metadata to the API server: the core ObjectMeta fields, closed.
            props["metadata"] = {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "namespace": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                    "generateName": {"type": "string"},
                },
            }
            schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind"})
            int_or_string(schema)
            nullable(schema)
            strict(schema)
            write(out_dir, kind, group, v["name"], schema)
            count += 1
    return count


def main():
    k8s_mod, istio_mod, version, out = sys.argv[1:5]
    out_dir = pathlib.Path(out) / f"v{version}-standalone-strict"
    out_dir.mkdir(parents=True, exist_ok=True)
    n = kubernetes(pathlib.Path(k8s_mod), out_dir)
    m = istio(pathlib.Path(istio_mod), out_dir)
    print(f"k8s_schemas: {n} Kubernetes and {m} Istio schemas in {out_dir}")


if __name__ == "__main__":
    main()
