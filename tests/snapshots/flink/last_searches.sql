-- last_searches: the stream job's input view, sink and INSERT; output last_searches, upsert (updating)
-- refresh: make snapshots

CREATE TEMPORARY VIEW last_searches_input AS SELECT * FROM events WHERE event_type = 'search' AND query IS NOT NULL;

CREATE TEMPORARY TABLE sink_last_searches (`user_id` BIGINT, `queries` ARRAY<STRING>, `updated_at` TIMESTAMP_LTZ(3), PRIMARY KEY (`user_id`) NOT ENFORCED) WITH ('topic' = 'lf.features.last_searches', 'properties.bootstrap.servers' = 'kafka:9092', 'properties.linger.ms' = '20', 'value.format' = 'json', 'value.json.timestamp-format.standard' = 'ISO-8601', 'value.json.encode.decimal-as-plain-number' = 'true', 'connector' = 'upsert-kafka', 'key.format' = 'json', 'sink.buffer-flush.max-rows' = '2000', 'sink.buffer-flush.interval' = '100 ms');

INSERT INTO sink_last_searches SELECT user_id, SPLIT(REGEXP_REPLACE(ARRAY_JOIN(ARRAY_SORT(ARRAY_AGG(LPAD(CAST(event_time AS STRING), 15, '0') || LPAD(CAST(src_part AS STRING), 10, '0') || LPAD(CAST(src_off AS STRING), 19, '0') || U&'\0002' || query), FALSE), U&'\0001'), '[0-9]{44}' || U&'\0002', ''), U&'\0001') AS queries, TO_TIMESTAMP_LTZ(CAST(SUBSTRING(ARRAY_SORT(ARRAY_AGG(LPAD(CAST(event_time AS STRING), 15, '0') || LPAD(CAST(src_part AS STRING), 10, '0') || LPAD(CAST(src_off AS STRING), 19, '0') || U&'\0002' || query), FALSE)[1], 1, 15) AS BIGINT), 3) AS updated_at FROM (SELECT user_id, query, event_time, src_part, src_off FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY ts DESC, src_part DESC, src_off DESC) AS rn FROM last_searches_input) WHERE rn <= 10) GROUP BY user_id;
