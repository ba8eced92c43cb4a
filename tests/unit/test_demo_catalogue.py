"""The item catalogue the demo generates for its events."""

from __future__ import annotations

from collections import Counter

from features.generator import GeneratorConfig, generate, generate_catalogue


def test_the_generated_catalogue_leaves_out_the_share_asked_and_changes_some_items():
    cfg = GeneratorConfig(seed=7, events_per_second=1.0)
    uses = Counter(e["item_id"] for e in generate(cfg, 5000) if e["item_id"] is not None)
    cat = generate_catalogue(cfg, dict(uses), unknown_share=0.01, changed_share=0.1)
    known = {r["item_id"] for r in cat.first}
    assert known | cat.unknown == set(uses) and not known & cat.unknown
    assert 0 < cat.unknown_events <= 0.01 * cat.item_events == 0.01 * sum(uses.values())
    assert cat.unknown_events == sum(uses[i] for i in cat.unknown)
    first = {r["item_id"]: r for r in cat.first}
    assert {r["item_id"] for r in cat.second} <= known and len(cat.second) == int(len(known) * 0.1)
    for r in cat.second:  # each changed item has exactly one of a new brand or a new price
        changed = {k for k in r if r[k] != first[r["item_id"]][k]} - {"title"}
        assert changed in ({"brand"}, {"price"}), (r, first[r["item_id"]])
    # the first version describes each item as the events do
    events = {e["item_id"]: e for e in generate(cfg, 5000) if e["item_id"] is not None}
    for item, row in first.items():
        assert (row["category_id"], row["brand"], row["price"]) == (
            events[item]["category_id"],
            events[item]["brand"],
            events[item]["price"],
        )
