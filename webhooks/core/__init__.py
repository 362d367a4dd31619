"""Webhook signatures: pure Python (stdlib only), so receivers can copy or import it."""
