"""lvss gRPC server (``lvss serve``): imports lvss, never the other way round.

Installed as the package ``lvss_server`` (the folder in the source tree is ``server/``; a top-level
package called ``server`` would collide with other projects'), so its modules refer to each other
relatively. Modules: ``service`` (servicer, job queue, worker), ``app`` (server assembly, call gate,
auth, TLS, signals), ``cli`` (command line).
"""
