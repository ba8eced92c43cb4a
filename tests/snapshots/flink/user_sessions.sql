-- user_sessions: the stream job's input view, sink and INSERT; output user_sessions, append-only
-- refresh: make snapshots

CREATE TEMPORARY VIEW user_sessions_input AS SELECT * FROM events_on_time;

CREATE TEMPORARY TABLE sink_user_sessions (`user_id` BIGINT, `session_start` TIMESTAMP_LTZ(3), `session_end` TIMESTAMP_LTZ(3), `events` BIGINT, `clicks` BIGINT, `carts` BIGINT, `purchases` BIGINT) WITH ('topic' = 'lf.features.user_sessions', 'properties.bootstrap.servers' = 'kafka:9092', 'properties.linger.ms' = '20', 'value.format' = 'json', 'value.json.timestamp-format.standard' = 'ISO-8601', 'value.json.encode.decimal-as-plain-number' = 'true', 'connector' = 'kafka', 'sink.delivery-guarantee' = 'at-least-once', 'sink.partitioner' = 'fixed');

INSERT INTO sink_user_sessions SELECT user_id, session_start, session_end, events, clicks, carts, purchases FROM (SELECT user_id, window_start, window_end, MIN(ts) AS session_start, MAX(ts) AS session_end, COUNT(*) AS events, SUM(CASE WHEN event_type = 'click' THEN 1 ELSE 0 END) AS clicks, SUM(CASE WHEN event_type = 'cart' THEN 1 ELSE 0 END) AS carts, SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS purchases FROM TABLE(SESSION(TABLE user_sessions_input PARTITION BY user_id, DESCRIPTOR(ts), INTERVAL '300' SECOND(9))) GROUP BY window_start, window_end, user_id);
