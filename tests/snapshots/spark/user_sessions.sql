-- user_sessions: the batch layer's Spark SQL, in the order a run uses it
-- refresh: make snapshots

-- spark_sql: the windows over `events`
SELECT user_id, session_start, session_end, events, clicks, carts, purchases FROM (SELECT user_id, MIN(ts) AS session_start, MAX(ts) AS session_end, COUNT(*) AS events, SUM(CASE WHEN event_type = 'click' THEN 1 ELSE 0 END) AS clicks, SUM(CASE WHEN event_type = 'cart' THEN 1 ELSE 0 END) AS carts, SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS purchases FROM events GROUP BY user_id, session_window(ts, '300 seconds'));
