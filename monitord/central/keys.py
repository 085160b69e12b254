"""The typed keys under which the central app keeps its config, store, clock and tasks."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

from aiohttp import web

from monitord.central.config import CentralConfig
from monitord.store.protocol import Store

Clock = Callable[[], dt.datetime]

CONFIG = web.AppKey("config", CentralConfig)
STORE = web.AppKey[Store]("store")
CLOCK = web.AppKey[Clock]("clock")
SWEEPER = web.AppKey[asyncio.Task[None]]("sweeper")
