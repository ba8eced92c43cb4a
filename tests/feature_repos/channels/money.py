"""Money, as the shipped repository keeps it (a module of the package: relative imports work)."""

from features.definitions import Column

MONEY = "CAST(COALESCE(price, 0) AS DECIMAL(18, 2))"


def money(name: str) -> Column:
    return Column(name, "DECIMAL(18, 2)", "Decimal(18, 2)")
