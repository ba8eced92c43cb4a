-- uv_1m: the batch layer's Spark SQL, in the order a run uses it
-- refresh: make snapshots

-- spark_sql: the windows over `events`
SELECT timestamp_millis(ws) AS window_start, timestamp_millis(ws + 60000) AS window_end, uv, events FROM (SELECT event_time - pmod(event_time, 60000) AS ws, COUNT(DISTINCT user_id) AS uv, COUNT(*) AS events FROM events GROUP BY event_time - pmod(event_time, 60000));
