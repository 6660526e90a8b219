"""A turn as a durable, resumable run: its event log (in memory or in Redis Streams) and producer."""
