"""Images and rows that come into gambarkan: decoded, checked and limited once."""
