"""The edges that touch the world: Kubernetes API, node access (SSH or local), CRI over gRPC, journal."""
