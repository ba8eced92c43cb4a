-- top_brands_30d: the batch layer's Spark SQL, in the order a run uses it
-- refresh: make snapshots

-- partial_sql: the daily partials over `events`
SELECT dt, user_id, brand, COUNT(*) AS purchases FROM events WHERE event_type = 'purchase' AND brand IS NOT NULL GROUP BY dt, user_id, brand;

-- spread_sql: each day's partials into the as-of days of its 30-day span
SELECT * FROM (SELECT *, date_add(dt, _day) AS as_of FROM daily LATERAL VIEW explode(sequence(0, 29)) AS _day) WHERE as_of BETWEEN DATE'2026-01-30' AND DATE'2026-01-31';

-- merge_sql: the feature as of each day from `partials`
SELECT as_of AS as_of, user_id, CAST(rn AS BIGINT) AS `rank`, brand, purchases FROM (SELECT *, row_number() OVER (PARTITION BY as_of, user_id ORDER BY purchases DESC, brand ASC) AS rn FROM (SELECT as_of, user_id, brand, SUM(purchases) AS purchases FROM partials GROUP BY as_of, user_id, brand)) WHERE rn <= 3;

-- spark_sql as of 2026-01-31: the full rescan over `events` (batch features --rescan)
SELECT DATE'2026-01-31' AS as_of, user_id, CAST(rn AS BIGINT) AS `rank`, brand, purchases FROM (SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY purchases DESC, brand ASC) AS rn FROM (SELECT user_id, brand, COUNT(*) AS purchases FROM events WHERE event_type = 'purchase' AND brand IS NOT NULL GROUP BY user_id, brand)) WHERE rn <= 3;
