-- uv_1m: the stream job's input view, sink and INSERT; output uv_1m, append-only
-- refresh: make snapshots

CREATE TEMPORARY VIEW uv_1m_input AS SELECT * FROM events_on_time;

CREATE TEMPORARY TABLE sink_uv_1m (`window_start` TIMESTAMP_LTZ(3), `window_end` TIMESTAMP_LTZ(3), `uv` BIGINT, `events` BIGINT) WITH ('topic' = 'lf.features.uv_1m', 'properties.bootstrap.servers' = 'kafka:9092', 'properties.linger.ms' = '20', 'value.format' = 'json', 'value.json.timestamp-format.standard' = 'ISO-8601', 'value.json.encode.decimal-as-plain-number' = 'true', 'connector' = 'kafka', 'sink.delivery-guarantee' = 'at-least-once', 'sink.partitioner' = 'fixed');

INSERT INTO sink_uv_1m SELECT window_start, window_end, uv, events FROM (SELECT window_start, window_end, COUNT(DISTINCT user_id) AS uv, COUNT(*) AS events FROM TABLE(TUMBLE(TABLE uv_1m_input, DESCRIPTOR(ts), INTERVAL '60' SECOND(9))) GROUP BY window_start, window_end);
