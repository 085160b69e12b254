"""Every route of the central service, in one table (openapi.json documents each one)."""

from __future__ import annotations

from aiohttp import web

from monitord.central import exports, views

INCIDENT = r"/api/v1/incidents/{id:\d+}"


def setup_routes(app: web.Application) -> None:
    app.add_routes([
        web.post("/api/v1/events", views.post_events),
        web.get("/api/v1/incidents", views.list_incidents, allow_head=False),
        web.get(INCIDENT, views.get_incident, allow_head=False),
        web.post(f"{INCIDENT}/acknowledge", views.acknowledge),
        web.post(f"{INCIDENT}/resolve", views.resolve),
        web.post(f"{INCIDENT}/comment", views.comment),
        web.get("/api/v1/hosts", views.list_hosts, allow_head=False),
        web.get("/api/v1/fix-stats", exports.fix_stats, allow_head=False),
        web.get("/metrics", exports.metrics, allow_head=False),
        web.get("/api/v1/openapi.json", views.openapi, allow_head=False),
        web.get("/healthz", views.healthz, allow_head=False),
    ])
