# Pinned versions of the real components, shared by setup, demo and tests.
ENVOY_VERSION=1.40.0
HZ_PYTHON_CLIENT_VERSION=5.7.0
HAZELCAST_VERSION=5.7.0
PYYAML_VERSION=6.0.4
# Offline validation of the Kubernetes manifests and the Helm chart (tests/manifests/setup_k8s.sh): the
# tools, the Istio API whose CRDs the WasmPlugin etc. are checked against, and the Kubernetes
# release whose OpenAPI documents give the core schemas.
KUBECONFORM_VERSION=v0.8.0
HELM_VERSION=v3.19.0
ISTIO_API_VERSION=v1.28.0
K8S_VERSION=1.34.2
