-- category_clicks_1h: the stream job's input view, sink and INSERT; output category_clicks_1h_tiles, append-only
-- refresh: make snapshots

CREATE TEMPORARY VIEW category_clicks_1h_input AS SELECT * FROM events_on_time WHERE event_type = 'click';

CREATE TEMPORARY TABLE sink_category_clicks_1h_tiles (`user_id` BIGINT, `window_start` TIMESTAMP_LTZ(3), `window_end` TIMESTAMP_LTZ(3), `category_id` BIGINT, `clicks` BIGINT) WITH ('topic' = 'lf.features.category_clicks_1h_tiles', 'properties.bootstrap.servers' = 'kafka:9092', 'properties.linger.ms' = '20', 'value.format' = 'json', 'value.json.timestamp-format.standard' = 'ISO-8601', 'value.json.encode.decimal-as-plain-number' = 'true', 'connector' = 'kafka', 'sink.delivery-guarantee' = 'at-least-once', 'sink.partitioner' = 'fixed');

INSERT INTO sink_category_clicks_1h_tiles SELECT user_id, window_start, window_end, category_id, clicks FROM (SELECT user_id, category_id, window_start, window_end, COUNT(*) AS clicks FROM TABLE(TUMBLE(TABLE category_clicks_1h_input, DESCRIPTOR(ts), INTERVAL '300' SECOND(9))) GROUP BY window_start, window_end, user_id, category_id);
