"""Sync side: the durable outbox, the MQTT client and the payloads (JSON envelope + FHIR)."""
