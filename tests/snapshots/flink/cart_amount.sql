-- cart_amount: the stream job's input view, sink and INSERT; output cart_amount, upsert (updating)
-- refresh: make snapshots

CREATE TEMPORARY VIEW cart_amount_input AS SELECT * FROM events WHERE event_type IN ('cart', 'remove_cart', 'purchase');

CREATE TEMPORARY TABLE sink_cart_amount (`user_id` BIGINT, `cart_amount` DECIMAL(18, 2), `updated_at` TIMESTAMP_LTZ(3), PRIMARY KEY (`user_id`) NOT ENFORCED) WITH ('topic' = 'lf.features.cart_amount', 'properties.bootstrap.servers' = 'kafka:9092', 'properties.linger.ms' = '20', 'value.format' = 'json', 'value.json.timestamp-format.standard' = 'ISO-8601', 'value.json.encode.decimal-as-plain-number' = 'true', 'connector' = 'upsert-kafka', 'key.format' = 'json', 'sink.buffer-flush.max-rows' = '2000', 'sink.buffer-flush.interval' = '100 ms');

INSERT INTO sink_cart_amount SELECT user_id, SUM(CASE WHEN event_type = 'cart' THEN CAST(COALESCE(price, 0) AS DECIMAL(18, 2)) ELSE CAST(0 AS DECIMAL(18, 2)) END) AS cart_amount, MAX(TO_TIMESTAMP_LTZ(event_time, 3)) AS updated_at FROM (SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY user_id, item_id ORDER BY ts DESC) AS rn FROM cart_amount_input) WHERE rn = 1) GROUP BY user_id;
