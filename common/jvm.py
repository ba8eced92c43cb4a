"""The JVM artifacts pinned in jvm/pom.xml, as `make setup` lays them out under .cache/jars."""

from __future__ import annotations

from pathlib import Path

from common.errors import PlatformError

REPO = Path(__file__).resolve().parent.parent
JVM_DIR = REPO / "jvm"  # the pom and the configuration files of the JVM processes
JARS = REPO / ".cache" / "jars"


def jar_dir(group: str, folder: str | Path | None = None) -> Path:
    """The folder of one group of jars (flink, kafka, agent): `folder` when given, else
    .cache/jars/<group>; an error naming it when it holds no jar."""
    path = Path(folder) if folder else JARS / group
    if not any(path.glob("*.jar")):
        raise PlatformError(
            f"no {group} jars in {path}",
            "run `make setup` (it fetches the jars of jvm/pom.xml from Maven Central into .cache/jars)",
        )
    return path


def classpath(group: str) -> str:
    """Every jar of a group, as a JVM class path."""
    return str(jar_dir(group) / "*")
