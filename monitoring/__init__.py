"""The platform's exporter: the metrics of what no single process of the platform owns (the
Flink job, Kafka lag, the stream's dead letters and late events, data-quality and tiering results)."""
