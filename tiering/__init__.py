"""Moving feature partitions older than 7 days to S3/OSS. Not built yet (issue 6)."""
