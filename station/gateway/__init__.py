"""The practice side: the stations' MQTT messages into the EHR as HL7 v2 over MLLP."""
