"""Developer tools that are not part of the product (the offline tiny-model hub)."""
