"""The client side: Client, views and results."""
