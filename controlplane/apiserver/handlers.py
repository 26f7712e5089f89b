"""Resource requests: get, list, create, update, patch, delete, deletecollection and the
status, scale, binding and eviction subresources. HTTP in, Objects calls, HTTP out."""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from api import errors
from api.resources import Resource
from api.selectors import FieldSelector, LabelSelector, Operator
from controlplane import store as st
from controlplane.apiserver import admission, bodies, fields, kinds, respond, schema, storage
from controlplane.apiserver.cache import INDEXED_FIELDS, Entry, make_entry
from controlplane.apiserver.httpd import Answer, Request, Response
from controlplane.apiserver.objects import DeleteOptions, Objects
from controlplane.apiserver.routes import Target

Obj = dict[str, Any]

# How long a list or watch waits for the cache to reach a resourceVersion from the future
# before answering 504, as Kubernetes does ("Too large resource version").
_FUTURE_WAIT = 3.0
# Integers from clients end up in the store and in JSON, both 64-bit: larger is a 400.
MAX_INT64 = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Selection:
    """What a list or watch asks for: namespace, name, selectors."""

    resource: Resource
    namespace: str | None
    labels: LabelSelector | None
    fields: FieldSelector | None
    # The field requirements as (field, value, equal?) triples: matching is on the hot
    # path of every watch, once per change.
    terms: tuple[tuple[str, str, bool], ...] = ()

    def __post_init__(self) -> None:
        if self.fields is not None:
            terms = tuple(
                (r.field, r.value, r.operator is Operator.EQUALS) for r in self.fields.requirements
            )
            object.__setattr__(self, "terms", terms)

    def matches(self, entry: Entry) -> bool:
        if self.namespace is not None and entry.namespace != self.namespace:
            return False
        fields = entry.fields
        for field, value, equal in self.terms:
            if ((fields.get(field) or "") == value) is not equal:
                return False
        return self.labels is None or self.labels.matches(entry.labels)

    @property
    def index(self) -> tuple[str, str] | None:
        """The indexed field this selection pins, if any (see cache.INDEXED_FIELDS)."""
        if self.fields is None:
            return None
        for field in INDEXED_FIELDS:
            value = self.fields.value_for(field)
            if value is not None:
                return field, value
        return None


def selection(target: Target, query: Mapping[str, str]) -> Selection:
    labels = None
    if query.get("labelSelector"):
        labels = LabelSelector.parse(query["labelSelector"])
    field_selector = None
    if query.get("fieldSelector"):
        field_selector = FieldSelector.parse(query["fieldSelector"])
        supported = fields.selectable(
            target.resource.group, target.resource.kind, {},
            namespaced=target.resource.namespaced,
        )  # fmt: skip
        for name in sorted(field_selector.fields()):
            if name not in supported:
                raise errors.BadRequest(
                    f"field label not supported: {name} (supported: {', '.join(sorted(supported))})"
                )
    if target.name is not None:  # /pods/<name>?watch=1 style is the same as metadata.name=
        extra = FieldSelector.parse(f"metadata.name={target.name}")
        field_selector = (
            extra
            if field_selector is None
            else FieldSelector.parse(f"{field_selector},metadata.name={target.name}")
        )
    return Selection(target.resource, target.namespace, labels, field_selector)


def int_param(query: Mapping[str, str], name: str, *, minimum: int = 0) -> int | None:
    value = query.get(name)
    if value in (None, ""):
        return None
    try:
        number = int(str(value))
    except ValueError:
        raise errors.BadRequest(f'{name} must be an integer (got "{value}")') from None
    if number < minimum:
        raise errors.BadRequest(f"{name} must be at least {minimum} (got {number})")
    if number > MAX_INT64:
        raise errors.BadRequest(f"{name} must be at most {MAX_INT64} (got {number})")
    return number


def dry_run(query: Mapping[str, str]) -> bool:
    value = query.get("dryRun")
    if value in (None, ""):
        return False
    if value != "All":
        raise errors.BadRequest(f'dryRun must be "All" (got "{value}")')
    return True


# --- reads ------------------------------------------------------------------------------


