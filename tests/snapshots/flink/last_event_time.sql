-- last_event_time: the stream job's input view, sink and INSERT; output last_event_time, upsert (updating)
-- refresh: make snapshots

CREATE TEMPORARY VIEW last_event_time_input AS SELECT * FROM events;

CREATE TEMPORARY TABLE sink_last_event_time (`user_id` BIGINT, `last_event_time` TIMESTAMP_LTZ(3), PRIMARY KEY (`user_id`) NOT ENFORCED) WITH ('topic' = 'lf.features.last_event_time', 'properties.bootstrap.servers' = 'kafka:9092', 'properties.linger.ms' = '20', 'value.format' = 'json', 'value.json.timestamp-format.standard' = 'ISO-8601', 'value.json.encode.decimal-as-plain-number' = 'true', 'connector' = 'upsert-kafka', 'key.format' = 'json', 'sink.buffer-flush.max-rows' = '2000', 'sink.buffer-flush.interval' = '100 ms');

INSERT INTO sink_last_event_time SELECT user_id, TO_TIMESTAMP_LTZ(MAX(event_time), 3) AS last_event_time FROM last_event_time_input GROUP BY user_id;
