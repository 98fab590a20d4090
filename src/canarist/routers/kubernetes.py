"""The ``kubernetes`` provider: blue/green without a mesh (Flagger's NopRouter, inventory §4.13).

Traffic moves only through the primary rollout behind the apex Service; there are no routing objects.
GetRoutes reports (100, 0) until the first iteration and (0, 100) after, which moves the run from the
pre-rollout step to the analysis step (inventory §2.7).
"""

from __future__ import annotations

from canarist.engine.model import Routes
from canarist.routers.base import Obj, ObjectRef, ObservedRoutes, RouteContext


class KubernetesRouter:
    name = "kubernetes"

    def objects(self, ctx: RouteContext) -> list[ObjectRef]:
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