async def get(request: Request, objects: Objects, target: Target) -> Response:
    assert target.name is not None
    entry = objects.get(target.resource, target.namespace, target.name)
    if respond.wants_table(request.headers.get("Accept", "")):
        body = respond.table(
            target.resource, [entry.obj()], revision=entry.revision,
            include=respond.include_object(request.query),
        )  # fmt: skip
        return respond.json(body)
    return respond.raw(entry.raw)


async def list_(request: Request, objects: Objects, target: Target) -> Answer:
    query = request.query
    sel = selection(target, query)
    limit = int_param(query, "limit")
    token = query.get("continue") or None
    rv = query.get("resourceVersion") or None
    cache = objects.cache
    if token is not None:
        revision, start = _decode_continue(token)
        entries, revision, next_token = await _page_from_store(objects, sel, revision, start, limit)
    elif rv not in (None, "0") and query.get("resourceVersionMatch") == "Exact":
        assert rv is not None
        revision = parse_rv(rv)
        entries, revision, next_token = await _page_from_store(objects, sel, revision, b"", limit)
    else:
        if rv not in (None, "0"):
            assert rv is not None
            wanted = parse_rv(rv)
            if not await cache.wait_for(wanted, _FUTURE_WAIT):
                raise errors.Timeout(
                    f"Too large resource version: {wanted}, current: {cache.revision}",
                    retry_after=1,
                )
        # No await between these two lines: the snapshot is exactly at `revision`.
        revision = cache.revision
        entries = await _matching(cache.resource(sel.resource).snapshot(sel.namespace), sel)
        next_token = None
        if limit and len(entries) > limit:
            entries = entries[:limit]
            next_token = _encode_continue(revision, entries[-1].key)
    if respond.wants_table(request.headers.get("Accept", "")):
        body = respond.table(
            sel.resource, [e.obj() for e in entries], revision=revision,
            include=respond.include_object(query), continue_token=next_token,
        )  # fmt: skip
        return respond.json(body)
    return await respond.large(
        request, respond.list_parts(sel.resource, entries, revision, next_token)
    )


MATCH_SLICE = 500  # entries a list filters between two turns of the event loop


async def _matching(snapshot: list[Entry], sel: Selection) -> list[Entry]:
    """The entries of ``snapshot`` that ``sel`` selects, a slice at a time: filtering
    thousands of pods by label at once held every other request for tens of
    milliseconds (the p99 of gets in bench/api.py). The entries are immutable, so the
    list is still exactly the snapshot's."""
    found: list[Entry] = []
    for start in range(0, len(snapshot), MATCH_SLICE):
        if start:
            await asyncio.sleep(0)
        found += [e for e in snapshot[start : start + MATCH_SLICE] if sel.matches(e)]
    return found


def parse_rv(value: str) -> int:
    try:
        revision = int(value)
    except ValueError:
        raise errors.BadRequest(f'invalid resourceVersion "{value}"') from None
    if not 0 <= revision <= MAX_INT64:
        raise errors.BadRequest(f'invalid resourceVersion "{value}"')
    return revision


def _encode_continue(revision: int, last_key: str) -> str:
    body = orjson.dumps({"rv": revision, "start": last_key + "\x00"})
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, bytes]:
    try:
        body = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        revision, start = int(body["rv"]), str(body["start"])
        if not 0 <= revision <= MAX_INT64:
            raise ValueError(revision)
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise errors.BadRequest("invalid continue token; start the list again") from None
    return revision, start.encode()


async def _page_from_store(
    objects: Objects, sel: Selection, revision: int, start: bytes, limit: int | None
) -> tuple[list[Entry], int, str | None]:
    """A page at a past revision, read from the store (continuations, Exact lists)."""
    prefix = storage.prefix(sel.resource, sel.namespace)
    if start and not start.startswith(prefix.encode()):
        raise errors.BadRequest("the continue token does not belong to this list")
    entries: list[Entry] = []
    cursor = start or prefix.encode()
    while True:
        token = _store_token(revision, cursor)
        try:
            page = await objects.store.list(prefix, limit=500, continue_token=token)
        except st.Expired as e:
            raise errors.Expired(
                "The provided continue parameter is too old to display a consistent list "
                "result. You can start a new list without the continue parameter."
            ) from e
        except st.StoreError as e:
            raise storage.translate(e, sel.resource) from e
        for kv in page.items:
            entry = make_entry(sel.resource, kv.key, kv.value, kv.mod_revision)
            if sel.matches(entry):
                entries.append(entry)
                if limit and len(entries) > limit:
                    entries = entries[:limit]
                    return entries, revision, _encode_continue(revision, entries[-1].key)
        if page.continue_token is None:
            return entries, revision, None
        cursor = page.items[-1].key.encode() + b"\x00"


