-- last_event_time: the batch layer's Spark SQL, in the order a run uses it
-- refresh: make snapshots

-- reduce_sql: each day's events of `events` that can still decide the state
SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY dt, user_id ORDER BY event_time DESC, src_part DESC, src_off DESC) AS _rn FROM events) WHERE _rn <= 1;

-- spark_sql by as_of: the state as of each day's end, over the reduced events
SELECT as_of, user_id, timestamp_millis(MAX(event_time)) AS last_event_time FROM events GROUP BY as_of, user_id;
