"""The platform's Dagster definitions: `dagster dev -m orchestration.definitions`. Each domain
module contributes its own Definitions (assets, checks, jobs, schedules, sensors); they are
merged here with the resources and the executor they share. Nothing is built at import: `defs`
is a `@definitions` function Dagster calls when it loads the code location, so importing this
module (or a domain's) reads no settings and no feature repository."""

from __future__ import annotations

import warnings

from dagster import BetaWarning, Definitions, definitions, in_process_executor

from common.settings import Settings, load_settings
from orchestration import checks
from orchestration.assets import batch, catalog, online, serving, stream, tiering
from orchestration.resources import platform_resources

# single-run backfill policies are beta in Dagster 1.13; they are what makes a range one Spark job
warnings.filterwarnings("ignore", category=BetaWarning)

DOMAINS = (stream, batch, online, serving, tiering, catalog, checks)


def build_definitions(settings: Settings) -> Definitions:
    shared = Definitions(
        resources=platform_resources(),
        # steps of a run share one process: the chDB client and the PyFlink gateway are per process
        executor=in_process_executor,
    )
    return Definitions.merge(shared, *(domain.build_defs(settings) for domain in DOMAINS))


@definitions
def defs() -> Definitions:
    """The code location's definitions, from the settings of the environment it is loaded in."""
    return build_definitions(load_settings())