def _store_token(revision: int, start: bytes) -> str:
    from controlplane.store import continuation

    return continuation.encode(revision, start)


# --- writes -----------------------------------------------------------------------------


async def read_object(request: Request) -> Obj:
    return bodies.parse_object(request.body, request.headers.get("Content-Type"))


def _with_warnings(response: Response, warnings: list[str]) -> Response:
    for warning in warnings:
        response.add_header("Warning", warning)
    return response


def _raw_json(request: Request, body: bytes) -> bytes | None:
    """The body for duplicate-key checks, when it is JSON."""
    media = bodies.media_type(request.headers.get("Content-Type"))
    return body if media == bodies.JSON else None


async def create(request: Request, objects: Objects, target: Target) -> Response:
    body = request.body
    obj = bodies.parse_object(body, request.headers.get("Content-Type"))
    check = schema.field_validation(request.query.get("fieldValidation"), verb="create")
    warnings = check.check(target.resource, obj, raw=_raw_json(request, body))
    created = await objects.create(
        target.resource, target.namespace, obj, dry_run=dry_run(request.query)
    )
    return _with_warnings(respond.json(created, status=201), warnings)


async def update(request: Request, objects: Objects, target: Target) -> Response:
    assert target.name is not None
    body = request.body
    obj = bodies.parse_object(body, request.headers.get("Content-Type"))
    check = schema.field_validation(request.query.get("fieldValidation"), verb="update")
    if target.subresource == "scale":
        warnings = check.check(
            target.resource, obj, raw=_raw_json(request, body),
            body_kind=("autoscaling/v1", "Scale"),
        )  # fmt: skip
        response = await _update_scale(objects, target, obj, dry=dry_run(request.query))
        return _with_warnings(response, warnings)
    warnings = check.check(target.resource, obj, raw=_raw_json(request, body))
    updated = await objects.update(
        target.resource, target.namespace, target.name, obj,
        subresource=target.subresource, dry_run=dry_run(request.query),
    )  # fmt: skip
    return _with_warnings(respond.json(updated), warnings)


def delete_options(
    body: bytes, query: Mapping[str, str], content_type: str | None
) -> DeleteOptions:
    options: Obj = {}
    if body.strip():
        if bodies.media_type(content_type) == bodies.PROTOBUF:
            from controlplane.apiserver import protobuf

            options = protobuf.decode(body)
        else:
            parsed = bodies.parse_json(body)
            if not isinstance(parsed, dict):
                raise errors.BadRequest("DeleteOptions must be an object")
            options = parsed
    grace = options.get("gracePeriodSeconds")
    if "gracePeriodSeconds" in query:
        grace = int_param(query, "gracePeriodSeconds")
    if grace is not None and (
        not isinstance(grace, int) or isinstance(grace, bool) or not 0 <= grace <= MAX_INT64
    ):
        raise errors.BadRequest(f"gracePeriodSeconds must be an integer from 0 to {MAX_INT64}")
    policy = query.get("propagationPolicy") or options.get("propagationPolicy")
    if query.get("orphanDependents") == "true" or options.get("orphanDependents") is True:
        policy = "Orphan"
    if policy not in (None, "Background", "Foreground", "Orphan"):
        raise errors.BadRequest(
            f'propagationPolicy must be Background, Foreground or Orphan (got "{policy}")'
        )
    preconditions = options.get("preconditions") or {}
    dry = dry_run(query) or options.get("dryRun") == ["All"]
    return DeleteOptions(
        grace_period_seconds=grace,
        propagation_policy=policy,
        precondition_uid=preconditions.get("uid") if isinstance(preconditions, dict) else None,
        precondition_resource_version=(
            preconditions.get("resourceVersion") if isinstance(preconditions, dict) else None
        ),
        dry_run=dry,
    )


def _defaulted(resource: Resource, options: DeleteOptions) -> tuple[DeleteOptions, list[str]]:
    """The resource's own default propagation when the request names none (batch/v1 Jobs
    orphan their pods), with the warning Kubernetes answers it with."""
    default = kinds.default_propagation(resource)
    if options.propagation_policy is not None or default is None:
        return options, []
    policy, warning = default
    return dataclasses.replace(options, propagation_policy=policy), [schema.warning_header(warning)]


