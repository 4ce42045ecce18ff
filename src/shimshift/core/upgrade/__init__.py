"""`shimshift upgrade` as data: the one-minor upgrade's decisions, by responsibility.

- binaries.py: the target release, the binaries of ``--binaries DIR`` and ``--install-command``;
- cluster.py: the cluster as the upgrade sees it (API server releases, roles, the version skew for one minor);
- plan.py: one node's sequence in its drain, forward and rollback (``NodeUpgradePlan``);
- render.py: what ``plan`` prints for it.

Nothing here runs anything: the commands are ``core.actions.Run`` values, performed by the one executor.
"""
