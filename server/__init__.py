"""lvss gRPC server (``lvss serve``): imports lvss, never the other way round.

Modules: :mod:`server.service` (servicer, job queue, worker), :mod:`server.app` (server assembly,
auth, TLS, signals), :mod:`server.cli` (command line).
"""