async def delete(request: Request, objects: Objects, target: Target) -> Response:
    assert target.name is not None
    options, warnings = _defaulted(
        target.resource,
        delete_options(request.body, request.query, request.headers.get("Content-Type")),
    )
    obj, _ = await objects.delete(target.resource, target.namespace, target.name, options)
    return _with_warnings(respond.json(obj), warnings)


async def delete_collection(request: Request, objects: Objects, target: Target) -> Response:
    options, warnings = _defaulted(
        target.resource,
        delete_options(request.body, request.query, request.headers.get("Content-Type")),
    )
    sel = selection(target, request.query)
    cache = objects.cache
    victims = [e for e in cache.resource(sel.resource).snapshot(sel.namespace) if sel.matches(e)]
    deleted: list[Entry] = []
    for entry in victims:
        try:
            await objects.delete(sel.resource, entry.namespace or None, entry.name, options)
        except errors.NotFound:
            continue  # deleted meanwhile: that is what was asked
        deleted.append(entry)
    return _with_warnings(
        respond.raw(respond.list_body(sel.resource, deleted, cache.revision, None)), warnings
    )


# --- scale --------------------------------------------------------------------------------


def scale_of(obj: Obj) -> Obj:
    """The autoscaling/v1 Scale view of a Deployment or ReplicaSet."""
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    # the selector as a string query, as Kubernetes writes it for an autoscaler:
    # matchLabels and matchExpressions, sorted by key ("app=web,tier in (a,b)")
    selector = str(LabelSelector.from_object(spec.get("selector") or {}))
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {"replicas": status.get("replicas", 0), "selector": selector},
    }


async def get_scale(objects: Objects, target: Target) -> Response:
    assert target.name is not None
    return respond.json(scale_of(objects.get(target.resource, target.namespace, target.name).obj()))


async def _update_scale(objects: Objects, target: Target, scale: Obj, *, dry: bool) -> Response:
    assert target.name is not None
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise errors.invalid(
            "Scale", target.name,
            [errors.Cause("spec.replicas", "FieldValueInvalid",
                          f"Invalid value: {replicas!r}: must be greater than or equal to 0")],
            group="autoscaling",
        )  # fmt: skip
    pinned = (scale.get("metadata") or {}).get("resourceVersion") or None

    def mutate(obj: Obj) -> Obj:
        obj.setdefault("spec", {})["replicas"] = replicas
        return obj

    updated = await objects.guaranteed_update(
        target.resource, target.namespace, target.name, mutate,
        pinned=parse_rv(pinned) if pinned else None, dry_run=dry,
    )  # fmt: skip
    return respond.json(scale_of(updated))


# --- binding and eviction -------------------------------------------------------------------


