-- category_purchases_1h: the batch layer's Spark SQL, in the order a run uses it
-- refresh: make snapshots

-- spark_sql: the windows over `events`
SELECT timestamp_millis(ws) AS window_start, timestamp_millis(ws + 3600000) AS window_end, catalog_category_id, purchases, purchase_value FROM (SELECT catalog_category_id, event_time - pmod(event_time, 3600000) AS ws, COUNT(*) AS purchases, CAST(SUM(CAST(COALESCE(catalog_price, 0) AS DECIMAL(18, 2))) AS DECIMAL(18, 2)) AS purchase_value FROM events WHERE event_type = 'purchase' AND item_id IS NOT NULL GROUP BY catalog_category_id, event_time - pmod(event_time, 3600000));
