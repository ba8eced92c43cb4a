-- category_purchases_1h: the stream job's input view, sink and INSERT; output category_purchases_1h, append-only
-- refresh: make snapshots

CREATE TEMPORARY VIEW category_purchases_1h_input AS SELECT e.*, c.`category_id` AS `catalog_category_id`, c.`brand` AS `catalog_brand`, c.`price` AS `catalog_price`, c.`title` AS `catalog_title`, c.`item_id` IS NOT NULL AS catalog_known FROM (SELECT * FROM events_on_time WHERE event_type = 'purchase' AND item_id IS NOT NULL) AS e LEFT JOIN catalog_items FOR SYSTEM_TIME AS OF e.ts AS c ON e.`item_id` = c.`item_id`;

CREATE TEMPORARY TABLE sink_category_purchases_1h (`window_start` TIMESTAMP_LTZ(3), `window_end` TIMESTAMP_LTZ(3), `catalog_category_id` BIGINT, `purchases` BIGINT, `purchase_value` DECIMAL(18, 2)) WITH ('topic' = 'lf.features.category_purchases_1h', 'properties.bootstrap.servers' = 'kafka:9092', 'properties.linger.ms' = '20', 'value.format' = 'json', 'value.json.timestamp-format.standard' = 'ISO-8601', 'value.json.encode.decimal-as-plain-number' = 'true', 'connector' = 'kafka', 'sink.delivery-guarantee' = 'at-least-once', 'sink.partitioner' = 'fixed');

INSERT INTO sink_category_purchases_1h SELECT window_start, window_end, catalog_category_id, purchases, purchase_value FROM (SELECT catalog_category_id, window_start, window_end, COUNT(*) AS purchases, CAST(SUM(CAST(COALESCE(catalog_price, 0) AS DECIMAL(18, 2))) AS DECIMAL(18, 2)) AS purchase_value FROM TABLE(TUMBLE(TABLE category_purchases_1h_input, DESCRIPTOR(ts), INTERVAL '3600' SECOND(9))) GROUP BY window_start, window_end, catalog_category_id);
