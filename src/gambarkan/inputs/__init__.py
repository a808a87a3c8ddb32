"""Request inputs that need decoding and checking once: images (init, mask) and batch rows."""
