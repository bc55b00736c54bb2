"""Everything the bot runs below Discord, assembled in one place a test or CLI can reuse.

Start-up order matters: maintenance windows are read before the supervisor re-adopts
servers (so a crash found at start is muted), bans are known before any server starts,
and everything that listens to events subscribes before the supervisor publishes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from core.backups.retention import DAY, RetentionPolicy
from core.config import Settings
from core.events import EventBus
from core.fsutil import private_dir
from core.games.base import GameProfile, ProfileRegistry
from core.hosts.loading import load_hosts
from core.jobs import JobQueue
from core.logs.rotation import RotationPolicy
from core.metrics import Metrics
from core.secrets import KEY_FILE_NAME, SecretBox, load_or_create_key
from core.services.audit import AuditLog
from core.services.backups import BackupService
from core.services.bans import BanService
from core.services.bot_state import BotStateService
from core.services.channels import ChannelService
from core.services.console import ConsoleService
from core.services.fleet import Fleet
from core.services.fleet_metrics import host_families
from core.services.host import HostService
from core.services.missions import MissionService
from core.services.mod_updates import ModUpdates
from core.services.mods import ModService
from core.services.permissions import PermissionService
from core.services.players import PlayerService
from core.services.schedule import ScheduleService
from core.services.servers import ServerService
from core.services.stats import StatsService
from core.services.webhooks import WebhookService
from core.supervisor.supervisor import Supervisor
from data.db import Database
from data.repositories.backups import BackupPolicyRepository
from data.repositories.bindings import BindingRepository
from data.repositories.grants import GrantRepository
from data.repositories.history import AuditRepository
from data.repositories.mods import ModRepository

__all__ = ["DATABASE_FILE", "Runtime", "default_profiles"]

_log = logging.getLogger(__name__)

DATABASE_FILE = "languard.db"


def default_profiles(settings: Settings) -> list[GameProfile]:
    """The games the operator configured (a game without its executable still lists, and
    its servers refuse to start with a message saying which variable to set)."""
    from core.games.arma3 import Arma3Profile
    from core.games.minecraft import MinecraftProfile

    return [
        Arma3Profile(settings.arma3_executable),
        MinecraftProfile(settings.minecraft_argv, accept_eula=settings.minecraft_accept_eula),
    ]


def _mod_service(
    settings: Settings,
    supervisor: Supervisor,
    db: Database,
    audit: AuditLog,
    jobs: JobQueue,
    bus: EventBus,
) -> tuple[ModService, ModUpdates]:
    """The mod library: SteamCMD when the operator set it up, the Workshop details API,
    and the install's `keys/` (the game's own a3.bikey goes into each server's keys);
    and the update-aware maintenance, with the same SteamCMD and the game's folder."""
    from core.steam import SteamCmd, WorkshopClient

    exe = settings.arma3_executable
    steam = SteamCmd.from_settings(settings) if settings.steamcmd is not None else None
    mods = ModService(
        supervisor,
        ModRepository(db),
        audit,
        jobs,
        WorkshopClient(settings.workshop_api_url),
        root=settings.mods_root.resolve(),
        steam=steam,
        base_keys=exe.parent / "keys" if exe is not None else None,
    )
    game_dir = exe.parent if exe is not None else None
    updates = ModUpdates(supervisor, mods, audit, jobs, bus, steam=steam, game_dir=game_dir)
    return mods, updates


