"""Trade surveillance: wash trades, spoofing and layering found in the projections, stored as alerts
with their evidence, and a daily per-market report of trade sizes (docs/surveillance.md)."""
