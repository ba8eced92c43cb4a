-- category_clicks_1h: the batch layer's Spark SQL, in the order a run uses it
-- refresh: make snapshots

-- spark_sql: the windows over `events`
SELECT user_id, timestamp_millis(ws) AS window_start, timestamp_millis(ws + 3600000) AS window_end, category_id, clicks FROM (SELECT user_id, category_id, tile - k * 300000 AS ws, CAST(SUM(clicks) AS BIGINT) AS clicks FROM (SELECT user_id, category_id, event_time - pmod(event_time, 300000) AS tile, COUNT(*) AS clicks FROM events WHERE event_type = 'click' GROUP BY user_id, category_id, event_time - pmod(event_time, 300000)) LATERAL VIEW explode(sequence(0, 11)) t AS k GROUP BY user_id, category_id, tile - k * 300000);
