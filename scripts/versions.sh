# Pinned versions of the real components, shared by setup, demo and tests.
ENVOY_VERSION=1.40.0
HZ_PYTHON_CLIENT_VERSION=5.7.0
HAZELCAST_VERSION=5.7.0
PYYAML_VERSION=6.0.4
