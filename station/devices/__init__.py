"""Device side: pure codecs, firmware profiles, transport links and simulators."""
