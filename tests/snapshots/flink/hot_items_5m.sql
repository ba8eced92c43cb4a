-- hot_items_5m: the stream job's input view, sink and INSERT; output hot_items_5m, append-only
-- refresh: make snapshots

CREATE TEMPORARY VIEW hot_items_5m_input AS SELECT * FROM events_on_time WHERE event_type = 'click' AND item_id IS NOT NULL;

CREATE TEMPORARY TABLE sink_hot_items_5m (`window_start` TIMESTAMP_LTZ(3), `window_end` TIMESTAMP_LTZ(3), `rank` BIGINT, `item_id` BIGINT, `clicks` BIGINT) WITH ('topic' = 'lf.features.hot_items_5m', 'properties.bootstrap.servers' = 'kafka:9092', 'properties.linger.ms' = '20', 'value.format' = 'json', 'value.json.timestamp-format.standard' = 'ISO-8601', 'value.json.encode.decimal-as-plain-number' = 'true', 'connector' = 'kafka', 'sink.delivery-guarantee' = 'at-least-once', 'sink.partitioner' = 'fixed');

INSERT INTO sink_hot_items_5m SELECT window_start, window_end, rn AS `rank`, item_id, clicks FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY clicks DESC, item_id ASC) AS rn FROM (SELECT item_id, window_start, window_end, COUNT(*) AS clicks FROM TABLE(TUMBLE(TABLE hot_items_5m_input, DESCRIPTOR(ts), INTERVAL '300' SECOND(9))) GROUP BY window_start, window_end, item_id)) WHERE rn <= 10;
