-- brand_clicks_1h: the stream job's input view, sink and INSERT; output brand_clicks_1h, append-only
-- refresh: make snapshots

CREATE TEMPORARY VIEW brand_clicks_1h_input AS SELECT e.*, c.`category_id` AS `catalog_category_id`, c.`brand` AS `catalog_brand`, c.`price` AS `catalog_price`, c.`title` AS `catalog_title`, c.`item_id` IS NOT NULL AS catalog_known FROM (SELECT * FROM events_on_time WHERE event_type = 'click' AND item_id IS NOT NULL) AS e LEFT JOIN catalog_items FOR SYSTEM_TIME AS OF e.ts AS c ON e.`item_id` = c.`item_id`;

CREATE TEMPORARY TABLE sink_brand_clicks_1h (`window_start` TIMESTAMP_LTZ(3), `window_end` TIMESTAMP_LTZ(3), `catalog_brand` STRING, `clicks` BIGINT) WITH ('topic' = 'lf.features.brand_clicks_1h', 'properties.bootstrap.servers' = 'kafka:9092', 'properties.linger.ms' = '20', 'value.format' = 'json', 'value.json.timestamp-format.standard' = 'ISO-8601', 'value.json.encode.decimal-as-plain-number' = 'true', 'connector' = 'kafka', 'sink.delivery-guarantee' = 'at-least-once', 'sink.partitioner' = 'fixed');

INSERT INTO sink_brand_clicks_1h SELECT window_start, window_end, catalog_brand, clicks FROM (SELECT catalog_brand, window_start, window_end, COUNT(*) AS clicks FROM TABLE(TUMBLE(TABLE brand_clicks_1h_input, DESCRIPTOR(ts), INTERVAL '3600' SECOND(9))) GROUP BY window_start, window_end, catalog_brand);
