-- purchase_stats_30d: the batch layer's Spark SQL, in the order a run uses it
-- refresh: make snapshots

-- partial_sql: the daily partials over `events`
SELECT dt, user_id, SUM(CASE WHEN event_type = 'purchase' THEN 1 END) AS purchases, SUM(CASE WHEN event_type = 'purchase' THEN CAST(COALESCE(price, 0) AS DECIMAL(18, 2)) END) AS gmv, collect_set(CASE WHEN event_type = 'purchase' THEN item_id END) AS distinct_items, collect_set(to_date(ts)) AS active_days FROM events GROUP BY dt, user_id;

-- spread_sql: each day's partials into the as-of days of its 30-day span
SELECT * FROM (SELECT *, date_add(dt, _day) AS as_of FROM daily LATERAL VIEW explode(sequence(0, 29)) AS _day) WHERE as_of BETWEEN DATE'2026-01-30' AND DATE'2026-01-31';

-- merge_sql: the feature as of each day from `partials`
SELECT as_of, user_id, CAST(COALESCE(SUM(purchases), 0) AS BIGINT) AS purchases, CAST(COALESCE(SUM(gmv), 0) AS DECIMAL(18, 2)) AS gmv, CAST(size(array_distinct(flatten(collect_list(distinct_items)))) AS BIGINT) AS distinct_items, CAST(size(array_distinct(flatten(collect_list(active_days)))) AS BIGINT) AS active_days FROM partials GROUP BY as_of, user_id;

-- spark_sql as of 2026-01-31: the full rescan over `events` (batch features --rescan)
SELECT DATE'2026-01-31' AS as_of, user_id, CAST(COALESCE(SUM(CASE WHEN event_type = 'purchase' THEN 1 END), 0) AS BIGINT) AS purchases, CAST(COALESCE(SUM(CASE WHEN event_type = 'purchase' THEN CAST(COALESCE(price, 0) AS DECIMAL(18, 2)) END), 0) AS DECIMAL(18, 2)) AS gmv, CAST(COUNT(DISTINCT CASE WHEN event_type = 'purchase' THEN item_id END) AS BIGINT) AS distinct_items, CAST(COUNT(DISTINCT to_date(ts)) AS BIGINT) AS active_days FROM events GROUP BY user_id;
