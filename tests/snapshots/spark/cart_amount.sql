-- cart_amount: the batch layer's Spark SQL, in the order a run uses it
-- refresh: make snapshots

-- reduce_sql: each day's events of `events` that can still decide the state
SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY dt, user_id, item_id ORDER BY event_time DESC, src_part DESC, src_off DESC) AS _rn FROM events WHERE event_type IN ('cart', 'remove_cart', 'purchase')) WHERE _rn <= 1;

-- spark_sql by as_of: the state as of each day's end, over the reduced events
SELECT as_of, user_id, CAST(SUM(CASE WHEN event_type = 'cart' THEN CAST(COALESCE(price, 0) AS DECIMAL(18, 2)) ELSE CAST(0 AS DECIMAL(18, 2)) END) AS DECIMAL(18, 2)) AS cart_amount, timestamp_millis(MAX(event_time)) AS updated_at FROM (SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY as_of, user_id, item_id ORDER BY event_time DESC, src_part DESC, src_off DESC) AS rn FROM events WHERE event_type IN ('cart', 'remove_cart', 'purchase')) WHERE rn = 1) GROUP BY as_of, user_id;
