"""The reading load process: in the steady window, GETs of single pods and LISTs of the
base pods (JSON, as an informer lists; not the Table kubectl asks for)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from bench.support import objects as o
from bench.support.load import Call, Plan, Role, paced

LIST_SELECTOR = f"bench-set={o.BASE}"
BASE_LABEL = f'"bench-set":"{o.BASE}"'.encode()  # once in each listed pod, as orjson writes it


class Reader(Role):
    def __init__(self, kubeconfig: Path) -> None:
        super().__init__(kubeconfig)
        self._random = random.Random(5)

    async def steady(self, plan: Plan) -> list[Call]:
        calls: list[Call] = []

        async def get(_: int) -> None:
            namespace, name = o.base_pod(self._random.randrange(plan.base_pods))
            await self.timed(calls, "get", "GET", o.pod_path(namespace, name))

        async def list_(_: int) -> None:
            # All namespaces, selected by label: exactly the base pods, while the pods
            # created during the window are in the store (and the cache) too.
            reply = await self.timed(
                calls, "list", "GET", o.PODS, params={"labelSelector": LIST_SELECTOR}
            )
            if reply is not None:
                # Counted in the bytes, not decoded: decoding megabytes on this loop would
                # delay the GETs it is timing meanwhile.
                items = reply.body.count(BASE_LABEL)
                if items != plan.base_pods:  # no await since timed() appended its Call
                    calls[-1] = Call("list", calls[-1].seconds, f"{items} items")

        await asyncio.gather(
            paced(plan.gets_per_s, plan.start, plan.end, get),
            paced(plan.lists_per_s, plan.start, plan.end, list_),
        )
        return calls
