"""Pure codecs: bytes in, canonical readings (or a FrameError) out. No I/O here."""
