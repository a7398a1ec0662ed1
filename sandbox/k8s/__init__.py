"""The Kubernetes API test server (see docs/sandbox-kubernetes.md)."""

from .server import DEFAULT_BAD_IMAGE_PATTERN, DEFAULT_CRASH_IMAGE_PATTERN, KubeServer

__all__ = ["DEFAULT_BAD_IMAGE_PATTERN", "DEFAULT_CRASH_IMAGE_PATTERN", "KubeServer"]