@dataclass
class Runtime:
    settings: Settings
    db: Database
    bus: EventBus
    secret_box: SecretBox
    supervisor: Supervisor
    audit: AuditLog
    permissions: PermissionService
    servers: ServerService
    host: HostService
    bans: BanService
    players: PlayerService
    missions: MissionService
    schedule: ScheduleService
    channels: ChannelService
    metrics: Metrics
    webhooks: WebhookService
    bot_state: BotStateService
    console: ConsoleService
    jobs: JobQueue
    backups: BackupService
    stats: StatsService
    mods: ModService
    mod_updates: ModUpdates
    fleet: Fleet

    @classmethod
    async def open(
        cls,
        settings: Settings,
        profiles: Sequence[GameProfile] | None = None,
        *,
        bus: EventBus | None = None,
    ) -> Runtime:
        """Open the database, wire the services, then re-adopt the live servers.

        Pass a `bus` that listeners already subscribed to when they must see what the
        supervisor publishes while it re-adopts (log lines re-read from a cursor).
        """
        started = time.time()
        data_dir = settings.data_dir.resolve()
        private_dir(data_dir)
        registry = ProfileRegistry(
            list(profiles) if profiles is not None else default_profiles(settings)
        )
        # a wrong hosts.toml stops the start (HostsFileError: one line per problem)
        table = load_hosts(
            settings.hosts_path, required=settings.hosts_file is not None, games=registry.names()
        )
        configured = settings.secret_key.get_secret_value() if settings.secret_key else None
        box = SecretBox(load_or_create_key(data_dir, configured))
        db = await Database.open(data_dir / DATABASE_FILE)
        metrics: Metrics | None = None
        webhooks: WebhookService | None = None
        fleet: Fleet | None = None
        try:
            bus = bus or EventBus()
            supervisor = Supervisor(
                db=db,
                bus=bus,
                data_dir=data_dir,
                profiles=registry,
                secret_box=box,
                log_rotation=RotationPolicy(
                    settings.console_log_max_bytes, settings.console_log_keep
                ),
                metrics_interval=settings.metrics_interval,
                metrics_retention=None,  # the StatsService folds old samples instead
            )
            # both subscribe as they are made: before the supervisor publishes anything
            metrics = Metrics(bus, supervisor, database=db.path)
            webhooks = WebhookService(bus, settings.webhook_urls, settings.webhook_secret)
            metrics.add_collector(webhooks.families)
            audit = AuditLog(AuditRepository(db), bus)
            fleet = Fleet(table, supervisor, bus, probe_interval=settings.host_probe_interval)
            fleet.install()
            metrics.add_collector(partial(host_families, fleet))
            servers = ServerService(
                supervisor, audit, box, public_host=settings.public_host, fleet=fleet
            )
            schedule = ScheduleService(supervisor, db, audit, on_maintenance=bus.publish)
            bans = BanService(supervisor, db, bus, audit)
            jobs = JobQueue()
            mods, mod_updates = _mod_service(settings, supervisor, db, audit, jobs, bus)
            backups = BackupService(
                supervisor,
                servers,
                audit,
                jobs,
                BackupPolicyRepository(db),
                root=settings.backup_dir.resolve() if settings.backup_dir else data_dir / "backups",
                mirror=settings.backup_mirror_dir,
                defaults=RetentionPolicy(settings.backup_keep, settings.backup_max_age_days * DAY),
                database=data_dir / DATABASE_FILE,
                extra_files=[data_dir / KEY_FILE_NAME],
            )
            runtime = cls(
                settings=settings,
                db=db,
                bus=bus,
                secret_box=box,
                supervisor=supervisor,
                audit=audit,
                permissions=PermissionService(GrantRepository(db), audit),
                servers=servers,
                host=HostService(supervisor, started_at=started, data_dir=data_dir),
                bans=bans,
                players=PlayerService(supervisor, db, bus, audit, bans),
                missions=MissionService(
                    supervisor, db, audit, allow_private_urls=settings.allow_private_urls
                ),
                schedule=schedule,
                channels=ChannelService(BindingRepository(db), audit, supervisor),
                metrics=metrics,
                webhooks=webhooks,
                bot_state=BotStateService.of(db),
                console=ConsoleService(supervisor, audit),
                jobs=jobs,
                backups=backups,
                stats=StatsService(supervisor, db, sample_interval=settings.metrics_interval),
                mods=mods,
                mod_updates=mod_updates,
                fleet=fleet,
            )
            schedule.backups = backups  # what `/schedule backup` runs
            servers.on_manual_start.append(schedule.end_maintenance)
            servers.on_deleted.append(schedule.forget_server)
            servers.on_deleted.append(metrics.forget_server)
            metrics.start()
            webhooks.start()
            await schedule.load()
            supervisor.paused_provider = schedule.in_maintenance
            players = runtime.players
            supervisor.players_provider = lambda server: (
                None if server.link is None else len(players.known_online(server.name))
            )
            await bans.start()
            await runtime.players.start()
            await backups.recover()  # an interrupted restore is finished before any start
            await supervisor.start()
            await fleet.start()
            await schedule.start()
            await runtime.stats.start()
        except BaseException:
            for closable in (fleet, webhooks, metrics):
                if closable is not None:
                    await closable.close()
            await db.close()
            raise
        _log.info("runtime up: data in %s, %d servers", data_dir, len(supervisor.all()))
        return runtime

    async def close(self) -> None:
        """Let go of everything; game servers keep running."""
        await self.jobs.close()
        await self.mods.close()
        await self.stats.close()
        await self.schedule.close()
        await self.fleet.close()
        await self.players.close()
        await self.bans.close()
        await self.supervisor.close()
        await self.webhooks.close()
        await self.metrics.close()
        await self.db.close()
