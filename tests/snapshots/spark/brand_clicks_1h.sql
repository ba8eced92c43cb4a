-- brand_clicks_1h: the batch layer's Spark SQL, in the order a run uses it
-- refresh: make snapshots

-- spark_sql: the windows over `events`
SELECT timestamp_millis(ws) AS window_start, timestamp_millis(ws + 3600000) AS window_end, catalog_brand, clicks FROM (SELECT catalog_brand, event_time - pmod(event_time, 3600000) AS ws, COUNT(*) AS clicks FROM events WHERE event_type = 'click' AND item_id IS NOT NULL GROUP BY catalog_brand, event_time - pmod(event_time, 3600000));
