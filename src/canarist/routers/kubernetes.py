"""The ``kubernetes`` provider: blue/green without a mesh (Flagger's NopRouter).

Traffic moves only through the primary rollout behind the apex Service; there are no routing objects and
no weights, matches, mirroring or session affinity (its capabilities say so, and a spec that asks for
them is refused). The engine tells the pre-rollout step from the analysis steps by ``status.iterations``;
`routes` is there for the Protocol and reports (100, 0) before the first iteration and (0, 100) after.
"""

from __future__ import annotations

from canarist.engine.model import RouterCapabilities, Routes
from canarist.kube.resources import ResourceKind
from canarist.routers.base import Obj, ObjectRef, ObservedRoutes, Reference, RouteContext


class KubernetesRouter:
    name = "kubernetes"
    kinds: tuple[ResourceKind, ...] = ()
    capabilities = RouterCapabilities(weights=False, matches=False, mirroring=False, session_affinity=False)
    settings: frozenset[str] = frozenset()

    def objects(self, ctx: RouteContext) -> list[ObjectRef]:
        return []

    def references(self, ctx: RouteContext) -> list[Reference]:
        return []

    def desired(self, ctx: RouteContext, routes: Routes) -> list[Obj]:
        return []

    def routes(self, ctx: RouteContext, observed: ObservedRoutes) -> Routes:
        if ctx.iterations > 0:
            return Routes(primary=0, canary=100)
        return Routes(primary=100, canary=0)

    def needs_update(self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj) -> bool:
        return False

    def merge(
        self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj, *, set_routes: bool = False
    ) -> Obj:
        return dict(observed_obj)

    def revert(self, ctx: RouteContext, observed: ObservedRoutes) -> list[Obj]:
        return []


KUBERNETES = KubernetesRouter()
