-- hot_items_5m: the batch layer's Spark SQL, in the order a run uses it
-- refresh: make snapshots

-- spark_sql: the windows over `events`
SELECT timestamp_millis(ws) AS window_start, timestamp_millis(ws + 300000) AS window_end, CAST(rn AS BIGINT) AS `rank`, item_id, clicks FROM (SELECT *, row_number() OVER (PARTITION BY ws ORDER BY clicks DESC, item_id ASC) AS rn FROM (SELECT item_id, event_time - pmod(event_time, 300000) AS ws, COUNT(*) AS clicks FROM events WHERE event_type = 'click' AND item_id IS NOT NULL GROUP BY item_id, event_time - pmod(event_time, 300000))) WHERE rn <= 10;
