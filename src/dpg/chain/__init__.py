"""Custody on EVM chains: settings (config), the JSON-RPC client (rpc), the contracts' artifacts and
events (contracts), anvil as a subprocess (anvil), the embedded dev chain (embedded), what the
watchers keep in PostgreSQL (store), the deposit watcher (watcher), and one node's watchers (custody)."""
