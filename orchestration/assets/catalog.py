"""The item catalogue: the table in its database, observed (rows, last change, CDC lag), and the
CDC relay that puts its changes on Kafka, deployed by `catalog_relay` and supervised by the
`catalog_supervisor` sensor as the stream job is by its own."""

from __future__ import annotations

from dagster import (
    AssetObservation,
    AssetSelection,
    DefaultSensorStatus,
    Definitions,
    JobDefinition,
    MaterializeResult,
    MetadataValue,
    ObserveResult,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset,
    define_asset_job,
    observable_source_asset,
    sensor,
)

from common.errors import PlatformError
from common.settings import Settings
from orchestration.resources import PlatformResource

OWNERS = ["team:streaming"]


def catalog_metadata(settings: Settings) -> dict:
    """The catalogue now, as Dagster metadata: rows, the newest change, the relay's lag."""
    from catalog.observe import observe

    try:
        seen = observe(settings)
    except PlatformError as e:
        return {"error": e.what}
    out: dict = {"rows": seen["rows"], "topic": seen["topic"]}
    if seen["last_change"]:
        out["last change"] = MetadataValue.text(str(seen["last_change"]))
    for k in ("relay_position", "binlog_behind_bytes"):
        if k in seen:
            out[k.replace("_", " ")] = seen[k]
    if "cdc_lag_s" in seen:
        out["CDC lag (s)"] = MetadataValue.float(float(seen["cdc_lag_s"]))  # type: ignore[arg-type]
    return out


@observable_source_asset(
    group_name="catalog",
    owners=OWNERS,
    kinds={"mysql", "kafka"},
    description="The item catalogue (table `items` in MariaDB or the user's MySQL). Observed: rows, the newest "
    "change, and how far the CDC relay is behind the binlog.",
)
def catalog(platform: PlatformResource) -> ObserveResult:
    return ObserveResult(metadata=catalog_metadata(platform.settings()))


@asset(
    group_name="catalog",
    owners=OWNERS,
    kinds={"python", "kafka"},
    deps=[catalog],
    description="The CDC relay: every change of the catalogue from the binlog to the Kafka topic in "
    "debezium-json. Materializing starts it as a background process unless it runs.",
)
def catalog_relay(platform: PlatformResource) -> MaterializeResult:
    from common.services import relay_service

    s = platform.settings()
    if not s.catalog.relay:
        off = "off: CATALOG__RELAY is false (a Debezium connector writes the topic)"
        return MaterializeResult(metadata={"state": off})
    svc = relay_service(s)
    started = svc.start()
    return MaterializeResult(
        metadata={
            "action": "started" if started else "already running",
            "pid": svc.pid() or -1,
            "metrics": MetadataValue.url(f"http://127.0.0.1:{svc.port}/metrics"),
            "log": MetadataValue.path(str(s.run_dir / "catalog-relay.log")),
        }
    )


def catalog_supervisor_sensor(settings: Settings, deploy_job: JobDefinition) -> SensorDefinition:
    @sensor(
        job=deploy_job,
        minimum_interval_seconds=settings.orchestration.supervise_interval_s,
        default_status=DefaultSensorStatus.RUNNING,
        description="Observes the catalogue (rows, last change, CDC lag) and restarts the CDC relay when it died.",
    )
    def catalog_supervisor(context: SensorEvaluationContext, platform: PlatformResource):
        from common.services import relay_service

        s = platform.settings()
        if not s.catalog.relay:
            return SkipReason("the relay is off (CATALOG__RELAY=false)")
        svc = relay_service(s)
        if not svc.pidfile.exists():
            return SkipReason("the catalogue relay is not deployed: materialize catalog_relay")
        events = [AssetObservation(asset_key="catalog", metadata=catalog_metadata(s))]
        runs = []
        if svc.pid() is None:  # its pidfile stays when it dies; `services stop` removes it
            context.log.warning("the catalogue relay died: requesting a restart")
            runs.append(RunRequest(run_key=f"relay-restart-{svc.pidfile.stat().st_mtime_ns}"))
        return SensorResult(run_requests=runs, asset_events=events)

    return catalog_supervisor


def build_defs(settings: Settings) -> Definitions:
    deploy = define_asset_job("catalog_relay_deploy", selection=AssetSelection.assets(catalog_relay))
    return Definitions(
        assets=[catalog, catalog_relay], jobs=[deploy], sensors=[catalog_supervisor_sensor(settings, deploy)]
    )
