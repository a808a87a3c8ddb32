"""Running many requests: the batch runner and, as the optional extra ``gambarkan[ray]``, Ray."""
