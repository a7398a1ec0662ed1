"""The Kubernetes API test server: ``from sandbox.k8s_server import KubeServer``.

The implementation lives in the ``sandbox.k8s`` package (store, patches, controllers, HTTP front);
docs/sandbox-kubernetes.md says what it serves and where it differs from a real apiserver.
"""

from sandbox.k8s import DEFAULT_BAD_IMAGE_PATTERN, DEFAULT_CRASH_IMAGE_PATTERN, KubeServer

__all__ = ["DEFAULT_BAD_IMAGE_PATTERN", "DEFAULT_CRASH_IMAGE_PATTERN", "KubeServer"]