async def bind(request: Request, objects: Objects, target: Target) -> Response:
    """POST pods/<name>/binding: the scheduler's decision, applied once."""
    assert target.name is not None
    binding = await read_object(request)
    node = (binding.get("target") or {}).get("name")
    if not isinstance(node, str) or not node:
        raise errors.invalid(
            "Binding", target.name,
            [errors.Cause("target.name", "FieldValueRequired", "Required value")],
        )  # fmt: skip
    name = target.name

    def mutate(pod: Obj) -> Obj:
        spec = pod.setdefault("spec", {})
        if spec.get("nodeName"):
            raise errors.Conflict(
                f'Operation cannot be fulfilled on pods/binding "{name}": pod {name} is '
                f"already assigned to node \"{spec['nodeName']}\"",
                name=name, kind="pods",
            )  # fmt: skip
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.Conflict(f'pod "{name}" is being deleted, cannot be assigned to a host')
        spec["nodeName"] = node
        status = pod.setdefault("status", {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conditions.append(
            {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
             "lastTransitionTime": _now(objects)}
        )  # fmt: skip
        status["conditions"] = conditions
        return pod

    await objects.guaranteed_update(
        target.resource, target.namespace, name, mutate, dry_run=dry_run(request.query),
        admit=False,
    )  # fmt: skip
    return respond.json(respond.success_status(target.resource, name), status=201)


async def evict(request: Request, objects: Objects, target: Target) -> Response:
    """POST pods/<name>/eviction: a graceful delete (no PodDisruptionBudgets yet)."""
    assert target.name is not None
    eviction = await read_object(request)
    raw_options = eviction.get("deleteOptions") or {}
    options = delete_options(orjson.dumps(raw_options), request.query, bodies.JSON)
    await objects.delete(target.resource, target.namespace, target.name, options)
    return respond.json(respond.success_status(target.resource, target.name), status=201)


async def finalize(request: Request, objects: Objects, target: Target) -> Response:
    """PUT namespaces/<name>/finalize: replace ``spec.finalizers`` and nothing else (how
    a stuck namespace is let go); a terminating namespace without any leaves."""
    assert target.name is not None
    body = await read_object(request)
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    finalizers = spec.get("finalizers") or []
    if not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers):
        raise errors.invalid(
            "Namespace", target.name,
            [errors.Cause("spec.finalizers", "FieldValueInvalid",
                          "Invalid value: must be a list of strings")],
        )  # fmt: skip
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    pinned = meta.get("resourceVersion") or None

    def mutate(namespace: Obj) -> Obj:
        from controlplane.apiserver import admission

        old = copy.deepcopy(namespace)
        namespace_spec = namespace.setdefault("spec", {})
        namespace_spec["finalizers"] = list(finalizers)
        if not finalizers:
            del namespace_spec["finalizers"]
        # Validated, not admitted: an update of the namespace itself keeps the old
        # finalizers, and changing them is the one thing this subresource does.
        admission.validate(target.resource, namespace, old)
        return namespace

    updated = await objects.guaranteed_update(
        target.resource, None, target.name, mutate, admit=False,
        pinned=parse_rv(str(pinned)) if pinned else None, dry_run=dry_run(request.query),
    )  # fmt: skip
    return respond.json(updated)


def _now(objects: Objects) -> str:
    return admission.timestamp(objects.clock())


# --- patch ----------------------------------------------------------------------------------


async def patch(request: Request, objects: Objects, target: Target) -> Response:
    """PATCH in any of the four Kubernetes patch types; server-side apply creates the
    object when it does not exist."""
    from api import patch as patches

    assert target.name is not None
    content_type = bodies.media_type(request.headers.get("Content-Type"))
    body = request.body
    dry = dry_run(request.query)
    resource, name = target.resource, target.name
    kind = (resource.group, resource.kind)
    check = schema.field_validation(request.query.get("fieldValidation"), verb="patch")
    warnings: list[str] = []
    if target.subresource == "scale":
        current = scale_of(objects.get(resource, target.namespace, name).obj())
        patched = patches.apply(content_type, current, body, kind=("autoscaling", "Scale"))
        return await _update_scale(objects, target, patched, dry=dry)
    if content_type == patches.APPLY_PATCH and target.subresource is None:
        existing = objects.cache.resource(resource).objects.get(
            storage.key(resource, target.namespace, name)
        )
        if existing is None:
            obj = patches.apply(content_type, None, body, kind=kind)
            meta = obj.setdefault("metadata", {})
            if meta.get("name") not in (None, name):
                raise errors.BadRequest(
                    f"the name of the object ({meta.get('name')}) does not match the name on "
                    f"the URL ({name})"
                )
            meta["name"] = name
            warnings = check.check(resource, obj)
            created = await objects.create(resource, target.namespace, obj, dry_run=dry)
            return _with_warnings(respond.json(created, status=201), warnings)

    def mutate(current: Obj) -> Obj:
        revision = current["metadata"].get("resourceVersion")
        patched = patches.apply(content_type, current, body, kind=kind)
        if not isinstance(patched, dict):
            raise errors.BadRequest("the patch did not produce an object")
        wanted = (patched.get("metadata") or {}).get("resourceVersion")
        if wanted not in (None, revision):
            # A patch that names a resourceVersion is a precondition on it.
            raise storage.translate(
                st.Conflict(name, expected=0, current=st.KeyValue(name, b"", 0, 0)),
                resource, name,
            )  # fmt: skip
        warnings[:] = check.check(resource, patched)
        return patched

    updated = await objects.guaranteed_update(
        resource, target.namespace, name, mutate, subresource=target.subresource, dry_run=dry
    )
    return _with_warnings(respond.json(updated), warnings)
