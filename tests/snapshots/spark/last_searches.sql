-- last_searches: the batch layer's Spark SQL, in the order a run uses it
-- refresh: make snapshots

-- reduce_sql: each day's events of `events` that can still decide the state
SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY dt, user_id ORDER BY event_time DESC, src_part DESC, src_off DESC) AS _rn FROM events WHERE event_type = 'search' AND query IS NOT NULL) WHERE _rn <= 10;

-- spark_sql by as_of: the state as of each day's end, over the reduced events
SELECT as_of, user_id, transform(v, x -> x.query) AS queries, timestamp_millis(v[0].event_time) AS updated_at FROM (SELECT as_of, user_id, slice(sort_array(collect_list(struct(event_time, src_part, src_off, query)), false), 1, 10) AS v FROM events WHERE event_type = 'search' AND query IS NOT NULL GROUP BY as_of, user_id);
