"""Request inputs that need decoding and checking once: images (init, mask, control maps) and batch rows."""
